// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Paymaster} from "@openzeppelin/contracts/account/paymaster/Paymaster.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

/// @title MockPaymaster
/// @notice An OpenZeppelin paymaster on EntryPoint v0.8 that sponsors every operation, with no
///         storage, no context and no `postOp`: a session's sponsor in tests (on anvil, the
///         ERC-7562 traces of sponsored session operations). Anyone can top up its deposit and
///         nobody can withdraw it. Never deploy it where its deposit would matter.
contract MockPaymaster is Paymaster {
    /// @notice EntryPoint v0.8 at its canonical address.
    function entryPoint() public pure override returns (IEntryPoint) {
        return IEntryPoint(0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108);
    }

    /// @notice Adds `msg.value` to the paymaster's EntryPoint deposit.
    function deposit() external payable {
        _deposit(msg.value);
    }

    function _validatePaymasterUserOp(PackedUserOperation calldata, bytes32, uint256)
        internal
        pure
        override
        returns (bytes memory context, uint256 validationData)
    {
        return ("", 0);
    }
}
