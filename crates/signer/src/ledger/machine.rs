//! Validation and the state machine, shared by every backend so that they agree exactly.

use super::{AsOf, Ceiling, Intent, IntentId, IntentRecord, IntentState, Outcome, SignedOp};
use crate::{Error, Result};
use alloy::primitives::{Address, U256};

const I64_MAX: u64 = i64::MAX as u64;

/// Checks ranges and returns the intent's spends summed per (token, window), in first-seen order.
pub(crate) fn requested(intent: &Intent) -> Result<Vec<(Address, u64, U256)>> {
    if intent.nonce_key >> 192 != U256::ZERO {
        return Err(Error::InvalidIntent {
            reason: format!("nonce key {} exceeds 192 bits", intent.nonce_key),
        });
    }
    for (what, v) in [("chain id", intent.chain_id), ("created_at", intent.created_at)] {
        if v > I64_MAX {
            return Err(Error::InvalidIntent { reason: format!("{what} {v} exceeds 2^63 - 1") });
        }
    }
    if intent.nonce_seq.is_some_and(|s| s > I64_MAX) {
        return Err(Error::InvalidIntent { reason: "nonce sequence exceeds 2^63 - 1".into() });
    }
    let mut out: Vec<(Address, u64, U256)> = Vec::new();
    for s in &intent.spends {
        if s.window > I64_MAX {
            return Err(Error::InvalidIntent { reason: format!("window {} exceeds 2^63 - 1", s.window) });
        }
        match out.iter_mut().find(|(t, w, _)| *t == s.token && *w == s.window) {
            Some((_, _, total)) => {
                *total = total
                    .checked_add(s.amount)
                    .ok_or(Error::AmountOverflow { token: s.token, window: s.window })?;
            }
            None => out.push((s.token, s.window, s.amount)),
        }
    }
    Ok(out)
}

/// The ceiling the caller gave for (token, window).
pub(crate) fn ceiling(ceilings: &[Ceiling], token: Address, window: u64) -> Result<&Ceiling> {
    ceilings
        .iter()
        .find(|c| c.token == token && c.window == window)
        .ok_or(Error::MissingCeiling { token, window })
}

/// Refuses when `counted + requested` exceeds the ceiling.
pub(crate) fn check_ceiling(ceiling: &Ceiling, counted: U256, requested: U256) -> Result<()> {
    let (token, window, max) = (ceiling.token, ceiling.window, ceiling.max_pending);
    match counted.checked_add(requested) {
        Some(total) if total <= max => Ok(()),
        _ => Err(Error::CeilingExceeded { token, window, pending: counted, requested, ceiling: max }),
    }
}

/// `pending + requested`: the running pending total after a reservation.
pub(crate) fn add_pending(token: Address, window: u64, pending: U256, requested: U256) -> Result<U256> {
    pending.checked_add(requested).ok_or(Error::AmountOverflow { token, window })
}

/// One spend that may count against a ceiling: its intent's state, signed nonce (key,
/// sequence) and inclusion block, and its amount.
pub(crate) type FlightRow = (IntentState, Option<(U256, u64)>, Option<u64>, U256);

/// What counts against a ceiling read at `as_of`: the sum of the spends of `rows` that
/// [`AsOf::counts`] keeps.
pub(crate) fn counted(
    as_of: &AsOf,
    token: Address,
    window: u64,
    rows: impl IntoIterator<Item = FlightRow>,
) -> Result<U256> {
    let mut total = U256::ZERO;
    for (state, nonce, included_block, amount) in rows {
        if as_of.counts(state, nonce, included_block) {
            total = add_pending(token, window, total, amount)?;
        }
    }
    Ok(total)
}

/// The state an intent returns to when a reorg takes its inclusion back (only an included one
/// can be reopened): `Submitted`, or `Signed` if it was never recorded as sent.
pub(crate) fn reopen_step(rec: &IntentRecord) -> Result<IntentState> {
    match rec.state {
        IntentState::Included if rec.submission.is_some() => Ok(IntentState::Submitted),
        IntentState::Included => Ok(IntentState::Signed),
        from => Err(Error::IllegalTransition { id: rec.id, from, action: "reopen" }),
    }
}

/// What `mark_signed` must do to a record.
pub(crate) enum SignStep {
    /// Store the op and move to Signed.
    Store,
    /// Already signed with this hash: nothing to do.
    AlreadyDone,
}

/// Refuses `op` for intent `id` unless its nonce is the intent's lane (and its sequence, if
/// the intent knew it).
pub(crate) fn check_signed_nonce(id: IntentId, intent: &Intent, op: &SignedOp) -> Result<()> {
    let nonce_ok = op.nonce_key == intent.nonce_key
        && intent.nonce_seq.is_none_or(|s| s == op.nonce_seq)
        && op.nonce_seq <= I64_MAX;
    if nonce_ok {
        Ok(())
    } else {
        Err(Error::NonceMismatch {
            id,
            key: op.nonce_key,
            seq: op.nonce_seq,
            intent_key: intent.nonce_key,
            intent_seq: intent.nonce_seq,
        })
    }
}

pub(crate) fn sign_step(rec: &IntentRecord, op: &SignedOp) -> Result<SignStep> {
    let id = rec.id;
    match rec.state {
        IntentState::Reserved => check_signed_nonce(id, &rec.intent, op).map(|()| SignStep::Store),
        IntentState::Signed | IntentState::Submitted => {
            let existing = rec.signed.as_ref().map(|s| s.user_op_hash).unwrap_or_default();
            if existing == op.user_op_hash {
                Ok(SignStep::AlreadyDone)
            } else {
                Err(Error::SignedOpConflict { id, existing, attempted: op.user_op_hash })
            }
        }
        from => Err(Error::IllegalTransition { id, from, action: "mark_signed" }),
    }
}

/// What `mark_replaced` must do to a record: the replacement keeps the signed operation's
/// nonce and is not one it already replaced.
pub(crate) fn replace_step(rec: &IntentRecord, op: &SignedOp) -> Result<SignStep> {
    let id = rec.id;
    let current = match (rec.state, &rec.signed) {
        (IntentState::Signed | IntentState::Submitted, Some(s)) => s,
        (from, _) => return Err(Error::IllegalTransition { id, from, action: "mark_replaced" }),
    };
    if op.user_op_hash == current.user_op_hash {
        return Ok(SignStep::AlreadyDone);
    }
    if op.nonce_key != current.nonce_key || op.nonce_seq != current.nonce_seq {
        return Err(Error::NonceMismatch {
            id,
            key: op.nonce_key,
            seq: op.nonce_seq,
            intent_key: current.nonce_key,
            intent_seq: Some(current.nonce_seq),
        });
    }
    if rec.replaced.iter().any(|r| r.user_op_hash == op.user_op_hash) {
        return Err(Error::SignedOpConflict {
            id,
            existing: current.user_op_hash,
            attempted: op.user_op_hash,
        });
    }
    Ok(SignStep::Store)
}

pub(crate) fn check_submit(id: IntentId, from: IntentState) -> Result<()> {
    match from {
        IntentState::Signed | IntentState::Submitted => Ok(()),
        from => Err(Error::IllegalTransition { id, from, action: "mark_submitted" }),
    }
}

pub(crate) fn check_resolve(id: IntentId, from: IntentState, outcome: &Outcome) -> Result<()> {
    let allowed = match outcome {
        // Only a signed op can be on chain.
        Outcome::Included { block, .. } => {
            *block <= I64_MAX && matches!(from, IntentState::Signed | IntentState::Submitted)
        }
        Outcome::Failed { .. } | Outcome::Released { .. } => from.is_pending(),
    };
    if allowed {
        Ok(())
    } else {
        let action = match outcome {
            Outcome::Included { .. } => "resolve(Included)",
            Outcome::Failed { .. } => "resolve(Failed)",
            Outcome::Released { .. } => "resolve(Released)",
        };
        Err(Error::IllegalTransition { id, from, action })
    }
}
