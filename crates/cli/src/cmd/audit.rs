//! `sak audit`: the facade's audit ([`sak::audit`]) of the ledger, the keys and (with
//! `--chain`) the account's session operations on chain, printed.

use crate::{
    ctx::Ctx,
    global::parse_span,
    output::{self, AlreadyReported, Hinted},
};
use alloy::primitives::B256;
use clap::Args;
use sak::audit::{self, Audit, ChainAudit};
use sak_primitives::units::{format_time, parse_duration, parse_time, unix_now};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak audit\n  sak audit --since 24h\n  \
                  sak audit --since 2026-11-01T00:00:00Z --json\n  sak audit --stale 30d --rotate-after 90d\n  sak audit --check   # exits 2 when anything is flagged (cron)\n  \
                  sak audit --chain   # also the account's session operations on chain, signed here or elsewhere\n\n\
                  --json prints {ledger, ledger_exists, now, since, decisions: [{at, time, chain_id, account, \
                  session, key, key_name, allowed, reason, spends, user_op_hash, tx_hash, outcome}], \
                  keys: [...], flags: [{kind: stale|rotate, key, key_name, session, network, detail, fix}], \
                  chain: null | {account, chain_id, from_block, to_block, elsewhere, ops: [{session, path: \
                  user-op|direct, block, at, time, tx_hash, user_op_hash, nonce, success, gas_cost_wei, \
                  origin: here|elsewhere}]}}.")]
pub(crate) struct AuditArgs {
    /// Only decisions at or after this time (RFC 3339, unix seconds, or a duration ago: 24h).
    #[arg(long, value_name = "TIME|DURATION")]
    pub(crate) since: Option<String>,
    /// Flag keys with no signing decision for this long.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub(crate) stale: String,
    /// Flag keys older than this (due for `sak session rotate`).
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub(crate) rotate_after: String,
    /// Exit 2 when anything is flagged (the report is printed all the same): for cron.
    #[arg(long)]
    pub(crate) check: bool,
    /// Also list the account's session operations found on chain (user operations and direct
    /// calls), each marked signed here (in this home's ledger) or elsewhere.
    #[arg(long)]
    pub(crate) chain: bool,
    /// Where `--chain` starts scanning [default: the earliest grant recorded here, else block 0].
    #[arg(long, value_name = "N", requires = "chain")]
    pub(crate) from_block: Option<u64>,
}

fn parse_since(text: &str, now: u64) -> eyre::Result<u64> {
    let t = text.trim();
    let parsed = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse().ok()
    } else if let Some(ago) = parse_duration(t) {
        Some(now.saturating_sub(ago))
    } else {
        parse_time(t)
    };
    parsed.ok_or_else(|| {
        Hinted::new(
            format!("--since {text:?} is neither a time nor a duration"),
            "use RFC 3339 (2026-11-01T00:00:00Z), unix seconds (1793491200) or a duration ago (24h, 7d)",
        )
        .into()
    })
}

pub(crate) async fn run(args: AuditArgs, ctx: &Ctx) -> eyre::Result<()> {
    let mut options = audit::Options::new(unix_now());
    options.since = args.since.as_deref().map(|s| parse_since(s, options.now)).transpose()?;
    options.stale_after = parse_span("--stale", &args.stale)?;
    options.rotate_after = parse_span("--rotate-after", &args.rotate_after)?;
    options.from_block = args.from_block;
    let chain = if args.chain { Some(ctx.chain().await?) } else { None };
    let out = audit::audit(ctx, &options, chain.as_ref()).await?;
    output::emit(&ctx.global, &out, || human(&out))?;
    if args.check && !out.flags.is_empty() {
        let n = out.flags.len();
        return Err(AlreadyReported {
            message: format!("{n} flag{} raised", if n == 1 { "" } else { "s" }),
            hint: "apply each flag's `fix:` above, then run `sak audit --check` again",
            code: 2,
        }
        .into());
    }
    Ok(())
}

fn short(h: B256) -> String {
    let s = h.to_string();
    format!("{}…", &s[..10])
}

fn human(out: &Audit) -> String {
    let mut s = if out.ledger_exists {
        format!(
            "{} decision{} in {}{} ({} allowed, {} refused)\n",
            out.decisions.len(),
            if out.decisions.len() == 1 { "" } else { "s" },
            out.ledger,
            out.since.map(|t| format!(" since {}", format_time(t))).unwrap_or_default(),
            out.allowed,
            out.refused
        )
    } else {
        format!("no ledger yet at {}: nothing has been signed from this home\n", out.ledger)
    };
    if !out.decisions.is_empty() {
        s += &format!(
            "\n{:<23}  {:>4}  {:<12} {:<26} {:<22} {}\n",
            "time (UTC)", "sess", "key", "decision", "spends", "operation"
        );
        for d in &out.decisions {
            let key = d.key_name.clone().unwrap_or_else(|| d.key.to_string()[..10].to_owned());
            let decision = if d.allowed { "allowed".to_owned() } else { format!("refused {}", d.reason) };
            let spends = if d.spends.is_empty() {
                "-".to_owned()
            } else {
                d.spends
                    .iter()
                    .map(|x| format!("{} {}", x.amount, x.token_name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let op = match (d.user_op_hash, d.tx_hash) {
                (Some(op), Some(tx)) => format!("op {} tx {}", short(op), short(tx)),
                (Some(op), None) => format!("op {}", short(op)),
                _ => "-".to_owned(),
            };
            let outcome = d.outcome.as_deref().map(|o| format!(" {o}")).unwrap_or_default();
            s += &format!(
                "{:<23}  {:>4}  {key:<12} {decision:<26} {spends:<22} {op}{outcome}\n",
                d.time,
                format!("#{}", d.session)
            );
        }
    }
    if out.flags.is_empty() {
        s += &format!(
            "\nno flags: {} key{} checked\n",
            out.keys.len(),
            if out.keys.len() == 1 { "" } else { "s" }
        );
    } else {
        s += "\nflags\n";
        for f in &out.flags {
            s += &format!("  {:<7} {}\n          fix: {}\n", f.kind, f.detail, f.fix);
        }
    }
    if let Some(c) = &out.chain {
        s += &chain_human(c);
    }
    s
}

/// The `--chain` part of the human report.
fn chain_human(c: &ChainAudit) -> String {
    let mut s = format!(
        "\non chain: {} session operation{} of account {} in blocks {}..={}{}\n",
        c.ops.len(),
        if c.ops.len() == 1 { "" } else { "s" },
        c.account,
        c.from_block,
        c.to_block,
        match c.elsewhere {
            0 => String::new(),
            n => format!(", {n} signed elsewhere (not in this home's ledger)"),
        }
    );
    if c.ops.is_empty() {
        return s;
    }
    s += &format!(
        "{:<23}  {:>4}  {:<8} {:<9} {:<7} {}\n",
        "time (UTC)", "sess", "path", "origin", "result", "operation"
    );
    for op in &c.ops {
        let id = op.user_op_hash.map_or_else(|| format!("tx {}", op.tx_hash), |h| format!("op {h}"));
        s += &format!(
            "{:<23}  {:>4}  {:<8} {:<9} {:<7} {id}\n",
            op.time,
            format!("#{}", op.session),
            op.path,
            op.origin,
            if op.success { "ok" } else { "reverted" }
        );
    }
    s
}
