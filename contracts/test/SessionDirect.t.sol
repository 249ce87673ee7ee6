// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC7579Utils} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {Target} from "./mocks/MockTarget.sol";

/// @notice The direct relayed path: a relayer submits a session-signed batch; the same engine
///         checks it with the block's clock.
contract SessionDirectTest is SakTest {
    address internal relayer = makeAddr("relayer");
    uint32 internal id;

    function setUp() public override {
        super.setUp();
        id = grant(usdSession(100e6));
    }

    function digest(
        SakAccount target,
        uint32 sid,
        bytes memory data,
        uint256 nonce,
        uint40 deadline
    ) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("SakAccount"),
                keccak256("2"),
                block.chainid,
                address(target)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(target.SESSION_CALL_TYPEHASH(), sid, keccak256(data), nonce, deadline)
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function signDirect(
        SakAccount target,
        uint32 sid,
        bytes memory data,
        uint256 nonce,
        uint40 deadline
    ) internal view returns (bytes memory) {
        return signDirectWith(agentKey, target, sid, data, nonce, deadline);
    }

    function signDirectWith(
        uint256 key,
        SakAccount target,
        uint32 sid,
        bytes memory data,
        uint256 nonce,
        uint40 deadline
    ) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest(target, sid, data, nonce, deadline));
        return abi.encodePacked(r, s, v);
    }

    function relay(bytes memory data, uint256 nonce, uint40 deadline, bytes memory sig) internal {
        vm.prank(relayer);
        account.executeWithSession(id, data, nonce, deadline, sig);
    }

    function test_executeWithSession_movesTokens_chargesSpend_andConsumesTheNonce() public {
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        relay(data, 0, deadline, signDirect(account, id, data, 0, deadline));
        assertEq(usd.balanceOf(alice), 30e6);
        assertEq(account.getSpend(id, address(usd)).spent, 30e6);
        assertEq(account.directNonce(id), 1);
    }

    /// @dev One direct lane per session: a session using its nonces cannot void another
    ///      session's batches signed (and not yet relayed) for the same numbers.
    function test_executeWithSession_eachSessionHasItsOwnNonceLane() public {
        uint32 other = grant(usdSession(100e6));
        bytes memory data = abi.encode(transferCall(alice, 10e6));
        uint40 deadline = now_() + 60;
        bytes memory pending = signDirect(account, other, data, 0, deadline);
        relay(data, 0, deadline, signDirect(account, id, data, 0, deadline));
        relay(data, 1, deadline, signDirect(account, id, data, 1, deadline));
        assertEq(account.directNonce(id), 2);
        assertEq(account.directNonce(other), 0);
        vm.prank(relayer);
        account.executeWithSession(other, data, 0, deadline, pending);
        assertEq(account.directNonce(other), 1);
        assertEq(usd.balanceOf(alice), 30e6);
    }

    function test_executeWithSession_reverts_onReplay() public {
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        relay(data, 0, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.InvalidNonce.selector, 1, 0));
        relay(data, 0, deadline, sig);
    }

    function test_executeWithSession_reverts_whenTheRelayerAltersTheCalls() public {
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        bytes memory altered = abi.encode(transferCall(relayer, 30e6));
        vm.expectRevert(SakAccountBase.InvalidSessionSignature.selector);
        relay(altered, 0, deadline, sig);
    }

    /// @dev The signature covers the bytes of executionData only. A batch whose element offset
    ///      points past them (here the signed batch is `[0x20][1][0xa0]`) would let the relayer
    ///      choose the call it reads there: bytes it appends after the signature. Refused.
    function test_executeWithSession_reverts_whenABatchElementLiesPastExecutionData() public {
        bytes memory batch = abi.encode(uint256(0x20), uint256(1), uint256(0xa0));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, batch, 0, deadline);
        bytes memory steal = abi.encodeCall(usd.transfer, (relayer, 50e6));
        // Head (5 words), executionData at 0xa0 (length + 96 bytes), the signature at 0x120
        // (length + 65 bytes padded to 96), then the relayer's element at 0x1a0: 0xa0 past the
        // array's first pointer word (0xa0 + 32 + 64).
        bytes memory call_ = abi.encodePacked(
            account.executeWithSession.selector,
            abi.encode(uint256(id), uint256(0xa0), uint256(0), uint256(deadline), uint256(0x120)),
            abi.encodePacked(uint256(96), batch),
            abi.encodePacked(uint256(65), sig, bytes31(0)),
            abi.encodePacked(uint256(uint160(address(usd))), uint256(0), uint256(0x60)),
            abi.encodePacked(steal.length, steal, bytes28(0))
        );
        vm.prank(relayer);
        (bool ok, bytes memory ret) = address(account).call(call_);
        assertFalse(ok, "the relayer's call ran under the session's signature");
        assertEq(ret, abi.encodeWithSelector(ERC7579Utils.ERC7579DecodingError.selector));
        assertEq(usd.balanceOf(relayer), 0);
    }

    function test_executeWithSession_reverts_whenTheDeadlineIsMoved() public {
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.expectRevert(SakAccountBase.InvalidSessionSignature.selector);
        relay(data, 0, deadline + 1, sig);
    }

    function test_executeWithSession_reverts_afterTheDeadline() public {
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.DeadlinePassed.selector, deadline));
        relay(data, 0, deadline, sig);
    }

    function test_executeWithSession_reverts_onAnotherAccount() public {
        SakAccount other = factory.createAccount(owner, bytes32(uint256(1)));
        usd.mint(address(other), 1_000e6);
        vm.prank(owner);
        uint32 otherId = other.grantSession(usdSession(100e6));
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline); // signed for `account`
        vm.prank(relayer);
        vm.expectRevert(SakAccountBase.InvalidSessionSignature.selector);
        other.executeWithSession(otherId, data, 0, deadline, sig);
    }

    function test_executeWithSession_reverts_onAnotherChain() public {
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.chainId(block.chainid + 1);
        vm.expectRevert(SakAccountBase.InvalidSessionSignature.selector);
        relay(data, 0, deadline, sig);
    }

    function test_executeWithSession_enforcesTheCapWithTheBlockClock() public {
        bytes memory data = abi.encode(transferCall(alice, 80e6));
        uint40 deadline = now_() + 2 days;
        relay(data, 0, deadline, signDirect(account, id, data, 0, deadline));
        bytes memory sig = signDirect(account, id, data, 1, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 80e6, 20e6)
        );
        relay(data, 1, deadline, sig);
        vm.warp(START + DAY); // next period
        relay(data, 1, deadline, sig);
        assertEq(usd.balanceOf(alice), 160e6);
    }

    function test_executeWithSession_reverts_whenRevokedOrExpired() public {
        bytes memory data = abi.encode(transferCall(alice, 1e6));
        uint40 deadline = START + 60 days;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.warp(START + 30 days + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISakSessions.ClockOutsideSession.selector,
                START + 30 days + 1,
                START,
                START + 30 days
            )
        );
        relay(data, 0, deadline, sig);
        vm.warp(START);
        vm.prank(owner);
        account.revokeSession(id);
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, id));
        relay(data, 0, deadline, sig);
    }

    function test_executeWithSession_refusesForbiddenTargets() public {
        Execution[] memory calls =
            one(address(account), 0, abi.encodeCall(account.revokeAllSessions, ()));
        bytes memory data = abi.encode(calls);
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(account))
        );
        relay(data, 0, deadline, sig);
    }

    function test_executeWithSession_refusesForbiddenTargets_throughTheAdapter() public {
        bytes memory data =
            abi.encode(call(address(account), 0, abi.encodeCall(account.revokeAllSessions, ())));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(account))
        );
        relay(data, 0, deadline, sig);
    }

    /// @dev A session (replacing the fixture's) permitting `target.ping`.
    function grantPing(Target target) internal {
        ISakSessions.SessionConfig memory c = agentSession();
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), Target.ping.selector, false);
        id = grant(c);
    }

    function test_executeWithSession_callsThroughTheAdapter() public {
        Target target = new Target();
        grantPing(target);
        bytes memory data =
            abi.encode(call(address(target), 0, abi.encodeCall(Target.ping, (1, alice, 2))));
        uint40 deadline = now_() + 60;
        relay(data, 0, deadline, signDirect(account, id, data, 0, deadline));
        assertEq(target.pings(), 1);
        assertEq(target.lastCaller(), account.sessionAdapter());
    }

    function test_executeWithSession_refusesAPermittedCallMadeDirectly() public {
        Target target = new Target();
        grantPing(target);
        bytes memory data =
            abi.encode(one(address(target), 0, abi.encodeCall(Target.ping, (1, alice, 2))));
        uint40 deadline = now_() + 60;
        bytes memory sig = signDirect(account, id, data, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISakSessions.CallNotThroughAdapter.selector, address(target), Target.ping.selector
            )
        );
        relay(data, 0, deadline, sig);
    }

    /// @dev After rotateSessionKey the relayed path follows the new key: the old key's
    ///      signature (even over a batch signed before) is refused, the new key's accepted.
    function test_executeWithSession_followsARotatedKey() public {
        (address fresh, uint256 freshKey) = makeAddrAndKey("fresh");
        bytes memory data = abi.encode(transferCall(alice, 30e6));
        uint40 deadline = now_() + 60;
        bytes memory old = signDirect(account, id, data, 0, deadline);
        vm.prank(owner);
        account.rotateSessionKey(id, fresh);
        vm.expectRevert(SakAccountBase.InvalidSessionSignature.selector);
        relay(data, 0, deadline, old);
        relay(data, 0, deadline, signDirectWith(freshKey, account, id, data, 0, deadline));
        assertEq(usd.balanceOf(alice), 30e6);
    }
}
