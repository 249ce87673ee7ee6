//! The owner acting from its account (`sak account call|withdraw|revoke-approval`, `sak session
//! panic`): each act is a dry run first (the calls run as the account with `eth_call`), then
//! asks (`--yes` for scripts), then is sent as the owner by the facade
//! ([`sak::owner::execute`]).

use crate::{
    ctx::{Chain, Ctx},
    global::GlobalArgs,
    output::{self, Hinted},
    store::AccountRecord,
};
use alloy::primitives::{Address, B256, Bytes, U256};
use clap::Args;
use sak::owner::{execute, simulate};
use sak_policy::Call;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};

/// `--yes` and `--dry-run`, on every owner act.
#[derive(Debug, Args)]
pub(crate) struct Confirm {
    /// Send without asking (scripts; without it a non-terminal run is refused, nothing sent).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Only the dry run: show what would be sent, send nothing.
    #[arg(long, conflicts_with = "yes")]
    pub(crate) dry_run: bool,
}

/// What an owner act did (`--json`).
#[derive(Debug, Serialize)]
pub(crate) struct Acted {
    /// `call`, `withdraw`, `revoke-approval` or `panic`.
    pub(crate) action: &'static str,
    pub(crate) account: Address,
    /// What it does, in words.
    pub(crate) summary: String,
    pub(crate) calls: Vec<CallOut>,
    /// True: only the dry run ran; nothing was sent.
    pub(crate) dry_run: bool,
    /// The transaction that carried it (null on a dry run, or when there was nothing to do).
    pub(crate) transaction: Option<B256>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CallOut {
    to: Address,
    value: U256,
    data: Bytes,
}

/// The network's chain and this home's account on it.
pub(crate) async fn owned(ctx: &Ctx) -> eyre::Result<(Chain, AccountRecord)> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    Ok((chain, account))
}

/// Dry run, confirmation, then the owner's calls; prints the outcome.
pub(crate) async fn act(
    ctx: &Ctx,
    (chain, account): (&Chain, &AccountRecord),
    action: &'static str,
    summary: String,
    calls: Vec<Call>,
    confirm: &Confirm,
) -> eyre::Result<()> {
    simulate(chain, account, &calls).await?;
    output::progress(&ctx.global, &format!("dry run ok: {summary}"));
    let transaction = if confirm.dry_run {
        None
    } else {
        self::confirm(&ctx.global, confirm.yes, &format!("send it from {}?", account.address))?;
        Some(execute(ctx, chain, account, &calls, action).await?)
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

/// Asks before an owner action: `--yes` proceeds; on a terminal the user answers; anything
/// else (a script without `--yes`, `--json` without `--yes`) is refused (exit 1): nothing sent.
fn confirm(global: &GlobalArgs, yes: bool, question: &str) -> eyre::Result<()> {
    if yes {
        return Ok(());
    }
    if global.json || !std::io::stdin().is_terminal() {
        return Err(Hinted::refused(
            format!("not confirmed: {question} (nothing was sent)"),
            "pass --yes to send it from a script, or run it on a terminal to answer",
        )
        .into());
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Hinted::refused("declined: nothing was sent", "run it again and answer y to send it").into())
    }
}
