//! `sak op`: the operations this home signed, and what became of them. Nothing here resubmits
//! an operation: `status` settles one by what the chain shows (included, its nonce taken by
//! another operation, or its deadline passed); `cancel` makes sure one never lands, by the
//! owner spending its nonce or by waiting out its deadline.

use crate::{
    ctx::{Chain, Ctx},
    output::{self, AlreadyReported, Hinted},
};
use alloy::{
    primitives::{B256, U256, aliases::U192},
    providers::Provider,
    sol_types::SolValue,
};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak_contracts::IEntryPoint;
use sak_policy::Call;
use sak_primitives::units::format_time;
use sak_signer::{
    ledger::{IntentId, IntentRecord, LaneLock, Ledger, Outcome, SqliteLedger},
    settle::{Settler, lane_of},
};
use sak_userop::{UserOp, session_envelope};
use serde::Serialize;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

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
            let (_chain, settler, id) = settler_for(ctx, &ledger, &args.op).await?;
            let rec = ledger.get(id)?;
            if rec.state.is_pending() {
                let lane = lane_of(&rec);
                output::progress(&ctx.global, &format!("settling intent {id} from the chain…"));
                let lock = settler.lock_lane(lane).await?;
                settler.settle_lane(lane, &lock).await?;
            }
            let out = OpOut::from(&ledger.get(id)?);
            output::emit(&ctx.global, &out, || out.line())?;
            outcome(id, out.state)
        }
        OpCommand::Cancel(args) => cancel(ctx, &ledger, &args).await,
    }
}

/// The chain, a settler bound to it (after a reset under the same chain id, the old chain's
/// operations are retired) and the intent named by `op`, which must be of this chain.
async fn settler_for(
    ctx: &Ctx,
    ledger: &Arc<SqliteLedger>,
    op: &str,
) -> eyre::Result<(Chain, Settler<SqliteLedger>, IntentId)> {
    let id = find(ledger, op)?;
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
    let settler = Settler::new(chain.provider.clone(), chain.contracts.entry_point, Arc::clone(ledger))
        .with_wait_notice(sak::agent::lane_wait_notice(ctx, session));
    settler.bind_chain(chain.chain_id).await?;
    Ok((chain, settler, id))
}

/// The exit status for an operation in `state`: 0 included, 3 it may still land, 4 it never will.
fn outcome(id: IntentId, state: &str) -> eyre::Result<()> {
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

/// What `sak op cancel --json` prints.
#[derive(Debug, Serialize)]
struct Cancelled {
    #[serde(flatten)]
    op: OpOut,
    /// The owner's transaction that spent the operation's nonce, if one was sent.
    cancelled_by: Option<B256>,
    /// `owner` (the nonce was spent), `deadline` (waited for the chain to pass it), or null
    /// (it was settled already: nothing was done).
    how: Option<&'static str>,
}

async fn cancel(ctx: &Ctx, ledger: &Arc<SqliteLedger>, args: &CancelArgs) -> eyre::Result<()> {
    let (chain, settler, id) = settler_for(ctx, ledger, &args.op).await?;
    let lane = lane_of(&ledger.get(id)?);
    // Held to the end: no run of this home signs on the lane meanwhile.
    let lock = settler.lock_lane(lane).await?;
    settler.settle_lane(lane, &lock).await?;
    let rec = ledger.get(id)?;
    let (mut cancelled_by, mut how) = (None, None);
    if rec.state.is_pending() {
        match rec.signed.as_ref().filter(|_| !args.wait && ctx.paths.owner_key().exists()) {
            Some(signed) => {
                how = Some("owner");
                cancelled_by = spend_nonce(ctx, &chain, &rec, signed.nonce_key, signed.nonce_seq).await?;
                settler.settle_lane(lane, &lock).await?;
            }
            None => {
                how = Some("deadline");
                wait_out(ctx, &chain, ledger, &settler, &lock, id, args.timeout).await?;
            }
        }
    }
    drop(lock);
    let out = Cancelled { op: OpOut::from(&ledger.get(id)?), cancelled_by, how };
    output::emit(&ctx.global, &out, || match (out.op.state, out.how) {
        ("included", Some(_)) => format!("too late: it was included\n{}", out.op.line()),
        ("failed", Some("owner")) => format!(
            "cancelled: the owner spent its nonce (tx {}); it can never land\n{}",
            out.cancelled_by.unwrap_or_default(),
            out.op.line()
        ),
        ("failed", Some("deadline")) => format!("it can never land now\n{}", out.op.line()),
        _ => out.op.line(),
    })?;
    outcome(id, out.op.state)
}

/// Spends the nonce of a pending operation as the owner: `EntryPoint.incrementNonce(key)` from
/// the account, as many times as it takes to pass `seq` (each earlier free nonce of the lane
/// too). A smart account calls it in an owner operation (self-bundled by anvil's dev key on a
/// `sak node` chain, else by the owner key); a delegated EOA is the account and calls it
/// directly. Returns the (last) transaction; `None` when the nonce was used meanwhile (by the
/// operation itself, found when the lane is settled again).
async fn spend_nonce(
    ctx: &Ctx,
    chain: &Chain,
    rec: &IntentRecord,
    key: U256,
    seq: u64,
) -> eyre::Result<Option<B256>> {
    let account = ctx.account(chain.chain_id)?;
    if account.address != rec.intent.account {
        return Err(Hinted::refused(
            format!(
                "intent {} is of the account {}, this home's is {}",
                rec.id, rec.intent.account, account.address
            ),
            "cancel it from the account owner's home, or pass --wait to wait out its deadline",
        )
        .into());
    }
    let key = U192::from(key);
    let next = IEntryPoint::new(chain.contracts.entry_point, &chain.provider)
        .getNonce(account.address, key)
        .call()
        .await
        .wrap_err("reading the lane's nonce (EntryPoint.getNonce)")?;
    let bumps = (seq + 1).saturating_sub((next & U256::from(u64::MAX)).to::<u64>());
    if bumps == 0 {
        return Ok(None);
    }
    if bumps > MAX_BUMPS {
        return Err(Hinted::refused(
            format!("intent {} waits behind {} earlier free nonces of its lane", rec.id, bumps - 1),
            "cancel the earlier operations first (`sak op list`), or pass --wait to wait out its deadline",
        )
        .into());
    }
    output::progress(
        &ctx.global,
        &format!(
            "cancelling intent {}: the owner spends nonce {seq} of its lane (EntryPoint.incrementNonce)…",
            rec.id
        ),
    );
    let bump = IEntryPoint::incrementNonceCall { key };
    let calls: Vec<Call> = (0..bumps).map(|_| Call::contract(chain.contracts.entry_point, &bump)).collect();
    Ok(Some(crate::owner_exec::execute(ctx, chain, &account, &calls, "incrementNonce").await?))
}

/// At most this many free nonces of a lane are spent by one cancel.
const MAX_BUMPS: u64 = 16;

/// Settles intent `id` every two seconds until it is no longer pending (the chain passes its
/// signed deadline, it lands, or another operation takes its nonce), or `timeout` seconds pass.
/// A `sak node` chain mines only when sent something: once the wall clock is past the deadline
/// an empty block is mined there, so that the chain's clock passes it too.
async fn wait_out(
    ctx: &Ctx,
    chain: &Chain,
    ledger: &Arc<SqliteLedger>,
    settler: &Settler<SqliteLedger>,
    lock: &LaneLock,
    id: IntentId,
    timeout: u64,
) -> eyre::Result<()> {
    let rec = ledger.get(id)?;
    let deadline = rec
        .signed
        .as_ref()
        .and_then(|s| UserOp::abi_decode(&s.op_bytes).ok())
        .and_then(|op| session_envelope(&op.signature))
        .map(|(_, _, deadline)| deadline);
    let (lane, local) = (lane_of(&rec), ctx.node()?.is_some());
    let started = Instant::now();
    let mut next_notice = Duration::ZERO;
    loop {
        settler.settle_lane(lane, lock).await?;
        let waited = started.elapsed();
        if !ledger.get(id)?.state.is_pending() || waited.as_secs() >= timeout {
            return Ok(());
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if waited >= next_notice {
            let until = deadline.map_or_else(
                || "its deadline".to_owned(),
                |d| format!("its deadline {}", sak_primitives::units::format_time_from(d, now)),
            );
            output::progress(
                &ctx.global,
                &format!("intent {id}: waiting for the chain to pass {until}; it may land until then…"),
            );
            next_notice = waited + Duration::from_secs(10);
        }
        if local && deadline.is_some_and(|d| now > d) {
            let _: serde_json::Value = chain.provider.raw_request("evm_mine".into(), ()).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The intent named by a number or a user operation hash.
fn find(ledger: &SqliteLedger, op: &str) -> eyre::Result<IntentId> {
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
