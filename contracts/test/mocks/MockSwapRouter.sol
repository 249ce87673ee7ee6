// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MockSpenderProxy} from "./MockSpenderProxy.sol";

interface IPermit2Transfer {
    function transferFrom(address from, address to, uint160 amount, address token) external;
}

/// @title MockSwapRouter
/// @notice A tiny router with arbitrary paths through pools anyone may register (so an attacker
///         can own the pool a path goes through). It pulls the input from its caller, as real
///         routers do, in one of three ways: a direct ERC-20 allowance (Uniswap V2), Permit2
///         (Universal Router) or a spender proxy (0x / 1inch). A pool is an address holding the
///         output token that approved this router; every hop is 1:1 in base units.
contract MockSwapRouter {
    using SafeERC20 for IERC20;

    enum Pull {
        Direct,
        Permit2,
        Proxy
    }

    address public constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    MockSpenderProxy public immutable proxy;

    mapping(address tokenIn => mapping(address tokenOut => address pool)) public poolOf;

    error NoPool(address tokenIn, address tokenOut);
    error PoolTaken(address tokenIn, address tokenOut);
    error BadPath();

    constructor(MockSpenderProxy proxy_) {
        proxy = proxy_;
    }

    /// @notice Registers `pool` for swaps of `tokenIn` into `tokenOut`; first come, first served.
    function setPool(address tokenIn, address tokenOut, address pool) external {
        if (poolOf[tokenIn][tokenOut] != address(0)) revert PoolTaken(tokenIn, tokenOut);
        poolOf[tokenIn][tokenOut] = pool;
    }

    /// @notice Swaps `amountIn` of `path[0]` along `path`, paying the output to `to`.
    function swap(address[] calldata path, uint256 amountIn, address to, Pull pull)
        external
        returns (uint256)
    {
        if (path.length < 2) revert BadPath();
        address first = _pool(path[0], path[1]);
        if (pull == Pull.Direct) {
            IERC20(path[0]).safeTransferFrom(msg.sender, first, amountIn);
        } else if (pull == Pull.Permit2) {
            IPermit2Transfer(PERMIT2).transferFrom(msg.sender, first, uint160(amountIn), path[0]);
        } else {
            proxy.pull(path[0], msg.sender, first, amountIn);
        }
        address pool = first;
        for (uint256 i = 1; i < path.length; ++i) {
            address next = i + 1 < path.length ? _pool(path[i], path[i + 1]) : to;
            IERC20(path[i]).safeTransferFrom(pool, next, amountIn);
            pool = next;
        }
        return amountIn;
    }

    function _pool(address tokenIn, address tokenOut) private view returns (address pool) {
        pool = poolOf[tokenIn][tokenOut];
        if (pool == address(0)) revert NoPool(tokenIn, tokenOut);
    }
}
