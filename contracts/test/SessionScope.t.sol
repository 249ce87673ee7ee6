// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC7579Utils} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SessionLib} from "../src/lib/SessionLib.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";

/// @notice A contract a session may be allowed to call.
contract Target {
    uint256 public pings;

    function ping(uint256, address, uint256) external payable {
        ++pings;
    }

    function pong() external {}
}

/// @notice Decodes an operation's callData the way validation does, and the way the account's
///         `execute(bytes32,bytes)` does (the ABI decoder, then the same batch decoder).
contract BatchDecoder {
    function validation(bytes calldata callData) external pure returns (Execution[] memory) {
        return SessionLib.decodeExecuteBatch(callData);
    }

    function execute(bytes32, bytes calldata executionData)
        external
        pure
        returns (Execution[] memory)
    {
        return ERC7579Utils.decodeBatch(executionData);
    }
}

/// @notice Call scope: targets, selectors, argument conditions, value, execution modes and the
///         batch encoding.
contract SessionScopeTest is SakTest {
    Target internal target;
    Target internal other;
    address internal bob = makeAddr("bob");

    function setUp() public override {
        super.setUp();
        target = new Target();
        other = new Target();
    }

    // -------------------------------------------------------------------------------------
    // Helpers
    // -------------------------------------------------------------------------------------

    /// @dev A session permitting `target.ping` under `conds`, and `nativePerDay` wei of ETH if
    ///      non-zero.
    function pingSession(
        ISakSessions.ArgCondition[] memory conds,
        bool allowValue,
        uint96 nativePerDay
    ) internal view returns (ISakSessions.SessionConfig memory c) {
        c = agentSession();
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), Target.ping.selector, allowValue);
        c.permissions[0].conditions = conds;
        if (nativePerDay != 0) {
            c.spendLimits = new ISakSessions.SpendLimit[](1);
            c.spendLimits[0] = ISakSessions.SpendLimit({
                token: address(0),
                allowance: nativePerDay,
                period: uint32(DAY),
                allowTransfer: false,
                allowApprove: false
            });
        }
    }

    function grantPing() internal returns (uint32) {
        return grant(pingSession(new ISakSessions.ArgCondition[](0), false, 0));
    }

    function grantCondition(ISakSessions.Op op, uint8 argIndex, bytes32[] memory vals)
        internal
        returns (uint32)
    {
        ISakSessions.ArgCondition[] memory conds = new ISakSessions.ArgCondition[](1);
        conds[0] = ISakSessions.ArgCondition({argIndex: argIndex, op: op, values: vals});
        return grant(pingSession(conds, false, 0));
    }

    function values(bytes32 a) internal pure returns (bytes32[] memory v) {
        v = new bytes32[](1);
        v[0] = a;
    }

    function ping(uint256 a, address b, uint256 c) internal view returns (Execution[] memory) {
        return one(address(target), 0, abi.encodeCall(Target.ping, (a, b, c)));
    }

    function argFailed(uint8 argIndex) internal view returns (bytes memory) {
        return abi.encodeWithSelector(
            ISakSessions.ArgumentConditionFailed.selector,
            address(target),
            Target.ping.selector,
            argIndex
        );
    }

    function notPermitted(address to, bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.CallNotPermitted.selector, to, selector);
    }

    /// @dev A session op with raw `callData` (not necessarily an execute batch).
    function rawSessionOp(uint32 id, bytes memory callData)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(callData);
        signSession(op, id, now_());
    }

    // -------------------------------------------------------------------------------------
    // Targets and selectors
    // -------------------------------------------------------------------------------------

    function test_handleOps_executesAPermittedCall() public {
        uint32 id = grantPing();
        submit(sessionOp(id, ping(1, alice, 2)));
        assertEq(target.pings(), 1);
    }

    function test_validateUserOp_reverts_whenTargetNotPermitted() public {
        uint32 id = grantPing();
        PackedUserOperation memory op =
            sessionOp(id, one(address(other), 0, abi.encodeCall(Target.ping, (1, alice, 2))));
        expectValidationRevert(notPermitted(address(other), Target.ping.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenSelectorNotPermitted() public {
        uint32 id = grantPing();
        PackedUserOperation memory op =
            sessionOp(id, one(address(target), 0, abi.encodeCall(Target.pong, ())));
        expectValidationRevert(notPermitted(address(target), Target.pong.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenAnyCallOfTheBatchNotPermitted() public {
        uint32 id = grantPing();
        Execution[] memory calls = new Execution[](3);
        calls[0] = ping(1, alice, 2)[0];
        calls[1] = Execution(address(target), 0, abi.encodeCall(Target.pong, ()));
        calls[2] = ping(1, alice, 2)[0];
        PackedUserOperation memory op = sessionOp(id, calls);
        expectValidationRevert(notPermitted(address(target), Target.pong.selector));
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenCalldataIsShorterThanASelector(uint256 length)
        public
    {
        // Even with the "no selector" permission (plain ETH transfers), 1-3 bytes never pass.
        ISakSessions.SessionConfig memory c = agentSession();
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), bytes4(0), false);
        uint32 id = grant(c);
        bytes memory data = new bytes(bound(length, 1, 3));
        expectValidateRevert(
            sessionOp(id, one(address(target), 0, data)), notPermitted(address(target), bytes4(0))
        );
    }

    // -------------------------------------------------------------------------------------
    // The account and the EntryPoint are never targets
    // -------------------------------------------------------------------------------------

    function forbidden(address to) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, to);
    }

    function test_validateUserOp_reverts_whenCallingGrantSessionOnTheAccount() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodeCall(account.grantSession, (usdSession(type(uint96).max)));
        PackedUserOperation memory op = sessionOp(id, one(address(account), 0, data));
        expectValidationRevert(forbidden(address(account)));
        submit(op);
    }

    function test_validateUserOp_reverts_whenCallingRevokeSessionOnTheAccount() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodeCall(account.revokeSession, (id));
        PackedUserOperation memory op = sessionOp(id, one(address(account), 0, data));
        expectValidationRevert(forbidden(address(account)));
        submit(op);
    }

    function test_validateUserOp_reverts_whenNestingExecuteOnTheAccount() public {
        uint32 id = grantPing();
        bytes memory nested = executeData(transferCall(alice, 1e6));
        PackedUserOperation memory op = sessionOp(id, one(address(account), 0, nested));
        expectValidationRevert(forbidden(address(account)));
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenAnyCallTargetsTheAccount(
        bytes4 selector,
        uint256 arg,
        uint256 length,
        uint256 value
    ) public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodePacked(selector, arg);
        length = bound(length, 0, data.length);
        assembly ("memory-safe") {
            mstore(data, length)
        }
        value = bound(value, 0, 1 ether);
        expectValidateRevert(
            sessionOp(id, one(address(account), value, data)), forbidden(address(account))
        );
    }

    function test_validateUserOp_reverts_whenCallingDepositToOnTheEntryPoint() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodeCall(entryPoint.depositTo, (alice));
        PackedUserOperation memory op = sessionOp(id, one(address(entryPoint), 0.1 ether, data));
        expectValidationRevert(forbidden(address(entryPoint)));
        submit(op);
    }

    function test_validateUserOp_reverts_whenCallingWithdrawToOnTheEntryPoint() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodeCall(entryPoint.withdrawTo, (payable(alice), 1 ether));
        PackedUserOperation memory op = sessionOp(id, one(address(entryPoint), 0, data));
        expectValidationRevert(forbidden(address(entryPoint)));
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenAnyCallTargetsTheEntryPoint(
        bytes4 selector,
        uint256 arg,
        uint256 length,
        uint256 value
    ) public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodePacked(selector, arg);
        length = bound(length, 0, data.length);
        assembly ("memory-safe") {
            mstore(data, length)
        }
        value = bound(value, 0, 1 ether);
        expectValidateRevert(
            sessionOp(id, one(address(entryPoint), value, data)), forbidden(address(entryPoint))
        );
    }

    // -------------------------------------------------------------------------------------
    // Native value
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_whenValueOnAPermissionWithoutAllowValue() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), false, 1 ether));
        PackedUserOperation memory op =
            sessionOp(id, one(address(target), 1, abi.encodeCall(Target.ping, (1, alice, 2))));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.ValueNotPermitted.selector, address(target), Target.ping.selector, 1
            )
        );
        submit(op);
    }

    function test_handleOps_chargesValueToTheNativeLimit() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        submit(
            sessionOp(
                id, one(address(target), 0.4 ether, abi.encodeCall(Target.ping, (1, alice, 2)))
            )
        );
        assertEq(address(target).balance, 0.4 ether);
        assertEq(account.getSpend(id, address(0)).spent, 0.4 ether);
    }

    function testFuzz_validateUserOp_reverts_whenValueOverTheNativeLimit(uint256 value) public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        value = bound(value, 1 ether + 1, type(uint256).max);
        expectValidateRevert(
            sessionOp(id, one(address(target), value, abi.encodeCall(Target.ping, (1, alice, 2)))),
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(0), value, 1 ether
            )
        );
    }

    function test_validateUserOp_reverts_whenBatchValuesSumOverTheNativeLimit() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        Execution[] memory calls = new Execution[](2);
        calls[0] = Execution(address(target), 0.6 ether, abi.encodeCall(Target.ping, (1, alice, 2)));
        calls[1] = calls[0];
        PackedUserOperation memory op = sessionOp(id, calls);
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(0), 0.6 ether, 0.4 ether
            )
        );
        submit(op);
    }

    function test_validateUserOp_reverts_whenValueWithoutANativeLimit() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 0));
        PackedUserOperation memory op =
            sessionOp(id, one(address(target), 1 wei, abi.encodeCall(Target.ping, (1, alice, 2))));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(0), 1, 0)
        );
        submit(op);
    }

    function test_handleOps_plainEthTransfer_isChargedToTheNativeLimit() public {
        ISakSessions.SessionConfig memory c =
            pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether);
        c.permissions[0] = permission(bob, bytes4(0), true);
        uint32 id = grant(c);
        submit(sessionOp(id, one(bob, 0.7 ether, "")));
        assertEq(bob.balance, 0.7 ether);
        PackedUserOperation memory op = sessionOp(id, one(bob, 0.7 ether, ""));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(0), 0.7 ether, 0.3 ether
            )
        );
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenAnEthSendPermissionIsUsedWithData(bytes calldata tail)
        public
    {
        ISakSessions.SessionConfig memory c =
            pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether);
        c.permissions[0] = permission(address(target), bytes4(0), true);
        uint32 id = grant(c);
        // Four zero bytes and anything after them: a call into the fallback, not an ETH send.
        bytes memory data = bytes.concat(bytes4(0), tail);
        expectValidateRevert(
            sessionOp(id, one(address(target), 0.1 ether, data)),
            notPermitted(address(target), bytes4(0))
        );
    }

    // -------------------------------------------------------------------------------------
    // Argument conditions
    // -------------------------------------------------------------------------------------

    function test_handleOps_eqCondition_passes() public {
        uint32 id = grantCondition(ISakSessions.Op.Eq, 0, values(bytes32(uint256(7))));
        submit(sessionOp(id, ping(7, alice, 0)));
        assertEq(target.pings(), 1);
    }

    function testFuzz_validateUserOp_reverts_whenEqConditionFails(uint256 a) public {
        uint32 id = grantCondition(ISakSessions.Op.Eq, 0, values(bytes32(uint256(7))));
        a = bound(a, 8, type(uint256).max);
        expectValidateRevert(sessionOp(id, ping(a, alice, 0)), argFailed(0));
    }

    function testFuzz_handleOps_lteCondition_passesAtOrBelow(uint256 c) public {
        uint32 id = grantCondition(ISakSessions.Op.Lte, 2, values(bytes32(uint256(100))));
        submit(sessionOp(id, ping(0, alice, bound(c, 0, 100))));
        assertEq(target.pings(), 1);
    }

    function testFuzz_validateUserOp_reverts_whenLteConditionFails(uint256 c) public {
        uint32 id = grantCondition(ISakSessions.Op.Lte, 2, values(bytes32(uint256(100))));
        c = bound(c, 101, type(uint256).max);
        expectValidateRevert(sessionOp(id, ping(0, alice, c)), argFailed(2));
    }

    function testFuzz_handleOps_gteCondition_passesAtOrAbove(uint256 c) public {
        uint32 id = grantCondition(ISakSessions.Op.Gte, 2, values(bytes32(uint256(100))));
        submit(sessionOp(id, ping(0, alice, bound(c, 100, type(uint256).max))));
        assertEq(target.pings(), 1);
    }

    function testFuzz_validateUserOp_reverts_whenGteConditionFails(uint256 c) public {
        uint32 id = grantCondition(ISakSessions.Op.Gte, 2, values(bytes32(uint256(100))));
        c = bound(c, 0, 99);
        expectValidateRevert(sessionOp(id, ping(0, alice, c)), argFailed(2));
    }

    function oneOfAliceOrBob() internal returns (uint32) {
        bytes32[] memory v = new bytes32[](2);
        v[0] = bytes32(uint256(uint160(alice)));
        v[1] = bytes32(uint256(uint160(bob)));
        return grantCondition(ISakSessions.Op.OneOf, 1, v);
    }

    function test_handleOps_oneOfCondition_passesForEachListedValue() public {
        uint32 id = oneOfAliceOrBob();
        submit(sessionOp(id, ping(0, alice, 0)));
        submit(sessionOp(id, ping(0, bob, 0)));
        assertEq(target.pings(), 2);
    }

    function test_validateUserOp_reverts_whenOneOfConditionFails() public {
        uint32 id = oneOfAliceOrBob();
        PackedUserOperation memory op = sessionOp(id, ping(0, makeAddr("carol"), 0));
        expectValidationRevert(argFailed(1));
        submit(op);
    }

    function test_handleOps_eqAccountCondition_passesForTheAccount() public {
        uint32 id = grantCondition(ISakSessions.Op.EqAccount, 1, new bytes32[](0));
        submit(sessionOp(id, ping(0, address(account), 0)));
        assertEq(target.pings(), 1);
    }

    function test_validateUserOp_reverts_whenEqAccountConditionFails() public {
        uint32 id = grantCondition(ISakSessions.Op.EqAccount, 1, new bytes32[](0));
        PackedUserOperation memory op = sessionOp(id, ping(0, alice, 0));
        expectValidationRevert(argFailed(1));
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenEqAccountArgumentHasDirtyUpperBits(uint256 dirt)
        public
    {
        uint32 id = grantCondition(ISakSessions.Op.EqAccount, 1, new bytes32[](0));
        dirt = bound(dirt, 1, type(uint96).max);
        bytes memory data = abi.encodePacked(
            Target.ping.selector,
            uint256(0),
            (dirt << 160) | uint256(uint160(address(account))),
            uint256(0)
        );
        expectValidateRevert(sessionOp(id, one(address(target), 0, data)), argFailed(1));
    }

    function testFuzz_validateUserOp_reverts_whenCalldataTooShortForTheCondition(uint256 length)
        public
    {
        uint32 id = grantCondition(ISakSessions.Op.Lte, 2, values(bytes32(uint256(100))));
        // The condition reads bytes [68, 100): any shorter calldata fails, never reads zeros.
        bytes memory data = abi.encodeCall(Target.ping, (0, alice, 0));
        uint256 cut = bound(length, 4, 99);
        assembly ("memory-safe") {
            mstore(data, cut)
        }
        expectValidateRevert(sessionOp(id, one(address(target), 0, data)), argFailed(2));
    }

    function test_validateUserOp_reverts_withTheIndexOfTheFailingCondition() public {
        ISakSessions.ArgCondition[] memory conds = new ISakSessions.ArgCondition[](2);
        conds[0] = ISakSessions.ArgCondition(0, ISakSessions.Op.Eq, values(bytes32(uint256(7))));
        conds[1] = ISakSessions.ArgCondition(2, ISakSessions.Op.Lte, values(bytes32(uint256(5))));
        uint32 id = grant(pingSession(conds, false, 0));
        PackedUserOperation memory op = sessionOp(id, ping(7, alice, 6));
        expectValidationRevert(argFailed(2));
        submit(op);
    }

    function test_handleOps_worstCaseConditions_fitTheVerificationGasLimit() public {
        // 8 one-of conditions of 16 values each, every argument matching the last value: 136
        // cold policy slots read in validation.
        ISakSessions.ArgCondition[] memory conds = new ISakSessions.ArgCondition[](8);
        uint256[9] memory words;
        words[1] = uint256(uint160(alice)); // ping's address argument
        for (uint256 i; i < 8; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) at most 8
            uint8 argIndex = i == 0 ? 0 : uint8(i + 1);
            conds[i].argIndex = argIndex;
            conds[i].op = ISakSessions.Op.OneOf;
            conds[i].values = new bytes32[](16);
            for (uint256 j; j < 16; ++j) {
                conds[i].values[j] = bytes32(1000 * i + j);
            }
            words[argIndex] = 1000 * i + 15;
        }
        uint32 id = grant(pingSession(conds, false, 0));
        bytes memory data = abi.encodePacked(Target.ping.selector, words);
        PackedUserOperation memory op = sessionOp(id, one(address(target), 0, data));

        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.cool(address(account)); // as in a real operation: the policy's slots start cold
        vm.prank(address(entryPoint));
        uint256 before = gasleft();
        account.validateUserOp(op, hash, 0);
        assertLt(before - gasleft(), 450_000, "worst-case policy check");

        vm.cool(address(account));
        submit(op); // within the fixture's 500k verificationGasLimit, EntryPoint overhead included
        assertEq(target.pings(), 1);
    }

    // -------------------------------------------------------------------------------------
    // ERC-20 calls
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_whenTransferHasTrailingBytes() public {
        uint32 id = grant(usdSession(100e6));
        bytes memory data = abi.encodePacked(abi.encodeCall(usd.transfer, (alice, 1e6)), uint8(0));
        PackedUserOperation memory op = sessionOp(id, one(address(usd), 0, data));
        expectValidationRevert(notPermitted(address(usd), usd.transfer.selector));
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenTransferCalldataIsNot68Bytes(uint256 length)
        public
    {
        uint32 id = grant(usdSession(100e6));
        length = bound(length, 4, 200);
        if (length == 68) length = 69;
        bytes memory data = new bytes(length);
        bytes4 selector = usd.transfer.selector;
        assembly ("memory-safe") {
            mstore(add(data, 0x20), selector)
        }
        expectValidateRevert(
            sessionOp(id, one(address(usd), 0, data)), notPermitted(address(usd), selector)
        );
    }

    function test_validateUserOp_reverts_whenTransferOnATokenWithoutSpendLimit() public {
        // Deny by default: eur is allowlisted as a target (balanceOf) but has no cap.
        MockERC20 eur = new MockERC20("Test EUR", "tEUR", 6);
        eur.mint(address(account), 1_000e6);
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(eur), eur.balanceOf.selector, false);
        uint32 id = grant(c);
        PackedUserOperation memory op =
            sessionOp(id, one(address(eur), 0, abi.encodeCall(eur.transfer, (alice, 1e6))));
        expectValidationRevert(notPermitted(address(eur), eur.transfer.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenApproveButOnlyTransferAllowed() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.spendLimits[0].allowApprove = false;
        uint32 id = grant(c);
        PackedUserOperation memory op =
            sessionOp(id, one(address(usd), 0, abi.encodeCall(usd.approve, (alice, 1e6))));
        expectValidationRevert(notPermitted(address(usd), usd.approve.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenTransferButOnlyApproveAllowed() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.spendLimits[0].allowTransfer = false;
        uint32 id = grant(c);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(notPermitted(address(usd), usd.transfer.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenTransferCarriesValue() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        uint32 id = grant(c);
        PackedUserOperation memory op =
            sessionOp(id, one(address(usd), 1, abi.encodeCall(usd.transfer, (alice, 1e6))));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.ValueNotPermitted.selector, address(usd), usd.transfer.selector, 1
            )
        );
        submit(op);
    }

    function testFuzz_validateUserOp_reverts_whenCappedTokenCalledWithAnyOtherSelector(bytes4 selector)
        public
    {
        if (selector == usd.transfer.selector || selector == usd.approve.selector) {
            selector = usd.transferFrom.selector;
        }
        uint32 id = grant(usdSession(100e6));
        bytes memory data = abi.encodeWithSelector(selector, address(account), alice, 1e6);
        expectValidateRevert(
            sessionOp(id, one(address(usd), 0, data)), notPermitted(address(usd), selector)
        );
    }

    // -------------------------------------------------------------------------------------
    // Execution modes
    // -------------------------------------------------------------------------------------

    function modeError(bytes32 mode) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.SessionExecutionMode.selector, mode);
    }

    function test_validateUserOp_reverts_whenCallDataIsNotExecute() public {
        uint32 id = grantPing();
        // An owner-only function called directly by the EntryPoint.
        PackedUserOperation memory op =
            rawSessionOp(id, abi.encodeCall(account.grantSession, (usdSession(type(uint96).max))));
        expectValidationRevert(modeError(bytes32(0)));
        submit(op);
    }

    function test_validateUserOp_reverts_whenCallDataIsEmpty() public {
        uint32 id = grantPing();
        expectValidateRevert(rawSessionOp(id, ""), modeError(bytes32(0)));
    }

    function test_validateUserOp_reverts_whenExecuteCallDataIsTooShort() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodePacked(account.execute.selector, BATCH_MODE, uint8(0x40));
        expectValidateRevert(rawSessionOp(id, data), modeError(bytes32(0)));
    }

    function expectModeRefused(bytes32 mode) internal {
        uint32 id = grantPing();
        bytes memory data = abi.encodeCall(account.execute, (mode, abi.encode(ping(1, alice, 2))));
        expectValidateRevert(rawSessionOp(id, data), modeError(mode));
    }

    function test_validateUserOp_reverts_forSingleMode() public {
        expectModeRefused(bytes32(0));
    }

    function test_validateUserOp_reverts_forBatchTryMode() public {
        expectModeRefused(bytes32(uint256(0x0101) << 240));
    }

    function test_validateUserOp_reverts_forDelegatecallMode() public {
        expectModeRefused(bytes32(uint256(0xff) << 248));
    }

    function test_validateUserOp_reverts_forBatchWithOpDataMode() public {
        // ERC-7821 mode selector 0x78210001: batch with op data.
        expectModeRefused(BATCH_MODE | bytes32(uint256(0x78210001) << 176));
    }

    function testFuzz_validateUserOp_reverts_whenCallTypeIsNotBatch(
        uint256 callType,
        uint256 execType,
        uint256 payload
    ) public {
        callType = bound(callType, 0, 254);
        if (callType >= 1) callType += 1; // every call type but 0x01
        execType = bound(execType, 0, 255);
        payload = bound(payload, 0, type(uint240).max);
        expectModeRefused(bytes32((callType << 248) | (execType << 240) | payload));
    }

    function testFuzz_validateUserOp_reverts_whenBatchModeHasAnyOtherByteSet(
        uint256 index,
        uint256 value
    ) public {
        index = bound(index, 1, 31);
        value = bound(value, 1, 255);
        expectModeRefused(BATCH_MODE | bytes32(value << (8 * (31 - index))));
    }

    // -------------------------------------------------------------------------------------
    // Batch encoding
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_whenBatchIsEmpty() public {
        uint32 id = grantPing();
        PackedUserOperation memory op = sessionOp(id, new Execution[](0));
        expectValidationRevert(abi.encodeWithSelector(ISakSessions.EmptyBatch.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenExecutionDataOffsetIsPastTheEnd() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodePacked(
            account.execute.selector, BATCH_MODE, uint256(0x1000), abi.encode(ping(1, alice, 2))
        );
        expectValidateRevert(rawSessionOp(id, data), "");
    }

    function test_validateUserOp_reverts_whenExecutionDataOffsetOverflows() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodePacked(
            account.execute.selector,
            BATCH_MODE,
            type(uint256).max - 15,
            abi.encode(ping(1, alice, 2))
        );
        expectValidateRevert(
            rawSessionOp(id, data), abi.encodeWithSignature("Panic(uint256)", uint256(0x11))
        );
    }

    function test_validateUserOp_reverts_whenExecutionDataLengthIsPastCalldata() public {
        uint32 id = grantPing();
        bytes memory batch = abi.encode(ping(1, alice, 2));
        bytes memory data = abi.encodePacked(
            account.execute.selector, BATCH_MODE, uint256(0x40), batch.length + 1, batch
        );
        expectValidateRevert(rawSessionOp(id, data), "");
    }

    function test_validateUserOp_reverts_whenArrayLengthIsPastTheBuffer() public {
        uint32 id = grantPing();
        bytes memory batch = abi.encode(ping(1, alice, 2));
        assembly ("memory-safe") {
            mstore(add(batch, 0x40), 1000) // the Execution[] length word
        }
        expectValidateRevert(
            rawSessionOp(id, abi.encodeCall(account.execute, (BATCH_MODE, batch))),
            abi.encodeWithSelector(ERC7579Utils.ERC7579DecodingError.selector)
        );
    }

    /// @dev What validation checks is exactly what execution runs: whenever both the validation
    ///      decoder and the account's ABI decoding of `execute(bytes32,bytes)` accept a
    ///      (corrupted) encoding, they yield the same calls. (Validation may accept elements
    ///      that lie past the end of callData, reading the enclosing calldata; execution then
    ///      reverts, so nothing unchecked runs.)
    /// @dev `Execution` as laid out inside an ABI-encoded `Execution[]` (no leading offset).
    function element(address to, bytes memory data) internal pure returns (bytes memory) {
        return abi.encodePacked(uint256(uint160(to)), uint256(0), uint256(0x60), data.length, data);
    }

    function decodingError() internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ERC7579Utils.ERC7579DecodingError.selector);
    }

    /// @dev The batch `[0x20][1][o]` names one element at `o`, past its own end. In the
    ///      account's validateUserOp calldata (canonical encoding) the op's paymasterAndData
    ///      follows callData; `o` points 64 bytes into it, where a permitted `ping` sits after
    ///      a zero paymaster address (the account pays; gas is unlimited). Without the element
    ///      bounds check, validation approves a call that is not in callData at all.
    function test_validateUserOp_reverts_whenABatchElementLiesPastTheBatch() public {
        uint32 id = grantPing();
        // callData: selector, mode, 0x40, 96, batch = 196 bytes, padded to 224. The element
        // offsets count from the batch's 3rd word (callData byte 164); paymasterAndData's
        // bytes start at 224 + 32 of callData's content.
        uint256 o = 224 + 32 + 64 - 164;
        bytes memory data = abi.encodePacked(
            account.execute.selector, BATCH_MODE, uint256(0x40), uint256(96), uint256(0x20)
        );
        data = abi.encodePacked(data, uint256(1), o);
        PackedUserOperation memory op = userOp(data);
        op.paymasterAndData = abi.encodePacked(
            bytes32(0),
            bytes32(0),
            element(address(target), abi.encodeCall(Target.ping, (1, alice, 2)))
        );
        signSession(op, id, now_());
        expectValidateRevert(op, decodingError());
    }

    /// @dev The element's head is inside the batch but its call data is read from past it (from
    ///      paymasterAndData, as above).
    function test_validateUserOp_reverts_whenABatchElementsCallDataLiesPastTheBatch() public {
        uint32 id = grantPing();
        // batch: [0x20][1][0x20][target][0][c] = 192 bytes; callData = 100 + 192 = 292 bytes,
        // padded to 320; the element starts at callData byte 196.
        uint256 c = 320 + 32 + 64 - 196;
        bytes memory data = abi.encodePacked(
            account.execute.selector, BATCH_MODE, uint256(0x40), uint256(192), uint256(0x20)
        );
        data = abi.encodePacked(
            data, uint256(1), uint256(0x20), uint256(uint160(address(target))), uint256(0), c
        );
        bytes memory ping_ = abi.encodeCall(Target.ping, (1, alice, 2));
        PackedUserOperation memory op = userOp(data);
        op.paymasterAndData = abi.encodePacked(bytes32(0), bytes32(0), ping_.length, ping_);
        signSession(op, id, now_());
        expectValidateRevert(op, decodingError());
    }

    function testFuzz_decodeBatch_refusesAnyElementOffsetPastTheBatch(uint256 o) public {
        BatchDecoder decoder = new BatchDecoder();
        bytes memory batch = abi.encode(ping(1, alice, 2));
        // [0x20][1][o][struct...]: offsets count from the 3rd word, so the element's three head
        // words end past the batch for every o above batch.length - 64 - 0x60.
        o = bound(o, batch.length - 64 - 0x60 + 1, type(uint256).max);
        assembly ("memory-safe") {
            mstore(add(batch, 0x60), o)
        }
        bytes memory data = abi.encodeWithSignature("execute(bytes32,bytes)", BATCH_MODE, batch);
        (bool ok,) = address(decoder).call(abi.encodeCall(decoder.validation, (data)));
        assertFalse(ok, "an element partly past the batch was decoded");
    }

    function testFuzz_decodeExecuteBatch_agreesWithTheAbiDecoderOfExecute(
        uint256 word,
        uint256 value,
        bool small,
        uint256 cut
    ) public {
        BatchDecoder decoder = new BatchDecoder();
        Execution[] memory calls = new Execution[](2);
        calls[0] = ping(1, alice, 2)[0];
        calls[1] = Execution(bob, 3, hex"aabbccdd");
        bytes memory data = executeData(calls);
        uint256 words = (data.length - 4) / 32;
        word = bound(word, 0, words - 1);
        value = small ? bound(value, 0, data.length + 64) : value;
        cut = bound(cut, 0, 40);
        assembly ("memory-safe") {
            mstore(add(add(data, 0x24), mul(word, 0x20)), value)
            mstore(data, sub(mload(data), cut))
        }
        (bool validated, bytes memory seen) =
            address(decoder).call(abi.encodeCall(decoder.validation, (data)));
        (bool decoded, bytes memory run) = address(decoder).call(data);
        if (validated && decoded) {
            assertEq(keccak256(seen), keccak256(run), "validation saw other calls");
        }
    }
}
