//! The durable spend ledger: the write-ahead record of every spend the signer may cause.
//!
//! ```text
//!  policy check ──► reserve ──► sign ──► mark_signed ──► submit ──► mark_submitted ──► resolve
//!                  (Reserved)           (Signed: exact op bytes)   (Submitted)        (Included |
//!                                                                                      Failed |
//!                                                                                      Released)
//! ```
//!
//! A reservation counts against its ceiling from `reserve` until `resolve`, across crashes and
//! restarts. After a restart, [`Ledger::unresolved`] returns every intent still in flight with
//! the signed operation's exact bytes, so that a reconciler can look the op up on chain and
//! either resubmit the identical bytes or resolve it. Nothing is ever deleted.

mod any;
mod columns;
mod machine;
mod memory;
mod postgres;
mod sqlite;
mod types;

pub use any::AnyLedger;
pub use memory::MemoryLedger;
pub use postgres::PostgresLedger;
pub use sqlite::{SqliteLedger, SqliteOptions};
pub use types::{
    AsOf, Ceiling, ChainBound, Decision, Intent, IntentId, IntentRecord, IntentState, LaneId, LaneLock,
    Outcome, SignedOp, Spend, Submission,
};

use crate::Result;
use alloy::primitives::{Address, B256, U256};

/// The reason recorded on intents retired by a chain reset.
pub const CHAIN_RESET: &str = "chain reset: the chain it was signed for is gone";

/// A spend ledger backend. Every method is one atomic transaction; implementations must be
/// safe to share between threads and, for durable backends, between processes.
///
/// Methods block (a durable backend waits for fsync): from async code, call a durable backend
/// through `tokio::task::spawn_blocking`.
pub trait Ledger: Send + Sync {
    /// Records `intent` as `Reserved` if, for every (token, window) it spends, what already
    /// counts plus what it requests stays within that (token, window)'s ceiling. What counts:
    /// the Reserved, Signed and Submitted intents of the same chain, account and session, or,
    /// for a ceiling read at a block ([`Ceiling::as_of`]), exactly the intents the chain had
    /// not counted at that block ([`AsOf`]). Otherwise refuses with
    /// [`Error::CeilingExceeded`](crate::Error::CeilingExceeded) (or `MissingCeiling` when the
    /// caller gave none) and records nothing. Check and insert are one transaction.
    ///
    /// ```
    /// use alloy::primitives::{Address, B256, U256};
    /// use sak_signer::ledger::{Ceiling, Intent, Ledger, MemoryLedger, Spend};
    ///
    /// let ledger = MemoryLedger::new();
    /// let token = Address::repeat_byte(0x11);
    /// let intent = Intent {
    ///     chain_id: 31337,
    ///     account: Address::repeat_byte(0xaa),
    ///     session_id: B256::repeat_byte(1),
    ///     nonce_key: U256::from(7),
    ///     nonce_seq: None,
    ///     spends: vec![Spend { token, window: 0, amount: U256::from(60) }],
    ///     gas_cost_cap: U256::from(10u64.pow(15)),
    ///     created_at: 1_700_000_000,
    /// };
    /// let ceiling = [Ceiling { token, window: 0, max_pending: U256::from(100), as_of: None }];
    /// ledger.reserve(&intent, &ceiling)?;
    /// // 60 pending + 60 requested > 100: refused, with the numbers.
    /// let err = ledger.reserve(&intent, &ceiling).unwrap_err();
    /// assert!(matches!(err, sak_signer::Error::CeilingExceeded { .. }));
    /// # Ok::<(), sak_signer::Error>(())
    /// ```
    fn reserve(&self, intent: &Intent, ceilings: &[Ceiling]) -> Result<IntentId>;

    /// Reserves several intents in one transaction: with a durable backend, one fsync for the
    /// batch instead of one per intent. Each intent is checked like [`reserve`](Self::reserve),
    /// counting the batch's earlier acceptances; a refused intent (inner `Err`) does not stop the
    /// others. The outer `Err` means storage failed and nothing of the batch was recorded.
    fn reserve_batch(&self, batch: &[(&Intent, &[Ceiling])]) -> Result<Vec<Result<IntentId>>> {
        Ok(batch.iter().map(|(intent, ceilings)| self.reserve(intent, ceilings)).collect())
    }

    /// [`reserve`](Self::reserve) and [`mark_signed`](Self::mark_signed) of one operation in
    /// one transaction: with a durable backend, one fsync instead of two. The operation is
    /// signed before it is recorded, so nothing may send it before this returns: a crash in
    /// between leaves neither a record nor a signature outside the process. Refused like
    /// `reserve` (`CeilingExceeded`), and with [`Error::DuplicateOp`](crate::Error::DuplicateOp)
    /// when another intent holds the operation's hash; a refusal records nothing.
    fn reserve_signed(&self, intent: &Intent, ceilings: &[Ceiling], op: &SignedOp) -> Result<IntentId>;

    /// [`mark_signed`](Self::mark_signed) for several intents in one transaction, with
    /// per-intent results like [`reserve_batch`](Self::reserve_batch).
    fn mark_signed_batch(&self, batch: &[(IntentId, &SignedOp)]) -> Result<Vec<Result<()>>> {
        Ok(batch.iter().map(|(id, op)| self.mark_signed(*id, op)).collect())
    }

    /// Persists the signed operation (`Reserved` → `Signed`). Repeating it with the same
    /// `user_op_hash` is a no-op that keeps the bytes first stored; a different hash is refused
    /// with [`Error::SignedOpConflict`](crate::Error::SignedOpConflict). The nonce must be the
    /// intent's lane (and its sequence, if the intent knew it).
    fn mark_signed(&self, id: IntentId, op: &SignedOp) -> Result<()>;

    /// Replaces the intent's signed operation by `op`: the same calls at the same nonce,
    /// re-signed with higher fees (a fee bump), whose gas may cost at most `gas_cost_cap`.
    /// `Signed` or `Submitted` → `Signed`. The operation it replaces is kept in
    /// [`IntentRecord::replaced`]: either may still land, never both (they share a nonce). The
    /// spends are unchanged. Repeating it with the same hash is a no-op; another nonce is
    /// refused ([`Error::NonceMismatch`](crate::Error::NonceMismatch)), as is a hash another
    /// intent holds ([`Error::DuplicateOp`](crate::Error::DuplicateOp)).
    fn mark_replaced(&self, id: IntentId, op: &SignedOp, gas_cost_cap: U256) -> Result<()>;

    /// Records a submission (`Signed` → `Submitted`, or a resubmission of a `Submitted` intent).
    /// `via` names the path (`self-bundled`, a bundler URL...); `tx_hash` is the bundle
    /// transaction when known.
    fn mark_submitted(&self, id: IntentId, via: &str, tx_hash: Option<B256>) -> Result<()>;

    /// Ends the intent: `Included` (from Signed or Submitted), `Failed` or `Released` (from any
    /// pending state). It stops counting against its ceiling. Terminal states never change, but
    /// for an inclusion a reorg undid ([`reopen`](Self::reopen)).
    fn resolve(&self, id: IntentId, outcome: &Outcome) -> Result<()>;

    /// Takes back an inclusion a reorg undid: `Included` → `Submitted` (`Signed` if it was never
    /// recorded as sent), its inclusion forgotten. Its signed operation may land again (anyone
    /// may send it until its nonce is used or its deadline passes), so it counts against its
    /// ceilings again until it is resolved anew. The only way out of a terminal state.
    fn reopen(&self, id: IntentId) -> Result<()>;

    /// The intents of `account` on `chain_id` included in a block after `after_block`, oldest
    /// first: those a reorg may still take back.
    fn included_after(&self, chain_id: u64, account: Address, after_block: u64) -> Result<Vec<IntentRecord>>;

    /// One intent with everything recorded about it.
    fn get(&self, id: IntentId) -> Result<IntentRecord>;

    /// Every intent not yet Included, Failed or Released, oldest first, with its signed op.
    fn unresolved(&self) -> Result<Vec<IntentRecord>>;

    /// What is pending (Reserved, Signed, Submitted) for one (chain, account, session, token,
    /// window).
    fn pending_total(
        &self,
        chain_id: u64,
        account: Address,
        session_id: B256,
        token: Address,
        window: u64,
    ) -> Result<U256>;

    /// Makes `lane` this caller's until the returned lock is dropped, or `None` when another
    /// holder (a task of this process or another process) has it. The signer holds it from
    /// reservation to settlement, so that one lane has one operation in flight and whoever holds
    /// it knows that every other unresolved intent of the lane has no live owner. A durable
    /// backend's lock is released by the operating system when its holder dies (kill -9
    /// included). Does not block.
    fn try_lock_lane(&self, lane: &LaneId) -> Result<Option<LaneLock>>;

    /// Ties `chain_id` to the chain whose identity is `genesis` (its genesis block hash, or an
    /// anvil fork's [`chain_identity`](crate::settle::chain_identity)). The first call records
    /// it; a later call with another one (the chain was reset under the same id) resolves
    /// every pending intent of that chain id as Failed ("chain reset") and records the new
    /// genesis, in one transaction. Call it before acting on a chain.
    fn bind_chain(&self, chain_id: u64, genesis: B256) -> Result<ChainBound>;

    /// Appends one signing decision (allowed or refused) to the audit log.
    fn record_decision(&self, decision: &Decision) -> Result<()>;

    /// The decisions with `at >= since`, in the order recorded.
    fn decisions(&self, since: u64) -> Result<Vec<Decision>>;

    /// The decisions recorded after the first `seen`, in the order recorded: the log is
    /// append-only, so a reader that follows it (`sak watch`) keeps its place by a count.
    fn decisions_after(&self, seen: usize) -> Result<Vec<Decision>>;
}

/// Kills the process with SIGKILL when `SAK_FAILPOINT` is `<step>:<point>`, for example
/// `reserve:before_commit` or `sign:after_commit`. Only compiled with the
/// `failpoints` feature, which only this crate's own tests enable.
#[cfg(feature = "failpoints")]
#[allow(unsafe_code)]
pub(crate) fn failpoint(step: &str, point: &str) {
    let hit = std::env::var("SAK_FAILPOINT").is_ok_and(|v| v.split_once(':') == Some((step, point)));
    if hit {
        // SAFETY: kill(2) and getpid(2) take and return plain integers; no memory is shared.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_step: &str, _point: &str) {}
