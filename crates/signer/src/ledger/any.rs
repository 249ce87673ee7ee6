//! [`AnyLedger`]: the durable backend a home is configured with.

use super::{
    Ceiling, ChainBound, Decision, Intent, IntentId, IntentRecord, LaneId, LaneLock, Ledger, Outcome,
    PostgresLedger, SignedOp, SqliteLedger,
};
use crate::Result;
use alloy::primitives::{Address, B256, U256};

/// One of the durable backends: the SQLite file of one home, or a PostgreSQL database that a
/// fleet of workers shares. Every call goes to the backend it holds.
#[derive(Debug)]
pub enum AnyLedger {
    /// An SQLite file.
    Sqlite(SqliteLedger),
    /// A PostgreSQL database.
    Postgres(PostgresLedger),
}

macro_rules! each {
    ($self:ident, $l:ident => $e:expr) => {
        match $self {
            AnyLedger::Sqlite($l) => $e,
            AnyLedger::Postgres($l) => $e,
        }
    };
}

impl AnyLedger {
    /// The intents whose signed operation, or one it replaced, has hash `user_op_hash`.
    pub fn intents_by_user_op_hash(&self, user_op_hash: B256) -> Result<Vec<IntentRecord>> {
        each!(self, l => l.intents_by_user_op_hash(user_op_hash))
    }

    /// Every intent that holds a signed operation, oldest first.
    pub fn signed_intents(&self) -> Result<Vec<IntentRecord>> {
        each!(self, l => l.signed_intents())
    }

    /// The scopes whose running pending total differs from their intents' (empty when
    /// consistent).
    pub fn check_consistency(&self) -> Result<Vec<String>> {
        each!(self, l => l.check_consistency())
    }
}

impl Ledger for AnyLedger {
    fn reserve(&self, intent: &Intent, ceilings: &[Ceiling]) -> Result<IntentId> {
        each!(self, l => l.reserve(intent, ceilings))
    }

    fn reserve_batch(&self, batch: &[(&Intent, &[Ceiling])]) -> Result<Vec<Result<IntentId>>> {
        each!(self, l => l.reserve_batch(batch))
    }

    fn mark_signed_batch(&self, batch: &[(IntentId, &SignedOp)]) -> Result<Vec<Result<()>>> {
        each!(self, l => l.mark_signed_batch(batch))
    }

    fn reserve_signed(&self, intent: &Intent, ceilings: &[Ceiling], op: &SignedOp) -> Result<IntentId> {
        each!(self, l => l.reserve_signed(intent, ceilings, op))
    }

    fn mark_signed(&self, id: IntentId, op: &SignedOp) -> Result<()> {
        each!(self, l => l.mark_signed(id, op))
    }

    fn mark_replaced(&self, id: IntentId, op: &SignedOp, gas_cost_cap: U256) -> Result<()> {
        each!(self, l => l.mark_replaced(id, op, gas_cost_cap))
    }

    fn mark_submitted(&self, id: IntentId, via: &str, tx_hash: Option<B256>) -> Result<()> {
        each!(self, l => l.mark_submitted(id, via, tx_hash))
    }

    fn resolve(&self, id: IntentId, outcome: &Outcome) -> Result<()> {
        each!(self, l => l.resolve(id, outcome))
    }

    fn reopen(&self, id: IntentId) -> Result<()> {
        each!(self, l => l.reopen(id))
    }

    fn included_after(&self, chain_id: u64, account: Address, after_block: u64) -> Result<Vec<IntentRecord>> {
        each!(self, l => l.included_after(chain_id, account, after_block))
    }

    fn get(&self, id: IntentId) -> Result<IntentRecord> {
        each!(self, l => l.get(id))
    }

    fn unresolved(&self) -> Result<Vec<IntentRecord>> {
        each!(self, l => l.unresolved())
    }

    fn pending_total(
        &self,
        chain_id: u64,
        account: Address,
        session_id: B256,
        token: Address,
        window: u64,
    ) -> Result<U256> {
        each!(self, l => l.pending_total(chain_id, account, session_id, token, window))
    }

    fn try_lock_lane(&self, lane: &LaneId) -> Result<Option<LaneLock>> {
        each!(self, l => l.try_lock_lane(lane))
    }

    fn bind_chain(&self, chain_id: u64, genesis: B256) -> Result<ChainBound> {
        each!(self, l => l.bind_chain(chain_id, genesis))
    }

    fn record_decision(&self, decision: &Decision) -> Result<()> {
        each!(self, l => l.record_decision(decision))
    }

    fn decisions(&self, since: u64) -> Result<Vec<Decision>> {
        each!(self, l => l.decisions(since))
    }

    fn decisions_after(&self, seen: usize) -> Result<Vec<Decision>> {
        each!(self, l => l.decisions_after(seen))
    }
}
