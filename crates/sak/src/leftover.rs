//! Sessions an EIP-7702 account may have kept from before its last delegation change.
//!
//! EIP-7702 keeps an EOA's storage when it delegates elsewhere and back, and runs no code when
//! the delegation changes. So a session granted before the EOA delegated away and back, or one
//! another delegate wrote straight into storage (no grant event), acts again under
//! Sak7702Account until the owner revokes. sak's own delegations revoke in the same
//! transaction; this finds what delegations made elsewhere left behind, for `sak account
//! create --kind 7702` (which ends them) and `sak doctor` (which flags them).

use crate::{Result, WrapErr};
use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use sak_contracts::{AccountState, SakAccount};
use sak_userop::eip7702;
use serde::Serialize;

/// At most this many blocks are read for the delegation history (from the oldest live grant).
pub const SCAN_LIMIT: u64 = 5_000;
/// An id counter past this did not come from grants here: storage was written by other code.
pub const MAX_IDS: u32 = 4_096;

/// A live session that may not be the owner's to keep.
#[derive(Debug, Clone, Serialize)]
pub struct Leftover {
    /// The session id.
    pub id: u32,
    /// Its key.
    pub signer: Address,
    /// `no-grant-event` (written by other code) or `granted-before-delegation`.
    pub reason: &'static str,
    /// In words, with the blocks involved.
    pub detail: String,
}

/// What [`find`] saw.
#[derive(Debug, Default)]
pub struct Findings {
    /// Live sessions (active or not started), leftovers included.
    pub live: Vec<u32>,
    /// Those that may not be the owner's to keep.
    pub leftovers: Vec<Leftover>,
    /// Storage no grant or revoke of Sak7702Account could have written (then every record is
    /// suspect, listed or not).
    pub tampered: Option<String>,
    /// Why the delegation history was not checked (too long to read).
    pub unchecked: Option<String>,
}

impl Findings {
    /// One line for humans: what is wrong, or `None`.
    pub fn summary(&self) -> Option<String> {
        let mut parts: Vec<String> = self.tampered.iter().cloned().collect();
        parts.extend(
            self.leftovers.iter().map(|l| format!("session #{} (key {}): {}", l.id, l.signer, l.detail)),
        );
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Reads `eoa`'s session state, grant and revoke events, and (from the oldest live grant on)
/// the authorizations it signed, and lists the live sessions that predate its last delegation
/// change or have no grant at all.
pub async fn find(provider: &DynProvider, eoa: Address) -> Result<Findings> {
    let word = provider
        .get_storage_at(eoa, AccountState::slot(eoa).into())
        .await
        .wrap_err("reading the account's session state (eth_getStorageAt)")?;
    let state = AccountState::from_word(word);
    let filter = Filter::new()
        .address(eoa)
        .event_signature(vec![
            SakAccount::SessionGranted::SIGNATURE_HASH,
            SakAccount::AllSessionsRevoked::SIGNATURE_HASH,
        ])
        .from_block(0);
    let logs = provider.get_logs(&filter).await.wrap_err("reading the account's grant and revoke events")?;
    let position =
        |l: &alloy::rpc::types::Log| (l.block_number.unwrap_or(0), l.transaction_index.unwrap_or(0));
    let last_revoke =
        logs.iter().rposition(|l| l.topic0() == Some(&SakAccount::AllSessionsRevoked::SIGNATURE_HASH));
    let drawn = last_revoke
        .and_then(|i| logs[i].log_decode::<SakAccount::AllSessionsRevoked>().ok())
        .map_or(0, |l| l.inner.data.salt);

    let mut out = Findings::default();
    if state.salt != drawn {
        out.tampered = Some(format!(
            "the stored revocation salt {:#018x} was not drawn by revokeAllSessions: another delegate wrote this account's session storage",
            state.salt
        ));
    }
    if state.next_id > MAX_IDS {
        out.tampered = Some(format!(
            "the session id counter is {}, more than grants made: another delegate wrote this account's session storage",
            state.next_id
        ));
        return Ok(out);
    }
    let grants_since: Vec<_> = logs[last_revoke.map_or(0, |i| i + 1)..]
        .iter()
        .filter_map(|l| {
            l.log_decode::<SakAccount::SessionGranted>().ok().map(|g| (g.inner.data.id, position(l)))
        })
        .collect();
    let account = SakAccount::new(eoa, provider);
    let mut granted = Vec::new();
    for id in 1..=state.next_id {
        let view = account.getSession(id).call().await.wrap_err("getSession")?;
        if !view.active {
            continue;
        }
        out.live.push(id);
        match grants_since.iter().rev().find(|(g, _)| *g == id) {
            Some((_, at)) => granted.push((id, view.signer, *at)),
            None => out.leftovers.push(Leftover {
                id,
                signer: view.signer,
                reason: "no-grant-event",
                detail: "live with no grant event: written into storage by another delegate".into(),
            }),
        }
    }
    let Some(from) = granted.iter().map(|(_, _, (block, _))| *block).min() else { return Ok(out) };
    let head = provider.get_block_number().await.wrap_err("eth_blockNumber")?;
    if head.saturating_sub(from) > SCAN_LIMIT {
        out.unchecked = Some(format!(
            "the delegation history since block {from} ({} blocks) is too long to read here",
            head - from
        ));
        return Ok(out);
    }
    let authorizations = eip7702::authorizations_by(provider, eoa, from, head)
        .await
        .wrap_err("reading the EOA's delegation history")?;
    for (id, signer, (block, tx)) in granted {
        if let Some(a) = authorizations.iter().rev().find(|a| (a.block, a.tx_index) > (block, tx)) {
            out.leftovers.push(Leftover {
                id,
                signer,
                reason: "granted-before-delegation",
                detail: format!(
                    "granted in block {block}, before the EOA signed a delegation to {} in block {}",
                    a.delegate, a.block
                ),
            });
        }
    }
    out.leftovers.sort_by_key(|l| l.id);
    Ok(out)
}

/// `revokeAllSessions` calldata, as sak's delegations carry it.
pub fn revoke_all_call() -> alloy::primitives::Bytes {
    alloy::sol_types::SolCall::abi_encode(&SakAccount::revokeAllSessionsCall {}).into()
}
