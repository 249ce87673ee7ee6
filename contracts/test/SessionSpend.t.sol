// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";

/// @notice Spend caps: per token, per fixed period aligned to the session start.
contract SessionSpendTest is SakTest {
    uint32 internal id;

    function setUp() public override {
        super.setUp();
        id = grant(usdSession(100e6));
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

    function test_approve_countsAsSpend() public {
        submit(sessionOp(id, one(address(usd), 0, abi.encodeCall(usd.approve, (alice, 70e6)))));
        assertEq(account.getSpend(id, address(usd)).spent, 70e6);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 31e6));
        expectValidationRevert(
            abi.encodeWithSelector(ISakSessions.SpendCapExceeded.selector, address(usd), 31e6, 30e6)
        );
        submit(op);
    }

    function test_approve_reverts_forMaxAmount() public {
        PackedUserOperation memory op = sessionOp(
            id, one(address(usd), 0, abi.encodeCall(usd.approve, (alice, type(uint256).max)))
        );
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(usd), type(uint256).max, 100e6
            )
        );
        submit(op);
    }

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
