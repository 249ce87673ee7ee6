// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakAccountBase} from "./SakAccountBase.sol";
import {SessionAdapter} from "./SessionAdapter.sol";

/// @title Sak7702Account
/// @notice The EIP-7702 form: an EOA delegates its code here and keeps its own key as the owner
///         (`owner() == address(this)`). There is no initializer and no owner in storage, so
///         nothing can be front-run between the set-code transaction and first use; sessions
///         live in the ERC-7201 namespace `sak.storage.Sessions`, never at slot 0.
///
/// Re-delegation: EIP-7702 keeps storage when an EOA delegates elsewhere and back, and no code
/// runs on a delegation change, so no contract can notice "away and back" by itself. Sessions
/// therefore end by the owner's act: {revokeAllSessions} before delegating away (the sak CLI
/// does it), or on return. User operations signed under another delegate do not validate here,
/// because EntryPoint v0.8 hashes the delegate address of a 7702 sender into the op hash.
contract Sak7702Account is SakAccountBase {
    constructor(SessionAdapter adapter) SakAccountBase(adapter) {}

    /// @inheritdoc SakAccountBase
    function owner() public view override returns (address) {
        return address(this);
    }
}
