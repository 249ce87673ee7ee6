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
use alloy::primitives::{Address, B256};
use eyre::{OptionExt, WrapErr};
pub(crate) use sak::owner::{mined, send_revoke, send_revoke_all};
pub(crate) use sak::sessions::{Detail, OnChain, chain_status, find, status_of};
use sak::words::{describe_policy, fee_caps_line};
use sak_contracts::SakAccount;
use sak_primitives::units::{format_amount as show_amount, format_period as show_period};
use sak_primitives::{Policy, units::format_time};
use sak_signer::keystore::{self, LocalKey};
use serde::Serialize;

mod rotate;

pub(crate) use rotate::rotate;

// ---------------------------------------------------------------------------------------------
// show
// ---------------------------------------------------------------------------------------------

pub(crate) async fn show(args: IdArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let out = sak::sessions::detail(ctx, &chain, args.id).await?;
    output::emit(&ctx.global, &out, || human_show(&out, &chain))
}

fn human_show(out: &Detail, chain: &Chain) -> String {
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
