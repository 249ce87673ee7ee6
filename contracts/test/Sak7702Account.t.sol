// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {Sak7702Account} from "../src/Sak7702Account.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {Target} from "./mocks/MockTarget.sol";

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
