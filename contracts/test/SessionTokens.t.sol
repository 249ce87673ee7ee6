// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {MockFeeOnTransferERC20} from "./mocks/MockFeeOnTransferERC20.sol";
import {MockRebasingERC20} from "./mocks/MockRebasingERC20.sol";
import {MockNoReturnERC20} from "./mocks/MockNoReturnERC20.sol";
import {MockFalseReturnERC20} from "./mocks/MockFalseReturnERC20.sol";

interface IBalance {
    function balanceOf(address) external view returns (uint256);
}

/// @notice SECURITY #31: tokens that do not behave like a plain ERC-20. The engine charges the
///         amount the call declares, in validation, whatever the token then does; these tests
///         show that no such token lets more than the cap leave the account.
contract SessionTokensTest is SakTest {
    uint96 internal constant CAP = 100e6;

    /// @dev A session for `agent` allowing `transfer` of `token` up to CAP per day.
    function tokenSession(address token) internal returns (uint32) {
        ISakSessions.SessionConfig memory c = agentSession();
        c.spendLimits = new ISakSessions.SpendLimit[](1);
        c.spendLimits[0] = ISakSessions.SpendLimit({
            token: token, allowance: CAP, period: uint32(DAY), allowTransfer: true
        });
        return grant(c);
    }

    function transferOf(address token, address to, uint256 amount)
        internal
        pure
        returns (Execution[] memory)
    {
        return one(token, 0, abi.encodeWithSelector(bytes4(0xa9059cbb), to, amount));
    }

    function capExceeded(address token, uint256 requested, uint256 remaining)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(
            ISakSessions.SpendCapExceeded.selector, token, requested, remaining
        );
    }

    function balance(address token) internal view returns (uint256) {
        return IBalance(token).balanceOf(address(account));
    }

    // -------------------------------------------------------------------------------------
    // Fee on transfer
    // -------------------------------------------------------------------------------------

    /// @dev The fee comes out of the amount: the account loses exactly the declared amount,
    ///      which is what is charged (the recipient gets less; the charge is never less than
    ///      what left the account).
    function testFuzz_feeOnTransfer_chargeEqualsWhatLeftTheAccount(uint256 feeBps, uint256 amount)
        public
    {
        feeBps = bound(feeBps, 0, 5_000);
        amount = bound(amount, 1, CAP);
        MockFeeOnTransferERC20 fot = new MockFeeOnTransferERC20(feeBps);
        fot.mint(address(account), 1_000e6);
        uint32 id = tokenSession(address(fot));
        uint256 before = balance(address(fot));
        submit(sessionOp(id, transferOf(address(fot), alice, amount)));
        uint256 left = before - balance(address(fot));
        uint256 spent = account.getSpend(id, address(fot)).spent;
        assertEq(spent, amount, "charged the declared amount");
        assertGe(spent, left, "charged at least what left the account");
        assertEq(fot.balanceOf(alice), amount - amount * feeBps / 10_000);
    }

    function test_feeOnTransfer_cannotMoveMoreThanTheCapInAPeriod() public {
        MockFeeOnTransferERC20 fot = new MockFeeOnTransferERC20(100); // 1%
        fot.mint(address(account), 1_000e6);
        uint32 id = tokenSession(address(fot));
        submit(sessionOp(id, transferOf(address(fot), alice, 60e6)));
        submit(sessionOp(id, transferOf(address(fot), alice, 40e6)));
        PackedUserOperation memory op = sessionOp(id, transferOf(address(fot), alice, 1));
        expectValidationRevert(capExceeded(address(fot), 1, 0));
        submit(op);
        assertEq(1_000e6 - balance(address(fot)), CAP, "exactly the cap left");
    }

    // -------------------------------------------------------------------------------------
    // Rebasing (balance-scaling)
    // -------------------------------------------------------------------------------------

    /// @dev The cap is in balance units at the time of the transfer: a rebase up or down
    ///      between ops neither frees nor consumes allowance, and no more than the cap leaves.
    function testFuzz_rebasing_outflowNeverExceedsTheCap(
        uint256 index1,
        uint256 index2,
        uint256 first
    ) public {
        index1 = bound(index1, 1e17, 1e19);
        index2 = bound(index2, 1e17, 1e19);
        first = bound(first, 1, CAP);
        MockRebasingERC20 reb = new MockRebasingERC20();
        reb.mint(address(account), 10_000e6);
        uint32 id = tokenSession(address(reb));

        reb.rebase(index1);
        uint256 before = balance(address(reb));
        submit(sessionOp(id, transferOf(address(reb), alice, first)));
        uint256 out1 = before - balance(address(reb));

        reb.rebase(index2); // the account's balance scales; the remaining allowance does not
        uint256 rest = CAP - first;
        PackedUserOperation memory op = sessionOp(id, transferOf(address(reb), alice, rest + 1));
        expectValidationRevert(capExceeded(address(reb), rest + 1, rest));
        submit(op);
        before = balance(address(reb));
        if (rest != 0) submit(sessionOp(id, transferOf(address(reb), alice, rest)));
        uint256 out2 = before - balance(address(reb));

        assertEq(account.getSpend(id, address(reb)).spent, CAP);
        // Share rounding may move a unit less than declared, never more.
        assertLe(out1, first, "first op moved more than it declared");
        assertLe(out2, rest, "second op moved more than it declared");
    }

    // -------------------------------------------------------------------------------------
    // No return value, false return value
    // -------------------------------------------------------------------------------------

    function test_noReturnToken_isChargedAndCapped() public {
        MockNoReturnERC20 usdt = new MockNoReturnERC20();
        usdt.mint(address(account), 1_000e6);
        uint32 id = tokenSession(address(usdt));
        submit(sessionOp(id, transferOf(address(usdt), alice, 70e6)));
        assertEq(usdt.balanceOf(alice), 70e6);
        assertEq(account.getSpend(id, address(usdt)).spent, 70e6);
        PackedUserOperation memory op = sessionOp(id, transferOf(address(usdt), alice, 31e6));
        expectValidationRevert(capExceeded(address(usdt), 31e6, 30e6));
        submit(op);
    }

    /// @dev A transfer that returns false moved nothing, yet its charge stands (charged in
    ///      validation, before the call): the safe side. It never frees allowance.
    function test_falseReturningTransfer_movesNothing_butConsumesTheCharge() public {
        MockFalseReturnERC20 zrx = new MockFalseReturnERC20();
        zrx.mint(address(account), 1_000e6);
        uint32 id = tokenSession(address(zrx));
        zrx.setPaused(true);
        submit(sessionOp(id, transferOf(address(zrx), alice, 80e6)));
        assertEq(zrx.balanceOf(alice), 0, "the token refused by returning false");
        assertEq(account.getSpend(id, address(zrx)).spent, 80e6, "the charge stands");

        zrx.setPaused(false);
        PackedUserOperation memory op = sessionOp(id, transferOf(address(zrx), alice, 21e6));
        expectValidationRevert(capExceeded(address(zrx), 21e6, 20e6));
        submit(op);
        submit(sessionOp(id, transferOf(address(zrx), alice, 20e6)));
        assertEq(1_000e6 - balance(address(zrx)), 20e6);
    }
}
