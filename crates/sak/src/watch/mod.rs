//! The watch: a monitor of a home's account. Each [`Watcher::round`] reads the blocks since the
//! last round (behind the network's confirmation depth) and the home's ledger, and raises
//! alerts: spend near a cap, refusals, reverted operations, an unknown relayer, an allowance or
//! delegation change, sessions granted or revoked, and rotation, staleness and expiry due.
//!
//! The cursor (next block, alerts already raised, alerts a webhook has not taken yet) is
//! written by [`Watcher::save`], so a restart resumes where the last saved round ended: no
//! event is missed, and an alert is delivered at least once.
//!
//! ```no_run
//! # async fn demo() -> sak::Result<()> {
//! use sak::watch::{Rules, Watcher};
//! let home = sak::Home::open(sak::Options::default())?;
//! let chain = home.chain().await?;
//! let account = home.account(chain.chain_id)?;
//! let mut watcher = Watcher::open(&home, chain, account, Rules::default(), None).await?;
//! let (alerts, _caught_up) = watcher.round().await?;
//! for alert in &alerts {
//!     println!("{} {}", alert.kind.name(), alert.detail);
//! }
//! watcher.save()?;
//! # Ok(()) }
//! ```

mod round;

use round::History;

use crate::{
    Chain, Hinted, Home, Result,
    error::WrapErr,
    store::{AccountRecord, write_atomic},
};
use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use sak_primitives::{Policy, units::format_time};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

/// What an alert is about. Names are part of the `--json` and webhook interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", value(rename_all = "snake_case"))]
pub enum Kind {
    /// A session has spent [`Rules::near_cap`] percent or more of a cap this period.
    NearCap,
    /// The signer refused an operation (this home's ledger).
    Refusal,
    /// A session was refused [`Rules::refusal_rate`] times within its window: an agent probing its
    /// limits, or one that is broken.
    RefusalRate,
    /// A session operation was included but its calls reverted.
    OpReverted,
    /// A session operation submitted by a relayer or bundler not among [`Rules::relayers`] (when any is given).
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
    /// A session key held for [`Rules::rotate_after`].
    RotationDue,
    /// A session key unused for [`Rules::stale`].
    Stale,
    /// A live session ends within [`Rules::expiring`].
    Expiring,
    /// The owner revoked a session on an alert (`sak watch --freeze-on`).
    Frozen,
}

impl Kind {
    /// The name alerts carry (`near_cap`, `unknown_relayer`...).
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// What raises an alert.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rules {
    /// `near_cap` at this percentage of a cap spent in the current period (1..=100).
    pub near_cap: u8,
    /// The relayers and bundlers expected to submit session operations; given, any other
    /// raises `unknown_relayer` (empty: not checked).
    pub relayers: Vec<Address>,
    /// `refusal_rate` when a session is refused this many times within this many seconds.
    pub refusal_rate: (u32, u64),
    /// `stale` for a session key with no signing decision for this many seconds.
    pub stale: u64,
    /// `rotation_due` for a session key held this many seconds.
    pub rotate_after: u64,
    /// `expiring` for a live session that ends within this many seconds.
    pub expiring: u64,
}

impl Default for Rules {
    /// 80% of a cap, 5 refusals in 10 minutes, stale after 30 days, rotation after 90,
    /// expiring within a day; relayers not checked.
    fn default() -> Self {
        Self {
            near_cap: 80,
            relayers: Vec::new(),
            refusal_rate: (5, 600),
            stale: 30 * 86_400,
            rotate_after: 90 * 86_400,
            expiring: 86_400,
        }
    }
}

/// The watch of one account: its rules, its cursor, what it has read.
#[derive(Debug)]
pub struct Watcher<'a> {
    home: &'a Home,
    chain: Chain,
    account: AccountRecord,
    rules: Rules,
    cursor: Cursor,
    path: PathBuf,
    /// Sessions' granted policies, read once.
    policies: BTreeMap<u32, Option<Policy>>,
    /// The decision log as far as read (None until the first round).
    history: Option<History>,
    http: alloy::transports::http::reqwest::Client,
}

impl<'a> Watcher<'a> {
    /// The watch of `account`, resuming from its cursor in the home's data directory, else
    /// starting at `from_block` (default: the head).
    pub async fn open(
        home: &'a Home,
        chain: Chain,
        account: AccountRecord,
        rules: Rules,
        from_block: Option<u64>,
    ) -> Result<Self> {
        crate::sessions::require_sak_account(&account, "`sak watch`")?;
        let path =
            home.paths.data_dir.join("watch").join(format!("{}-{}.json", home.network_name, account.address));
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
                    next_block: from_block.unwrap_or(head + 1),
                    ..Cursor::default()
                }
            }
        };
        let http = alloy::transports::http::reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| crate::Error::Other(Box::new(e)))?;
        Ok(Self { home, chain, account, rules, cursor, path, policies: BTreeMap::new(), history: None, http })
    }

    /// The account watched.
    pub fn account(&self) -> &AccountRecord {
        &self.account
    }

    /// The chain watched.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The first block the next round reads.
    pub fn next_block(&self) -> u64 {
        self.cursor.next_block
    }

    /// Alerts the webhook has not taken yet.
    pub fn undelivered(&self) -> usize {
        self.cursor.undelivered.len()
    }

    /// Whether an alert with this key was raised already (kept across runs).
    pub fn raised(&self, key: &str) -> bool {
        self.cursor.raised.contains(key)
    }

    /// Records that the alert with this key was raised.
    pub fn mark_raised(&mut self, key: String) {
        self.cursor.raised.insert(key);
    }

    /// An alert of `kind` about this account at chain time `now`.
    pub fn alert(
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

    /// Queues `alerts` for the webhook at `url` and posts what is queued, oldest first, until
    /// one is not taken (it stays queued, with those after it, for the next call). Returns
    /// how many remain queued.
    pub async fn post(&mut self, url: &str, alerts: Vec<Alert>) -> usize {
        self.cursor.undelivered.extend(alerts);
        while let Some(a) = self.cursor.undelivered.first() {
            if !self.post_one(url, a).await {
                break;
            }
            self.cursor.undelivered.remove(0);
        }
        self.cursor.undelivered.len()
    }

    /// POSTs one alert, with up to 4 attempts (0.25, 0.5, 1 s apart); true once a 2xx answers.
    async fn post_one(&self, url: &str, alert: &Alert) -> bool {
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

    /// Writes the cursor: the next round, in this run or the next, resumes from it.
    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        }
        write_atomic(&self.path, &serde_json::to_vec_pretty(&self.cursor)?, 0o600)
    }
}

/// One alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// What it is about.
    pub kind: Kind,
    /// When it was raised (unix seconds, chain time) and as UTC.
    pub at: u64,
    /// The same, as UTC text.
    pub time: String,
    /// The block and transaction of the event, when it comes from one.
    pub block: Option<u64>,
    /// That transaction.
    pub tx: Option<B256>,
    /// The account watched.
    pub account: Address,
    /// The session it names, if one.
    pub session: Option<u32>,
    /// In words.
    pub detail: String,
    /// The facts behind it (kind-specific).
    pub data: serde_json::Value,
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
