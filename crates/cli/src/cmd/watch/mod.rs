//! `sak watch`: a long-running monitor of this home's account ([`sak::watch`]). Each round reads the blocks
//! since the last round (behind the network's confirmation depth) and this home's ledger, and
//! raises alerts: spend near a cap, refusals, reverted operations, an unknown relayer, an
//! allowance or delegation change, sessions granted or revoked, and rotation, staleness and
//! expiry due. Alerts go to stdout (JSON lines under `--json`) and to a webhook; `--freeze-on`
//! revokes the session an alert names at once.
//!
//! The cursor (next block, alerts already raised, alerts the webhook has not taken yet) is
//! written after every round, so a restart resumes where the last round ended: no event is
//! missed, and an alert is delivered at least once. An RPC outage backs off and resumes.

mod metrics;

use crate::global::parse_span;
use crate::{
    ctx::Ctx,
    output::{self, Hinted},
};
use alloy::primitives::Address;
use clap::Args;
use eyre::WrapErr;
use sak::watch::{Alert, Kind, Rules, Watcher};
use std::{sync::Arc, time::Duration};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak watch\n  sak watch --json --webhook https://hooks.example/sak\n  \
                  sak watch --freeze-on near_cap --freeze-on unknown_relayer --relayer 0xBundler\n  \
                  sak watch --once   # one round up to the head, then exit (cron)\n\n\
                  Each alert (a JSON line under --json, and the webhook's POST body) is {kind, at, time, \
                  block, tx, account, session, detail, data}.")]
pub(crate) struct WatchArgs {
    /// How often to look for new blocks (`2s`, `500ms`).
    #[arg(long, default_value = "2s")]
    interval: String,
    /// On the first run, start at this block [default: the head]; later runs resume.
    #[arg(long, value_name = "N")]
    from_block: Option<u64>,
    /// Alert when a session has spent this percentage of a cap in the current period.
    #[arg(long, value_name = "PERCENT", default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    near_cap: u8,
    /// POST every alert as JSON to this URL (retried with backoff; what it does not take is
    /// kept and sent again next round).
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Revoke the session an alert of this kind names, at once, with the owner key
    /// (repeatable).
    #[arg(long, value_name = "KIND")]
    freeze_on: Vec<Kind>,
    /// A relayer or bundler expected to submit the account's session operations (repeatable);
    /// given, any other raises `unknown_relayer`.
    #[arg(long, value_name = "ADDR")]
    relayer: Vec<Address>,
    /// Raise `refusal_rate` when a session is refused this many times within this span
    /// (`COUNT/DURATION`).
    #[arg(long, value_name = "COUNT/DURATION", default_value = "5/10m")]
    refusal_rate: String,
    /// Raise `stale` for a session key with no signing decision for this long.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    stale: String,
    /// Raise `rotation_due` for a session key held this long.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    rotate_after: String,
    /// Raise `expiring` for a live session that ends within this.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    expiring: String,
    /// Serve the watch's counters for Prometheus at http://ADDR/metrics (rounds, failed rounds,
    /// the cursor's block, undelivered alerts, alerts by kind).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// One round up to the chain's head, then exit.
    #[arg(long)]
    once: bool,
}

pub(crate) async fn run(args: WatchArgs, ctx: &Ctx) -> eyre::Result<()> {
    let interval = match args.interval.strip_suffix("ms").and_then(|n| n.trim().parse().ok()) {
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_secs(parse_span("--interval", &args.interval)?),
    }
    .max(Duration::from_millis(100));
    let mut rules = Rules::default();
    rules.near_cap = args.near_cap;
    rules.relayers.clone_from(&args.relayer);
    rules.refusal_rate = parse_rate(&args.refusal_rate)?;
    rules.stale = parse_span("--stale", &args.stale)?;
    rules.rotate_after = parse_span("--rotate-after", &args.rotate_after)?;
    rules.expiring = parse_span("--expiring", &args.expiring)?;
    if let Some(url) = &args.webhook {
        url.parse::<alloy::transports::http::reqwest::Url>().map_err(|e| {
            Hinted::new(format!("--webhook {url:?} is not a URL: {e}"), "write http(s)://host[:port]/path")
        })?;
    }
    if !args.freeze_on.is_empty() {
        ctx.owner().await.wrap_err("--freeze-on revokes with the owner key")?;
    }
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let mut w = Watcher::open(ctx, chain, account, rules, args.from_block).await?;
    output::progress(
        &ctx.global,
        &format!(
            "watching {} ({} account) on {} from block {}, {} confirmation(s) deep{}{}",
            w.account().address,
            w.account().kind.as_str(),
            ctx.network_name,
            w.next_block(),
            ctx.network.depth(),
            args.webhook
                .as_deref()
                .map(|u| format!("; webhook {}", crate::config::redact_url(u)))
                .unwrap_or_default(),
            if args.relayer.is_empty() { "; no --relayer given: relayers are not checked" } else { "" }
        ),
    );
    let metrics = Arc::new(metrics::Metrics::default());
    if let Some(addr) = args.metrics {
        let bound = metrics::serve(addr, Arc::clone(&metrics)).await?;
        output::progress(&ctx.global, &format!("metrics at http://{bound}/metrics"));
    }
    let mut backoff = Duration::from_secs(1);
    loop {
        let caught_up = match w.round().await {
            Ok((alerts, caught_up)) => {
                backoff = Duration::from_secs(1);
                let kinds = deliver(ctx, &args, &mut w, alerts).await?;
                metrics.round(kinds.into_iter(), w.next_block(), w.undelivered());
                caught_up
            }
            Err(e) if args.once => return Err(e.into()),
            Err(e) => {
                metrics.failed_round();
                // An outage: nothing was advanced; the next round reads the same blocks.
                output::warn(&format!("round failed, again in {} s: {e:#}", backoff.as_secs()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        if args.once && caught_up {
            return Ok(());
        }
        if caught_up {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

/// Freezes what `--freeze-on` names, prints the alerts, posts them to the webhook, then writes
/// the cursor. Returns the kinds of the alerts raised (`frozen` ones included).
async fn deliver(
    ctx: &Ctx,
    args: &WatchArgs,
    w: &mut Watcher<'_>,
    mut alerts: Vec<Alert>,
) -> eyre::Result<Vec<String>> {
    let mut frozen = Vec::new();
    for a in &alerts {
        if let Some(id) = a.session.filter(|_| args.freeze_on.contains(&a.kind)) {
            let key = format!("frozen:{id}");
            if w.raised(&key) {
                continue;
            }
            let owner = ctx.owner().await?;
            let wallet = ctx.owner_provider(w.chain(), &owner)?;
            match sak::owner::send_revoke(ctx, &wallet, w.account().address, id).await {
                Ok(receipt) => {
                    w.mark_raised(key);
                    let mut f = w.alert(
                        Kind::Frozen,
                        a.at,
                        Some(id),
                        format!("session #{id} revoked on a {} alert", a.kind.name()),
                        serde_json::json!({ "on": a.kind }),
                    );
                    (f.block, f.tx) = (receipt.block_number, Some(receipt.transaction_hash));
                    frozen.push(f);
                }
                Err(e) => output::warn(&format!("--freeze-on could not revoke session #{id}: {e:#}")),
            }
        }
    }
    alerts.extend(frozen);
    let kinds = alerts.iter().map(|a| a.kind.name()).collect();
    for a in &alerts {
        if ctx.global.json {
            output::data(&serde_json::to_string(a)?)?;
        } else {
            output::data(&format!("{}  {:<18} {}", a.time, a.kind.name(), a.detail))?;
        }
    }
    if let Some(url) = &args.webhook {
        let left = w.post(url, alerts).await;
        if left > 0 {
            output::warn(&format!(
                "the webhook did not take {left} alert(s); they are kept and sent again next round"
            ));
        }
    }
    w.save()?;
    Ok(kinds)
}

/// `--refusal-rate COUNT/DURATION`.
fn parse_rate(text: &str) -> eyre::Result<(u32, u64)> {
    let parsed = text.split_once('/').and_then(|(n, span)| {
        let n = n.trim().parse::<u32>().ok().filter(|n| *n > 0)?;
        Some((n, parse_span("--refusal-rate", span.trim()).ok().filter(|s| *s > 0)?))
    });
    parsed.ok_or_else(|| {
        Hinted::new(
            format!("--refusal-rate {text:?} is not COUNT/DURATION"),
            "write a count of refusals and a span: --refusal-rate 5/10m",
        )
        .into()
    })
}
