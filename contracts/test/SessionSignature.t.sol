// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Account as OZAccount} from "@openzeppelin/contracts/account/Account.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";
import {SessionEnvelope} from "./utils/SessionEnvelope.sol";

/// @notice The session signature `0x02 ‖ id ‖ clock ‖ deadline ‖ r ‖ s ‖ v` and the session's
///         nonce lanes: who signed, what it binds, how malformed envelopes are refused, and
///         that sessions and the owner never share a nonce.
contract SessionSignatureTest is SakTest {
    uint256 internal constant N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    uint32 internal id;
    address internal mallory;
    uint256 internal malloryKey;

    function setUp() public override {
        super.setUp();
        (mallory, malloryKey) = makeAddrAndKey("mallory");
        id = grant(usdSession(100e6)); // 1
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.signer = mallory;
        grant(c); // 2
        grant(usdSession(100e6)); // 3: agent again, one bit away from id 1
    }

    function op() internal view returns (PackedUserOperation memory) {
        return sessionOp(id, transferCall(alice, 1e6));
    }

    /// @dev validateUserOp as the EntryPoint; `ok` false when it reverted.
    function tryValidate(PackedUserOperation memory o) internal returns (bool ok, uint256 vd) {
        bytes32 hash = entryPoint.getUserOpHash(o);
        vm.prank(address(entryPoint));
        try account.validateUserOp(o, hash, 0) returns (uint256 data) {
            return (true, data);
        } catch {
            return (false, 0);
        }
    }

    function assertNeverValid(PackedUserOperation memory o) internal {
        (bool ok, uint256 vd) = tryValidate(o);
        if (ok) {
            assertTrue(sigFailed(vd), "a tampered signature validated");
            assertEq(uint160(vd), 1, "the aggregator field is 0 or 1");
        }
    }

    function malformed() internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.MalformedSessionSignature.selector);
    }

    /// @dev Replaces the 65-byte ECDSA part of `o`'s envelope.
    function withEcdsa(PackedUserOperation memory o, bytes32 r, bytes32 s, uint8 v) internal pure {
        bytes memory sig = o.signature;
        assembly ("memory-safe") {
            mstore(add(sig, 0x2f), r) // 0x20 + 15 header bytes
            mstore(add(sig, 0x4f), s)
            mstore8(add(sig, 0x6f), v)
        }
    }

    function ecdsaOf(PackedUserOperation memory o)
        internal
        pure
        returns (bytes32 r, bytes32 s, uint8 v)
    {
        bytes memory sig = o.signature;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x2f))
            s := mload(add(sig, 0x4f))
            v := byte(0, mload(add(sig, 0x6f)))
        }
    }

    /// @dev Signs `o` for session `id` with its nonce as it is (even in the owner's key 0).
    function signInPlace(PackedUserOperation memory o) internal view {
        uint40 deadline = SessionEnvelope.NO_DEADLINE;
        bytes32 digest = SessionEnvelope.digest(entryPoint.getUserOpHash(o), id, now_(), deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(agentKey, digest);
        o.signature = SessionEnvelope.encode(id, now_(), deadline, v, r, s);
    }

    // -------------------------------------------------------------------------------------
    // Signer
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_succeeds_forTheSessionSigner() public {
        (bool ok, uint256 vd) = tryValidate(op());
        assertTrue(ok);
        assertFalse(sigFailed(vd));
    }

    function test_validateUserOp_returnsSigFailed_whenSignedByAnotherKey() public {
        PackedUserOperation memory o = op();
        signSessionWith(o, id, now_(), malloryKey);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok, "a wrong signer is a failed signature, not a revert");
        assertTrue(sigFailed(vd));
    }

    function test_handleOps_reverts_AA24_whenSignedByAnotherKey() public {
        PackedUserOperation memory o = op();
        signSessionWith(o, id, now_(), ownerKey); // even the owner's key is not this session's
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = o;
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA24 signature error")
        );
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
    }

    function testFuzz_validateUserOp_reverts_whenSessionIdUnknown(uint32 unknown) public {
        unknown = uint32(bound(unknown, 4, type(uint32).max));
        PackedUserOperation memory o = op();
        o.nonce = 0; // into session `unknown`'s lane
        signSession(o, unknown, now_());
        expectValidateRevert(
            o, abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, unknown)
        );
    }

    function test_validateUserOp_reverts_whenSessionIdZero() public {
        PackedUserOperation memory o = op();
        o.nonce = 0;
        signSession(o, 0, now_());
        expectValidateRevert(o, abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, 0));
    }

    function test_validateUserOp_returnsSigFailed_forAnotherSessionOfTheSameSigner() public {
        // Signed for session 3 (in session 1's nonce lane), presented as session 1: the id is
        // part of the digest.
        PackedUserOperation memory o = op();
        signSession(o, 3, now_());
        bytes memory sig = o.signature;
        sig[4] = bytes1(uint8(1));
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertTrue(sigFailed(vd));
    }

    // -------------------------------------------------------------------------------------
    // ECDSA edge cases
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_returnsSigFailed_forTheHighSTwin() public {
        PackedUserOperation memory o = op();
        (bytes32 r, bytes32 s, uint8 v) = ecdsaOf(o);
        withEcdsa(o, r, bytes32(N - uint256(s)), v == 27 ? 28 : 27);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertTrue(sigFailed(vd), "the malleable twin of a valid signature is refused");
    }

    function testFuzz_validateUserOp_returnsSigFailed_whenVIsChanged(uint8 v) public {
        PackedUserOperation memory o = op();
        (bytes32 r, bytes32 s, uint8 good) = ecdsaOf(o);
        v = uint8(bound(v, 0, 254));
        if (v >= good) v += 1;
        withEcdsa(o, r, s, v);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertTrue(sigFailed(vd));
    }

    function test_validateUserOp_returnsSigFailed_whenRIsZero() public {
        PackedUserOperation memory o = op();
        (, bytes32 s, uint8 v) = ecdsaOf(o);
        withEcdsa(o, 0, s, v);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertTrue(sigFailed(vd));
    }

    function test_validateUserOp_returnsSigFailed_whenSIsZero() public {
        PackedUserOperation memory o = op();
        (bytes32 r,, uint8 v) = ecdsaOf(o);
        withEcdsa(o, r, 0, v);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertTrue(sigFailed(vd));
    }

    function test_validateUserOp_reverts_forTheCompactEip2098Form() public {
        PackedUserOperation memory o = op();
        (bytes32 r, bytes32 s, uint8 v) = ecdsaOf(o);
        bytes32 vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
        o.signature = abi.encodePacked(uint8(2), id, now_(), SessionEnvelope.NO_DEADLINE, r, vs); // 79
        expectValidateRevert(o, malformed());
    }

    // -------------------------------------------------------------------------------------
    // Every envelope byte is bound (SECURITY #3)
    // -------------------------------------------------------------------------------------

    function testFuzz_validateUserOp_neverSucceeds_whenAnyEnvelopeByteIsFlipped(
        uint256 index,
        uint256 mask
    ) public {
        PackedUserOperation memory o = op();
        index = bound(index, 0, 79);
        mask = bound(mask, 1, 255);
        o.signature[index] = bytes1(uint8(o.signature[index]) ^ uint8(mask));
        assertNeverValid(o);
    }

    function testFuzz_validateUserOp_neverSucceeds_whenTheClockIsChanged(uint40 clock) public {
        // Any other claim inside the session, where the policy itself would accept it.
        PackedUserOperation memory o = op();
        clock = uint40(bound(clock, START + 1, START + DAY - 1));
        bytes memory sig = o.signature;
        for (uint256 i; i < 5; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) one byte of the uint40
            sig[5 + i] = bytes1(uint8(clock >> (8 * (4 - i))));
        }
        assertNeverValid(o);
    }

    function testFuzz_validateUserOp_neverSucceeds_forRandomSignatures(
        bytes32[3] memory words,
        uint256 length
    ) public {
        PackedUserOperation memory o = op();
        bytes memory sig = abi.encodePacked(words);
        length = bound(length, 0, 96);
        assembly ("memory-safe") {
            mstore(sig, length)
        }
        o.signature = sig;
        assertNeverValid(o);
    }

    // -------------------------------------------------------------------------------------
    // Exact length and tag (SECURITY #4)
    // -------------------------------------------------------------------------------------

    function testFuzz_validateUserOp_reverts_whenBytesAreAppended(uint256 extra) public {
        PackedUserOperation memory o = op();
        extra = bound(extra, 1, 256);
        o.signature = bytes.concat(o.signature, new bytes(extra));
        expectValidateRevert(o, malformed());
    }

    function testFuzz_validateUserOp_refuses_truncatedSignatures(uint256 length) public {
        PackedUserOperation memory o = op();
        length = bound(length, 0, 79);
        bytes memory sig = o.signature;
        assembly ("memory-safe") {
            mstore(sig, length)
        }
        if (length == 65) {
            // 65 bytes is the owner's form, and the owner never signs in a session's lane.
            expectValidateRevert(
                o,
                abi.encodeWithSelector(
                    SakAccountBase.ReservedNonceKey.selector, uint192(o.nonce >> 64)
                )
            );
        } else {
            expectValidateRevert(o, malformed());
        }
    }

    function testFuzz_validateUserOp_reverts_whenTagIsWrong(uint8 tag) public {
        PackedUserOperation memory o = op();
        tag = uint8(bound(tag, 0, 254));
        if (tag >= 2) tag += 1; // format 1 (0x01, 75 bytes) is refused too
        o.signature[0] = bytes1(tag);
        expectValidateRevert(o, malformed());
    }

    // -------------------------------------------------------------------------------------
    // Replay across accounts, chains and EntryPoints (SECURITY #7, #8)
    // -------------------------------------------------------------------------------------

    function test_handleOps_reverts_AA24_whenReplayedOnAnotherAccountOfTheSameAgent() public {
        SakAccount other = factory.createAccount(owner, bytes32(uint256(1)));
        vm.deal(address(other), 1 ether);
        usd.mint(address(other), 1_000e6);
        vm.prank(owner);
        assertEq(other.grantSession(usdSession(100e6)), 1, "same id, same agent on both");

        PackedUserOperation memory o = sessionOp(1, transferCall(alice, 1e6)); // for `account`
        o.sender = address(other);
        o.nonce = entryPoint.getNonce(address(other), SessionEnvelope.nonceKey(1, 0));

        bytes32 hash = entryPoint.getUserOpHash(o);
        vm.prank(address(entryPoint));
        assertTrue(sigFailed(other.validateUserOp(o, hash, 0)));

        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = o;
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA24 signature error")
        );
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
        assertEq(usd.balanceOf(alice), 0);
    }

    function testFuzz_validateUserOp_returnsSigFailed_onAnotherChain(uint64 chainId) public {
        PackedUserOperation memory o = op();
        chainId = uint64(bound(chainId, 1, type(uint64).max));
        if (chainId == block.chainid) chainId += 1;
        vm.chainId(chainId);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertTrue(sigFailed(vd), "the EntryPoint hash binds the chain id");
    }

    function test_validateUserOp_reverts_whenCalledByAnotherEntryPoint() public {
        bytes memory initcode = vm.parseJsonBytes(vm.readFile(ENTRY_POINT_ARTIFACT), ".bytecode");
        address second;
        assembly ("memory-safe") {
            second := create(0, add(initcode, 0x20), mload(initcode))
        }
        assertTrue(second != address(0) && second != address(entryPoint));
        PackedUserOperation memory o = op();
        bytes32 hash = entryPoint.getUserOpHash(o);
        vm.prank(second);
        vm.expectRevert(abi.encodeWithSelector(OZAccount.AccountUnauthorized.selector, second));
        account.validateUserOp(o, hash, 0);
    }

    // -------------------------------------------------------------------------------------
    // Nonce lanes: the owner's and each session's are disjoint (issue 14 item 2, SECURITY #74)
    // -------------------------------------------------------------------------------------

    /// @dev A session cannot take the nonce of the owner's pending operation (a revoke sent as
    ///      a user operation, say) to void it: the owner's lanes are not the session's.
    function test_sessionOp_cannotVoidTheOwnersPendingOp() public {
        PackedUserOperation memory ownerOp = userOp(
            executeData(one(address(account), 0, abi.encodeCall(account.revokeSession, (id))))
        );
        signOwner(ownerOp); // signed, not yet included
        PackedUserOperation memory attack = sessionOp(id, transferCall(alice, 1e6));
        attack.nonce = ownerOp.nonce;
        signInPlace(attack);
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = attack;
        vm.expectRevert(
            abi.encodeWithSelector(
                IEntryPoint.FailedOpWithRevert.selector,
                0,
                "AA23 reverted",
                abi.encodeWithSelector(ISakSessions.SessionNonceKey.selector, uint192(0))
            )
        );
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
        submit(ownerOp);
        assertFalse(account.getSession(id).active, "the owner's revoke went through");
    }

    /// @dev Any nonce key but the session's own tag and id is refused, before the signature.
    function testFuzz_sessionOp_reverts_outsideItsOwnLanes(uint192 key) public {
        vm.assume(key >> 128 != (uint192(SessionEnvelope.NONCE_TAG) << 32) | id);
        PackedUserOperation memory o = op();
        o.nonce = uint256(key) << 64;
        signInPlace(o);
        expectValidateRevert(o, abi.encodeWithSelector(ISakSessions.SessionNonceKey.selector, key));
    }

    /// @dev Another session's lane, with a valid signature of this session: refused.
    function test_sessionOp_reverts_inAnotherSessionsLane() public {
        PackedUserOperation memory o = op();
        o.nonce = entryPoint.getNonce(address(account), SessionEnvelope.nonceKey(3, 0));
        signSession(o, id, now_());
        expectValidateRevert(
            o,
            abi.encodeWithSelector(
                ISakSessions.SessionNonceKey.selector, SessionEnvelope.nonceKey(3, 0)
            )
        );
    }

    /// @dev Every lane of the session's 128-bit lane space works (parallel workers).
    function testFuzz_sessionOp_validates_inAnyOfItsLanes(uint128 lane) public {
        PackedUserOperation memory o = op();
        o.nonce = entryPoint.getNonce(address(account), SessionEnvelope.nonceKey(id, lane));
        signSession(o, id, now_());
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertFalse(sigFailed(vd));
    }

    /// @dev The owner may not sign in a session's lanes.
    function testFuzz_ownerOp_reverts_inASessionLane(uint32 sid, uint128 lane) public {
        PackedUserOperation memory o = userOp(executeData(transferCall(alice, 1e6)));
        uint192 key = SessionEnvelope.nonceKey(sid, lane);
        o.nonce = entryPoint.getNonce(address(account), key);
        signOwner(o);
        expectValidateRevert(
            o, abi.encodeWithSelector(SakAccountBase.ReservedNonceKey.selector, key)
        );
    }

    // -------------------------------------------------------------------------------------
    // The signed deadline (truthful outcomes: an unknown operation becomes certainly void)
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_returnsTheDeadline_asValidUntil() public {
        PackedUserOperation memory o = op();
        uint40 deadline = now_() + 120;
        signSessionUntil(o, id, now_(), deadline, agentKey);
        (bool ok, uint256 vd) = tryValidate(o);
        assertTrue(ok);
        assertFalse(sigFailed(vd));
        assertEq(validUntilOf(vd), deadline, "the deadline narrows the period's end");
    }

    function test_validateUserOp_keepsThePeriodEnd_whenTheDeadlineIsLater() public {
        PackedUserOperation memory o = op();
        signSessionUntil(o, id, now_(), now_() + uint40(2 * DAY), agentKey);
        (, uint256 vd) = tryValidate(o);
        assertEq(validUntilOf(vd), START + DAY - 1, "the charged period still bounds it");
    }

    function test_handleOps_refusesTheOp_afterItsDeadline() public {
        PackedUserOperation memory o = op();
        uint40 deadline = now_() + 120;
        signSessionUntil(o, id, now_(), deadline, agentKey);
        vm.warp(deadline + 1);
        expectNotDue(o);
        assertEq(usd.balanceOf(alice), 0);
        vm.warp(deadline);
        submit(o);
        assertEq(usd.balanceOf(alice), 1e6, "up to the deadline itself it runs");
    }

    function testFuzz_validateUserOp_reverts_whenTheDeadlineIsBeforeTheClock(uint40 before) public {
        PackedUserOperation memory o = op();
        before = uint40(bound(before, 0, now_() - 1));
        signSessionUntil(o, id, now_(), before, agentKey);
        expectValidateRevert(
            o, abi.encodeWithSelector(ISakSessions.DeadlineBeforeClock.selector, now_(), before)
        );
    }

    function test_sessionDigest_isDomainSeparated() public view {
        bytes32 hash = entryPoint.getUserOpHash(op());
        bytes32 digest = SessionEnvelope.digest(hash, id, now_(), 7);
        assertTrue(digest != keccak256(abi.encode(hash, id, now_(), 7)), "a bare struct hash");
        assertTrue(digest != keccak256(abi.encode(hash, id, now_())), "format 1");
        assertEq(
            SessionEnvelope.domainSeparator(),
            0xe4711062005f1517384a3f24ae19dcf4da5039fb5cd91d906d709b0f81614cb9
        );
    }

    // -------------------------------------------------------------------------------------
    // ERC-1271 (SECURITY #13)
    // -------------------------------------------------------------------------------------

    function test_isValidSignature_neverAcceptsASessionKey() public view {
        bytes32 hash = keccak256("PermitTransferFrom(...)");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(agentKey, hash);
        uint40 deadline = SessionEnvelope.NO_DEADLINE;
        (uint8 ve, bytes32 re, bytes32 se) =
            vm.sign(agentKey, SessionEnvelope.digest(hash, id, now_(), deadline));
        bytes[2] memory sigs =
            [abi.encodePacked(r, s, v), SessionEnvelope.encode(id, now_(), deadline, ve, re, se)];
        for (uint256 i; i < sigs.length; ++i) {
            (bool ok, bytes memory ret) = address(account)
                .staticcall(abi.encodeWithSelector(bytes4(0x1626ba7e), hash, sigs[i]));
            assertFalse(
                ok && ret.length >= 32 && bytes4(ret) == bytes4(0x1626ba7e),
                "the account signed for a session key"
            );
        }
    }
}
