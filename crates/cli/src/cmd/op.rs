//! `sak op`: the operations this home signed, and what became of them ([`sak::ops`]): nothing
//! here resubmits an operation.

use crate::{
    ctx::Ctx,
    output::{self, AlreadyReported},
};
use clap::{Args, Subcommand};
use sak::ops::{self, OpOut};
use sak_primitives::units::format_time;

#[derive(Debug, Subcommand)]
pub(crate) enum OpCommand {
    /// Operations signed or reserved and not settled yet (their outcome is unknown).
    #[command(after_help = "Examples:\n  sak op list\n  sak op list --json\n\n\
                  --json prints [{intent, state, chain_id, account, session, nonce_seq, user_op_hash, \
                  created_at, tx_hash, block, reason}].")]
    List,
    /// What became of one operation, settled from the chain. Exit 0: included; 3: still
    /// unknown (signed, not on chain, its nonce free); 4: it never moved anything (reverted,
    /// failed or released).
    #[command(
        after_help = "Examples:\n  sak op status 7\n  sak op status 0x5c1e…  (a user operation hash)\n\n\
                  --json prints {intent, state, chain_id, account, session, nonce_seq, user_op_hash, \
                  created_at, tx_hash, block, reason}."
    )]
    Status(StatusArgs),
    /// Make sure an operation this home signed can never land. With this home's owner key the
    /// owner spends its nonce (EntryPoint.incrementNonce from the account, one owner operation
    /// or transaction); without it, or with --wait, sak waits until the chain passes the
    /// operation's signed deadline. Nothing is resubmitted. Exit 0: too late, it was included;
    /// 4: it can never land (cancelled, expired or failed); 3: still unknown at --timeout.
    #[command(
        after_help = "Examples:\n  sak op cancel 7\n  sak op cancel 0x5c1e…  (a user operation hash)\n  \
                  sak op cancel 7 --wait --timeout 900\n\n\
                  --json prints the operation as `sak op status` does, plus cancelled_by (the owner's \
                  transaction, if one was sent) and how (`owner`, `deadline`, or null when it was settled \
                  already)."
    )]
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The intent number (`sak op list`) or the user operation hash.
    #[arg(value_name = "ID|HASH")]
    op: String,
    /// Do not use the owner key: wait until the chain passes the operation's deadline.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds (exit 3: it may still land).
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The intent number (`sak op list`, or a command's `intent`) or the user operation hash.
    #[arg(value_name = "ID|HASH")]
    op: String,
}

pub(crate) async fn run(command: OpCommand, ctx: &Ctx) -> eyre::Result<()> {
    let ledger = ops::ledger(ctx)?;
    match command {
        OpCommand::List => {
            let ops = ops::unresolved(&ledger)?;
            output::emit(&ctx.global, &ops, || {
                if ops.is_empty() {
                    "nothing in flight: every operation this home signed is settled".into()
                } else {
                    let mut s = String::new();
                    for op in &ops {
                        s += &line(op);
                        s.push('\n');
                    }
                    s + "`sak op status ID` settles one from the chain"
                }
            })
        }
        OpCommand::Status(args) => {
            let out = ops::status(ctx, &ledger, &args.op).await?;
            output::emit(&ctx.global, &out, || line(&out))?;
            outcome(out.intent, out.state)
        }
        OpCommand::Cancel(args) => {
            let out = ops::cancel(ctx, &ledger, &args.op, args.wait, args.timeout).await?;
            output::emit(&ctx.global, &out, || match (out.op.state, out.how) {
                ("included", Some(_)) => format!("too late: it was included\n{}", line(&out.op)),
                ("failed", Some("owner")) => format!(
                    "cancelled: the owner spent its nonce (tx {}); it can never land\n{}",
                    out.cancelled_by.unwrap_or_default(),
                    line(&out.op)
                ),
                ("failed", Some("deadline")) => format!("it can never land now\n{}", line(&out.op)),
                _ => line(&out.op),
            })?;
            outcome(out.op.intent, out.op.state)
        }
    }
}

/// One operation in a line.
fn line(op: &OpOut) -> String {
    let hash = op.user_op_hash.map(|h| format!(" op {h}")).unwrap_or_default();
    let tail = match (&op.tx_hash, &op.reason) {
        (Some(tx), _) => format!(" in tx {tx} (block {})", op.block.unwrap_or_default()),
        (None, Some(why)) => format!(" ({why})"),
        _ => String::new(),
    };
    format!(
        "#{} {:<9} session {} on {} (chain {}), {}{hash}{tail}",
        op.intent,
        op.state,
        op.session,
        op.account,
        op.chain_id,
        format_time(op.created_at)
    )
}

/// The exit status for an operation in `state`: 0 included, 3 it may still land, 4 it never will.
fn outcome(id: i64, state: &str) -> eyre::Result<()> {
    match state {
        "included" => Ok(()),
        "reserved" | "signed" | "submitted" => Err(AlreadyReported {
            message: format!(
                "intent {id}: signed, not on chain yet, its nonce still free: it may still land"
            ),
            hint: "check again later, or `sak op cancel` it; the next operation on this session takes its \
                   nonce, after which it can never land",
            code: 3,
        }
        .into()),
        _ => Err(AlreadyReported {
            message: format!("intent {id}: {state}: nothing moved but gas"),
            hint: "it will never land; run the operation again if it is still wanted",
            code: 4,
        }
        .into()),
    }
}
