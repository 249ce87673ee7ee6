// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {IUniswapV2Router, UniswapV2} from "./utils/UniswapV2.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";

/// @notice Swaps through the real Uniswap V2 router, by way of the account's adapter: the cap
///         holds, the output goes to the account, the adapter keeps nothing, and an allowance
///         the owner gave the router (before or after the grant) is out of the session's reach.
contract SessionSwapTest is SakTest {
    IUniswapV2Router internal router;
    MockERC20 internal tkn;
    address internal thief = makeAddr("thief");
    address internal adapter;

    function setUp() public override {
        super.setUp();
        router = UniswapV2.deploy();
        tkn = new MockERC20("Test Token", "TKN", 18);
        UniswapV2.seedPool(router, usd, tkn);
        adapter = account.sessionAdapter();
    }

    /// @dev tUSD capped at `cap` per day, movable only to the adapter (no `allowTransfer`);
    ///      the router's swapExactTokensForTokens permitted with the recipient (argument 3)
    ///      pinned to the account.
    function traderSession(uint96 cap) internal view returns (ISakSessions.SessionConfig memory c) {
        c = usdSession(cap);
        c.spendLimits[0].allowTransfer = false;
        c.permissions = new ISakSessions.CallPermission[](1);
        c.permissions[0].target = address(router);
        c.permissions[0].selector = IUniswapV2Router.swapExactTokensForTokens.selector;
        c.permissions[0].conditions = new ISakSessions.ArgCondition[](1);
        c.permissions[0].conditions[0] = ISakSessions.ArgCondition({
            argIndex: 3, op: ISakSessions.Op.EqAccount, argType: ADDRESS, values: new bytes32[](0)
        });
    }

    function path() internal view returns (address[] memory p) {
        p = new address[](2);
        p[0] = address(usd);
        p[1] = address(tkn);
    }

    function swapData(uint256 amountIn, address to) internal view returns (bytes memory) {
        return abi.encodeCall(
            router.swapExactTokensForTokens, (amountIn, 0, path(), to, type(uint256).max)
        );
    }

    /// @dev Moves `funded` tUSD to the adapter (charged), then swaps `amountIn` through it.
    function fundAndSwap(uint256 funded, uint256 amountIn, address to)
        internal
        view
        returns (Execution[] memory)
    {
        return two(
            fund(adapter, address(usd), funded),
            viaAdapter(adapter, address(router), 0, swapData(amountIn, to), tokens1(address(usd)))
        );
    }

    /// @dev The adapter holds nothing and has approved nothing once a call is over.
    function assertAdapterEmpty() internal view {
        assertEq(usd.balanceOf(adapter), 0, "tUSD left in the adapter");
        assertEq(tkn.balanceOf(adapter), 0, "TKN left in the adapter");
        assertEq(adapter.balance, 0, "ETH left in the adapter");
        assertEq(usd.allowance(adapter, address(router)), 0, "the router is still approved");
    }

    function test_fundAndSwap_withinCap_paysTheAccount() public {
        uint32 id = grant(traderSession(100e6));
        uint256 usdBefore = usd.balanceOf(address(account));
        uint256 expected = router.getAmountsOut(100e6, path())[1];
        submit(sessionOp(id, fundAndSwap(100e6, 100e6, address(account))));
        assertEq(usdBefore - usd.balanceOf(address(account)), 100e6);
        assertEq(tkn.balanceOf(address(account)), expected);
        assertEq(account.getSpend(id, address(usd)).spent, 100e6);
        assertAdapterEmpty();
    }

    /// @dev What the router does not take goes back to the account, in the same operation.
    function test_fundAndSwap_returnsTheUnusedFundsToTheAccount() public {
        uint32 id = grant(traderSession(100e6));
        uint256 usdBefore = usd.balanceOf(address(account));
        submit(sessionOp(id, fundAndSwap(100e6, 60e6, address(account))));
        assertEq(usdBefore - usd.balanceOf(address(account)), 60e6, "only the swap's input left");
        assertEq(account.getSpend(id, address(usd)).spent, 100e6, "charged what was funded");
        assertGt(tkn.balanceOf(address(account)), 0);
        assertAdapterEmpty();
    }

    function test_swap_reverts_whenTheRecipientIsNotTheAccount() public {
        uint32 id = grant(traderSession(100e6));
        PackedUserOperation memory op = sessionOp(id, fundAndSwap(50e6, 50e6, thief));
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

    /// @dev EqAccount is the account, never the adapter the call comes from.
    function test_swap_reverts_whenTheRecipientIsTheAdapter() public {
        uint32 id = grant(traderSession(100e6));
        PackedUserOperation memory op = sessionOp(id, fundAndSwap(50e6, 50e6, adapter));
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

    function test_fundAndSwap_reverts_overTheCap() public {
        uint32 id = grant(traderSession(100e6));
        PackedUserOperation memory op = sessionOp(id, fundAndSwap(150e6, 150e6, address(account)));
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.SpendCapExceeded.selector, address(usd), 150e6, 100e6
            )
        );
        submit(op);
    }

    /// @dev The old way (approve the router, then swap from the account) is gone: the approve
    ///      is refused.
    function test_approveAndSwap_reverts_atTheApprove() public {
        uint32 id = grant(traderSession(100e6));
        Execution[] memory calls = two(
            Execution(address(usd), 0, abi.encodeCall(usd.approve, (address(router), 100e6))),
            viaAdapter(
                adapter, address(router), 0, swapData(100e6, address(account)), new address[](0)
            )
        );
        PackedUserOperation memory op = sessionOp(id, calls);
        expectValidationRevert(
            abi.encodeWithSelector(
                ISakSessions.CallNotPermitted.selector, address(usd), usd.approve.selector
            )
        );
        submit(op);
    }

    /// @dev Not funded, the adapter has nothing for the router to pull: the swap reverts in
    ///      execution and nothing leaves the account, even with the owner's approval to the
    ///      router in place.
    function test_swapWithoutFunding_movesNothing_evenWhenTheOwnerApprovedTheRouter() public {
        uint32 id = grant(traderSession(100e6));
        vm.prank(address(account));
        usd.approve(address(router), type(uint256).max);
        Execution[] memory calls = new Execution[](1);
        calls[0] = viaAdapter(
            adapter, address(router), 0, swapData(100e6, address(account)), tokens1(address(usd))
        );
        uint256 before = usd.balanceOf(address(account));
        submit(sessionOp(id, calls)); // validates; the router cannot pull: execution reverts
        assertEq(usd.balanceOf(address(account)), before);
        assertEq(tkn.balanceOf(address(account)), 0);
        assertEq(usd.allowance(address(account), address(router)), type(uint256).max);
    }

    /// @dev The grant no longer probes allowances: an owner's approval to a permitted router is
    ///      harmless, because the router sees the adapter, not the account.
    function test_grantSession_succeeds_whenTheOwnerAlreadyApprovedAPermittedTarget() public {
        vm.prank(address(account));
        usd.approve(address(router), type(uint256).max);
        uint32 id = grant(traderSession(100e6));
        assertTrue(account.getSession(id).active);
    }

    /// @dev SECURITY #27: whether the owner approved the router before the grant, after it, or
    ///      not at all, a swap asking for more than was funded cannot reach the account's
    ///      balance through that allowance. At most what was charged leaves the account.
    function testFuzz_swap_cannotUseTheOwnersRouterAllowance(
        uint256 funded,
        uint256 amountIn,
        uint256 approval
    ) public {
        funded = bound(funded, 1, 100e6);
        amountIn = bound(amountIn, 1, 1_000e6);
        approval = bound(approval, 0, 2); // 0: none, 1: before the grant, 2: after it
        if (approval == 1) approveRouter();
        uint32 id = grant(traderSession(100e6));
        if (approval == 2) approveRouter();
        uint256 before = usd.balanceOf(address(account));
        submit(sessionOp(id, fundAndSwap(funded, amountIn, address(account))));
        uint256 out = before - usd.balanceOf(address(account));
        assertLe(out, account.getSpend(id, address(usd)).spent, "left beyond the charge");
        // The swap ran only if the adapter held enough; otherwise the whole batch reverted.
        assertEq(out, amountIn <= funded ? amountIn : 0);
        assertAdapterEmpty();
        if (approval != 0) {
            assertEq(usd.allowance(address(account), address(router)), type(uint256).max);
        }
    }

    function approveRouter() internal {
        vm.prank(address(account));
        usd.approve(address(router), type(uint256).max);
    }
}
