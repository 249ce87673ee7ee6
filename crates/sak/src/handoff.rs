//! Handing a session to an agent on another machine: a bundle that holds what the agent needs
//! to act under one session, and nothing of the owner's.
//!
//! The owner's home writes it ([`export`]): the session key (its keystore, encrypted under the
//! session keys' passphrase, never the owner's password; or left out, for an agent that gets
//! the key as `$SAK_SESSION_KEY` from a secret store), the account, the chain (id and identity),
//! sak's contract addresses, the address book's names, and the policy and validity as granted.
//! The agent's home reads it ([`import`]) and can then act under the session (`sak swap`, `sak
//! send`), paying through its own relayer or a bundler.
//!
//! Nothing in a bundle can grant, widen or un-revoke a session: the chain holds the session
//! and checks every operation against it; the bundle only tells the agent where to look.

use crate::{
    Chain, Contracts, Hinted, Home, Options, Result,
    config::{BookEntry, Config, NetworkConfig, NetworkKind, Paths},
    error::{WrapErr, bail},
    store::{AccountKind, AccountRecord, SessionRecord, State, valid_name},
};
use alloy::primitives::{Address, B256};
use sak_primitives::Policy;
use sak_signer::keystore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The bundle format this version writes and reads.
pub const FORMAT: &str = "sak-session-bundle/1";

/// One session, handed to an agent. Field names are the file's format.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// The network's name in the owner's home (the agent's home uses it unless told otherwise).
    pub network: String,
    /// Its kind.
    pub network_kind: NetworkKind,
    /// The chain id.
    pub chain_id: u64,
    /// The chain's identity (its genesis; for an anvil fork, its instance): a bundle meets only
    /// the chain it was made on.
    pub chain_identity: B256,
    /// The account the session acts for.
    pub account: BundleAccount,
    /// The session.
    pub session: BundleSession,
    /// sak's contracts on the chain (the canonical addresses; checked at import).
    pub contracts: BundleContracts,
    /// Names for addresses (tokens, routers) the owner's home knows on this network.
    pub book: BTreeMap<String, BookEntry>,
    /// The session key's keystore (Web3 v3 JSON, encrypted under the session keys' passphrase);
    /// absent when the agent gets the key as `$SAK_SESSION_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<serde_json::Value>,
}

/// The account in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleAccount {
    /// Its name in the owner's home.
    pub name: String,
    /// Smart account or delegated EOA.
    pub kind: AccountKind,
    /// Its address.
    pub address: Address,
    /// Its owner (an address only: no owner secret is in a bundle).
    pub owner: Address,
}

/// The session in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSession {
    /// Its id on the account.
    pub id: u32,
    /// The session key's address.
    pub key: Address,
    /// The key's name (its file name in the agent's home).
    pub key_name: String,
    /// The grant's transaction and block (where the agent's reads of the session start).
    pub grant_tx: B256,
    /// The grant's block.
    pub grant_block: u64,
    /// Chain time of the grant.
    pub granted_at: u64,
    /// The policy as granted (the chain enforces it; this copy is for the agent to read).
    pub policy: Policy,
}

/// sak's contracts named in a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleContracts {
    /// EntryPoint v0.8.
    pub entry_point: Address,
    /// The `SessionAdapter` factory.
    pub session_adapter: Address,
    /// The `SakAccountFactory`.
    pub sak_account_factory: Address,
    /// The EIP-7702 delegate.
    pub sak_7702_account: Address,
}

impl BundleContracts {
    fn of(c: &Contracts) -> Self {
        Self {
            entry_point: c.entry_point,
            session_adapter: c.session_adapter,
            sak_account_factory: c.sak_account_factory,
            sak_7702_account: c.sak_7702_account,
        }
    }
}

/// The bundle of session `id` of this home's account: checked live on `chain` (a revoked or
/// expired session is refused), with the key's keystore unless `with_key` is false.
pub async fn export(home: &Home, chain: &Chain, id: u32, with_key: bool) -> Result<Bundle> {
    let (account_name, account) = home.named_account(chain.chain_id)?;
    let now = chain.time().await?;
    let on_chain = crate::sessions::find(home, chain, &account, id, now).await?;
    if !on_chain.live() {
        bail!(Hinted::refused(
            format!(
                "session {id} of {} is {}: there is nothing to hand over",
                account.address, on_chain.status
            ),
            "grant a new session (`sak session grant`) and export that one",
        ));
    }
    let record = home.session_record(account.address, id)?.filter(|r| r.key == on_chain.signer);
    let Some(record) = record else {
        bail!(Hinted::new(
            format!("session {id}'s key {} is not a key of this home", on_chain.signer),
            "export it from the home that granted it (`sak session list` shows where each was granted)",
        ));
    };
    let key = if with_key {
        let (_, path) = home.session_key_path(&record.key_name)?;
        let text = std::fs::read_to_string(&path).wrap_err_with(|| format!("reading {}", path.display()))?;
        Some(serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a keystore", path.display()))?)
    } else {
        None
    };
    let book = chain
        .contracts
        .book
        .iter()
        .map(|(name, address, decimals)| (name.clone(), BookEntry { address: *address, decimals: *decimals }))
        .collect();
    Ok(Bundle {
        format: FORMAT.to_owned(),
        network: home.network_name.clone(),
        network_kind: home.kind(),
        chain_id: chain.chain_id,
        chain_identity: chain.identity,
        account: BundleAccount {
            name: account_name,
            kind: account.kind,
            address: account.address,
            owner: account.owner,
        },
        session: BundleSession {
            id,
            key: on_chain.signer,
            key_name: record.key_name,
            grant_tx: on_chain.grant_tx,
            grant_block: on_chain.grant_block,
            granted_at: record.granted_at,
            policy: on_chain.policy,
        },
        contracts: BundleContracts::of(&chain.contracts),
        book,
        key,
    })
}

impl Bundle {
    /// Reads a bundle file, refusing another format.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
        let format = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned));
        if format.as_deref() != Some(FORMAT) {
            bail!(Hinted::new(
                format!(
                    "{} is not a sak session bundle of this version (format {}, expected {FORMAT})",
                    path.display(),
                    format.as_deref().unwrap_or("missing")
                ),
                "export it again with this version: `sak session export ID --out FILE`",
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            Hinted::new(
                format!("the bundle {} is malformed: {e}", path.display()),
                "export it again (`sak session export ID --out FILE`); do not edit it by hand",
            )
            .into()
        })
    }
}

/// What [`import`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The network in the agent's home that holds the session.
    pub network: String,
    /// The account's name there.
    pub account: String,
    /// Its address.
    pub address: Address,
    /// The session id.
    pub session: u32,
    /// The session key's address.
    pub key: Address,
    /// The key's name there (None: the key comes from `$SAK_SESSION_KEY`).
    pub key_name: Option<String>,
    /// Names added to the network's book.
    pub names_added: Vec<String>,
}

/// Makes the home at `paths` able to act under the bundle's session: the network (created, or
/// checked against the bundle's chain and given its names), the account (under its name, or
/// `name`), the session record, and the key (decrypted with the session keys' passphrase, and
/// kept encrypted under it). [`Options::rpc_url`], when given, becomes the network's endpoint.
/// No owner key is made or needed; nothing is sent.
pub fn import(paths: &Paths, options: &Options, bundle: &Bundle, name: Option<&str>) -> Result<Imported> {
    let canonical = BundleContracts::of(&Contracts::canonical());
    if bundle.contracts != canonical {
        bail!(Hinted::refused(
            "the bundle names contracts other than sak's canonical deployment",
            "export the session again from a home of this version of sak",
        ));
    }
    for (what, text) in
        [("account name", name.unwrap_or(&bundle.account.name)), ("key name", &bundle.session.key_name)]
    {
        if !valid_name(text) || text.starts_with("0x") {
            bail!(Hinted::new(
                format!("the bundle's {what} `{text}` is not usable here"),
                "pass --name NAME (letters, digits, `-`, `_`, `.`)",
            ));
        }
    }
    let network = options.network.clone().unwrap_or_else(|| bundle.network.clone());
    let account_name = name.unwrap_or(&bundle.account.name).to_owned();
    let record = AccountRecord {
        kind: bundle.account.kind,
        address: bundle.account.address,
        owner: bundle.account.owner,
        chain_id: bundle.chain_id,
        salt: None,
    };

    // Every check before anything is written: the network's chain and names, the account's
    // name, the key (opened with the session keys' passphrase, so a wrong one writes nothing).
    let state = State::load(&paths.state())?;
    let known = state.networks.get(&network);
    if let Some(g) = known.and_then(|n| n.genesis).filter(|g| *g != bundle.chain_identity) {
        bail!(Hinted::refused(
            format!(
                "network `{network}` of this home is another chain (identity {g}) than the bundle's ({})",
                bundle.chain_identity
            ),
            "import into another network (--network NAME) or another home (SAK_HOME)",
        ));
    }
    if let Some(other) =
        known.and_then(|n| n.accounts.get(&account_name)).filter(|a| a.address != record.address)
    {
        bail!(Hinted::new(
            format!(
                "the name `{account_name}` is taken by the account {} on network `{network}`",
                other.address
            ),
            "pass --name NAME for the imported account",
        ));
    }
    let config = merged_config(paths, &network, bundle, options.rpc_url.as_deref())?;
    let key = match &bundle.key {
        Some(json) => {
            let any_network = Options { network: None, ..options.clone() };
            Some(open_key(&Home::at(paths.clone(), any_network)?, bundle, json)?)
        }
        None => None,
    };

    config.0.save(&paths.config_file)?;
    let key_name = match key {
        Some((path, key, password)) => {
            if !path.exists() {
                keystore::save(&path, &key, &password)?;
            }
            Some(bundle.session.key_name.clone())
        }
        None => None,
    };
    let session = SessionRecord {
        id: bundle.session.id,
        account: record.address,
        chain_id: bundle.chain_id,
        key: bundle.session.key,
        key_name: bundle.session.key_name.clone(),
        tx: bundle.session.grant_tx,
        block: bundle.session.grant_block,
        granted_at: bundle.session.granted_at,
        rotated_at: None,
    };
    State::update(&paths.state(), |s| {
        let net = s.networks.entry(network.clone()).or_default();
        net.genesis = Some(bundle.chain_identity);
        net.accounts.insert(account_name.clone(), record.clone());
        net.default_account.get_or_insert_with(|| account_name.clone());
        net.sessions.retain(|r| !(r.account == session.account && r.id == session.id));
        net.sessions.push(session);
    })?;
    let names_added = config.1;
    Ok(Imported {
        network,
        account: account_name,
        address: record.address,
        session: bundle.session.id,
        key: bundle.session.key,
        key_name,
        names_added,
    })
}

/// The config with the network `name` made from the bundle when missing, else checked against
/// its chain, and the bundle's names added (returned too). Not written yet.
fn merged_config(
    paths: &Paths,
    name: &str,
    bundle: &Bundle,
    rpc_url: Option<&str>,
) -> Result<(Config, Vec<String>)> {
    let mut config = Config::load(&paths.config_file)?;
    let net = config.networks.entry(name.to_owned()).or_insert_with(|| NetworkConfig {
        kind: bundle.network_kind,
        rpc_url: None,
        bundler_url: None,
        chain_id: Some(bundle.chain_id),
        confirmations: None,
        book: BTreeMap::new(),
    });
    if net.chain_id.is_some_and(|id| id != bundle.chain_id) {
        bail!(Hinted::refused(
            format!(
                "network `{name}` of this home is chain {}, the bundle's session is on chain {}",
                net.chain_id.unwrap_or_default(),
                bundle.chain_id
            ),
            "pick the matching network with --network NAME (a new name makes a new network)",
        ));
    }
    let mut added = Vec::new();
    for (entry_name, entry) in &bundle.book {
        match net.book.get(entry_name) {
            Some(known) if known.address != entry.address => bail!(Hinted::refused(
                format!(
                    "the name `{entry_name}` is {} in this home's network `{name}`, {} in the bundle",
                    known.address, entry.address
                ),
                "rename one of them in config.toml, or import into another network (--network NAME)",
            )),
            Some(_) => {}
            None => {
                net.book.insert(entry_name.clone(), entry.clone());
                added.push(entry_name.clone());
            }
        }
    }
    if let Some(url) = rpc_url {
        net.rpc_url = Some(url.to_owned());
    }
    Ok((config, added))
}

/// Decrypts the bundle's key with the session keys' passphrase and checks it is the session's:
/// (where it goes, the key, the passphrase). Refused when the home has another key by its name.
fn open_key(
    home: &Home,
    bundle: &Bundle,
    json: &serde_json::Value,
) -> Result<(std::path::PathBuf, keystore::LocalKey, keystore::Password)> {
    let name = &bundle.session.key_name;
    let path = home.paths.session_keys_dir().join(format!("{name}.json"));
    if crate::keystore_address(&path)?.is_some_and(|a| a != bundle.session.key) {
        bail!(Hinted::refused(
            format!("this home already has another key named `{name}`"),
            "import into another home (SAK_HOME), or rename that key's file",
        ));
    }
    let password = home.key_password()?;
    let key = keystore::decrypt(json.to_string().as_bytes(), &password).map_err(|e| {
        Hinted::new(
            format!("the bundle's key does not open with this passphrase: {e}"),
            format!(
                "set ${} to the passphrase of the owner's session keys (asked on a terminal)",
                home.key_password_env()
            ),
        )
    })?;
    if key.address() != bundle.session.key {
        bail!(Hinted::refused(
            format!("the bundle's key is {}, not the session's key {}", key.address(), bundle.session.key),
            "export the session again from the owner's home",
        ));
    }
    Ok((path, key, password))
}
