use super::columns::{
    IN_FLIGHT_SQL, RawRow, address_of, b256_of, corrupt, flight_row, i64_of, u64_of, u256_of,
};
use super::{
    Ceiling, ChainBound, Decision, Intent, IntentId, IntentRecord, IntentState, LaneId, LaneLock, Ledger,
    Outcome, SignedOp, Spend, failpoint, machine,
};
use crate::{Error, Result};
use alloy::primitives::{Address, B256, U256};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::{
    fs::{DirBuilder, OpenOptions, TryLockError},
    io::ErrorKind,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

mod rows;
mod writes;

use rows::*;
use writes::*;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 4;

/// Schema v1. Plain SQL a PostgreSQL backend can mirror (BLOB → BYTEA, INTEGER PRIMARY KEY →
/// BIGINT identity, `ON CONFLICT` upserts). Amounts, nonce keys and hashes are 32-byte
/// big-endian blobs, added in Rust. `pending_totals` holds the running pending sum per scope,
/// updated in the same transaction as the intents, so a reservation costs O(1) whatever is in
/// flight; [`SqliteLedger::check_consistency`] recomputes it from the rows.
const SCHEMA_V1: &str = "
CREATE TABLE intents (
    id               INTEGER PRIMARY KEY,
    chain_id         BIGINT  NOT NULL,
    account          BLOB    NOT NULL,
    session_id       BLOB    NOT NULL,
    nonce_key        BLOB    NOT NULL,
    nonce_seq        BIGINT,
    gas_cost_cap     BLOB    NOT NULL,
    created_at       BIGINT  NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN
                        ('reserved', 'signed', 'submitted', 'included', 'failed', 'released')),
    user_op_hash     BLOB,
    signed_nonce_key BLOB,
    signed_nonce_seq BIGINT,
    op_bytes         BLOB,
    submitted_via    TEXT,
    submit_tx_hash   BLOB,
    submit_count     INTEGER NOT NULL DEFAULT 0,
    included_success INTEGER,
    actual_gas_cost  BLOB,
    included_tx_hash BLOB,
    included_block   BIGINT,
    outcome_reason   TEXT
);
CREATE INDEX intents_scope ON intents (chain_id, account, session_id, state);
CREATE TABLE spends (
    intent_id    INTEGER NOT NULL REFERENCES intents (id),
    position     INTEGER NOT NULL,
    token        BLOB    NOT NULL,
    window_index BIGINT  NOT NULL,
    amount       BLOB    NOT NULL,
    PRIMARY KEY (intent_id, position)
);
CREATE INDEX spends_token_window ON spends (token, window_index);
CREATE TABLE decisions (
    id           INTEGER PRIMARY KEY,
    at           BIGINT  NOT NULL,
    chain_id     BIGINT  NOT NULL,
    account      BLOB    NOT NULL,
    session_id   BLOB    NOT NULL,
    key_address  BLOB    NOT NULL,
    allowed      INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    spends       TEXT    NOT NULL,
    user_op_hash BLOB,
    tx_hash      BLOB
);
CREATE INDEX decisions_at ON decisions (at);
CREATE TABLE pending_totals (
    chain_id     BIGINT NOT NULL,
    account      BLOB   NOT NULL,
    session_id   BLOB   NOT NULL,
    token        BLOB   NOT NULL,
    window_index BIGINT NOT NULL,
    amount       BLOB   NOT NULL,
    PRIMARY KEY (chain_id, account, session_id, token, window_index)
);
CREATE TRIGGER intents_keep BEFORE DELETE ON intents
    BEGIN SELECT RAISE(ABORT, 'the ledger never deletes intents'); END;
CREATE TRIGGER spends_keep BEFORE DELETE ON spends
    BEGIN SELECT RAISE(ABORT, 'the ledger never deletes spends'); END;
CREATE TRIGGER spends_frozen BEFORE UPDATE ON spends
    BEGIN SELECT RAISE(ABORT, 'spends are immutable'); END;
CREATE TRIGGER decisions_keep BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER decisions_frozen BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
";

/// Schema v2: signed operations are found by hash (one operation, one intent), and each chain
/// id is tied to its genesis block (a chain reset under the same id is noticed).
const SCHEMA_V2: &str = "
CREATE INDEX intents_user_op_hash ON intents (user_op_hash);
CREATE TABLE chains (
    chain_id BIGINT PRIMARY KEY,
    genesis  BLOB   NOT NULL
);
";

/// Schema v3: fee bumps. The operations an intent's signed operation replaced (same nonce,
/// lower fees: any of them may still land), and which one did land.
const SCHEMA_V3: &str = "
CREATE TABLE replaced_ops (
    intent_id    INTEGER NOT NULL REFERENCES intents (id),
    position     INTEGER NOT NULL,
    user_op_hash BLOB    NOT NULL,
    op_bytes     BLOB    NOT NULL,
    PRIMARY KEY (intent_id, position)
);
CREATE INDEX replaced_ops_user_op_hash ON replaced_ops (user_op_hash);
CREATE TRIGGER replaced_ops_keep BEFORE DELETE ON replaced_ops
    BEGIN SELECT RAISE(ABORT, 'the ledger never deletes replaced operations'); END;
CREATE TRIGGER replaced_ops_frozen BEFORE UPDATE ON replaced_ops
    BEGIN SELECT RAISE(ABORT, 'replaced operations are immutable'); END;
ALTER TABLE intents ADD COLUMN included_user_op_hash BLOB;
";

/// Schema v4: intents included after a block, found fast (what a ceiling read at that block
/// has not counted yet; see [`AsOf`](super::AsOf)).
const SCHEMA_V4: &str = "
CREATE INDEX intents_landed ON intents (chain_id, account, session_id, included_block) WHERE state = 'included';
";

/// Options for [`SqliteLedger::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a writer waits for another connection's (or process's) transaction.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(30) }
    }
}

/// The durable [`Ledger`]: one SQLite file in WAL mode with `synchronous=FULL` (a committed
/// transaction survives power loss), shared safely by threads (one connection behind a mutex
/// per instance) and by processes (every write is a `BEGIN IMMEDIATE` transaction, so writers
/// are serialised by SQLite's file lock and wait up to `busy_timeout`).
pub struct SqliteLedger {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// `reserve_signed` calls waiting for a commit (group commit: see there).
    queue: Mutex<Queue>,
}

/// The `reserve_signed` calls waiting for a commit, and whether one of them leads (commits the
/// next group).
#[derive(Default)]
struct Queue {
    waiting: Vec<Queued>,
    led: bool,
}

/// One `reserve_signed` call waiting for the group's commit, and where its turn comes.
struct Queued {
    intent: Intent,
    ceilings: Vec<Ceiling>,
    op: SignedOp,
    turn: std::sync::mpsc::SyncSender<Turn>,
}

/// What a waiting `reserve_signed` call is told.
enum Turn {
    /// Its answer: a group holding it was committed (or failed).
    Answer(Result<IntentId>),
    /// It commits the next group (its own call in it).
    Lead,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger").field("path", &self.path).finish()
    }
}

fn storage(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
    let context = context.into();
    move |e| Error::Storage { context, source: Box::new(e) }
}

const PENDING: &str = "('reserved', 'signed', 'submitted')";

const I64_MAX: u64 = i64::MAX as u64;

impl SqliteLedger {
    /// Opens (creating it with mode 0600 if missing) the ledger at `path`, with defaults.
    ///
    /// ```
    /// use sak_signer::ledger::{Ledger, SqliteLedger};
    /// let dir = tempfile::tempdir().unwrap();
    /// let ledger = SqliteLedger::open(&dir.path().join("ledger.db"))?;
    /// assert!(ledger.unresolved()?.is_empty());
    /// # Ok::<(), sak_signer::Error>(())
    /// ```
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the ledger at `path` with `options`, migrating the schema if needed.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        // SQLite creates files 0644; the ledger reveals a bot's activity, so create it 0600.
        // Its -wal and -shm files inherit the database file's mode.
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("creating ledger", path, e)),
        }
        let conn = Connection::open(path).map_err(storage(format!("opening {}", path.display())))?;
        conn.busy_timeout(options.busy_timeout).map_err(storage("setting busy_timeout"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(storage("setting journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(corrupt(format!("journal_mode is {mode}, WAL could not be enabled")));
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(storage("setting synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(storage("enabling foreign keys"))?;
        let ledger = Self { conn: Mutex::new(conn), path: path.to_owned(), queue: Mutex::default() };
        ledger.migrate()?;
        tracing::debug!(path = %path.display(), "opened spend ledger");
        Ok(ledger)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits what waits (as one group), then hands the lead to the first call that arrived
    /// meanwhile, if any (even if the commit panicked: no call is left waiting for a leader).
    fn lead(&self) {
        struct HandOff<'a>(&'a SqliteLedger);
        impl Drop for HandOff<'_> {
            fn drop(&mut self) {
                let mut queue = self.0.queue();
                while !queue.waiting.is_empty() {
                    if queue.waiting[0].turn.send(Turn::Lead).is_ok() {
                        return;
                    }
                    queue.waiting.remove(0);
                }
                queue.led = false;
            }
        }
        let _hand_off = HandOff(self);
        let mut conn = self.lock();
        let group = std::mem::take(&mut self.queue().waiting);
        if !group.is_empty() {
            commit_group(&mut conn, group);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction drops it, which rolls it back: the connection is clean.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage("starting migration"))?;
        let version: i64 =
            tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(storage("reading user_version"))?;
        if version > SCHEMA_VERSION {
            return Err(corrupt(format!(
                "schema version {version} is newer than this build supports ({SCHEMA_VERSION}); upgrade sak"
            )));
        }
        if version < 1 {
            tx.execute_batch(SCHEMA_V1).map_err(storage("creating schema v1"))?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2).map_err(storage("migrating to schema v2"))?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3).map_err(storage("migrating to schema v3"))?;
        }
        if version < 4 {
            tx.execute_batch(SCHEMA_V4).map_err(storage("migrating to schema v4"))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(storage("writing user_version"))?;
        tx.commit().map_err(storage("committing migration"))
    }

    /// Recomputes every pending total from the intents and their spends and compares it with
    /// the running totals; returns the scopes that differ (empty when consistent).
    pub fn check_consistency(&self) -> Result<Vec<String>> {
        type Key = (i64, Vec<u8>, Vec<u8>, Vec<u8>, i64);
        fn key_amount(r: &Row<'_>) -> rusqlite::Result<(Key, Vec<u8>)> {
            Ok(((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?), r.get(5)?))
        }
        let conn = self.lock();
        let mut sums: std::collections::BTreeMap<Key, U256> = std::collections::BTreeMap::new();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT i.chain_id, i.account, i.session_id, s.token, s.window_index, s.amount
                 FROM spends s JOIN intents i ON i.id = s.intent_id WHERE i.state IN {PENDING}"
            ))
            .map_err(storage("recomputing pending totals"))?;
        for row in stmt.query_map([], key_amount).map_err(storage("recomputing pending totals"))? {
            let (key, amount) = row.map_err(storage("recomputing pending totals"))?;
            let sum = sums.entry(key).or_default();
            *sum = sum
                .checked_add(u256_of(&amount, "amount")?)
                .ok_or_else(|| corrupt("pending sum overflows"))?;
        }
        let mut stmt = conn
            .prepare("SELECT chain_id, account, session_id, token, window_index, amount FROM pending_totals")
            .map_err(storage("reading pending totals"))?;
        let mut diffs = Vec::new();
        for row in stmt.query_map([], key_amount).map_err(storage("reading pending totals"))? {
            let (key, amount) = row.map_err(storage("reading pending totals"))?;
            let stored = u256_of(&amount, "pending total")?;
            let summed = sums.remove(&key).unwrap_or_default();
            if stored != summed {
                diffs.push(format!("{key:?}: stored {stored}, rows sum to {summed}"));
            }
        }
        diffs.extend(
            sums.into_iter().map(|(key, sum)| format!("{key:?}: no stored total, rows sum to {sum}")),
        );
        Ok(diffs)
    }

    /// The intents whose signed operation, or one it replaced, has hash `user_op_hash`
    /// (normally one), oldest first: joins an audit [`Decision`] to what became of its
    /// operation.
    pub fn intents_by_user_op_hash(&self, user_op_hash: B256) -> Result<Vec<IntentRecord>> {
        let conn = self.lock();
        let ids = conn
            .prepare_cached(
                "SELECT id FROM intents WHERE user_op_hash = ?1
                 UNION SELECT intent_id FROM replaced_ops WHERE user_op_hash = ?1 ORDER BY 1",
            )
            .and_then(|mut stmt| {
                stmt.query_map([user_op_hash.as_slice()], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage("reading intents by user-op hash"))?;
        ids.into_iter().map(|id| record(&conn, IntentId(id))).collect()
    }

    /// Every intent that holds a signed operation, oldest first: with the decision log, what
    /// an audit shows (an operation whose run was killed between persisting it and logging the
    /// decision has no decision row, but it is here).
    pub fn signed_intents(&self) -> Result<Vec<IntentRecord>> {
        let conn = self.lock();
        let ids = conn
            .prepare_cached("SELECT id FROM intents WHERE user_op_hash IS NOT NULL ORDER BY id")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(storage("reading signed intents"))?;
        ids.into_iter().map(|id| record(&conn, IntentId(id))).collect()
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String> {
        let conn = self.lock();
        let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(storage("integrity_check"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(storage("integrity_check"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(storage("integrity_check"))?;
        Ok(rows.join("\n"))
    }
}

const RECORD_COLUMNS: &str = "id, chain_id, account, session_id, nonce_key, nonce_seq, gas_cost_cap,
    created_at, state, user_op_hash, signed_nonce_key, signed_nonce_seq, op_bytes, submitted_via,
    submit_tx_hash, submit_count, included_success, actual_gas_cost, included_tx_hash,
    included_block, outcome_reason, included_user_op_hash";

impl SqliteLedger {
    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; commits if it returns Ok.
    fn write<T>(&self, what: &str, fail_step: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage(format!("{what}: begin")))?;
        let out = f(&tx)?;
        failpoint(fail_step, "before_commit");
        tx.commit().map_err(storage(format!("{what}: commit")))?;
        failpoint(fail_step, "after_commit");
        Ok(out)
    }
}

/// Runs one parameterless statement, prepared once per connection.
fn run_cached(tx: &Connection, sql: &str) -> Result<()> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map_err(storage("reserve_signed: savepoint"))?;
    Ok(())
}

/// Commits `group` in one transaction, a savepoint per call (a refused call leaves nothing),
/// and answers each call.
fn commit_group(conn: &mut Connection, group: Vec<Queued>) {
    let outcome = (|| -> Result<Vec<Result<IntentId>>> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage("reserve_signed: begin"))?;
        let mut answers = Vec::with_capacity(group.len());
        for q in &group {
            run_cached(&tx, "SAVEPOINT call")?;
            let one = reserve_in(&tx, &q.intent, &q.ceilings, Some(&q.op));
            if one.is_err() {
                run_cached(&tx, "ROLLBACK TO call")?;
            }
            run_cached(&tx, "RELEASE call")?;
            answers.push(per_item(one)?);
        }
        failpoint("reserve", "before_commit");
        tx.commit().map_err(storage("reserve_signed: commit"))?;
        failpoint("reserve", "after_commit");
        Ok(answers)
    })();
    match outcome {
        Ok(answers) => {
            for (q, answer) in group.into_iter().zip(answers) {
                let _ = q.turn.send(Turn::Answer(answer));
            }
        }
        Err(e) => {
            let why = e.to_string();
            for q in group {
                let _ = q.turn.send(Turn::Answer(Err(Error::Storage {
                    context: "reserve_signed".into(),
                    source: why.clone().into(),
                })));
            }
        }
    }
}

impl Ledger for SqliteLedger {
    /// An advisory lock (`flock`) on a file of its own in `<ledger>.lanes/`, named after a
    /// hash of the lane: every process that uses this ledger file sees it, and the kernel frees
    /// it when its holder exits or is killed.
    fn try_lock_lane(&self, lane: &LaneId) -> Result<Option<LaneLock>> {
        let mut dir = self.path.clone().into_os_string();
        dir.push(".lanes");
        let dir = PathBuf::from(dir);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("creating the lane lock folder", &dir, e))?;
        let mut key = Vec::with_capacity(60);
        key.extend_from_slice(&lane.chain_id.to_be_bytes());
        key.extend_from_slice(lane.account.as_slice());
        key.extend_from_slice(&lane.nonce_key.to_be_bytes::<32>());
        let name = alloy::primitives::keccak256(&key);
        let path = dir.join(format!("{}.lock", hex::encode(&name[..12])));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("opening a lane lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(LaneLock::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io("locking a lane", &path, e)),
        }
    }

    fn reserve(&self, intent: &Intent, ceilings: &[Ceiling]) -> Result<IntentId> {
        let id = self.write("reserve", "reserve", |tx| reserve_in(tx, intent, ceilings, None))?;
        tracing::debug!(%id, chain_id = intent.chain_id, account = %intent.account, "reserved");
        Ok(id)
    }

    fn reserve_batch(&self, batch: &[(&Intent, &[Ceiling])]) -> Result<Vec<Result<IntentId>>> {
        let out = self.write("reserve_batch", "reserve", |tx| {
            batch.iter().map(|(intent, ceilings)| per_item(reserve_in(tx, intent, ceilings, None))).collect()
        })?;
        tracing::debug!(size = batch.len(), "reserved batch");
        Ok(out)
    }

    /// Group commit: the call joins a queue. If no call leads, it leads: it takes the
    /// connection and commits everything queued by then in one transaction (one fsync), each
    /// call in a savepoint of its own, in the order queued, then hands the lead to the first
    /// call queued meanwhile. The others only wait for their answer. Concurrent signers of one
    /// process share fsyncs; a lone caller commits alone, as before. Each call gets its own
    /// answer, and a storage failure fails the whole group (nothing of it recorded).
    fn reserve_signed(&self, intent: &Intent, ceilings: &[Ceiling], op: &SignedOp) -> Result<IntentId> {
        let (turn, turns) = std::sync::mpsc::sync_channel(1);
        let queued = Queued { intent: intent.clone(), ceilings: ceilings.to_vec(), op: op.clone(), turn };
        let leads = {
            let mut queue = self.queue();
            queue.waiting.push(queued);
            !std::mem::replace(&mut queue.led, true)
        };
        if leads {
            self.lead();
        }
        let id = loop {
            match turns.recv() {
                Ok(Turn::Answer(answer)) => break answer?,
                Ok(Turn::Lead) => self.lead(),
                Err(_) => {
                    return Err(Error::Storage {
                        context: "reserve_signed".into(),
                        source: "the committing thread ended without an answer".into(),
                    });
                }
            }
        };
        tracing::debug!(%id, user_op_hash = %op.user_op_hash, "reserved and signed");
        Ok(id)
    }

    fn mark_signed(&self, id: IntentId, op: &SignedOp) -> Result<()> {
        self.write("mark_signed", "sign", |tx| mark_signed_in(tx, id, op))?;
        tracing::debug!(%id, user_op_hash = %op.user_op_hash, "signed op persisted");
        Ok(())
    }

    fn mark_signed_batch(&self, batch: &[(IntentId, &SignedOp)]) -> Result<Vec<Result<()>>> {
        let out = self.write("mark_signed_batch", "sign", |tx| {
            batch.iter().map(|(id, op)| per_item(mark_signed_in(tx, *id, op))).collect()
        })?;
        tracing::debug!(size = batch.len(), "signed ops persisted");
        Ok(out)
    }

    fn mark_replaced(&self, id: IntentId, op: &SignedOp, gas_cost_cap: U256) -> Result<()> {
        self.write("mark_replaced", "replace", |tx| mark_replaced_in(tx, id, op, gas_cost_cap))?;
        tracing::debug!(%id, user_op_hash = %op.user_op_hash, "replacement persisted");
        Ok(())
    }

    fn mark_submitted(&self, id: IntentId, via: &str, tx_hash: Option<B256>) -> Result<()> {
        self.write("mark_submitted", "submit", |tx| {
            machine::check_submit(id, state_of(tx, id)?)?;
            tx.execute(
                "UPDATE intents SET state = 'submitted', submitted_via = ?2, submit_tx_hash = ?3,
                                    submit_count = submit_count + 1
                 WHERE id = ?1",
                params![id.0, via, tx_hash.as_ref().map(|h| h.as_slice())],
            )
            .map_err(storage("recording submission"))?;
            Ok(())
        })?;
        tracing::debug!(%id, via, "submitted");
        Ok(())
    }

    fn resolve(&self, id: IntentId, outcome: &Outcome) -> Result<()> {
        self.write("resolve", "resolve", |tx| resolve_in(tx, id, outcome))?;
        tracing::debug!(%id, state = %outcome.state(), "resolved");
        Ok(())
    }

    fn bind_chain(&self, chain_id: u64, genesis: B256) -> Result<ChainBound> {
        if chain_id > i64::MAX as u64 {
            return Err(Error::InvalidIntent { reason: format!("chain id {chain_id} exceeds 2^63 - 1") });
        }
        let bound = self.write("bind_chain", "bind_chain", |tx| {
            let known: Option<Vec<u8>> = tx
                .query_row("SELECT genesis FROM chains WHERE chain_id = ?1", [i64_of(chain_id)], |r| r.get(0))
                .optional()
                .map_err(storage("reading the chain's genesis"))?;
            let previous = match known {
                Some(g) if g.as_slice() == genesis.as_slice() => return Ok(ChainBound::Same),
                Some(g) => Some(
                    B256::try_from(g.as_slice()).map_err(|_| corrupt("a genesis hash is not 32 bytes"))?,
                ),
                None => None,
            };
            tx.execute(
                "INSERT INTO chains (chain_id, genesis) VALUES (?1, ?2)
                 ON CONFLICT (chain_id) DO UPDATE SET genesis = excluded.genesis",
                params![i64_of(chain_id), genesis.as_slice()],
            )
            .map_err(storage("recording the chain's genesis"))?;
            let Some(previous) = previous else { return Ok(ChainBound::First) };
            let pending =
                records_where(tx, &format!("state IN {PENDING} AND chain_id = ?1"), [i64_of(chain_id)])?;
            let reason = super::CHAIN_RESET.to_owned();
            for rec in &pending {
                resolve_in(tx, rec.id, &Outcome::Failed { reason: reason.clone() })?;
            }
            Ok(ChainBound::Reset { previous, retired: pending.iter().map(|r| r.id).collect() })
        })?;
        if let ChainBound::Reset { retired, .. } = &bound {
            tracing::warn!(
                chain_id,
                retired = retired.len(),
                "the chain was reset; its operations in flight are void"
            );
        }
        Ok(bound)
    }

    fn get(&self, id: IntentId) -> Result<IntentRecord> {
        record(&self.lock(), id)
    }

    fn unresolved(&self) -> Result<Vec<IntentRecord>> {
        records_where(&self.lock(), &format!("state IN {PENDING}"), [])
    }

    fn reopen(&self, id: IntentId) -> Result<()> {
        self.write("reopen", "reopen", |tx| reopen_in(tx, id))?;
        tracing::warn!(%id, "inclusion taken back by a reorg: the intent is pending again");
        Ok(())
    }

    fn included_after(&self, chain_id: u64, account: Address, after_block: u64) -> Result<Vec<IntentRecord>> {
        let (chain_id, after_block) = (chain_id.min(I64_MAX), after_block.min(I64_MAX));
        records_where(
            &self.lock(),
            "state = 'included' AND chain_id = ?1 AND account = ?2 AND included_block > ?3",
            params![i64_of(chain_id), account.as_slice(), i64_of(after_block)],
        )
    }

    fn pending_total(
        &self,
        chain_id: u64,
        account: Address,
        session_id: B256,
        token: Address,
        window: u64,
    ) -> Result<U256> {
        pending_in(&self.lock(), chain_id, account, session_id, token, window)
    }

    fn record_decision(&self, d: &Decision) -> Result<()> {
        for (what, v) in [("at", d.at), ("chain id", d.chain_id)] {
            if v > i64::MAX as u64 {
                return Err(Error::InvalidIntent { reason: format!("decision {what} {v} exceeds 2^63 - 1") });
            }
        }
        let spends = serde_json::to_string(&d.spends).expect("plain struct");
        self.write("record_decision", "decision", |tx| {
            tx.execute(
                "INSERT INTO decisions (at, chain_id, account, session_id, key_address, allowed, reason,
                                        spends, user_op_hash, tx_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    i64_of(d.at),
                    i64_of(d.chain_id),
                    d.account.as_slice(),
                    d.session_id.as_slice(),
                    d.key.as_slice(),
                    d.allowed,
                    d.reason,
                    spends,
                    d.user_op_hash.as_ref().map(|h| h.as_slice()),
                    d.tx_hash.as_ref().map(|h| h.as_slice()),
                ],
            )
            .map_err(storage("recording decision"))?;
            Ok(())
        })
    }

    fn decisions(&self, since: u64) -> Result<Vec<Decision>> {
        self.read_decisions("at >= ?1", i64_of(since.min(i64::MAX as u64)))
    }

    /// Rows are never deleted, so the n-th decision recorded has id n.
    fn decisions_after(&self, seen: usize) -> Result<Vec<Decision>> {
        self.read_decisions("id > ?1", i64::try_from(seen).unwrap_or(i64::MAX))
    }
}

impl SqliteLedger {
    /// The decisions whose row matches `condition` (one parameter), in the order recorded.
    fn read_decisions(&self, condition: &str, parameter: i64) -> Result<Vec<Decision>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT at, chain_id, account, session_id, key_address, allowed, reason, spends,
                        user_op_hash, tx_hash
                 FROM decisions WHERE {condition} ORDER BY id"
            ))
            .map_err(storage("reading decisions"))?;
        #[allow(clippy::type_complexity)]
        let raw: Vec<(
            i64,
            i64,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            bool,
            String,
            String,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        )> = stmt
            .query_map([parameter], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            })
            .map_err(storage("reading decisions"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(storage("reading decisions"))?;
        raw.into_iter()
            .map(|(at, chain_id, account, session_id, key, allowed, reason, spends, hash, tx)| {
                Ok(Decision {
                    at: u64_of(at, "at")?,
                    chain_id: u64_of(chain_id, "chain_id")?,
                    account: address_of(&account, "account")?,
                    session_id: b256_of(&session_id, "session_id")?,
                    key: address_of(&key, "key_address")?,
                    allowed,
                    reason,
                    spends: serde_json::from_str(&spends)
                        .map_err(|e| corrupt(format!("decision spends: {e}")))?,
                    user_op_hash: hash.map(|h| b256_of(&h, "user_op_hash")).transpose()?,
                    tx_hash: tx.map(|h| b256_of(&h, "tx_hash")).transpose()?,
                })
            })
            .collect()
    }
}
