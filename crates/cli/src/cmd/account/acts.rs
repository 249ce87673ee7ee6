//! The owner's own acts on its account: `sak account call`, `withdraw`, `approvals` and
//! `revoke-approval`. Each act is a dry run, a question and the owner's transaction
//! ([`crate::owner_exec`]). `approvals` reads the chain ([`sak::owner::approvals`]).

use crate::{
    call_args::{encode_sig, parse_hex, parse_value, resolve},
    ctx::Ctx,
    output::{self, Hinted},
    owner_exec::{Acted, Confirm, act, owned},
};
use alloy::{
    primitives::{Bytes, U256},
    sol_types::SolCall,
};
use clap::Args;
use eyre::WrapErr;
use sak::owner::approvals::{
    decimals_of, head_and_time, live_allowances, permit2_on_chain, revoke_call, show_allowance,
};
use sak_contracts::{MockERC20, MockPermit2};
use sak_policy::Call;
use sak_primitives::{PERMIT2, units::format_time};

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
    act(ctx, (&chain, &account), "call", summary, vec![Call::new(target, value, data)], &args.confirm).await
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
    act(ctx, (&chain, &account), "withdraw", summary, vec![call], &args.confirm).await
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

pub(crate) async fn revoke_approval(args: RevokeApprovalArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let token = resolve(&chain, &args.token, "--token")?;
    let spender = resolve(&chain, &args.spender, "--spender")?;
    let names = format!("{} to {}", chain.contracts.name(token), chain.contracts.name(spender));
    let current = if args.permit2 {
        if !permit2_on_chain(&chain).await? {
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
        U256::from(a.amount)
    } else {
        MockERC20::new(token, &chain.provider)
            .allowance(account.address, spender)
            .call()
            .await
            .wrap_err("reading the allowance (allowance)")?
    };
    let call = revoke_call(args.permit2, token, spender);
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
    act(ctx, (&chain, &account), "revoke-approval", summary, vec![call], &args.confirm).await
}

fn show(raw: U256, decimals: Option<u8>) -> String {
    sak_primitives::units::format_amount(raw, decimals)
}
