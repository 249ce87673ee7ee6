// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MockERC20} from "../../src/mocks/MockERC20.sol";

/// @notice Takes a fee out of every transfer: the sender loses `amount`, the recipient gets
///         `amount - fee`, the fee is burnt (STA, PAXG style).
contract MockFeeOnTransferERC20 is MockERC20 {
    uint256 public immutable FEE_BPS;

    constructor(uint256 feeBps) MockERC20("Fee on transfer", "FOT", 6) {
        FEE_BPS = feeBps;
    }

    function _update(address from, address to, uint256 amount) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, amount);
        uint256 fee = amount * FEE_BPS / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, amount - fee);
    }
}
