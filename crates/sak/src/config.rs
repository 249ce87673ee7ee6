//! Where sak keeps its files, and the config file `sak init` writes.
//!
//! ```text
//!  $SAK_HOME/config.toml          or  $XDG_CONFIG_HOME/sak/config.toml (~/.config/sak)
//!  $SAK_HOME/data/                or  $XDG_DATA_HOME/sak/ (~/.local/share/sak)
//!     keys/owner.json               the owner key (Web3 Secret Storage v3, 0600)
//!     keys/session/<name>.json      session keys
//!     ledger.sqlite                 every signing decision and spend (write-ahead)
//!     state.json                    accounts and sessions created here, per network
//!     node.json                     the running `sak node up` (removed when it stops)
//! ```

use crate::error::{Result, WrapErr, bail, err};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// Sepolia's chain id.
pub const SEPOLIA_CHAIN_ID: u64 = 11_155_111;
/// The chain id of `sak node up`'s `local` profile.
pub const LOCAL_CHAIN_ID: u64 = 31_337;

/// Every path sak reads or writes.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `config.toml`.
    pub config_file: PathBuf,
    /// Keys, the ledger, state.json and node.json.
    pub data_dir: PathBuf,
}

impl Paths {
    /// `$SAK_HOME` if set (one directory for everything: tests, several identities), else the
    /// XDG base directories.
    pub fn discover() -> Result<Self> {
        let env_dir = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(home) = env_dir("SAK_HOME") {
            return Ok(Self { config_file: home.join("config.toml"), data_dir: home.join("data") });
        }
        let home = env_dir("HOME");
        let base = |xdg: &str, fallback: &str| {
            env_dir(xdg).or_else(|| home.as_ref().map(|h| h.join(fallback))).ok_or_else(|| {
                err!("neither $HOME nor $SAK_HOME is set: set SAK_HOME to a directory for sak's files")
            })
        };
        Ok(Self {
            config_file: base("XDG_CONFIG_HOME", ".config")?.join("sak").join("config.toml"),
            data_dir: base("XDG_DATA_HOME", ".local/share")?.join("sak"),
        })
    }

    /// `keys/`.
    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join("keys")
    }

    /// The owner keystore.
    pub fn owner_key(&self) -> PathBuf {
        self.keys_dir().join("owner.json")
    }

    /// Names the hardware wallet that holds the owner key (`sak owner use-device`).
    pub fn owner_device(&self) -> PathBuf {
        self.keys_dir().join("owner-device.json")
    }

    /// `keys/session/`: one keystore per session key.
    pub fn session_keys_dir(&self) -> PathBuf {
        self.keys_dir().join("session")
    }

    /// Caches of chain indexes (`grants`): deleting them loses nothing.
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    /// The spend ledger (SQLite).
    pub fn ledger(&self) -> PathBuf {
        self.data_dir.join("ledger.sqlite")
    }

    /// `state.json`: accounts and sessions made here, per network.
    pub fn state(&self) -> PathBuf {
        self.data_dir.join("state.json")
    }

    /// `node.json`: the running `sak node up`.
    pub fn node_file(&self) -> PathBuf {
        self.data_dir.join("node.json")
    }
}

/// What kind of chain a network is: it decides what sak may do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// The chain of `sak node up` (anvil): dev keys, faucet, `--no-preflight`.
    Local,
    /// `sak node up --profile fork`: anvil forking a public chain.
    Fork,
    /// Ethereum Sepolia.
    Sepolia,
    /// Any other RPC endpoint.
    Remote,
}

impl NetworkKind {
    /// Whether the chain is a throwaway anvil (local or a fork of a public chain).
    pub fn is_anvil(self) -> bool {
        matches!(self, Self::Local | Self::Fork)
    }
}

/// One `[networks.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// What kind of chain it is.
    pub kind: NetworkKind,
    /// The RPC URL; `${VAR}` reads it from the environment (keep API keys out of files).
    /// Local and fork networks use the running `sak node up`'s URL when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_url: Option<String>,
    /// An ERC-4337 bundler (ERC-7769) for `--via bundler`; `${VAR}` as above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundler_url: Option<String>,
    /// The chain id the endpoint must report (checked before anything is signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// Blocks an operation or owner transaction must be under before sak reports it included
    /// (1: its own block; the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
    /// Names usable in policies and commands (`tUSD`, `router`...) on this network.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub book: BTreeMap<String, BookEntry>,
}

impl NetworkConfig {
    /// [`confirmations`](Self::confirmations), at least 1.
    pub fn depth(&self) -> u64 {
        self.confirmations.unwrap_or(1).max(1)
    }
}

/// An address-book entry of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookEntry {
    /// The address.
    pub address: alloy::primitives::Address,
    /// A token's decimals (amounts like `"250.5"` need them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
}

/// `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The network used when `--network` is not given.
    pub network: String,
    /// The environment variable that holds the keystore password (unless `--password-file`
    /// or `--password-fd` is given).
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// The spend ledger: a PostgreSQL URL (`postgres://user@host:5432/db`; `${VAR}` reads it
    /// from the environment) that a fleet of workers shares; absent, the SQLite file in the
    /// data folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
    /// The networks by name.
    pub networks: BTreeMap<String, NetworkConfig>,
}

fn default_password_env() -> String {
    "SAK_PASSWORD".into()
}

impl Default for Config {
    fn default() -> Self {
        let net = |kind, rpc: Option<&str>, bundler: Option<&str>, chain_id| NetworkConfig {
            kind,
            rpc_url: rpc.map(Into::into),
            bundler_url: bundler.map(Into::into),
            chain_id,
            confirmations: None,
            book: BTreeMap::new(),
        };
        Self {
            network: "local".into(),
            password_env: default_password_env(),
            ledger: None,
            networks: BTreeMap::from([
                (
                    "local".into(),
                    net(NetworkKind::Local, Some("http://127.0.0.1:8545"), None, Some(LOCAL_CHAIN_ID)),
                ),
                ("fork".into(), net(NetworkKind::Fork, Some("http://127.0.0.1:8545"), None, None)),
                (
                    "sepolia".into(),
                    net(
                        NetworkKind::Sepolia,
                        Some("${SEPOLIA_RPC_URL}"),
                        Some("${SEPOLIA_BUNDLER_URL}"),
                        Some(SEPOLIA_CHAIN_ID),
                    ),
                ),
            ]),
        }
    }
}

const HEADER: &str = "\
# sak configuration, written by `sak init` (edit freely; `sak doctor` checks it).
#
# network       the network used when --network is not given
# password_env  the environment variable holding the keystore password
# ledger        the spend ledger a fleet shares: \"postgres://user@host:5432/db\" or \"${VAR}\"
#               (without it: the SQLite file in the data folder)
# [networks.NAME]
#   kind         local | fork | sepolia | remote
#   rpc_url      \"${VAR}\" reads the URL from the environment (keep API keys out of this file)
#   bundler_url  an ERC-4337 bundler for `sak send --via bundler`
#   chain_id     what the endpoint must report
#   confirmations  blocks an operation must be under before sak reports it included (default 1)
#   book         names for addresses: tUSD = { address = \"0x…\", decimals = 6 }

";

impl Config {
    /// Reads the config file; a missing file means the defaults (`sak init` is optional for the
    /// local network).
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).wrap_err_with(|| format!("reading {}", path.display())),
        };
        let config: Self = toml::from_str(&text).map_err(|e| {
            crate::Hinted::new(
                format!("the config file is malformed: {}: {}", path.display(), e.message().trim_end()),
                "fix it, or run `sak init --force` to rewrite it with the default networks",
            )
        })?;
        if !config.networks.contains_key(&config.network) {
            bail!(
                "{}: the default network `{}` has no [networks.{}] table (known: {})",
                path.display(),
                config.network,
                config.network,
                config.networks.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        Ok(config)
    }

    /// Writes the file atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = format!("{HEADER}{}", toml::to_string_pretty(self)?);
        crate::store::write_atomic(path, text.as_bytes(), 0o644)
    }

    /// The named network (or the default one).
    pub fn network(&self, name: Option<&str>) -> Result<(String, NetworkConfig)> {
        let name = name.unwrap_or(&self.network);
        match self.networks.get(name) {
            Some(n) => Ok((name.to_owned(), n.clone())),
            None => Err(crate::Hinted::new(
                format!(
                    "unknown network `{name}` (configured: {})",
                    self.networks.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                format!("add it with `sak init --network {name} --rpc-url URL --chain-id ID`"),
            )
            .into()),
        }
    }
}

/// Expands `${VAR}` in a configured URL. A missing variable is an error naming it.
pub fn expand_env(value: &str, what: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').ok_or_else(|| err!("{what}: unclosed `${{` in {value:?}"))?;
        let var = &rest[start + 2..start + end];
        let found = std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            crate::Hinted::new(
                format!("{what} comes from ${var}, which is not set"),
                format!("export {var}=<url> (your provider's endpoint; it stays out of sak's files)"),
            )
        })?;
        out.push_str(&rest[..start]);
        out.push_str(&found);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Scheme and host of a URL, never its path or query (where API keys live).
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            let more = if rest.len() > authority.len() { "/…" } else { "" };
            format!("{scheme}://{host}{more}")
        }
        None => "<url>".into(),
    }
}

/// `text` with every URL in it reduced by [`redact_url`]: for error messages from libraries
/// that quote the URL they failed on (reqwest does), whose path may hold an API key.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["http://", "https://", "ws://", "wss://"].iter().filter_map(|p| rest.find(p)).min()
    {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ',' | '>' | ']'))
            .map_or(rest.len(), |e| at + e);
        out.push_str(&redact_url(&rest[at..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        Config::default().save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("${SEPOLIA_RPC_URL}"), "{text}");
    }

    #[test]
    fn a_missing_file_is_the_default_and_a_bad_one_is_an_error_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        std::fs::write(&path, "network = \"local\"\nnetworkz = {}\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("config.toml") && err.contains("networkz"), "{err}");
    }

    #[test]
    fn env_expansion_names_the_missing_variable() {
        // SAFETY-free: a variable name no test sets.
        let err = expand_env("${SAK_TEST_SURELY_UNSET_VAR}/x", "sepolia rpc_url").unwrap_err().to_string();
        assert!(err.contains("SAK_TEST_SURELY_UNSET_VAR"), "{err}");
        assert_eq!(expand_env("http://a", "x").unwrap(), "http://a");
    }

    #[test]
    fn redaction_keeps_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://eth-sepolia.g.alchemy.com/v2/SECRET"),
            "https://eth-sepolia.g.alchemy.com/…"
        );
        assert_eq!(redact_url("https://user:pw@host:8545"), "https://host:8545");
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact_urls_in(
                "error sending request for url (https://x.io/v2/KEY?a=b): refused, see http://127.0.0.1:1"
            ),
            "error sending request for url (https://x.io/…): refused, see http://127.0.0.1:1"
        );
    }
}
