//! `sak session show|revoke|revoke-all|rotate`: one session's state and allowances, and the
//! owner's ways to end or replace sessions.
//!
//! The chain is the source of truth: a session's policy is read back from its
//! `SessionGranted` event, its state from `getSession`/`getSpend`/`getUsage`. A revoked
//! session's record is deleted on-chain (and unreachable after `revokeAllSessions`), so
//! "revoked" is told apart from "never granted" by the grant event.

use super::{IdArgs, RotateArgs};
use crate::{
    ctx::{Chain, Ctx, keystore_address},
    output::{self, Hinted},
    store::{AccountRecord, SessionRecord, State},
};
use alloy::primitives::{Address, B256, U256};
use eyre::{OptionExt, WrapErr};
pub(crate) use sak::owner::{mined, send_revoke, send_revoke_all};
pub(crate) use sak::sessions::{OnChain, chain_status, find, period_use, status_of};
use sak::words::{describe_policy, fee_caps_line};
use sak_contracts::SakAccount;
use sak_primitives::units::{format_amount as show_amount, format_period as show_period};
use sak_primitives::{Gas, NATIVE, Policy, units::format_time};
use sak_signer::keystore::{self, LocalKey};
use serde::Serialize;

mod rotate;

pub(crate) use rotate::rotate;

// ---------------------------------------------------------------------------------------------
// show
// ---------------------------------------------------------------------------------------------

/// What `sak session show --json` prints. Amounts are decimal strings in base units (as in
/// `sak send`/`sak swap`), except inside `policy`, which is the granted policy exactly as
/// `sak session grant --json` prints it (0x hex). Times are unix seconds (chain time).
#[derive(Debug, Serialize)]
struct Shown {
    network: String,
    chain_id: u64,
    account: Address,
    id: u32,
    /// The session key's address.
    key: Address,
    /// The key's name in this home, if it is here.
    key_name: Option<String>,
    /// `active`, `not-started`, `expired` or `revoked`.
    status: &'static str,
    /// For a revoked session: `revoke` (alone) or `revoke-all`.
    revoked_by: Option<&'static str>,
    /// The chain's latest block time, which the periods below are computed at.
    chain_time: u64,
    grant_transaction: B256,
    grant_block: u64,
    /// When the current key took the session over (`sak session rotate`), if recorded here.
    rotated_at: Option<u64>,
    policy: Policy,
    /// One entry per spend limit.
    allowances: Vec<AllowanceShown>,
    gas: GasShown,
    /// Present when the policy limits the operation count.
    operations: Option<OpsShown>,
}

/// A spend limit in the current period.
#[derive(Debug, Serialize)]
struct AllowanceShown {
    /// The token (0x000…000 = native ETH).
    token: Address,
    /// Its name in the address book, else the address.
    name: String,
    /// Decimals, when known (ETH: 18).
    decimals: Option<u8>,
    /// The allowance per period (base units).
    cap: String,
    period_s: u32,
    /// The current period's index since the session's start.
    window: u64,
    /// First second of the current period.
    period_start: u64,
    /// Charged in the current period; null after `revoke-all`, whose counters are unreachable.
    spent: Option<String>,
    /// What may still be spent this period ("0" for an expired or revoked session).
    remaining: String,
    /// When the full allowance returns; null if the session ends first or is over.
    renews_at: Option<u64>,
}

/// The gas the account pays for the session's operations.
#[derive(Debug, Serialize)]
struct GasShown {
    /// `budget`, `unlimited` or `sponsored-only` (only its paymaster may pay).
    kind: &'static str,
    /// Wei per period (kind `budget`).
    budget_wei: Option<String>,
    period_s: Option<u32>,
    /// Charged this period (the full prefund of each operation).
    spent_wei: Option<String>,
    remaining_wei: Option<String>,
    renews_at: Option<u64>,
    /// The highest `maxFeePerGas` (wei) of an operation the account pays for; none if absent.
    max_fee_per_gas_wei: Option<u64>,
    /// The highest `preVerificationGas` the account pays for; none if absent.
    max_pre_verification_gas: Option<u32>,
}

/// The total operation count.
#[derive(Debug, Serialize)]
struct OpsShown {
    max: u32,
    used: Option<u32>,
    /// What may still run ("0" once the session is over).
    remaining: u32,
}

pub(crate) async fn show(args: IdArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let now = chain.time().await?;
    let session = find(ctx, &chain, account.address, args.id, now).await?;
    let record = ctx.session_record(account.address, args.id)?.filter(|r| r.key == session.signer);
    let key_name = match &record {
        Some(r) => Some(r.key_name.clone()),
        None => ctx.session_keys()?.into_iter().find(|(.., a)| *a == Some(session.signer)).map(|(n, ..)| n),
    };
    let contract = SakAccount::new(account.address, &chain.provider);
    // After revoke-all the counters live under the old salt: not readable any more.
    let counters_readable = session.revoked_by != Some("revoke-all");
    let policy = &session.policy;
    let bounds = (policy.valid_after, policy.valid_until);
    let live = session.live();

    let mut allowances = Vec::new();
    for limit in &policy.spend_limits {
        let stored = contract.getSpend(args.id, limit.token).call().await.wrap_err("getSpend")?;
        let u = period_use(
            limit.allowance,
            U256::from(stored.spent),
            stored.window.to(),
            bounds,
            u64::from(limit.period),
            now,
            live,
        );
        allowances.push(AllowanceShown {
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
        Some(contract.getUsage(args.id).call().await.wrap_err("getUsage")?)
    } else {
        None
    };
    let max_fee_per_gas_wei = (policy.max_fee_per_gas > 0).then_some(policy.max_fee_per_gas);
    let max_pre_verification_gas =
        (policy.max_pre_verification_gas > 0).then_some(policy.max_pre_verification_gas);
    let gas = match (&policy.gas, &usage) {
        (Gas::Budget { wei, period }, Some(usage)) => {
            let u = period_use(
                *wei,
                U256::from(usage.gasSpent),
                usage.gasWindow.to(),
                bounds,
                u64::from(*period),
                now,
                live,
            );
            GasShown {
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
        (gas, _) => GasShown {
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
            let used: u32 = usage.opsUsed.to();
            Some(OpsShown {
                max: policy.max_ops,
                used: counters_readable.then_some(used),
                remaining: if live { policy.max_ops.saturating_sub(used) } else { 0 },
            })
        }
        _ => None,
    };
    let out = Shown {
        network: ctx.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id: args.id,
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
    };
    output::emit(&ctx.global, &out, || human_show(&out, &chain))
}

fn human_show(out: &Shown, chain: &Chain) -> String {
    let at = |t: u64| sak_primitives::units::format_time_from(t, out.chain_time);
    let status = match (out.status, out.revoked_by) {
        ("revoked", Some("revoke-all")) => "REVOKED (with all sessions, `sak session revoke-all`)".to_owned(),
        ("revoked", _) => "REVOKED".to_owned(),
        ("expired", _) => format!("EXPIRED at {}", at(out.policy.valid_until)),
        ("not-started", _) => format!("not started: begins {}", at(out.policy.valid_after)),
        (status, _) => status.to_owned(),
    };
    let key = match &out.key_name {
        Some(name) => format!("`{name}` ({})", out.key),
        None => format!("{} (not in this home)", out.key),
    };
    let mut s = format!("session #{}  {status}\n  key        {key}\n  account    {}\n", out.id, out.account);
    if let Some(rotated) = out.rotated_at {
        s += &format!("  key since  {} (rotated)\n", at(rotated));
    }
    s += &format!("  granted    in block {} (tx {})\n", out.grant_block, out.grant_transaction);
    s += "policy\n";
    s += &describe_policy(&out.policy, chain, out.chain_time);
    s += &format!("this period (chain time {})\n", format_time(out.chain_time));
    let over = !matches!(out.status, "active" | "not-started");
    if over {
        s += &format!("  nothing more can be spent: the session is {}\n", out.status);
    }
    let renews = |when: Option<u64>| match when {
        Some(t) => format!(", renews {}", at(t)),
        None if over => String::new(),
        None => ", does not renew before the session ends".into(),
    };
    for a in &out.allowances {
        let amount = |v: &str| show_amount(v.parse().unwrap_or_default(), a.decimals);
        let spent = a.spent.as_deref().map_or_else(|| "unknown after revoke-all".into(), amount);
        s += &format!(
            "  {:<10} {} left of {} per {} (spent: {}){}\n",
            a.name,
            amount(&a.remaining),
            amount(&a.cap),
            show_period(u64::from(a.period_s)),
            spent,
            renews(a.renews_at)
        );
    }
    let eth = |v: &Option<String>| v.as_deref().map(|v| show_amount(v.parse().unwrap_or_default(), Some(18)));
    match out.gas.kind {
        "budget" => {
            s += &format!(
                "  {:<10} {} ETH left of {} per {} (spent: {}){}\n",
                "gas",
                eth(&out.gas.remaining_wei).unwrap_or_default(),
                eth(&out.gas.budget_wei).unwrap_or_default(),
                show_period(u64::from(out.gas.period_s.unwrap_or_default())),
                eth(&out.gas.spent_wei)
                    .map_or_else(|| "unknown after revoke-all".into(), |v| format!("{v} ETH")),
                renews(out.gas.renews_at)
            );
        }
        "unlimited" => s += "  gas        unlimited\n",
        _ => s += "  gas        sponsored operations only (the account pays none)\n",
    }
    s += &fee_caps_line(&out.policy).unwrap_or_default();
    if let Some(ops) = &out.operations {
        s += &format!(
            "  operations {} left of {} in total (used: {})\n",
            ops.remaining,
            ops.max,
            ops.used.map_or_else(|| "unknown after revoke-all".into(), |u| u.to_string())
        );
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Owner transactions
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// revoke
// ---------------------------------------------------------------------------------------------

/// What `sak session revoke --json` prints.
#[derive(Debug, Serialize)]
struct Revoked {
    network: String,
    chain_id: u64,
    account: Address,
    id: u32,
    /// The session key's address.
    key: Address,
    /// True when the session was revoked before this command (nothing was sent).
    already_revoked: bool,
    /// `revoke` (this session alone) or `revoke-all`.
    revoked_by: &'static str,
    /// The revocation sent now; null if it was already revoked.
    transaction: Option<B256>,
    block: Option<u64>,
    /// The status before this command: `active`, `not-started`, `expired` or `revoked`.
    status_before: &'static str,
}

pub(crate) async fn revoke(args: IdArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let now = chain.time().await?;
    let session = find(ctx, &chain, account.address, args.id, now).await?;
    let mut out = Revoked {
        network: ctx.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id: args.id,
        key: session.signer,
        already_revoked: session.status == "revoked",
        revoked_by: session.revoked_by.unwrap_or("revoke"),
        transaction: None,
        block: None,
        status_before: session.status,
    };
    if !out.already_revoked {
        let owner = ctx.owner().await?;
        let wallet = ctx.owner_provider(&chain, &owner)?;
        let receipt = send_revoke(ctx, &wallet, account.address, args.id).await?;
        out.transaction = Some(receipt.transaction_hash);
        out.block = receipt.block_number;
        // Done means the chain shows the session inactive, not merely a mined transaction.
        let view = SakAccount::new(account.address, &chain.provider)
            .getSession(args.id)
            .call()
            .await
            .wrap_err("reading the session back after the revoke")?;
        if view.signer != Address::ZERO {
            return Err(Hinted::new(
                format!(
                    "revokeSession({}) was included (tx {}) but the chain still shows the session active",
                    args.id, receipt.transaction_hash
                ),
                "run `sak session revoke` again, or `sak session revoke-all` to end every session",
            )
            .into());
        }
    }
    output::emit(&ctx.global, &out, || match out.transaction {
        Some(tx) => format!(
            "revoked session #{} ({}) on {}: its key can sign nothing more, operations already signed included\n  tx  {tx}",
            out.id, out.key, out.account
        ),
        None => format!(
            "session #{} was already revoked (by {}); nothing sent",
            out.id,
            if out.revoked_by == "revoke-all" { "`sak session revoke-all`" } else { "a revoke" }
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// revoke-all
// ---------------------------------------------------------------------------------------------

/// What `sak session revoke-all --json` prints.
#[derive(Debug, Serialize)]
struct RevokedAll {
    network: String,
    chain_id: u64,
    account: Address,
    transaction: B256,
    block: Option<u64>,
    /// The account's new revocation salt, drawn by this transaction ("0x" and 16 hex digits).
    salt: Option<String>,
    /// The sessions recorded in this home that could still act (active or not started) and
    /// were ended now. Sessions granted from elsewhere end too; they are not listed.
    ended: Vec<Ended>,
}

/// A recorded session ended by `revoke-all`.
#[derive(Debug, Serialize)]
struct Ended {
    id: u32,
    key: Address,
    key_name: String,
    /// `active` or `not-started`.
    status_before: &'static str,
}

pub(crate) async fn revoke_all(ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let owner = ctx.owner().await?;
    let now = chain.time().await?;
    let contract = SakAccount::new(account.address, &chain.provider);
    let mut ended = Vec::new();
    for r in recorded(ctx, &account, chain.chain_id)? {
        let view = contract.getSession(r.id).call().await.wrap_err("getSession")?;
        let status = status_of(&view, now);
        if matches!(status, "active" | "not-started") {
            ended.push(Ended { id: r.id, key: r.key, key_name: r.key_name, status_before: status });
        }
    }
    output::progress(&ctx.global, "the owner signs revokeAllSessions…");
    let receipt = send_revoke_all(ctx, &chain, account.address, &owner).await?;
    let salt = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<SakAccount::AllSessionsRevoked>().ok())
        .map(|l| format!("{:#018x}", l.inner.data.salt));
    let out = RevokedAll {
        network: ctx.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        transaction: receipt.transaction_hash,
        block: receipt.block_number,
        salt,
        ended,
    };
    output::emit(&ctx.global, &out, || {
        let mut s = format!(
            "revoked every session of {} (tx {}): no session key can sign for it any more\n",
            out.account, out.transaction
        );
        if out.ended.is_empty() {
            s += "no session recorded in this home was still live";
        } else {
            s += "ended:\n";
            for e in &out.ended {
                s += &format!("  #{:<4} {:<16} {} (was {})\n", e.id, e.key_name, e.key, e.status_before);
            }
        }
        s
    })
}

/// The sessions recorded in this home for `account` on this chain.
fn recorded(ctx: &Ctx, account: &AccountRecord, chain_id: u64) -> eyre::Result<Vec<SessionRecord>> {
    let state = ctx.state()?;
    Ok(state
        .networks
        .get(&ctx.network_name)
        .map(|n| {
            n.sessions
                .iter()
                .filter(|r| r.account == account.address && r.chain_id == chain_id)
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// rotate
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::rotate::rotated_name;

    #[test]
    fn rotated_keys_count_up_from_r2() {
        let taken = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(rotated_name("bot", &taken(&["bot"])), "bot-r2");
        assert_eq!(rotated_name("bot", &taken(&["bot", "bot-r2"])), "bot-r3");
        assert_eq!(rotated_name("bot-r2", &taken(&["bot", "bot-r2"])), "bot-r3");
        assert_eq!(rotated_name("price-r-bot", &taken(&[])), "price-r-bot-r2");
        assert_eq!(rotated_name("bot-r", &taken(&[])), "bot-r-r2");
    }
}
