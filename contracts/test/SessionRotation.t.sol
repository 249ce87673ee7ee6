// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";

/// @notice rotateSessionKey: the same session (id, policy, counters, expiry) under a new key.
///         The new key inherits what the old one spent (no fresh cap); the old key's
///         operations stop validating, including those it signed before the rotation.
contract SessionRotationTest is SakTest {
    uint96 internal constant CAP = 100e6;

    address internal fresh;
    uint256 internal freshKey;
    uint32 internal id;

    function setUp() public override {
        super.setUp();
        (fresh, freshKey) = makeAddrAndKey("fresh");
        id = grant(usdSession(CAP));
    }

    function rotate(uint32 sid, address signer) internal {
        vm.prank(owner);
        account.rotateSessionKey(sid, signer);
    }

    /// @dev A transfer of `amount` to alice in session `id`, signed with `key`.
    function opBy(uint256 key, uint256 amount)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(transferCall(alice, amount)));
        signSessionWith(op, id, now_(), key);
    }

    function expectSignatureError(PackedUserOperation memory op) internal {
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = op;
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA24 signature error")
        );
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
    }

    function notActive(uint32 sid) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, sid);
    }

    // -------------------------------------------------------------------------------------
    // The new key, the old key
    // -------------------------------------------------------------------------------------

    function test_rotateSessionKey_newKeyValidates_andExecutes() public {
        rotate(id, fresh);
        submit(opBy(freshKey, 10e6));
        assertEq(usd.balanceOf(alice), 10e6);
        assertEq(account.getSession(id).signer, fresh);
    }

    function test_rotateSessionKey_oldKeysNewOps_failTheSignature() public {
        rotate(id, fresh);
        expectSignatureError(opBy(agentKey, 1e6));
        assertEq(usd.balanceOf(alice), 0);
    }

    /// @dev An operation the old key signed before the rotation is as dead as a new one.
    function test_rotateSessionKey_oldKeysPendingOp_failsTheSignature() public {
        PackedUserOperation memory pending = opBy(agentKey, 1e6);
        rotate(id, fresh);
        expectSignatureError(pending);
        assertEq(usd.balanceOf(alice), 0);
    }

    /// @dev The rotation is in place: the new key does not get a fresh cap for this period.
    function test_rotateSessionKey_newKeyInheritsTheSpentAmount() public {
        submit(opBy(agentKey, 70e6));
        rotate(id, fresh);
        assertEq(account.getSpend(id, address(usd)).spent, 70e6);
        PackedUserOperation memory op = opBy(freshKey, 31e6);
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 31e6, 30e6)
        );
        submit(op);
        submit(opBy(freshKey, 30e6));
        assertEq(usd.balanceOf(alice), CAP, "both keys together: one cap");
        vm.warp(START + DAY); // the next period is the session's next period, nothing more
        submit(opBy(freshKey, CAP));
        assertEq(usd.balanceOf(alice), 2 * CAP);
    }

    function testFuzz_rotateSessionKey_bothKeysTogetherStayWithinTheCap(
        uint256 before,
        uint256 afterwards
    ) public {
        before = bound(before, 0, CAP);
        afterwards = bound(afterwards, 1, 2 * CAP);
        if (before != 0) submit(opBy(agentKey, before));
        rotate(id, fresh);
        PackedUserOperation memory op = opBy(freshKey, afterwards);
        if (before + afterwards > CAP) {
            expectValidationRevert(
                abi.encodeWithSelector(
                    ISakSessions.SpendCapExceeded.selector, address(usd), afterwards, CAP - before
                )
            );
            submit(op);
        } else {
            submit(op);
        }
        assertLe(usd.balanceOf(alice), CAP);
    }

    function test_rotateSessionKey_keepsTheIdBoundsAndCounters() public {
        ISakSessions.SessionConfig memory c = usdSession(CAP);
        c.maxOps = 3;
        id = grant(c);
        submit(opBy(agentKey, 1e6));
        submit(opBy(agentKey, 1e6));
        ISakSessions.SessionView memory s = account.getSession(id);
        rotate(id, fresh);
        ISakSessions.SessionView memory r = account.getSession(id);
        assertEq(r.signer, fresh);
        assertEq(r.validAfter, s.validAfter);
        assertEq(r.validUntil, s.validUntil);
        assertTrue(r.active);
        assertEq(account.getUsage(id).opsUsed, 2, "the operation count carries over");
        submit(opBy(freshKey, 1e6));
        PackedUserOperation memory op = opBy(freshKey, 1e6);
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.OperationLimitReached.selector, 3)
        );
        submit(op);
    }

    /// @dev Only the named session changes hands: another session of the same key stays.
    function test_rotateSessionKey_leavesOtherSessionsOfTheSameKey() public {
        uint32 second = grant(usdSession(CAP));
        rotate(id, fresh);
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1e6)));
        signSessionWith(op, second, now_(), agentKey);
        submit(op);
        assertEq(account.getSession(second).signer, agent);
    }

    function test_rotateSessionKey_emitsSessionKeyRotated() public {
        vm.expectEmit(true, true, false, false, address(account));
        emit ISakSessions.SessionKeyRotated(id, fresh);
        rotate(id, fresh);
    }

    // -------------------------------------------------------------------------------------
    // Refusals
    // -------------------------------------------------------------------------------------

    function test_rotateSessionKey_reverts_whenSignerIsZero() public {
        vm.prank(owner);
        vm.expectRevert(ISakSessions.InvalidSigner.selector);
        account.rotateSessionKey(id, address(0));
    }

    /// @dev Rotation cannot bring a revoked session back under a new key.
    function test_rotateSessionKey_reverts_whenRevoked() public {
        vm.prank(owner);
        account.revokeSession(id);
        vm.prank(owner);
        vm.expectRevert(notActive(id));
        account.rotateSessionKey(id, fresh);
    }

    function test_rotateSessionKey_reverts_afterRevokeAllSessions() public {
        vm.prank(owner);
        account.revokeAllSessions();
        vm.prank(owner);
        vm.expectRevert(notActive(id));
        account.rotateSessionKey(id, fresh);
    }

    function testFuzz_rotateSessionKey_reverts_whenIdUnknown(uint32 unknown) public {
        unknown = uint32(bound(unknown, 2, type(uint32).max));
        vm.prank(owner);
        vm.expectRevert(notActive(unknown));
        account.rotateSessionKey(unknown, fresh);
    }

    function testFuzz_rotateSessionKey_reverts_whenCallerIsNotTheOwner(uint160 raw) public {
        address caller = address(uint160(bound(raw, 0, type(uint160).max)));
        if (caller == owner || caller == address(account)) caller = alice;
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.rotateSessionKey(id, caller);
    }

    /// @dev The session's own key cannot hand the session on.
    function test_rotateSessionKey_reverts_whenCallerIsTheSessionSigner() public {
        vm.prank(agent);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, agent));
        account.rotateSessionKey(id, agent);
    }

    function testFuzz_rotateSessionKey_reverts_whenASessionCallsIt(bool throughTheAdapter) public {
        bytes memory data = abi.encodeCall(account.rotateSessionKey, (id, fresh));
        PackedUserOperation memory op = sessionOp(
            id, throughTheAdapter ? call(address(account), 0, data) : one(address(account), 0, data)
        );
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(account))
        );
        submit(op);
        assertEq(account.getSession(id).signer, agent);
    }

    function test_rotateSessionKey_byAnOwnerOp() public {
        PackedUserOperation memory op = userOp(
            executeData(
                one(address(account), 0, abi.encodeCall(account.rotateSessionKey, (id, fresh)))
            )
        );
        signOwner(op);
        submit(op);
        assertEq(account.getSession(id).signer, fresh);
    }
}
