// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {Target} from "./mocks/MockTarget.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";

/// @notice Spend caps: per token, per fixed period aligned to the session start.
contract SessionSpendTest is SakTest {
    uint32 internal id;

    function setUp() public override {
        super.setUp();
        id = grant(usdSession(100e6));
    }

    function notPermitted(address to, bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.CallNotPermitted.selector, to, selector);
    }

    function test_transfer_withinCap_movesTokensAndRecordsSpend() public {
        submit(sessionOp(id, transferCall(alice, 60e6)));
        assertEq(usd.balanceOf(alice), 60e6);
        ISakSessions.SpendView memory s = account.getSpend(id, address(usd));
        assertEq(s.spent, 60e6);
        assertEq(s.allowance, 100e6);
    }

    function test_transfer_reverts_whenOverCap() public {
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 100e6 + 1));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(usd), 100e6 + 1, 100e6
            )
        );
        submit(op);
    }

    function test_repeatedOps_accumulate_untilCapRefuses() public {
        submit(sessionOp(id, transferCall(alice, 40e6)));
        submit(sessionOp(id, transferCall(alice, 40e6)));
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 40e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 40e6, 20e6)
        );
        submit(op);
        assertEq(usd.balanceOf(alice), 80e6);
    }

    function test_batch_accumulatesWithinOneOp() public {
        Execution[] memory calls = new Execution[](3);
        for (uint256 i; i < 3; ++i) {
            calls[i] = Execution(address(usd), 0, abi.encodeCall(usd.transfer, (alice, 40e6)));
        }
        PackedUserOperation memory op = sessionOp(id, calls);
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 40e6, 20e6)
        );
        submit(op);
    }

    // -------------------------------------------------------------------------------------
    // Approvals: never by a session
    // -------------------------------------------------------------------------------------

    /// @dev An approval would let the spender pull later, outside every charge: a session can
    ///      neither approve a capped token (which it could transfer) nor charge one instead.
    function test_approve_reverts_onACappedToken_andChargesNothing() public {
        PackedUserOperation memory op =
            sessionOp(id, one(address(usd), 0, abi.encodeCall(usd.approve, (alice, 70e6))));
        expectValidationRevert(notPermitted(address(usd), usd.approve.selector));
        submit(op);
        assertEq(account.getSpend(id, address(usd)).spent, 0);
        assertEq(usd.allowance(address(account), alice), 0);
    }

    function test_approve_reverts_forMaxAmount() public {
        PackedUserOperation memory op = sessionOp(
            id, one(address(usd), 0, abi.encodeCall(usd.approve, (alice, type(uint256).max)))
        );
        expectValidationRevert(notPermitted(address(usd), usd.approve.selector));
        submit(op);
    }

    function test_approve_reverts_onAnUncappedToken() public {
        MockERC20 eur = new MockERC20("Test EUR", "tEUR", 6);
        PackedUserOperation memory op =
            sessionOp(id, one(address(eur), 0, abi.encodeCall(eur.approve, (alice, 1e6))));
        expectValidationRevert(notPermitted(address(eur), eur.approve.selector));
        submit(op);
    }

    /// @dev Through the adapter neither: a capped token is never a permitted target.
    function test_approve_reverts_throughTheAdapter() public {
        PackedUserOperation memory op =
            sessionOp(id, call(address(usd), 0, abi.encodeCall(usd.approve, (alice, 1e6))));
        expectValidationRevert(notPermitted(address(usd), usd.approve.selector));
        submit(op);
    }

    // -------------------------------------------------------------------------------------
    // Recipients: the adapter, or anyone with allowTransfer
    // -------------------------------------------------------------------------------------

    /// @dev A session for `agent` with tUSD capped at 100 per day, `allowTransfer` as given.
    function recipientSession(bool allowTransfer) internal returns (uint32) {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.spendLimits[0].allowTransfer = allowTransfer;
        return grant(c);
    }

    function testFuzz_transfer_reverts_toAnyoneButTheAdapter_withoutAllowTransfer(
        uint160 raw,
        uint256 amount
    ) public {
        uint32 sid = recipientSession(false);
        address to = address(uint160(bound(raw, 0, type(uint160).max)));
        if (to == account.sessionAdapter()) to = alice;
        amount = bound(amount, 0, 100e6);
        expectValidateRevert(
            sessionOp(sid, transferCall(to, amount)),
            abi.encodeWithSelector(ISakSessions.RecipientNotPermitted.selector, address(usd), to)
        );
    }

    function test_transfer_toAnyone_withAllowTransfer() public {
        uint32 sid = recipientSession(true);
        submit(sessionOp(sid, transferCall(alice, 10e6)));
        assertEq(usd.balanceOf(alice), 10e6);
        assertEq(account.getSpend(sid, address(usd)).spent, 10e6);
    }

    /// @dev Funding the adapter is a transfer out of the account: charged like any other, with
    ///      or without `allowTransfer`.
    function testFuzz_transfer_toTheAdapter_isAlwaysPermitted_andCharged(
        bool allowTransfer,
        uint256 amount
    ) public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.spendLimits[0].allowTransfer = allowTransfer;
        Target target = new Target();
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), Target.ping.selector, false);
        uint32 sid = grant(c);
        address adapter = account.sessionAdapter();
        amount = bound(amount, 0, 100e6);
        uint256 before = usd.balanceOf(address(account));
        Execution memory use = viaAdapter(
            adapter,
            address(target),
            0,
            abi.encodeCall(Target.ping, (1, alice, 2)),
            tokens1(address(usd))
        );
        submit(sessionOp(sid, two(fund(adapter, address(usd), amount), use)));
        // Charged when it left; back within the operation, as the target took nothing.
        assertEq(account.getSpend(sid, address(usd)).spent, amount);
        assertEq(usd.balanceOf(adapter), 0);
        assertEq(usd.balanceOf(address(account)), before);
        PackedUserOperation memory op =
            sessionOp(sid, two(fund(adapter, address(usd), 100e6 - amount + 1), use));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector,
                address(usd),
                100e6 - amount + 1,
                100e6 - amount
            )
        );
        submit(op);
    }

    /// @dev Whatever a batch moves into the adapter, a later `run` of the batch must list:
    ///      nothing the session paid for waits there for another operation or session.
    function test_transfer_toTheAdapter_reverts_unlessALaterRunListsTheToken() public {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        Target target = new Target();
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0] = permission(address(target), Target.ping.selector, false);
        uint32 sid = grant(c);
        address adapter = account.sessionAdapter();
        bytes memory ping = abi.encodeCall(Target.ping, (1, alice, 2));
        bytes memory unlisted =
            abi.encodeWithSelector(ISakSessions.AdapterFundingUnlisted.selector, address(usd));
        expectValidateRevert(
            sessionOp(sid, one(address(usd), 0, fund(adapter, address(usd), 1).callData)), unlisted
        );
        Execution memory listsNothing =
            viaAdapter(adapter, address(target), 0, ping, new address[](0));
        expectValidateRevert(
            sessionOp(sid, two(fund(adapter, address(usd), 1), listsNothing)), unlisted
        );
        Execution memory lists =
            viaAdapter(adapter, address(target), 0, ping, tokens1(address(usd)));
        expectValidateRevert(sessionOp(sid, two(lists, fund(adapter, address(usd), 1))), unlisted);
        submit(sessionOp(sid, two(fund(adapter, address(usd), 1), lists)));
        assertEq(usd.balanceOf(adapter), 0);
    }

    /// @dev The recipient word must be the adapter's exactly: dirty upper bits are not it.
    function testFuzz_transfer_reverts_whenTheAdapterRecipientHasDirtyUpperBits(uint256 dirt)
        public
    {
        uint32 sid = recipientSession(false);
        address adapter = account.sessionAdapter();
        dirt = bound(dirt, 1, type(uint96).max);
        bytes memory data = abi.encodePacked(
            usd.transfer.selector, (dirt << 160) | uint256(uint160(adapter)), uint256(1e6)
        );
        expectValidateRevert(
            sessionOp(sid, one(address(usd), 0, data)),
            abi.encodeWithSelector(
                ISakSessions.RecipientNotPermitted.selector, address(usd), adapter
            )
        );
    }

    // -------------------------------------------------------------------------------------
    // Periods and the clock claim
    // -------------------------------------------------------------------------------------

    function test_nextPeriod_resetsAllowance() public {
        submit(sessionOp(id, transferCall(alice, 100e6)));
        vm.warp(START + DAY);
        submit(sessionOp(id, transferCall(alice, 100e6)));
        assertEq(usd.balanceOf(alice), 200e6);
        assertEq(account.getSpend(id, address(usd)).window, 1);
    }

    function test_periodBoundary_allowsAtMostTwoCapsAcrossTheEdge() public {
        vm.warp(START + DAY - 1);
        submit(sessionOp(id, transferCall(alice, 100e6)));
        vm.warp(START + DAY);
        submit(sessionOp(id, transferCall(alice, 100e6)));
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 1, 0)
        );
        submit(op);
    }

    function test_validationWindow_isThePeriodOfTheClockClaim() public {
        vm.warp(START + 3 * DAY + 5);
        uint256 vd = validate(sessionOp(id, transferCall(alice, 1)));
        assertFalse(sigFailed(vd));
        assertEq(
            validAfterOf(vd), START + 3 * DAY - 1, "exclusive: the period's first second is valid"
        );
        assertEq(validUntilOf(vd), START + 4 * DAY - 1);
    }

    function test_clockClaimInTheFuture_isNotDueYet() public {
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 100e6)));
        signSession(op, id, START + uint40(DAY)); // claims tomorrow to get a fresh allowance
        expectNotDue(op);
    }

    function test_clockClaimInThePast_isStale_afterALaterPeriodWasCharged() public {
        vm.warp(START + DAY);
        submit(sessionOp(id, transferCall(alice, 1e6)));
        PackedUserOperation memory op = userOp(executeData(transferCall(alice, 1e6)));
        signSession(op, id, START); // yesterday: would reuse yesterday's allowance
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.StaleWindow.selector, address(usd), 0, 1)
        );
        submit(op);
    }

    function test_opSignedInOnePeriod_expiresAtItsEnd() public {
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        vm.warp(START + DAY);
        expectNotDue(op);
    }

    function test_chargeStands_whenExecutionReverts() public {
        // 2,000,000 tUSD exceeds the account's balance but not a bigger cap: the call reverts
        // in execution, the charge made in validation remains (charge-on-failure).
        uint32 big = grant(usdSession(5_000_000e6));
        submit(sessionOp(big, transferCall(alice, 2_000_000e6)));
        assertEq(usd.balanceOf(alice), 0);
        assertEq(account.getSpend(big, address(usd)).spent, 2_000_000e6);
    }

    function testFuzz_spendNeverExceedsCapPerPeriod(uint96[6] memory amounts, uint8[6] memory hops)
        public
    {
        uint256[64] memory spentIn;
        for (uint256 i; i < 6; ++i) {
            vm.warp(now_() + bound(hops[i], 0, 2) * (DAY / 2));
            uint256 amount = bound(amounts[i], 1, 150e6);
            uint256 period = (now_() - START) / DAY;
            PackedUserOperation memory op = sessionOp(id, transferCall(alice, amount));
            if (spentIn[period] + amount > 100e6) {
                vm.expectRevert();
                submit(op);
            } else {
                submit(op);
                spentIn[period] += amount;
            }
            assertLe(spentIn[period], 100e6);
        }
    }
}
