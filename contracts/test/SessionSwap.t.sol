// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IUniswapV2Router, UniswapV2} from "./utils/UniswapV2.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";

/// @notice Swaps through the real Uniswap V2 router: the cap holds, the output goes to the
///         account, and an owner's earlier approval to the router is refused (DESIGN property 9).
contract SessionSwapTest is SakTest {
    IUniswapV2Router internal router;
    MockERC20 internal tkn;
    address internal thief = makeAddr("thief");

    function setUp() public override {
        super.setUp();
        router = UniswapV2.deploy();
        tkn = new MockERC20("Test Token", "TKN", 18);
        UniswapV2.seedPool(router, usd, tkn);
    }

    /// @dev tUSD capped at `cap` per day (transfer and approve); the router's
    ///      swapExactTokensForTokens permitted with the recipient (argument 3) pinned to the account.
    function traderSession(uint96 cap) internal view returns (ISakSessions.SessionConfig memory c) {
        c = usdSession(cap);
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0].target = address(router);
        c.permissions[0].selector = IUniswapV2Router.swapExactTokensForTokens.selector;
        c.permissions[0].conditions = new ISakSessions.ArgCondition[](1);
        c.permissions[0].conditions[0] = ISakSessions.ArgCondition({
            argIndex: 3, op: ISakSessions.Op.EqAccount, values: new bytes32[](0)
        });
    }

    function path() internal view returns (address[] memory p) {
        p = new address[](2);
        p[0] = address(usd);
        p[1] = address(tkn);
    }

    function approveAndSwap(uint256 amount, address to)
        internal
        view
        returns (Execution[] memory calls)
    {
        calls = new Execution[](2);
        calls[0] =
            Execution(address(usd), 0, abi.encodeCall(usd.approve, (address(router), amount)));
        calls[1] = Execution(
            address(router),
            0,
            abi.encodeCall(
                router.swapExactTokensForTokens, (amount, 0, path(), to, type(uint256).max)
            )
        );
    }

    function test_approveAndSwap_withinCap_paysTheAccount() public {
        uint32 id = grant(traderSession(100e6));
        uint256 usdBefore = usd.balanceOf(address(account));
        uint256 expected = router.getAmountsOut(100e6, path())[1];
        submit(sessionOp(id, approveAndSwap(100e6, address(account))));
        assertEq(usdBefore - usd.balanceOf(address(account)), 100e6);
        assertEq(tkn.balanceOf(address(account)), expected);
        assertEq(account.getSpend(id, address(usd)).spent, 100e6);
        assertEq(
            usd.allowance(address(account), address(router)),
            0,
            "exact-in swap used the whole approval"
        );
    }

    function test_swap_reverts_whenTheRecipientIsNotTheAccount() public {
        uint32 id = grant(traderSession(100e6));
        PackedUserOperation memory op = sessionOp(id, approveAndSwap(50e6, thief));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.ArgumentConditionFailed.selector,
                address(router),
                IUniswapV2Router.swapExactTokensForTokens.selector,
                uint8(3)
            )
        );
        submit(op);
    }

    function test_approveAndSwap_reverts_overTheCap() public {
        uint32 id = grant(traderSession(100e6));
        PackedUserOperation memory op = sessionOp(id, approveAndSwap(150e6, address(account)));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(usd), 150e6, 100e6
            )
        );
        submit(op);
    }

    function test_swapWithoutApproval_movesNothing() public {
        uint32 id = grant(traderSession(100e6));
        Execution[] memory calls = one(
            address(router),
            0,
            abi.encodeCall(
                router.swapExactTokensForTokens,
                (100e6, 0, path(), address(account), type(uint256).max)
            )
        );
        uint256 before = usd.balanceOf(address(account));
        submit(sessionOp(id, calls)); // validates; the router cannot pull: execution reverts
        assertEq(usd.balanceOf(address(account)), before);
        assertEq(tkn.balanceOf(address(account)), 0);
    }

    function test_grantSession_reverts_whenTheOwnerAlreadyApprovedAPermittedTarget() public {
        vm.prank(address(account));
        usd.approve(address(router), type(uint256).max);
        ISakSessions.SessionConfig memory c = traderSession(100e6);
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISakSessions.PreexistingAllowance.selector,
                address(usd),
                address(router),
                type(uint256).max
            )
        );
        account.grantSession(c);

        // Once the owner resets it, the grant goes through and the cap holds for swaps.
        vm.prank(address(account));
        usd.approve(address(router), 0);
        uint32 id = grant(c);
        PackedUserOperation memory op = sessionOp(id, approveAndSwap(101e6, address(account)));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(usd), 101e6, 100e6
            )
        );
        submit(op);
    }
}
