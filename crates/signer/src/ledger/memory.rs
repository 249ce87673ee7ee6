use super::{
    Ceiling, ChainBound, Decision, Intent, IntentId, IntentRecord, IntentState, LaneId, LaneLock, Ledger,
    Outcome, SignedOp, Submission, machine,
};
use crate::{Error, Result};
use alloy::primitives::{Address, B256, U256};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

type Scope = (u64, Address, B256, Address, u64);

#[derive(Debug, Default)]
struct State {
    intents: Vec<IntentRecord>,
    /// Running pending totals per (chain, account, session, token, window).
    pending: HashMap<Scope, U256>,
    decisions: Vec<Decision>,
    /// Genesis hash per chain id.
    chains: HashMap<u64, B256>,
}

/// An in-memory [`Ledger`] with the same rules as [`SqliteLedger`](super::SqliteLedger), for
/// tests and benchmarks. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
    /// Lanes held by a [`LaneLock`] (this process only: nothing else sees the ledger).
    lanes: Arc<Mutex<HashSet<LaneId>>>,
}

/// Frees its lane when dropped.
struct HeldLane(Arc<Mutex<HashSet<LaneId>>>, LaneId);

impl Drop for HeldLane {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.1);
    }
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation below is validated before it writes, so a panic never leaves a
        // half-applied change behind: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn index(id: IntentId, len: usize) -> Result<usize> {
    id.0.checked_sub(1)
        .and_then(|i| usize::try_from(i).ok())
        .filter(|i| *i < len)
        .ok_or(Error::IntentNotFound(id))
}

/// Reserves `intent` (and records `signed` as its operation, when given) in one step: a
/// refusal changes nothing.
fn reserve_in(
    state: &mut State,
    intent: &Intent,
    ceilings: &[Ceiling],
    signed: Option<&SignedOp>,
) -> Result<IntentId> {
    let requested = machine::requested(intent)?;
    let scope = |t: Address, w: u64| (intent.chain_id, intent.account, intent.session_id, t, w);
    let mut new_totals = Vec::with_capacity(requested.len());
    for &(token, window, amount) in &requested {
        let ceiling = machine::ceiling(ceilings, token, window)?;
        let pending = state.pending.get(&scope(token, window)).copied().unwrap_or_default();
        let counted = match &ceiling.as_of {
            None => pending,
            Some(as_of) => machine::counted(as_of, token, window, in_flight(state, intent, token, window))?,
        };
        machine::check_ceiling(ceiling, counted, amount)?;
        new_totals.push((scope(token, window), machine::add_pending(token, window, pending, amount)?));
    }
    let id = IntentId(state.intents.len() as i64 + 1);
    if let Some(op) = signed {
        machine::check_signed_nonce(id, intent, op)?;
        held_by_other(state, id, op)?;
    }
    let rec = IntentRecord {
        id,
        intent: intent.clone(),
        state: if signed.is_some() { IntentState::Signed } else { IntentState::Reserved },
        signed: signed.cloned(),
        replaced: Vec::new(),
        submission: None,
        outcome: None,
    };
    state.pending.extend(new_totals);
    state.intents.push(rec);
    Ok(id)
}

/// Every spend of (token, window) in `intent`'s scope, with its intent's state, signed nonce
/// and inclusion block.
fn in_flight<'a>(
    state: &'a State,
    intent: &'a Intent,
    token: Address,
    window: u64,
) -> impl Iterator<Item = machine::FlightRow> + 'a {
    let same_scope = |r: &&IntentRecord| {
        (r.intent.chain_id, r.intent.account, r.intent.session_id)
            == (intent.chain_id, intent.account, intent.session_id)
    };
    state.intents.iter().filter(same_scope).flat_map(move |r| {
        let nonce = match &r.signed {
            Some(s) => Some((s.nonce_key, s.nonce_seq)),
            None => r.intent.nonce_seq.map(|seq| (r.intent.nonce_key, seq)),
        };
        let block = match r.outcome {
            Some(Outcome::Included { block, .. }) => Some(block),
            _ => None,
        };
        r.intent
            .spends
            .iter()
            .filter(move |s| s.token == token && s.window == window)
            .map(move |s| (r.state, nonce, block, s.amount))
    })
}

/// Refuses `op` when another intent holds its hash (signed or replaced).
fn held_by_other(state: &State, id: IntentId, op: &SignedOp) -> Result<()> {
    let holds = |r: &IntentRecord| r.user_op_hashes().any(|h| h == op.user_op_hash);
    match state.intents.iter().find(|r| r.id != id && holds(r)) {
        Some(other) => Err(Error::DuplicateOp { id, existing: other.id }),
        None => Ok(()),
    }
}

fn resolve_in(state: &mut State, id: IntentId, outcome: &Outcome) -> Result<()> {
    let i = index(id, state.intents.len())?;
    machine::check_resolve(id, state.intents[i].state, outcome)?;
    let requested = machine::requested(&state.intents[i].intent)?;
    let rec = &mut state.intents[i];
    rec.state = outcome.state();
    rec.outcome = Some(outcome.clone());
    let (c, a, s) = (rec.intent.chain_id, rec.intent.account, rec.intent.session_id);
    for (token, window, amount) in requested {
        if let Some(total) = state.pending.get_mut(&(c, a, s, token, window)) {
            *total = total.saturating_sub(amount);
        }
    }
    Ok(())
}

impl Ledger for MemoryLedger {
    fn try_lock_lane(&self, lane: &LaneId) -> Result<Option<LaneLock>> {
        let mut held = self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(held.insert(*lane).then(|| LaneLock::new(HeldLane(Arc::clone(&self.lanes), *lane))))
    }

    fn reserve(&self, intent: &Intent, ceilings: &[Ceiling]) -> Result<IntentId> {
        reserve_in(&mut self.lock(), intent, ceilings, None)
    }

    fn reserve_signed(&self, intent: &Intent, ceilings: &[Ceiling], op: &SignedOp) -> Result<IntentId> {
        reserve_in(&mut self.lock(), intent, ceilings, Some(op))
    }

    fn mark_signed(&self, id: IntentId, op: &SignedOp) -> Result<()> {
        let mut state = self.lock();
        let i = index(id, state.intents.len())?;
        if let machine::SignStep::Store = machine::sign_step(&state.intents[i], op)? {
            held_by_other(&state, id, op)?;
            let rec = &mut state.intents[i];
            rec.state = IntentState::Signed;
            rec.signed = Some(op.clone());
        }
        Ok(())
    }

    fn mark_replaced(&self, id: IntentId, op: &SignedOp, gas_cost_cap: U256) -> Result<()> {
        let mut state = self.lock();
        let i = index(id, state.intents.len())?;
        if let machine::SignStep::Store = machine::replace_step(&state.intents[i], op)? {
            held_by_other(&state, id, op)?;
            let rec = &mut state.intents[i];
            let earlier = rec.signed.replace(op.clone()).expect("replace_step checked it is signed");
            rec.replaced.push(earlier);
            rec.state = IntentState::Signed;
            rec.submission = None;
            rec.intent.gas_cost_cap = gas_cost_cap;
        }
        Ok(())
    }

    fn mark_submitted(&self, id: IntentId, via: &str, tx_hash: Option<B256>) -> Result<()> {
        let mut state = self.lock();
        let i = index(id, state.intents.len())?;
        let rec = &mut state.intents[i];
        machine::check_submit(id, rec.state)?;
        let count = rec.submission.as_ref().map_or(0, |s| s.count) + 1;
        rec.state = IntentState::Submitted;
        rec.submission = Some(Submission { via: via.to_owned(), tx_hash, count });
        Ok(())
    }

    fn resolve(&self, id: IntentId, outcome: &Outcome) -> Result<()> {
        resolve_in(&mut self.lock(), id, outcome)
    }

    fn reopen(&self, id: IntentId) -> Result<()> {
        let mut state = self.lock();
        let i = index(id, state.intents.len())?;
        let to = machine::reopen_step(&state.intents[i])?;
        let rec = &state.intents[i];
        let (c, a, s) = (rec.intent.chain_id, rec.intent.account, rec.intent.session_id);
        let mut totals = Vec::new();
        for (token, window, amount) in machine::requested(&rec.intent)? {
            let pending = state.pending.get(&(c, a, s, token, window)).copied().unwrap_or_default();
            totals.push(((c, a, s, token, window), machine::add_pending(token, window, pending, amount)?));
        }
        state.pending.extend(totals);
        let rec = &mut state.intents[i];
        rec.state = to;
        rec.outcome = None;
        Ok(())
    }

    fn included_after(&self, chain_id: u64, account: Address, after_block: u64) -> Result<Vec<IntentRecord>> {
        let landed_after = |r: &&IntentRecord| {
            matches!(r.outcome, Some(Outcome::Included { block, .. }) if block > after_block)
                && r.state == IntentState::Included
                && (r.intent.chain_id, r.intent.account) == (chain_id, account)
        };
        Ok(self.lock().intents.iter().filter(landed_after).cloned().collect())
    }

    fn bind_chain(&self, chain_id: u64, genesis: B256) -> Result<ChainBound> {
        let mut state = self.lock();
        let previous = match state.chains.insert(chain_id, genesis) {
            None => return Ok(ChainBound::First),
            Some(known) if known == genesis => return Ok(ChainBound::Same),
            Some(known) => known,
        };
        let retired: Vec<IntentId> = state
            .intents
            .iter()
            .filter(|r| r.state.is_pending() && r.intent.chain_id == chain_id)
            .map(|r| r.id)
            .collect();
        for id in &retired {
            resolve_in(&mut state, *id, &Outcome::Failed { reason: super::CHAIN_RESET.to_owned() })?;
        }
        Ok(ChainBound::Reset { previous, retired })
    }

    fn get(&self, id: IntentId) -> Result<IntentRecord> {
        let state = self.lock();
        Ok(state.intents[index(id, state.intents.len())?].clone())
    }

    fn unresolved(&self) -> Result<Vec<IntentRecord>> {
        Ok(self.lock().intents.iter().filter(|r| r.state.is_pending()).cloned().collect())
    }

    fn pending_total(
        &self,
        chain_id: u64,
        account: Address,
        session_id: B256,
        token: Address,
        window: u64,
    ) -> Result<U256> {
        let key = (chain_id, account, session_id, token, window);
        Ok(self.lock().pending.get(&key).copied().unwrap_or_default())
    }

    fn record_decision(&self, decision: &Decision) -> Result<()> {
        self.lock().decisions.push(decision.clone());
        Ok(())
    }

    fn decisions(&self, since: u64) -> Result<Vec<Decision>> {
        Ok(self.lock().decisions.iter().filter(|d| d.at >= since).cloned().collect())
    }

    fn decisions_after(&self, seen: usize) -> Result<Vec<Decision>> {
        Ok(self.lock().decisions.iter().skip(seen).cloned().collect())
    }
}
