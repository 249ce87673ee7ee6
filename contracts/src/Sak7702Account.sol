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
/// runs on a delegation change, so no contract can notice "away and back" by itself, and an
/// earlier delegate may have written anything into this namespace. Every session record is
/// keyed under a revocation salt that {revokeAllSessions} draws from the block (never a
/// counter: nothing stored can make it overflow or let earlier code predict it), and only ids
/// up to the stored counter can act. sak's delegations call {revokeAllSessions} in the same
/// type-4 transaction, so nothing written before survives them; a re-delegation made elsewhere
/// leaves earlier sessions live until the owner revokes (`sak doctor` flags them, `sak account
/// create --kind 7702` ends them). User operations signed under another delegate do not
/// validate here, because EntryPoint v0.8 hashes the delegate address of a 7702 sender into the
/// op hash.
contract Sak7702Account is SakAccountBase {
    constructor(SessionAdapter adapter) SakAccountBase(adapter) {}

    /// @inheritdoc SakAccountBase
    function owner() public view override returns (address) {
        return address(this);
    }
}
