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

use crate::{
    ctx::{Chain, Ctx},
    output::{self, Hinted},
    scan,
    store::{AccountKind, AccountRecord, write_atomic},
};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use clap::{Args, ValueEnum};
use eyre::WrapErr;
use sak_contracts::{IEntryPoint, MockERC20, MockPermit2, SakAccount};
use sak_primitives::{
    PERMIT2, Policy,
    units::{format_time, parse_duration},
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
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
    /// Raise `stale` for a session key with no signing decision for this long.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    stale: String,
    /// Raise `rotation_due` for a session key held this long.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    rotate_after: String,
    /// Raise `expiring` for a live session that ends within this.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    expiring: String,
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
    spans: Spans,
    http: alloy::transports::http::reqwest::Client,
}

struct Spans {
    stale: u64,
    rotate_after: u64,
    expiring: u64,
    interval: Duration,
}

fn span(flag: &str, text: &str) -> eyre::Result<u64> {
    parse_duration(text).ok_or_else(|| {
        Hinted::new(
            format!("{flag} {text:?} is not a duration"),
            format!("write a number with s, m, h, d or w: {flag} 30d"),
        )
        .into()
    })
}

pub(crate) async fn run(args: WatchArgs, ctx: &Ctx) -> eyre::Result<()> {
    let interval = match args.interval.strip_suffix("ms").and_then(|n| n.trim().parse().ok()) {
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_secs(span("--interval", &args.interval)?),
    };
    let spans = Spans {
        stale: span("--stale", &args.stale)?,
        rotate_after: span("--rotate-after", &args.rotate_after)?,
        expiring: span("--expiring", &args.expiring)?,
        interval: interval.max(Duration::from_millis(100)),
    };
    if let Some(url) = &args.webhook {
        url.parse::<alloy::transports::http::reqwest::Url>().map_err(|e| {
            Hinted::new(format!("--webhook {url:?} is not a URL: {e}"), "write http(s)://host[:port]/path")
        })?;
    }
    if !args.freeze_on.is_empty() {
        ctx.owner_key().wrap_err("--freeze-on revokes with the owner key")?;
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
    let mut w = Watcher { ctx, chain, account, args, cursor, path, policies: BTreeMap::new(), spans, http };
    let mut backoff = Duration::from_secs(1);
    loop {
        let caught_up = match w.round().await {
            Ok((alerts, caught_up)) => {
                backoff = Duration::from_secs(1);
                w.deliver(alerts).await?;
                caught_up
            }
            Err(e) if w.args.once => return Err(e),
            Err(e) => {
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

/// Blocks read per round at most.
const ROUND_BLOCKS: u64 = 5 * scan::CHUNK;

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

    /// Reads what happened since the last round; returns its alerts and whether it reached the
    /// head. Advances the cursor in memory only (persisted by [`Self::deliver`]).
    async fn round(&mut self) -> eyre::Result<(Vec<Alert>, bool)> {
        let p = self.chain.provider.clone();
        let latest = p.get_block_number().await.wrap_err("eth_blockNumber")?;
        let now = p
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .wrap_err("reading the latest block")?
            .map_or(0, |b| b.header.timestamp);
        // A block with `depth` confirmations: 1 is the head itself.
        let head = latest.saturating_sub(self.ctx.network.depth() - 1);
        let mut alerts = Vec::new();
        let mut touched = BTreeSet::new();
        let from = self.cursor.next_block;
        let to = head.min(from.saturating_add(ROUND_BLOCKS - 1));
        if from <= to {
            self.events((from, to), now, &mut alerts, &mut touched).await?;
        }
        for id in touched {
            self.near_cap(id, now, &mut alerts).await?;
        }
        let has_code = self.delegation(now, &mut alerts).await?;
        let decisions_seen = self.refusals(now, &mut alerts)?;
        if has_code {
            // Without code (undelegated, not deployed) no session can act: nothing falls due.
            self.due(now, &mut alerts).await?;
        }
        if from <= to {
            self.cursor.next_block = to + 1;
        }
        self.cursor.decisions_seen = decisions_seen;
        Ok((alerts, to >= head))
    }

    async fn events(
        &mut self,
        range: (u64, u64),
        now: u64,
        alerts: &mut Vec<Alert>,
        touched: &mut BTreeSet<u32>,
    ) -> eyre::Result<()> {
        let (g, p, a) = (&self.ctx.global, &self.chain.provider, self.account.address);
        let account_events = Filter::new().address(a).event_signature(vec![
            SakAccount::SessionGranted::SIGNATURE_HASH,
            SakAccount::SessionRevoked::SIGNATURE_HASH,
            SakAccount::AllSessionsRevoked::SIGNATURE_HASH,
            SakAccount::SessionKeyRotated::SIGNATURE_HASH,
            SakAccount::SessionExecuted::SIGNATURE_HASH,
        ]);
        let user_ops = Filter::new()
            .address(self.chain.contracts.entry_point)
            .event_signature(IEntryPoint::UserOperationEvent::SIGNATURE_HASH)
            .topic2(a.into_word());
        let approvals = Filter::new()
            .event_signature(vec![MockERC20::Approval::SIGNATURE_HASH, MockPermit2::Approval::SIGNATURE_HASH])
            .topic1(a.into_word());
        let mut logs = scan::logs(g, p, &account_events, range, "the account's events").await?;
        logs.extend(scan::logs(g, p, &user_ops, range, "the account's user operations").await?);
        logs.extend(scan::logs(g, p, &approvals, range, "the account's approvals").await?);
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        for log in logs {
            let (block, tx) = scan::placed(&log)?;
            let mut raised = |this: &Self, kind, session, detail: String, data| {
                let mut alert = this.alert(kind, log.block_timestamp.unwrap_or(now), session, detail, data);
                (alert.block, alert.tx) = (Some(block), Some(tx));
                alerts.push(alert);
            };
            let topic0 = log.topic0().copied().unwrap_or_default();
            if topic0 == SakAccount::SessionGranted::SIGNATURE_HASH {
                let e = log.log_decode::<SakAccount::SessionGranted>()?.inner.data;
                raised(
                    self,
                    Kind::SessionGranted,
                    Some(e.id),
                    format!("session #{} granted to {}", e.id, e.signer),
                    serde_json::json!({ "signer": e.signer }),
                );
            } else if topic0 == SakAccount::SessionRevoked::SIGNATURE_HASH {
                let e = log.log_decode::<SakAccount::SessionRevoked>()?.inner.data;
                raised(
                    self,
                    Kind::SessionRevoked,
                    Some(e.id),
                    format!("session #{} revoked", e.id),
                    serde_json::json!({}),
                );
            } else if topic0 == SakAccount::AllSessionsRevoked::SIGNATURE_HASH {
                raised(
                    self,
                    Kind::SessionRevoked,
                    None,
                    "every session revoked (revokeAllSessions)".into(),
                    serde_json::json!({}),
                );
            } else if topic0 == SakAccount::SessionKeyRotated::SIGNATURE_HASH {
                let e = log.log_decode::<SakAccount::SessionKeyRotated>()?.inner.data;
                raised(
                    self,
                    Kind::KeyRotated,
                    Some(e.id),
                    format!("session #{} now signs with {}", e.id, e.signer),
                    serde_json::json!({ "signer": e.signer }),
                );
            } else if topic0 == SakAccount::SessionExecuted::SIGNATURE_HASH {
                let id = log.log_decode::<SakAccount::SessionExecuted>()?.inner.data.id;
                touched.insert(id);
                self.check_relayer(tx, id, &mut raised).await?;
            } else if topic0 == IEntryPoint::UserOperationEvent::SIGNATURE_HASH {
                let e = log.log_decode::<IEntryPoint::UserOperationEvent>()?.inner.data;
                let Some(id) = sak_userop::session_of_nonce(e.nonce) else { continue };
                touched.insert(id);
                if !e.success {
                    raised(
                        self,
                        Kind::OpReverted,
                        Some(id),
                        format!(
                            "an operation of session #{id} was included but its calls reverted (gas paid, nothing else moved)"
                        ),
                        serde_json::json!({ "user_op_hash": e.userOpHash }),
                    );
                }
                self.check_relayer(tx, id, &mut raised).await?;
            } else if topic0 == MockERC20::Approval::SIGNATURE_HASH && log.topics().len() == 3 {
                let spender = Address::from_word(log.topics()[2]);
                let amount = U256::from_be_slice(log.data().data.get(..32).unwrap_or_default());
                let token = log.address();
                raised(
                    self,
                    Kind::AllowanceChanged,
                    None,
                    format!(
                        "the account set the allowance of {} to {} at {amount}",
                        self.chain.contracts.name(token),
                        self.chain.contracts.name(spender)
                    ),
                    serde_json::json!({ "kind": "erc20", "token": token, "spender": spender, "raw": amount }),
                );
            } else if topic0 == MockPermit2::Approval::SIGNATURE_HASH
                && log.address() == PERMIT2
                && log.topics().len() == 4
            {
                let (token, spender) =
                    (Address::from_word(log.topics()[2]), Address::from_word(log.topics()[3]));
                let e = log.log_decode::<MockPermit2::Approval>()?.inner.data;
                raised(
                    self,
                    Kind::AllowanceChanged,
                    None,
                    format!(
                        "the account set the Permit2 allowance of {} to {} at {}",
                        self.chain.contracts.name(token),
                        self.chain.contracts.name(spender),
                        e.amount
                    ),
                    serde_json::json!({ "kind": "permit2", "token": token, "spender": spender, "raw": U256::from(e.amount), "expiration": e.expiration.to::<u64>() }),
                );
            }
        }
        Ok(())
    }

    /// `unknown_relayer` when `--relayer` is given and transaction `tx`'s sender is not one.
    async fn check_relayer(
        &self,
        tx: B256,
        id: u32,
        raised: &mut impl FnMut(&Self, Kind, Option<u32>, String, serde_json::Value),
    ) -> eyre::Result<()> {
        if self.args.relayer.is_empty() {
            return Ok(());
        }
        let Some(t) =
            self.chain.provider.get_transaction_by_hash(tx).await.wrap_err("eth_getTransactionByHash")?
        else {
            return Ok(());
        };
        let from = t.inner.signer();
        if !self.args.relayer.contains(&from) {
            raised(
                self,
                Kind::UnknownRelayer,
                Some(id),
                format!("session #{id} was used through {from}, not a --relayer"),
                serde_json::json!({ "relayer": from }),
            );
        }
        Ok(())
    }

    /// `near_cap` once per session, token and period.
    async fn near_cap(&mut self, id: u32, now: u64, alerts: &mut Vec<Alert>) -> eyre::Result<()> {
        if !self.policies.contains_key(&id) {
            let on_chain =
                crate::cmd::session_ops::lookup(&self.chain, self.account.address, id, 0, now).await?;
            self.policies.insert(id, on_chain.map(|s| s.policy));
        }
        let Some(policy) = self.policies.get(&id).cloned().flatten() else { return Ok(()) };
        let contract = SakAccount::new(self.account.address, &self.chain.provider);
        for limit in &policy.spend_limits {
            let stored = contract.getSpend(id, limit.token).call().await.wrap_err("getSpend")?;
            let u = crate::cmd::session_ops::period_use(
                limit.allowance,
                U256::from(stored.spent),
                stored.window.to(),
                (policy.valid_after, policy.valid_until),
                u64::from(limit.period),
                now,
                true,
            );
            let key = format!("near_cap:{id}:{}:{}", limit.token, u.window);
            if limit.allowance.is_zero()
                || u.spent * U256::from(100) < limit.allowance * U256::from(self.args.near_cap)
                || self.cursor.raised.contains(&key)
            {
                continue;
            }
            self.cursor.raised.insert(key);
            let decimals = self.chain.contracts.decimals(limit.token);
            let name = self.chain.contracts.name(limit.token);
            let show = |v| crate::cmd::session::show_amount(v, decimals);
            let percent = u.spent * U256::from(100) / limit.allowance;
            alerts.push(self.alert(
                Kind::NearCap,
                now,
                Some(id),
                format!(
                    "session #{id} has spent {} of {} {name} this period ({percent}%){}",
                    show(u.spent),
                    show(limit.allowance),
                    u.renews_at.map(|t| format!("; it renews at {}", format_time(t))).unwrap_or_default()
                ),
                serde_json::json!({ "token": limit.token, "spent": u.spent, "cap": limit.allowance, "window": u.window, "renews_at": u.renews_at }),
            ));
        }
        Ok(())
    }

    /// `delegation_changed` when a delegated EOA's code differs from the last round's; returns
    /// whether the account has code.
    async fn delegation(&mut self, now: u64, alerts: &mut Vec<Alert>) -> eyre::Result<bool> {
        let code = self.chain.provider.get_code_at(self.account.address).await.wrap_err("eth_getCode")?;
        if self.account.kind != AccountKind::Eip7702 {
            return Ok(!code.is_empty());
        }
        let hash = keccak256(&code);
        if self.cursor.code_hash.is_some_and(|h| h != hash) {
            let detail = match code.get(..3) {
                Some([0xef, 0x01, 0x00]) if code.len() == 23 => {
                    format!("the EOA is now delegated to {}", Address::from_slice(&code[3..23]))
                }
                _ if code.is_empty() => "the EOA's delegation was cleared".to_owned(),
                _ => format!("the EOA's code changed ({} bytes)", code.len()),
            };
            alerts.push(self.alert(
                Kind::DelegationChanged,
                now,
                None,
                detail,
                serde_json::json!({ "code": code }),
            ));
        }
        self.cursor.code_hash = Some(hash);
        Ok(!code.is_empty())
    }

    /// `refusal` for each refused decision of this account logged since the last round;
    /// returns how many decisions the log holds.
    fn refusals(&self, now: u64, alerts: &mut Vec<Alert>) -> eyre::Result<usize> {
        let path = self.ctx.paths.ledger();
        if !path.exists() {
            return Ok(self.cursor.decisions_seen);
        }
        let ledger = crate::store::open_ledger(&path)?;
        let all = sak_signer::ledger::Ledger::decisions(&ledger, 0).wrap_err("reading the decision log")?;
        for d in all.iter().skip(self.cursor.decisions_seen) {
            if d.allowed || d.account != self.account.address || d.chain_id != self.chain.chain_id {
                continue;
            }
            let id: u32 = U256::from_be_bytes(d.session_id.0).saturating_to();
            alerts.push(self.alert(
                Kind::Refusal,
                now.max(d.at),
                Some(id),
                format!("an operation of session #{id} was refused: {}", d.reason),
                serde_json::json!({ "reason": d.reason, "key": d.key, "decided_at": d.at }),
            ));
        }
        Ok(all.len())
    }

    /// `expiring`, `rotation_due` and `stale`, each once per session (and key).
    async fn due(&mut self, now: u64, alerts: &mut Vec<Alert>) -> eyre::Result<()> {
        let state = self.ctx.state()?;
        let (account, chain_id) = (self.account.address, self.chain.chain_id);
        let records: Vec<_> = state
            .networks
            .get(&self.ctx.network_name)
            .map(|n| {
                n.sessions
                    .iter()
                    .filter(|r| r.account == account && r.chain_id == chain_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let decisions = match self.ctx.paths.ledger() {
            p if p.exists() => sak_signer::ledger::Ledger::decisions(&crate::store::open_ledger(&p)?, 0)?,
            _ => Vec::new(),
        };
        let contract = SakAccount::new(self.account.address, self.chain.provider.clone());
        for r in &records {
            let view = contract.getSession(r.id).call().await.wrap_err("getSession")?;
            if !matches!(crate::cmd::session::status_of(&view, now), "active" | "not-started") {
                continue;
            }
            let until = view.validUntil.to::<u64>();
            let mut raise = |this: &mut Self, kind: Kind, key: String, detail: String| {
                if this.cursor.raised.insert(key) {
                    alerts.push(this.alert(
                        kind,
                        now,
                        Some(r.id),
                        detail,
                        serde_json::json!({ "key": r.key, "key_name": r.key_name }),
                    ));
                }
            };
            if until.saturating_sub(now) <= self.spans.expiring {
                raise(
                    self,
                    Kind::Expiring,
                    format!("expiring:{}:{until}", r.id),
                    format!("session #{} ends at {}", r.id, format_time(until)),
                );
            }
            if now.saturating_sub(r.key_since()) >= self.spans.rotate_after {
                raise(
                    self,
                    Kind::RotationDue,
                    format!("rotation_due:{}:{}", r.id, r.key),
                    format!(
                        "session #{} has had key `{}` since {}: `sak session rotate {}`",
                        r.id,
                        r.key_name,
                        format_time(r.key_since()),
                        r.id
                    ),
                );
            }
            let last =
                decisions.iter().filter(|d| d.key == r.key).map(|d| d.at).max().unwrap_or(r.key_since());
            if now.saturating_sub(last) >= self.spans.stale {
                raise(
                    self,
                    Kind::Stale,
                    format!("stale:{}:{last}", r.key),
                    format!(
                        "key `{}` of session #{} has not signed since {}",
                        r.key_name,
                        r.id,
                        format_time(last)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Prints the alerts, freezes what `--freeze-on` names, posts to the webhook, then writes
    /// the cursor.
    async fn deliver(&mut self, mut alerts: Vec<Alert>) -> eyre::Result<()> {
        let mut frozen = Vec::new();
        for a in &alerts {
            if let Some(id) = a.session.filter(|_| self.args.freeze_on.contains(&a.kind)) {
                let key = format!("frozen:{id}");
                if self.cursor.raised.contains(&key) {
                    continue;
                }
                let owner = self.ctx.owner_key()?;
                let wallet = self.ctx.wallet_provider(&self.chain, owner.signer())?;
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
        write_atomic(&self.path, &serde_json::to_vec_pretty(&self.cursor)?, 0o600)
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
