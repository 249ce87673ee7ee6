//! `sak watch`: a long-running monitor of this home's account. Each round reads the blocks
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
mod round;

use super::audit::parse_span;
use crate::{
    ctx::{Chain, Ctx},
    output::{self, Hinted},
    store::{AccountRecord, write_atomic},
};
use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use clap::{Args, ValueEnum};
use eyre::WrapErr;
use sak_primitives::{Policy, units::format_time};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

/// What an alert is about. Names are part of the `--json` and webhook interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// A session has spent `--near-cap` percent or more of a cap this period.
    NearCap,
    /// The signer refused an operation (this home's ledger).
    Refusal,
    /// A session was refused `--refusal-rate` times within its window: an agent probing its
    /// limits, or one that is broken.
    RefusalRate,
    /// A session operation was included but its calls reverted.
    OpReverted,
    /// A session operation submitted by a relayer or bundler not given with `--relayer`.
    UnknownRelayer,
    /// The account gave or changed an allowance (a token's own, or Permit2's).
    AllowanceChanged,
    /// The delegated EOA's code changed (EIP-7702 delegation).
    DelegationChanged,
    /// A session was granted.
    SessionGranted,
    /// A session, or all, was revoked.
    SessionRevoked,
    /// A session's key was rotated.
    KeyRotated,
    /// A session key held for `--rotate-after`.
    RotationDue,
    /// A session key unused for `--stale`.
    Stale,
    /// A live session ends within `--expiring`.
    Expiring,
    /// `--freeze-on` revoked a session.
    Frozen,
}

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

/// One alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Alert {
    kind: Kind,
    /// When it was raised (unix seconds, chain time) and as UTC.
    at: u64,
    time: String,
    /// The block and transaction of the event, when it comes from one.
    block: Option<u64>,
    tx: Option<B256>,
    account: Address,
    session: Option<u32>,
    /// In words.
    detail: String,
    /// The facts behind it (kind-specific).
    data: serde_json::Value,
}

/// What survives between rounds and runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    chain_id: u64,
    account: Address,
    /// The first block not read yet.
    next_block: u64,
    /// Ledger decisions read so far (the log is append-only).
    decisions_seen: usize,
    /// The account's code hash at the last round (delegated EOAs).
    code_hash: Option<B256>,
    /// Keys of the state alerts raised already (near cap in a period, expiring, due...).
    raised: BTreeSet<String>,
    /// Alerts the webhook has not taken yet, oldest first.
    undelivered: Vec<Alert>,
}

struct Watcher<'a> {
    ctx: &'a Ctx,
    chain: Chain,
    account: AccountRecord,
    args: WatchArgs,
    cursor: Cursor,
    path: PathBuf,
    /// Sessions' granted policies, read once.
    policies: BTreeMap<u32, Option<Policy>>,
    /// The decision log as far as read (None until the first round).
    history: Option<round::History>,
    spans: Spans,
    http: alloy::transports::http::reqwest::Client,
}

struct Spans {
    /// `--refusal-rate`: (count, window in seconds).
    refusal_rate: (u32, u64),
    stale: u64,
    rotate_after: u64,
    expiring: u64,
    interval: Duration,
}

pub(crate) async fn run(args: WatchArgs, ctx: &Ctx) -> eyre::Result<()> {
    let interval = match args.interval.strip_suffix("ms").and_then(|n| n.trim().parse().ok()) {
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_secs(parse_span("--interval", &args.interval)?),
    };
    let spans = Spans {
        refusal_rate: parse_rate(&args.refusal_rate)?,
        stale: parse_span("--stale", &args.stale)?,
        rotate_after: parse_span("--rotate-after", &args.rotate_after)?,
        expiring: parse_span("--expiring", &args.expiring)?,
        interval: interval.max(Duration::from_millis(100)),
    };
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
    let path =
        ctx.paths.data_dir.join("watch").join(format!("{}-{}.json", ctx.network_name, account.address));
    let cursor = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Cursor>(&bytes)
            .ok()
            .filter(|c| c.chain_id == chain.chain_id && c.account == account.address)
            .ok_or_else(|| {
                Hinted::new(
                    format!("the watch cursor {} is unreadable or of another chain", path.display()),
                    "delete it to start again from --from-block (alerts already raised may be raised again)",
                )
            })?,
        Err(_) => {
            let head = chain.provider.get_block_number().await.wrap_err("eth_blockNumber")?;
            Cursor {
                chain_id: chain.chain_id,
                account: account.address,
                next_block: args.from_block.unwrap_or(head + 1),
                ..Cursor::default()
            }
        }
    };
    output::progress(
        &ctx.global,
        &format!(
            "watching {} ({} account) on {} from block {}, {} confirmation(s) deep{}{}",
            account.address,
            account.kind.as_str(),
            ctx.network_name,
            cursor.next_block,
            ctx.network.depth(),
            args.webhook
                .as_deref()
                .map(|u| format!("; webhook {}", crate::config::redact_url(u)))
                .unwrap_or_default(),
            if args.relayer.is_empty() { "; no --relayer given: relayers are not checked" } else { "" }
        ),
    );
    let http = alloy::transports::http::reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let mut w = Watcher {
        ctx,
        chain,
        account,
        args,
        cursor,
        path,
        policies: BTreeMap::new(),
        history: None,
        spans,
        http,
    };
    let metrics = Arc::new(metrics::Metrics::default());
    if let Some(addr) = w.args.metrics {
        let bound = metrics::serve(addr, Arc::clone(&metrics)).await?;
        output::progress(&ctx.global, &format!("metrics at http://{bound}/metrics"));
    }
    let mut backoff = Duration::from_secs(1);
    loop {
        let caught_up = match w.round().await {
            Ok((alerts, caught_up)) => {
                backoff = Duration::from_secs(1);
                let kinds = w.deliver(alerts).await?;
                metrics.round(kinds.into_iter(), w.cursor.next_block, w.cursor.undelivered.len());
                caught_up
            }
            Err(e) if w.args.once => return Err(e),
            Err(e) => {
                metrics.failed_round();
                // An outage: nothing was advanced; the next round reads the same blocks.
                output::warn(&format!("round failed, again in {} s: {e:#}", backoff.as_secs()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        if w.args.once && caught_up {
            return Ok(());
        }
        if caught_up {
            tokio::select! {
                () = tokio::time::sleep(w.spans.interval) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

impl Watcher<'_> {
    fn alert(
        &self,
        kind: Kind,
        now: u64,
        session: Option<u32>,
        detail: String,
        data: serde_json::Value,
    ) -> Alert {
        Alert {
            kind,
            at: now,
            time: format_time(now),
            block: None,
            tx: None,
            account: self.account.address,
            session,
            detail,
            data,
        }
    }

    /// Prints the alerts, freezes what `--freeze-on` names, posts to the webhook, then writes
    /// the cursor. Returns the kinds of the alerts raised (`frozen` ones included).
    async fn deliver(&mut self, mut alerts: Vec<Alert>) -> eyre::Result<Vec<String>> {
        let mut frozen = Vec::new();
        for a in &alerts {
            if let Some(id) = a.session.filter(|_| self.args.freeze_on.contains(&a.kind)) {
                let key = format!("frozen:{id}");
                if self.cursor.raised.contains(&key) {
                    continue;
                }
                let owner = self.ctx.owner().await?;
                let wallet = self.ctx.owner_provider(&self.chain, &owner)?;
                match crate::cmd::session_ops::send_revoke(self.ctx, &wallet, self.account.address, id).await
                {
                    Ok(receipt) => {
                        self.cursor.raised.insert(key);
                        let mut f = self.alert(
                            Kind::Frozen,
                            a.at,
                            Some(id),
                            format!("session #{id} revoked on a {} alert", kind_name(a.kind)),
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
        let kinds = alerts.iter().map(|a| kind_name(a.kind)).collect();
        for a in &alerts {
            if self.ctx.global.json {
                output::data(&serde_json::to_string(a)?)?;
            } else {
                output::data(&format!("{}  {:<18} {}", a.time, kind_name(a.kind), a.detail))?;
            }
        }
        if let Some(url) = self.args.webhook.clone() {
            self.cursor.undelivered.extend(alerts);
            while let Some(a) = self.cursor.undelivered.first() {
                if !self.post(&url, a).await {
                    output::warn(&format!(
                        "the webhook did not take {} alert(s); they are kept and sent again next round",
                        self.cursor.undelivered.len()
                    ));
                    break;
                }
                self.cursor.undelivered.remove(0);
            }
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(&self.path, &serde_json::to_vec_pretty(&self.cursor)?, 0o600)?;
        Ok(kinds)
    }

    /// POSTs one alert, with up to 4 attempts (0.25, 0.5, 1 s apart); true once a 2xx answers.
    async fn post(&self, url: &str, alert: &Alert) -> bool {
        let mut wait = Duration::from_millis(250);
        for attempt in 0..4 {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            match self.http.post(url).json(alert).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => tracing::info!("webhook answered {}", r.status()),
                Err(e) => tracing::info!("webhook: {e}"),
            }
        }
        false
    }
}

fn kind_name(kind: Kind) -> String {
    kind.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
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
