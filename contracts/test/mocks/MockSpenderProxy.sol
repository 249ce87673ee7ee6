// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title MockSpenderProxy
/// @notice A spender proxy in the style of 0x's AllowanceTarget or 1inch's: users approve their
///         tokens to the proxy once, and the routers its admin authorised pull through it from
///         `from`. The routers pass their own caller as `from`.
contract MockSpenderProxy {
    using SafeERC20 for IERC20;

    address public immutable admin;
    mapping(address router => bool) public authorised;

    error NotAuthorised(address caller);

    constructor(address admin_) {
        admin = admin_;
    }

    function authorise(address router, bool ok) external {
        if (msg.sender != admin) revert NotAuthorised(msg.sender);
        authorised[router] = ok;
    }

    /// @notice Moves `amount` of `token` from `from` to `to`; only authorised routers.
    function pull(address token, address from, address to, uint256 amount) external {
        if (!authorised[msg.sender]) revert NotAuthorised(msg.sender);
        IERC20(token).safeTransferFrom(from, to, amount);
    }
}
