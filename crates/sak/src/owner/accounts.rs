//! The owner's accounts on the network: made (a smart account from the factory, or the owner
//! EOA delegated with EIP-7702), named in the home, and read back with their balances.
//!
//! ```no_run
//! # async fn demo() -> sak::Result<()> {
//! use sak::{Home, owner, store::AccountKind};
//! let home = Home::open(sak::Options::default())?;
//! let chain = home.chain().await?;
//! let info = owner::create_account(&home, &chain, AccountKind::Smart, Default::default(), None).await?;
//! println!("account `{}` at {} ({})", info.name, info.address, if info.created { "new" } else { "there" });
//! # Ok(()) }
//! ```

use crate::{
    Chain, Hinted, Home, Result,
    error::{WrapErr, ensure},
    leftover::{self, Leftover},
    store::{AccountKind, AccountRecord, FIRST_ACCOUNT, State},
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
};
use sak_contracts::{MockERC20, SakAccount, SakAccountFactory};
use sak_userop::eip7702;
use serde::Serialize;

/// An account as `sak account create|show` report it. Field names are part of the `--json`
/// interface.
#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    /// The network's name in the home.
    pub network: String,
    /// The name `--account` picks it by.
    pub name: String,
    /// Whether commands use it without `--account`.
    pub default: bool,
    /// The chain it is on.
    pub chain_id: u64,
    /// Smart account or delegated EOA.
    pub kind: AccountKind,
    /// Its address.
    pub address: Address,
    /// The owner on chain (for a smart account not deployed yet, the one it is created for).
    pub owner: Address,
    /// Whether this home's owner key is that owner (false once ownership moved away).
    pub home_is_owner: bool,
    /// The account's session adapter: every session call but a capped `transfer` is made by
    /// it (deployed by the first grant).
    pub adapter: Address,
    /// True when this run deployed or delegated it (false: it already was).
    pub created: bool,
    /// Bytes of code at the address (a 7702 delegation is 23).
    pub code_size: usize,
    /// The transaction that deployed or delegated it.
    pub transaction: Option<B256>,
    /// 7702: live sessions this run ended because they predate the EOA's last delegation
    /// change or were written by another delegate (sak's own delegation ends every earlier
    /// session in its transaction and lists none here).
    pub ended_leftovers: Vec<Leftover>,
    /// 7702: the transaction that ended them (revokeAllSessions).
    pub ended_by: Option<B256>,
    /// ETH and the address book's tokens.
    pub balances: Vec<Balance>,
    /// 7702: why the delegation history was not checked for leftovers (a warning to show).
    #[serde(skip)]
    pub unchecked: Option<String>,
}

/// One balance of an account.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    /// `ETH` or the token's name in the book.
    pub asset: String,
    /// The token (None for ETH).
    pub address: Option<Address>,
    /// In base units.
    pub raw: U256,
    /// The asset's decimals.
    pub decimals: u8,
}

/// Deploys (smart or 7579, from `salt`) or delegates (7702) the owner's account on `chain` unless it
/// already is, and records it under `name` ([`free_name`]'s rules). Running it again changes
/// nothing.
pub async fn create_account(
    home: &Home,
    chain: &Chain,
    kind: AccountKind,
    salt: B256,
    name: Option<String>,
) -> Result<AccountInfo> {
    let owner = home.owner_address()?;
    let factory = factory_of(chain, kind);
    let address = match factory {
        Some((factory, factory_name)) => {
            require_code(chain, factory, factory_name).await?;
            // Both factories have SakAccountFactory's interface.
            SakAccountFactory::new(factory, &chain.provider)
                .getAddress(owner, salt)
                .call()
                .await
                .wrap_err_with(|| format!("{factory_name}.getAddress"))?
        }
        None => owner,
    };
    let name = free_name(home, name, address)?;
    let (created, transaction, ended) = match factory {
        Some(factory) => deploy_smart(home, chain, (kind, factory), owner, address, salt).await?,
        None => delegate_eoa(home, chain, owner).await?,
    };
    let salt = factory.is_some().then_some(salt);
    let record = AccountRecord { kind, address, owner, chain_id: chain.chain_id, salt };
    adopt(home, &name, &record)?;
    let mut info = account_info(home, chain, (&name, &record), created, transaction).await?;
    (info.ended_leftovers, info.ended_by, info.unchecked) = ended;
    Ok(info)
}

/// What a 7702 (re)check ended: the leftovers, the revoking transaction, and why the history
/// was not checked.
type Ended = (Vec<Leftover>, Option<B256>, Option<String>);

/// The factory (and its name) that deploys accounts of `kind`; None for a delegated EOA.
fn factory_of(chain: &Chain, kind: AccountKind) -> Option<(Address, &'static str)> {
    match kind {
        AccountKind::Smart => Some((chain.contracts.sak_account_factory, "SakAccountFactory")),
        AccountKind::Erc7579 => Some((chain.contracts.sak_7579_account_factory, "Sak7579AccountFactory")),
        AccountKind::Eip7702 => None,
    }
}

async fn deploy_smart(
    home: &Home,
    chain: &Chain,
    (kind, (factory, factory_name)): (AccountKind, (Address, &'static str)),
    owner: Address,
    address: Address,
    salt: B256,
) -> Result<(bool, Option<B256>, Ended)> {
    let deployed = !chain.provider.get_code_at(address).await?.is_empty();
    home.progress(&format!(
        "{} account address {address} ({})",
        kind.as_str(),
        if deployed { "already deployed" } else { "counterfactual: not deployed yet" }
    ));
    if deployed {
        return Ok((false, None, Ended::default()));
    }
    require_gas_money(home, chain, owner).await?;
    let key = home.owner().await?;
    let wallet = home.owner_provider(chain, &key)?;
    home.progress(&format!("deploying through {factory_name}…"));
    let receipt = SakAccountFactory::new(factory, &wallet)
        .createAccount(owner, salt)
        .send()
        .await
        .wrap_err("createAccount")?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "createAccount reverted (tx {})", receipt.transaction_hash);
    ensure!(
        !chain.provider.get_code_at(address).await?.is_empty(),
        "the factory deployed nothing at {address}"
    );
    Ok((true, Some(receipt.transaction_hash), Ended::default()))
}

async fn delegate_eoa(home: &Home, chain: &Chain, owner: Address) -> Result<(bool, Option<B256>, Ended)> {
    let delegate = chain.contracts.sak_7702_account;
    require_code(chain, delegate, "Sak7702Account").await?;
    match eip7702::delegate_of(&chain.provider, owner).await? {
        Some(d) if d == delegate => {
            home.progress(&format!("{owner} is already delegated to Sak7702Account"));
            Ok((false, None, end_leftovers(home, chain, owner).await?))
        }
        Some(other) => Err(Hinted::refused(
            format!("{owner} is delegated to {other}, not to Sak7702Account {delegate}"),
            "sak does not replace another delegation: undelegate it with the wallet that set it first",
        )
        .into()),
        None => {
            require_gas_money(home, chain, owner).await?;
            let key = home.owner().await?;
            home.progress(
                "delegating the owner EOA with an EIP-7702 transaction that also ends any session left in its storage…",
            );
            let hash = eip7702::delegate_self_and_call(
                &chain.provider,
                key.key("an EIP-7702 authorization (delegating the EOA)")?,
                delegate,
                leftover::revoke_all_call(),
            )
            .await
            .wrap_err("delegating with EIP-7702")?;
            Ok((true, Some(hash), Ended::default()))
        }
    }
}

/// An EOA already delegated to Sak7702Account may hold sessions from before its last
/// delegation change (made outside sak) or written by another delegate: ends them all with
/// revokeAllSessions before the account is reported ready.
async fn end_leftovers(home: &Home, chain: &Chain, eoa: Address) -> Result<Ended> {
    home.progress("checking for sessions left from before the last delegation…");
    let found = leftover::find(&chain.provider, eoa).await?;
    let unchecked = found.unchecked.as_ref().map(|why| {
        format!(
            "{why}; if the EOA was delegated elsewhere since its sessions were granted, run `sak session revoke-all`"
        )
    });
    let Some(summary) = found.summary() else { return Ok((Vec::new(), None, unchecked)) };
    home.progress(&format!("ending every session: {summary}"));
    let record = AccountRecord {
        kind: AccountKind::Eip7702,
        address: eoa,
        owner: eoa,
        chain_id: chain.chain_id,
        salt: None,
    };
    let receipt = super::send_revoke_all(home, chain, &record, &home.owner().await?).await?;
    let mut ended = found.leftovers;
    if let Some(detail) = &found.tampered {
        // Every live session went with the salt, listed or not.
        let unlisted: Vec<u32> =
            found.live.iter().copied().filter(|id| !ended.iter().any(|l| l.id == *id)).collect();
        ended.extend(unlisted.into_iter().map(|id| Leftover {
            id,
            signer: Address::ZERO,
            reason: "tampered-storage",
            detail: detail.clone(),
        }));
    }
    Ok((ended, Some(receipt.transaction_hash), unchecked))
}

/// Refused with a hint to deploy sak's contracts when `address` has no code.
pub async fn require_code(chain: &Chain, address: Address, what: &str) -> Result<()> {
    if chain.provider.get_code_at(address).await?.is_empty() {
        return Err(Hinted::new(
            format!("{what} is not deployed at {address} on chain {}", chain.chain_id),
            "deploy sak's contracts with `sak deploy` (local chains: `sak node up` deploys everything)",
        )
        .into());
    }
    Ok(())
}

/// The owner pays for deployment and delegation. On local and fork chains an owner without
/// ETH is funded with 10 ETH from anvil's dev account 0 (a public test key); elsewhere it is an
/// error that says where to get some.
pub async fn require_gas_money(home: &Home, chain: &Chain, owner: Address) -> Result<()> {
    if !chain.provider.get_balance(owner).await?.is_zero() {
        return Ok(());
    }
    if home.kind().is_anvil() && home.node()?.is_some() {
        let ten = U256::from(10u128 * 10u128.pow(18));
        home.fund_from_dev(chain, owner, ten, U256::ZERO, U256::ZERO).await?;
        home.progress(&format!("funded the owner {owner} with 10 ETH from anvil's dev account 0"));
        return Ok(());
    }
    Err(Hinted::new(
        format!("the owner {owner} has no ETH to pay gas"),
        format!("send some ETH to {owner} (a faucet on testnets)"),
    )
    .into())
}

/// The name an account at `address` takes: `wanted`, else the name it already has, else
/// `main` for the network's first account. Refused (before anything is sent) when the name is
/// taken by another account or a second account comes without one.
pub fn free_name(home: &Home, wanted: Option<String>, address: Address) -> Result<String> {
    let network = &home.network_name;
    let net = home.state()?.networks.remove(network).unwrap_or_default();
    let known = net.accounts.iter().find(|(_, a)| a.address == address).map(|(n, _)| n.clone());
    let name = match (wanted, known) {
        (Some(w), _) => w,
        (None, Some(k)) => k,
        (None, None) if net.accounts.is_empty() => FIRST_ACCOUNT.to_owned(),
        (None, None) => {
            return Err(Hinted::new(
                format!(
                    "network `{network}` already has accounts ({}); a second account needs a name",
                    net.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                "add --name NAME (the default account stays as it is; `sak account use NAME` switches)",
            )
            .into());
        }
    };
    if !crate::store::valid_name(&name) || name.starts_with("0x") {
        return Err(Hinted::new(
            format!("`{name}` is not a usable account name"),
            "use letters, digits, `-`, `_` and `.` (up to 64, not starting with `.`, `-` or `0x`)",
        )
        .into());
    }
    match net.accounts.get(&name) {
        Some(a) if a.address != address => Err(Hinted::new(
            format!("the name `{name}` is taken by the account {} on network `{network}`", a.address),
            "pick another --name (`sak account list` shows the names in use)",
        )
        .into()),
        _ => Ok(name),
    }
}

/// Records `record` under `name`; the network's first account becomes its default.
pub fn adopt(home: &Home, name: &str, record: &AccountRecord) -> Result<()> {
    State::update(&home.paths.state(), |s| {
        let net = s.networks.entry(home.network_name.clone()).or_default();
        net.accounts.insert(name.to_owned(), record.clone());
        net.default_account.get_or_insert_with(|| name.to_owned());
    })?;
    Ok(())
}

/// The account `record` named `name`, read from the chain: code, owner, balances.
pub async fn account_info(
    home: &Home,
    chain: &Chain,
    (name, record): (&str, &AccountRecord),
    created: bool,
    transaction: Option<B256>,
) -> Result<AccountInfo> {
    let default = home.state()?.networks.get(&home.network_name).and_then(|n| n.default_account.clone());
    let code_size = chain.provider.get_code_at(record.address).await?.len();
    // The chain's word, not the home's record: ownership may have moved since.
    let owner = match record.kind {
        // `owner()` is the same function on both.
        AccountKind::Smart | AccountKind::Erc7579 if code_size > 0 => {
            SakAccount::new(record.address, &chain.provider)
                .owner()
                .call()
                .await
                .wrap_err("reading the account's owner")?
        }
        _ => record.owner,
    };
    Ok(AccountInfo {
        network: home.network_name.clone(),
        name: name.to_owned(),
        default: default.as_deref() == Some(name),
        chain_id: chain.chain_id,
        kind: record.kind,
        address: record.address,
        owner,
        home_is_owner: owner == record.owner,
        adapter: chain.contracts.adapter_of(record.address),
        created,
        code_size,
        transaction,
        ended_leftovers: Vec::new(),
        ended_by: None,
        balances: balances(&chain.provider, chain, record.address).await?,
        unchecked: None,
    })
}

/// ETH and every token of the network's address book held by `holder`.
pub async fn balances(provider: &DynProvider, chain: &Chain, holder: Address) -> Result<Vec<Balance>> {
    let mut out = vec![Balance {
        asset: "ETH".into(),
        address: None,
        raw: provider.get_balance(holder).await?,
        decimals: 18,
    }];
    for (name, token, decimals) in &chain.contracts.book {
        let Some(decimals) = decimals else { continue };
        let raw = MockERC20::new(*token, provider).balanceOf(holder).call().await.unwrap_or_default();
        out.push(Balance { asset: name.clone(), address: Some(*token), raw, decimals: *decimals });
    }
    Ok(out)
}
