// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice Returns `false` instead of reverting when a transfer fails (ZRX, BAT style); here
///         while `paused`, every transfer fails that way and moves nothing.
contract MockFalseReturnERC20 {
    mapping(address => uint256) public balanceOf;
    bool public paused;

    function allowance(address, address) external pure returns (uint256) {
        return 0;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function setPaused(bool paused_) external {
        paused = paused_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        if (paused || balanceOf[msg.sender] < amount) return false;
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }
}
