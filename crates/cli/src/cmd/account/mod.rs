//! `sak account create|show|transfer-ownership|accept-ownership|undelegate`: the owner's account
//! on the network.

use crate::{
    ctx::Ctx,
    output::{self, Hinted},
    store::{AccountKind, AccountRecord, State},
};
use alloy::primitives::{Address, B256};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak::owner::{AccountInfo, account_info, adopt, free_name, owner_call_error, require_gas_money};
use sak_contracts::SakAccount;
use serde::Serialize;

mod acts;
mod create;

use create::*;

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create the owner's account: a smart account (its address is printed before it is
    /// deployed) or the owner EOA itself, delegated to Sak7702Account with EIP-7702. Running it
    /// again changes nothing.
    #[command(
        after_help = "Examples:\n  sak account create --kind smart\n  sak account create --kind 7702 --json\n  \
                      sak account create --kind 7579"
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
    /// `smart` (SakAccountFactory), `7702` (the owner EOA delegated in place) or `7579` (a modular
    /// ERC-7579 account from Sak7579AccountFactory, its sessions kept by the SessionKeyValidator
    /// module).
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
        let why = match record.kind {
            AccountKind::Erc7579 => "a modular (7579) account, whose owner key sak does not rotate yet",
            _ => "a delegated EOA: its owner is its own key, which cannot change hands",
        };
        return Err(Hinted::refused(
            format!("{} is {why}", record.address),
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
    require_gas_money(ctx, &chain, me).await?;
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
    let info = account_info(ctx, &chain, (&name, &record), false, None).await?;
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

fn human(info: &AccountInfo) -> String {
    let state = match (info.kind, info.code_size, info.created) {
        (_, 0, _) => "not deployed".to_owned(),
        (AccountKind::Smart, n, true) => format!("deployed now ({n} bytes of code)"),
        (AccountKind::Smart, n, false) => format!("deployed ({n} bytes of code)"),
        (AccountKind::Erc7579, n, true) => {
            format!("deployed now ({n} bytes of code), sessions kept by the SessionKeyValidator module")
        }
        (AccountKind::Erc7579, n, false) => {
            format!("deployed ({n} bytes of code), sessions kept by the SessionKeyValidator module")
        }
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
