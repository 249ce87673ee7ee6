//! Ending sessions: one (`revokeSession`) or all of the account's at once
//! (`revokeAllSessions`, a fresh salt), each reported once the chain shows it.

use crate::{
    Chain, Hinted, Home, Result,
    error::{WrapErr, bail},
    sessions::{find, status_of},
    store::{AccountRecord, SessionRecord},
};
use alloy::primitives::{Address, B256};
use sak_contracts::SakAccount;
use serde::Serialize;

/// A revoke, as `sak session revoke --json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    /// The network's name in the home.
    pub network: String,
    /// The chain.
    pub chain_id: u64,
    /// The account.
    pub account: Address,
    /// The session.
    pub id: u32,
    /// The session key's address.
    pub key: Address,
    /// True when the session was revoked before this command (nothing was sent).
    pub already_revoked: bool,
    /// `revoke` (this session alone) or `revoke-all`.
    pub revoked_by: &'static str,
    /// The revocation sent now; null if it was already revoked.
    pub transaction: Option<B256>,
    /// Its block.
    pub block: Option<u64>,
    /// The status before this command: `active`, `not-started`, `expired` or `revoked`.
    pub status_before: &'static str,
}

/// Revokes session `id` of this home's account (nothing is sent when it already is), and
/// checks that the chain shows it inactive.
pub async fn revoke(home: &Home, chain: &Chain, id: u32) -> Result<Revoked> {
    let account = home.account(chain.chain_id)?;
    let now = chain.time().await?;
    let session = find(home, chain, &account, id, now).await?;
    let mut out = Revoked {
        network: home.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id,
        key: session.signer,
        already_revoked: session.status == "revoked",
        revoked_by: session.revoked_by.unwrap_or("revoke"),
        transaction: None,
        block: None,
        status_before: session.status,
    };
    if !out.already_revoked {
        let receipt = if account.kind.is_modular() {
            home.progress(&format!(
                "the owner signs an operation of the account calling revokeSession({id})…"
            ));
            super::acts::module_act(
                home,
                chain,
                &account,
                &SakAccount::revokeSessionCall { id },
                "revokeSession",
            )
            .await?
        } else {
            let owner = home.owner().await?;
            let wallet = home.owner_provider(chain, &owner)?;
            super::send_revoke(home, &wallet, account.address, id).await?
        };
        out.transaction = Some(receipt.transaction_hash);
        out.block = receipt.block_number;
        // Done means the chain shows the session inactive, not merely a mined transaction.
        let view = crate::sessions::host_of(&account)
            .view(&chain.provider, id)
            .await
            .wrap_err("reading the session back after the revoke")?;
        if view.signer != Address::ZERO {
            bail!(Hinted::new(
                format!(
                    "revokeSession({}) was included (tx {}) but the chain still shows the session active",
                    id, receipt.transaction_hash
                ),
                "run `sak session revoke` again, or `sak session revoke-all` to end every session",
            ));
        }
    }
    Ok(out)
}

/// A revoke-all, as `sak session revoke-all --json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedAll {
    /// The network's name in the home.
    pub network: String,
    /// The chain.
    pub chain_id: u64,
    /// The account.
    pub account: Address,
    /// The owner's `revokeAllSessions` transaction.
    pub transaction: B256,
    /// Its block.
    pub block: Option<u64>,
    /// The account's new revocation salt, drawn by this transaction ("0x" and 16 hex digits).
    pub salt: Option<String>,
    /// The sessions recorded in this home that could still act (active or not started) and
    /// were ended now. Sessions granted from elsewhere end too; they are not listed.
    pub ended: Vec<Ended>,
}

/// A recorded session ended by `revoke-all`.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    /// The session.
    pub id: u32,
    /// Its key.
    pub key: Address,
    /// The key's name in the home.
    pub key_name: String,
    /// `active` or `not-started`.
    pub status_before: &'static str,
}

/// Ends every session of this home's account in one transaction (a fresh salt), listing the
/// recorded sessions that could still act.
pub async fn revoke_all(home: &Home, chain: &Chain) -> Result<RevokedAll> {
    let account = home.account(chain.chain_id)?;
    let owner = home.owner().await?;
    let now = chain.time().await?;
    let host = crate::sessions::host_of(&account);
    let mut ended = Vec::new();
    for r in recorded(home, &account, chain.chain_id)? {
        let view = host.view(&chain.provider, r.id).await?;
        let status = status_of(&view, now);
        if matches!(status, "active" | "not-started") {
            ended.push(Ended { id: r.id, key: r.key, key_name: r.key_name, status_before: status });
        }
    }
    home.progress("the owner signs revokeAllSessions…");
    let receipt = super::send_revoke_all(home, chain, &account, &owner).await?;
    let salt = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<SakAccount::AllSessionsRevoked>().ok())
        .map(|l| format!("{:#018x}", l.inner.data.salt));
    Ok(RevokedAll {
        network: home.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        transaction: receipt.transaction_hash,
        block: receipt.block_number,
        salt,
        ended,
    })
}

/// The sessions recorded in this home for `account` on this chain.
fn recorded(home: &Home, account: &AccountRecord, chain_id: u64) -> Result<Vec<SessionRecord>> {
    let state = home.state()?;
    Ok(state
        .networks
        .get(&home.network_name)
        .map(|n| {
            n.sessions
                .iter()
                .filter(|r| r.account == account.address && r.chain_id == chain_id)
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}
