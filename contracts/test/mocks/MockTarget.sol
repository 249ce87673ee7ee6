// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice A contract a session may be allowed to call. It records who called it last, so tests
///         can tell a call made by the account from one made through its adapter.
contract Target {
    uint256 public pings;
    address public lastCaller;

    function ping(uint256, address, uint256) external payable {
        ++pings;
        lastCaller = msg.sender;
    }

    function pong() external {}
}
