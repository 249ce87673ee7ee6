// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Account as OZAccount} from "@openzeppelin/contracts/account/Account.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../src/SakAccount.sol";

/// @notice The session signature `0x01 ‖ id ‖ clock ‖ r ‖ s ‖ v`: who signed, what it binds,
///         and how malformed envelopes are refused.
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
            mstore(add(sig, 0x2a), r) // 0x20 + 10 header bytes
            mstore(add(sig, 0x4a), s)
            mstore8(add(sig, 0x6a), v)
        }
    }

    function ecdsaOf(PackedUserOperation memory o)
        internal
        pure
        returns (bytes32 r, bytes32 s, uint8 v)
    {
        bytes memory sig = o.signature;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x2a))
            s := mload(add(sig, 0x4a))
            v := byte(0, mload(add(sig, 0x6a)))
        }
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
        signSession(o, unknown, now_());
        expectValidateRevert(
            o, abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, unknown)
        );
    }

    function test_validateUserOp_reverts_whenSessionIdZero() public {
        PackedUserOperation memory o = op();
        signSession(o, 0, now_());
        expectValidateRevert(o, abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, 0));
    }

    function test_validateUserOp_returnsSigFailed_forAnotherSessionOfTheSameSigner() public {
        // Signed for session 3, presented as session 1: the id is part of the digest.
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
        o.signature = abi.encodePacked(uint8(1), id, now_(), r, vs); // 74 bytes
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
        index = bound(index, 0, 74);
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
        length = bound(length, 0, 74);
        bytes memory sig = o.signature;
        assembly ("memory-safe") {
            mstore(sig, length)
        }
        if (length == 65) {
            // 65 bytes is the owner's form: checked against the owner, so it fails.
            (bool ok, uint256 vd) = tryValidate(o);
            assertTrue(ok);
            assertTrue(sigFailed(vd));
        } else {
            expectValidateRevert(o, malformed());
        }
    }

    function testFuzz_validateUserOp_reverts_whenTagIsWrong(uint8 tag) public {
        PackedUserOperation memory o = op();
        tag = uint8(bound(tag, 0, 254));
        if (tag >= 1) tag += 1;
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
        o.nonce = entryPoint.getNonce(address(other), 0);

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
    // ERC-1271 (SECURITY #13)
    // -------------------------------------------------------------------------------------

    function test_isValidSignature_neverAcceptsASessionKey() public view {
        bytes32 hash = keccak256("PermitTransferFrom(...)");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(agentKey, hash);
        (uint8 ve, bytes32 re, bytes32 se) =
            vm.sign(agentKey, keccak256(abi.encode(hash, id, now_())));
        bytes[2] memory sigs =
            [abi.encodePacked(r, s, v), abi.encodePacked(uint8(1), id, now_(), re, se, ve)];
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
