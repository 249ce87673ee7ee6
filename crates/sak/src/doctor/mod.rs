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

mod reset;

use crate::{
    Contracts, Home, Options,
    config::{Config, Paths, redact_url},
    keystore_address, redacted_error,
    store::{AccountKind, AccountRecord, SessionRecord, State},
};
use alloy::{
    primitives::{Address, U64, U256},
    providers::{DynProvider, Provider},
    rpc::client::RpcClient,
    transports::{RpcError, TransportError, TransportErrorKind},
};
use sak_contracts::{CREATE2_DEPLOYER, ENTRY_POINT_V08, SakAccount};
use sak_primitives::{
    NATIVE,
    units::{format_time, format_time_from},
};
use sak_signer::ledger::{Ledger, SqliteLedger};
use sak_userop::{RetryConfig, retrying_client, retrying_provider};
use serde::Serialize;
use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

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
    /// `session_key_validator`, `repair` (with `--repair`), `chain_identity`, `bundler`, `key_dir`,
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

/// `leftover_sessions`: a 7702 account's live sessions that predate its last delegation change
/// (made outside sak), or that another delegate wrote into its storage.
async fn check_leftovers(r: &mut Report, home: &Home, chain: &Probed, eoa: Address) {
    let fix = "run `sak account create --kind 7702` (it ends them), or `sak session revoke-all`";
    match crate::leftover::find(&chain.provider, eoa).await {
        Err(e) => r.warn(
            "leftover_sessions",
            format!(
                "could not read the account's sessions and delegation history: {}",
                redacted_error(&e, &home.rpc_url().unwrap_or_default())
            ),
            "retry `sak doctor`, with an endpoint that serves eth_getLogs and full blocks",
        ),
        Ok(found) => match (found.summary(), &found.unchecked) {
            (Some(what), _) => {
                r.fail("leftover_sessions", format!("live from before the last delegation: {what}"), fix)
            }
            (None, Some(why)) => r.warn(
                "leftover_sessions",
                format!("{} live session(s); {why}", found.live.len()),
                "if the EOA was delegated elsewhere since they were granted, run `sak session revoke-all`",
            ),
            (None, None) => r.ok(
                "leftover_sessions",
                format!("{} live session(s), none from before the EOA's last delegation", found.live.len()),
            ),
        },
    }
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

    /// The home, when its config parsed; with [`Self::can_repair`], the chain answered too.
    pub fn home(&self) -> Option<&Home> {
        self.home.as_ref()
    }

    /// Whether the config, the state file and the chain are all there to act on.
    pub fn can_repair(&self) -> bool {
        self.home.is_some() && self.state.is_some() && self.chain.is_some()
    }

    /// The report so far, to add a check of the caller's.
    pub fn report_mut(&mut self) -> &mut Report {
        &mut self.report
    }

    /// Reads the state file again (after the caller changed it).
    pub fn reread_state(&mut self) {
        self.state = State::load(&self.paths.state()).ok();
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
        check_ledger(&mut r, &paths);
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

fn hint(err: &crate::Error) -> Option<String> {
    err.hint().map(str::to_owned)
}

fn check_config(r: &mut Report, options: &Options, paths: &Paths) -> Option<Home> {
    let file = paths.config_file.display();
    let config = match Config::load(&paths.config_file) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "config",
                format!("{e:#}"),
                format!("fix the line named above in {file}, or move the file aside and run `sak init`"),
            );
            return None;
        }
    };
    let (network_name, network) = match config.network(options.network.as_deref()) {
        Ok(n) => n,
        Err(e) => {
            r.fail(
                "config",
                format!("{e:#}"),
                hint(&e).unwrap_or_else(|| "pick a configured network".into()),
            );
            return None;
        }
    };
    let kind = format!("{:?}", network.kind).to_lowercase();
    if paths.config_file.exists() {
        r.ok("config", format!("{file} parses; network `{network_name}` ({kind})"));
    } else {
        r.warn(
            "config",
            format!("no {file}: using the defaults; network `{network_name}` ({kind})"),
            "run `sak init` to write it (and the key directories)",
        );
    }
    Some(Home { paths: paths.clone(), config, network_name, network, options: options.clone() })
}

fn check_state(r: &mut Report, paths: &Paths) -> Option<State> {
    match State::load(&paths.state()) {
        Ok(state) => Some(state),
        Err(e) => {
            r.fail(
                "state",
                format!("{e:#}"),
                format!(
                    "move {} aside (it lists accounts and sessions made here; the chain keeps them)",
                    paths.state().display()
                ),
            );
            None
        }
    }
}

/// A client that tries once, for probing.
fn probe_client(url: &str) -> Result<RpcClient, sak_userop::Error> {
    retrying_client(
        url,
        RetryConfig {
            max_retries: 0,
            initial_backoff: Duration::from_millis(100),
            request_timeout: PROBE_TIMEOUT,
            deadline: PROBE_TIMEOUT,
        },
    )
}

async fn check_rpc(r: &mut Report, home: &Home) -> Option<Probed> {
    let url = match home.rpc_url() {
        Ok(u) => u,
        Err(e) => {
            let fix = hint(&e).unwrap_or_else(|| {
                format!("add rpc_url to [networks.{}] or pass --rpc-url URL", home.network_name)
            });
            r.fail("rpc", format!("{e:#}"), fix);
            return None;
        }
    };
    let shown = redact_url(&url);
    let refused_fix = if home.kind().is_anvil() {
        "start the local chain with `sak node up` (or pass --rpc-url)".to_owned()
    } else {
        "check the host and port in the URL, and that the node is up".to_owned()
    };
    let client = match probe_client(&url) {
        Ok(c) => c,
        Err(e) => {
            r.fail("rpc", format!("{shown}: {e}"), "write a full URL: http(s)://host[:port][/path]");
            return None;
        }
    };
    if !home.kind().is_anvil() {
        home.progress(&format!("checking network `{}` at {shown}…", home.network_name));
    }
    let started = Instant::now();
    let reported: Result<U64, TransportError> = client.request("eth_chainId", ()).await;
    let took = started.elapsed();
    let chain_id = match reported {
        Ok(id) => id.to::<u64>(),
        Err(e) => {
            let (detail, fix) = transport_problem(&e, &url, "RPC", &refused_fix);
            r.fail("rpc", detail, fix);
            return None;
        }
    };
    let detail = format!("{shown} answered in {} ms", took.as_millis());
    if took > SLOW {
        r.warn(
            "rpc",
            format!("{detail} (slow)"),
            "use a closer or less loaded endpoint; sak waits up to 15 s a call",
        );
    } else {
        r.ok("rpc", detail);
    }
    let expected = home.network.chain_id.or(home.node().ok().flatten().map(|n| n.chain_id));
    match expected {
        Some(expected) if expected == chain_id => r.ok("chain_id", format!("{chain_id}, as configured")),
        Some(expected) => r.fail(
            "chain_id",
            format!("network `{}` expects chain {expected}; {shown} is chain {chain_id}", home.network_name),
            format!(
                "point rpc_url of [networks.{}] at a chain-{expected} endpoint, or correct its chain_id in {}",
                home.network_name,
                home.paths.config_file.display()
            ),
        ),
        None => r.warn(
            "chain_id",
            format!("{chain_id}; the config does not say which chain to expect"),
            format!(
                "add `chain_id = {chain_id}` to [networks.{}] so a wrong endpoint is caught before signing",
                home.network_name
            ),
        ),
    }
    let provider = match retrying_provider(
        &url,
        RetryConfig {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            request_timeout: PROBE_TIMEOUT,
            deadline: PROBE_TIMEOUT * 3,
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            r.fail("rpc", e.to_string(), "write a full URL: http(s)://host[:port][/path]");
            return None;
        }
    };
    Some(Probed { provider, chain_id })
}

/// What went wrong reaching `url`, in words without the URL's secrets, and the fix.
pub(crate) fn transport_problem(
    err: &TransportError,
    url: &str,
    what: &str,
    refused_fix: &str,
) -> (String, String) {
    let shown = redact_url(url);
    let http = match err {
        RpcError::Transport(TransportErrorKind::HttpError(e)) => Some(e),
        RpcError::Transport(TransportErrorKind::HttpErrorWithRetryAfter { error, .. }) => Some(error),
        _ => None,
    };
    if let Some(e) = http {
        let (why, fix) = match e.status {
            401 => (
                "unauthorized (HTTP 401)",
                format!(
                    "the API key in the {what} URL is missing, wrong or expired: get a current one from your \
                     provider and update the URL (or the variable it reads)"
                ),
            ),
            403 => (
                "forbidden (HTTP 403)",
                "the API key may not use this network or method (a missing scope, or an allowlist of \
                 origins or IPs): enable it in your provider's dashboard"
                    .to_owned(),
            ),
            429 => (
                "rate limited (HTTP 429)",
                "the plan's request rate is used up: wait a minute, send fewer requests, or use a plan or \
                 endpoint with a higher limit"
                    .to_owned(),
            ),
            404 | 405 => (
                "no JSON-RPC endpoint there (HTTP 404/405)",
                format!("check the path of the {what} URL (providers put the key in it: …/v2/<key>)"),
            ),
            s if s >= 500 => (
                "the server failed (HTTP 5xx)",
                "the provider is having trouble: retry later or use another endpoint".to_owned(),
            ),
            _ => ("an unexpected HTTP status", format!("check the {what} URL")),
        };
        return (format!("{shown}: {why}: status {}", e.status), fix);
    }
    match err {
        RpcError::ErrorResp(p) => (
            format!("{shown} answered with JSON-RPC error {}: {}", p.code, p.message),
            format!("check that the {what} URL is the right kind of endpoint for this network"),
        ),
        RpcError::DeserError { .. } | RpcError::NullResp => (
            format!("{shown} did not answer with JSON-RPC"),
            format!("check that the {what} URL is a JSON-RPC endpoint, not a web page"),
        ),
        other => {
            let causes = redacted_error(other, url);
            let lower = causes.to_ascii_lowercase();
            let (why, fix) = if lower.contains("timed out") || lower.contains("timeout") {
                (
                    format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
                    "the endpoint is slow or unreachable from here: check your connection, or use a faster \
                     endpoint"
                        .to_owned(),
                )
            } else if lower.contains("connection refused") {
                ("connection refused".to_owned(), refused_fix.to_owned())
            } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("name or service") {
                ("host not found".to_owned(), format!("check the host name in the {what} URL"))
            } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
                (
                    "TLS failed".to_owned(),
                    "the endpoint's certificate is not trusted here: check the URL and the system's CA \
                     certificates"
                        .to_owned(),
                )
            } else {
                ("unreachable".to_owned(), format!("check the {what} URL and your network"))
            };
            (format!("{shown}: {why} ({causes})"), fix)
        }
    }
}

async fn code_at(provider: &DynProvider, address: Address) -> crate::Result<alloy::primitives::Bytes> {
    Ok(provider.get_code_at(address).await?)
}

async fn check_contracts(r: &mut Report, home: &Home, chain: &Probed) {
    let c = Contracts::canonical();
    let deploy_fix = if home.kind().is_anvil() {
        "`sak node up` deploys everything on a local chain: restart it (`sak node down`, `sak node up`)"
    } else {
        "run `sak deploy` (the owner key pays; `--dry-run` shows the plan)"
    };
    let rows: [(&'static str, &str, Address, String); 7] = [
        (
            "create2_deployer",
            "the CREATE2 deployer",
            CREATE2_DEPLOYER,
            "this chain lacks the deterministic deployment proxy sak deploys through: use a chain that \
             has it (every major chain does)"
                .to_owned(),
        ),
        (
            "entry_point",
            "EntryPoint v0.8",
            ENTRY_POINT_V08,
            "sak needs the canonical EntryPoint v0.8: use a chain that has it, or deploy it there first \
             (its published initcode through the CREATE2 deployer)"
                .to_owned(),
        ),
        ("session_adapter", "SessionAdapter", c.session_adapter, deploy_fix.to_owned()),
        ("sak_account_implementation", "SakAccount", c.sak_account_implementation, deploy_fix.to_owned()),
        ("sak_account_factory", "SakAccountFactory", c.sak_account_factory, deploy_fix.to_owned()),
        ("sak_7702_account", "Sak7702Account", c.sak_7702_account, deploy_fix.to_owned()),
        ("session_key_validator", "SessionKeyValidator", c.session_key_validator, deploy_fix.to_owned()),
    ];
    for (name, what, address, fix) in rows {
        match code_at(&chain.provider, address).await {
            Ok(code) if !code.is_empty() => r.ok(name, format!("{what} at {address} ({} bytes)", code.len())),
            Ok(_) => r.fail(name, format!("no {what} at {address} on chain {}", chain.chain_id), fix),
            Err(e) => r.fail(name, format!("eth_getCode at {address}: {e}"), "retry; `sak doctor` again"),
        }
    }
}

async fn check_bundler(r: &mut Report, home: &Home) {
    let url = match home.bundler_url() {
        Ok(Some(u)) => u,
        Ok(None) => {
            r.ok("bundler", "none configured: sak submits operations itself (--via self or direct)");
            return;
        }
        Err(e) => {
            r.warn(
                "bundler",
                format!("{e:#}; `--via bundler` is unavailable"),
                hint(&e).unwrap_or_else(|| "set bundler_url in the config".into()),
            );
            return;
        }
    };
    let shown = redact_url(&url);
    let client = match probe_client(&url) {
        Ok(c) => c,
        Err(e) => {
            r.fail("bundler", format!("{shown}: {e}"), "write a full URL: http(s)://host[:port][/path]");
            return;
        }
    };
    let started = Instant::now();
    let chain_id: Result<U64, TransportError> = client.request("eth_chainId", ()).await;
    let took = started.elapsed();
    let chain_id = match chain_id {
        Ok(id) => id.to::<u64>(),
        Err(e) => {
            let (detail, fix) = transport_problem(
                &e,
                &url,
                "bundler",
                "check the bundler's host and port, and that it is running",
            );
            r.fail("bundler", detail, fix);
            return;
        }
    };
    let entry_points: Result<Vec<Address>, TransportError> =
        client.request("eth_supportedEntryPoints", ()).await;
    let entry_points = match entry_points {
        Ok(e) => e,
        Err(e) => {
            let (detail, fix) = transport_problem(&e, &url, "bundler", "check that the bundler is running");
            r.fail("bundler", format!("eth_supportedEntryPoints: {detail}"), fix);
            return;
        }
    };
    let expected = home.network.chain_id;
    if expected.is_some_and(|e| e != chain_id) {
        r.fail(
            "bundler",
            format!("{shown} serves chain {chain_id}, the network is chain {}", expected.unwrap_or_default()),
            format!("use a bundler for chain {} in bundler_url", expected.unwrap_or_default()),
        );
    } else if !entry_points.contains(&ENTRY_POINT_V08) {
        r.fail(
            "bundler",
            format!("{shown} does not serve EntryPoint v0.8 {ENTRY_POINT_V08} (it serves {entry_points:?})"),
            "use a bundler that supports EntryPoint v0.8 (most providers select it by URL path or version)",
        );
    } else {
        r.ok(
            "bundler",
            format!("{shown} answered in {} ms; chain {chain_id}, EntryPoint v0.8", took.as_millis()),
        );
    }
}

/// Group or other permission bits of `path` (None when missing).
fn loose_mode(path: &Path) -> std::io::Result<Option<u32>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.mode() & 0o7777)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn check_keys(r: &mut Report, paths: &Paths) {
    let mut loose = Vec::new();
    let mut missing_dir = false;
    for dir in [paths.keys_dir(), paths.session_keys_dir()] {
        match loose_mode(&dir) {
            Ok(Some(mode)) if mode & 0o077 != 0 => loose.push(format!("{} is {mode:04o}", dir.display())),
            Ok(Some(_)) => {}
            Ok(None) => missing_dir = true,
            Err(e) => loose.push(format!("{}: {e}", dir.display())),
        }
    }
    if !loose.is_empty() {
        r.fail(
            "key_dir",
            format!("{}; others can list the keys", loose.join(", ")),
            format!("chmod 700 {} {}", paths.keys_dir().display(), paths.session_keys_dir().display()),
        );
    } else if missing_dir {
        r.warn("key_dir", format!("no key directory at {}", paths.keys_dir().display()), "run `sak init`");
    } else {
        r.ok("key_dir", format!("{} and its session/ are 0700", paths.keys_dir().display()));
    }

    let owner = paths.owner_key();
    match (loose_mode(&owner), keystore_address(&owner)) {
        (Ok(None), _) => r.warn(
            "owner_key",
            format!("no owner key at {}", owner.display()),
            "create one with `sak owner new` (or `sak owner import`); an agent's machine needs none",
        ),
        (Ok(Some(mode)), _) if mode & 0o077 != 0 => r.fail(
            "owner_key",
            format!("{} is mode {mode:04o}: others can read the owner's keystore", owner.display()),
            format!("chmod 600 {}", owner.display()),
        ),
        (Ok(Some(_)), Ok(Some(address))) => {
            r.ok("owner_key", format!("{address} in {} (0600)", owner.display()))
        }
        (Err(e), _) => {
            r.fail("owner_key", format!("{}: {e}", owner.display()), "check the file's owner and mode")
        }
        (Ok(Some(_)), Err(e)) => r.fail(
            "owner_key",
            format!("{e:#}"),
            "restore the owner keystore from your backup (`sak owner import`)",
        ),
        (Ok(Some(_)), Ok(None)) => r.warn("owner_key", "the owner key vanished while checking", "run again"),
    }

    let dir = paths.session_keys_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            r.fail(
                "session_key_files",
                format!("{}: {e}", dir.display()),
                "check the directory's owner and mode",
            );
            return;
        }
    };
    let (mut count, mut bad) = (0, Vec::new());
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        count += 1;
        match (loose_mode(&path), keystore_address(&path)) {
            (Ok(Some(mode)), _) if mode & 0o077 != 0 => bad.push(format!("{} is {mode:04o}", path.display())),
            (_, Err(e)) => bad.push(format!("{e:#}")),
            (Err(e), _) => bad.push(format!("{}: {e}", path.display())),
            _ => {}
        }
    }
    if bad.is_empty() {
        r.ok("session_key_files", format!("{count} in {} (0600)", dir.display()));
    } else {
        r.fail(
            "session_key_files",
            bad.join("; "),
            format!("chmod 600 {}/*.json (and move aside any file that is not a keystore)", dir.display()),
        );
    }
}

async fn check_account(r: &mut Report, home: &Home, chain: &Probed, state: &State) -> Option<AccountRecord> {
    let net = state.networks.get(&home.network_name).cloned().unwrap_or_default();
    let account = match net.pick(home.options.account.as_deref(), &home.network_name) {
        Ok((_, account)) => account,
        Err(e) => {
            r.warn("account", e.message, e.hint);
            return None;
        }
    };
    if account.chain_id != chain.chain_id {
        r.fail(
            "account",
            format!(
                "the account {} was recorded on chain {}; the endpoint is chain {}",
                account.address, account.chain_id, chain.chain_id
            ),
            "run `sak account create` on this chain, or point the network at the chain it lives on",
        );
        return None;
    }
    let code = match code_at(&chain.provider, account.address).await {
        Ok(code) => code,
        Err(e) => {
            r.fail("account", format!("eth_getCode at {}: {e}", account.address), "retry `sak doctor`");
            return None;
        }
    };
    let kind = account.kind.as_str();
    let sak_7702 = Contracts::canonical().sak_7702_account;
    match account.kind {
        _ if code.is_empty() => r.fail(
            "account",
            format!("the {kind} account {} has no code on chain {}", account.address, chain.chain_id),
            format!("run `sak account create --kind {kind}` (it deploys or delegates it again)"),
        ),
        AccountKind::Eip7702 if code[..] != sak_userop::eip7702::delegation_code(sak_7702)[..] => r.fail(
            "account",
            format!(
                "{} is not delegated to Sak7702Account {sak_7702} (code 0x{})",
                account.address,
                hex(&code)
            ),
            "run `sak account create --kind 7702` to delegate it again",
        ),
        AccountKind::Eip7702 => {
            r.ok("account", format!("7702 account {} delegates to Sak7702Account", account.address));
            check_leftovers(r, home, chain, account.address).await;
        }
        AccountKind::Smart => {
            let owner = SakAccount::new(account.address, &chain.provider).owner().call().await;
            match owner {
                Ok(o) if o == account.owner => r.ok(
                    "account",
                    format!("smart account {} ({} bytes of code), owner {o}", account.address, code.len()),
                ),
                Ok(o) => r.fail(
                    "account",
                    format!(
                        "the account {}'s owner is {o}; this home recorded {}",
                        account.address, account.owner
                    ),
                    "use the home (or owner key) the account belongs to",
                ),
                Err(e) => r.fail(
                    "account",
                    format!("{} does not answer owner(): {e}", account.address),
                    "is it a sak account? run `sak account create` again",
                ),
            }
        }
    }
    Some(account)
}

/// `3d 4h`, `5h 12m`, `42m`, `17s`.
fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
        s if s >= 3_600 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_ledger(r: &mut Report, paths: &Paths) {
    let path = paths.ledger();
    if !path.exists() {
        r.ok("ledger", format!("no ledger yet at {} (nothing signed here)", path.display()));
        return;
    }
    let move_aside = format!(
        "restore {} from a backup; as a last resort move it aside (sak starts a new one, and forgets the \
         spends it was tracking as pending)",
        path.display()
    );
    let ledger = match SqliteLedger::open(&path) {
        Ok(l) => l,
        Err(e) => {
            r.fail("ledger", format!("{} cannot be opened: {e}", path.display()), move_aside);
            return;
        }
    };
    let verdict = ledger
        .integrity_check()
        .map_err(|e| e.to_string())
        .and_then(|v| if v == "ok" { Ok(()) } else { Err(format!("integrity_check: {v}")) });
    let consistent = ledger.check_consistency().map_err(|e| e.to_string()).and_then(|diffs| {
        if diffs.is_empty() { Ok(()) } else { Err(format!("pending totals differ: {}", diffs.join("; "))) }
    });
    match (verdict, consistent) {
        (Ok(()), Ok(())) => {
            r.ok("ledger", format!("{}: integrity ok, pending totals consistent", path.display()))
        }
        (Err(e), _) | (_, Err(e)) => r.fail("ledger", format!("{}: {e}", path.display()), move_aside.clone()),
    }
    match ledger.unresolved() {
        Ok(open) if open.is_empty() => r.ok("ledger_unresolved", "no operation in flight"),
        Ok(open) => {
            let oldest = open.iter().map(|o| o.intent.created_at).min().unwrap_or_default();
            r.warn(
                "ledger_unresolved",
                format!(
                    "{} operation{} reserved or signed but not settled (oldest from {}); their spend \
                     counts as pending",
                    open.len(),
                    if open.len() == 1 { "" } else { "s" },
                    format_time(oldest)
                ),
                "the next `sak send` or `sak swap` under the session settles them first (resubmits or \
                 resolves each)",
            );
        }
        Err(e) => r.fail("ledger_unresolved", e.to_string(), move_aside),
    }
}

async fn check_session(
    r: &mut Report,
    home: &Home,
    chain: &Probed,
    account: &AccountRecord,
    state: Option<&State>,
    id: u32,
) {
    let record: Option<SessionRecord> = state.and_then(|s| {
        s.networks
            .get(&home.network_name)
            .and_then(|n| n.sessions.iter().find(|x| x.account == account.address && x.id == id).cloned())
    });
    let contract = SakAccount::new(account.address, &chain.provider);
    let view = match contract.getSession(id).call().await {
        Ok(v) => v,
        Err(e) => {
            r.fail("session", format!("getSession({id}) on {}: {e}", account.address), "retry `sak doctor`");
            return;
        }
    };
    let now = match chain.provider.get_block_by_number(alloy::rpc::types::BlockNumberOrTag::Latest).await {
        Ok(Some(b)) => b.header.timestamp,
        _ => {
            r.fail("session", "cannot read the chain's latest block", "retry `sak doctor`");
            return;
        }
    };
    let from = record.as_ref().map_or(0, |rec| rec.block);
    let status =
        match crate::sessions::chain_status(&chain.provider, account.address, id, from, &view, now).await {
            Ok(status) => status,
            Err(e) => {
                r.fail(
                    "session",
                    format!("session #{id}: {e}"),
                    "retry `sak doctor` with an endpoint that serves eth_getLogs",
                );
                return;
            }
        };
    let (after, until) = (view.validAfter.to::<u64>(), view.validUntil.to::<u64>());
    let window = format!("{} .. {}", format_time_from(after, now), format_time_from(until, now));
    let local = if record.is_some() { "" } else { " (not granted from this home)" };
    match status {
        "unknown" => {
            r.fail(
                "session",
                format!("session #{id} does not exist on account {}", account.address),
                "list the account's sessions with `sak session list`",
            );
            return;
        }
        "revoked" => {
            r.fail(
                "session",
                format!("session #{id} is revoked{local}"),
                "grant a new one with `sak session grant --key NAME …`",
            );
            return;
        }
        "expired" => r.fail(
            "session",
            format!("session #{id} expired at {}{local}", format_time_from(until, now)),
            "grant a new one with a later --expires (`sak session grant`)",
        ),
        "not-started" => r.warn(
            "session",
            format!("session #{id} starts at {}{local}", format_time_from(after, now)),
            "wait until then: the contracts refuse it before",
        ),
        _ => {
            let left = until.saturating_sub(now);
            r.ok(
                "session",
                format!("session #{id} active, valid {window} ({} left){local}", human_duration(left)),
            );
        }
    }

    let keys: Vec<(String, Option<Address>)> =
        home.session_keys().unwrap_or_default().into_iter().map(|(n, _, a)| (n, a)).collect();
    match keys.iter().find(|(_, a)| *a == Some(view.signer)) {
        Some((name, _)) if record.as_ref().is_none_or(|rec| rec.key == view.signer) => r.ok(
            "session_key",
            format!("`{name}` ({}) in this home is the session's on-chain signer", view.signer),
        ),
        Some((name, _)) => r.fail(
            "session_key",
            format!(
                "this home recorded key {} for session #{id}, but the chain's signer is {} (`{name}`)",
                record.as_ref().map(|x| x.key).unwrap_or_default(),
                view.signer
            ),
            "use the key the chain names; `sak session list` shows each session's key",
        ),
        None => r.fail(
            "session_key",
            format!(
                "the session's signer {} has no key file in {}",
                view.signer,
                home.paths.session_keys_dir().display()
            ),
            "run the agent where its key is, or grant a session to a key made here (`sak key new`)",
        ),
    }

    match caps(home, chain, account.address, id, record.as_ref(), now).await {
        Ok((lines, exhausted)) if exhausted => r.warn(
            "session_caps",
            lines.join("\n"),
            "a used-up allowance renews at the time shown; grant a larger cap if the agent needs more",
        ),
        Ok((lines, _)) => r.ok("session_caps", lines.join("\n")),
        Err(e) => r.fail("session_caps", format!("{e:#}"), "retry `sak doctor`"),
    }
}

/// What remains of each allowance of the session at chain time `now`: lines, and whether
/// any is used up.
async fn caps(
    home: &Home,
    chain: &Probed,
    account: Address,
    id: u32,
    record: Option<&SessionRecord>,
    now: u64,
) -> crate::Result<(Vec<String>, bool)> {
    let policy = crate::sessions::granted_policy(&chain.provider, account, id, record).await?;
    let contract = SakAccount::new(account, &chain.provider);
    let view = contract.getSession(id).call().await?;
    let mut session = sak_policy::Session::new(id, view.signer, policy);
    let usage = contract.getUsage(id).call().await?;
    session.ops_used = usage.opsUsed.to();
    let book = home.offline_contracts()?;
    let (mut lines, mut exhausted) = (Vec::new(), false);
    for limit in session.policy.spend_limits.clone() {
        let s = contract.getSpend(id, limit.token).call().await?;
        session.spent.insert(
            limit.token,
            sak_policy::Usage { spent: U256::from(s.spent), window: u64::from(s.window.to::<u32>()) },
        );
        let Some((left, renews)) = session.remaining(limit.token, now) else { continue };
        let (name, decimals) = if limit.token == NATIVE {
            ("ETH".to_owned(), Some(18))
        } else {
            (book.name(limit.token), book.decimals(limit.token))
        };
        exhausted |= left.is_zero();
        lines.push(format!(
            "{name}: {} of {} left this {}, renews {}",
            sak_primitives::units::format_amount(left, decimals),
            sak_primitives::units::format_amount(limit.allowance, decimals),
            sak_primitives::units::format_period(u64::from(limit.period)),
            format_time_from(renews, now)
        ));
    }
    if session.policy.max_ops > 0 {
        let left = session.policy.max_ops.saturating_sub(session.ops_used);
        exhausted |= left == 0;
        lines.push(format!("operations: {left} of {} left", session.policy.max_ops));
    }
    if lines.is_empty() {
        lines.push("no spend caps (calls only)".into());
    }
    Ok((lines, exhausted))
}
