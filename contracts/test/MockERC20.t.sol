// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";

contract MockERC20Test is Test {
    MockERC20 internal usd;

    function setUp() public {
        usd = new MockERC20("Test USD", "tUSD", 6);
    }

    function test_metadata_isAsConstructed() public view {
        assertEq(usd.name(), "Test USD");
        assertEq(usd.symbol(), "tUSD");
        assertEq(usd.decimals(), 6);
    }

    function testFuzz_mint_creditsRecipientAndSupply(address to, uint256 a, uint256 b) public {
        vm.assume(to != address(0));
        a = bound(a, 0, type(uint128).max);
        b = bound(b, 0, type(uint128).max);
        usd.mint(to, a);
        usd.mint(to, b);
        assertEq(usd.balanceOf(to), a + b);
        assertEq(usd.totalSupply(), a + b);
    }

    function test_mint_reverts_whenRecipientIsZero() public {
        vm.expectRevert();
        usd.mint(address(0), 1);
    }
}
