//! Intent rows as every SQL backend stores them, decoded into records with every value
//! checked: SQLite and PostgreSQL read their columns into a [`RawRow`] and share the rest.

use super::{Intent, IntentId, IntentRecord, IntentState, Outcome, SignedOp, Spend, Submission, machine};
use crate::{Error, Result};
use alloy::primitives::{Address, B256, Bytes, U256};

pub(crate) fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corrupt { reason: reason.into() }
}

pub(crate) fn u256_of(bytes: &[u8], what: &str) -> Result<U256> {
    if bytes.len() != 32 {
        return Err(corrupt(format!("{what} is {} bytes, not 32", bytes.len())));
    }
    Ok(U256::from_be_slice(bytes))
}

pub(crate) fn b256_of(bytes: &[u8], what: &str) -> Result<B256> {
    B256::try_from(bytes).map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

pub(crate) fn address_of(bytes: &[u8], what: &str) -> Result<Address> {
    Address::try_from(bytes).map_err(|_| corrupt(format!("{what} is {} bytes, not 20", bytes.len())))
}

pub(crate) fn u64_of(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("{what} is negative")))
}

/// Values are validated to be at most 2^63 - 1 before they are written.
pub(crate) fn i64_of(v: u64) -> i64 {
    v as i64
}

/// The raw columns of one intent row, decoded into a record once the statement is done.
pub(crate) struct RawRow {
    pub(crate) id: i64,
    pub(crate) chain_id: i64,
    pub(crate) account: Vec<u8>,
    pub(crate) session_id: Vec<u8>,
    pub(crate) nonce_key: Vec<u8>,
    pub(crate) nonce_seq: Option<i64>,
    pub(crate) gas_cost_cap: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) state: String,
    pub(crate) user_op_hash: Option<Vec<u8>>,
    pub(crate) signed_nonce_key: Option<Vec<u8>>,
    pub(crate) signed_nonce_seq: Option<i64>,
    pub(crate) op_bytes: Option<Vec<u8>>,
    pub(crate) submitted_via: Option<String>,
    pub(crate) submit_tx_hash: Option<Vec<u8>>,
    pub(crate) submit_count: i64,
    pub(crate) included_success: Option<bool>,
    pub(crate) actual_gas_cost: Option<Vec<u8>>,
    pub(crate) included_tx_hash: Option<Vec<u8>>,
    pub(crate) included_block: Option<i64>,
    pub(crate) outcome_reason: Option<String>,
    pub(crate) included_user_op_hash: Option<Vec<u8>>,
}

impl RawRow {
    pub(crate) fn decode(
        self,
        spends: Vec<Spend>,
        replaced: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<IntentRecord> {
        let id = IntentId(self.id);
        let state = IntentState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("intent {id}: state {}", self.state)))?;
        let opt_b256 = |v: Option<Vec<u8>>, what: &str| v.map(|b| b256_of(&b, what)).transpose();
        let signed = match (self.user_op_hash, self.signed_nonce_key, self.signed_nonce_seq, self.op_bytes) {
            (Some(hash), Some(key), Some(seq), Some(bytes)) => Some(SignedOp {
                user_op_hash: b256_of(&hash, "user_op_hash")?,
                nonce_key: u256_of(&key, "signed_nonce_key")?,
                nonce_seq: u64_of(seq, "signed_nonce_seq")?,
                op_bytes: Bytes::from(bytes),
            }),
            (None, None, None, None) => None,
            _ => return Err(corrupt(format!("intent {id}: partial signed op"))),
        };
        let submission = match self.submitted_via {
            Some(via) => Some(Submission {
                via,
                tx_hash: opt_b256(self.submit_tx_hash, "submit_tx_hash")?,
                count: u32::try_from(self.submit_count).map_err(|_| corrupt("submit_count"))?,
            }),
            None => None,
        };
        let replaced = match &signed {
            Some(s) => replaced
                .into_iter()
                .map(|(hash, bytes)| {
                    Ok(SignedOp {
                        user_op_hash: b256_of(&hash, "replaced user_op_hash")?,
                        op_bytes: bytes.into(),
                        ..s.clone()
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            None if replaced.is_empty() => Vec::new(),
            None => return Err(corrupt(format!("intent {id}: replaced ops but none signed"))),
        };
        let reason = || self.outcome_reason.clone().unwrap_or_default();
        let outcome = match state {
            IntentState::Included => Some(Outcome::Included {
                // Rows from before schema v3 had no replacements: their own operation landed.
                user_op_hash: match (self.included_user_op_hash, &signed) {
                    (Some(h), _) => b256_of(&h, "included_user_op_hash")?,
                    (None, Some(s)) => s.user_op_hash,
                    (None, None) => return Err(corrupt(format!("intent {id}: included but never signed"))),
                },
                success: self
                    .included_success
                    .ok_or_else(|| corrupt(format!("intent {id}: no success flag")))?,
                actual_gas_cost: u256_of(&self.actual_gas_cost.unwrap_or_default(), "actual_gas_cost")?,
                tx_hash: b256_of(&self.included_tx_hash.unwrap_or_default(), "included_tx_hash")?,
                block: u64_of(self.included_block.unwrap_or(-1), "included_block")?,
            }),
            IntentState::Failed => Some(Outcome::Failed { reason: reason() }),
            IntentState::Released => Some(Outcome::Released { reason: reason() }),
            _ => None,
        };
        Ok(IntentRecord {
            id,
            intent: Intent {
                chain_id: u64_of(self.chain_id, "chain_id")?,
                account: address_of(&self.account, "account")?,
                session_id: b256_of(&self.session_id, "session_id")?,
                nonce_key: u256_of(&self.nonce_key, "nonce_key")?,
                nonce_seq: self.nonce_seq.map(|s| u64_of(s, "nonce_seq")).transpose()?,
                spends,
                gas_cost_cap: u256_of(&self.gas_cost_cap, "gas_cost_cap")?,
                created_at: u64_of(self.created_at, "created_at")?,
            },
            state,
            signed,
            replaced,
            submission,
            outcome,
        })
    }
}

/// The spends of one scope's (token, window) that may count against a ceiling read at a block
/// (see [`AsOf`](super::AsOf)): those of pending intents, and of intents included after the
/// block. Parameters: chain id, account, session, token, window, block; in SQLite's `?N`
/// (PostgreSQL's `$N` with `?` replaced). Columns as [`flight_row`] takes them.
pub(crate) const IN_FLIGHT_SQL: &str = "
SELECT i.state, COALESCE(i.signed_nonce_key, i.nonce_key), COALESCE(i.signed_nonce_seq, i.nonce_seq),
       i.included_block, s.amount
  FROM intents i JOIN spends s ON s.intent_id = i.id
 WHERE i.chain_id = ?1 AND i.account = ?2 AND i.session_id = ?3
   AND i.state IN ('reserved', 'signed', 'submitted') AND s.token = ?4 AND s.window_index = ?5
UNION ALL
SELECT i.state, COALESCE(i.signed_nonce_key, i.nonce_key), COALESCE(i.signed_nonce_seq, i.nonce_seq),
       i.included_block, s.amount
  FROM intents i JOIN spends s ON s.intent_id = i.id
 WHERE i.chain_id = ?1 AND i.account = ?2 AND i.session_id = ?3
   AND i.state = 'included' AND i.included_block > ?6 AND s.token = ?4 AND s.window_index = ?5";

/// One row of [`IN_FLIGHT_SQL`], decoded: (state, signed nonce, inclusion block, amount).
pub(crate) fn flight_row(
    state: &str,
    nonce_key: &[u8],
    nonce_seq: Option<i64>,
    included_block: Option<i64>,
    amount: &[u8],
) -> Result<machine::FlightRow> {
    let state =
        IntentState::parse(state).ok_or_else(|| corrupt(format!("unknown intent state {state:?}")))?;
    let nonce = match nonce_seq {
        Some(seq) => Some((u256_of(nonce_key, "nonce key")?, u64_of(seq, "nonce sequence")?)),
        None => None,
    };
    let included_block = included_block.map(|b| u64_of(b, "included block")).transpose()?;
    Ok((state, nonce, included_block, u256_of(amount, "spend amount")?))
}
