//! The operations a home signed, and what became of them. Nothing here resubmits an
//! operation: [`status`] settles one by what the chain shows (included, its nonce taken by
//! another operation, or its deadline passed); [`cancel`] makes sure one never lands, by the
//! owner spending its nonce or by waiting out its deadline.

use crate::{Chain, Hinted, Home, Result, error::WrapErr};
use alloy::{
    primitives::{B256, U256, aliases::U192},
    providers::Provider,
    sol_types::SolValue,
};
use sak_contracts::IEntryPoint;
use sak_policy::Call;
use sak_signer::{
    ledger::{AnyLedger, IntentId, IntentRecord, IntentState, LaneLock, Ledger, Outcome},
    settle::{Settler, lane_of},
};
use sak_userop::{UserOp, session_envelope};
use serde::Serialize;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// One operation in `sak op --json`.
#[derive(Debug, Serialize)]
pub struct OpOut {
    /// The ledger's intent id.
    pub intent: i64,
    /// `reserved`, `signed`, `submitted` (outcome unknown), `included`, `reverted` (included,
    /// its calls reverted), `failed` or `released` (never signed).
    pub state: &'static str,
    /// The chain it is for.
    pub chain_id: u64,
    /// The account that signs it.
    pub account: alloy::primitives::Address,
    /// The session it runs under.
    pub session: u32,
    /// Its nonce in the session's lane.
    pub nonce_seq: Option<u64>,
    /// Its user operation hash, once signed: the one that landed, once included; else the
    /// latest replacement (`sak op bump`).
    pub user_op_hash: Option<B256>,
    /// The intent's other operations (the same calls at the same nonce, other fees: fee bumps),
    /// oldest first. Whichever lands takes the nonce: at most one does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<B256>,
    /// When the intent was made (unix seconds, chain time).
    pub created_at: u64,
    /// The transaction that included it.
    pub tx_hash: Option<B256>,
    /// That transaction's block.
    pub block: Option<u64>,
    /// Why it failed or was released.
    pub reason: Option<String>,
}

impl From<&IntentRecord> for OpOut {
    fn from(r: &IntentRecord) -> Self {
        let (mut state, mut tx_hash, mut block, mut reason) = (r.state.as_str(), None, None, None);
        let mut user_op_hash = r.signed.as_ref().map(|s| s.user_op_hash);
        match &r.outcome {
            Some(Outcome::Included { user_op_hash: landed, success, tx_hash: t, block: b, .. }) => {
                state = if *success { "included" } else { "reverted" };
                (tx_hash, block, user_op_hash) = (Some(*t), Some(*b), Some(*landed));
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
            replaces: r.user_op_hashes().filter(|h| Some(*h) != user_op_hash).collect(),
            user_op_hash,
            created_at: r.intent.created_at,
            tx_hash,
            block,
            reason,
        }
    }
}

/// The operations of the ledger that are not settled.
pub fn unresolved(ledger: &AnyLedger) -> Result<Vec<OpOut>> {
    Ok(ledger.unresolved()?.iter().map(OpOut::from).collect())
}

/// Operation `op` (an intent number or a user operation hash) as the chain settles it now.
/// Nothing is resubmitted: an operation still pending is looked up, never sent again.
pub async fn status(home: &Home, ledger: &Arc<AnyLedger>, op: &str) -> Result<OpOut> {
    let (_chain, settler, id) = settler_for(home, ledger, op).await?;
    let mut rec = ledger.get(id)?;
    if rec.state == IntentState::Included {
        // Unless a reorg took it back.
        settler.recheck_inclusions(rec.intent.chain_id, rec.intent.account).await?;
        rec = ledger.get(id)?;
    }
    if rec.state.is_pending() {
        let lane = lane_of(&rec);
        home.progress(&format!("settling intent {id} from the chain…"));
        let lock = settler.lock_lane(lane).await?;
        settler.settle_lane(lane, &lock).await?;
    }
    Ok(OpOut::from(&ledger.get(id)?))
}

/// Replaces operation `op` (an intent number or a user operation hash), signed by this home and
/// stuck, with a fee bump ([`Agent::bump`](crate::agent::Agent::bump)): the same calls at the
/// same nonce and deadline, fees `percent` higher, sent as `options` says. The session is the
/// intent's (`options.session` is set from it). Returns the operation as it stands then.
pub async fn bump(
    home: &Home,
    ledger: &Arc<AnyLedger>,
    op: &str,
    mut options: crate::agent::Options,
    percent: u64,
) -> Result<OpOut> {
    // The guarded signer binds the chain and settles the lane itself.
    let (chain, rec) = on_chain(home, ledger, op).await?;
    let id = rec.id;
    options.session = OpOut::from(&rec).session;
    // The lane it was signed in: the low 128 bits of its nonce key.
    options.lane = (rec.intent.nonce_key & alloy::primitives::U256::from(u128::MAX)).to::<u128>();
    crate::agent::check(home, &options)?;
    let rec = crate::agent::Agent::open(&options, home, &chain).await?.bump(id, percent).await?;
    Ok(OpOut::from(&rec))
}

/// The home's ledger, when it has one (an error saying so otherwise: nothing signed yet).
pub fn ledger(home: &Home) -> Result<Arc<AnyLedger>> {
    let at = crate::store::LedgerAt::of(&home.paths, &home.config)?;
    match at.existing()? {
        Some(ledger) => Ok(Arc::new(ledger)),
        None => Err(Hinted::new(
            format!("no spend ledger at {}: this home has signed nothing yet", at.shown()),
            "`sak swap` or `sak send` under a session records its operations there",
        )
        .into()),
    }
}

/// Makes sure operation `op` never lands: settles its lane, then, if it is still pending, spends
/// its nonce with the owner key (`wait` false and the home has one), else waits until the
/// chain passes its deadline (at most `timeout` seconds). The lane stays locked throughout, so
/// no run of this home signs on it meanwhile.
pub async fn cancel(
    home: &Home,
    ledger: &Arc<AnyLedger>,
    op: &str,
    wait: bool,
    timeout: u64,
) -> Result<Cancelled> {
    let (chain, settler, id) = settler_for(home, ledger, op).await?;
    let lane = lane_of(&ledger.get(id)?);
    let lock = settler.lock_lane(lane).await?;
    settler.settle_lane(lane, &lock).await?;
    let rec = ledger.get(id)?;
    let (mut cancelled_by, mut how) = (None, None);
    if rec.state.is_pending() {
        match rec.signed.as_ref().filter(|_| !wait && home.paths.owner_key().exists()) {
            Some(signed) => {
                how = Some("owner");
                cancelled_by = spend_nonce(home, &chain, &rec, signed.nonce_key, signed.nonce_seq).await?;
                settler.settle_lane(lane, &lock).await?;
            }
            None => {
                how = Some("deadline");
                wait_out(home, &chain, ledger, &settler, &lock, id, timeout).await?;
            }
        }
    }
    drop(lock);
    Ok(Cancelled { op: OpOut::from(&ledger.get(id)?), cancelled_by, how })
}

/// What a cancel did (`sak op cancel --json`).
#[derive(Debug, Serialize)]
pub struct Cancelled {
    #[serde(flatten)]
    /// The operation as it ended.
    pub op: OpOut,
    /// The owner's transaction that spent the operation's nonce, if one was sent.
    pub cancelled_by: Option<B256>,
    /// `owner` (the nonce was spent), `deadline` (waited for the chain to pass it), or null
    /// (it was settled already: nothing was done).
    pub how: Option<&'static str>,
}

/// The chain, a settler bound to it (after a reset under the same chain id, the old chain's
/// operations are retired) and the intent named by `op`, which must be of this chain.
async fn settler_for(
    home: &Home,
    ledger: &Arc<AnyLedger>,
    op: &str,
) -> Result<(Chain, Settler<AnyLedger>, IntentId)> {
    let (chain, rec) = on_chain(home, ledger, op).await?;
    let settler = Settler::new(chain.provider.clone(), chain.contracts.entry_point, Arc::clone(ledger))
        .with_wait_notice(crate::agent::lane_wait_notice(home, OpOut::from(&rec).session));
    settler.bind_chain(chain.chain_id).await?;
    Ok((chain, settler, rec.id))
}

/// The chain and the intent named by `op`, which must be of this chain.
async fn on_chain(home: &Home, ledger: &AnyLedger, op: &str) -> Result<(Chain, IntentRecord)> {
    let id = find(ledger, op)?;
    let rec = ledger.get(id)?;
    let chain = home.chain().await?;
    if rec.intent.chain_id != chain.chain_id {
        return Err(Hinted::new(
            format!(
                "intent {id} is on chain {}, the network {} is chain {}",
                rec.intent.chain_id, home.network_name, chain.chain_id
            ),
            "pass --network for the chain the operation was signed on",
        )
        .into());
    }
    Ok((chain, rec))
}

/// Spends the nonce of a pending operation as the owner: `EntryPoint.incrementNonce(key)` from
/// the account, as many times as it takes to pass `seq` (each earlier free nonce of the lane
/// too). A smart account calls it in an owner operation (self-bundled by anvil's dev key on a
/// `sak node` chain, else by the owner key); a delegated EOA is the account and calls it
/// directly. Returns the (last) transaction; `None` when the nonce was used meanwhile (by the
/// operation itself, found when the lane is settled again).
async fn spend_nonce(
    home: &Home,
    chain: &Chain,
    rec: &IntentRecord,
    key: U256,
    seq: u64,
) -> Result<Option<B256>> {
    let account = home.account(chain.chain_id)?;
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
    home.progress(&format!(
        "cancelling intent {}: the owner spends nonce {seq} of its lane (EntryPoint.incrementNonce)…",
        rec.id
    ));
    let bump = IEntryPoint::incrementNonceCall { key };
    let calls: Vec<Call> = (0..bumps).map(|_| Call::contract(chain.contracts.entry_point, &bump)).collect();
    Ok(Some(crate::owner::execute(home, chain, &account, &calls, "incrementNonce").await?))
}

/// At most this many free nonces of a lane are spent by one cancel.
const MAX_BUMPS: u64 = 16;

/// Settles intent `id` every two seconds until it is no longer pending (the chain passes its
/// signed deadline, it lands, or another operation takes its nonce), or `timeout` seconds pass.
/// A `sak node` chain mines only when sent something: once the wall clock is past the deadline
/// an empty block is mined there, so that the chain's clock passes it too.
async fn wait_out(
    home: &Home,
    chain: &Chain,
    ledger: &Arc<AnyLedger>,
    settler: &Settler<AnyLedger>,
    lock: &LaneLock,
    id: IntentId,
    timeout: u64,
) -> Result<()> {
    let rec = ledger.get(id)?;
    let deadline = rec
        .signed
        .as_ref()
        .and_then(|s| UserOp::abi_decode(&s.op_bytes).ok())
        .and_then(|op| session_envelope(&op.signature))
        .map(|(_, _, deadline)| deadline);
    let (lane, local) = (lane_of(&rec), home.node()?.is_some());
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
            home.progress(&format!(
                "intent {id}: waiting for the chain to pass {until}; it may land until then…"
            ));
            next_notice = waited + Duration::from_secs(10);
        }
        if local && deadline.is_some_and(|d| now > d) {
            let _: serde_json::Value = chain.provider.raw_request("evm_mine".into(), ()).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The intent named by a number or a user operation hash.
fn find(ledger: &AnyLedger, op: &str) -> Result<IntentId> {
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

fn not_found(op: &str) -> crate::Error {
    Hinted::new(
        format!("no operation {op} in this home's ledger"),
        "`sak op list` shows what is in flight; `sak audit` shows every decision",
    )
    .into()
}
