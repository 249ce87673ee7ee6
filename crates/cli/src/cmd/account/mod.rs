//! `sak account create|show|transfer-ownership|accept-ownership|undelegate`: the owner's account
//! on the network.

use crate::{
    ctx::{Chain, Ctx},
    leftover::{self, Leftover},
    output::{self, Hinted},
    store::{AccountKind, AccountRecord, FIRST_ACCOUNT, State},
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak::owner::owner_call_error;
use sak_contracts::{MockERC20, SakAccount, SakAccountFactory};
use sak_userop::eip7702;
use serde::Serialize;

pub(crate) mod acts;
mod create;

pub(crate) use create::create_on;
use create::*;

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create the owner's account: a smart account (its address is printed before it is
    /// deployed) or the owner EOA itself, delegated to Sak7702Account with EIP-7702. Running it
    /// again changes nothing.
    #[command(
        after_help = "Examples:\n  sak account create --kind smart\n  sak account create --kind 7702 --json"
    )]
    Create(CreateArgs),
    /// The account: address, kind, code, balances, sessions granted from here.
    #[command(after_help = "Examples:\n  sak account show\n  sak account show --account trading --json")]
    Show,
    /// This network's accounts by name, and which one commands use without `--account`.
    #[command(after_help = "Examples:\n  sak account list\n  sak account list --json")]
    List,
    /// Make a named account the one commands use without `--account`.
    #[command(after_help = "Examples:\n  sak account use trading")]
    Use(UseArgs),
    /// Propose a new owner for this home's smart account (step 1 of 2): nothing changes until
    /// the new owner accepts. Sessions stay; `--to 0x0…0` withdraws a proposal.
    #[command(after_help = "Examples:\n  sak account transfer-ownership --to 0xNewOwner\n  \
                            sak account transfer-ownership --to 0x0000000000000000000000000000000000000000")]
    TransferOwnership(TransferArgs),
    /// Accept a smart account proposed to this home's owner key (step 2 of 2): it becomes this
    /// home's account.
    #[command(after_help = "Examples:\n  sak account accept-ownership 0xAccount\n  \
                            sak account accept-ownership 0xAccount --name treasury")]
    AcceptOwnership(AcceptArgs),
    /// Undelegate this home's EIP-7702 account: end every session first (revokeAllSessions),
    /// then clear the EOA's code with an EIP-7702 authorization to the zero address. The EOA
    /// keeps its funds; `sak account create --kind 7702` delegates it again.
    #[command(after_help = "Examples:\n  sak account undelegate\n  sak account undelegate --json")]
    Undelegate,
    /// Call any contract from the account as its owner: a dry run first, then it asks
    /// (`--yes` for scripts).
    #[command(
        after_help = "Examples:\n  sak account call --to tUSD --sig 'approve(address,uint256)' router 0\n  \
                            sak account call --to 0xContract --data 0x… --value 0.01ether --yes\n  \
                            sak account call --to WETH --sig 'deposit()' --value 0.5ether --dry-run"
    )]
    Call(acts::CallArgs),
    /// Move ETH or a token out of the account as its owner: a dry run first, then it asks.
    #[command(after_help = "Examples:\n  sak account withdraw --to 0xCold --amount 0.5\n  \
                            sak account withdraw --to 0xCold --token tUSD --amount all --yes")]
    Withdraw(acts::WithdrawArgs),
    /// Every live allowance the account has given, from the chain: each token's own approvals
    /// and Permit2's, with the command that revokes each.
    #[command(
        after_help = "Examples:\n  sak account approvals\n  sak account approvals --from-block 5000000 --json\n\n\
                            --json prints {account, from_block, to_block, permit2_on_chain, approvals: [{kind: erc20|permit2, \
                            token, token_name, spender, spender_name, amount, raw, expires_at, expired, fix}]}."
    )]
    Approvals(acts::ApprovalsArgs),
    /// Set an allowance of the account to 0 (the token's own, or Permit2's with --permit2): a
    /// dry run first, then it asks.
    #[command(after_help = "Examples:\n  sak account revoke-approval --token tUSD --spender router\n  \
                            sak account revoke-approval --token tUSD --spender 0xSpender --permit2 --yes")]
    RevokeApproval(acts::RevokeApprovalArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    /// The proposed owner's address.
    #[arg(long, value_name = "ADDR")]
    to: Address,
}

#[derive(Debug, Args)]
pub(crate) struct AcceptArgs {
    /// The smart account whose ownership was proposed to this home's owner.
    #[arg(value_name = "ADDR")]
    address: Address,
    /// The name this home gives it [default: `main` when the network has no account yet].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UseArgs {
    /// A name from `sak account list`.
    name: String,
}

/// What `sak account transfer-ownership|accept-ownership` print. Field names are part of the
/// `--json` interface.
#[derive(Debug, Serialize)]
struct Ownership {
    account: Address,
    owner: Address,
    pending_owner: Address,
    transaction: B256,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// `smart` (SakAccountFactory) or `7702` (the owner EOA delegated in place).
    #[arg(long, value_enum, default_value = "smart")]
    kind: AccountKind,
    /// Factory salt for a second smart account of the same owner (hex, 32 bytes).
    #[arg(long, value_name = "HEX", default_value_t = B256::ZERO)]
    salt: B256,
    /// The name this home gives the account (`--account NAME` picks it) [default: `main` for
    /// the network's first account; a second one needs a name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// What `sak account create|show` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
pub(crate) struct AccountInfo {
    network: String,
    /// The name `--account` picks it by.
    pub(crate) name: String,
    /// Whether commands use it without `--account`.
    default: bool,
    chain_id: u64,
    pub(crate) kind: AccountKind,
    pub(crate) address: Address,
    /// The owner on chain (for a smart account not deployed yet, the one it is created for).
    owner: Address,
    /// Whether this home's owner key is that owner (false once ownership moved away).
    home_is_owner: bool,
    /// The account's session adapter: every session call but a capped `transfer` is made by
    /// it (deployed by the first grant).
    adapter: Address,
    /// True when this run deployed or delegated it (false: it already was).
    pub(crate) created: bool,
    /// Bytes of code at the address (a 7702 delegation is 23).
    code_size: usize,
    transaction: Option<B256>,
    /// 7702: live sessions this run ended because they predate the EOA's last delegation
    /// change or were written by another delegate (sak's own delegation ends every earlier
    /// session in its transaction and lists none here).
    ended_leftovers: Vec<Leftover>,
    /// 7702: the transaction that ended them (revokeAllSessions).
    ended_by: Option<B256>,
    balances: Vec<Balance>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Balance {
    asset: String,
    address: Option<Address>,
    raw: U256,
    decimals: u8,
}

pub(crate) async fn run(command: AccountCommand, ctx: &Ctx) -> eyre::Result<()> {
    match command {
        AccountCommand::Create(args) => create(args, ctx).await,
        AccountCommand::Show => show(ctx).await,
        AccountCommand::List => list(ctx),
        AccountCommand::Use(args) => use_account(args, ctx),
        AccountCommand::TransferOwnership(args) => transfer_ownership(args, ctx).await,
        AccountCommand::AcceptOwnership(args) => accept_ownership(args, ctx).await,
        AccountCommand::Undelegate => undelegate(ctx).await,
        AccountCommand::Call(args) => acts::call(args, ctx).await,
        AccountCommand::Withdraw(args) => acts::withdraw(args, ctx).await,
        AccountCommand::Approvals(args) => acts::approvals(args, ctx).await,
        AccountCommand::RevokeApproval(args) => acts::revoke_approval(args, ctx).await,
    }
}

async fn transfer_ownership(args: TransferArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let record = ctx.account(chain.chain_id)?;
    if record.kind != AccountKind::Smart {
        return Err(Hinted::refused(
            format!(
                "{} is a delegated EOA: its owner is its own key, which cannot change hands",
                record.address
            ),
            "move the funds to an account of the new owner instead",
        )
        .into());
    }
    let account = SakAccount::new(record.address, &chain.provider);
    let owner = account.owner().call().await.wrap_err("SakAccount.owner")?;
    let me = ctx.owner_address()?;
    if owner != me {
        return Err(Hinted::refused(
            format!("the account {} is owned by {owner}, not by this home's owner {me}", record.address),
            "run this in the owner's home (`sak account show` there)",
        )
        .into());
    }
    let key = ctx.owner().await?;
    let wallet = ctx.owner_provider(&chain, &key)?;
    output::progress(&ctx.global, "the owner signs transferOwnership…");
    let pending = SakAccount::new(record.address, &wallet)
        .transferOwnership(args.to)
        .send()
        .await
        .map_err(|e| owner_call_error(e, "transferOwnership"))?;
    let receipt = sak::owner::mined(ctx, pending, "transferOwnership").await?;
    let out = Ownership {
        account: record.address,
        owner,
        pending_owner: args.to,
        transaction: receipt.transaction_hash,
    };
    output::emit(&ctx.global, &out, || {
        if args.to.is_zero() {
            format!("withdrew the ownership proposal of {}: {owner} stays the owner", out.account)
        } else {
            format!(
                "proposed {} as the owner of {}; {owner} stays the owner until it accepts, in its own home:\n  \
                 sak account accept-ownership --account {}",
                args.to, out.account, out.account
            )
        }
    })
}

async fn accept_ownership(args: AcceptArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let me = ctx.owner_address()?;
    let name = free_name(ctx, args.name, args.address)?;
    let account = SakAccount::new(args.address, &chain.provider);
    let proposed = account.pendingOwner().call().await.map_err(|e| {
        Hinted::new(
            format!("{} does not answer as a sak smart account: {e}", args.address),
            "check the address (and the network: --network)",
        )
    })?;
    if proposed != me {
        return Err(Hinted::refused(
            format!(
                "the account {} proposes {proposed} as its owner, not this home's owner {me}",
                args.address
            ),
            "the current owner runs `sak account transfer-ownership --to <this home's owner>` first",
        )
        .into());
    }
    let previous = account.owner().call().await.wrap_err("SakAccount.owner")?;
    require_gas_money(&chain, ctx, me).await?;
    let key = ctx.owner().await?;
    let wallet = ctx.owner_provider(&chain, &key)?;
    output::progress(&ctx.global, "this home's owner accepts the ownership…");
    let pending = SakAccount::new(args.address, &wallet)
        .acceptOwnership()
        .send()
        .await
        .map_err(|e| owner_call_error(e, "acceptOwnership"))?;
    let receipt = sak::owner::mined(ctx, pending, "acceptOwnership").await?;
    let record = AccountRecord {
        kind: AccountKind::Smart,
        address: args.address,
        owner: me,
        chain_id: chain.chain_id,
        salt: None,
    };
    adopt(ctx, &name, &record)?;
    let out = Ownership {
        account: args.address,
        owner: me,
        pending_owner: Address::ZERO,
        transaction: receipt.transaction_hash,
    };
    output::emit(&ctx.global, &out, || {
        format!("{me} now owns {} (was {previous}); this home names it `{name}`", out.account)
    })
}

/// The name an account at `address` takes: `wanted`, else the name it already has, else
/// `main` for the network's first account. Refused (before anything is sent) when the name is
/// taken by another account or a second account comes without one.
fn free_name(ctx: &Ctx, wanted: Option<String>, address: Address) -> eyre::Result<String> {
    let net = ctx.state()?.networks.remove(&ctx.network_name).unwrap_or_default();
    let known = net.accounts.iter().find(|(_, a)| a.address == address).map(|(n, _)| n.clone());
    let name = match (wanted, known) {
        (Some(w), _) => w,
        (None, Some(k)) => k,
        (None, None) if net.accounts.is_empty() => FIRST_ACCOUNT.to_owned(),
        (None, None) => {
            return Err(Hinted::new(
                format!(
                    "network `{}` already has accounts ({}); a second account needs a name",
                    ctx.network_name,
                    net.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                "add --name NAME (the default account stays as it is; `sak account use NAME` switches)",
            )
            .into());
        }
    };
    if !sak::store::valid_name(&name) || name.starts_with("0x") {
        return Err(Hinted::new(
            format!("`{name}` is not a usable account name"),
            "use letters, digits, `-`, `_` and `.` (up to 64, not starting with `.`, `-` or `0x`)",
        )
        .into());
    }
    match net.accounts.get(&name) {
        Some(a) if a.address != address => Err(Hinted::new(
            format!(
                "the name `{name}` is taken by the account {} on network `{}`",
                a.address, ctx.network_name
            ),
            "pick another --name (`sak account list` shows the names in use)",
        )
        .into()),
        _ => Ok(name),
    }
}

/// Records `record` under `name`; the network's first account becomes its default.
fn adopt(ctx: &Ctx, name: &str, record: &AccountRecord) -> eyre::Result<()> {
    State::update(&ctx.paths.state(), |s| {
        let net = s.networks.entry(ctx.network_name.clone()).or_default();
        net.accounts.insert(name.to_owned(), record.clone());
        net.default_account.get_or_insert_with(|| name.to_owned());
    })?;
    Ok(())
}

/// What `sak account list` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
struct Listing {
    network: String,
    default: Option<String>,
    accounts: Vec<Listed>,
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    kind: AccountKind,
    address: Address,
    owner: Address,
    chain_id: u64,
    default: bool,
}

fn list(ctx: &Ctx) -> eyre::Result<()> {
    let net = ctx.state()?.networks.remove(&ctx.network_name).unwrap_or_default();
    let accounts = net
        .accounts
        .iter()
        .map(|(name, a)| Listed {
            name: name.clone(),
            kind: a.kind,
            address: a.address,
            owner: a.owner,
            chain_id: a.chain_id,
            default: net.default_account.as_ref() == Some(name),
        })
        .collect();
    let out = Listing { network: ctx.network_name.clone(), default: net.default_account, accounts };
    output::emit(&ctx.global, &out, || {
        if out.accounts.is_empty() {
            return format!(
                "no account on network `{}` yet: `sak account create --kind smart` (or --kind 7702)",
                out.network
            );
        }
        let mut s = format!("accounts on network `{}` (* = used without --account)\n", out.network);
        for a in &out.accounts {
            let mark = if a.default { '*' } else { ' ' };
            s += &format!("{mark} {:<16} {:<5}  {}\n", a.name, a.kind.as_str(), a.address);
        }
        s
    })
}

fn use_account(args: UseArgs, ctx: &Ctx) -> eyre::Result<()> {
    let path = ctx.paths.state();
    let net = State::load(&path)?.networks.remove(&ctx.network_name).unwrap_or_default();
    let (name, record) = net.pick(Some(&args.name), &ctx.network_name).map_err(|e| *e)?;
    State::update(&path, |s| {
        s.networks.entry(ctx.network_name.clone()).or_default().default_account = Some(name.clone());
    })?;
    #[derive(Serialize)]
    struct Used {
        network: String,
        default: String,
        address: Address,
        previous: Option<String>,
    }
    let out = Used {
        network: ctx.network_name.clone(),
        default: name,
        address: record.address,
        previous: net.default_account,
    };
    output::emit(&ctx.global, &out, || {
        format!(
            "commands on network `{}` now act on `{}` ({}) without --account",
            out.network, out.default, out.address
        )
    })
}

async fn show(ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let (name, record) = ctx.named_account(chain.chain_id)?;
    let info = info(ctx, &chain, (&name, &record), false, None).await?;
    if info.code_size == 0 {
        output::emit(&ctx.global, &info, || human(&info))?;
        return Err(Hinted::new(
            format!("the account {} has no code on this chain (restarted chain?)", record.address),
            format!("create it again: `sak account create --kind {}`", record.kind.as_str()),
        )
        .into());
    }
    output::emit(&ctx.global, &info, || human(&info))
}

async fn info(
    ctx: &Ctx,
    chain: &Chain,
    (name, record): (&str, &AccountRecord),
    created: bool,
    transaction: Option<B256>,
) -> eyre::Result<AccountInfo> {
    let default = ctx.state()?.networks.get(&ctx.network_name).and_then(|n| n.default_account.clone());
    let code_size = chain.provider.get_code_at(record.address).await?.len();
    // The chain's word, not the home's record: ownership may have moved since.
    let owner = match record.kind {
        AccountKind::Smart if code_size > 0 => SakAccount::new(record.address, &chain.provider)
            .owner()
            .call()
            .await
            .wrap_err("reading the account's owner")?,
        _ => record.owner,
    };
    Ok(AccountInfo {
        network: ctx.network_name.clone(),
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
    })
}

/// ETH and every token of the network's address book.
pub(crate) async fn balances(
    provider: &DynProvider,
    chain: &Chain,
    holder: Address,
) -> eyre::Result<Vec<Balance>> {
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

fn human(info: &AccountInfo) -> String {
    let state = match (info.kind, info.code_size, info.created) {
        (_, 0, _) => "not deployed".to_owned(),
        (AccountKind::Smart, n, true) => format!("deployed now ({n} bytes of code)"),
        (AccountKind::Smart, n, false) => format!("deployed ({n} bytes of code)"),
        (AccountKind::Eip7702, _, true) => "delegated now to Sak7702Account (EIP-7702)".into(),
        (AccountKind::Eip7702, _, false) => "delegated to Sak7702Account (EIP-7702)".into(),
    };
    let mut s = format!(
        "account   {} `{}`{}  ({} account on {}, chain {})\nowner     {}\nadapter   {} (sessions call through it)\nstate     {state}\n",
        info.address,
        info.name,
        if info.default { " (default)" } else { "" },
        info.kind.as_str(),
        info.network,
        info.chain_id,
        info.owner,
        info.adapter
    );
    if !info.home_is_owner {
        s += "note      this home's owner key is not the owner any more (ownership moved): owner commands \
              from here are refused\n";
    }
    if let Some(tx) = info.transaction {
        s += &format!("tx        {tx}\n");
    }
    if let Some(tx) = info.ended_by {
        s += &format!("ended     every session left from before (tx {tx}):\n");
        for l in &info.ended_leftovers {
            s += &format!("            #{} {}\n", l.id, l.detail);
        }
    }
    let shown: Vec<String> = info
        .balances
        .iter()
        .map(|b| format!("{} {}", sak_primitives::units::format_amount(b.raw, Some(b.decimals)), b.asset))
        .collect();
    s += &format!("balances  {}\n", shown.join(", "));
    s
}
