//! `sak doctor`'s checks: every check a user would otherwise do by hand, each failure with its
//! fix.
//!
//! Checks run in order and never stop at the first failure: a check whose input is missing
//! (no RPC, no account) is left out, and the failure upstream says why. Nothing is written
//! (the ledger is opened only if it exists, keys are never decrypted).
//!
//! ```no_run
//! # async fn demo() -> sak::Result<()> {
//! use sak::{config::Paths, doctor::Doctor};
//! let doctor = Doctor::begin(Paths::discover()?, sak::Options::default()).await;
//! let report = doctor.finish(None).await;
//! for check in &report.checks {
//!     println!("{:?} {}: {}", check.status, check.name, check.detail);
//! }
//! # Ok(()) }
//! ```

mod repair;
mod reset;

pub use repair::{Regrant, Repair, Skipped};

use crate::store::LedgerAt;
use crate::{
    Contracts, Home, Options,
    config::{Config, Paths, redact_url},
    keystore_address, redacted_error,
    store::{AccountKind, AccountRecord, SessionRecord, State},
};
use alloy::{
    primitives::{Address, U64},
    providers::{DynProvider, Provider},
    rpc::client::RpcClient,
    transports::{RpcError, TransportError, TransportErrorKind},
};
use sak_contracts::{CREATE2_DEPLOYER, ENTRY_POINT_V08, SakAccount};
use sak_primitives::{
    NATIVE,
    units::{format_time, format_time_from},
};
use sak_signer::ledger::{AnyLedger, Ledger};
use sak_userop::{RetryConfig, retrying_client, retrying_provider};
use serde::Serialize;
use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

mod account;
mod endpoints;
mod files;

use account::*;
use endpoints::*;
use files::*;

/// How long one probe of an endpoint may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// An endpoint slower than this works but earns a warning.
const SLOW: Duration = Duration::from_secs(2);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Ok,
    /// Works, but look.
    Warn,
    /// Something will not work.
    Fail,
}

/// One check in `sak doctor --json`.
#[derive(Debug, Serialize)]
pub struct Check {
    /// A stable identifier: `config`, `state`, `rpc`, `chain_id`, `create2_deployer`,
    /// `entry_point`, `session_adapter`, `sak_account_implementation`, `sak_account_factory`, `sak_7702_account`,
    /// `session_key_validator`, `sak_7579_account_implementation`, `sak_7579_account_factory`, `repair` (with `--repair`), `chain_identity`, `bundler`, `key_dir`,
    /// `owner_key`, `session_key_files`, `account`, `leftover_sessions` (7702), `ledger`, `ledger_unresolved`, and with
    /// `--session`: `session`, `session_key`, `session_caps`.
    pub name: &'static str,
    /// `ok`, `warn` (works, but look) or `fail` (something will not work).
    pub status: Status,
    /// What was found, in words (URLs without their path or query).
    pub detail: String,
    /// What to do; null when the check passed.
    pub fix: Option<String>,
}

/// What the checks found (`sak doctor --json`).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The network checked.
    pub network: Option<String>,
    /// The chain id the endpoint reported (null when unreachable).
    pub chain_id: Option<u64>,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// Records a check that passed.
    pub fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, status: Status::Ok, detail: detail.into(), fix: None });
    }

    /// Records a check that works, but should be looked at.
    pub fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check { name, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) });
    }

    /// Records a check that failed: something will not work.
    pub fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check { name, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) });
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| c.status == Status::Fail).count()
    }
}

/// The checks of a home, run in two steps so that a caller may act between them (the CLI's
/// `--repair`): [`Doctor::begin`] checks the config, the state file, the endpoint and sak's
/// contracts; [`Doctor::finish`] the chain's identity, the bundler, the keys, the account, the
/// ledger and a session.
#[derive(Debug)]
pub struct Doctor {
    report: Report,
    paths: Paths,
    home: Option<Home>,
    state: Option<State>,
    chain: Option<Probed>,
}

impl Doctor {
    /// The first checks; the home's progress sink hears what takes a while.
    pub async fn begin(paths: Paths, options: Options) -> Self {
        let mut r = Report { network: None, chain_id: None, checks: Vec::new() };
        let home = check_config(&mut r, &options, &paths);
        let state = check_state(&mut r, &paths);
        let mut chain = None;
        if let Some(home) = &home {
            r.network = Some(home.network_name.clone());
            chain = check_rpc(&mut r, home).await;
            if let Some(chain) = &chain {
                r.chain_id = Some(chain.chain_id);
                check_contracts(&mut r, home, chain).await;
            }
        }
        Self { report: r, paths, home, state, chain }
    }

    /// `--repair`: after a chain reset, makes this home's accounts again on the new chain and
    /// names the sessions to grant anew ([`Repair`]); reported as the check `repair`.
    /// Does nothing (None) when the config, the state file or the chain is missing: the
    /// checks say why.
    pub async fn repair(&mut self) -> Option<Repair> {
        let home = self.home.as_ref().filter(|_| self.state.is_some() && self.chain.is_some())?;
        let done = match repair::repair(home).await {
            Ok(done) => {
                self.report.ok("repair", done.words());
                Some(done)
            }
            Err(e) => {
                let fix = e.hint().unwrap_or("retry `sak doctor --repair`").to_owned();
                self.report.fail("repair", format!("{e:#}"), fix);
                None
            }
        };
        self.state = State::load(&self.paths.state()).ok();
        done
    }

    /// The remaining checks, and with `session` that session's: the whole report.
    pub async fn finish(self, session: Option<u32>) -> Report {
        let Self { report: mut r, paths, home, state, chain } = self;
        let mut same_chain = true;
        if let Some(home) = &home {
            if let (Some(chain), Some(state)) = (&chain, &state) {
                same_chain = reset::check(&mut r, home, chain, state).await;
            }
            check_bundler(&mut r, home).await;
        }
        check_keys(&mut r, &paths);
        let account = match (&home, &chain, &state) {
            (Some(home), Some(chain), Some(state)) if same_chain => {
                check_account(&mut r, home, chain, state).await
            }
            _ => None,
        };
        check_ledger(&mut r, &paths, home.as_ref().map(|h| &h.config));
        if let Some(id) = session {
            match (&home, &chain, &account) {
                (Some(home), Some(chain), Some(account)) => {
                    check_session(&mut r, home, chain, account, state.as_ref(), id).await;
                }
                _ => r.fail(
                    "session",
                    format!("session #{id} not checked: it needs a reachable chain and an account"),
                    "fix the failures above first",
                ),
            }
        }
        r
    }
}

/// The checked connection.
#[derive(Debug)]
struct Probed {
    provider: DynProvider,
    chain_id: u64,
}
