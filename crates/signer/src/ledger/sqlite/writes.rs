//! The writes of one transaction: reserve against the ceilings, mark signed, resolve.

use super::*;

pub(super) fn pending_in(
    conn: &Connection,
    chain_id: u64,
    account: Address,
    session_id: B256,
    token: Address,
    window: u64,
) -> Result<U256> {
    let amount: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT amount FROM pending_totals
             WHERE chain_id = ?1 AND account = ?2 AND session_id = ?3 AND token = ?4 AND window_index = ?5",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    i64_of(chain_id),
                    account.as_slice(),
                    session_id.as_slice(),
                    token.as_slice(),
                    i64_of(window)
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(storage("reading pending total"))?;
    amount.map_or(Ok(U256::ZERO), |a| u256_of(&a, "pending total"))
}

/// The rows of [`IN_FLIGHT_SQL`] for `intent`'s scope.
fn in_flight(
    tx: &Connection,
    intent: &Intent,
    token: Address,
    window: u64,
    block: u64,
) -> Result<Vec<machine::FlightRow>> {
    let mut stmt = tx.prepare_cached(IN_FLIGHT_SQL).map_err(storage("reading what is in flight"))?;
    let raw = stmt
        .query_map(
            params![
                i64_of(intent.chain_id),
                intent.account.as_slice(),
                intent.session_id.as_slice(),
                token.as_slice(),
                i64_of(window),
                i64_of(block)
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            },
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(storage("reading what is in flight"))?;
    raw.iter().map(|(s, k, q, b, a)| flight_row(s, k, *q, *b, a)).collect()
}

pub(super) fn set_pending(
    conn: &Connection,
    intent: &Intent,
    token: Address,
    window: u64,
    total: U256,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO pending_totals (chain_id, account, session_id, token, window_index, amount)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (chain_id, account, session_id, token, window_index)
         DO UPDATE SET amount = excluded.amount",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            i64_of(intent.chain_id),
            intent.account.as_slice(),
            intent.session_id.as_slice(),
            token.as_slice(),
            i64_of(window),
            total.to_be_bytes::<32>()
        ])
    })
    .map_err(storage("updating pending total"))?;
    Ok(())
}

/// Reserves `intent` against `ceilings`; with `signed`, the intent is recorded `Signed` with
/// that operation in the same row (no second write, no re-read).
pub(super) fn reserve_in(
    tx: &Connection,
    intent: &Intent,
    ceilings: &[Ceiling],
    signed: Option<&SignedOp>,
) -> Result<IntentId> {
    let requested = machine::requested(intent)?;
    let mut new_totals = Vec::with_capacity(requested.len());
    for &(token, window, amount) in &requested {
        let ceiling = machine::ceiling(ceilings, token, window)?;
        let pending = pending_in(tx, intent.chain_id, intent.account, intent.session_id, token, window)?;
        let counted = match &ceiling.as_of {
            None => pending,
            Some(as_of) => {
                machine::counted(as_of, token, window, in_flight(tx, intent, token, window, as_of.block)?)?
            }
        };
        machine::check_ceiling(ceiling, counted, amount)?;
        new_totals.push((token, window, machine::add_pending(token, window, pending, amount)?));
    }
    tx.prepare_cached(
        "INSERT INTO intents (chain_id, account, session_id, nonce_key, nonce_seq, gas_cost_cap,
                              created_at, state, user_op_hash, signed_nonce_key, signed_nonce_seq, op_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            i64_of(intent.chain_id),
            intent.account.as_slice(),
            intent.session_id.as_slice(),
            intent.nonce_key.to_be_bytes::<32>(),
            intent.nonce_seq.map(i64_of),
            intent.gas_cost_cap.to_be_bytes::<32>(),
            i64_of(intent.created_at),
            if signed.is_some() { "signed" } else { "reserved" },
            signed.map(|op| op.user_op_hash.as_slice()),
            signed.map(|op| op.nonce_key.to_be_bytes::<32>()),
            signed.map(|op| i64_of(op.nonce_seq)),
            signed.map(|op| op.op_bytes.as_ref()),
        ])
    })
    .map_err(storage("inserting intent"))?;
    let id = IntentId(tx.last_insert_rowid());
    if let Some(op) = signed {
        // A refusal here rolls the row back with the caller's transaction (or savepoint).
        machine::check_signed_nonce(id, intent, op)?;
        held_by_other(tx, id, op)?;
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO spends (intent_id, position, token, window_index, amount)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(storage("inserting spends"))?;
    for (position, s) in intent.spends.iter().enumerate() {
        stmt.execute(params![
            id.0,
            position as i64,
            s.token.as_slice(),
            i64_of(s.window),
            s.amount.to_be_bytes::<32>()
        ])
        .map_err(storage("inserting spends"))?;
    }
    for (token, window, total) in new_totals {
        set_pending(tx, intent, token, window, total)?;
    }
    Ok(id)
}

pub(super) fn mark_signed_in(tx: &Connection, id: IntentId, op: &SignedOp) -> Result<()> {
    let rec = record(tx, id)?;
    if let machine::SignStep::Store = machine::sign_step(&rec, op)? {
        held_by_other(tx, id, op)?;
        tx.execute(
            "UPDATE intents SET state = 'signed', user_op_hash = ?2, signed_nonce_key = ?3,
                                signed_nonce_seq = ?4, op_bytes = ?5
             WHERE id = ?1",
            params![
                id.0,
                op.user_op_hash.as_slice(),
                op.nonce_key.to_be_bytes::<32>(),
                i64_of(op.nonce_seq),
                op.op_bytes.as_ref()
            ],
        )
        .map_err(storage("storing signed op"))?;
    }
    Ok(())
}

/// Refuses `op` when another intent holds its hash (signed, or replaced by a fee bump).
fn held_by_other(tx: &Connection, id: IntentId, op: &SignedOp) -> Result<()> {
    let existing: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM intents WHERE user_op_hash = ?1 AND id != ?2
             UNION ALL SELECT intent_id FROM replaced_ops WHERE user_op_hash = ?1 AND intent_id != ?2
             LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![op.user_op_hash.as_slice(), id.0], |r| r.get(0)).optional()
        })
        .map_err(storage("looking up the signed op's hash"))?;
    match existing {
        Some(existing) => Err(Error::DuplicateOp { id, existing: IntentId(existing) }),
        None => Ok(()),
    }
}

pub(super) fn mark_replaced_in(
    tx: &Connection,
    id: IntentId,
    op: &SignedOp,
    gas_cost_cap: U256,
) -> Result<()> {
    let rec = record(tx, id)?;
    if let machine::SignStep::AlreadyDone = machine::replace_step(&rec, op)? {
        return Ok(());
    }
    held_by_other(tx, id, op)?;
    let earlier = rec.signed.as_ref().expect("replace_step checked it is signed");
    tx.execute(
        "INSERT INTO replaced_ops (intent_id, position, user_op_hash, op_bytes) VALUES (?1, ?2, ?3, ?4)",
        params![id.0, rec.replaced.len() as i64, earlier.user_op_hash.as_slice(), earlier.op_bytes.as_ref()],
    )
    .map_err(storage("keeping the replaced op"))?;
    tx.execute(
        "UPDATE intents SET state = 'signed', user_op_hash = ?2, op_bytes = ?3, gas_cost_cap = ?4,
                            submitted_via = NULL, submit_tx_hash = NULL, submit_count = 0
         WHERE id = ?1",
        params![id.0, op.user_op_hash.as_slice(), op.op_bytes.as_ref(), gas_cost_cap.to_be_bytes::<32>()],
    )
    .map_err(storage("storing the replacement"))?;
    Ok(())
}

pub(super) fn resolve_in(tx: &Connection, id: IntentId, outcome: &Outcome) -> Result<()> {
    let rec = record(tx, id)?;
    machine::check_resolve(id, rec.state, outcome)?;
    let c = &rec.intent;
    for (token, window, amount) in machine::requested(c)? {
        let pending = pending_in(tx, c.chain_id, c.account, c.session_id, token, window)?;
        let rest = pending.checked_sub(amount).ok_or_else(|| {
            corrupt(format!("intent {id}: pending total {pending} below its spend {amount}"))
        })?;
        set_pending(tx, c, token, window, rest)?;
    }
    let state = outcome.state().as_str();
    match outcome {
        Outcome::Included { user_op_hash, success, actual_gas_cost, tx_hash, block } => tx.execute(
            "UPDATE intents SET state = ?2, included_success = ?3, actual_gas_cost = ?4,
                                included_tx_hash = ?5, included_block = ?6, included_user_op_hash = ?7
             WHERE id = ?1",
            params![
                id.0,
                state,
                success,
                actual_gas_cost.to_be_bytes::<32>(),
                tx_hash.as_slice(),
                i64_of(*block),
                user_op_hash.as_slice()
            ],
        ),
        Outcome::Failed { reason } | Outcome::Released { reason } => tx.execute(
            "UPDATE intents SET state = ?2, outcome_reason = ?3 WHERE id = ?1",
            params![id.0, state, reason],
        ),
    }
    .map_err(storage("resolving intent"))?;
    Ok(())
}

pub(super) fn reopen_in(tx: &Connection, id: IntentId) -> Result<()> {
    let rec = record(tx, id)?;
    let to = machine::reopen_step(&rec)?;
    let c = &rec.intent;
    for (token, window, amount) in machine::requested(c)? {
        let pending = pending_in(tx, c.chain_id, c.account, c.session_id, token, window)?;
        set_pending(tx, c, token, window, machine::add_pending(token, window, pending, amount)?)?;
    }
    tx.execute(
        "UPDATE intents SET state = ?2, included_success = NULL, actual_gas_cost = NULL,
                            included_tx_hash = NULL, included_block = NULL, included_user_op_hash = NULL
         WHERE id = ?1",
        params![id.0, to.as_str()],
    )
    .map_err(storage("reopening intent"))?;
    Ok(())
}
