// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakAccountBase} from "./SakAccountBase.sol";
import {SessionAdapter} from "./SessionAdapter.sol";
import {SessionLib} from "./lib/SessionLib.sol";

/// @title SakAccount
/// @notice The smart-account form: an ERC-4337 account (EntryPoint v0.8) owned by one ECDSA key,
///         deployed as an ERC-1167 clone by {SakAccountFactory}. See {SakAccountBase}.
contract SakAccount is SakAccountBase {
    error AlreadyInitialized();
    error InvalidOwner();

    constructor(SessionAdapter adapter) SakAccountBase(adapter) {
        // The implementation itself is never usable: only clones are initialised.
        SessionLib.layout().accounts[address(this)].owner = address(0xdead);
    }

    /// @notice Sets the owner of a fresh clone; the factory calls it in the deploying
    ///         transaction, so it cannot be front-run.
    function initialize(address owner_) external {
        SessionLib.AccountState storage a = SessionLib.layout().accounts[address(this)];
        if (a.owner != address(0)) revert AlreadyInitialized();
        if (owner_ == address(0)) revert InvalidOwner();
        a.owner = owner_;
    }

    /// @inheritdoc SakAccountBase
    function owner() public view override returns (address) {
        return SessionLib.layout().accounts[address(this)].owner;
    }
}
