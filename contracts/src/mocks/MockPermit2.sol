// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title MockPermit2
/// @notice The allowance-transfer part of Uniswap's Permit2, with its semantics: a user approves
///         the token to Permit2 once, then gives each spender an amount and an expiry
///         (`approve`); a spender moves `amount` of `token` from `from` with
///         `transferFrom(from, to, amount, token)`, against the allowance of (`from`, `token`,
///         `msg.sender`). An amount of type(uint160).max is never decremented; an expiration of
///         0 means "this block". Tests etch its code at Permit2's canonical address
///         (0x000000000022D473030F116dDEE9F6B43aC78BA3): it has no constructor state.
contract MockPermit2 {
    using SafeERC20 for IERC20;

    struct PackedAllowance {
        uint160 amount;
        uint48 expiration;
        uint48 nonce;
    }

    mapping(
        address user => mapping(address token => mapping(address spender => PackedAllowance))
    ) public allowance;

    error AllowanceExpired(uint256 deadline);
    error InsufficientAllowance(uint256 amount);

    event Approval(
        address indexed owner,
        address indexed token,
        address indexed spender,
        uint160 amount,
        uint48 expiration
    );

    function approve(address token, address spender, uint160 amount, uint48 expiration) external {
        PackedAllowance storage a = allowance[msg.sender][token][spender];
        a.amount = amount;
        a.expiration = expiration == 0 ? uint48(block.timestamp) : expiration;
        emit Approval(msg.sender, token, spender, amount, expiration);
    }

    function transferFrom(address from, address to, uint160 amount, address token) external {
        PackedAllowance storage a = allowance[from][token][msg.sender];
        if (block.timestamp > a.expiration) revert AllowanceExpired(a.expiration);
        if (a.amount != type(uint160).max) {
            if (amount > a.amount) revert InsufficientAllowance(a.amount);
            a.amount -= amount;
        }
        IERC20(token).safeTransferFrom(from, to, amount);
    }
}
