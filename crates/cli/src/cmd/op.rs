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
    /// Replace a stuck operation (signed, not on chain, its nonce free) with a fee bump: the
    /// same calls at the same nonce, re-signed with the session key at fees --percent higher
    /// (and at least the next block's price, within the session's max fee per gas), keeping the
    /// original's signed deadline. Whichever of the two lands takes the nonce, so at most one
    /// does; `sak op status` follows both. Exit 0: included; 1: refused (nothing signed, the
    /// original as it was); 3: still unknown; 4: it can never land (failed or reverted).
    #[command(after_help = "Examples:\n  sak op bump 7\n  sak op bump 0x5c1e… --percent 50\n  \
                  sak op bump 7 --via bundler\n\n\
                  --json prints the operation as `sak op status` does; replaces lists the intent's other \
                  operations (user_op_hash is the one that landed, once included).")]
    Bump(BumpArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BumpArgs {
    /// The intent number (`sak op list`) or the user operation hash.
    #[arg(value_name = "ID|HASH")]
    op: String,
    /// How much higher the fees are, in percent (at least 10: mempools replace at 10% or more).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(10..=1000))]
    percent: u64,
    /// The session key (name or address) [default: the key the session was granted to here].
    #[arg(long)]
    key: Option<String>,
    /// How to send the replacement (a self-bundled replacement takes the place of the
    /// original's pending bundle transaction).
    #[arg(long, value_enum, default_value = "self")]
    via: sak::agent::Via,
    /// The bundler for --via bundler [default: the network's bundler_url].
    #[arg(long, value_name = "URL")]
    bundler_url: Option<String>,
    /// How long to wait for inclusion before reporting the outcome unknown (exit 3).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
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
        OpCommand::Bump(args) => {
            let mut options = sak::agent::Options::new(0);
            options.key = args.key;
            options.via = args.via;
            options.bundler_url = args.bundler_url;
            options.receipt_timeout = Some(std::time::Duration::from_secs(args.timeout));
            let out = ops::bump(ctx, &ledger, &args.op, options, args.percent).await?;
            output::emit(&ctx.global, &out, || {
                let replaced = match (out.state, out.replaces.len()) {
                    ("included" | "reverted", 0) => "settled already: nothing was bumped\n",
                    ("included" | "reverted", _) => {
                        "included (the operations it replaced can never land now)\n"
                    }
                    _ => "",
                };
                format!("{replaced}{}", line(&out))
            })?;
            outcome(out.intent, out.state)
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
