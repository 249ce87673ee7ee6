//! `sak op`: the operations this home signed, and what became of them. Nothing here signs or
//! sends: `status` settles an operation by what the chain shows (included, or its nonce taken
//! by another operation), never by resubmitting it.

use crate::{
    ctx::Ctx,
    output::{self, AlreadyReported, Hinted},
};
use alloy::primitives::B256;
use clap::{Args, Subcommand};
use sak_primitives::units::format_time;
use sak_signer::{
    ledger::{IntentId, IntentRecord, Ledger, Outcome},
    settle::{Settler, lane_of},
};
use serde::Serialize;
use std::sync::Arc;

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
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The intent number (`sak op list`, or a command's `intent`) or the user operation hash.
    #[arg(value_name = "ID|HASH")]
    op: String,
}

/// One operation in `sak op --json`.
#[derive(Debug, Serialize)]
struct OpOut {
    intent: i64,
    /// `reserved`, `signed`, `submitted` (outcome unknown), `included`, `reverted` (included,
    /// its calls reverted), `failed` or `released` (never signed).
    state: &'static str,
    chain_id: u64,
    account: alloy::primitives::Address,
    session: u32,
    nonce_seq: Option<u64>,
    user_op_hash: Option<B256>,
    /// When the intent was made (unix seconds, chain time).
    created_at: u64,
    tx_hash: Option<B256>,
    block: Option<u64>,
    reason: Option<String>,
}

impl From<&IntentRecord> for OpOut {
    fn from(r: &IntentRecord) -> Self {
        let (mut state, mut tx_hash, mut block, mut reason) = (r.state.as_str(), None, None, None);
        match &r.outcome {
            Some(Outcome::Included { success, tx_hash: t, block: b, .. }) => {
                state = if *success { "included" } else { "reverted" };
                (tx_hash, block) = (Some(*t), Some(*b));
            }
            Some(Outcome::Failed { reason: why } | Outcome::Released { reason: why }) => {
                reason = Some(why.clone())
            }
            None => {}
        }
        let session =
            u32::try_from(alloy::primitives::U256::from_be_bytes(r.intent.session_id.0)).unwrap_or(u32::MAX);
        Self {
            intent: r.id.0,
            state,
            chain_id: r.intent.chain_id,
            account: r.intent.account,
            session,
            nonce_seq: r.signed.as_ref().map(|s| s.nonce_seq).or(r.intent.nonce_seq),
            user_op_hash: r.signed.as_ref().map(|s| s.user_op_hash),
            created_at: r.intent.created_at,
            tx_hash,
            block,
            reason,
        }
    }
}

impl OpOut {
    fn line(&self) -> String {
        let hash = self.user_op_hash.map(|h| format!(" op {h}")).unwrap_or_default();
        let tail = match (&self.tx_hash, &self.reason) {
            (Some(tx), _) => format!(" in tx {tx} (block {})", self.block.unwrap_or_default()),
            (None, Some(why)) => format!(" ({why})"),
            _ => String::new(),
        };
        format!(
            "#{} {:<9} session {} on {} (chain {}), {}{hash}{tail}",
            self.intent,
            self.state,
            self.session,
            self.account,
            self.chain_id,
            format_time(self.created_at)
        )
    }
}

pub(crate) async fn run(command: OpCommand, ctx: &Ctx) -> eyre::Result<()> {
    let path = ctx.paths.ledger();
    if !path.exists() {
        return Err(Hinted::new(
            format!("no spend ledger at {}: this home has signed nothing yet", path.display()),
            "`sak swap` or `sak send` under a session records its operations there",
        )
        .into());
    }
    let ledger = Arc::new(crate::store::open_ledger(&path)?);
    match command {
        OpCommand::List => {
            let ops: Vec<OpOut> = ledger.unresolved()?.iter().map(OpOut::from).collect();
            output::emit(&ctx.global, &ops, || {
                if ops.is_empty() {
                    "nothing in flight: every operation this home signed is settled".into()
                } else {
                    let mut s = String::new();
                    for op in &ops {
                        s += &op.line();
                        s.push('\n');
                    }
                    s + "`sak op status ID` settles one from the chain"
                }
            })
        }
        OpCommand::Status(args) => {
            let id = find(&ledger, &args.op)?;
            let rec = ledger.get(id)?;
            let chain = ctx.chain().await?;
            if rec.intent.chain_id != chain.chain_id {
                return Err(Hinted::new(
                    format!(
                        "intent {id} is on chain {}, the network {} is chain {}",
                        rec.intent.chain_id, ctx.network_name, chain.chain_id
                    ),
                    "pass --network for the chain the operation was signed on",
                )
                .into());
            }
            let session = OpOut::from(&rec).session;
            let settler =
                Settler::new(chain.provider.clone(), chain.contracts.entry_point, Arc::clone(&ledger))
                    .with_wait_notice(super::send::lane_wait_notice(&ctx.global, session));
            // After a reset under the same chain id, the old chain's operations are retired.
            settler.bind_chain(chain.chain_id).await?;
            let rec = ledger.get(id)?;
            if rec.state.is_pending() {
                let lane = lane_of(&rec);
                output::progress(&ctx.global, &format!("settling intent {id} from the chain…"));
                let lock = settler.lock_lane(lane).await?;
                settler.settle_lane(lane, &lock).await?;
            }
            let out = OpOut::from(&ledger.get(id)?);
            output::emit(&ctx.global, &out, || out.line())?;
            match out.state {
                "included" => Ok(()),
                "reserved" | "signed" | "submitted" => Err(AlreadyReported {
                    message: format!("intent {id}: signed, not on chain yet, its nonce still free: it may still land"),
                    hint: "check again later; the next operation on this session takes its nonce, after which it \
                           can never land",
                    code: 3,
                }
                .into()),
                _ => Err(AlreadyReported {
                    message: format!("intent {id}: {}: nothing moved but gas", out.state),
                    hint: "it will never land; run the operation again if it is still wanted",
                    code: 4,
                }
                .into()),
            }
        }
    }
}

/// The intent named by a number or a user operation hash.
fn find(ledger: &sak_signer::ledger::SqliteLedger, op: &str) -> eyre::Result<IntentId> {
    let op = op.trim().trim_start_matches('#');
    if let Ok(n) = op.parse::<i64>() {
        ledger.get(IntentId(n)).map_err(|_| not_found(op))?;
        return Ok(IntentId(n));
    }
    let hash: B256 = op.parse().map_err(|_| {
        Hinted::new(
            format!("`{op}` is neither an intent number nor a 32-byte user operation hash"),
            "pass the number `sak op list` shows, or the 0x… user_op_hash a command printed",
        )
    })?;
    let found = ledger.intents_by_user_op_hash(hash)?;
    found.iter().map(|r| r.id).next().ok_or_else(|| not_found(op))
}

fn not_found(op: &str) -> eyre::Report {
    Hinted::new(
        format!("no operation {op} in this home's ledger"),
        "`sak op list` shows what is in flight; `sak audit` shows every decision",
    )
    .into()
}
