// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {SignerECDSA} from "@openzeppelin/contracts/utils/cryptography/signers/SignerECDSA.sol";

/// @title Sak7579Account
/// @notice The modular form (`sak account create --kind 7579`): OpenZeppelin's ERC-7579
///         account on EntryPoint v0.8, owned by one ECDSA key, with sak's {SessionKeyValidator}
///         installed at creation. Deployed as ERC-1167 clones by {Sak7579AccountFactory}.
///
/// - Owner operations: `userOp.signature` is a 65-byte ECDSA signature of the user operation
///   hash, on a nonce key whose top 20 bytes name no installed validator (sak uses key 0). Only
///   the EntryPoint or the account itself runs `execute`, `installModule` and `uninstallModule`,
///   so every owner act is an owner operation.
/// - Sessions live in the module: the owner grants, revokes and rotates them with an owner
///   operation in which the account calls the module. A session operation's nonce key is
///   `module ‖ session id`, which routes its validation to the module.
/// - The account signs nothing under ERC-1271 but through a validator module, and the module
///   never signs for a session: neither the owner nor a session authorises a Permit here.
contract Sak7579Account is AccountERC7579, SignerECDSA {
    /// @notice The session module every clone installs (`SessionKeyValidator`).
    address public immutable SESSION_MODULE;

    error AlreadyInitialized();
    error InvalidOwner();

    /// @param sessionModule The deployed {SessionKeyValidator}.
    constructor(address sessionModule) SignerECDSA(address(0xdead)) {
        // The implementation itself is never usable (its owner is 0xdead): only clones are
        // initialised.
        SESSION_MODULE = sessionModule;
    }

    /// @notice Sets the owner of a fresh clone and installs the session module; the factory
    ///         calls it in the deploying transaction, so it cannot be front-run.
    function initialize(address owner_) external {
        if (signer() != address(0)) revert AlreadyInitialized();
        if (owner_ == address(0) || owner_ == address(this)) revert InvalidOwner();
        _setSigner(owner_);
        _installModule(MODULE_TYPE_VALIDATOR, SESSION_MODULE, "");
    }

    /// @notice The owner's address (the signer of owner operations).
    function owner() external view returns (address) {
        return signer();
    }

    /// @notice EntryPoint v0.8 at its canonical address.
    function entryPoint() public pure override returns (IEntryPoint) {
        return IEntryPoint(0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108);
    }

    /// @dev The owner's signature, for owner operations (module-routed ones never reach here).
    function _rawSignatureValidation(bytes32 hash, bytes calldata signature)
        internal
        view
        override(AccountERC7579, SignerECDSA)
        returns (bool)
    {
        return SignerECDSA._rawSignatureValidation(hash, signature);
    }
}
