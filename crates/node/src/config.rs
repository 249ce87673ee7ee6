//! `anvil.toml`: our own node profiles. anvil never reads TOML; [`Profile::anvil_args`] turns a
//! profile into flags.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    num::{NonZeroU32, NonZeroU64},
    path::{Path, PathBuf},
};

/// The repository's `anvil.toml` (this crate's; the repository root links to it), used when no
/// file is given or found.
const BUILTIN: &str = include_str!("../anvil.toml");
const BUILTIN_NAME: &str = "<built-in anvil.toml>";

const PROFILE_KEYS: &str =
    "chain_id, hardfork, host, port, accounts, balance, block_time, fork_url, fork_block_number";

/// An EVM hardfork sak can run on: EIP-7702 (type-4 transactions) needs Prague or later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardfork {
    /// Prague (Pectra): EIP-7702.
    #[default]
    Prague,
    /// Osaka (Fusaka).
    Osaka,
}

impl Hardfork {
    /// The name anvil's `--hardfork` takes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prague => "prague",
            Self::Osaka => "osaka",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default = "default_chain_id")]
    chain_id: NonZeroU64,
    #[serde(default)]
    hardfork: Hardfork,
    #[serde(default = "default_host")]
    host: IpAddr,
    #[serde(default)]
    port: u16,
    #[serde(default = "default_accounts")]
    accounts: NonZeroU32,
    #[serde(default = "default_balance")]
    balance: u64,
    block_time: Option<NonZeroU64>,
    fork_url: Option<toml::Spanned<String>>,
    fork_block_number: Option<u64>,
}

fn default_chain_id() -> NonZeroU64 {
    NonZeroU64::new(31337).unwrap()
}
fn default_host() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
fn default_accounts() -> NonZeroU32 {
    NonZeroU32::new(10).unwrap()
}
const fn default_balance() -> u64 {
    10_000
}

/// One node profile, resolved (environment references expanded).
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name in `anvil.toml`.
    pub name: String,
    /// Chain id.
    pub chain_id: u64,
    /// EVM hardfork.
    pub hardfork: Hardfork,
    /// Listen address.
    pub host: IpAddr,
    /// Listen port; 0 lets the OS pick a free one.
    pub port: u16,
    /// Number of funded dev accounts.
    pub accounts: u32,
    /// ETH per dev account.
    pub balance_eth: u64,
    /// Seconds between blocks; `None` mines a block per transaction.
    pub block_time: Option<u64>,
    /// RPC URL to fork from. May carry an API key: print it only through [`Profile::fork_origin`].
    pub fork_url: Option<String>,
    /// Block to fork at; `None` is the latest.
    pub fork_block_number: Option<u64>,
    /// Record every EVM step (anvil `--steps-tracing`), so that `debug_traceTransaction` with
    /// the default struct logger returns opcode-level logs for mined transactions. Off by
    /// default: it costs memory for every transaction. Not an `anvil.toml` key.
    pub steps_tracing: bool,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("chain_id", &self.chain_id)
            .field("hardfork", &self.hardfork)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("accounts", &self.accounts)
            .field("balance_eth", &self.balance_eth)
            .field("block_time", &self.block_time)
            .field("fork_url", &self.fork_origin())
            .field("fork_block_number", &self.fork_block_number)
            .field("steps_tracing", &self.steps_tracing)
            .finish()
    }
}

impl Profile {
    /// The profile the test suites use: defaults and a free port. Same as `[profiles.test]`.
    pub fn test() -> Self {
        Self::from_raw("test".into(), toml::from_str("").expect("defaults parse"), |_| None)
            .expect("defaults are valid")
    }

    fn from_raw(
        name: String,
        raw: RawProfile,
        resolve_fork_url: impl FnOnce(&toml::Spanned<String>) -> Option<Result<String>>,
    ) -> Result<Self> {
        let fork_url = raw.fork_url.as_ref().and_then(resolve_fork_url).transpose()?;
        Ok(Self {
            name,
            chain_id: raw.chain_id.get(),
            hardfork: raw.hardfork,
            host: raw.host,
            port: raw.port,
            accounts: raw.accounts.get(),
            balance_eth: raw.balance,
            block_time: raw.block_time.map(NonZeroU64::get),
            fork_url,
            fork_block_number: raw.fork_block_number,
            steps_tracing: false,
        })
    }

    /// Forks `url` (at `block`, or the latest) instead of starting an empty chain.
    pub fn with_fork(mut self, url: impl Into<String>, block: Option<u64>) -> Self {
        self.fork_url = Some(url.into());
        self.fork_block_number = block;
        self
    }

    /// Records opcode-level traces of mined transactions (anvil `--steps-tracing`), for
    /// `debug_traceTransaction` with the struct logger (ERC-7562 checks, gas breakdowns).
    pub const fn with_steps_tracing(mut self) -> Self {
        self.steps_tracing = true;
        self
    }

    /// Listens on `port` (0: any free port).
    pub const fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The fork URL without path, query or credentials (which often hold an API key), for
    /// printing.
    pub fn fork_origin(&self) -> Option<String> {
        self.fork_url.as_deref().map(url_origin)
    }

    /// The anvil command-line flags for this profile.
    pub fn anvil_args(&self) -> Vec<String> {
        let mut args = vec![
            "--host".into(),
            self.host.to_string(),
            "--port".into(),
            self.port.to_string(),
            "--hardfork".into(),
            self.hardfork.as_str().into(),
            "--accounts".into(),
            self.accounts.to_string(),
            "--balance".into(),
            self.balance_eth.to_string(),
        ];
        // A fork keeps the forked chain's id unless one is set; an explicit id would make
        // signatures for the real chain invalid on the fork, so only set it without a fork.
        if self.fork_url.is_none() {
            args.extend(["--chain-id".into(), self.chain_id.to_string()]);
        }
        if let Some(seconds) = self.block_time {
            args.extend(["--block-time".into(), seconds.to_string()]);
        }
        if self.steps_tracing {
            args.push("--steps-tracing".into());
        }
        if let Some(url) = &self.fork_url {
            args.extend(["--fork-url".into(), url.clone()]);
            if let Some(block) = self.fork_block_number {
                args.extend(["--fork-block-number".into(), block.to_string()]);
            }
        }
        args
    }
}

/// Scheme and authority of a URL, without user info: `https://user:key@host/v2/KEY` ->
/// `https://host`.
fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if scheme.is_empty() { host.to_string() } else { format!("{scheme}://{host}") }
}

/// A parsed `anvil.toml`.
#[derive(Debug)]
pub struct NodeConfig {
    source: String,
    text: String,
    profiles: BTreeMap<String, RawProfile>,
}

impl NodeConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { context: format!("reading {}", path.display()), source })?;
        Self::parse(path.display().to_string(), text)
    }

    /// The `anvil.toml` of the sak repository, compiled in.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_NAME.into(), BUILTIN.into()).expect("the built-in anvil.toml is valid")
    }

    /// `anvil.toml` in `dir` or its nearest ancestor that has one.
    pub fn find_from(dir: &Path) -> Option<PathBuf> {
        dir.ancestors().map(|d| d.join("anvil.toml")).find(|p| p.is_file())
    }

    /// Parses `text`; `source` names the file in errors.
    pub fn parse(source: String, text: String) -> Result<Self> {
        let doc: FileDoc = toml::from_str(&text).map_err(|err| {
            let (line, column) = err.span().map_or((0, 0), |s| line_col(&text, s.start));
            let message = err.message().trim().to_string();
            let hint = if message.contains("unknown field") {
                format!("a profile takes only these keys: {PROFILE_KEYS}")
            } else if message.contains("unknown variant") {
                "use one of the values the message lists".to_string()
            } else {
                format!("fix the value or the TOML syntax at line {line}; the keys are documented at the top of the repository's anvil.toml")
            };
            Error::Config { path: source.clone(), line, column, message, hint }
        })?;
        Ok(Self { source, text, profiles: doc.profiles })
    }

    /// The file this configuration was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Names of the profiles defined.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The profile `name`, with `${VAR}` references expanded from the environment.
    pub fn profile(&self, name: &str) -> Result<Profile> {
        self.profile_with_env(name, |var| std::env::var(var).ok())
    }

    fn profile_with_env(&self, name: &str, env: impl Fn(&str) -> Option<String>) -> Result<Profile> {
        let raw = self.profiles.get(name).ok_or_else(|| Error::UnknownProfile {
            path: self.source.clone(),
            name: name.to_string(),
            available: self.profiles.keys().cloned().collect(),
        })?;
        Profile::from_raw(name.to_string(), raw.clone(), |spanned| {
            let value = spanned.get_ref();
            let Some(var) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) else {
                return Some(Ok(value.clone()));
            };
            match env(var) {
                Some(url) if !url.is_empty() => Some(Ok(url)),
                _ => {
                    let (line, column) = line_col(&self.text, spanned.span().start);
                    Some(Err(Error::Config {
                        path: self.source.clone(),
                        line,
                        column,
                        message: format!(
                            "profile `{name}`: fork_url reads the environment variable {var}, which is not set"
                        ),
                        hint: format!("export {var}=<RPC URL> (or pass --fork-url)"),
                    }))
                }
            }
        })
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig> {
        NodeConfig::parse("anvil.toml".into(), text.into())
    }

    #[test]
    fn builtin_has_the_profiles_the_tools_use() {
        let config = NodeConfig::builtin();
        let local = config.profile("local").unwrap();
        assert_eq!((local.chain_id, local.port, local.hardfork), (31337, 8545, Hardfork::Prague));
        assert_eq!(config.profile("test").unwrap().port, 0);
    }

    #[test]
    fn profile_defaults_match_test_profile() {
        let config = parse("[profiles.x]\n").unwrap();
        let x = config.profile("x").unwrap();
        assert_eq!(Profile { name: "test".into(), ..x }, Profile::test());
    }

    #[test]
    fn unknown_key_names_file_line_and_the_valid_keys() {
        let err = parse("[profiles.local]\nchain_id = 1\nchainid = 5\n").unwrap_err();
        let Error::Config { path, line, message, hint, .. } = &err else { panic!("{err:?}") };
        assert_eq!((path.as_str(), *line), ("anvil.toml", 3));
        assert!(message.contains("chainid"), "{message}");
        assert!(hint.contains("chain_id, hardfork"), "{hint}");
        assert!(err.to_string().starts_with("anvil.toml:3:"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse("[profiles.local]\nport = 8545\nhost = 127.0.0.1\n").unwrap_err();
        assert!(matches!(err, Error::Config { line: 3, .. }), "{err:?}");
    }

    #[test]
    fn bad_values_are_refused_with_their_line() {
        for (text, line, needle) in [
            ("[profiles.a]\n\nhardfork = \"london\"\n", 3, "london"),
            ("[profiles.a]\nport = 70000\n", 2, ""),
            ("[profiles.a]\nchain_id = 0\n", 2, ""),
            ("[profiles.a]\naccounts = 0\n", 2, ""),
            ("[profiles.a]\nhost = \"localhost:1\"\n", 2, ""),
        ] {
            let err = parse(text).unwrap_err();
            let Error::Config { line: got, message, .. } = &err else { panic!("{err:?}") };
            assert_eq!(*got, line, "{text}: {err}");
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn unknown_profile_lists_the_defined_ones() {
        let err = NodeConfig::builtin().profile("mainnet").unwrap_err();
        let Error::UnknownProfile { available, .. } = &err else { panic!("{err:?}") };
        assert_eq!(available, &["fork", "local", "test"]);
        assert!(err.hint().unwrap().contains("local"));
    }

    #[test]
    fn fork_url_is_read_from_the_environment_and_never_printed_whole() {
        let config = parse("[profiles.f]\nfork_url = \"${MY_RPC}\"\n").unwrap();
        let url = "https://user:pw@eth.example/v2/SECRETKEY";
        let f = config.profile_with_env("f", |v| (v == "MY_RPC").then(|| url.into())).unwrap();
        assert_eq!(f.fork_url.as_deref(), Some(url));
        assert_eq!(f.fork_origin().as_deref(), Some("https://eth.example"));
        assert!(!format!("{f:?}").contains("SECRETKEY"));
        let args = f.anvil_args();
        assert!(!args.contains(&"--chain-id".to_string()), "a fork keeps its chain id");

        let err = config.profile_with_env("f", |_| None).unwrap_err();
        assert!(matches!(err, Error::Config { line: 2, .. }), "{err:?}");
        assert!(err.hint().unwrap().contains("MY_RPC"));
    }

    #[test]
    fn anvil_args_carry_every_setting() {
        let p = parse("[profiles.p]\nchain_id = 7\nport = 9\nblock_time = 2\naccounts = 3\nbalance = 5\n")
            .unwrap()
            .profile("p")
            .unwrap();
        assert_eq!(
            p.anvil_args().join(" "),
            "--host 127.0.0.1 --port 9 --hardfork prague --accounts 3 --balance 5 --chain-id 7 --block-time 2"
        );
        assert!(!p.anvil_args().contains(&"--steps-tracing".to_string()), "off unless asked");
        assert!(p.with_steps_tracing().anvil_args().ends_with(&["--steps-tracing".to_string()]));
    }
}
