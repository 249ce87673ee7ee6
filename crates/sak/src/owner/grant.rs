//! Granting a session: the policy file resolved against the chain's address book, sent by the
//! owner, and recorded in the home under the key's name.

use crate::{Chain, Home, Result, error::WrapErr, store::SessionRecord, store::State};
use alloy::primitives::{Address, B256};
use sak_primitives::{Policy, PolicyFile};
use serde::Serialize;

/// A grant, as `sak session grant` reports it. Field names are part of the `--json` interface.
#[derive(Debug, Clone, Serialize)]
pub struct Granted {
    /// The network's name in the home.
    pub network: String,
    /// The chain it is on.
    pub chain_id: u64,
    /// The account that granted it.
    pub account: Address,
    /// The session's id (None on a dry run).
    pub id: Option<u32>,
    /// The session key's address.
    pub key: Address,
    /// The session key's name in the home.
    pub key_name: String,
    /// The owner's `grantSession` transaction (None on a dry run).
    pub transaction: Option<B256>,
    /// True: only resolved, nothing sent.
    pub dry_run: bool,
    /// The policy as the contracts enforce it.
    pub policy: Policy,
    /// What the owner chose that weakens a protection (generic dispatchers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Grants the session key `key` (a name in the home, or an address of one) the policy `file`
/// on this home's account: resolved against the chain's address book at chain time, sent by the
/// owner, recorded in `state.json`. With `dry_run`, only resolved.
///
/// ```no_run
/// # async fn demo() -> sak::Result<()> {
/// use sak::{Home, owner};
/// use sak::PolicyFile;
/// let home = Home::open(sak::Options::default())?;
/// let chain = home.chain().await?;
/// let file = PolicyFile::from_toml(
///     r#"
///         role = "trader"
///         router = "uniswap-v2-router"
///         valid_for = "7d"
///         gas = { budget = "0.05 ether", period = "1d" }
///         spend = [{ token = "tUSD", amount = "1000", period = "1d" }]
///     "#,
/// )?;
/// let granted = owner::grant(&home, &chain, "price-bot", &file, false).await?;
/// println!("session #{:?} for {}", granted.id, granted.key);
/// # Ok(()) }
/// ```
pub async fn grant(
    home: &Home,
    chain: &Chain,
    key: &str,
    file: &PolicyFile,
    dry_run: bool,
) -> Result<Granted> {
    let account = home.account(chain.chain_id)?;
    let (key_name, key_path) = home.session_key_path(key)?;
    let key = crate::keystore_address(&key_path)?
        .ok_or_else(|| crate::Error::msg(format!("the key file {} vanished", key_path.display())))?;
    let now = chain.time().await?;
    let policy = file.resolve(&chain.contracts.address_book(), now).wrap_err("the session's policy")?;
    let warnings = policy
        .permissions
        .iter()
        .filter_map(|p| {
            sak_primitives::dispatcher(p.selector).map(|f| {
                format!(
                    "the session may call the generic dispatcher {f} on {}: every call or move it can \
                     route is permitted too (only the caps still bound what leaves the account)",
                    p.target
                )
            })
        })
        .collect();
    let mut out = Granted {
        network: home.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id: None,
        key,
        key_name: key_name.clone(),
        transaction: None,
        dry_run,
        policy,
        warnings,
    };
    if dry_run {
        return Ok(out);
    }
    let (id, tx, block) = super::send_grant(home, chain, &account, &out.policy, key).await?;
    let record = SessionRecord {
        id,
        account: account.address,
        chain_id: chain.chain_id,
        key,
        key_name,
        tx,
        block,
        granted_at: now,
        rotated_at: None,
    };
    State::update(&home.paths.state(), |s| {
        s.networks.entry(home.network_name.clone()).or_default().sessions.push(record);
    })?;
    (out.id, out.transaction) = (Some(id), Some(tx));
    Ok(out)
}
