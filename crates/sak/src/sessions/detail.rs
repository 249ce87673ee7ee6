//! One session in full: its policy, status, and what remains of each allowance, the gas
//! budget and the operation count this period, read from the chain.

use super::{find, period_use};
use crate::{Chain, Home, Result};
use alloy::primitives::{Address, B256};
use sak_primitives::{Gas, NATIVE, Policy};
use serde::Serialize;

/// One session in full, as `sak session show --json` prints it. Amounts are decimal strings in base units (as in
/// `sak send`/`sak swap`), except inside `policy`, which is the granted policy exactly as
/// `sak session grant --json` prints it (0x hex). Times are unix seconds (chain time).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// The network's name in the home.
    pub network: String,
    /// The chain.
    pub chain_id: u64,
    /// The account.
    pub account: Address,
    /// The session id.
    pub id: u32,
    /// The session key's address.
    pub key: Address,
    /// The key's name in this home, if it is here.
    pub key_name: Option<String>,
    /// `active`, `not-started`, `expired` or `revoked`.
    pub status: &'static str,
    /// For a revoked session: `revoke` (alone) or `revoke-all`.
    pub revoked_by: Option<&'static str>,
    /// The chain's latest block time, which the periods below are computed at.
    pub chain_time: u64,
    /// The transaction of its (last) grant.
    pub grant_transaction: B256,
    /// That transaction's block.
    pub grant_block: u64,
    /// When the current key took the session over (`sak session rotate`), if recorded here.
    pub rotated_at: Option<u64>,
    /// The policy as granted.
    pub policy: Policy,
    /// One entry per spend limit.
    pub allowances: Vec<AllowanceUse>,
    /// The gas the account pays for the session's operations.
    pub gas: GasUse,
    /// Present when the policy limits the operation count.
    pub operations: Option<OpsUse>,
}

/// A spend limit in the current period.
#[derive(Debug, Clone, Serialize)]
pub struct AllowanceUse {
    /// The token (0x000…000 = native ETH).
    pub token: Address,
    /// Its name in the address book, else the address.
    pub name: String,
    /// Decimals, when known (ETH: 18).
    pub decimals: Option<u8>,
    /// The allowance per period (base units).
    pub cap: String,
    /// The period, in seconds.
    pub period_s: u32,
    /// The current period's index since the session's start.
    pub window: u64,
    /// First second of the current period.
    pub period_start: u64,
    /// Charged in the current period; null after `revoke-all`, whose counters are unreachable.
    pub spent: Option<String>,
    /// What may still be spent this period ("0" for an expired or revoked session).
    pub remaining: String,
    /// When the full allowance returns; null if the session ends first or is over.
    pub renews_at: Option<u64>,
}

/// The gas the account pays for the session's operations.
#[derive(Debug, Clone, Serialize)]
pub struct GasUse {
    /// `budget`, `unlimited` or `sponsored-only` (only its paymaster may pay).
    pub kind: &'static str,
    /// Wei per period (kind `budget`).
    pub budget_wei: Option<String>,
    /// The budget's period, in seconds.
    pub period_s: Option<u32>,
    /// Charged this period (the full prefund of each operation).
    pub spent_wei: Option<String>,
    /// What remains of the budget this period.
    pub remaining_wei: Option<String>,
    /// When the full budget returns.
    pub renews_at: Option<u64>,
    /// The highest `maxFeePerGas` (wei) of an operation the account pays for; none if absent.
    pub max_fee_per_gas_wei: Option<u64>,
    /// The highest `preVerificationGas` the account pays for; none if absent.
    pub max_pre_verification_gas: Option<u32>,
}

/// The total operation count.
#[derive(Debug, Clone, Serialize)]
pub struct OpsUse {
    /// The most operations the session may run.
    pub max: u32,
    /// How many ran; null after `revoke-all`.
    pub used: Option<u32>,
    /// What may still run ("0" once the session is over).
    pub remaining: u32,
}

/// Session `id` of this home's account, from the chain (`sak session show`).
pub async fn detail(home: &Home, chain: &Chain, id: u32) -> Result<Detail> {
    let account = home.account(chain.chain_id)?;
    let now = chain.time().await?;
    let session = find(home, chain, &account, id, now).await?;
    let record = home.session_record(account.address, id)?.filter(|r| r.key == session.signer);
    let key_name = match &record {
        Some(r) => Some(r.key_name.clone()),
        None => home.session_keys()?.into_iter().find(|(.., a)| *a == Some(session.signer)).map(|(n, ..)| n),
    };
    let host = super::host_of(&account);
    let latest = alloy::eips::BlockId::latest();
    // After revoke-all the counters live under the old salt: not readable any more.
    let counters_readable = session.revoked_by != Some("revoke-all");
    let policy = &session.policy;
    let bounds = (policy.valid_after, policy.valid_until);
    let live = session.live();

    let mut allowances = Vec::new();
    for limit in &policy.spend_limits {
        let stored = host.spend(&chain.provider, id, limit.token, latest).await?;
        let u = period_use(
            limit.allowance,
            stored.spent,
            stored.window,
            bounds,
            u64::from(limit.period),
            now,
            live,
        );
        allowances.push(AllowanceUse {
            token: limit.token,
            name: if limit.token == NATIVE { "ETH".into() } else { chain.contracts.name(limit.token) },
            decimals: if limit.token == NATIVE { Some(18) } else { chain.contracts.decimals(limit.token) },
            cap: limit.allowance.to_string(),
            period_s: limit.period,
            window: u.window,
            period_start: u.starts_at,
            spent: counters_readable.then(|| u.spent.to_string()),
            remaining: u.remaining.to_string(),
            renews_at: u.renews_at,
        });
    }
    let usage = if matches!(policy.gas, Gas::Budget { .. }) || policy.max_ops > 0 {
        Some(host.counters(&chain.provider, id, latest).await?)
    } else {
        None
    };
    let max_fee_per_gas_wei = (policy.max_fee_per_gas > 0).then_some(policy.max_fee_per_gas);
    let max_pre_verification_gas =
        (policy.max_pre_verification_gas > 0).then_some(policy.max_pre_verification_gas);
    let gas = match (&policy.gas, &usage) {
        (Gas::Budget { wei, period }, Some(usage)) => {
            let u =
                period_use(*wei, usage.gas.spent, usage.gas.window, bounds, u64::from(*period), now, live);
            GasUse {
                kind: "budget",
                budget_wei: Some(wei.to_string()),
                period_s: Some(*period),
                spent_wei: counters_readable.then(|| u.spent.to_string()),
                remaining_wei: Some(u.remaining.to_string()),
                renews_at: u.renews_at,
                max_fee_per_gas_wei,
                max_pre_verification_gas,
            }
        }
        (gas, _) => GasUse {
            kind: if matches!(gas, Gas::Unlimited) { "unlimited" } else { "sponsored-only" },
            budget_wei: None,
            period_s: None,
            spent_wei: None,
            remaining_wei: None,
            renews_at: None,
            max_fee_per_gas_wei,
            max_pre_verification_gas,
        },
    };

    let operations = match &usage {
        Some(usage) if policy.max_ops > 0 => {
            let used = usage.ops_used;
            Some(OpsUse {
                max: policy.max_ops,
                used: counters_readable.then_some(used),
                remaining: if live { policy.max_ops.saturating_sub(used) } else { 0 },
            })
        }
        _ => None,
    };
    Ok(Detail {
        network: home.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id,
        key: session.signer,
        key_name,
        status: session.status,
        revoked_by: session.revoked_by,
        chain_time: now,
        grant_transaction: session.grant_tx,
        grant_block: session.grant_block,
        rotated_at: record.and_then(|r| r.rotated_at),
        policy: session.policy.clone(),
        allowances,
        gas,
        operations,
    })
}
