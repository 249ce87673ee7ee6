// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {Account as OZAccount} from "@openzeppelin/contracts/account/Account.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";
import {SakAccountFactory} from "../src/SakAccountFactory.sol";

/// @notice The owner path, the factory and initialisation.
contract SakAccountTest is SakTest {
    function test_ownerOp_executesBatchThroughEntryPoint() public {
        Execution[] memory calls = new Execution[](2);
        calls[0] = Execution(address(usd), 0, abi.encodeCall(usd.transfer, (alice, 5e6)));
        calls[1] = Execution(alice, 1 ether, "");
        PackedUserOperation memory op = userOp(executeData(calls));
        signOwner(op);
        submit(op);
        assertEq(usd.balanceOf(alice), 5e6);
        assertEq(alice.balance, 1 ether);
    }

    function test_ownerOp_failsSignature_whenSignedByAnotherKey() public {
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(agentKey, entryPoint.getUserOpHash(op));
        op.signature = abi.encodePacked(r, s, v);
        assertTrue(sigFailed(validate(op)));
    }

    function test_ownerSignature_rejectsHighS() public {
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, entryPoint.getUserOpHash(op));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        op.signature = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        assertTrue(sigFailed(validate(op)), "the malleable twin of a valid signature is refused");
    }

    function test_validateUserOp_reverts_whenCallerIsNotEntryPoint(address caller) public {
        vm.assume(caller != address(entryPoint));
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1)));
        signOwner(op);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(OZAccount.AccountUnauthorized.selector, caller));
        account.validateUserOp(op, bytes32(0), 0);
    }

    function test_execute_reverts_whenCallerIsNotEntryPointOrSelf(address caller) public {
        vm.assume(caller != address(entryPoint) && caller != address(account));
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(OZAccount.AccountUnauthorized.selector, caller));
        account.execute(BATCH_MODE, abi.encode(transferCall(alice, 1)));
    }

    // Owner transfer (two steps)

    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    function test_transferOwnership_takesEffectOnlyWhenAccepted() public {
        (address next, uint256 nextKey) = makeAddrAndKey("next owner");
        uint32 id = grant(agentSession());
        vm.expectEmit(address(account));
        emit OwnershipTransferStarted(owner, next);
        vm.prank(owner);
        account.transferOwnership(next);
        assertEq(account.pendingOwner(), next);
        assertEq(account.owner(), owner, "nothing changes before acceptance");

        vm.expectEmit(address(account));
        emit OwnershipTransferred(owner, next);
        vm.prank(next);
        account.acceptOwnership();
        assertEq(account.owner(), next);
        assertEq(account.pendingOwner(), address(0));

        // The old key is nobody now: its calls and its signed operations fail.
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, owner));
        account.revokeSession(id);
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1)));
        signOwner(op);
        assertTrue(sigFailed(validate(op)), "the old owner's signature");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(nextKey, entryPoint.getUserOpHash(op));
        op.signature = abi.encodePacked(r, s, v);
        assertFalse(sigFailed(validate(op)), "the new owner's signature");
        // Sessions belong to the account: still live, and the new owner manages them.
        assertTrue(account.getSession(id).active);
        vm.prank(next);
        account.revokeSession(id);
        assertFalse(account.getSession(id).active);
    }

    function test_transferOwnership_throughAnOwnerOperation() public {
        address next = makeAddr("next owner");
        Execution[] memory calls = new Execution[](1);
        calls[0] = Execution(address(account), 0, abi.encodeCall(account.transferOwnership, (next)));
        PackedUserOperation memory op = userOp(executeData(calls));
        signOwner(op);
        submit(op);
        assertEq(account.pendingOwner(), next);
    }

    function test_transferOwnership_reverts_toTheAccountItself() public {
        vm.prank(owner);
        vm.expectRevert(SakAccount.InvalidOwner.selector);
        account.transferOwnership(address(account));
    }

    function testFuzz_transferOwnership_reverts_whenCallerIsNotTheOwner(address caller) public {
        vm.assume(caller != owner && caller != address(account));
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.transferOwnership(caller);
    }

    function testFuzz_acceptOwnership_reverts_forAnyoneButTheProposedOwner(address caller) public {
        address next = makeAddr("next owner");
        vm.assume(caller != next);
        // Nothing proposed: nobody, not even address(0)'s caller, can accept.
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.acceptOwnership();
        vm.prank(owner);
        account.transferOwnership(next);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.acceptOwnership();
        // Withdrawn: the proposed owner cannot accept any more.
        vm.prank(owner);
        account.transferOwnership(address(0));
        vm.prank(next);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, next));
        account.acceptOwnership();
        assertEq(account.owner(), owner);
    }

    function test_factory_deploysAtCounterfactualAddress_andIsIdempotent() public {
        address predicted = factory.getAddress(alice, bytes32(uint256(7)));
        assertEq(predicted.code.length, 0);
        SakAccount created = factory.createAccount(alice, bytes32(uint256(7)));
        assertEq(address(created), predicted);
        assertEq(created.owner(), alice);
        assertEq(address(factory.createAccount(alice, bytes32(uint256(7)))), predicted);
        assertNotEq(
            factory.getAddress(owner, bytes32(uint256(7))),
            predicted,
            "owner is part of the address"
        );
    }

    function test_factory_reverts_whenImplementationHasNoCode() public {
        vm.expectRevert(abi.encodeWithSelector(SakAccountFactory.NoImplementation.selector, alice));
        new SakAccountFactory(SakAccount(payable(alice)));
    }

    function test_initialize_reverts_onceInitialised() public {
        vm.expectRevert(SakAccount.AlreadyInitialized.selector);
        account.initialize(alice);
    }

    function test_initialize_reverts_onTheImplementation() public {
        SakAccount implementation = factory.IMPLEMENTATION();
        vm.expectRevert(SakAccount.AlreadyInitialized.selector);
        implementation.initialize(alice);
    }

    function test_entryPoint_isV08() public view {
        assertEq(address(account.entryPoint()), address(entryPoint));
    }

    /// @dev Each account's adapter is its own clone of the factory it was built with, at an
    ///      address known before it exists (the first grant deploys it).
    function test_sessionAdapter_isTheAdapterFactorysCloneForThisAccount() public {
        address adapter = account.sessionAdapter();
        assertEq(adapter, adapters.adapterOf(address(account)));
        SakAccount second = factory.createAccount(owner, bytes32(uint256(1)));
        assertNotEq(second.sessionAdapter(), adapter, "one adapter per account");
        assertEq(adapter.code.length, 0);
        vm.prank(owner);
        account.grantSession(usdSession(1e6));
        assertGt(adapter.code.length, 0);
    }
}
