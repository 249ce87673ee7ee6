//! Settling intents by facts: what the chain shows, never a resubmission.
//!
//! ```text
//!  unresolved intent ─► never signed ─────────────────────────► Released
//!                    ─► UserOperationEvent of its hash ─────────► Included (success or reverted)
//!                    ─► its nonce used by another operation ────► Failed
//!                    ─► a block past its signed deadline ───────► Failed (no EntryPoint takes it)
//!                    ─► otherwise ──────────────────────────────► Pending (it may still land)
//! ```
//!
//! Only the holder of the intent's lane lock settles it ([`Ledger::try_lock_lane`]): the signer
//! holds the lane from reservation to settlement, so an intent found unresolved under the lock
//! has no live owner, and releasing a never-signed one cannot pull a reservation from under a
//! signer that is about to sign.

use crate::{
    Error, Result,
    ledger::{ChainBound, IntentId, IntentRecord, IntentState, LaneId, LaneLock, Ledger, Outcome},
};
use alloy::{
    primitives::{Address, B256, U256, aliases::U192},
    providers::{DynProvider, Provider},
    rpc::types::{BlockId, BlockNumberOrTag, Filter},
    sol_types::{SolEvent, SolValue},
};
use sak_contracts::IEntryPoint;
use sak_userop::{UserOp, UserOpReceipt, session_envelope};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// How many blocks back [`Settler::recheck_inclusions`] looks for inclusions a reorg took back:
/// two epochs of Ethereum, past which a block is final.
pub const REORG_WINDOW: u64 = 64;

/// How long [`Settler::lock_lane`] waits while another operation of the lane is in flight.
pub const LANE_WAIT: Duration = Duration::from_secs(300);

/// What settling found of an intent left unresolved by an earlier run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Never signed: the reservation is released.
    Released(IntentId),
    /// Its operation is on chain (its user operation hash).
    Included(IntentId, B256),
    /// It can never be included: its nonce went to another operation, or the chain is past its
    /// signed deadline.
    Failed(IntentId, String),
    /// Signed, not on chain, its nonce still free and its deadline not passed: it may still land
    /// (a bundler or a node may hold it). Its reservation keeps counting until the deadline
    /// passes or the lane's next operation takes the nonce; then it is Failed.
    Pending(IntentId, B256),
}

/// What tells one chain from another under the same chain id: its genesis block hash, except on
/// an anvil fork. A fork's genesis is the upstream chain's, the same each time the fork is
/// (re)started, while the blocks after the fork point are the instance's own: there it is
/// `keccak256(genesis ‖ instanceId)` of `anvil_metadata`, which anvil draws anew at every start.
///
/// A node that does not know `anvil_metadata` (answers it with an error) is not anvil: its
/// genesis hash. A transport failure is an error, never a guess, so a flaky endpoint is not
/// taken for a new chain.
pub async fn chain_identity<P: Provider>(provider: &P) -> Result<B256> {
    let genesis = provider
        .get_block_by_number(BlockNumberOrTag::Number(0))
        .await
        .map_err(|e| Error::Chain(format!("eth_getBlockByNumber(0): {e}")))?
        .ok_or_else(|| Error::Chain("the node has no genesis block".into()))?
        .header
        .hash;
    let metadata: serde_json::Value = match provider.raw_request("anvil_metadata".into(), ()).await {
        Ok(m) => m,
        Err(e) if e.as_error_resp().is_some() => return Ok(genesis),
        Err(e) => return Err(Error::Chain(format!("anvil_metadata: {e}"))),
    };
    if metadata.get("forkedNetwork").is_none_or(serde_json::Value::is_null) {
        return Ok(genesis);
    }
    let instance: B256 = metadata
        .get("instanceId")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::Chain(format!("anvil_metadata of a fork has no 32-byte instanceId: {metadata}"))
        })?;
    Ok(alloy::primitives::keccak256([genesis.as_slice(), instance.as_slice()].concat()))
}

/// What an operation is waiting for, told to a [`WaitNotice`] (for a progress line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Another operation of the lane is in flight ([`Settler::lock_lane`]): told after the
    /// first second, then every [`WAIT_NOTICE_EVERY`], with the time waited so far
    /// ([`LANE_WAIT`] is the most it waits).
    Lane { waited: Duration },
    /// The session's period ends at `edge` (unix seconds, inclusive), too soon for an operation
    /// signed now to land in it: the signer waits `wait` and signs in the next period (see
    /// [`PERIOD_EDGE_MARGIN`](crate::guard::PERIOD_EDGE_MARGIN)).
    PeriodEdge { edge: u64, wait: Duration },
}

/// Told while an operation waits; see [`Wait`].
#[derive(Clone)]
pub struct WaitNotice(pub Arc<dyn Fn(Wait) + Send + Sync>);

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

/// How often [`WaitNotice`] repeats while the wait goes on.
pub const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Settles a ledger's intents against one chain.
#[derive(Debug)]
pub struct Settler<L> {
    provider: DynProvider,
    entry_point: alloy::primitives::Address,
    ledger: Arc<L>,
    on_wait: Option<WaitNotice>,
}

impl<L: Ledger + 'static> Settler<L> {
    /// A settler for the intents of `ledger` on the chain `provider` serves.
    pub fn new(provider: DynProvider, entry_point: alloy::primitives::Address, ledger: Arc<L>) -> Self {
        Self { provider, entry_point, ledger, on_wait: None }
    }

    /// Tells `notice` while [`lock_lane`](Self::lock_lane) waits for another operation.
    pub fn with_wait_notice(mut self, notice: WaitNotice) -> Self {
        self.on_wait = Some(notice);
        self
    }

    /// Ties the ledger's intents of `chain_id` to the chain the provider serves, by its genesis
    /// block ([`Ledger::bind_chain`]): after a reset under the same chain id, the old chain's
    /// operations in flight are retired, never settled against (or counted on) the new one.
    pub async fn bind_chain(&self, chain_id: u64) -> Result<ChainBound> {
        let identity = chain_identity(&self.provider).await?;
        self.blocking(move |l| l.bind_chain(chain_id, identity)).await
    }

    /// Tells the [`WaitNotice`], if any.
    pub(crate) fn notify(&self, wait: Wait) {
        if let Some(notice) = &self.on_wait {
            (notice.0)(wait);
        }
    }

    /// Waits (up to [`LANE_WAIT`]) until no other task or process has an operation in flight on
    /// `lane`, and holds it until the lock is dropped.
    pub async fn lock_lane(&self, lane: LaneId) -> Result<LaneLock> {
        let started = Instant::now();
        let mut next_notice = Duration::from_secs(1);
        loop {
            if let Some(lock) = self.blocking(move |l| l.try_lock_lane(&lane)).await? {
                return Ok(lock);
            }
            let waited = started.elapsed();
            if waited > LANE_WAIT {
                return Err(Error::LaneBusy { waited_s: LANE_WAIT.as_secs() });
            }
            if waited > next_notice {
                tracing::info!(
                    waited_s = waited.as_secs(),
                    "waiting for another operation on this session's lane to settle"
                );
                self.notify(Wait::Lane { waited });
                next_notice = waited + WAIT_NOTICE_EVERY;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Settles every unresolved intent of `lane`; `_lock` proves that none has a live owner.
    pub async fn settle_lane(&self, lane: LaneId, _lock: &LaneLock) -> Result<Vec<Recovered>> {
        let records = self.blocking(|l| l.unresolved()).await?;
        let mut out = Vec::new();
        for rec in records.into_iter().filter(|r| lane_of(r) == lane) {
            out.push(self.settle_one(rec).await?);
        }
        Ok(out)
    }

    async fn settle_one(&self, rec: IntentRecord) -> Result<Recovered> {
        let id = rec.id;
        let Some(signed) = rec.signed.clone().filter(|_| rec.state != IntentState::Reserved) else {
            let reason = "never signed (its run ended before signing)".to_owned();
            self.blocking(move |l| l.resolve(id, &Outcome::Released { reason })).await?;
            return Ok(Recovered::Released(id));
        };
        // The signed operation, and any it replaced with a fee bump: one of them may have landed.
        let hashes: Vec<B256> = rec.user_op_hashes().collect();
        if let Some(receipt) = self.find_receipt_of(&hashes).await? {
            self.settle(id, &receipt).await?;
            return Ok(Recovered::Included(id, receipt.user_op_hash));
        }
        if self.next_seq(rec.intent.account, signed.nonce_key, BlockId::latest()).await? > signed.nonce_seq {
            // The nonce is used. By this op if it landed between the two reads, else by another.
            if let Some(receipt) = self.find_receipt_of(&hashes).await? {
                self.settle(id, &receipt).await?;
                return Ok(Recovered::Included(id, receipt.user_op_hash));
            }
            let reason = "nonce taken by another operation".to_owned();
            let outcome = Outcome::Failed { reason: reason.clone() };
            self.blocking(move |l| l.resolve(id, &outcome)).await?;
            return Ok(Recovered::Failed(id, reason));
        }
        if let Some(block) = self.past_deadline(&signed.op_bytes).await? {
            // Every block from this one on is later than the deadline, so the EntryPoint refuses
            // the operation (AA22) in all of them; the lookup below covers every earlier block.
            // A replacement keeps its original's deadline, so this holds for all of them.
            if let Some(receipt) = self.find_receipt_of(&hashes).await? {
                self.settle(id, &receipt).await?;
                return Ok(Recovered::Included(id, receipt.user_op_hash));
            }
            let reason = format!("its signed deadline passed (block {block}) before it was included");
            let outcome = Outcome::Failed { reason: reason.clone() };
            self.blocking(move |l| l.resolve(id, &outcome)).await?;
            return Ok(Recovered::Failed(id, reason));
        }
        Ok(Recovered::Pending(id, signed.user_op_hash))
    }

    /// The latest block's number when its time is past the signed deadline of the operation in
    /// `op_bytes` (`None` while it is not, or for an operation without a session deadline).
    async fn past_deadline(&self, op_bytes: &[u8]) -> Result<Option<u64>> {
        let Some((_, _, deadline)) =
            UserOp::abi_decode(op_bytes).ok().and_then(|op| session_envelope(&op.signature))
        else {
            return Ok(None);
        };
        let latest = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| Error::Chain(format!("eth_getBlockByNumber: {e}")))?
            .ok_or_else(|| Error::Chain("the node has no latest block".into()))?;
        Ok((latest.header.timestamp > deadline).then_some(latest.header.number))
    }

    /// Re-checks the inclusions of `account`'s intents in the last [`REORG_WINDOW`] blocks
    /// against the chain's `UserOperationEvent`s. One a reorg took back is reopened
    /// ([`Ledger::reopen`]): it counts against its caps again, and it is settled anew (on chain
    /// in another block: included there; else pending until its lane settles it). Returns the
    /// intents reopened. Costs a block number and a ledger read; a log query only when something
    /// was included in the window.
    pub async fn recheck_inclusions(&self, chain_id: u64, account: Address) -> Result<Vec<IntentId>> {
        let latest = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| Error::Chain(format!("eth_blockNumber: {e}")))?;
        self.recheck_inclusions_at(chain_id, account, latest).await
    }

    /// [`recheck_inclusions`](Self::recheck_inclusions) with the chain's latest block already
    /// read (`latest`).
    pub(crate) async fn recheck_inclusions_at(
        &self,
        chain_id: u64,
        account: Address,
        latest: u64,
    ) -> Result<Vec<IntentId>> {
        let from = latest.saturating_sub(REORG_WINDOW);
        // Read before the logs: every inclusion recorded here is in a block the query covers.
        let recent = self.blocking(move |l| l.included_after(chain_id, account, from)).await?;
        if recent.is_empty() {
            return Ok(Vec::new());
        }
        let filter = Filter::new()
            .address(self.entry_point)
            .event_signature(IEntryPoint::UserOperationEvent::SIGNATURE_HASH)
            .topic2(account.into_word())
            .from_block(from + 1);
        let logs =
            self.provider.get_logs(&filter).await.map_err(|e| Error::Chain(format!("eth_getLogs: {e}")))?;
        let on_chain: Vec<(Option<B256>, Option<u64>, Option<B256>)> =
            logs.iter().map(|l| (l.topics().get(1).copied(), l.block_number, l.transaction_hash)).collect();
        let mut reopened = Vec::new();
        for rec in recent {
            let Some(Outcome::Included { user_op_hash, block, tx_hash, .. }) = rec.outcome else { continue };
            if on_chain.contains(&(Some(user_op_hash), Some(block), Some(tx_hash))) {
                continue;
            }
            let id = rec.id;
            match self.blocking(move |l| l.reopen(id)).await {
                Ok(()) => reopened.push(id),
                // Another worker reopened it first.
                Err(Error::IllegalTransition { .. }) => continue,
                Err(e) => return Err(e),
            }
            let hashes: Vec<B256> = rec.user_op_hashes().collect();
            if let Some(receipt) = self.find_receipt_of(&hashes).await? {
                match self.settle(id, &receipt).await {
                    Ok(()) | Err(Error::IllegalTransition { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(reopened)
    }

    /// The next sequence of `account`'s nonce lane `key` at `block` (the EntryPoint's nonce
    /// without its key).
    pub(crate) async fn next_seq(&self, account: Address, key: U256, block: BlockId) -> Result<u64> {
        let next = IEntryPoint::new(self.entry_point, &self.provider)
            .getNonce(account, U192::from(key))
            .block(block)
            .call()
            .await
            .map_err(|e| Error::Chain(format!("getNonce: {e}")))?;
        Ok((next & U256::from(u64::MAX)).to::<u64>())
    }

    /// Records `receipt` as the intent's outcome.
    pub(crate) async fn settle(&self, id: IntentId, receipt: &UserOpReceipt) -> Result<()> {
        let outcome = Outcome::Included {
            user_op_hash: receipt.user_op_hash,
            success: receipt.success,
            actual_gas_cost: receipt.actual_gas_cost,
            tx_hash: receipt.tx_hash,
            block: receipt.block_number,
        };
        self.blocking(move |l| l.resolve(id, &outcome)).await
    }

    /// The receipt of the operation `user_op_hash`, from its `UserOperationEvent`, if it is on
    /// chain.
    pub async fn find_receipt(&self, user_op_hash: B256) -> Result<Option<UserOpReceipt>> {
        self.find_receipt_of(&[user_op_hash]).await
    }

    /// The receipt of whichever of `user_op_hashes` is on chain (operations that share a nonce:
    /// at most one is), in one log query.
    pub async fn find_receipt_of(&self, user_op_hashes: &[B256]) -> Result<Option<UserOpReceipt>> {
        let filter = Filter::new()
            .address(self.entry_point)
            .event_signature(IEntryPoint::UserOperationEvent::SIGNATURE_HASH)
            .topic1(user_op_hashes.to_vec())
            .from_block(0);
        let logs =
            self.provider.get_logs(&filter).await.map_err(|e| Error::Chain(format!("eth_getLogs: {e}")))?;
        let Some(log) = logs.first() else { return Ok(None) };
        let (Some(tx_hash), Some(block), Some(user_op_hash)) =
            (log.transaction_hash, log.block_number, log.topics().get(1).copied())
        else {
            return Ok(None);
        };
        let receipt = self
            .provider
            .get_transaction_receipt(tx_hash)
            .await
            .map_err(|e| Error::Chain(format!("eth_getTransactionReceipt: {e}")))?
            .ok_or_else(|| Error::Chain(format!("no receipt for {tx_hash}")))?;
        Ok(UserOpReceipt::from_logs(user_op_hash, tx_hash, block, receipt.inner.logs()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&L) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        off_runtime(&self.ledger, f).await
    }
}

/// Runs a ledger call off the async runtime (a durable ledger waits for fsync).
pub(crate) async fn off_runtime<L: Ledger + 'static, T: Send + 'static>(
    ledger: &Arc<L>,
    f: impl FnOnce(&L) -> Result<T> + Send + 'static,
) -> Result<T> {
    let ledger = Arc::clone(ledger);
    tokio::task::spawn_blocking(move || f(&ledger))
        .await
        .map_err(|e| Error::Chain(format!("ledger task failed: {e}")))?
}

/// The lane an intent's nonce is in.
pub fn lane_of(rec: &IntentRecord) -> LaneId {
    LaneId { chain_id: rec.intent.chain_id, account: rec.intent.account, nonce_key: rec.intent.nonce_key }
}
