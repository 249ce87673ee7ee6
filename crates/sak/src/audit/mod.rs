//! The audit: the signing decisions from the durable ledger; stale keys, keys due for
//! rotation; with a chain, the account's session operations as the chain has them.
//!
//! Everything comes from this home: the ledger's append-only decision log (joined to its
//! intents for what became of each operation), the key files and the sessions granted from
//! here. When the network's chain answers quickly, sessions it reports revoked or expired are
//! left out of the rotation flags; otherwise every recorded session is considered.

mod chain;

pub use chain::{ChainAudit, ChainOp};

use crate::{Chain, Contracts, Home, Result, error::WrapErr, store::SessionRecord};
use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use sak_primitives::{
    NATIVE,
    units::{format_span, format_time, format_time_from},
};
use sak_signer::ledger::{AnyLedger, Decision, Ledger, Outcome};
use sak_userop::{RetryConfig, retrying_provider};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, UNIX_EPOCH},
};

/// One signing decision in `sak audit --json`.
#[derive(Debug, Serialize)]
pub struct DecisionOut {
    /// When the signer decided (unix seconds, the chain's clock at that moment).
    pub at: u64,
    /// `at` as `YYYY-MM-DD HH:MM:SS UTC`.
    pub time: String,
    /// The chain it was for.
    pub chain_id: u64,
    /// The account the operation was for.
    pub account: Address,
    /// The session id on that account.
    pub session: u32,
    /// The session key's address, and its name in this home (null if no key file has it).
    pub key: Address,
    /// The key's name in this home, when it has the file.
    pub key_name: Option<String>,
    /// Whether the signer allowed the operation.
    pub allowed: bool,
    /// `ok`, or the refusal's error name (`SpendCapExceeded`, `CallNotPermitted`...).
    pub reason: String,
    /// The token movements the operation would cause.
    pub spends: Vec<SpendOut>,
    /// The user operation's hash (null when refused before one existed).
    pub user_op_hash: Option<B256>,
    /// The transaction that included it, when it was included.
    pub tx_hash: Option<B256>,
    /// What became of the operation: `included`, `reverted` (included, its calls reverted),
    /// `failed: REASON`, `released: REASON`, `pending (signed)` or `pending (submitted)` (in
    /// flight: its outcome is not known yet);
    /// null when refused or not in the ledger.
    pub outcome: Option<String>,
}

/// One token movement of a decision.
#[derive(Debug, Serialize)]
pub struct SpendOut {
    /// The token (`0xeeee…eeee` for native ETH).
    pub token: Address,
    /// Its name in the network's book (`tUSD`, `ETH`), else the address.
    pub token_name: String,
    /// The amount in whole units when the decimals are known (`250.5`), else base units.
    pub amount: String,
    /// The amount in base units (hex quantity).
    pub raw: U256,
    /// The period window it counts in (0 = the session's first period).
    pub window: u64,
}

/// A session key in `sak audit --json`.
#[derive(Debug, Serialize)]
pub struct KeyOut {
    /// The key's name in this home (file name), or the name recorded at grant time.
    pub name: String,
    /// Its address (null when the file does not read).
    pub address: Option<Address>,
    /// Whether the key file is in this home.
    pub file: bool,
    /// Sessions granted to it from this home: network and id.
    pub sessions: Vec<KeySession>,
    /// The last decision signed with it (unix seconds), null if none.
    pub last_decision: Option<u64>,
    /// No decision for `--stale` (counted from the last decision, else the grant, else the
    /// key file's creation).
    pub stale: bool,
}

#[derive(Debug, Serialize)]
/// A session a key holds.
pub struct KeySession {
    /// The network it was granted on.
    pub network: String,
    /// The session id.
    pub id: u32,
    /// The account it acts for.
    pub account: Address,
    /// Unix seconds (chain time) of the grant.
    pub granted_at: u64,
    /// On-chain status when the chain was asked (`active`, `revoked`, `expired`,
    /// `not-started`), else null.
    pub status: Option<&'static str>,
}

/// Something to act on.
#[derive(Debug, Serialize)]
pub struct Flag {
    /// `stale` (a key unused for `--stale`) or `rotate` (a session granted more than
    /// `--rotate-after` ago).
    pub kind: &'static str,
    /// The key flagged (null when unknown).
    pub key: Option<Address>,
    /// Its name.
    pub key_name: String,
    /// The session (rotate flags).
    pub session: Option<u32>,
    /// The session's network (rotate flags).
    pub network: Option<String>,
    /// What was found.
    pub detail: String,
    /// What to do.
    pub fix: String,
}

/// What `sak audit` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
pub struct Audit {
    /// The ledger file.
    pub ledger: String,
    /// False: no ledger yet, so no decisions (not an error).
    pub ledger_exists: bool,
    /// The wall clock used for `--since`, `--stale` and `--rotate-after` (unix seconds).
    pub now: u64,
    /// `--since` as unix seconds (null: from the beginning).
    pub since: Option<u64>,
    /// Counts over `decisions`.
    pub allowed: usize,
    /// Refused decisions.
    pub refused: usize,
    /// The decisions, oldest first.
    pub decisions: Vec<DecisionOut>,
    /// Every key: this home's key files, then keys only the session records name.
    pub keys: Vec<KeyOut>,
    /// What needs doing, each with its fix.
    pub flags: Vec<Flag>,
    /// Whether the network's chain was asked which sessions are still active.
    pub chain_checked: bool,
    /// `--chain`: the account's session operations on chain (null without it).
    pub chain: Option<chain::ChainAudit>,
}

/// What to audit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The wall clock (unix seconds) `since`, `stale_after` and `rotate_after` count from.
    pub now: u64,
    /// Only decisions at or after this time (unix seconds) [default: all].
    pub since: Option<u64>,
    /// Flag keys with no signing decision for this many seconds.
    pub stale_after: u64,
    /// Flag keys older than this many seconds (due for rotation).
    pub rotate_after: u64,
    /// With a chain: where its scan of session operations starts [default: the earliest grant
    /// recorded here, else block 0].
    pub from_block: Option<u64>,
}

impl Options {
    /// Now; every decision; stale after 30 days; rotation due after 90.
    pub fn new(now: u64) -> Self {
        Self { now, since: None, stale_after: 30 * 86_400, rotate_after: 90 * 86_400, from_block: None }
    }
}

/// Audits the home: its ledger's decisions, its keys, and the flags they raise. With `chain`
/// (the home's network, connected), also the account's session operations on that chain.
/// Nothing is written: the ledger is opened only if it exists.
pub async fn audit(home: &Home, options: &Options, chain: Option<&Chain>) -> Result<Audit> {
    let Options { now, since, stale_after, rotate_after, .. } = *options;

    // Opened only if it exists: opening creates the file, and an audit writes nothing.
    let at = crate::store::LedgerAt::of(&home.paths, &home.config)?;
    let ledger = at.existing()?;
    let exists = ledger.is_some();
    let all: Vec<Decision> = match &ledger {
        Some(l) => l.decisions(0).wrap_err("reading the decision log")?,
        None => Vec::new(),
    };

    let keys_here = home.session_keys()?;
    let name_of = |key: Address| keys_here.iter().find(|(_, _, a)| *a == Some(key)).map(|(n, ..)| n.clone());
    let contracts = home.offline_contracts()?;
    let this_chain = home.network.chain_id.or(home.node().ok().flatten().map(|n| n.chain_id));

    let mut decisions = Vec::new();
    for d in all.iter().filter(|d| since.is_none_or(|s| d.at >= s)) {
        let (tx_hash, outcome) = match (&ledger, d.user_op_hash) {
            (Some(l), Some(hash)) if d.allowed => joined(l, hash, d.tx_hash)?,
            _ => (d.tx_hash, None),
        };
        let book = (this_chain == Some(d.chain_id)).then_some(&contracts);
        decisions.push(DecisionOut {
            at: d.at,
            time: format_time(d.at),
            chain_id: d.chain_id,
            account: d.account,
            session: session_number(d.session_id),
            key: d.key,
            key_name: name_of(d.key),
            allowed: d.allowed,
            reason: d.reason.clone(),
            spends: d.spends.iter().map(|s| spend_out(s, book)).collect(),
            user_op_hash: d.user_op_hash,
            tx_hash,
            outcome,
        });
    }

    let state = home.state()?;
    // Every signed operation has a row: one whose run was killed before it logged its decision
    // is shown from the ledger's intent, with the key the session was granted to.
    if let Some(l) = &ledger {
        let logged: std::collections::HashSet<B256> = all.iter().filter_map(|d| d.user_op_hash).collect();
        for intent in l.signed_intents().wrap_err("reading the ledger's intents")? {
            let Some(hash) = intent.signed.as_ref().map(|s| s.user_op_hash) else { continue };
            let i = &intent.intent;
            if logged.contains(&hash) || since.is_some_and(|s| i.created_at < s) {
                continue;
            }
            let session = session_number(i.session_id);
            let key = state
                .networks
                .values()
                .flat_map(|n| &n.sessions)
                .find(|r| r.account == i.account && r.id == session && r.chain_id == i.chain_id)
                .map_or(Address::ZERO, |r| r.key);
            let (tx_hash, outcome) = joined(l, hash, None)?;
            let book = (this_chain == Some(i.chain_id)).then_some(&contracts);
            decisions.push(DecisionOut {
                at: i.created_at,
                time: format_time(i.created_at),
                chain_id: i.chain_id,
                account: i.account,
                session,
                key,
                key_name: name_of(key),
                allowed: true,
                reason: "ok (signed; its run ended before logging the decision)".into(),
                spends: i.spends.iter().map(|s| spend_out(s, book)).collect(),
                user_op_hash: Some(hash),
                tx_hash,
                outcome,
            });
        }
        decisions.sort_by_key(|d| d.at);
    }
    let records: Vec<(String, SessionRecord)> = state
        .networks
        .iter()
        .flat_map(|(net, n)| n.sessions.iter().map(move |s| (net.clone(), s.clone())))
        .collect();
    let statuses = chain_statuses(home, &records).await;
    let chain_checked = statuses.is_some();
    let status_of = |net: &str, r: &SessionRecord| {
        statuses
            .as_ref()
            .filter(|_| net == home.network_name)
            .and_then(|s| s.get(&(r.account, r.id)).copied())
    };

    // Every key: the home's key files, then keys only the records name.
    let mut keys: Vec<KeyOut> = Vec::new();
    let mut created: Vec<Option<u64>> = Vec::new();
    for (name, file, address) in &keys_here {
        keys.push(KeyOut {
            name: name.clone(),
            address: *address,
            file: true,
            sessions: Vec::new(),
            last_decision: None,
            stale: false,
        });
        created.push(
            std::fs::metadata(file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        );
    }
    for (net, r) in &records {
        let i = match keys.iter().position(|k| k.address == Some(r.key)) {
            Some(i) => i,
            None => {
                keys.push(KeyOut {
                    name: r.key_name.clone(),
                    address: Some(r.key),
                    file: false,
                    sessions: Vec::new(),
                    last_decision: None,
                    stale: false,
                });
                created.push(None);
                keys.len() - 1
            }
        };
        keys[i].sessions.push(KeySession {
            network: net.clone(),
            id: r.id,
            account: r.account,
            granted_at: r.key_since(),
            status: status_of(net, r),
        });
    }

    let mut flags = Vec::new();
    for (k, created) in keys.iter_mut().zip(created) {
        k.last_decision = all.iter().filter(|d| Some(d.key) == k.address).map(|d| d.at).max();
        let granted = k.sessions.iter().map(|s| s.granted_at).max();
        let Some(since_use) = k.last_decision.or(granted).or(created) else { continue };
        let idle = now.saturating_sub(since_use);
        if idle < stale_after {
            continue;
        }
        k.stale = true;
        let active: Vec<&KeySession> = k
            .sessions
            .iter()
            .filter(|s| s.status.is_none_or(|st| st == "active" || st == "not-started"))
            .collect();
        let what = match k.last_decision {
            Some(t) => {
                format!("no signing decision for {} (last {})", format_span(idle), format_time_from(t, now))
            }
            None => format!("never signed (since {})", format_time_from(since_use, now)),
        };
        let fix = match active.first() {
            Some(s) => format!(
                "if its agent no longer runs, revoke: `{}session revoke {}`{}",
                net_flag(home, &s.network),
                s.id,
                if active.len() > 1 { " (and its other sessions)" } else { "" }
            ),
            None if k.file => "it has no live session: delete the key file if nothing uses it".to_owned(),
            None => "nothing to do: its sessions are over and the key is not in this home".to_owned(),
        };
        flags.push(Flag {
            kind: "stale",
            key: k.address,
            key_name: k.name.clone(),
            session: None,
            network: None,
            detail: format!("key `{}`: {what}", k.name),
            fix,
        });
    }
    for (net, r) in &records {
        let live = status_of(net, r).is_none_or(|st| st == "active" || st == "not-started");
        let age = now.saturating_sub(r.key_since());
        if !live || age < rotate_after {
            continue;
        }
        flags.push(Flag {
            kind: "rotate",
            key: Some(r.key),
            key_name: r.key_name.clone(),
            session: Some(r.id),
            network: Some(net.clone()),
            detail: format!(
                "session #{} on {net} (key `{}`) has had that key for {} (since {})",
                r.id,
                r.key_name,
                format_span(age),
                format_time(r.key_since())
            ),
            fix: format!(
                "`{}session rotate {}` (a new key for the same session; the old key stops working)",
                net_flag(home, net),
                r.id
            ),
        });
    }

    let chain = if let Some(chain) = chain {
        // What this home signed: user operation hashes, and the transactions that carried them
        // or its direct calls.
        let mut known: HashSet<B256> =
            all.iter().flat_map(|d| [d.user_op_hash, d.tx_hash]).flatten().collect();
        if let Some(l) = &ledger {
            for i in l.signed_intents().wrap_err("reading the ledger's intents")? {
                known.extend(i.user_op_hashes());
                known.extend(i.submission.and_then(|s| s.tx_hash));
                if let Some(Outcome::Included { tx_hash, .. }) = i.outcome {
                    known.insert(tx_hash);
                }
            }
        }
        Some(chain::session_ops(home, chain, options.from_block, &known).await?)
    } else {
        None
    };
    let out = Audit {
        ledger: at.shown(),
        ledger_exists: exists,
        now,
        since,
        allowed: decisions.iter().filter(|d| d.allowed).count(),
        refused: decisions.iter().filter(|d| !d.allowed).count(),
        decisions,
        keys,
        flags,
        chain_checked,
        chain,
    };
    Ok(out)
}

/// `sak ` or `sak --network NET ` for a fix on another network than the one in use.
fn net_flag(home: &Home, network: &str) -> String {
    if network == home.network_name { "sak ".into() } else { format!("sak --network {network} ") }
}

/// The session id the ledger keys decisions by (the id as a 32-byte big-endian word).
fn session_number(id: B256) -> u32 {
    U256::from_be_bytes(id.0).saturating_to()
}

fn spend_out(s: &sak_signer::ledger::Spend, book: Option<&Contracts>) -> SpendOut {
    let (name, decimals) = if s.token == NATIVE {
        ("ETH".to_owned(), Some(18))
    } else {
        match book {
            Some(c) => (c.name(s.token), c.decimals(s.token)),
            None => (s.token.to_string(), None),
        }
    };
    SpendOut {
        token: s.token,
        token_name: name,
        amount: sak_primitives::units::format_amount(s.amount, decimals),
        raw: s.amount,
        window: s.window,
    }
}

/// The transaction and outcome of the intent that signed `hash`.
fn joined(
    ledger: &AnyLedger,
    hash: B256,
    recorded_tx: Option<B256>,
) -> Result<(Option<B256>, Option<String>)> {
    let intents = ledger.intents_by_user_op_hash(hash).wrap_err("reading the ledger's intents")?;
    let Some(intent) = intents.last() else { return Ok((recorded_tx, None)) };
    let submitted = intent.submission.as_ref().and_then(|s| s.tx_hash);
    let current = intent.signed.as_ref().map(|s| s.user_op_hash);
    Ok(match &intent.outcome {
        // A fee bump: another operation of the intent (same calls and nonce) landed.
        Some(Outcome::Included { user_op_hash, .. }) if *user_op_hash != hash => {
            (None, Some(format!("replaced: {user_op_hash} landed instead")))
        }
        None if current.is_some_and(|c| c != hash) => {
            (None, Some(format!("replaced by {} (pending)", current.unwrap_or_default())))
        }
        Some(Outcome::Included { success, tx_hash, .. }) => {
            (Some(*tx_hash), Some(if *success { "included" } else { "reverted" }.to_owned()))
        }
        Some(Outcome::Failed { reason }) => (recorded_tx.or(submitted), Some(format!("failed: {reason}"))),
        Some(Outcome::Released { reason }) => (recorded_tx, Some(format!("released: {reason}"))),
        None => (recorded_tx.or(submitted), Some(format!("pending ({})", intent.state.as_str()))),
    })
}

/// The on-chain status of the current network's recorded sessions, if its chain answers
/// within a few seconds (audit works offline; this only sharpens the rotation flags).
async fn chain_statuses(
    home: &Home,
    records: &[(String, SessionRecord)],
) -> Option<BTreeMap<(Address, u32), &'static str>> {
    let mine: Vec<&SessionRecord> =
        records.iter().filter(|(n, _)| *n == home.network_name).map(|(_, r)| r).collect();
    if mine.is_empty() {
        return None;
    }
    let url = home.rpc_url().ok()?;
    let quick = RetryConfig {
        max_retries: 0,
        initial_backoff: Duration::from_millis(100),
        request_timeout: Duration::from_secs(3),
        deadline: Duration::from_secs(3),
    };
    let provider = retrying_provider(&url, quick).ok()?;
    let chain_id = provider.get_chain_id().await.ok()?;
    let block = provider.get_block_by_number(alloy::rpc::types::BlockNumberOrTag::Latest).await.ok()??;
    let accounts =
        home.state().ok()?.networks.remove(&home.network_name).map(|n| n.accounts).unwrap_or_default();
    let mut out = BTreeMap::new();
    for r in mine.into_iter().filter(|r| r.chain_id == chain_id) {
        let host = match accounts.values().find(|a| a.address == r.account && a.chain_id == chain_id) {
            Some(account) => crate::sessions::host_of(account),
            None => crate::sessions::Host::account(r.account),
        };
        let view = host.view(&provider, r.id).await.ok()?;
        out.insert((r.account, r.id), crate::sessions::status_of(&view, block.header.timestamp));
    }
    Some(out)
}
