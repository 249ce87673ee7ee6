//! [`Home`]: what every act starts from: the paths, the config, the chosen network and
//! account, and (on demand) the chain connection, the owner and session keys.

use crate::{
    Error, Hinted, Result,
    config::{Config, NetworkConfig, NetworkKind, Paths, expand_env, redact_url},
    error::{WrapErr, bail, err},
    owner::{DeviceFile, Owner},
    store::{AccountRecord, NodeFile, SessionRecord, State},
};
use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use sak_contracts::{ENTRY_POINT_V08, SakAddresses};
use sak_primitives::AddressBook;
use sak_signer::keystore::{self, Password, PasswordSource};
use sak_userop::{RetryConfig, retrying_provider};
use serde::Serialize;
use std::{path::PathBuf, time::Duration};

mod chain;
mod fund;
mod keys;

pub use chain::{Chain, Contracts, Retired};
pub use keys::{DAMAGED_KEY_HINT, keystore_address, redacted_error};

/// Where session keys' passphrase is read from unless [`Options::key_password_env`] names
/// another.
pub const KEY_PASSWORD_ENV: &str = "SAK_KEY_PASSWORD";

/// How to open a [`Home`]: each `None` takes the config's (or sak's) default.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The network from the config [default: the config's `network`].
    pub network: Option<String>,
    /// The account to act on, by name or address [default: the network's default account].
    pub account: Option<String>,
    /// An RPC URL to use instead of the network's.
    pub rpc_url: Option<String>,
    /// Where the owner keystore's password comes from [default: the config's `password_env`].
    pub password: Option<PasswordSource>,
    /// The environment variable that holds session keys' passphrase [default:
    /// [`KEY_PASSWORD_ENV`]].
    pub key_password_env: Option<String>,
    /// Where progress on long waits goes (scans, forks, probes) [default: nowhere].
    pub progress: Option<Progress>,
    /// Asks a person for session keys' passphrase when the environment does not hold it (a
    /// terminal prompt without echo) [default: never asked].
    pub ask: Option<Ask>,
}

/// Asks a person for a secret: given the prompt, returns what was typed.
#[derive(Clone)]
pub struct Ask(pub std::sync::Arc<AskFn>);

/// What [`Ask`] calls: the prompt in, what was typed out.
pub type AskFn = dyn Fn(&str) -> std::io::Result<String> + Send + Sync;

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ask(..)")
    }
}

/// A sink for progress lines: what a long wait is doing, for a person watching.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl Options {
    /// Acts on network `name` of the config.
    pub fn network(mut self, name: impl Into<String>) -> Self {
        self.network = Some(name.into());
        self
    }

    /// Acts on the account with this name (or address).
    pub fn account(mut self, name: impl Into<String>) -> Self {
        self.account = Some(name.into());
        self
    }

    /// Reaches the chain at `url` instead of the network's RPC.
    pub fn rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// Reads the owner keystore's password from `source`.
    pub fn password(mut self, source: PasswordSource) -> Self {
        self.password = Some(source);
        self
    }

    /// Asks a person for session keys' passphrase with `ask` when the environment lacks it.
    pub fn ask(mut self, ask: impl Fn(&str) -> std::io::Result<String> + Send + Sync + 'static) -> Self {
        self.ask = Some(Ask(std::sync::Arc::new(ask)));
        self
    }

    /// Sends progress lines to `sink`.
    pub fn progress(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Some(Progress(std::sync::Arc::new(sink)));
        self
    }

    /// Reads session keys' passphrase from the environment variable `var`.
    pub fn key_password_env(mut self, var: impl Into<String>) -> Self {
        self.key_password_env = Some(var.into());
        self
    }
}

/// A sak home: its files, its config, and the network and account chosen to act on.
///
/// ```no_run
/// # async fn demo() -> sak::Result<()> {
/// let home = sak::Home::open(sak::Options::default())?;
/// let chain = home.chain().await?;
/// let account = home.account(chain.chain_id)?;
/// println!("{} on {} (chain {})", account.address, home.network_name, chain.chain_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Home {
    /// Where its files are.
    pub paths: Paths,
    /// `config.toml`.
    pub config: Config,
    /// The chosen network's name.
    pub network_name: String,
    /// The chosen network.
    pub network: NetworkConfig,
    /// How it was opened.
    pub options: Options,
}

impl Home {
    /// The home at `$SAK_HOME`, else in the XDG directories ([`Paths::discover`]).
    pub fn open(options: Options) -> Result<Self> {
        Self::at(Paths::discover()?, options)
    }

    /// The home whose files are at `paths`.
    pub fn at(paths: Paths, options: Options) -> Result<Self> {
        let config = Config::load(&paths.config_file)?;
        let (network_name, network) = config.network(options.network.as_deref())?;
        Ok(Self { paths, config, network_name, network, options })
    }

    /// Tells the progress sink ([`Options::progress`]) what a long wait is doing.
    pub fn progress(&self, line: &str) {
        if let Some(Progress(sink)) = &self.options.progress {
            sink(line);
        }
    }

    /// The network's kind.
    pub fn kind(&self) -> NetworkKind {
        self.network.kind
    }

    /// The owner keystore's password, from [`Options::password`], else the configured
    /// environment variable.
    pub fn password(&self) -> Result<Password> {
        let source = self
            .options
            .password
            .clone()
            .unwrap_or_else(|| PasswordSource::Env(self.config.password_env.clone()));
        Ok(source.read()?)
    }

    /// The environment variable that holds session keys' passphrase.
    pub fn key_password_env(&self) -> &str {
        self.options.key_password_env.as_deref().unwrap_or(KEY_PASSWORD_ENV)
    }

    /// Session keys' passphrase (never the owner's password): from [`Self::key_password_env`],
    /// else asked ([`Options::ask`]) when the variable is sak's default and unset.
    pub fn key_password(&self) -> Result<Password> {
        self.key_password_asking(false)
    }

    /// [`Self::key_password`] for a key about to be made: asked twice (a mismatch makes no key).
    pub fn new_key_password(&self) -> Result<Password> {
        self.key_password_asking(true)
    }

    fn key_password_asking(&self, twice: bool) -> Result<Password> {
        let var = self.key_password_env();
        if let Some(Ask(ask)) = &self.options.ask
            && self.options.key_password_env.is_none()
            && std::env::var_os(var).is_none()
        {
            let typed =
                zeroize::Zeroizing::new(ask("session key passphrase: ").wrap_err("reading the passphrase")?);
            if twice
                && *zeroize::Zeroizing::new(ask("again, to confirm: ").wrap_err("reading the passphrase")?)
                    != *typed
            {
                bail!(Hinted::new(
                    "the two passphrases differ: no key was made",
                    "run the command again and type the same passphrase twice",
                ));
            }
            return Ok(Password::new(typed.as_bytes().to_vec())?);
        }
        PasswordSource::Env(var.to_owned()).read().map_err(|e| match e {
            sak_signer::Error::PasswordEnvMissing { .. } => Hinted::new(
                format!("no session key passphrase: ${var} is not set"),
                format!(
                    "export {var}=… (the passphrase of this home's session keys, not the owner's password), \
                     or run on a terminal to be asked"
                ),
            )
            .into(),
            e => Error::from(e),
        })
    }

    /// The running `sak node up` of this home, for local and fork networks.
    pub fn node(&self) -> Result<Option<NodeFile>> {
        if !self.kind().is_anvil() {
            return Ok(None);
        }
        NodeFile::load_live(&self.paths.node_file())
    }

    /// Where the chain is: `--rpc-url`, else the running `sak node up` (local and fork), else
    /// the config.
    pub fn rpc_url(&self) -> Result<String> {
        if let Some(url) = &self.options.rpc_url {
            return Ok(url.clone());
        }
        if let Some(node) = self.node()? {
            return Ok(node.rpc_url);
        }
        let url = self.network.rpc_url.as_deref().ok_or_else(|| {
            err!(
                "network `{}` has no rpc_url: add one to {}",
                self.network_name,
                self.paths.config_file.display()
            )
        })?;
        expand_env(url, &format!("network `{}`'s rpc_url", self.network_name))
    }

    /// The bundler URL for `--via bundler` (None when not configured).
    pub fn bundler_url(&self) -> Result<Option<String>> {
        match &self.network.bundler_url {
            Some(url) => expand_env(url, &format!("network `{}`'s bundler_url", self.network_name)).map(Some),
            None => Ok(None),
        }
    }

    /// Connects, checks the chain id against the config (and the node file), and finds the
    /// contracts.
    pub async fn chain(&self) -> Result<Chain> {
        let rpc_url = self.rpc_url()?;
        let retry = RetryConfig {
            max_retries: 6,
            initial_backoff: Duration::from_millis(200),
            request_timeout: Duration::from_secs(15),
            deadline: Duration::from_secs(40),
        };
        let provider = retrying_provider(&rpc_url, retry)?;
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            let hint = if self.kind().is_anvil() {
                "start the local chain with `sak node up` (or pass --rpc-url)"
            } else {
                "check the URL and your network; `sak doctor` checks every endpoint"
            };
            Error::from(crate::Hinted::new(
                format!(
                    "cannot reach the {} RPC at {}: {}",
                    self.network_name,
                    redact_url(&rpc_url),
                    redacted_error(&e, &rpc_url)
                ),
                hint,
            ))
        })?;
        let node = self.node()?;
        let expected = self.network.chain_id.or(node.as_ref().map(|n| n.chain_id));
        if let Some(expected) = expected
            && expected != chain_id
        {
            bail!(crate::Hinted::new(
                format!(
                    "wrong chain: network `{}` expects chain id {expected}, the endpoint {} reports {chain_id}",
                    self.network_name,
                    redact_url(&rpc_url)
                ),
                "pick the right network with --network, or fix chain_id/rpc_url in the config",
            ));
        }
        let (identity, retired) = self.check_chain_identity(&provider, &rpc_url).await?;
        let contracts = self.contracts_with(node.filter(|n| n.chain_id == chain_id));
        Ok(Chain { provider, rpc_url, chain_id, identity, contracts, retired })
    }

    /// Ties this network's recorded state to the chain's identity: its genesis block, or for an
    /// anvil fork its genesis and instance ([`sak_signer::settle::chain_identity`]). Another
    /// identity under the same chain id is a new chain (a restarted local node or fork, a reset
    /// testnet): the accounts and sessions recorded for the old one are moved to `retired` in
    /// state.json (kept, never deleted) and returned, for the caller to tell plainly. The ledger
    /// does the same for operations in flight when a signer binds to the chain.
    async fn check_chain_identity(
        &self,
        provider: &DynProvider,
        rpc_url: &str,
    ) -> Result<(B256, Option<Retired>)> {
        let genesis = sak_signer::settle::chain_identity(provider)
            .await
            .map_err(|e| err!("reading the chain's identity from {}: {e}", redact_url(rpc_url)))?;
        let path = self.paths.state();
        let known = State::load(&path)?.networks.get(&self.network_name).map(|n| n.genesis);
        match known {
            Some(Some(g)) if g == genesis => return Ok((genesis, None)),
            None if !path.exists() => return Ok((genesis, None)),
            _ => {}
        }
        let name = self.network_name.clone();
        let mut retired = None;
        State::update(&path, |state| {
            let net = state.networks.entry(name.clone()).or_default();
            match net.genesis {
                Some(g) if g == genesis => {}
                Some(_) => {
                    let old = std::mem::take(net);
                    net.genesis = Some(genesis);
                    retired = Some((old.accounts.len(), old.sessions.len()));
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    state.retired.push(crate::store::RetiredNetwork {
                        network: name.clone(),
                        retired_at: now,
                        state: old,
                    });
                }
                None => net.genesis = Some(genesis),
            }
        })?;
        Ok((genesis, retired.map(|(accounts, sessions)| Retired { accounts, sessions })))
    }

    /// The contracts and names `chain()` would find, without connecting: the canonical
    /// addresses, the running `sak node up`'s stack (local and fork) and the network's book.
    pub fn offline_contracts(&self) -> Result<Contracts> {
        Ok(self.contracts_with(self.node()?))
    }

    /// The canonical contracts, `node`'s local stack, and the network's book.
    fn contracts_with(&self, node: Option<NodeFile>) -> Contracts {
        let mut contracts = Contracts::canonical();
        if let Some(node) = node {
            contracts = contracts.with_local(node.contracts);
        }
        for (name, entry) in &self.network.book {
            contracts.book.push((name.clone(), entry.address, entry.decimals));
        }
        contracts
    }

    /// The owner, ready to sign: the hardware wallet `sak owner use-device` named (connected
    /// and checked against the address it showed then), else the keystore's key.
    pub async fn owner(&self) -> Result<Owner> {
        if let Some(file) = self.owner_device()? {
            let (address, wallet) = crate::owner::connect(file.device, file.index, None).await?;
            if address != file.address {
                bail!(crate::Hinted::new(
                    format!(
                        "the {} shows {address} at index {}, not the owner {} it showed before",
                        file.device.as_str(),
                        file.index,
                        file.address
                    ),
                    "connect the device (and seed) that holds the owner key; `sak owner show` names it",
                ));
            }
            return Ok(Owner::Device { file, wallet });
        }
        let path = self.paths.owner_key();
        if !path.exists() {
            bail!(crate::Hinted::new(
                format!("no owner key at {}", path.display()),
                "create one with `sak owner new` or `sak owner import` (or `sak owner use-device ledger`)",
            ));
        }
        let password = self.password()?;
        Ok(Owner::Key(keystore::load(&path, &password).wrap_err("loading the owner key")?))
    }

    /// The hardware wallet that holds the owner key, if `sak owner use-device` named one.
    pub fn owner_device(&self) -> Result<Option<DeviceFile>> {
        let path = self.paths.owner_device();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                crate::Hinted::new(
                    format!("{} is malformed: {e}", path.display()),
                    "run `sak owner use-device ledger` (or trezor) again to rewrite it",
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
        }
    }

    /// The owner's address without decrypting anything or reaching a device.
    pub fn owner_address(&self) -> Result<Address> {
        if let Some(file) = self.owner_device()? {
            return Ok(file.address);
        }
        let path = self.paths.owner_key();
        keystore_address(&path)?.ok_or_else(|| {
            Error::from(crate::Hinted::new(
                format!("no owner key at {}", path.display()),
                "create one with `sak owner new` or `sak owner import`",
            ))
        })
    }

    /// A session key file by name or address.
    pub fn session_key_path(&self, name_or_address: &str) -> Result<(String, PathBuf)> {
        let dir = self.paths.session_keys_dir();
        let direct = dir.join(format!("{name_or_address}.json"));
        if direct.exists() {
            return Ok((name_or_address.to_owned(), direct));
        }
        if let Ok(address) = name_or_address.parse::<Address>() {
            for (name, path, a) in self.session_keys()? {
                if a == Some(address) {
                    return Ok((name, path));
                }
            }
        }
        bail!(crate::Hinted::new(
            format!("no session key `{name_or_address}` in {}", dir.display()),
            "list them with `sak key list`; create one with `sak key new --name NAME`",
        ))
    }

    /// Every session key file: (name, path, address from the file).
    pub fn session_keys(&self) -> Result<Vec<(String, PathBuf, Option<Address>)>> {
        let dir = self.paths.session_keys_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).wrap_err_with(|| format!("reading {}", dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            out.push((name.to_owned(), path.clone(), keystore_address(&path).ok().flatten()));
        }
        out.sort();
        Ok(out)
    }

    /// The home's `state.json`, read now.
    pub fn state(&self) -> Result<State> {
        State::load(&self.paths.state())
    }

    /// The account commands act on: `--account NAME`, else the network's default; checked
    /// against the chain id.
    pub fn account(&self, chain_id: u64) -> Result<AccountRecord> {
        Ok(self.named_account(chain_id)?.1)
    }

    /// [`Self::account`] with its name.
    pub fn named_account(&self, chain_id: u64) -> Result<(String, AccountRecord)> {
        let net = self.state()?.networks.remove(&self.network_name).unwrap_or_default();
        let (name, a) = net.pick(self.options.account.as_deref(), &self.network_name).map_err(|e| *e)?;
        if a.chain_id != chain_id {
            bail!(crate::Hinted::new(
                format!(
                    "the account `{name}` of network `{}` is on chain {}, the endpoint is chain {chain_id}",
                    self.network_name, a.chain_id
                ),
                "run `sak account create` again on this chain",
            ));
        }
        Ok((name, a))
    }

    /// The session recorded here with this id on `account`.
    pub fn session_record(&self, account: Address, id: u32) -> Result<Option<SessionRecord>> {
        let state = self.state()?;
        Ok(state
            .networks
            .get(&self.network_name)
            .and_then(|n| n.sessions.iter().find(|s| s.account == account && s.id == id).cloned()))
    }

    /// A provider that signs transactions with `key` (a relayer's).
    pub fn wallet_provider(&self, chain: &Chain, key: &PrivateKeySigner) -> Result<DynProvider> {
        self.provider_with(chain, EthereumWallet::from(key.clone()))
    }

    /// A provider that signs the owner's transactions (with its key, or on its device).
    pub fn owner_provider(&self, chain: &Chain, owner: &Owner) -> Result<DynProvider> {
        self.provider_with(chain, owner.wallet())
    }

    fn provider_with(&self, chain: &Chain, wallet: EthereumWallet) -> Result<DynProvider> {
        let url = chain.rpc_url.parse().wrap_err("the RPC URL")?;
        Ok(ProviderBuilder::new().wallet(wallet).connect_http(url).erased())
    }
}

#[cfg(test)]
mod tests {
    use super::Contracts;

    /// The README shows the addresses `sak node up` prints; sak's own move with its bytecode.
    #[test]
    fn the_readme_shows_the_current_sak_addresses() {
        let readme = include_str!("../../../../README.md");
        let c = Contracts::canonical();
        for (name, address) in [
            ("EntryPoint v0.8", c.entry_point),
            ("SessionAdapter", c.session_adapter),
            ("SakAccount", c.sak_account_implementation),
            ("SakAccountFactory", c.sak_account_factory),
            ("Sak7702Account", c.sak_7702_account),
            ("SessionKeyValidator", c.session_key_validator),
            ("Sak7579Account ", c.sak_7579_account_implementation),
            ("Sak7579AccountFactory", c.sak_7579_account_factory),
        ] {
            let line = readme
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no {name} line"));
            assert!(
                line.contains(&address.to_checksum(None)),
                "README.md shows `{line}`, but {name} is now at {address}: update the README"
            );
        }
    }
}
