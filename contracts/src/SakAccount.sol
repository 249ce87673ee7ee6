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

    /// @notice The owner proposed `newOwner` (address(0): the proposal was withdrawn).
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice `newOwner` accepted: it alone signs owner operations and manages sessions now.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

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

    /// @notice The owner proposed by {transferOwnership}, until it accepts.
    function pendingOwner() external view returns (address) {
        return SessionLib.layout().pendingOwners[address(this)];
    }

    /// @notice Proposes `newOwner`; nothing changes until it calls {acceptOwnership}, so a
    ///         mistyped address costs nothing. address(0) withdraws a proposal. Sessions are
    ///         the account's, not the owner's: they stay (revoke them separately if the old key
    ///         is compromised). A session can never call this (the account is never a target).
    function transferOwnership(address newOwner) external onlyOwnerOrSelf {
        // The account cannot sign for itself: owning itself would leave it without an owner.
        if (newOwner == address(this)) revert InvalidOwner();
        SessionLib.layout().pendingOwners[address(this)] = newOwner;
        emit OwnershipTransferStarted(owner(), newOwner);
    }

    /// @notice Called by the proposed owner: it becomes the owner.
    function acceptOwnership() external {
        SessionLib.Layout storage l = SessionLib.layout();
        address next = l.pendingOwners[address(this)];
        if (msg.sender != next || next == address(0)) revert NotOwner(msg.sender);
        delete l.pendingOwners[address(this)];
        SessionLib.AccountState storage a = l.accounts[address(this)];
        emit OwnershipTransferred(a.owner, next);
        a.owner = next;
    }
}
