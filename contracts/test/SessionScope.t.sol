// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC7579Utils} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SessionLib} from "../src/lib/SessionLib.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";
import {SessionAdapter} from "../src/SessionAdapter.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {Target} from "./mocks/MockTarget.sol";

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

/// @notice Decodes an adapter call the way validation does, and the way the adapter's `run`
///         does (the ABI decoder of the same signature).
contract RunDecoder {
    function validation(bytes calldata data) external pure returns (address, bytes memory) {
        (address target, bytes calldata inner,) = SessionLib.decodeRun(data);
        return (target, inner);
    }

    /// @dev Same selector as {SessionAdapter-run}; `tokens` is bounds-checked on entry, as there.
    function run(address target, bytes calldata data, address[] calldata tokens)
        external
        pure
        returns (address, bytes memory)
    {
        tokens;
        return (target, data);
    }
}

/// @notice Call scope: targets, selectors, argument conditions, value, the adapter route,
///         execution modes and the batch encoding.
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
                allowTransfer: false
            });
        }
    }

    function grantPing() internal returns (uint32) {
        return grant(pingSession(new ISakSessions.ArgCondition[](0), false, 0));
    }

    /// @dev One condition on `target.ping`; `Lte`/`Gte` read the argument as a uint256.
    function grantCondition(ISakSessions.Op op, uint8 argIndex, bytes32[] memory vals)
        internal
        returns (uint32)
    {
        bool ordered = op == ISakSessions.Op.Lte || op == ISakSessions.Op.Gte;
        return grantTyped(op, argIndex, ordered ? UINT256 : 0, vals);
    }

    function grantTyped(ISakSessions.Op op, uint8 argIndex, uint8 argType, bytes32[] memory vals)
        internal
        returns (uint32)
    {
        ISakSessions.ArgCondition[] memory conds = new ISakSessions.ArgCondition[](1);
        conds[0] =
            ISakSessions.ArgCondition({argIndex: argIndex, op: op, argType: argType, values: vals});
        return grant(pingSession(conds, false, 0));
    }

    /// @dev `target.ping` with its third argument word set to `word` as is (dirty bits too).
    function pingRaw(bytes32 word) internal view returns (Execution[] memory) {
        bytes memory data = abi.encodePacked(Target.ping.selector, uint256(0), uint256(0), word);
        return call(address(target), 0, data);
    }

    function values(bytes32 a) internal pure returns (bytes32[] memory v) {
        v = new bytes32[](1);
        v[0] = a;
    }

    /// @dev `target.ping(a, b, c)` through the account's adapter.
    function ping(uint256 a, address b, uint256 c) internal view returns (Execution[] memory) {
        return call(address(target), 0, abi.encodeCall(Target.ping, (a, b, c)));
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
            sessionOp(id, call(address(other), 0, abi.encodeCall(Target.ping, (1, alice, 2))));
        expectValidationRevert(notPermitted(address(other), Target.ping.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenSelectorNotPermitted() public {
        uint32 id = grantPing();
        PackedUserOperation memory op =
            sessionOp(id, call(address(target), 0, abi.encodeCall(Target.pong, ())));
        expectValidationRevert(notPermitted(address(target), Target.pong.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenAnyCallOfTheBatchNotPermitted() public {
        uint32 id = grantPing();
        Execution[] memory calls = new Execution[](3);
        calls[0] = ping(1, alice, 2)[0];
        calls[1] = routed(address(target), 0, abi.encodeCall(Target.pong, ()));
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
            sessionOp(id, call(address(target), 0, data)), notPermitted(address(target), bytes4(0))
        );
    }

    // -------------------------------------------------------------------------------------
    // Privileged targets: never, directly or through the adapter
    // -------------------------------------------------------------------------------------

    function forbidden(address to) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, to);
    }

    /// @dev One call to `to`: made by the account itself, or through its adapter.
    function oneCall(bool throughTheAdapter, address to, uint256 value, bytes memory data)
        internal
        view
        returns (Execution[] memory)
    {
        return throughTheAdapter ? call(to, value, data) : one(to, value, data);
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
        uint256 value,
        bool throughTheAdapter
    ) public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodePacked(selector, arg);
        length = bound(length, 0, data.length);
        assembly ("memory-safe") {
            mstore(data, length)
        }
        value = bound(value, 0, 1 ether);
        expectValidateRevert(
            sessionOp(id, oneCall(throughTheAdapter, address(account), value, data)),
            forbidden(address(account))
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
        uint256 value,
        bool throughTheAdapter
    ) public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodePacked(selector, arg);
        length = bound(length, 0, data.length);
        assembly ("memory-safe") {
            mstore(data, length)
        }
        value = bound(value, 0, 1 ether);
        expectValidateRevert(
            sessionOp(id, oneCall(throughTheAdapter, address(entryPoint), value, data)),
            forbidden(address(entryPoint))
        );
    }

    function test_validateUserOp_reverts_whenRunCallsGrantSessionOnTheAccount() public {
        uint32 id = grantPing();
        bytes memory data = abi.encodeCall(account.grantSession, (usdSession(type(uint96).max)));
        PackedUserOperation memory op = sessionOp(id, call(address(account), 0, data));
        expectValidationRevert(forbidden(address(account)));
        submit(op);
    }

    function test_validateUserOp_reverts_whenRunCallsDepositToOnTheEntryPoint() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodeCall(entryPoint.depositTo, (alice));
        PackedUserOperation memory op = sessionOp(id, call(address(entryPoint), 0.1 ether, data));
        expectValidationRevert(forbidden(address(entryPoint)));
        submit(op);
    }

    /// @dev EntryPoint v0.7 (where a module may serve other accounts) is refused as well.
    function testFuzz_validateUserOp_reverts_whenAnyCallTargetsEntryPointV07(bool throughTheAdapter)
        public
    {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        address v07 = SessionLib.ENTRY_POINT_V07;
        bytes memory data = abi.encodeCall(entryPoint.depositTo, (alice));
        expectValidateRevert(
            sessionOp(id, oneCall(throughTheAdapter, v07, 0.1 ether, data)), forbidden(v07)
        );
    }

    /// @dev SECURITY #15: Permit2 holds the owner's usual approvals; it is never a target.
    function testFuzz_validateUserOp_reverts_whenAnyCallTargetsPermit2(bool throughTheAdapter)
        public
    {
        uint32 id = grantPing();
        address permit2 = SessionLib.PERMIT2;
        bytes memory data = abi.encodeWithSelector(
            bytes4(0x87517c45), address(usd), alice, type(uint160).max, type(uint48).max
        );
        expectValidateRevert(
            sessionOp(id, oneCall(throughTheAdapter, permit2, 0, data)), forbidden(permit2)
        );
    }

    /// @dev The adapter factory: a session has no business deploying or calling adapters.
    function testFuzz_validateUserOp_reverts_whenAnyCallTargetsTheAdapterFactory(bool throughTheAdapter)
        public
    {
        uint32 id = grantPing();
        bytes memory data = abi.encodeCall(adapters.deploy, (alice));
        expectValidateRevert(
            sessionOp(id, oneCall(throughTheAdapter, address(adapters), 0, data)),
            forbidden(address(adapters))
        );
    }

    /// @dev The adapter calling itself (a nested `run` or `sweep`) is refused.
    function test_validateUserOp_reverts_whenRunTargetsTheAdapterItself() public {
        uint32 id = grantPing();
        address adapter = account.sessionAdapter();
        bytes memory nested = abi.encodeCall(
            SessionAdapter.run,
            (address(target), abi.encodeCall(Target.ping, (1, alice, 2)), new address[](0))
        );
        PackedUserOperation memory op = sessionOp(id, call(adapter, 0, nested));
        expectValidationRevert(forbidden(adapter));
        submit(op);
    }

    // -------------------------------------------------------------------------------------
    // Native value
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_whenValueOnAPermissionWithoutAllowValue() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), false, 1 ether));
        PackedUserOperation memory op =
            sessionOp(id, call(address(target), 1, abi.encodeCall(Target.ping, (1, alice, 2))));
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
                id, call(address(target), 0.4 ether, abi.encodeCall(Target.ping, (1, alice, 2)))
            )
        );
        assertEq(address(target).balance, 0.4 ether);
        assertEq(account.getSpend(id, address(0)).spent, 0.4 ether);
    }

    function testFuzz_validateUserOp_reverts_whenValueOverTheNativeLimit(uint256 value) public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        value = bound(value, 1 ether + 1, type(uint256).max);
        expectValidateRevert(
            sessionOp(id, call(address(target), value, abi.encodeCall(Target.ping, (1, alice, 2)))),
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(0), value, 1 ether
            )
        );
    }

    function test_validateUserOp_reverts_whenBatchValuesSumOverTheNativeLimit() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        Execution[] memory calls = new Execution[](2);
        calls[0] = routed(address(target), 0.6 ether, abi.encodeCall(Target.ping, (1, alice, 2)));
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
            sessionOp(id, call(address(target), 1 wei, abi.encodeCall(Target.ping, (1, alice, 2))));
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
        submit(sessionOp(id, call(bob, 0.7 ether, "")));
        assertEq(bob.balance, 0.7 ether);
        PackedUserOperation memory op = sessionOp(id, call(bob, 0.7 ether, ""));
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
            sessionOp(id, call(address(target), 0.1 ether, data)),
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

    // Typed conditions: the argument is read as its ABI type, canonically encoded.

    function testFuzz_validateUserOp_reverts_whenNegativeIntMeetsGteZero(int256 x) public {
        // As a uint256 every negative int256 is >= 0: compared as signed it is not.
        uint32 id = grantTyped(ISakSessions.Op.Gte, 2, INT256, values(bytes32(0)));
        x = bound(x, type(int256).min, -1);
        expectValidateRevert(sessionOp(id, pingRaw(bytes32(uint256(x)))), argFailed(2));
    }

    function testFuzz_handleOps_signedConditions_compareAsSigned(int256 x) public {
        // -100 <= x <= 100, as an int16
        ISakSessions.ArgCondition[] memory conds = new ISakSessions.ArgCondition[](2);
        conds[0] = ISakSessions.ArgCondition(2, ISakSessions.Op.Gte, INT16, values(signed(-100)));
        conds[1] = ISakSessions.ArgCondition(2, ISakSessions.Op.Lte, INT16, values(signed(100)));
        uint32 id = grant(pingSession(conds, false, 0));
        x = bound(x, -100, 100);
        submit(sessionOp(id, pingRaw(signed(x))));
        assertEq(target.pings(), 1);
        expectValidateRevert(sessionOp(id, pingRaw(signed(-101))), argFailed(2));
        expectValidateRevert(sessionOp(id, pingRaw(signed(101))), argFailed(2));
    }

    function testFuzz_validateUserOp_reverts_whenUintArgumentHasDirtyHighBits(
        uint8 low,
        uint256 dirt
    ) public {
        // uint8 >= 10: a word 0x..01_05 is 261 >= 10 as a uint256, but a masking decoder reads 5.
        uint32 id = grantTyped(ISakSessions.Op.Gte, 2, 1, values(bytes32(uint256(10))));
        dirt = bound(dirt, 1, type(uint248).max);
        bytes32 dirty = bytes32((dirt << 8) | low);
        expectValidateRevert(sessionOp(id, pingRaw(dirty)), argFailed(2));
        if (low >= 10) {
            submit(sessionOp(id, pingRaw(bytes32(uint256(low)))));
            assertEq(target.pings(), 1);
        }
    }

    function testFuzz_validateUserOp_reverts_whenIntArgumentIsNotSignExtended(uint256 raw) public {
        // int8 <= 0: the word 0xff..ff01 is -255 as an int256, but a decoder that reads the low
        // byte sign-extended sees +1. Only -128..127, sign-extended, is an int8.
        uint32 id = grantTyped(ISakSessions.Op.Lte, 2, INT8, values(bytes32(0)));
        expectValidateRevert(sessionOp(id, pingRaw(signed(-255))), argFailed(2));
        raw = bound(raw, 0x80, type(uint256).max - 0x80); // never the canonical -128..127
        expectValidateRevert(sessionOp(id, pingRaw(bytes32(raw))), argFailed(2));
        submit(sessionOp(id, pingRaw(signed(-128))));
        assertEq(target.pings(), 1);
    }

    function testFuzz_validateUserOp_reverts_whenEqTypedArgumentIsNotCanonical(uint256 dirt)
        public
    {
        // A bool must be 0 or 1, an address has 96 zero high bits.
        uint32 id = grantTyped(ISakSessions.Op.Eq, 2, BOOL, values(bytes32(uint256(1))));
        expectValidateRevert(
            sessionOp(id, pingRaw(bytes32(bound(dirt, 2, type(uint256).max)))), argFailed(2)
        );
        uint32 other =
            grantTyped(ISakSessions.Op.OneOf, 2, ADDRESS, values(bytes32(uint256(uint160(alice)))));
        bytes32 dirtyAlice = bytes32((bound(dirt, 1, type(uint96).max) << 160) | uint160(alice));
        expectValidateRevert(sessionOp(other, pingRaw(dirtyAlice)), argFailed(2));
    }

    function signed(int256 x) internal pure returns (bytes32) {
        return bytes32(uint256(x));
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
        expectValidateRevert(sessionOp(id, call(address(target), 0, data)), argFailed(1));
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
        expectValidateRevert(sessionOp(id, call(address(target), 0, data)), argFailed(2));
    }

    function test_validateUserOp_reverts_withTheIndexOfTheFailingCondition() public {
        ISakSessions.ArgCondition[] memory conds = new ISakSessions.ArgCondition[](2);
        conds[0] = ISakSessions.ArgCondition(0, ISakSessions.Op.Eq, 0, values(bytes32(uint256(7))));
        conds[1] =
            ISakSessions.ArgCondition(2, ISakSessions.Op.Lte, UINT256, values(bytes32(uint256(5))));
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
        PackedUserOperation memory op = sessionOp(id, call(address(target), 0, data));

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

    /// @dev Sessions never approve, whatever the limit allows (see also Spend's approve tests).
    function test_validateUserOp_reverts_whenApprovingACappedToken() public {
        uint32 id = grant(usdSession(100e6));
        PackedUserOperation memory op =
            sessionOp(id, one(address(usd), 0, abi.encodeCall(usd.approve, (alice, 1e6))));
        expectValidationRevert(notPermitted(address(usd), usd.approve.selector));
        submit(op);
    }

    /// @dev Without `allowTransfer` a capped token leaves only for the adapter.
    function test_validateUserOp_reverts_whenTransferToAnotherRecipientIsNotAllowed() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.spendLimits[0].allowTransfer = false;
        uint32 id = grant(c);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.RecipientNotPermitted.selector, address(usd), alice)
        );
        submit(op);
    }

    function test_validateUserOp_reverts_whenTransferCarriesValue() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        uint32 id = grant(c);
        PackedUserOperation memory op =
            sessionOp(id, one(address(usd), 1, abi.encodeCall(usd.transfer, (alice, 1e6))));
        expectValidationRevert(notPermitted(address(usd), usd.transfer.selector));
        submit(op);
    }

    /// @dev address(0) names native ETH's cap, not a token: a `transfer`-shaped call to it
    ///      (which would succeed, moving nothing) is not charged to the native cap.
    function test_validateUserOp_reverts_whenTransferTargetsTheNativeSentinel() public {
        uint32 id = grant(pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether));
        bytes memory data = abi.encodeCall(usd.transfer, (account.sessionAdapter(), 1 ether));
        PackedUserOperation memory op = sessionOp(id, one(address(0), 0, data));
        expectValidationRevert(notPermitted(address(0), usd.transfer.selector));
        submit(op);
    }

    /// @dev Every selector but `transfer` (approve included) on a capped token is refused.
    function testFuzz_validateUserOp_reverts_whenCappedTokenCalledWithAnyOtherSelector(bytes4 selector)
        public
    {
        if (selector == usd.transfer.selector) selector = usd.transferFrom.selector;
        uint32 id = grant(usdSession(100e6));
        bytes memory data = abi.encodeWithSelector(selector, address(account), alice, 1e6);
        expectValidateRevert(
            sessionOp(id, one(address(usd), 0, data)), notPermitted(address(usd), selector)
        );
    }

    // -------------------------------------------------------------------------------------
    // The adapter route
    // -------------------------------------------------------------------------------------

    /// @dev `adapter.run(target, ping(1, alice, 2), [usd])` calldata.
    function runPing() internal view returns (bytes memory) {
        return abi.encodeCall(
            SessionAdapter.run,
            (address(target), abi.encodeCall(Target.ping, (1, alice, 2)), tokens1(address(usd)))
        );
    }

    function malformed() internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.MalformedAdapterCall.selector);
    }

    /// @dev A session op whose one element is `adapter.run` with the raw calldata `data`.
    function runOp(uint32 id, bytes memory data)
        internal
        view
        returns (PackedUserOperation memory)
    {
        return sessionOp(id, one(account.sessionAdapter(), 0, data));
    }

    function test_handleOps_callThroughTheAdapter_reachesTheTargetAsTheAdapter() public {
        uint32 id = grantPing();
        submit(sessionOp(id, ping(1, alice, 2)));
        assertEq(target.pings(), 1);
        assertEq(target.lastCaller(), account.sessionAdapter(), "the target never sees the account");
    }

    /// @dev Made by the account itself, a permitted call would act with the account's
    ///      allowances and operator rights: refused, and named as such.
    function test_validateUserOp_reverts_whenAPermittedCallIsMadeDirectly() public {
        uint32 id = grantPing();
        PackedUserOperation memory op =
            sessionOp(id, one(address(target), 0, abi.encodeCall(Target.ping, (1, alice, 2))));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.CallNotThroughAdapter.selector, address(target), Target.ping.selector
            )
        );
        submit(op);
    }

    function test_validateUserOp_reverts_whenAPermittedEthSendIsMadeDirectly() public {
        ISakSessions.SessionConfig memory c =
            pingSession(new ISakSessions.ArgCondition[](0), true, 1 ether);
        c.permissions[0] = permission(bob, bytes4(0), true);
        uint32 id = grant(c);
        PackedUserOperation memory op = sessionOp(id, one(bob, 0.1 ether, ""));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.CallNotThroughAdapter.selector, bob, bytes4(0))
        );
        submit(op);
    }

    /// @dev `run` is the adapter's only entry for a session (`sweep`, anything else: refused).
    function testFuzz_validateUserOp_reverts_whenTheAdapterIsCalledWithAnotherSelector(bytes4 selector)
        public
    {
        if (selector == SessionAdapter.run.selector) selector = SessionAdapter.sweep.selector;
        uint32 id = grantPing();
        address adapter = account.sessionAdapter();
        expectValidateRevert(
            runOp(id, abi.encodePacked(selector, uint256(0))), notPermitted(adapter, selector)
        );
    }

    function test_validateUserOp_reverts_whenSweepIsCalledOnTheAdapter() public {
        uint32 id = grantPing();
        address adapter = account.sessionAdapter();
        PackedUserOperation memory op =
            runOp(id, abi.encodeCall(SessionAdapter.sweep, (tokens1(address(usd)))));
        expectValidationRevert(notPermitted(adapter, SessionAdapter.sweep.selector));
        submit(op);
    }

    /// @dev Each account has its own adapter: another account's is just another address.
    function test_validateUserOp_reverts_whenRunIsCalledOnAnotherAccountsAdapter() public {
        uint32 id = grantPing();
        SakAccount second = factory.createAccount(owner, bytes32(uint256(1)));
        address elsewhere = second.sessionAdapter();
        assertNotEq(elsewhere, account.sessionAdapter());
        PackedUserOperation memory op = sessionOp(
            id,
            one(elsewhere, 0, runPing()) // a well-formed run, on the wrong adapter
        );
        expectValidationRevert(notPermitted(elsewhere, SessionAdapter.run.selector));
        submit(op);
    }

    function test_validateUserOp_reverts_whenRunIsCalledOnTheAdapterFactory() public {
        uint32 id = grantPing();
        PackedUserOperation memory op = sessionOp(id, one(address(adapters), 0, runPing()));
        expectValidationRevert(forbidden(address(adapters)));
        submit(op);
    }

    /// @dev EqAccount means the account: the adapter, which returns what it holds to the
    ///      account, is not a valid recipient of a conditioned argument.
    function test_validateUserOp_reverts_whenEqAccountArgumentIsTheAdapter() public {
        uint32 id = grantCondition(ISakSessions.Op.EqAccount, 1, new bytes32[](0));
        PackedUserOperation memory op = sessionOp(id, ping(0, account.sessionAdapter(), 0));
        expectValidationRevert(argFailed(1));
        submit(op);
    }

    function test_handleOps_canonicalRun_validatesAndExecutes() public {
        uint32 id = grantPing();
        submit(runOp(id, runPing()));
        assertEq(target.pings(), 1);
    }

    /// @dev The two offset words (of `data`, of `tokens`) must be the canonical ones: with any
    ///      other, the ABI decoder of `run` could read another call than the one checked.
    function testFuzz_validateUserOp_reverts_whenARunOffsetIsAltered(bool ofTokens, uint256 value)
        public
    {
        uint32 id = grantPing();
        bytes memory data = runPing();
        uint256 at = ofTokens ? 0x44 : 0x24; // byte offset of the word in `data`
        uint256 canonical;
        assembly ("memory-safe") {
            canonical := mload(add(add(data, 0x20), at))
        }
        value = bound(value, 0, type(uint256).max - 1);
        if (value >= canonical) value += 1;
        assembly ("memory-safe") {
            mstore(add(add(data, 0x20), at), value)
        }
        expectValidateRevert(runOp(id, data), malformed());
    }

    function testFuzz_validateUserOp_reverts_whenRunHasTrailingBytes(uint256 extra, bytes32 fill)
        public
    {
        uint32 id = grantPing();
        extra = bound(extra, 1, 96);
        bytes memory tail = abi.encodePacked(fill, fill, fill);
        assembly ("memory-safe") {
            mstore(tail, extra)
        }
        expectValidateRevert(runOp(id, bytes.concat(runPing(), tail)), malformed());
    }

    function testFuzz_validateUserOp_reverts_whenRunIsTruncated(uint256 cut) public {
        uint32 id = grantPing();
        bytes memory data = runPing();
        // Keep the selector: shorter, it is no `run` at all (CallNotPermitted).
        cut = bound(cut, 1, data.length - 4);
        assembly ("memory-safe") {
            mstore(data, sub(mload(data), cut))
        }
        expectValidateRevert(runOp(id, data), malformed());
    }

    function testFuzz_validateUserOp_reverts_whenRunTargetHasDirtyUpperBits(uint256 dirt) public {
        uint32 id = grantPing();
        bytes memory data = runPing();
        dirt = bound(dirt, 1, type(uint96).max);
        uint256 word = (dirt << 160) | uint256(uint160(address(target)));
        assembly ("memory-safe") {
            mstore(add(data, 0x24), word)
        }
        expectValidateRevert(runOp(id, data), malformed());
    }

    function testFuzz_validateUserOp_reverts_whenRunTokenCountIsAltered(uint256 n) public {
        uint32 id = grantPing();
        bytes memory data = runPing(); // one token, its count in the second-to-last word
        n = bound(n, 0, type(uint256).max - 1);
        if (n >= 1) n += 1;
        assembly ("memory-safe") {
            mstore(add(data, sub(mload(data), 0x20)), n)
        }
        expectValidateRevert(runOp(id, data), malformed());
    }

    /// @dev A documented bound of the decoder: at most 64 tokens per `run`.
    function test_validateUserOp_reverts_whenRunListsMoreThan64Tokens() public {
        uint32 id = grantPing();
        bytes memory ping_ = abi.encodeCall(Target.ping, (1, alice, 2));
        bytes memory data =
            abi.encodeCall(SessionAdapter.run, (address(target), ping_, new address[](65)));
        expectValidateRevert(runOp(id, data), malformed());
        data = abi.encodeCall(SessionAdapter.run, (address(target), ping_, new address[](64)));
        assertFalse(sigFailed(validate(runOp(id, data))));
    }

    /// @dev Whatever `abi.encodeCall` produces, validation reads the same call as `abi.decode`.
    function testFuzz_decodeRun_agreesWithAbiDecode_onCanonicalEncodings(
        uint160 raw,
        bytes32[5] memory words,
        uint256 length,
        uint256 count
    ) public {
        RunDecoder decoder = new RunDecoder();
        address to = address(uint160(bound(raw, 0, type(uint160).max)));
        bytes memory inner = abi.encodePacked(words);
        length = bound(length, 0, inner.length);
        assembly ("memory-safe") {
            mstore(inner, length)
        }
        address[] memory tokens = new address[](bound(count, 0, 64));
        for (uint256 i; i < tokens.length; ++i) {
            tokens[i] = address(uint160(uint256(keccak256(abi.encode(words[i % 5], i)))));
        }
        bytes memory data = abi.encodeCall(SessionAdapter.run, (to, inner, tokens));
        (address seenTarget, bytes memory seenData) = decoder.validation(data);
        (address decodedTarget, bytes memory decodedData,) =
            abi.decode(slice(data, 4), (address, bytes, address[]));
        assertEq(seenTarget, decodedTarget);
        assertEq(seenData, decodedData);
        assertEq(seenTarget, to);
        assertEq(seenData, inner);
    }

    /// @dev Differential: whenever validation accepts a (corrupted) `run` encoding, the ABI
    ///      decoder of `run` accepts it too and reads the same target and call data.
    function testFuzz_decodeRun_agreesWithTheAbiDecoderOfRun(
        uint256 word,
        uint256 value,
        bool small,
        uint256 cut
    ) public {
        RunDecoder decoder = new RunDecoder();
        bytes memory data = runPing();
        uint256 words = (data.length - 4) / 32;
        word = bound(word, 0, words - 1);
        // Small values are plausible offsets, lengths and counts; large ones anything else.
        value = small
            ? bound(value, 0, data.length + 64)
            : bound(value, data.length + 65, type(uint256).max);
        cut = bound(cut, 0, 40);
        assembly ("memory-safe") {
            mstore(add(add(data, 0x24), mul(word, 0x20)), value)
            mstore(data, sub(mload(data), cut))
        }
        (bool validated, bytes memory seen) =
            address(decoder).call(abi.encodeCall(decoder.validation, (data)));
        (bool decoded, bytes memory ran) = address(decoder).call(data);
        if (validated) {
            assertTrue(decoded, "validation accepted what the adapter cannot decode");
            assertEq(keccak256(seen), keccak256(ran), "validation saw another call");
        }
    }

    function slice(bytes memory data, uint256 from) internal pure returns (bytes memory out) {
        out = new bytes(data.length - from);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[from + i];
        }
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
    ///      follows callData; `o` points 64 bytes into it, where a permitted `ping` (through
    ///      the adapter) sits after a zero paymaster address (the account pays; gas is unlimited). Without the element
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
        op.paymasterAndData =
            abi.encodePacked(bytes32(0), bytes32(0), element(account.sessionAdapter(), runPing()));
        signSession(op, id, now_());
        expectValidateRevert(op, decodingError());
    }

    /// @dev The element's head is inside the batch but its call data is read from past it (from
    ///      paymasterAndData, as above).
    function test_validateUserOp_reverts_whenABatchElementsCallDataLiesPastTheBatch() public {
        uint32 id = grantPing();
        // batch: [0x20][1][0x20][adapter][0][c] = 192 bytes; callData = 100 + 192 = 292 bytes,
        // padded to 320; the element starts at callData byte 196.
        uint256 c = 320 + 32 + 64 - 196;
        bytes memory data = abi.encodePacked(
            account.execute.selector, BATCH_MODE, uint256(0x40), uint256(192), uint256(0x20)
        );
        data = abi.encodePacked(
            data,
            uint256(1),
            uint256(0x20),
            uint256(uint160(account.sessionAdapter())),
            uint256(0),
            c
        );
        bytes memory ping_ = runPing();
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
