// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";
import {SessionAdapter} from "../src/SessionAdapter.sol";
import {Vm} from "forge-std/Vm.sol";

/// @notice grantSession: configuration validation, access control and ids.
contract SessionGrantTest is SakTest {
    address internal target = makeAddr("target");

    /// @dev The selectors SessionLib._movesAssets refuses as plain permissions.
    bytes4[18] internal assetSelectors = [
        bytes4(0xa9059cbb), // transfer
        0x095ea7b3, // approve
        0x23b872dd, // transferFrom
        0x39509351, // increaseAllowance
        0xd505accf, // permit
        0x9bd9bbc6, // send
        0x62ad1b83, // operatorSend
        0x959b8c3f, // authorizeOperator
        0xcae9ca51, // approveAndCall(address,uint256,bytes)
        0x4000aea0, // transferAndCall(address,uint256,bytes)
        0xb753a98c, // push
        0xf2d5d56b, // pull
        0xbb35783b, // move
        0xa22cb465, // setApprovalForAll
        0x42842e0e, // safeTransferFrom(address,address,uint256)
        0xb88d4fde, // safeTransferFrom(address,address,uint256,bytes)
        0xf242432a, // safeTransferFrom(address,address,uint256,uint256,bytes)
        0x2eb2c2d6 // safeBatchTransferFrom
    ];

    function expectGrantRevert(ISakSessions.SessionConfig memory c, bytes memory err) internal {
        vm.prank(owner);
        vm.expectRevert(err);
        account.grantSession(c);
    }

    function withPermission(
        ISakSessions.SessionConfig memory c,
        ISakSessions.CallPermission memory p
    ) internal pure returns (ISakSessions.SessionConfig memory) {
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = p;
        return c;
    }

    function withLimit(ISakSessions.SessionConfig memory c, ISakSessions.SpendLimit memory s)
        internal
        pure
        returns (ISakSessions.SessionConfig memory)
    {
        c.spendLimits = new ISakSessions.SpendLimit[](1);
        c.spendLimits[0] = s;
        return c;
    }

    function limit(address token, uint32 period, bool allowTransfer)
        internal
        pure
        returns (ISakSessions.SpendLimit memory)
    {
        return ISakSessions.SpendLimit({
            token: token, allowance: 100e6, period: period, allowTransfer: allowTransfer
        });
    }

    /// @dev A permission on `target.ping` carrying one condition.
    function conditioned(uint8 argIndex, ISakSessions.Op op, uint256 valueCount)
        internal
        view
        returns (ISakSessions.SessionConfig memory c)
    {
        ISakSessions.CallPermission memory p = permission(target, bytes4(0x12345678), false);
        p.conditions = new ISakSessions.ArgCondition[](1);
        p.conditions[0].argIndex = argIndex;
        p.conditions[0].op = op;
        p.conditions[0].argType =
            op == ISakSessions.Op.Lte || op == ISakSessions.Op.Gte ? UINT256 : 0;
        p.conditions[0].values = new bytes32[](valueCount);
        for (uint256 i; i < valueCount; ++i) {
            p.conditions[0].values[i] = bytes32(i + 1);
        }
        c = withPermission(agentSession(), p);
    }

    // -------------------------------------------------------------------------------------
    // Signer and time bounds
    // -------------------------------------------------------------------------------------

    function test_grantSession_reverts_whenSignerIsZero() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.signer = address(0);
        expectGrantRevert(c, abi.encodeWithSelector(ISakSessions.InvalidSigner.selector));
    }

    function test_grantSession_reverts_whenValidAfterEqualsValidUntil() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.validAfter = c.validUntil;
        expectGrantRevert(
            c,
            abi.encodeWithSelector(
                ISakSessions.InvalidTimeBounds.selector, c.validAfter, c.validUntil
            )
        );
    }

    function testFuzz_grantSession_reverts_whenValidAfterIsNotBeforeValidUntil(
        uint40 validAfter,
        uint40 validUntil
    ) public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.validAfter = uint40(bound(validAfter, now_() + 1, type(uint40).max));
        c.validUntil = uint40(bound(validUntil, now_() + 1, c.validAfter));
        expectGrantRevert(
            c,
            abi.encodeWithSelector(
                ISakSessions.InvalidTimeBounds.selector, c.validAfter, c.validUntil
            )
        );
    }

    function testFuzz_grantSession_reverts_whenValidUntilIsNotInTheFuture(uint40 validUntil)
        public
    {
        ISakSessions.SessionConfig memory c = agentSession();
        c.validAfter = 0;
        c.validUntil = uint40(bound(validUntil, 1, now_()));
        expectGrantRevert(
            c, abi.encodeWithSelector(ISakSessions.InvalidTimeBounds.selector, 0, c.validUntil)
        );
    }

    function test_grantSession_accepts_validUntilOneSecondAhead() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.validAfter = 0;
        c.validUntil = now_() + 1;
        uint32 id = grant(c);
        assertEq(account.getSession(id).validUntil, now_() + 1);
    }

    function test_grantSession_reverts_whenValidUntilDoesNotFitUint40() public {
        ISakSessions.SessionConfig memory c = agentSession();
        bytes memory data = abi.encodeCall(account.grantSession, (c));
        // Word 3 after the selector (tuple offset, signer, validAfter, validUntil). Truncated
        // to 40 bits it would be a valid bound, so only the decoder's range check refuses it.
        uint256 validUntilAt = 4 + 3 * 32;
        uint256 dirty = (uint256(1) << 40) | c.validUntil;
        assembly ("memory-safe") {
            mstore(add(add(data, 0x20), validUntilAt), dirty)
        }
        vm.prank(owner);
        (bool ok,) = address(account).call(data);
        assertFalse(ok, "an out-of-range uint40 is not truncated");
    }

    // -------------------------------------------------------------------------------------
    // List sizes
    // -------------------------------------------------------------------------------------

    function permissions(uint256 n) internal view returns (ISakSessions.SessionConfig memory c) {
        c = agentSession();
        c.permissions = new ISakSessions.CallPermission[](n);
        for (uint256 i; i < n; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) i < 2^32
            c.permissions[i] = permission(target, bytes4(uint32(i + 1)), false);
        }
    }

    function spendLimits(uint256 n) internal view returns (ISakSessions.SessionConfig memory c) {
        c = agentSession();
        c.spendLimits = new ISakSessions.SpendLimit[](n);
        for (uint256 i; i < n; ++i) {
            c.spendLimits[i] = limit(address(uint160(0x1000 + i)), uint32(DAY), true);
        }
    }

    function conditions(uint256 n) internal view returns (ISakSessions.SessionConfig memory c) {
        ISakSessions.CallPermission memory p = permission(target, bytes4(0x12345678), false);
        p.conditions = new ISakSessions.ArgCondition[](n);
        for (uint256 i; i < n; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast) i < 32
            p.conditions[i].argIndex = uint8(i);
            p.conditions[i].op = ISakSessions.Op.Eq;
            p.conditions[i].values = new bytes32[](1);
        }
        c = withPermission(agentSession(), p);
    }

    function test_grantSession_reverts_whenMoreThan32Permissions() public {
        expectGrantRevert(
            permissions(33), abi.encodeWithSelector(ISakSessions.TooManyEntries.selector)
        );
    }

    function test_grantSession_accepts_32Permissions() public {
        grant(permissions(32));
    }

    function test_grantSession_reverts_whenMoreThan16SpendLimits() public {
        expectGrantRevert(
            spendLimits(17), abi.encodeWithSelector(ISakSessions.TooManyEntries.selector)
        );
    }

    function test_grantSession_accepts_16SpendLimits() public {
        grant(spendLimits(16));
    }

    function test_grantSession_reverts_whenMoreThan8Conditions() public {
        expectGrantRevert(
            conditions(9), abi.encodeWithSelector(ISakSessions.TooManyEntries.selector)
        );
    }

    function test_grantSession_accepts_8Conditions() public {
        grant(conditions(8));
    }

    // -------------------------------------------------------------------------------------
    // Spend limits
    // -------------------------------------------------------------------------------------

    function test_grantSession_reverts_whenErc20AllowanceIsZero() public {
        ISakSessions.SpendLimit memory s = limit(address(usd), uint32(DAY), true);
        s.allowance = 0;
        expectGrantRevert(
            withLimit(agentSession(), s),
            abi.encodeWithSelector(ISakSessions.ZeroAllowance.selector, address(usd))
        );
    }

    function test_grantSession_reverts_whenNativeAllowanceIsZero() public {
        ISakSessions.SpendLimit memory s = limit(address(0), uint32(DAY), false);
        s.allowance = 0;
        expectGrantRevert(
            withLimit(agentSession(), s),
            abi.encodeWithSelector(ISakSessions.ZeroAllowance.selector, address(0))
        );
    }

    function testFuzz_grantSession_reverts_whenPeriodBelowOneMinute(uint32 period) public {
        period = uint32(bound(period, 0, 59));
        expectGrantRevert(
            withLimit(agentSession(), limit(address(usd), period, true)),
            abi.encodeWithSelector(ISakSessions.InvalidPeriod.selector, period)
        );
    }

    function test_grantSession_accepts_oneMinutePeriod() public {
        uint32 id = grant(withLimit(agentSession(), limit(address(usd), 60, true)));
        assertEq(account.getSpend(id, address(usd)).period, 60);
    }

    function test_grantSession_reverts_whenSessionSpansTooManyPeriods() public {
        // Windows are uint24 indexes: span / period must stay below 2^24 - 1.
        ISakSessions.SessionConfig memory c =
            withLimit(agentSession(), limit(address(usd), 60, true));
        c.validUntil = c.validAfter + 60 * (2 ** 24 - 1);
        expectGrantRevert(c, abi.encodeWithSelector(ISakSessions.InvalidPeriod.selector, 60));
    }

    function test_grantSession_accepts_spanJustBelowThePeriodIndexLimit() public {
        ISakSessions.SessionConfig memory c =
            withLimit(agentSession(), limit(address(usd), 60, true));
        c.validUntil = c.validAfter + 60 * (2 ** 24 - 1) - 1;
        grant(c);
    }

    function test_grantSession_reverts_whenGasPeriodBelowOneMinute() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.gasBudget = 1 ether;
        c.gasPeriod = 59;
        expectGrantRevert(c, abi.encodeWithSelector(ISakSessions.InvalidPeriod.selector, 59));
    }

    function test_grantSession_reverts_whenGasPeriodDoesNotFitUint24() public {
        // Stored as uint24: a silent truncation of 2^24 would be a zero period.
        ISakSessions.SessionConfig memory c = agentSession();
        c.gasBudget = 1 ether;
        c.gasPeriod = 2 ** 24;
        expectGrantRevert(c, abi.encodeWithSelector(ISakSessions.InvalidPeriod.selector, 2 ** 24));
    }

    function test_grantSession_reverts_whenNativeLimitAllowsTransfer() public {
        expectGrantRevert(
            withLimit(agentSession(), limit(address(0), uint32(DAY), true)),
            abi.encodeWithSelector(ISakSessions.InvalidSpendLimit.selector, address(0))
        );
    }

    /// @dev Without `allowTransfer` an ERC-20 limit still lets the token leave, but only to the
    ///      account's adapter (to fund a call through it).
    function test_grantSession_accepts_anErc20LimitWithoutAllowTransfer() public {
        uint32 id = grant(withLimit(agentSession(), limit(address(usd), uint32(DAY), false)));
        assertEq(account.getSpend(id, address(usd)).allowance, 100e6);
    }

    function test_grantSession_reverts_whenTokenListedTwice() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.spendLimits = new ISakSessions.SpendLimit[](2);
        c.spendLimits[0] = limit(address(usd), uint32(DAY), true);
        c.spendLimits[1] = limit(address(usd), uint32(DAY), false);
        expectGrantRevert(
            c, abi.encodeWithSelector(ISakSessions.DuplicateSpendLimit.selector, address(usd))
        );
    }

    function test_grantSession_reverts_whenNativeListedTwice() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.spendLimits = new ISakSessions.SpendLimit[](2);
        c.spendLimits[0] = limit(address(0), uint32(DAY), false);
        c.spendLimits[1] = limit(address(0), uint32(DAY * 7), false);
        expectGrantRevert(
            c, abi.encodeWithSelector(ISakSessions.DuplicateSpendLimit.selector, address(0))
        );
    }

    function test_grantSession_reverts_whenSpendLimitTokenIsTheAccount() public {
        expectGrantRevert(
            withLimit(agentSession(), limit(address(account), uint32(DAY), true)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(account))
        );
    }

    function test_grantSession_reverts_whenSpendLimitTokenIsTheEntryPoint() public {
        expectGrantRevert(
            withLimit(agentSession(), limit(address(entryPoint), uint32(DAY), true)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(entryPoint))
        );
    }

    function test_grantSession_reverts_whenSpendLimitTokenIsTheAdapterFactory() public {
        expectGrantRevert(
            withLimit(agentSession(), limit(address(adapters), uint32(DAY), true)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(adapters))
        );
    }

    function test_grantSession_reverts_whenSpendLimitTokenIsTheAdapter() public {
        address adapter = account.sessionAdapter();
        expectGrantRevert(
            withLimit(agentSession(), limit(adapter, uint32(DAY), true)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, adapter)
        );
    }

    function test_grantSession_storesSpendLimit() public {
        uint32 id = grant(usdSession(100e6));
        ISakSessions.SpendView memory s = account.getSpend(id, address(usd));
        assertEq(s.allowance, 100e6);
        assertEq(s.period, DAY);
        assertEq(s.spent, 0);
        assertEq(account.getSpend(id, address(0)).allowance, 0, "no native limit was granted");
    }

    // -------------------------------------------------------------------------------------
    // Permissions
    // -------------------------------------------------------------------------------------

    function testFuzz_grantSession_reverts_whenTargetIsAWildcardSentinel(uint160 raw) public {
        address sentinel = address(uint160(bound(raw, 0, 1)));
        expectGrantRevert(
            withPermission(agentSession(), permission(sentinel, bytes4(0x12345678), false)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, sentinel)
        );
    }

    function test_grantSession_reverts_whenTargetIsTheAccount() public {
        expectGrantRevert(
            withPermission(
                agentSession(), permission(address(account), account.grantSession.selector, false)
            ),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(account))
        );
    }

    function test_grantSession_reverts_whenTargetIsTheEntryPoint() public {
        expectGrantRevert(
            withPermission(
                agentSession(), permission(address(entryPoint), entryPoint.depositTo.selector, true)
            ),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(entryPoint))
        );
    }

    /// @dev The account's own adapter is where session calls come from, never what they call.
    function test_grantSession_reverts_whenTargetIsTheAdapter() public {
        address adapter = account.sessionAdapter();
        expectGrantRevert(
            withPermission(agentSession(), permission(adapter, bytes4(0x12345678), false)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, adapter)
        );
    }

    function test_grantSession_reverts_whenTargetIsTheAdapterFactory() public {
        expectGrantRevert(
            withPermission(
                agentSession(), permission(address(adapters), adapters.deploy.selector, false)
            ),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(adapters))
        );
    }

    /// @dev A module may serve accounts on EntryPoint v0.7: it is never a target either.
    function test_grantSession_reverts_whenTargetIsEntryPointV07() public {
        address v07 = 0x0000000071727De22E5E9d8BAf0edAc6f37da032;
        expectGrantRevert(
            withPermission(agentSession(), permission(v07, bytes4(0xb760faf9), true)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, v07)
        );
    }

    function withPaymaster(ISakSessions.SessionConfig memory c, address paymaster)
        internal
        pure
        returns (ISakSessions.SessionConfig memory)
    {
        c.paymaster = paymaster;
        return c;
    }

    function test_grantSession_reverts_whenPaymasterIsTheAccount() public {
        expectGrantRevert(
            withPaymaster(agentSession(), address(account)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(account))
        );
    }

    function test_grantSession_reverts_whenPaymasterIsTheEntryPoint() public {
        expectGrantRevert(
            withPaymaster(agentSession(), address(entryPoint)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, address(entryPoint))
        );
    }

    function test_grantSession_storesThePaymaster_andAnOpItSponsorsValidates() public {
        address paymaster = makeAddr("paymaster");
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = 0;
        uint32 id = grant(withPaymaster(c, paymaster));
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1e6)));
        op.paymasterAndData = abi.encodePacked(paymaster, uint128(100_000), uint128(0));
        signSession(op, id, now_());
        assertFalse(sigFailed(validate(op)));
    }

    function test_grantSession_reverts_forEveryAssetMovingSelector() public {
        for (uint256 i; i < assetSelectors.length; ++i) {
            expectGrantRevert(
                withPermission(agentSession(), permission(target, assetSelectors[i], false)),
                abi.encodeWithSelector(
                    ISakSessions.TokenSelectorNeedsSpendLimit.selector, target, assetSelectors[i]
                )
            );
        }
    }

    function testFuzz_grantSession_reverts_whenPermissionTargetsACappedToken(bytes4 selector)
        public
    {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(usd), selector, false);
        expectGrantRevert(
            c,
            abi.encodeWithSelector(
                ISakSessions.TokenSelectorNeedsSpendLimit.selector, address(usd), selector
            )
        );
    }

    /// @dev The two-argument ERC-1363 forms, `transferFromAndCall` and the older
    ///      `increaseApproval` move or approve tokens too: only spend limits may permit them.
    function test_grantSession_reverts_forTokenAliases() public {
        bytes4[5] memory aliases = [
            bytes4(0x1296ee62), // ERC-1363 transferAndCall(address,uint256)
            0x3177029f, // ERC-1363 approveAndCall(address,uint256)
            0xd8fbe994, // ERC-1363 transferFromAndCall(address,address,uint256)
            0xc1d34b89, // ERC-1363 transferFromAndCall(address,address,uint256,bytes)
            0xd73dd623 // increaseApproval(address,uint256)
        ];
        for (uint256 i; i < aliases.length; ++i) {
            expectGrantRevert(
                withPermission(agentSession(), permission(target, aliases[i], false)),
                abi.encodeWithSelector(
                    ISakSessions.TokenSelectorNeedsSpendLimit.selector, target, aliases[i]
                )
            );
        }
    }

    /// @dev SECURITY #15: with the owner's usual ERC-20 approval to Permit2, a session allowed
    ///      to call Permit2 could `approve(token, spender, amount, expiration)` (0x87517c45)
    ///      and let any spender pull past every cap: Permit2 is hard-denied.
    function test_grantSession_reverts_whenTargetIsPermit2() public {
        address permit2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
        expectGrantRevert(
            withPermission(agentSession(), permission(permit2, bytes4(0x87517c45), false)),
            abi.encodeWithSelector(ISakSessions.ForbiddenTarget.selector, permit2)
        );
    }

    function test_grantSession_reverts_whenPermissionListedTwice() public {
        ISakSessions.SessionConfig memory c = agentSession();
        c.permissions = new ISakSessions.CallPermission[](2);
        c.permissions[0] = permission(target, bytes4(0x12345678), false);
        c.permissions[1] = permission(target, bytes4(0x12345678), true);
        expectGrantRevert(
            c,
            abi.encodeWithSelector(
                ISakSessions.DuplicatePermission.selector, target, bytes4(0x12345678)
            )
        );
    }

    // -------------------------------------------------------------------------------------
    // Conditions
    // -------------------------------------------------------------------------------------

    function expectInvalidCondition(ISakSessions.SessionConfig memory c, uint8 argIndex) internal {
        expectGrantRevert(
            c,
            abi.encodeWithSelector(
                ISakSessions.InvalidCondition.selector, target, bytes4(0x12345678), argIndex
            )
        );
    }

    function testFuzz_grantSession_reverts_whenArgIndexBeyondCalldataWords(uint8 argIndex) public {
        argIndex = uint8(bound(argIndex, 32, 255));
        expectInvalidCondition(conditioned(argIndex, ISakSessions.Op.Eq, 1), argIndex);
    }

    function test_grantSession_accepts_lastArgIndex() public {
        grant(conditioned(31, ISakSessions.Op.Eq, 1));
    }

    function test_grantSession_reverts_whenEqHasNoValue() public {
        expectInvalidCondition(conditioned(0, ISakSessions.Op.Eq, 0), 0);
    }

    function test_grantSession_reverts_whenEqHasTwoValues() public {
        expectInvalidCondition(conditioned(0, ISakSessions.Op.Eq, 2), 0);
    }

    function test_grantSession_reverts_whenLteHasTwoValues() public {
        expectInvalidCondition(conditioned(1, ISakSessions.Op.Lte, 2), 1);
    }

    function test_grantSession_reverts_whenGteHasNoValue() public {
        expectInvalidCondition(conditioned(2, ISakSessions.Op.Gte, 0), 2);
    }

    function test_grantSession_reverts_whenOneOfHasNoValue() public {
        expectInvalidCondition(conditioned(0, ISakSessions.Op.OneOf, 0), 0);
    }

    function test_grantSession_reverts_whenOneOfHas17Values() public {
        expectInvalidCondition(conditioned(0, ISakSessions.Op.OneOf, 17), 0);
    }

    function test_grantSession_accepts_oneOfWith16Values() public {
        grant(conditioned(0, ISakSessions.Op.OneOf, 16));
    }

    function test_grantSession_reverts_whenEqAccountHasAValue() public {
        expectInvalidCondition(conditioned(3, ISakSessions.Op.EqAccount, 1), 3);
    }

    /// @dev Reference: which `argType` codes each operator takes (written out, not SessionLib's).
    function typeFits(uint8 t, ISakSessions.Op op) internal pure returns (bool) {
        bool uintN = t >= 1 && t <= 32;
        bool intN = t >= 0x41 && t <= 0x60;
        if (op == ISakSessions.Op.Lte || op == ISakSessions.Op.Gte) return uintN || intN;
        if (op == ISakSessions.Op.EqAccount) return t == 0 || t == ADDRESS;
        return t == 0 || uintN || intN || t == ADDRESS || t == BOOL;
    }

    function testFuzz_grantSession_acceptsExactlyTheTypesEachOperatorTakes(uint8 t, uint8 o)
        public
    {
        ISakSessions.Op op = ISakSessions.Op(bound(o, 0, 4));
        ISakSessions.SessionConfig memory c =
            conditioned(0, op, op == ISakSessions.Op.EqAccount ? 0 : 1);
        c.permissions[0].conditions[0].argType = t;
        if (typeFits(t, op)) grant(c);
        else expectInvalidCondition(c, 0);
    }

    function test_grantSession_reverts_whenAValueIsNotCanonicalForItsType() public {
        uint8[4] memory types = [uint8(1), INT8, BOOL, ADDRESS];
        uint256[4] memory bad = [uint256(256), 0x80, 2, 1 << 160];
        for (uint256 i; i < 4; ++i) {
            ISakSessions.SessionConfig memory c = conditioned(0, ISakSessions.Op.OneOf, 2);
            c.permissions[0].conditions[0].argType = types[i];
            c.permissions[0].conditions[0].values[1] = bytes32(0);
            grant(c); // 1 and 0 fit every type
            c.permissions[0].conditions[0].values[1] = bytes32(bad[i]);
            expectInvalidCondition(c, 0);
        }
    }

    // -------------------------------------------------------------------------------------
    // Access control, ids, event
    // -------------------------------------------------------------------------------------

    function testFuzz_grantSession_reverts_whenCallerIsAStranger(address caller) public {
        vm.assume(caller != owner && caller != address(account) && caller != address(entryPoint));
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.grantSession(c);
    }

    function test_grantSession_reverts_whenCallerIsTheSessionSigner() public {
        grant(usdSession(100e6));
        ISakSessions.SessionConfig memory c = usdSession(1_000_000e6);
        vm.prank(agent);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, agent));
        account.grantSession(c);
    }

    function test_grantSession_byOwner() public {
        uint32 id = grant(usdSession(100e6));
        assertEq(account.getSession(id).signer, agent);
    }

    function test_grantSession_byTheAccount_throughAnOwnerOp() public {
        Execution[] memory calls =
            one(address(account), 0, abi.encodeCall(account.grantSession, (usdSession(100e6))));
        PackedUserOperation memory op = userOp(executeData(calls));
        signOwner(op);
        submit(op);
        assertTrue(account.getSession(1).active);
    }

    /// @dev The EntryPoint is not an owner: an owner op must reach grantSession as a self-call
    ///      (execute -> account), so no validation path can lend the EntryPoint's authority.
    function test_grantSession_refusesTheEntryPoint_evenForAnOwnerOp() public {
        PackedUserOperation memory op =
            userOp(abi.encodeCall(account.grantSession, (usdSession(100e6))));
        signOwner(op);
        submit(op); // validates; the call itself reverts NotOwner(EntryPoint) in execution
        assertFalse(account.getSession(1).active);

        op = userOp(
            executeData(
                one(address(account), 0, abi.encodeCall(account.grantSession, (usdSession(100e6))))
            )
        );
        signOwner(op);
        submit(op);
        assertTrue(account.getSession(1).active, "through execute, as a self-call");
    }

    function test_grantSession_idsAreSequentialFromOne() public {
        assertEq(grant(usdSession(1)), 1);
        assertEq(grant(usdSession(2)), 2);
        assertEq(grant(usdSession(3)), 3);
    }

    function test_grantSession_neverReusesIds_afterRevocations() public {
        assertEq(grant(usdSession(1)), 1);
        assertEq(grant(usdSession(1)), 2);
        vm.prank(owner);
        account.revokeSession(2);
        assertEq(grant(usdSession(1)), 3);
        vm.prank(owner);
        account.revokeAllSessions();
        assertEq(grant(usdSession(1)), 4);
        assertEq(account.getSpend(4, address(usd)).allowance, 1);
    }

    function test_grantSession_emitsSessionGranted() public {
        grant(usdSession(1));
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        vm.expectEmit(true, true, false, true, address(account));
        emit ISakSessions.SessionGranted(2, agent, c);
        grant(c);
    }

    function test_grantSession_deploysTheAccountsAdapter_once() public {
        address adapter = account.sessionAdapter();
        assertEq(adapter, adapters.adapterOf(address(account)));
        assertEq(adapter.code.length, 0, "not deployed before the first grant");
        vm.recordLogs();
        grant(usdSession(1));
        assertGt(adapter.code.length, 0, "deployed by the grant");
        assertEq(countAdapterDeployed(), 1);
        vm.recordLogs();
        grant(usdSession(1));
        assertEq(countAdapterDeployed(), 0, "a second grant deploys nothing");
    }

    function countAdapterDeployed() internal returns (uint256 n) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == SessionAdapter.AdapterDeployed.selector) ++n;
        }
    }

    function test_grantSession_storesSession() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.validAfter = START + 1 days;
        uint32 id = grant(c);
        ISakSessions.SessionView memory s = account.getSession(id);
        assertEq(s.signer, agent);
        assertEq(s.validAfter, START + 1 days);
        assertEq(s.validUntil, START + 30 days);
        assertTrue(s.active);
    }
}
