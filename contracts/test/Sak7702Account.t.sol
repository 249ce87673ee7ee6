// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {Sak7702Account} from "../src/Sak7702Account.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {Target} from "./mocks/MockTarget.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice A delegate that scribbles over the low slots and other vendors' ERC-7201 roots, as
///         another wallet's 7702 implementation might.
contract ScribblingDelegate {
    function scribble() external {
        bytes32[4] memory roots = [
            bytes32(0),
            // OpenZeppelin Initializable, and an arbitrary vendor namespace.
            0xf0c57e16840df040f15088dc2f81fe391c3923bec73e23a9662efc9c229c6a00,
            keccak256("vendor.wallet.storage"),
            bytes32(uint256(1))
        ];
        for (uint256 i; i < roots.length; ++i) {
            for (uint256 j; j < 8; ++j) {
                bytes32 slot = bytes32(uint256(roots[i]) + j);
                assembly {
                    sstore(slot, not(0))
                }
            }
        }
    }
}

/// @notice A hostile earlier delegate: it knows sak's storage layout and plants everything a
///         session needs (records, caps, direct nonces) under the account's current salt and
///         every salt it can foresee, and sets the salt and the id counter to their maximum.
contract PlantingDelegate {
    /// @dev SessionLib's ERC-7201 root (`sak.storage.Sessions`) and its mappings' offsets.
    uint256 internal constant ROOT =
        0x6c24668be91564ec2123909ef66a85197a1bdc434ed464f6f97821436f5a1500;
    uint256 internal constant SESSIONS = 1;
    uint256 internal constant TOKENS = 3;
    uint256 internal constant DIRECT_NONCES = 8;

    function plant(address signer, address token) external {
        uint64 salt = type(uint64).max;
        // owner 0 ‖ salt ‖ next id: revoking by `++epoch`, or granting by `++nextId`, overflows.
        _store(
            keccak256(abi.encode(address(this), ROOT)),
            bytes32((uint256(type(uint32).max) << 224) | (uint256(salt) << 160))
        );
        uint64[4] memory salts;
        salts[0] = salt;
        unchecked {
            salts[1] = salt + 1; // the next "epoch", wrapped
        }
        // What a revoke-all in this very block would draw.
        salts[2] = uint64(
            uint256(
                keccak256(
                    abi.encode(salt, address(this), blockhash(block.number - 1), block.prevrandao)
                )
            )
        );
        salts[3] = uint64(uint256(keccak256(abi.encode(salt, address(this)))));
        for (uint256 i; i < salts.length; ++i) {
            for (uint32 id = 1; id <= 3; ++id) {
                bytes32 sKey = keccak256(abi.encode(salts[i], id));
                // signer ‖ validAfter 0 ‖ validUntil max ‖ flags: gas unlimited.
                _store(
                    _slot(sKey, SESSIONS),
                    bytes32(
                        uint256(uint160(signer)) | (uint256(type(uint40).max) << 200)
                            | (uint256(1) << 240)
                    )
                );
                // allowance max ‖ spent 0 ‖ window 0 ‖ period 1 day ‖ exists | transfer.
                _store(
                    _slot(keccak256(abi.encode(sKey, token)), TOKENS),
                    bytes32(
                        uint256(type(uint96).max) | (uint256(86_400) << 216) | (uint256(3) << 248)
                    )
                );
                _store(_slot(sKey, DIRECT_NONCES), bytes32(type(uint256).max));
            }
        }
    }

    /// @dev The slot of `mapping(bytes32 => mapping(address => ..))` at ROOT + offset, for
    ///      this account.
    function _slot(bytes32 key, uint256 offset) internal view returns (bytes32) {
        return keccak256(abi.encode(address(this), keccak256(abi.encode(key, ROOT + offset))));
    }

    function _store(bytes32 slot, bytes32 value) internal {
        assembly {
            sstore(slot, value)
        }
    }
}

/// @notice The EIP-7702 form: the EOA is the owner, sessions in namespaced storage.
contract Sak7702AccountTest is SakTest {
    Sak7702Account internal implementation;
    Sak7702Account internal eoa;

    function setUp() public override {
        super.setUp();
        implementation = new Sak7702Account(adapters);
        vm.signAndAttachDelegation(address(implementation), ownerKey);
        eoa = Sak7702Account(payable(owner));
        // The attached delegation takes effect with this call.
        assertEq(eoa.owner(), owner);
        vm.deal(owner, 10 ether);
        usd.mint(owner, 1_000_000e6);
        account = SakAccount(payable(owner)); // the fixture's helpers address `account`
    }

    function delegatedOp(bytes memory callData)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(callData);
        // EntryPoint v0.8 hashes the delegate of a 7702 sender when initCode carries the marker.
        op.initCode = abi.encodePacked(bytes20(bytes2(0x7702)));
    }

    function test_delegation_setsTheEoaAsOwner() public view {
        assertEq(owner.code, abi.encodePacked(hex"ef0100", address(implementation)));
        assertEq(eoa.owner(), owner);
        assertEq(address(eoa.entryPoint()), address(entryPoint));
    }

    function test_ownerOp_signedByTheEoaKey_executes() public {
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(alice, 7e6)));
        signOwner(op);
        submit(op);
        assertEq(usd.balanceOf(alice), 7e6);
    }

    function test_grantSession_byTheEoaItself() public {
        vm.prank(owner, owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        assertTrue(eoa.getSession(id).active);
    }

    function test_grantSession_reverts_forAnyoneElse_thereIsNothingToFrontRun(address stranger)
        public
    {
        vm.assume(stranger != owner && stranger != address(entryPoint));
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, stranger));
        eoa.grantSession(c);
    }

    function test_sessionOp_isCappedOnTheDelegatedEoa() public {
        vm.prank(owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(alice, 60e6)));
        signSession(op, id, now_());
        submit(op);
        assertEq(usd.balanceOf(alice), 60e6);

        op = delegatedOp(executeData(transferCall(alice, 60e6)));
        signSession(op, id, now_());
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 60e6, 40e6)
        );
        submit(op);
    }

    function test_sessionOp_withDataAfterThe7702Marker_isRefused() public {
        vm.prank(owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        // The EntryPoint would call the EOA with these bytes (from its SenderCreator) before
        // validation: the session refuses any initCode beyond the bare marker.
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(alice, 1e6)));
        op.initCode = abi.encodePacked(op.initCode, abi.encodeCall(ISakSessions.getSession, (id)));
        signSession(op, id, now_());
        expectValidationRevert(abi.encodeWithSelector(ISakSessions.SessionInitCode.selector));
        submit(op);
        // Any longer initCode, as the account's own validation sees it.
        op.initCode = abi.encodePacked(bytes20(address(0xbeef)), hex"01");
        signSession(op, id, now_());
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(entryPoint));
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionInitCode.selector));
        eoa.validateUserOp(op, hash, 0);
        // The bare marker is what a session op of a delegated EOA carries.
        op = delegatedOp(executeData(transferCall(alice, 1e6)));
        signSession(op, id, now_());
        submit(op);
        assertEq(usd.balanceOf(alice), 1e6);
    }

    function test_storageOfAnotherDelegate_neverYieldsASessionOrAnOwner() public {
        ScribblingDelegate other = new ScribblingDelegate();
        vm.signAndAttachDelegation(address(other), ownerKey);
        ScribblingDelegate(owner).scribble();
        vm.signAndAttachDelegation(address(implementation), ownerKey);
        assertEq(eoa.owner(), owner, "the owner is the EOA whatever the storage holds");
        for (uint32 id; id < 8; ++id) {
            assertFalse(eoa.getSession(id).active);
        }
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(alice, 1)));
        signSession(op, 1, now_());
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(entryPoint));
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, uint32(1)));
        eoa.validateUserOp(op, hash, 0);
    }

    function test_opSignedUnderAnotherDelegate_doesNotValidateHere() public {
        vm.prank(owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        ScribblingDelegate other = new ScribblingDelegate();
        vm.signAndAttachDelegation(address(other), ownerKey);
        vm.prank(owner);
        (bool ok,) = owner.call(""); // the delegation to `other` takes effect
        ok;
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(alice, 1e6)));
        signSession(op, id, now_()); // hash computed while delegated to `other`
        vm.signAndAttachDelegation(address(implementation), ownerKey);
        assertEq(eoa.owner(), owner);
        assertTrue(sigFailed(validate(op)), "the op hash binds the delegate");
    }

    /// @dev Delegates away to a hostile delegate that plants sessions for `attacker`, then,
    ///      in a later block, back: what sak's re-delegation does in one type-4 transaction
    ///      (the authorization, then the EOA's own call of revokeAllSessions).
    function redelegateAfterPlanting(address attacker, bool revoke) internal {
        PlantingDelegate hostile = new PlantingDelegate();
        vm.signAndAttachDelegation(address(hostile), ownerKey);
        PlantingDelegate(owner).plant(attacker, address(usd));
        vm.roll(block.number + 1);
        vm.prevrandao(keccak256("the next block"));
        vm.signAndAttachDelegation(address(implementation), ownerKey);
        if (revoke) {
            vm.prank(owner, owner);
            eoa.revokeAllSessions();
        }
    }

    function test_plantedSessions_liveUntilTheOwnerRevokes_soSakRevokesInTheSameTransaction()
        public
    {
        (address attacker, uint256 attackerKey) = makeAddrAndKey("attacker");
        redelegateAfterPlanting(attacker, false);
        // Re-delegation outside sak: the planted session is live (documented; `sak doctor`
        // flags it). Revoking must work whatever the storage holds.
        assertTrue(eoa.getSession(1).active, "planted under the current salt");
        vm.prank(owner, owner);
        eoa.revokeAllSessions();
        for (uint32 id = 1; id <= 3; ++id) {
            assertFalse(eoa.getSession(id).active, "planted sessions are out of reach");
            assertEq(eoa.directNonce(id), 0, "planted direct nonces too");
            assertEq(eoa.getSpend(id, address(usd)).allowance, 0, "and planted caps");
        }
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(attacker, 1e6)));
        signSessionWith(op, 1, now_(), attackerKey);
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(entryPoint));
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, uint32(1)));
        eoa.validateUserOp(op, hash, 0);
    }

    function test_afterHostileStorage_revokeAndGrantWork_andNewSessionsStartClean() public {
        (address attacker, uint256 attackerKey) = makeAddrAndKey("attacker");
        redelegateAfterPlanting(attacker, true);
        vm.prank(owner, owner);
        eoa.revokeAllSessions(); // again: no overflow, whatever was planted
        vm.prank(owner, owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        assertEq(id, 1, "a planted id counter restarts under the new salt");
        assertEq(eoa.getSession(id).signer, agent);
        assertEq(eoa.directNonce(id), 0);
        // The attacker's key signs nothing for the new session 1.
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(attacker, 1e6)));
        signSessionWith(op, id, now_(), attackerKey);
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA24 signature error")
        );
        submit(op);
        // The owner's session has exactly its own cap, no planted one.
        op = delegatedOp(executeData(transferCall(alice, 60e6)));
        signSession(op, id, now_());
        submit(op);
        op = delegatedOp(executeData(transferCall(alice, 60e6)));
        signSession(op, id, now_());
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 60e6, 40e6)
        );
        submit(op);
    }

    function test_recordUnderAnIdNeverIssued_neverActs() public {
        (address attacker, uint256 attackerKey) = makeAddrAndKey("attacker");
        vm.prank(owner, owner);
        uint32 issued = eoa.grantSession(usdSession(100e6));
        // Another delegate's write under the current salt, at the next id the account has not
        // issued yet: the signer slot of sessions[keccak(salt, 2)][eoa].
        bytes32 root = 0x6c24668be91564ec2123909ef66a85197a1bdc434ed464f6f97821436f5a1500;
        uint64 salt = uint64(uint256(vm.load(owner, keccak256(abi.encode(owner, root)))) >> 160);
        bytes32 sKey = keccak256(abi.encode(salt, uint32(issued + 1)));
        bytes32 slot = keccak256(abi.encode(owner, keccak256(abi.encode(sKey, uint256(root) + 1))));
        vm.store(
            owner, slot, bytes32(uint256(uint160(attacker)) | (uint256(type(uint40).max) << 200))
        );
        assertFalse(eoa.getSession(issued + 1).active, "not an issued id");
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(attacker, 1)));
        signSessionWith(op, issued + 1, now_(), attackerKey);
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(entryPoint));
        vm.expectRevert(
            abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, uint32(issued + 1))
        );
        eoa.validateUserOp(op, hash, 0);
    }

    function testFuzz_revokeAll_drawsAFreshSaltEachTime(bytes32 randao, uint8 blocks) public {
        vm.prank(owner, owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        uint256 snapshot = vm.snapshotState();
        vm.roll(block.number + blocks);
        vm.prevrandao(randao);
        vm.recordLogs();
        vm.startPrank(owner, owner);
        eoa.revokeAllSessions();
        eoa.revokeAllSessions(); // twice in one block: still two different salts
        vm.stopPrank();
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 2);
        uint64 first = abi.decode(logs[0].data, (uint64));
        uint64 second = abi.decode(logs[1].data, (uint64));
        assertTrue(first != second && first != 0 && second != 0, "fresh salts");
        assertFalse(eoa.getSession(id).active);
        // From the same stored state, a revoke in another block draws another salt: storage
        // alone does not tell what the next salt will be.
        vm.revertToState(snapshot);
        vm.roll(block.number + uint256(blocks) + 1);
        vm.prevrandao(keccak256(abi.encode(randao)));
        vm.recordLogs();
        vm.prank(owner, owner);
        eoa.revokeAllSessions();
        logs = vm.getRecordedLogs();
        assertTrue(abi.decode(logs[0].data, (uint64)) != first, "the block decides the salt");
    }

    function test_revokeAll_endsSessions_acrossRedelegation() public {
        vm.prank(owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        // The owner revokes before delegating away (the CLI does this); returning later does
        // not bring the session back.
        vm.prank(owner);
        eoa.revokeAllSessions();
        ScribblingDelegate other = new ScribblingDelegate();
        vm.signAndAttachDelegation(address(other), ownerKey);
        vm.signAndAttachDelegation(address(implementation), ownerKey);
        assertFalse(eoa.getSession(id).active);
    }

    // -------------------------------------------------------------------------------------
    // The adapter and key rotation on the delegated EOA
    // -------------------------------------------------------------------------------------

    /// @dev A session of the EOA permitting `target.ping`.
    function grantPing(Target target) internal returns (uint32 id) {
        ISakSessions.SessionConfig memory c = agentSession();
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), Target.ping.selector, false);
        vm.prank(owner);
        id = eoa.grantSession(c);
    }

    function test_sessionAdapter_isTheEoasClone_deployedByTheGrant() public {
        address adapter = eoa.sessionAdapter();
        assertEq(adapter, adapters.adapterOf(owner));
        assertEq(adapter.code.length, 0);
        grantPing(new Target());
        assertGt(adapter.code.length, 0);
    }

    function test_sessionOp_callsThroughTheEoasAdapter_neverAsTheEoa() public {
        Target target = new Target();
        uint32 id = grantPing(target);
        bytes memory ping = abi.encodeCall(Target.ping, (1, alice, 2));
        PackedUserOperation memory op = delegatedOp(executeData(call(address(target), 0, ping)));
        signSession(op, id, now_());
        submit(op);
        assertEq(target.lastCaller(), eoa.sessionAdapter());

        op = delegatedOp(executeData(one(address(target), 0, ping)));
        signSession(op, id, now_());
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.CallNotThroughAdapter.selector, address(target), Target.ping.selector
            )
        );
        submit(op);
    }

    function test_rotateSessionKey_byTheEoa_movesTheSessionToTheNewKey() public {
        (address fresh, uint256 freshKey) = makeAddrAndKey("fresh");
        vm.prank(owner);
        uint32 id = eoa.grantSession(usdSession(100e6));
        vm.prank(owner);
        eoa.rotateSessionKey(id, fresh);
        PackedUserOperation memory op = delegatedOp(executeData(transferCall(alice, 1e6)));
        signSession(op, id, now_());
        assertTrue(sigFailed(validate(op)), "the old key no longer signs for the session");
        op = delegatedOp(executeData(transferCall(alice, 1e6)));
        signSessionWith(op, id, now_(), freshKey);
        submit(op);
        assertEq(usd.balanceOf(alice), 1e6);
    }
}
