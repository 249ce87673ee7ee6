//! Reading intents back from their rows, every value checked as it is decoded.

use super::*;

pub(super) fn u256_of(bytes: &[u8], what: &str) -> Result<U256> {
    if bytes.len() != 32 {
        return Err(corrupt(format!("{what} is {} bytes, not 32", bytes.len())));
    }
    Ok(U256::from_be_slice(bytes))
}

pub(super) fn b256_of(bytes: &[u8], what: &str) -> Result<B256> {
    B256::try_from(bytes).map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

pub(super) fn address_of(bytes: &[u8], what: &str) -> Result<Address> {
    Address::try_from(bytes).map_err(|_| corrupt(format!("{what} is {} bytes, not 20", bytes.len())))
}

pub(super) fn u64_of(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("{what} is negative")))
}

/// Values are validated to be at most 2^63 - 1 before they are written.
pub(super) fn i64_of(v: u64) -> i64 {
    v as i64
}

/// The raw columns of one intent row, decoded into a record once the statement is done.
pub(super) struct RawRow {
    id: i64,
    chain_id: i64,
    account: Vec<u8>,
    session_id: Vec<u8>,
    nonce_key: Vec<u8>,
    nonce_seq: Option<i64>,
    gas_cost_cap: Vec<u8>,
    created_at: i64,
    state: String,
    user_op_hash: Option<Vec<u8>>,
    signed_nonce_key: Option<Vec<u8>>,
    signed_nonce_seq: Option<i64>,
    op_bytes: Option<Vec<u8>>,
    submitted_via: Option<String>,
    submit_tx_hash: Option<Vec<u8>>,
    submit_count: i64,
    included_success: Option<bool>,
    actual_gas_cost: Option<Vec<u8>>,
    included_tx_hash: Option<Vec<u8>>,
    included_block: Option<i64>,
    outcome_reason: Option<String>,
    included_user_op_hash: Option<Vec<u8>>,
}

impl RawRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            chain_id: r.get(1)?,
            account: r.get(2)?,
            session_id: r.get(3)?,
            nonce_key: r.get(4)?,
            nonce_seq: r.get(5)?,
            gas_cost_cap: r.get(6)?,
            created_at: r.get(7)?,
            state: r.get(8)?,
            user_op_hash: r.get(9)?,
            signed_nonce_key: r.get(10)?,
            signed_nonce_seq: r.get(11)?,
            op_bytes: r.get(12)?,
            submitted_via: r.get(13)?,
            submit_tx_hash: r.get(14)?,
            submit_count: r.get(15)?,
            included_success: r.get(16)?,
            actual_gas_cost: r.get(17)?,
            included_tx_hash: r.get(18)?,
            included_block: r.get(19)?,
            outcome_reason: r.get(20)?,
            included_user_op_hash: r.get(21)?,
        })
    }

    fn decode(self, spends: Vec<Spend>, replaced: Vec<(Vec<u8>, Vec<u8>)>) -> Result<IntentRecord> {
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

pub(super) fn spends_of(conn: &Connection, id: IntentId) -> Result<Vec<Spend>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT token, window_index, amount FROM spends WHERE intent_id = ?1 ORDER BY position",
        )
        .map_err(storage("reading spends"))?;
    let raw = stmt
        .query_map([id.0], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)))
        .map_err(storage("reading spends"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(storage("reading spends"))?;
    raw.into_iter()
        .map(|(t, w, a)| {
            Ok(Spend {
                token: address_of(&t, "token")?,
                window: u64_of(w, "window")?,
                amount: u256_of(&a, "amount")?,
            })
        })
        .collect()
}

/// The (hash, bytes) of the operations intent `id`'s signed operation replaced, oldest first.
fn replaced_of(conn: &Connection, id: IntentId) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    conn.prepare_cached(
        "SELECT user_op_hash, op_bytes FROM replaced_ops WHERE intent_id = ?1 ORDER BY position",
    )
    .and_then(|mut stmt| {
        stmt.query_map([id.0], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(storage("reading replaced ops"))
}

pub(super) fn records_where(
    conn: &Connection,
    filter: &str,
    param: Option<i64>,
) -> Result<Vec<IntentRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM intents WHERE {filter} ORDER BY id"))
        .map_err(storage("reading intents"))?;
    let rows = match param {
        Some(p) => stmt.query_map([p], RawRow::read),
        None => stmt.query_map([], RawRow::read),
    }
    .map_err(storage("reading intents"))?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(storage("reading intents"))?;
    rows.into_iter()
        .map(|raw| {
            let spends = spends_of(conn, IntentId(raw.id))?;
            let replaced = replaced_of(conn, IntentId(raw.id))?;
            raw.decode(spends, replaced)
        })
        .collect()
}

pub(super) fn record(conn: &Connection, id: IntentId) -> Result<IntentRecord> {
    records_where(conn, "id = ?1", Some(id.0))?.pop().ok_or(Error::IntentNotFound(id))
}

pub(super) fn state_of(conn: &Connection, id: IntentId) -> Result<IntentState> {
    let state: Option<String> = conn
        .query_row("SELECT state FROM intents WHERE id = ?1", [id.0], |r| r.get(0))
        .optional()
        .map_err(storage("reading intent state"))?;
    let state = state.ok_or(Error::IntentNotFound(id))?;
    IntentState::parse(&state).ok_or_else(|| corrupt(format!("intent {id}: state {state}")))
}

/// Splits a batch item's result: storage failures abort the whole batch (outer `Err`), refusals
/// are that item's answer.
pub(super) fn per_item<T>(r: Result<T>) -> Result<Result<T>> {
    match r {
        Err(e @ (Error::Storage { .. } | Error::Corrupt { .. })) => Err(e),
        other => Ok(other),
    }
}
