// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {
    Execution,
    MODULE_TYPE_VALIDATOR
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {Vm} from "forge-std/Vm.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {Sak7579Account} from "../src/Sak7579Account.sol";
import {Sak7579AccountFactory} from "../src/Sak7579AccountFactory.sol";
import {SessionKeyValidator} from "../src/SessionKeyValidator.sol";
import {SessionEnvelope} from "./utils/SessionEnvelope.sol";

/// @notice The modular form: an OpenZeppelin ERC-7579 account owned by one key, with sak's
///         module installed at creation; the owner acts by owner operations only.
contract Sak7579AccountTest is SakTest {
    SessionKeyValidator internal module;
    Sak7579AccountFactory internal factory7579;
    Sak7579Account internal modular;

    function setUp() public override {
        super.setUp();
        module = new SessionKeyValidator(adapters);
        factory7579 = new Sak7579AccountFactory(new Sak7579Account(address(module)));
        modular = factory7579.createAccount(owner, bytes32(uint256(7)));
        vm.deal(address(modular), 10 ether);
        usd.mint(address(modular), 1_000_000e6);
    }

    /// @dev An operation of `modular` for `calls`, on nonce key `key`.
    function opOf(Execution[] memory calls, uint192 key)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(calls));
        op.sender = address(modular);
        op.nonce = entryPoint.getNonce(address(modular), key);
    }

    /// @dev An owner operation of `modular` (nonce key 0) for `calls`, signed with `key`.
    function ownerOp(Execution[] memory calls, uint256 key)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = opOf(calls, 0);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, entryPoint.getUserOpHash(op));
        op.signature = abi.encodePacked(r, s, v);
    }

    /// @dev The owner grants `c` through an owner operation; returns the session's id.
    function ownerGrants(ISakSessions.SessionConfig memory c) internal returns (uint32) {
        submit(ownerOp(one(address(module), 0, abi.encodeCall(module.grantSession, (c))), ownerKey));
        return module.getSession(address(modular), 1).active ? 1 : 0;
    }

    function sessionOpOf(uint32 id, Execution[] memory calls)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = opOf(calls, SessionEnvelope.moduleNonceKey(address(module), id));
        signSessionWith(op, id, now_(), agentKey);
    }

    function test_factory_deploysAtThePredictedAddress_once_withTheModuleInstalled() public {
        assertEq(factory7579.getAddress(owner, bytes32(uint256(7))), address(modular));
        assertEq(
            address(factory7579.createAccount(owner, bytes32(uint256(7)))),
            address(modular),
            "idempotent"
        );
        assertTrue(modular.isModuleInstalled(MODULE_TYPE_VALIDATOR, address(module), ""));
        assertTrue(module.isInitialized(address(modular)));
        assertEq(modular.owner(), owner);
        assertEq(address(modular.entryPoint()), address(entryPoint));
        assertNotEq(
            factory7579.getAddress(alice, bytes32(uint256(7))), address(modular), "per owner"
        );
    }

    function test_initialize_reverts_onTheImplementation_onAClone_andForNoOwner() public {
        Sak7579Account implementation = factory7579.IMPLEMENTATION();
        vm.expectRevert(Sak7579Account.AlreadyInitialized.selector);
        implementation.initialize(alice);
        vm.expectRevert(Sak7579Account.AlreadyInitialized.selector);
        modular.initialize(alice);
        vm.expectRevert(Sak7579Account.InvalidOwner.selector);
        factory7579.createAccount(address(0), bytes32(0));
    }

    function test_factory_refusesAnImplementationWithoutCode() public {
        vm.expectRevert(
            abi.encodeWithSelector(Sak7579AccountFactory.NoImplementation.selector, alice)
        );
        new Sak7579AccountFactory(Sak7579Account(payable(alice)));
    }

    function test_onlyTheEntryPointOrTheAccountExecutes() public {
        vm.prank(owner); // even the owner's key acts through an owner operation only
        vm.expectRevert();
        modular.execute(BATCH_MODE, abi.encode(transferCall(alice, 1e6)));
    }

    function test_ownerOperation_runsCalls_anotherKeysDoesNot() public {
        submit(ownerOp(transferCall(alice, 5e6), ownerKey));
        assertEq(usd.balanceOf(alice), 5e6);
        PackedUserOperation memory op = ownerOp(transferCall(alice, 5e6), agentKey);
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA24 signature error")
        );
        submit(op);
    }

    function test_ownerGrants_sessionIsCapped_andTheGrantNamesTheAccount() public {
        vm.recordLogs();
        uint32 id = ownerGrants(usdSession(100e6));
        assertEq(id, 1);
        bool named;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(module)
                    && logs[i].topics[0] == SessionKeyValidator.AccountSessionGranted.selector
            ) {
                assertEq(logs[i].topics[1], bytes32(uint256(uint160(address(modular)))));
                assertEq(logs[i].topics[2], bytes32(uint256(id)));
                assertEq(logs[i].topics[3], bytes32(uint256(uint160(agent))));
                named = true;
            }
        }
        assertTrue(named, "AccountSessionGranted names the account");
        vm.warp(START + 1); // the module's first second of a period is not usable (see the module's tests)
        submit(sessionOpOf(id, transferCall(alice, 70e6)));
        assertEq(usd.balanceOf(alice), 70e6);
        PackedUserOperation memory op = sessionOpOf(id, transferCall(alice, 31e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 31e6, 30e6)
        );
        submit(op);
    }

    function test_sessionKey_cannotUseTheOwnersLane() public {
        uint32 id = ownerGrants(usdSession(100e6));
        vm.warp(START + 1);
        // A session signature on the owner's nonce key 0: validated as the owner's, and refused.
        PackedUserOperation memory op = opOf(transferCall(alice, 1e6), 0);
        bytes32 digest = SessionEnvelope.digest(
            entryPoint.getUserOpHash(op), id, now_(), SessionEnvelope.NO_DEADLINE
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(agentKey, digest);
        op.signature = SessionEnvelope.encode(id, now_(), SessionEnvelope.NO_DEADLINE, v, r, s);
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA24 signature error")
        );
        submit(op);
        assertEq(usd.balanceOf(alice), 0);
    }

    function test_ownerRevokesAll_byOwnerOperation_andTheSessionStops() public {
        uint32 id = ownerGrants(usdSession(100e6));
        vm.warp(START + 1);
        submit(
            ownerOp(one(address(module), 0, abi.encodeCall(module.revokeAllSessions, ())), ownerKey)
        );
        assertFalse(module.getSession(address(modular), id).active);
        PackedUserOperation memory op = sessionOpOf(id, transferCall(alice, 1e6));
        vm.expectRevert();
        submit(op);
        assertEq(usd.balanceOf(alice), 0);
    }
}
