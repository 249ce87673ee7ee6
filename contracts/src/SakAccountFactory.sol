// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {SakAccount} from "./SakAccount.sol";

/// @title SakAccountFactory
/// @notice Deploys {SakAccount} clones with CREATE2. The address depends only on the factory,
///         the owner and the salt, so it is known (and can be funded) before deployment, and a
///         third party deploying it early can only deploy what the owner would have.
///
/// The implementation is a constructor argument, so that both are deployed (and verified) on
/// their own through the CREATE2 deployer: the factory's address commits to the
/// implementation's, and both are the same on every chain.
contract SakAccountFactory {
    /// @notice The account implementation every clone delegates to.
    SakAccount public immutable IMPLEMENTATION;

    event AccountCreated(address indexed account, address indexed owner, bytes32 salt);

    error NoImplementation(address implementation);

    /// @param implementation A deployed {SakAccount}; the factory refuses an address without code.
    constructor(SakAccount implementation) {
        if (address(implementation).code.length == 0) {
            revert NoImplementation(address(implementation));
        }
        IMPLEMENTATION = implementation;
    }

    /// @notice Deploys (or returns, if already deployed) the account of `owner` for `salt`.
    ///         Callable by anyone, including the EntryPoint's SenderCreator (user op initCode).
    function createAccount(address owner, bytes32 salt) external returns (SakAccount account) {
        bytes32 cloneSalt = _cloneSalt(owner, salt);
        address predicted = Clones.predictDeterministicAddress(address(IMPLEMENTATION), cloneSalt);
        if (predicted.code.length != 0) return SakAccount(payable(predicted));
        account = SakAccount(payable(Clones.cloneDeterministic(address(IMPLEMENTATION), cloneSalt)));
        account.initialize(owner);
        emit AccountCreated(address(account), owner, salt);
    }

    /// @notice The address `createAccount(owner, salt)` deploys to.
    function getAddress(address owner, bytes32 salt) external view returns (address) {
        return Clones.predictDeterministicAddress(address(IMPLEMENTATION), _cloneSalt(owner, salt));
    }

    function _cloneSalt(address owner, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, salt));
    }
}
