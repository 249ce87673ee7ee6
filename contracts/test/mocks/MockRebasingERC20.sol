// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice A balance-scaling token (stETH, aTokens, AMPL style): holders own shares, a balance
///         is `shares * index / 1e18`, and `rebase` moves every balance at once. Amounts in
///         `transfer` are in balance units, converted to shares at the current index.
contract MockRebasingERC20 {
    uint256 public index = 1e18;
    mapping(address => uint256) public sharesOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function balanceOf(address who) public view returns (uint256) {
        return sharesOf[who] * index / 1e18;
    }

    function allowance(address, address) external pure returns (uint256) {
        return 0;
    }

    function mint(address to, uint256 amount) external {
        sharesOf[to] += amount * 1e18 / index;
    }

    /// @notice Scales every balance by `newIndex / index` (up or down).
    function rebase(uint256 newIndex) external {
        index = newIndex;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        uint256 shares = amount * 1e18 / index;
        sharesOf[msg.sender] -= shares;
        sharesOf[to] += shares;
        emit Transfer(msg.sender, to, amount);
        return true;
    }
}
