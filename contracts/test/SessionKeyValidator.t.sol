// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {
    Execution,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_VALIDATOR
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SessionKeyValidator} from "../src/SessionKeyValidator.sol";
import {MockERC7579Account} from "../src/mocks/MockERC7579Account.sol";
import {MockERC7579AccountOn} from "./mocks/MockERC7579AccountOn.sol";
import {MockModule} from "./mocks/MockModule.sol";
import {SessionAdapter} from "../src/SessionAdapter.sol";
import {SessionEnvelope} from "./utils/SessionEnvelope.sol";
import {Target} from "./mocks/MockTarget.sol";

/// @notice The ERC-7579 module: same engine, state per account, nothing privileged reachable.
contract SessionKeyValidatorTest is SakTest {
    SessionKeyValidator internal module;
    MockERC7579Account internal modular;
    MockERC7579Account internal other;
    uint32 internal id;
    /// @dev `modular`'s adapter, deployed by the grant in setUp.
    address internal adapter;

    function setUp() public override {
        super.setUp();
        module = new SessionKeyValidator(adapters);
        modular = new MockERC7579Account(address(module));
        other = new MockERC7579Account(address(module));
        vm.deal(address(modular), 10 ether);
        usd.mint(address(modular), 1_000_000e6);
        vm.prank(address(modular)); // the account's owner operation calls the module
        id = module.grantSession(usdSession(100e6));
        adapter = module.sessionAdapter(address(modular));
        // The module cannot know its account's EntryPoint and returns a period's start as is,
        // which v0.8 admits from the next second: the session's first second is not usable.
        vm.warp(START + 1);
    }

    function moduleOp(MockERC7579Account acct, Execution[] memory calls)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        return moduleOpWith(acct, calls, agentKey);
    }

    function moduleOpWith(MockERC7579Account acct, Execution[] memory calls, uint256 key)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(calls));
        op.sender = address(acct);
        // OpenZeppelin's ERC-7579 account routes validation by the nonce key's top 20 bytes.
        op.nonce =
            entryPoint.getNonce(address(acct), SessionEnvelope.moduleNonceKey(address(module), id));
        signSessionWith(op, id, now_(), key);
    }

    /// @dev A session on `modular` permitting `target.ping`, tUSD movable only to the adapter.
    function grantPing(Target target) internal {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.spendLimits[0].allowTransfer = false;
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), Target.ping.selector, false);
        vm.prank(address(modular));
        id = module.grantSession(c);
    }

    function pingData() internal view returns (bytes memory) {
        return abi.encodeCall(Target.ping, (1, alice, 2));
    }

    function one_(Execution memory e) internal pure returns (Execution[] memory calls) {
        calls = new Execution[](1);
        calls[0] = e;
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

    function test_session_cannotTargetTheModuleItself_throughTheAdapter() public {
        ISakSessions.SessionConfig memory c = usdSession(1e6);
        bytes memory data = abi.encodeCall(module.grantSession, (c));
        PackedUserOperation memory op = moduleOp(
            modular, one_(viaAdapter(adapter, address(module), 0, data, new address[](0)))
        );
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

    function test_session_cannotUninstallTheModule_throughTheAdapter() public {
        bytes memory uninstall =
            abi.encodeCall(modular.uninstallModule, (MODULE_TYPE_VALIDATOR, address(module), ""));
        PackedUserOperation memory op = moduleOp(
            modular, one_(viaAdapter(adapter, address(modular), 0, uninstall, new address[](0)))
        );
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

    // -------------------------------------------------------------------------------------
    // The account's admin surface: its own EntryPoint and its other modules
    // -------------------------------------------------------------------------------------

    /// @dev `c` with one more permission on `target`.
    function naming(ISakSessions.SessionConfig memory c, address target)
        internal
        pure
        returns (ISakSessions.SessionConfig memory)
    {
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(target, MockModule.setOwner.selector, false);
        return c;
    }

    function expectGrantRefused(
        address account,
        ISakSessions.SessionConfig memory c,
        address target
    ) internal {
        vm.prank(account);
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, target));
        module.grantSession(c);
    }

    function test_grant_reverts_forTheAccountsOwnEntryPoint_asTargetTokenOrPaymaster() public {
        // OpenZeppelin 5.7's default EntryPoint (v0.9), and one of the account's own.
        address[2] memory entryPoints =
            [0x433709009B8330FDa32311DF1C2AFA402eD8D009, makeAddr("customEntryPoint")];
        for (uint256 i; i < entryPoints.length; ++i) {
            address ep = entryPoints[i];
            address acct = address(new MockERC7579AccountOn(address(module), ep));
            expectGrantRefused(acct, naming(usdSession(1e6), ep), ep);
            ISakSessions.SessionConfig memory c = usdSession(1e6);
            c.spendLimits[0].token = ep;
            expectGrantRefused(acct, c, ep);
            c = usdSession(1e6);
            c.paymaster = ep;
            expectGrantRefused(acct, c, ep);
            // The other address is not this account's EntryPoint: an ordinary target.
            vm.prank(acct);
            module.grantSession(naming(usdSession(1e6), entryPoints[1 - i]));
        }
    }

    function test_grant_reverts_forAModuleInstalledOnTheAccount() public {
        MockModule owners = new MockModule();
        MockModule executor = new MockModule();
        vm.startPrank(address(modular));
        modular.installModule(MODULE_TYPE_VALIDATOR, address(owners), "");
        modular.installModule(MODULE_TYPE_EXECUTOR, address(executor), "");
        vm.stopPrank();
        MockModule[2] memory installed = [owners, executor];
        for (uint256 i; i < installed.length; ++i) {
            address m = address(installed[i]);
            expectGrantRefused(address(modular), naming(usdSession(1e6), m), m);
            ISakSessions.SessionConfig memory c = usdSession(1e6);
            c.spendLimits[0].token = m;
            expectGrantRefused(address(modular), c, m);
            c = usdSession(1e6);
            c.paymaster = m;
            expectGrantRefused(address(modular), c, m);
        }
        // The same module installed on another account only is an ordinary target here.
        vm.prank(address(other));
        module.grantSession(naming(usdSession(1e6), address(owners)));
        vm.prank(address(modular));
        modular.uninstallModule(MODULE_TYPE_VALIDATOR, address(owners), "");
        vm.prank(address(modular));
        module.grantSession(naming(usdSession(1e6), address(owners)));
    }

    function test_isInitialized_followsInstallAndUninstall() public {
        assertTrue(module.isInitialized(address(modular)));
        assertFalse(module.isInitialized(alice));
        vm.prank(address(modular));
        modular.uninstallModule(MODULE_TYPE_VALIDATOR, address(module), "");
        assertFalse(module.isInitialized(address(modular)));
        vm.prank(address(modular));
        modular.installModule(MODULE_TYPE_VALIDATOR, address(module), "");
        assertTrue(module.isInitialized(address(modular)));
    }

    function test_grant_reverts_whenTheModuleIsNotInstalled() public {
        ISakSessions.SessionConfig memory c = usdSession(1e6);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(SessionKeyValidator.NotInitialized.selector, alice));
        module.grantSession(c);
        vm.prank(address(modular));
        modular.uninstallModule(MODULE_TYPE_VALIDATOR, address(module), "");
        vm.prank(address(modular));
        vm.expectRevert(
            abi.encodeWithSelector(SessionKeyValidator.NotInitialized.selector, address(modular))
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

    function test_install_endsSessionsLeftByAnUninstallThatSkippedOnUninstall() public {
        // An account that drops the module without calling onUninstall (a forced removal, or
        // another implementation) and installs it again: the install starts a fresh salt.
        assertTrue(module.getSession(address(modular), id).active);
        vm.prank(address(modular));
        module.onInstall("");
        assertFalse(module.getSession(address(modular), id).active);
        PackedUserOperation memory op = moduleOp(modular, transferCall(alice, 1e6));
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(modular));
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, id));
        module.validateUserOp(op, hash);
    }

    // -------------------------------------------------------------------------------------
    // The adapter, per account
    // -------------------------------------------------------------------------------------

    function test_sessionAdapter_isTheAccountsClone_deployedByTheFirstGrant() public view {
        assertEq(adapter, adapters.adapterOf(address(modular)));
        assertGt(adapter.code.length, 0, "deployed by the grant");
        address others = module.sessionAdapter(address(other));
        assertEq(others, adapters.adapterOf(address(other)));
        assertNotEq(others, adapter);
        assertEq(others.code.length, 0, "no grant, no adapter");
    }

    function test_sessionOp_callsThroughTheAccountsAdapter() public {
        Target target = new Target();
        grantPing(target);
        submit(
            moduleOp(
                modular, one_(viaAdapter(adapter, address(target), 0, pingData(), new address[](0)))
            )
        );
        assertEq(target.pings(), 1);
        assertEq(target.lastCaller(), adapter);
    }

    function test_sessionOp_reverts_whenAPermittedCallIsMadeDirectly() public {
        Target target = new Target();
        grantPing(target);
        PackedUserOperation memory op = moduleOp(modular, one(address(target), 0, pingData()));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.CallNotThroughAdapter.selector, address(target), Target.ping.selector
            )
        );
        submit(op);
    }

    /// @dev Another account's adapter (same module, same factory) is not this account's.
    function test_sessionOp_reverts_onAnotherAccountsAdapter() public {
        Target target = new Target();
        grantPing(target);
        address others = module.sessionAdapter(address(other));
        PackedUserOperation memory op = moduleOp(
            modular, one_(viaAdapter(others, address(target), 0, pingData(), new address[](0)))
        );
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.CallNotPermitted.selector, others, SessionAdapter.run.selector
            )
        );
        submit(op);
    }

    /// @dev Without `allowTransfer`, the recipient must be this account's adapter.
    function test_transfer_toTheAccountsAdapterOnly_withoutAllowTransfer() public {
        Target target = new Target();
        grantPing(target);
        uint256 before = usd.balanceOf(address(modular));
        // Into the adapter, listed by the run that follows: charged, and what the target does
        // not take comes back within the operation.
        submit(
            moduleOp(
                modular,
                two(
                    fund(adapter, address(usd), 10e6),
                    viaAdapter(adapter, address(target), 0, pingData(), tokens1(address(usd)))
                )
            )
        );
        assertEq(usd.balanceOf(adapter), 0);
        assertEq(usd.balanceOf(address(modular)), before);
        assertEq(module.getSpend(address(modular), id, address(usd)).spent, 10e6);
        address others = module.sessionAdapter(address(other));
        PackedUserOperation memory op = moduleOp(
            modular,
            two(
                fund(others, address(usd), 1e6),
                viaAdapter(adapter, address(target), 0, pingData(), tokens1(address(usd)))
            )
        );
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.RecipientNotPermitted.selector, address(usd), others
            )
        );
        submit(op);
    }

    // -------------------------------------------------------------------------------------
    // Key rotation, per account
    // -------------------------------------------------------------------------------------

    function test_rotateSessionKey_newKeyWorks_oldKeyFails_andTheSpendCarriesOver() public {
        (address fresh, uint256 freshKey) = makeAddrAndKey("fresh");
        submit(moduleOp(modular, transferCall(alice, 70e6)));
        vm.prank(address(modular));
        vm.expectEmit(true, true, false, false, address(module));
        emit ISakSessions.SessionKeyRotated(id, fresh);
        module.rotateSessionKey(id, fresh);
        assertEq(module.getSession(address(modular), id).signer, fresh);

        PackedUserOperation memory old = moduleOp(modular, transferCall(alice, 1e6));
        expectSignatureError(old);
        PackedUserOperation memory op = moduleOpWith(modular, transferCall(alice, 31e6), freshKey);
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 31e6, 30e6)
        );
        submit(op);
        submit(moduleOpWith(modular, transferCall(alice, 30e6), freshKey));
        assertEq(usd.balanceOf(alice), 100e6);
    }

    /// @dev The module acts for its caller: another account rotating "session `id`" touches
    ///      only its own sessions (here: none).
    function test_rotateSessionKey_actsOnlyForTheCallingAccount() public {
        vm.prank(address(other));
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, id));
        module.rotateSessionKey(id, alice);
        vm.prank(address(other));
        module.grantSession(usdSession(1e6)); // the same id on `other`
        vm.prank(address(other));
        module.rotateSessionKey(id, alice);
        assertEq(module.getSession(address(other), id).signer, alice);
        assertEq(module.getSession(address(modular), id).signer, agent, "untouched");
        submit(moduleOp(modular, transferCall(alice, 1e6)));
    }

    function test_rotateSessionKey_reverts_whenSignerIsZero() public {
        vm.prank(address(modular));
        vm.expectRevert(ISakSessions.InvalidSigner.selector);
        module.rotateSessionKey(id, address(0));
    }

    function test_rotateSessionKey_reverts_afterUninstall() public {
        vm.prank(address(modular));
        modular.uninstallModule(MODULE_TYPE_VALIDATOR, address(module), "");
        vm.prank(address(modular));
        vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, id));
        module.rotateSessionKey(id, alice);
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
}
