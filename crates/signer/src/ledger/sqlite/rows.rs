//! Reading intents back from their rows, every value checked as it is decoded.

use super::*;

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
    params: impl rusqlite::Params,
) -> Result<Vec<IntentRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM intents WHERE {filter} ORDER BY id"))
        .map_err(storage("reading intents"))?;
    let rows = stmt
        .query_map(params, RawRow::read)
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
    records_where(conn, "id = ?1", [id.0])?.pop().ok_or(Error::IntentNotFound(id))
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
