//! The owner's own acts on its account: `sak account call`, `withdraw`, `approvals` and
//! `revoke-approval`. Each act is a dry run first (the calls run as the account with
//! `eth_call`), then asks (`--yes` for scripts), then is sent as the owner
//! ([`crate::owner_exec`]). `approvals` reads the chain: every ERC-20 `Approval` the account
//! gave and every Permit2 allowance, with what remains of each now.

use crate::{
    call_args::{encode_sig, parse_hex, parse_value, resolve},
    ctx::{Chain, Ctx},
    output::{self, Hinted},
    owner_exec, scan,
    store::AccountRecord,
};
use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U160},
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent},
};
use clap::Args;
use eyre::WrapErr;
use sak_contracts::{MockERC20, MockPermit2};
use sak_policy::Call;
use sak_primitives::{PERMIT2, units::format_time};
use serde::Serialize;
use std::collections::BTreeSet;

/// `--yes` and `--dry-run`, on every owner act.
#[derive(Debug, Args)]
pub(crate) struct Confirm {
    /// Send without asking (scripts; without it a non-terminal run is refused, nothing sent).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Only the dry run: show what would be sent, send nothing.
    #[arg(long, conflicts_with = "yes")]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The contract or address the account calls (0x address or a name from the book).
    #[arg(long, value_name = "ADDR|NAME")]
    to: String,
    /// ETH the account sends with the call (`0.01ether`, `1gwei`, or wei).
    #[arg(long, default_value = "0")]
    value: String,
    /// Raw call data (hex).
    #[arg(long, conflicts_with = "sig")]
    data: Option<String>,
    /// A function signature, with ARGS after it: 'approve(address,uint256)' router 0.
    #[arg(long)]
    sig: Option<String>,
    /// The function's arguments (addresses may be names from the book).
    #[arg(requires = "sig", num_args = 0.., allow_negative_numbers = true)]
    args: Vec<String>,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
pub(crate) struct WithdrawArgs {
    /// Where the funds go.
    #[arg(long, value_name = "ADDR|NAME")]
    to: String,
    /// How much, in whole units (`2.5`), or `all` (tokens only: ETH also pays the gas).
    #[arg(long)]
    amount: String,
    /// The token [default: ETH].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
pub(crate) struct ApprovalsArgs {
    /// Where the scan of the account's approval events starts [default: 0; on a long chain give
    /// the account's first block].
    #[arg(long, value_name = "N", default_value_t = 0)]
    from_block: u64,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeApprovalArgs {
    /// The token approved.
    #[arg(long, value_name = "TOKEN")]
    token: String,
    /// Who may spend it.
    #[arg(long, value_name = "ADDR|NAME")]
    spender: String,
    /// The Permit2 allowance of (token, spender), not the token's own `approve`.
    #[arg(long)]
    permit2: bool,
    #[command(flatten)]
    confirm: Confirm,
}

#[derive(Debug, Args)]
pub(crate) struct PanicArgs {
    /// Leave the account's allowances as they are: only end every session.
    #[arg(long)]
    keep_approvals: bool,
    /// Where the scan for the account's allowances starts [default: 0].
    #[arg(long, value_name = "N", default_value_t = 0)]
    from_block: u64,
    #[command(flatten)]
    confirm: Confirm,
}

/// What an owner act did (`--json`).
#[derive(Debug, Serialize)]
struct Acted {
    /// `call`, `withdraw`, `revoke-approval` or `panic`.
    action: &'static str,
    account: Address,
    /// What it does, in words.
    summary: String,
    calls: Vec<CallOut>,
    /// True: only the dry run ran; nothing was sent.
    dry_run: bool,
    /// The transaction that carried it (null on a dry run, or when there was nothing to do).
    transaction: Option<B256>,
}

#[derive(Debug, Serialize)]
struct CallOut {
    to: Address,
    value: U256,
    data: Bytes,
}

/// Dry run, confirmation, then the owner's calls; prints the outcome.
async fn act(
    ctx: &Ctx,
    chain: &Chain,
    account: &AccountRecord,
    action: &'static str,
    summary: String,
    calls: Vec<Call>,
    confirm: &Confirm,
) -> eyre::Result<()> {
    owner_exec::simulate(chain, account, &calls).await?;
    output::progress(&ctx.global, &format!("dry run ok: {summary}"));
    let transaction = if confirm.dry_run {
        None
    } else {
        owner_exec::confirm(&ctx.global, confirm.yes, &format!("send it from {}?", account.address))?;
        Some(owner_exec::execute(ctx, chain, account, &calls, action).await?)
    };
    let out = Acted {
        action,
        account: account.address,
        summary,
        calls: calls.iter().map(|c| CallOut { to: c.target, value: c.value, data: c.data.clone() }).collect(),
        dry_run: confirm.dry_run,
        transaction,
    };
    output::emit(&ctx.global, &out, || match out.transaction {
        Some(tx) => format!("done: {}\n  tx  {tx}", out.summary),
        None => format!("dry run: {} (nothing sent; run without --dry-run to send it)", out.summary),
    })
}

/// The network's chain and this home's account on it.
async fn owned(ctx: &Ctx) -> eyre::Result<(Chain, AccountRecord)> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    Ok((chain, account))
}

pub(crate) async fn call(args: CallArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let target = resolve(&chain, &args.to, "--to")?;
    let value = parse_value(&args.value, "--value")?;
    let data = match (&args.data, &args.sig) {
        (Some(hex), _) => parse_hex(hex, "--data")?,
        (None, Some(sig)) => encode_sig(sig, &args.args, &chain)?,
        (None, None) => Bytes::new(),
    };
    let what = args.sig.as_deref().map_or_else(
        || {
            if data.is_empty() {
                "a plain transfer".to_owned()
            } else {
                format!("{} bytes of call data", data.len())
            }
        },
        |sig| format!("{sig} {}", args.args.join(" ")).trim_end().to_owned(),
    );
    let summary = format!(
        "the account calls {} with {what}{}",
        chain.contracts.name(target),
        if value.is_zero() { String::new() } else { format!(", sending {} ETH", show(value, Some(18))) }
    );
    act(ctx, &chain, &account, "call", summary, vec![Call::new(target, value, data)], &args.confirm).await
}

pub(crate) async fn withdraw(args: WithdrawArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let to = resolve(&chain, &args.to, "--to")?;
    let amount_hint = "write an amount in whole units (2.5), or all for a token's whole balance";
    let (call, summary) = match &args.token {
        None => {
            let value = sak_primitives::units::parse_amount(&args.amount, Some(18)).ok_or_else(|| {
                Hinted::new(format!("--amount {:?} is not an amount of ETH", args.amount), amount_hint)
            })?;
            (
                Call::new(to, value, Bytes::new()),
                format!("withdraw {} ETH to {}", show(value, Some(18)), chain.contracts.name(to)),
            )
        }
        Some(token) => {
            let token = resolve(&chain, token, "--token")?;
            let decimals = decimals_of(&chain, token).await;
            let amount = if args.amount.trim() == "all" {
                MockERC20::new(token, &chain.provider)
                    .balanceOf(account.address)
                    .call()
                    .await
                    .wrap_err("reading the account's token balance (balanceOf)")?
            } else {
                sak_primitives::units::parse_amount(&args.amount, Some(decimals.unwrap_or(0))).ok_or_else(
                    || {
                        Hinted::new(
                            format!(
                                "--amount {:?} is not an amount of {}",
                                args.amount,
                                chain.contracts.name(token)
                            ),
                            amount_hint,
                        )
                    },
                )?
            };
            if amount.is_zero() {
                return Err(Hinted::new(
                    format!("nothing to withdraw: the amount of {} is 0", chain.contracts.name(token)),
                    "`sak account show` lists the account's balances",
                )
                .into());
            }
            let data = MockERC20::transferCall { to, value: amount }.abi_encode();
            (
                Call::new(token, U256::ZERO, data),
                format!(
                    "withdraw {} {} to {}",
                    show(amount, decimals),
                    chain.contracts.name(token),
                    chain.contracts.name(to)
                ),
            )
        }
    };
    act(ctx, &chain, &account, "withdraw", summary, vec![call], &args.confirm).await
}

/// One live allowance of the account.
#[derive(Debug, Serialize)]
struct Allowance {
    /// `erc20` (the token's own allowance) or `permit2` (Permit2's allowance, itself drawing on
    /// the token's allowance to Permit2).
    kind: &'static str,
    token: Address,
    token_name: String,
    spender: Address,
    spender_name: String,
    /// In whole units when the decimals are known, else base units; `unlimited` for the maximum.
    amount: String,
    raw: U256,
    /// Permit2: when it expires (unix seconds) and whether that has passed.
    expires_at: Option<u64>,
    expired: bool,
    /// The command that revokes it.
    fix: String,
}

/// The account's live allowances: every (token, spender) its `Approval` events name in blocks
/// `range`, with what remains now; Permit2's too when Permit2 is on the chain (second value).
async fn live_allowances(
    ctx: &Ctx,
    chain: &Chain,
    account: Address,
    range: (u64, u64),
    now: u64,
) -> eyre::Result<(Vec<Allowance>, bool)> {
    let owner_topic = account.into_word();
    // ERC-20 approvals: any contract's `Approval(owner, spender, value)` with the account as
    // owner (ERC-721's has a fourth topic, the token id, and is left out).
    let erc20 = Filter::new().event_signature(MockERC20::Approval::SIGNATURE_HASH).topic1(owner_topic);
    let mut pairs = BTreeSet::new();
    for log in scan::logs(ctx, &chain.provider, &erc20, range, "the account's token approvals").await? {
        if let [_, _, spender] = log.topics() {
            pairs.insert((log.address(), Address::from_word(*spender)));
        }
    }
    let mut out = Vec::new();
    for (token, spender) in pairs {
        let Ok(raw) = MockERC20::new(token, &chain.provider).allowance(account, spender).call().await else {
            continue; // not an ERC-20 after all
        };
        if !raw.is_zero() {
            out.push(allowance(chain, "erc20", token, spender, raw, None, now).await);
        }
    }
    let permit2_on_chain =
        !chain.provider.get_code_at(PERMIT2).await.wrap_err("reading Permit2's code")?.is_empty();
    if permit2_on_chain {
        let filter = Filter::new()
            .address(PERMIT2)
            .event_signature(MockPermit2::Approval::SIGNATURE_HASH)
            .topic1(owner_topic);
        let mut pairs = BTreeSet::new();
        for log in scan::logs(ctx, &chain.provider, &filter, range, "the account's Permit2 approvals").await?
        {
            if let [_, _, token, spender] = log.topics() {
                pairs.insert((Address::from_word(*token), Address::from_word(*spender)));
            }
        }
        let permit2 = MockPermit2::new(PERMIT2, &chain.provider);
        for (token, spender) in pairs {
            let a = permit2.allowance(account, token, spender).call().await.wrap_err("Permit2.allowance")?;
            if !a.amount.is_zero() {
                let expires = Some(a.expiration.to::<u64>());
                out.push(
                    allowance(chain, "permit2", token, spender, U256::from(a.amount), expires, now).await,
                );
            }
        }
    }
    Ok((out, permit2_on_chain))
}

/// The chain's head and its time.
async fn head_and_time(chain: &Chain) -> eyre::Result<(u64, u64)> {
    let latest = chain
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .wrap_err("reading the latest block")?
        .ok_or_else(|| eyre::eyre!("the node has no latest block"))?;
    Ok((latest.header.number, latest.header.timestamp))
}

pub(crate) async fn approvals(args: ApprovalsArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let (head, now) = head_and_time(&chain).await?;
    let range = (args.from_block.min(head), head);
    let (out, permit2_on_chain) = live_allowances(ctx, &chain, account.address, range, now).await?;
    let doc = serde_json::json!({
        "account": account.address,
        "from_block": range.0,
        "to_block": range.1,
        "permit2_on_chain": permit2_on_chain,
        "approvals": out,
    });
    output::emit(&ctx.global, &doc, || {
        if out.is_empty() {
            return format!(
                "no live allowance of {} (blocks {}..={} scanned)",
                account.address, range.0, range.1
            );
        }
        let mut s =
            format!("{:<8} {:<14} {:<44} {:<22} {}\n", "kind", "token", "spender", "amount", "expires");
        for a in &out {
            s += &format!(
                "{:<8} {:<14} {:<44} {:<22} {}\n          fix: {}\n",
                a.kind,
                a.token_name,
                a.spender_name,
                a.amount,
                match (a.expires_at, a.expired) {
                    (None, _) => "-".to_owned(),
                    (Some(t), false) => format_time(t),
                    (Some(t), true) => format!("expired {}", format_time(t)),
                },
                a.fix
            );
        }
        s
    })
}

async fn allowance(
    chain: &Chain,
    kind: &'static str,
    token: Address,
    spender: Address,
    raw: U256,
    expires_at: Option<u64>,
    now: u64,
) -> Allowance {
    let decimals = decimals_of(chain, token).await;
    let token_name = chain.contracts.name(token);
    let spender_name = chain.contracts.name(spender);
    Allowance {
        kind,
        amount: show_allowance(raw, decimals),
        fix: format!(
            "sak account revoke-approval --token {token_name} --spender {spender_name}{}",
            if kind == "permit2" { " --permit2" } else { "" }
        ),
        token,
        token_name,
        spender,
        spender_name,
        raw,
        expires_at,
        expired: expires_at.is_some_and(|t| t < now),
    }
}

pub(crate) async fn revoke_approval(args: RevokeApprovalArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let token = resolve(&chain, &args.token, "--token")?;
    let spender = resolve(&chain, &args.spender, "--spender")?;
    let names = format!("{} to {}", chain.contracts.name(token), chain.contracts.name(spender));
    let (current, call) = if args.permit2 {
        if chain.provider.get_code_at(PERMIT2).await.wrap_err("reading Permit2's code")?.is_empty() {
            return Err(Hinted::new(
                "Permit2 is not deployed on this chain: there is no Permit2 allowance to revoke",
                "leave out --permit2 to revoke the token's own approval",
            )
            .into());
        }
        let a = MockPermit2::new(PERMIT2, &chain.provider)
            .allowance(account.address, token, spender)
            .call()
            .await
            .wrap_err("Permit2.allowance")?;
        let data =
            MockPermit2::approveCall { token, spender, amount: U160::ZERO, expiration: Default::default() };
        (U256::from(a.amount), Call::new(PERMIT2, U256::ZERO, data.abi_encode()))
    } else {
        let raw = MockERC20::new(token, &chain.provider)
            .allowance(account.address, spender)
            .call()
            .await
            .wrap_err("reading the allowance (allowance)")?;
        (
            raw,
            Call::new(token, U256::ZERO, MockERC20::approveCall { spender, value: U256::ZERO }.abi_encode()),
        )
    };
    let kind = if args.permit2 { "Permit2 allowance" } else { "allowance" };
    if current.is_zero() {
        let out = Acted {
            action: "revoke-approval",
            account: account.address,
            summary: format!("no {kind} of {names} to revoke: it is 0"),
            calls: Vec::new(),
            dry_run: args.confirm.dry_run,
            transaction: None,
        };
        return output::emit(&ctx.global, &out, || out.summary.clone());
    }
    let summary = format!(
        "set the {kind} of {names} to 0 (was {})",
        show_allowance(current, decimals_of(&chain, token).await)
    );
    act(ctx, &chain, &account, "revoke-approval", summary, vec![call], &args.confirm).await
}

/// `sak session panic`: every session ended and every live allowance of the account set to 0,
/// in one owner transaction.
pub(crate) async fn panic(args: PanicArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let mut calls = vec![Call::new(
        account.address,
        U256::ZERO,
        sak_contracts::SakAccount::revokeAllSessionsCall {}.abi_encode(),
    )];
    let mut zeroed = Vec::new();
    if !args.keep_approvals {
        let (head, now) = head_and_time(&chain).await?;
        let (live, _) =
            live_allowances(ctx, &chain, account.address, (args.from_block.min(head), head), now).await?;
        for a in live {
            calls.push(if a.kind == "permit2" {
                let zero = MockPermit2::approveCall {
                    token: a.token,
                    spender: a.spender,
                    amount: U160::ZERO,
                    expiration: Default::default(),
                };
                Call::new(PERMIT2, U256::ZERO, zero.abi_encode())
            } else {
                Call::new(
                    a.token,
                    U256::ZERO,
                    MockERC20::approveCall { spender: a.spender, value: U256::ZERO }.abi_encode(),
                )
            });
            zeroed.push(format!("{} {} to {}", a.kind, a.token_name, a.spender_name));
        }
    }
    let summary = match zeroed.len() {
        0 => "revoke every session (revokeAllSessions); no allowance to zero".to_owned(),
        n => format!(
            "revoke every session (revokeAllSessions) and set {n} allowance{} to 0 ({})",
            if n == 1 { "" } else { "s" },
            zeroed.join(", ")
        ),
    };
    act(ctx, &chain, &account, "panic", summary, calls, &args.confirm).await
}

/// A token's decimals: from the book, else asked of the token (None if it does not answer).
async fn decimals_of(chain: &Chain, token: Address) -> Option<u8> {
    match chain.contracts.decimals(token) {
        Some(d) => Some(d),
        None => MockERC20::new(token, &chain.provider).decimals().call().await.ok(),
    }
}

/// An allowance: `unlimited` for the maximum (the token's, or Permit2's uint160), else as
/// [`show`].
fn show_allowance(raw: U256, decimals: Option<u8>) -> String {
    if raw == U256::MAX || raw == U256::from(U160::MAX) { "unlimited".into() } else { show(raw, decimals) }
}

fn show(raw: U256, decimals: Option<u8>) -> String {
    sak_primitives::units::format_amount(raw, decimals)
}
