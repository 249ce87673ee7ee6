// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Sak7579Account} from "./Sak7579Account.sol";

/// @title Sak7579AccountFactory
/// @notice Deploys {Sak7579Account} clones with CREATE2, as {SakAccountFactory} deploys
///         SakAccounts: the address depends only on the factory, the owner and the salt, so it
///         is known (and can be funded) before deployment, and whoever deploys it deploys what
///         the owner would have (the owner and the session module are set in the same call).
contract Sak7579AccountFactory {
    /// @notice The account implementation every clone delegates to.
    Sak7579Account public immutable IMPLEMENTATION;

    event AccountCreated(address indexed account, address indexed owner, bytes32 salt);

    error NoImplementation(address implementation);

    /// @param implementation A deployed {Sak7579Account}; the factory refuses an address
    ///        without code.
    constructor(Sak7579Account implementation) {
        if (address(implementation).code.length == 0) {
            revert NoImplementation(address(implementation));
        }
        IMPLEMENTATION = implementation;
    }

    /// @notice Deploys (or returns, if already deployed) the account of `owner` for `salt`.
    ///         Callable by anyone, including the EntryPoint's SenderCreator (user op initCode).
    function createAccount(address owner, bytes32 salt) external returns (Sak7579Account account) {
        bytes32 cloneSalt = keccak256(abi.encode(owner, salt));
        address predicted = Clones.predictDeterministicAddress(address(IMPLEMENTATION), cloneSalt);
        if (predicted.code.length != 0) return Sak7579Account(payable(predicted));
        account =
            Sak7579Account(payable(Clones.cloneDeterministic(address(IMPLEMENTATION), cloneSalt)));
        account.initialize(owner);
        emit AccountCreated(address(account), owner, salt);
    }

    /// @notice The address `createAccount(owner, salt)` deploys to.
    function getAddress(address owner, bytes32 salt) external view returns (address) {
        return Clones.predictDeterministicAddress(
            address(IMPLEMENTATION), keccak256(abi.encode(owner, salt))
        );
    }
}
