// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {
    Execution,
    MODULE_TYPE_VALIDATOR
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SessionKeyValidator} from "../src/SessionKeyValidator.sol";
import {MockERC7579Account} from "../src/mocks/MockERC7579Account.sol";

/// @notice The ERC-7579 module: same engine, state per account, nothing privileged reachable.
contract SessionKeyValidatorTest is SakTest {
    SessionKeyValidator internal module;
    MockERC7579Account internal modular;
    MockERC7579Account internal other;
    uint32 internal id;

    function setUp() public override {
        super.setUp();
        module = new SessionKeyValidator();
        modular = new MockERC7579Account(address(module));
        other = new MockERC7579Account(address(module));
        vm.deal(address(modular), 10 ether);
        usd.mint(address(modular), 1_000_000e6);
        vm.prank(address(modular)); // the account's owner operation calls the module
        id = module.grantSession(usdSession(100e6));
    }

    function moduleOp(MockERC7579Account acct, Execution[] memory calls)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(calls));
        op.sender = address(acct);
        // OpenZeppelin's ERC-7579 account routes validation by the nonce key's top 20 bytes.
        uint192 key = uint192(uint256(uint160(address(module))) << 32);
        op.nonce = entryPoint.getNonce(address(acct), key);
        signSession(op, id, now_());
    }

    function test_sessionOp_onAModularAccount_isCapped() public {
        submit(moduleOp(modular, transferCall(alice, 70e6)));
        assertEq(usd.balanceOf(alice), 70e6);
        assertEq(module.getSpend(address(modular), id, address(usd)).spent, 70e6);
        PackedUserOperation memory op = moduleOp(modular, transferCall(alice, 31e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 31e6, 30e6)
        );
        submit(op);
    }

    function test_getUsage_countsOperationsPerAccount() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.maxOps = 2;
        vm.prank(address(modular));
        id = module.grantSession(c);
        submit(moduleOp(modular, transferCall(alice, 1e6)));
        assertEq(module.getUsage(address(modular), id).opsUsed, 1);
        assertEq(module.getUsage(alice, id).opsUsed, 0, "counters belong to their account");
    }

    function test_session_cannotTargetTheModuleItself() public {
        ISakSessions.SessionConfig memory c = usdSession(1e6);
        PackedUserOperation memory op =
            moduleOp(modular, one(address(module), 0, abi.encodeCall(module.grantSession, (c))));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(module))
        );
        submit(op);
    }

    function test_session_cannotUninstallOrReconfigureTheAccount() public {
        bytes memory uninstall =
            abi.encodeCall(modular.uninstallModule, (MODULE_TYPE_VALIDATOR, address(module), ""));
        PackedUserOperation memory op = moduleOp(modular, one(address(modular), 0, uninstall));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(modular))
        );
        submit(op);
    }

    function test_grant_reverts_forTheModuleAsTarget() public {
        ISakSessions.SessionConfig memory c = usdSession(1e6);
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0].target = address(module);
        c.permissions[0].selector = module.revokeAllSessions.selector;
        vm.prank(address(modular));
        vm.expectRevert(
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(module))
        );
        module.grantSession(c);
    }

    function test_delegatecallMode_isRefused() public {
        PackedUserOperation memory op = moduleOp(modular, transferCall(alice, 1));
        bytes32 delegateMode = bytes32(uint256(0xff) << 248);
        op.callData = abi.encodeWithSignature(
            "execute(bytes32,bytes)", delegateMode, abi.encodePacked(address(usd), bytes("x"))
        );
        signSession(op, id, now_());
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SessionExecutionMode.selector, delegateMode)
        );
        submit(op);
    }

    function test_sessionsAreIsolatedPerAccount() public {
        // `other` has the module too but granted nothing: the same key means nothing there.
        usd.mint(address(other), 1_000e6);
        vm.deal(address(other), 1 ether);
        PackedUserOperation memory op = moduleOp(other, transferCall(alice, 1e6));
        expectValidationRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, id));
        submit(op);
        assertFalse(module.getSession(address(other), id).active);
        assertTrue(module.getSession(address(modular), id).active);
    }

    function test_getSession_isInactive_afterValidUntil() public {
        vm.warp(START + 30 days);
        assertTrue(module.getSession(address(modular), id).active);
        vm.warp(START + 30 days + 1);
        assertFalse(module.getSession(address(modular), id).active);
    }

    function test_validateUserOp_reverts_forAnotherAccountsOperation() public {
        PackedUserOperation memory op = moduleOp(modular, transferCall(alice, 1e6));
        vm.prank(address(other));
        vm.expectRevert(
            abi.encodeWithSelector(
                SessionKeyValidator.NotTheSender.selector, address(modular), address(other)
            )
        );
        module.validateUserOp(op, bytes32(0));
    }

    function test_sessionKeys_neverProduceAnERC1271Signature() public view {
        bytes memory sig = abi.encodePacked(address(module), bytes32(0), bytes32(0), uint8(27));
        assertEq(
            module.isValidSignatureWithSender(alice, keccak256("permit"), sig), bytes4(0xffffffff)
        );
        assertEq(modular.isValidSignature(keccak256("permit"), sig), bytes4(0xffffffff));
    }

    function test_uninstall_revokesEverySession_andReinstallDoesNotRestoreThem() public {
        vm.prank(address(modular));
        modular.uninstallModule(MODULE_TYPE_VALIDATOR, address(module), "");
        assertFalse(module.getSession(address(modular), id).active);
        vm.prank(address(modular));
        modular.installModule(MODULE_TYPE_VALIDATOR, address(module), "");
        assertFalse(module.getSession(address(modular), id).active);
    }
}
