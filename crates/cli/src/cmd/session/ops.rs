//! `sak session show|revoke|revoke-all|rotate`: one session's state and allowances, and the
//! owner's ways to end or replace sessions.
//!
//! The chain is the source of truth: a session's policy is read back from its
//! `SessionGranted` event, its state from `getSession`/`getSpend`/`getUsage`. A revoked
//! session's record is deleted on-chain (and unreachable after `revokeAllSessions`), so
//! "revoked" is told apart from "never granted" by the grant event.

use super::{IdArgs, RotateArgs};
use crate::{
    ctx::{Chain, Ctx},
    output,
};
pub(crate) use sak::sessions::{Detail, chain_status};
use sak::words::{describe_policy, fee_caps_line};
use sak_primitives::units::{format_amount as show_amount, format_period as show_period, format_time};

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

pub(crate) async fn revoke(args: IdArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let out = sak::owner::revoke(ctx, &chain, args.id).await?;
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

pub(crate) async fn revoke_all(ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let out = sak::owner::revoke_all(ctx, &chain).await?;
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

/// `sak session rotate`: a new key for the same session, its counters kept.
pub(crate) async fn rotate(args: RotateArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let out = sak::owner::rotate(ctx, &chain, args.id, args.key.as_deref()).await?;
    output::emit(&ctx.global, &out, || {
        format!(
            "session #{} now signs with `{}` ({}){}; the old key {} no longer validates\n{}\
             note: same session, same counters: what the old key spent this period counts\n\
             next: hand the agent the new key (`sak key export {} --out FILE`)",
            out.id,
            out.key_name,
            out.key,
            if out.key_created { ", a new key" } else { "" },
            out.old_key,
            describe_policy(&out.policy, &chain, sak_primitives::units::unix_now()),
            out.key_name
        )
    })
}
