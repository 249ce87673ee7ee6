//! sak's small files: `state.json` (accounts and sessions made here) and `node.json` (the
//! running `sak node up`). Every write is atomic: a crash leaves the old file or the new one.

use crate::{
    Hinted,
    error::{Result, WrapErr},
};
use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

/// Writes `bytes` to `path` through a temporary file in the same directory (created with
/// `mode`), fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.wrap_err_with(|| format!("writing {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            let p = path.display();
            Hinted::new(
                format!("{p} is malformed: {e}"),
                format!(
                    "move it aside (`mv {p} {p}.bad`) and run the command again: what is on chain \
                     (accounts, sessions, spends) is not lost, and `sak node up` writes a new node file"
                ),
            )
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
    }
}

/// Where a home's spend ledger is: config.toml's `ledger` (a PostgreSQL URL, `${VAR}`
/// expanded), else the SQLite file in the data folder.
#[derive(Debug, Clone)]
pub enum LedgerAt {
    /// The SQLite file.
    File(std::path::PathBuf),
    /// A PostgreSQL database (the URL may hold a password: show it with
    /// [`redact_url`](crate::config::redact_url)).
    Postgres(String),
}

impl LedgerAt {
    /// Where the home's ledger is.
    pub fn of(paths: &crate::config::Paths, config: &crate::config::Config) -> Result<Self> {
        let Some(url) = &config.ledger else { return Ok(Self::File(paths.ledger())) };
        let url = crate::config::expand_env(url, "config.toml's ledger")?;
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(Hinted::new(
                format!("config.toml's ledger is {}, not a PostgreSQL URL", crate::config::redact_url(&url)),
                "set ledger = \"postgres://user@host:5432/db\" (or \"${VAR}\"), or remove it to keep the ledger \
                 in the data folder",
            )
            .into());
        }
        Ok(Self::Postgres(url))
    }

    /// What to call it in messages (no password).
    pub fn shown(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Postgres(url) => crate::config::redact_url(url),
        }
    }

    /// Opens the ledger (an SQLite file is created if missing), or says what to do.
    pub fn open(&self) -> Result<sak_signer::ledger::AnyLedger> {
        use sak_signer::ledger::{AnyLedger, PostgresLedger};
        match self {
            Self::File(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
                }
                open_sqlite(path).map(AnyLedger::Sqlite)
            }
            Self::Postgres(url) => PostgresLedger::open(url).map(AnyLedger::Postgres).map_err(|e| {
                Hinted::new(
                    format!("cannot open the PostgreSQL spend ledger at {}: {}", self.shown(), causes(&e)),
                    "check that the server runs and that config.toml's `ledger` URL (user, database, port) is \
                     right; the database must exist (createdb)",
                )
                .into()
            }),
        }
    }

    /// The ledger if there is one: an SQLite file not created yet is `None` (nothing signed
    /// here); a PostgreSQL ledger is always opened.
    pub fn existing(&self) -> Result<Option<sak_signer::ledger::AnyLedger>> {
        match self {
            Self::File(path) if !path.exists() => Ok(None),
            _ => self.open().map(Some),
        }
    }
}

/// An error with its causes, joined.
fn causes(e: &sak_signer::Error) -> String {
    let mut causes = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
}

/// The spend ledger at `path`, or an error that says what to do: a damaged file is moved
/// aside by the user, never by sak (it holds operations in flight and the audit history).
pub fn open_sqlite(path: &Path) -> Result<sak_signer::ledger::SqliteLedger> {
    sak_signer::ledger::SqliteLedger::open(path).map_err(|e| {
        let text = causes(&e);
        let p = path.display();
        let hint = if text.contains("not a database") || matches!(e, sak_signer::Error::Corrupt { .. }) {
            format!(
                "the ledger file is damaged: restore it from a backup, or move it aside (`mv {p} {p}.bad`) \
                 to start a fresh one, which takes spends from the chain's counters but forgets \
                 operations in flight and the audit history (keep the old file)"
            )
        } else {
            "check the file's permissions and free disk space; never delete it while operations are in flight"
                .to_owned()
        };
        Hinted::new(format!("cannot open the spend ledger {p}: {text}"), hint).into()
    })
}

/// Whether `name` may name a key or an account in a home: 1 to 64 of ASCII letters, digits,
/// `-`, `_` and `.`, not starting with `.` or `-` (a file name that hides or reads as a flag).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The kind of account an owner uses on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A `SakAccount` deployed by `SakAccountFactory` (address known before deployment).
    Smart,
    /// The owner's own EOA, delegated to `Sak7702Account` with EIP-7702.
    #[cfg_attr(feature = "clap", value(name = "7702"))]
    #[serde(rename = "7702")]
    Eip7702,
    /// A modular (ERC-7579) `Sak7579Account` deployed by `Sak7579AccountFactory`, its sessions
    /// kept by the `SessionKeyValidator` module.
    #[cfg_attr(feature = "clap", value(name = "7579"))]
    #[serde(rename = "7579")]
    Erc7579,
}

impl AccountKind {
    /// `smart`, `7702` or `7579`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smart => "smart",
            Self::Eip7702 => "7702",
            Self::Erc7579 => "7579",
        }
    }

    /// Whether the account's sessions are kept by the `SessionKeyValidator` module (and its
    /// owner acts through owner operations only).
    pub fn is_modular(self) -> bool {
        self == Self::Erc7579
    }
}

/// An account created (or adopted) with `sak account create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Smart account or delegated EOA.
    pub kind: AccountKind,
    /// The account's address.
    pub address: Address,
    /// Its owner.
    pub owner: Address,
    /// The chain it is on.
    pub chain_id: u64,
    /// The factory salt (smart accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<B256>,
}

/// A session granted from here: what the chain does not say (which key file, when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session's id on the account.
    pub id: u32,
    /// The account it acts for.
    pub account: Address,
    /// The chain.
    pub chain_id: u64,
    /// The session key's address.
    pub key: Address,
    /// The key's name in the key directory.
    pub key_name: String,
    /// The grant transaction and its block (where event scans start).
    pub tx: B256,
    /// The grant's block.
    pub block: u64,
    /// Unix seconds (chain time) of the grant.
    pub granted_at: u64,
    /// Unix seconds (chain time) at which `key` took the session over (`sak session rotate`:
    /// same session, same counters, a new key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<u64>,
}

impl SessionRecord {
    /// Since when the current key holds the session: the grant, or its last rotation.
    pub fn key_since(&self) -> u64 {
        self.rotated_at.unwrap_or(self.granted_at)
    }
}

/// `state.json`: per network name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    /// Per network name.
    pub networks: BTreeMap<String, NetworkState>,
    /// What a network held before its chain was reset (kept, never deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredNetwork>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// What a home recorded for one network.
pub struct NetworkState {
    /// The identity of the chain this state belongs to: its genesis block hash, or for an anvil
    /// fork the hash of its genesis and instance (`sak_signer::settle::chain_identity`). With
    /// the chain id, it tells chains apart: a restarted anvil or fork, or a reset testnet, keeps
    /// the id, not this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<B256>,
    /// The accounts of this network by name (`sak account create --name`, `--account NAME`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, AccountRecord>,
    /// The name commands use without `--account`: the first account created, until
    /// `sak account use` names another. Nothing else changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<String>,
    /// The single account of homes written before accounts had names: read once, kept as
    /// `main` from then on.
    #[serde(default, skip_serializing)]
    account: Option<AccountRecord>,
    #[serde(default)]
    /// Sessions granted from here.
    pub sessions: Vec<SessionRecord>,
}

/// The name an account gets when it is a network's first and none is given.
pub const FIRST_ACCOUNT: &str = "main";

impl NetworkState {
    /// Moves a pre-names `account` under [`FIRST_ACCOUNT`].
    fn upgrade(&mut self) {
        if let Some(account) = self.account.take() {
            self.accounts.entry(FIRST_ACCOUNT.to_owned()).or_insert(account);
            self.default_account.get_or_insert_with(|| FIRST_ACCOUNT.to_owned());
        }
    }

    /// The account `--account` names (a name, or the address of a named account), else the
    /// default: its name and record. Errors say which names there are.
    pub fn pick(&self, wanted: Option<&str>, network: &str) -> Result<(String, AccountRecord), Box<Hinted>> {
        let names = || self.accounts.keys().cloned().collect::<Vec<_>>().join(", ");
        let found = match wanted {
            Some(w) => self.accounts.get_key_value(w).or_else(|| {
                let address = w.parse::<Address>().ok()?;
                self.accounts.iter().find(|(_, a)| a.address == address)
            }),
            None => self.default_account.as_deref().and_then(|d| self.accounts.get_key_value(d)),
        };
        if let Some((name, record)) = found {
            return Ok((name.clone(), record.clone()));
        }
        Err(Box::new(match (wanted, self.accounts.is_empty()) {
            (_, true) => Hinted::new(
                format!("no account on network `{network}` yet"),
                "create one with `sak account create --kind smart` (or --kind 7702)",
            ),
            (Some(w), false) => Hinted::new(
                format!("no account `{w}` on network `{network}` (its accounts: {})", names()),
                "pick one of them with --account NAME; `sak account list` shows them",
            ),
            (None, false) => Hinted::new(
                format!("network `{network}` has no default account (its accounts: {})", names()),
                "pick one with --account NAME, or make one the default with `sak account use NAME`",
            ),
        }))
    }
}

/// A network's state from a chain that is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiredNetwork {
    /// The network's name.
    pub network: String,
    /// Unix seconds (this machine's clock) when sak noticed the reset.
    pub retired_at: u64,
    #[serde(flatten)]
    /// What it held.
    pub state: NetworkState,
}

impl State {
    /// Reads the file (missing: empty).
    pub fn load(path: &Path) -> Result<Self> {
        let mut state: Self = read_json(path)?.unwrap_or_default();
        state.networks.values_mut().for_each(NetworkState::upgrade);
        state.retired.iter_mut().for_each(|r| r.state.upgrade());
        Ok(state)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes(), 0o600)
    }

    /// The last retired state of `network` from a chain other than `identity`, and the names of its
    /// accounts the network does not hold now.
    pub fn retired_accounts(&self, network: &str, identity: B256) -> Option<(&RetiredNetwork, Vec<String>)> {
        let old = self
            .retired
            .iter()
            .filter(|r| r.network == network && r.state.genesis != Some(identity))
            .max_by_key(|r| r.retired_at)?;
        let now = self.networks.get(network);
        let names = old
            .state
            .accounts
            .keys()
            .filter(|n| now.is_none_or(|net| !net.accounts.contains_key(*n)))
            .cloned()
            .collect();
        Some((old, names))
    }

    /// Applies `change` to the freshly read file and writes it back: a read-modify-write that
    /// never drops what another command wrote in between reads.
    pub fn update(path: &Path, change: impl FnOnce(&mut Self)) -> Result<Self> {
        let mut state = Self::load(path)?;
        change(&mut state);
        state.save(path)?;
        Ok(state)
    }
}

/// `node.json`: written by `sak node up` once the stack is deployed, removed when it stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeFile {
    /// The `anvil.toml` profile.
    pub profile: String,
    /// The node's RPC URL.
    pub rpc_url: String,
    /// Its chain id.
    pub chain_id: u64,
    /// The `sak node up` process (stopping it stops anvil).
    pub pid: u32,
    /// The anvil process.
    pub anvil_pid: u32,
    /// Unix seconds when it started.
    pub started_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The forked RPC (fork profile).
    pub fork: Option<String>,
    /// The deployed local stack.
    pub contracts: sak_node::Deployment,
    /// anvil's first dev key: public test key material (`sak node fund` pays with it), never
    /// usable on a real network.
    pub dev_key: String,
}

impl NodeFile {
    /// What a home records of `kit`, a chain the process `pid` keeps running (`sak node up`
    /// records itself): the home's local network then reaches it, and stops at once when
    /// `pid` ends.
    pub fn of(kit: &sak_node::Kit, pid: u32) -> Self {
        use alloy::signers::local::PrivateKeySigner;
        Self {
            profile: kit.profile().name.clone(),
            rpc_url: kit.rpc_url().to_owned(),
            chain_id: kit.chain_id(),
            pid,
            anvil_pid: kit.node().pid(),
            started_at: sak_primitives::units::unix_now(),
            fork: kit.profile().fork_origin(),
            contracts: *kit.deployment(),
            dev_key: kit
                .dev_signers()
                .first()
                .map(|s: &PrivateKeySigner| format!("0x{}", alloy::hex::encode(s.credential().to_bytes())))
                .unwrap_or_default(),
        }
    }

    /// The recorded node, if its `sak node up` process is still alive.
    pub fn load_live(path: &Path) -> Result<Option<Self>> {
        Ok(read_json::<Self>(path)?.filter(|n| pid_alive(n.pid)))
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes(), 0o600)
    }
}

/// Whether a process with this pid is running (a zombie, exited but not yet reaped by its
/// parent, is not).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{FIRST_ACCOUNT, State};
    use alloy::primitives::Address;

    /// A home written before accounts had names keeps its account, as `main` and the default;
    /// the old field is not written back.
    #[test]
    fn an_unnamed_account_becomes_main() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let a = Address::repeat_byte(0xaa);
        let old = serde_json::json!({"networks": {"local": {
            "account": {"kind": "smart", "address": a, "owner": a, "chain_id": 31337},
            "sessions": []
        }}});
        std::fs::write(&path, old.to_string()).unwrap();
        let state = State::load(&path).unwrap();
        let net = &state.networks["local"];
        assert_eq!(net.pick(None, "local").unwrap().0, FIRST_ACCOUNT);
        assert_eq!(net.pick(Some(&a.to_string()), "local").unwrap().1.address, a);
        assert!(net.pick(Some("other"), "local").unwrap_err().hint.contains("--account"));
        state.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"account\":") && text.contains("\"default_account\": \"main\""), "{text}");
    }
}
