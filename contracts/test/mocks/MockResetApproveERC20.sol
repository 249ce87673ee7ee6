// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice USDT-style: `transfer`, `transferFrom` and `approve` return nothing, and `approve`
///         reverts when changing one non-zero allowance to another (reset it to zero first).
contract MockResetApproveERC20 {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function transfer(address to, uint256 amount) external {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
    }

    function transferFrom(address from, address to, uint256 amount) external {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external {
        require(amount == 0 || allowance[msg.sender][spender] == 0, "reset to zero first");
        allowance[msg.sender][spender] = amount;
    }
}
