//! `sak session panic`: every session ended and every live allowance of the account set to 0,
//! in one owner transaction ([`sak::owner::approvals::panic_calls`]).

use crate::{
    ctx::Ctx,
    owner_exec::{Confirm, act, owned},
};
use clap::Args;
use sak::owner::approvals::panic_calls;

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

pub(super) async fn panic(args: PanicArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (chain, account) = owned(ctx).await?;
    let (calls, summary) = panic_calls(ctx, &chain, &account, args.keep_approvals, args.from_block).await?;
    act(ctx, (&chain, &account), "panic", summary, calls, &args.confirm).await
}
