// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";

/// @notice A token paymaster: sponsors any operation and, after it, takes its fee in the
///         sender's tokens through an allowance the sender granted earlier.
contract ChargingPaymaster {
    IERC20 internal immutable TOKEN;

    constructor(IERC20 token) {
        TOKEN = token;
    }

    function validatePaymasterUserOp(PackedUserOperation calldata op, bytes32, uint256)
        external
        pure
        returns (bytes memory context, uint256 validationData)
    {
        return (abi.encode(op.sender), 0);
    }

    function postOp(uint8, bytes calldata context, uint256, uint256) external {
        // forge-lint: disable-next-line(erc20-unchecked-transfer) the mock token reverts
        TOKEN.transferFrom(abi.decode(context, (address)), address(this), 500e6);
    }
}

/// @notice The gas budget (the account's ETH a session may spend on prefunds per gas period)
///         and the operation limit.
contract SessionGasTest is SakTest {
    /// @dev The fixture's required prefund: (verification + call + preVerification) gas at
    ///      a 2 gwei maxFeePerGas.
    uint256 internal constant COST = (500_000 + 500_000 + 50_000) * 2 gwei;

    function gasSession(uint80 budget, uint32 gasPeriod, uint24 maxOps) internal returns (uint32) {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = budget;
        c.gasPeriod = gasPeriod;
        c.maxOps = maxOps;
        return grant(c);
    }

    function paymasterSession(uint80 budget, address paymaster) internal returns (uint32) {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = budget;
        c.gasPeriod = uint32(DAY);
        c.paymaster = paymaster;
        return grant(c);
    }

    function gasExceeded(uint256 requested, uint256 remaining)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(ISakSessions.GasBudgetExceeded.selector, requested, remaining);
    }

    /// @dev A signed session op with explicit gas fields and paymasterAndData.
    function gasOp(
        uint32 id,
        uint256 verificationGas,
        uint256 callGas,
        uint256 preVerificationGas,
        uint256 maxFeePerGas,
        bytes memory paymasterAndData
    ) internal view returns (PackedUserOperation memory op) {
        op = userOp(executeData(transferCall(alice, 1e6)));
        op.accountGasLimits = bytes32((verificationGas << 128) | callGas);
        op.preVerificationGas = preVerificationGas;
        op.gasFees = bytes32((maxFeePerGas << 128) | maxFeePerGas);
        op.paymasterAndData = paymasterAndData;
        signSession(op, id, now_());
    }

    // -------------------------------------------------------------------------------------
    // Finite budget
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_whenPrefundExceedsTheGasBudget() public {
        uint32 id = gasSession(uint80(COST - 1 gwei), uint32(DAY), 0);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(gasExceeded(COST, COST - 1 gwei));
        submit(op);
    }

    function test_handleOps_chargesTheRequiredPrefund_evenWhenTheAccountHasADeposit() public {
        // A deposit means the account sends no ETH in validation; the budget still counts.
        entryPoint.depositTo{value: 1 ether}(address(account));
        uint32 id = gasSession(uint80(COST), uint32(DAY), 0);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(gasExceeded(COST, 0));
        submit(op);
    }

    function test_handleOps_gasBudget_accumulatesAcrossOps() public {
        uint32 id = gasSession(uint80(2 * COST + COST / 2), uint32(DAY), 0);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        submit(sessionOp(id, transferCall(alice, 1e6)));
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(gasExceeded(COST, COST / 2));
        submit(op);
        assertEq(usd.balanceOf(alice), 2e6);
    }

    function test_getUsage_reportsGasAndOpsCharged_perWindow() public {
        uint32 id = gasSession(uint80(10 * COST), 1 hours, 5);
        ISakSessions.UsageView memory u = account.getUsage(id);
        assertEq(u.gasSpent, 0);
        assertEq(u.opsUsed, 0);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        submit(sessionOp(id, transferCall(alice, 1e6)));
        u = account.getUsage(id);
        assertEq(u.gasSpent, 2 * COST, "the full prefund of each op");
        assertEq(u.gasWindow, 0);
        assertEq(u.opsUsed, 2);
        vm.warp(START + 2 hours);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        u = account.getUsage(id);
        assertEq(u.gasSpent, COST, "a new gas window starts from zero");
        assertEq(u.gasWindow, 2);
        assertEq(u.opsUsed, 3, "operations count over the whole session");
        vm.prank(owner);
        account.revokeAllSessions();
        assertEq(account.getUsage(id).opsUsed, 0, "another salt: nothing is read");
    }

    function test_handleOps_gasBudget_resetsInTheNextGasPeriod() public {
        uint32 id = gasSession(uint80(COST), 1 hours, 0);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        vm.warp(START + 1 hours);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        assertEq(usd.balanceOf(alice), 2e6);
    }

    function test_handleOps_gasIsCharged_whenExecutionReverts() public {
        // Property 8: a reverting operation still spends the account's ETH on gas.
        ISakSessions.SessionConfig memory c = usdSession(5_000_000e6);
        c.gasBudget = uint80(COST + COST / 2);
        c.gasPeriod = uint32(DAY);
        uint32 id = grant(c);
        uint256 before = address(account).balance;
        submit(sessionOp(id, transferCall(alice, 2_000_000e6))); // more than the balance
        assertEq(usd.balanceOf(alice), 0);
        assertLt(address(account).balance, before, "the account paid for the failed op");
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(gasExceeded(COST, COST / 2));
        submit(op);
    }

    function test_validateUserOp_windowIsTheIntersectionOfSpendAndGasPeriods() public {
        uint32 id = gasSession(uint80(10 * COST), 1 hours, 0);
        vm.warp(START + 5 hours + 10);
        uint256 vd = validate(sessionOp(id, transferCall(alice, 1e6)));
        assertFalse(sigFailed(vd));
        assertEq(validAfterOf(vd), START + 5 hours - 1);
        assertEq(validUntilOf(vd), START + 6 hours - 1, "the gas hour ends before the spend day");
    }

    function test_validateUserOp_reverts_whenClockClaimIsInAnEarlierGasPeriod() public {
        uint32 id = gasSession(uint80(10 * COST), 1 hours, 0);
        vm.warp(START + 1 hours);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1e6)));
        signSession(op, id, START); // the first hour: would reuse its gas budget
        expectValidateRevert(op, abi.encodeWithSelector(ISakSessions.StaleGasWindow.selector, 0, 1));
    }

    function testFuzz_validateUserOp_chargesTheEntryPointPrefund(
        uint256 verificationGas,
        uint256 callGas,
        uint256 preVerificationGas,
        uint256 maxFeePerGas,
        uint256 budget
    ) public {
        verificationGas = bound(verificationGas, 0, 10_000_000);
        callGas = bound(callGas, 0, 10_000_000);
        preVerificationGas = bound(preVerificationGas, 0, 10_000_000);
        maxFeePerGas = bound(maxFeePerGas, 1, 10_000 gwei);
        budget = bound(budget, 1, type(uint48).max) * 1 gwei;
        uint32 id = gasSession(uint80(budget), uint32(DAY), 0);
        PackedUserOperation memory op =
            gasOp(id, verificationGas, callGas, preVerificationGas, maxFeePerGas, "");
        uint256 cost = (verificationGas + callGas + preVerificationGas) * maxFeePerGas;
        if (cost > budget) {
            expectValidateRevert(op, gasExceeded(cost, budget));
        } else {
            assertFalse(sigFailed(validate(op)));
            assertEq(
                account.getUsage(id).gasSpent,
                (cost + 1 gwei - 1) / 1 gwei * 1 gwei,
                "charged in whole gwei, rounded up"
            );
        }
    }

    function testFuzz_grant_reverts_whenTheGasBudgetIsNotWholeGwei_orTooLarge(uint80 budget)
        public
    {
        vm.assume(budget != 0 && budget != type(uint80).max);
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = budget;
        c.gasPeriod = uint32(DAY);
        if (budget % 1 gwei != 0 || budget / 1 gwei > type(uint48).max) {
            vm.expectRevert(abi.encodeWithSelector(ISakSessions.InvalidGasBudget.selector, budget));
            vm.prank(owner);
            account.grantSession(c);
        } else {
            grant(c);
        }
    }

    // -------------------------------------------------------------------------------------
    // Fee caps: what a self-bundling key can collect as beneficiary
    // -------------------------------------------------------------------------------------

    function feeCapSession(uint80 budget, uint40 maxFee, uint24 maxPvg) internal returns (uint32) {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = budget;
        c.gasPeriod = uint32(DAY);
        c.maxFeePerGas = maxFee;
        c.maxPreVerificationGas = maxPvg;
        return grant(c);
    }

    function testFuzz_validateUserOp_refusesFeesAndPreVerificationGasAboveTheCaps(
        uint256 maxFeePerGas,
        uint256 preVerificationGas
    ) public {
        maxFeePerGas = bound(maxFeePerGas, 1, 100 gwei);
        preVerificationGas = bound(preVerificationGas, 0, 2_000_000);
        uint32 id = feeCapSession(1 ether, 10 gwei, 1_000_000);
        PackedUserOperation memory op =
            gasOp(id, 100_000, 100_000, preVerificationGas, maxFeePerGas, "");
        if (maxFeePerGas > 10 gwei) {
            expectValidateRevert(
                op,
                abi.encodeWithSelector(
                    ISakSessions.FeePerGasAboveCap.selector, maxFeePerGas, 10 gwei
                )
            );
        } else if (preVerificationGas > 1_000_000) {
            expectValidateRevert(
                op,
                abi.encodeWithSelector(
                    ISakSessions.PreVerificationGasAboveCap.selector, preVerificationGas, 1_000_000
                )
            );
        } else {
            assertFalse(sigFailed(validate(op)));
        }
    }

    function test_validateUserOp_feeCaps_bindAnUnlimitedBudget() public {
        uint32 id = feeCapSession(type(uint80).max, 10 gwei, 0);
        expectValidateRevert(
            gasOp(id, 100_000, 100_000, 50_000_000, 10 gwei + 1, ""),
            abi.encodeWithSelector(ISakSessions.FeePerGasAboveCap.selector, 10 gwei + 1, 10 gwei)
        );
        // No preVerificationGas cap: any amount at the capped fee.
        assertFalse(sigFailed(validate(gasOp(id, 100_000, 100_000, 50_000_000, 10 gwei, ""))));
        assertEq(account.getUsage(id).gasSpent, 0, "an unlimited budget charges nothing");
    }

    function test_validateUserOp_feeCaps_doNotBindTheSessionsPaymaster() public {
        ChargingPaymaster pm = new ChargingPaymaster(IERC20(address(usd)));
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = 1 ether;
        c.gasPeriod = uint32(DAY);
        c.maxFeePerGas = 10 gwei;
        c.maxPreVerificationGas = 100_000;
        c.paymaster = address(pm);
        uint32 id = grant(c);
        bytes memory pmData = abi.encodePacked(address(pm), uint128(100_000), uint128(100_000));
        // The paymaster pays and decides what it pays for: the account's caps do not apply.
        assertFalse(sigFailed(validate(gasOp(id, 100_000, 100_000, 5_000_000, 1000 gwei, pmData))));
    }

    function test_grant_storesNoFeeCaps_onASponsoredOnlySession() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.gasBudget = 0;
        c.maxFeePerGas = 1;
        c.maxPreVerificationGas = 1;
        c.paymaster = makeAddr("paymaster");
        uint32 id = grant(c);
        // Account-paid: refused by the budget of 0, whatever the caps.
        expectValidateRevert(
            gasOp(id, 100_000, 100_000, 50_000, 1 gwei, ""), gasExceeded(250_000 gwei, 0)
        );
    }

    /// A key that runs its own bundler names itself beneficiary: the EntryPoint pays it the
    /// operation's gas at the operation's price, preVerificationGas in full. Without caps, one
    /// operation at a high price turns the whole daily budget into the key's ETH; with them,
    /// the key gets at most cap x (gas used + preVerificationGas cap) a day, of which it paid
    /// the base fee for the gas the bundle used.
    function test_handleOps_selfBundlingKey_collectsAtMostTheCappedPrice() public {
        address keyBundler = makeAddr("keyBundler");
        uint256 budget = 0.1 ether;
        vm.fee(1 gwei);
        vm.txGasPrice(1 gwei);

        // Uncapped: 0.1 ether of gas at 10 gwei, 9,800,000 of it preVerificationGas: the key
        // collects it.
        uint32 open = feeCapSession(uint80(budget), 0, 0);
        PackedUserOperation memory greedy = gasOp(open, 100_000, 100_000, 9_800_000, 10 gwei, "");
        uint256 before = keyBundler.balance;
        _bundleAs(keyBundler, greedy);
        uint256 collected = keyBundler.balance - before;
        assertGt(collected, budget * 98 / 100, "the uncapped budget became the key's ETH");
        emit log_named_decimal_uint("uncapped: the key collected (ETH)", collected, 18);

        // Capped at 2 gwei and 100,000 preVerificationGas: the same greedy op is refused...
        uint32 capped = feeCapSession(uint80(budget), 2 gwei, 100_000);
        greedy = gasOp(capped, 100_000, 100_000, 9_800_000, 10 gwei, "");
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = greedy;
        vm.expectRevert(
            abi.encodeWithSelector(
                IEntryPoint.FailedOpWithRevert.selector,
                0,
                "AA23 reverted",
                abi.encodeWithSelector(ISakSessions.FeePerGasAboveCap.selector, 10 gwei, 2 gwei)
            )
        );
        vm.prank(keyBundler, keyBundler);
        entryPoint.handleOps(ops, payable(keyBundler));

        // ...and the best op within the caps pays the key at most the capped price for what
        // it used plus the capped preVerificationGas.
        PackedUserOperation memory best = gasOp(capped, 100_000, 100_000, 100_000, 2 gwei, "");
        before = keyBundler.balance;
        _bundleAs(keyBundler, best);
        collected = keyBundler.balance - before;
        assertLe(collected, 2 gwei * (100_000 + 100_000 + 100_000), "bounded by the caps");
        emit log_named_decimal_uint("capped: the key collected (ETH)", collected, 18);
        assertLt(collected * 100, budget, "under 1% of the budget per operation");
    }

    function _bundleAs(address who, PackedUserOperation memory op) private {
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = op;
        vm.prank(who, who);
        entryPoint.handleOps(ops, payable(who));
    }

    // -------------------------------------------------------------------------------------
    // Sponsored only (gasBudget == 0) and paymasters
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_whenBudgetIsZero_andTheAccountPays() public {
        uint32 id = gasSession(0, 0, 0);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(gasExceeded(COST, 0));
        submit(op);
    }

    function test_validateUserOp_reverts_whenBudgetIsZero_withAnOpLimit_andTheAccountPays() public {
        uint32 id = gasSession(0, 0, 5);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(gasExceeded(COST, 0));
        submit(op);
    }

    function test_validateUserOp_succeeds_whenBudgetIsZero_andTheSessionsPaymasterPays() public {
        address paymaster = makeAddr("paymaster");
        uint32 id = paymasterSession(0, paymaster);
        bytes memory pm = abi.encodePacked(paymaster, uint128(100_000), uint128(0));
        uint256 vd = validate(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm));
        assertFalse(sigFailed(vd));
    }

    function testFuzz_validateUserOp_countsAZeroAddressPaymasterAsAccountPaid(
        uint256 paymasterVerificationGas,
        uint256 postOpGas
    ) public {
        paymasterVerificationGas = bound(paymasterVerificationGas, 0, 10_000_000);
        postOpGas = bound(postOpGas, 0, 10_000_000);
        uint32 id = gasSession(0, 0, 0);
        bytes memory pm =
            abi.encodePacked(address(0), uint128(paymasterVerificationGas), uint128(postOpGas));
        uint256 cost = COST + (paymasterVerificationGas + postOpGas) * 2 gwei;
        expectValidateRevert(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm), gasExceeded(cost, 0));
    }

    function test_validateUserOp_chargesPaymasterLimits_forAZeroAddressPaymaster() public {
        uint32 id = gasSession(uint80(COST), uint32(DAY), 0);
        bytes memory pm = abi.encodePacked(address(0), uint128(100_000), uint128(50_000));
        expectValidateRevert(
            gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm),
            gasExceeded(COST + 150_000 * 2 gwei, COST)
        );
    }

    function test_validateUserOp_countsATruncatedPaymasterFieldAsAccountPaid() public {
        uint32 id = gasSession(0, 0, 0);
        bytes memory pm = abi.encodePacked(bytes19(bytes20(makeAddr("paymaster"))));
        expectValidateRevert(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm), gasExceeded(COST, 0));
    }

    /// @dev SECURITY #35: a paymaster the session does not name could sponsor the op and then
    ///      take its fee from the account (here: tokens through an allowance the owner once
    ///      gave), outside both the gas budget and the token's cap. It is refused in validation.
    function test_handleOps_reverts_whenAPaymasterOtherThanTheSessionsSponsors() public {
        ChargingPaymaster paymaster = new ChargingPaymaster(IERC20(address(usd)));
        entryPoint.depositTo{value: 1 ether}(address(paymaster));
        vm.prank(address(account)); // the owner's earlier approval, say for a previous op
        usd.approve(address(paymaster), type(uint256).max);

        uint32 id = paymasterSession(0, makeAddr("the session's paymaster"));
        bytes memory pm = abi.encodePacked(address(paymaster), uint128(100_000), uint128(100_000));
        uint256 before = usd.balanceOf(address(account));
        PackedUserOperation memory op = gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm);
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.PaymasterNotPermitted.selector, address(paymaster))
        );
        submit(op);
        assertEq(usd.balanceOf(address(account)), before, "nothing left the account");
    }

    function testFuzz_validateUserOp_reverts_forAnyPaymasterButTheSessions(
        address other,
        uint80 budget // zero, finite and unlimited alike
    ) public {
        address mine = makeAddr("the session's paymaster");
        vm.assume(other != address(0) && other != mine);
        // A finite budget is whole gwei below 2^48 gwei.
        if (budget != type(uint80).max) {
            budget = uint80(bound(budget, 0, type(uint48).max)) * 1 gwei;
        }
        uint32 id = paymasterSession(budget, mine);
        bytes memory pm = abi.encodePacked(other, uint128(100_000), uint128(0));
        expectValidateRevert(
            gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm),
            abi.encodeWithSelector(ISakSessions.PaymasterNotPermitted.selector, other)
        );
    }

    function test_validateUserOp_reverts_forAnyPaymaster_whenTheSessionNamesNone() public {
        uint32 id = gasSession(uint80(10 * COST), uint32(DAY), 0);
        address paymaster = makeAddr("paymaster");
        bytes memory pm = abi.encodePacked(paymaster, uint128(100_000), uint128(0));
        expectValidateRevert(
            gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm),
            abi.encodeWithSelector(ISakSessions.PaymasterNotPermitted.selector, paymaster)
        );
    }

    /// @dev The session's own paymaster sponsors through the real EntryPoint; the gas budget is
    ///      not charged (a finite budget smaller than one op's prefund still lets it through).
    function test_handleOps_sessionsPaymaster_sponsors_withoutChargingTheGasBudget() public {
        ChargingPaymaster paymaster = new ChargingPaymaster(IERC20(address(usd)));
        entryPoint.depositTo{value: 1 ether}(address(paymaster));
        vm.prank(address(account)); // the owner's deal with this paymaster
        usd.approve(address(paymaster), type(uint256).max);
        uint32 id = paymasterSession(uint80(COST - 1 gwei), address(paymaster));
        bytes memory pm = abi.encodePacked(address(paymaster), uint128(100_000), uint128(100_000));
        uint256 ethBefore = address(account).balance;
        submit(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm));
        submit(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm));
        assertEq(usd.balanceOf(alice), 2e6, "both ops executed");
        assertEq(address(account).balance, ethBefore, "the account paid no gas");
        // Without the paymaster, the budget (less than one prefund) refuses the same op.
        PackedUserOperation memory op = gasOp(id, 500_000, 500_000, 50_000, 2 gwei, "");
        expectValidationRevert(gasExceeded(COST, COST - 1 gwei));
        submit(op);
    }

    /// @dev A session that names a paymaster still pays its unsponsored ops from its budget:
    ///      a zero paymaster address is the account paying.
    function test_validateUserOp_chargesTheBudget_forAZeroPaymaster_whenTheSessionNamesOne()
        public
    {
        uint32 id = paymasterSession(uint80(COST), makeAddr("paymaster"));
        bytes memory pm = abi.encodePacked(address(0), uint128(100_000), uint128(0));
        expectValidateRevert(
            gasOp(id, 500_000, 500_000, 50_000, 2 gwei, pm),
            gasExceeded(COST + 100_000 * 2 gwei, COST)
        );
        validate(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, "")); // exactly the budget
        expectValidateRevert(gasOp(id, 500_000, 500_000, 50_000, 2 gwei, ""), gasExceeded(COST, 0));
    }

    // -------------------------------------------------------------------------------------
    // Unlimited gas and the operation limit
    // -------------------------------------------------------------------------------------

    function testFuzz_validateUserOp_neverChargesGas_whenUnlimited(
        uint256 verificationGas,
        uint256 maxFeePerGas,
        uint24 maxOps
    ) public {
        verificationGas = bound(verificationGas, 0, type(uint64).max);
        maxFeePerGas = bound(maxFeePerGas, 0, type(uint64).max);
        maxOps = uint24(bound(maxOps, 0, 1)); // with and without the counters record
        uint32 id = gasSession(type(uint80).max, 0, maxOps);
        uint256 vd = validate(gasOp(id, verificationGas, 500_000, 50_000, maxFeePerGas, ""));
        assertFalse(sigFailed(vd));
        assertEq(validUntilOf(vd), START + DAY - 1, "only the spend period bounds the window");
    }

    function test_handleOps_reverts_afterMaxOps() public {
        uint32 id = gasSession(type(uint80).max, 0, 3);
        for (uint256 i; i < 3; ++i) {
            submit(sessionOp(id, transferCall(alice, 1e6)));
        }
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.OperationLimitReached.selector, 3)
        );
        submit(op);
        assertEq(usd.balanceOf(alice), 3e6);
    }

    function test_handleOps_maxOps_isTotal_notPerPeriod() public {
        uint32 id = gasSession(uint80(100 * COST), uint32(DAY), 1);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        vm.warp(START + 3 * DAY);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.OperationLimitReached.selector, 1)
        );
        submit(op);
    }
}
