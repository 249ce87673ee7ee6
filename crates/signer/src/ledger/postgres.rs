//! The PostgreSQL [`Ledger`]: one database shared by workers on many machines.
//!
//! The same rules as [`SqliteLedger`](super::SqliteLedger), held by the database across
//! connections: a reservation locks the running totals it adds to (`SELECT … FOR UPDATE`, in
//! a fixed order, so two reservations of one scope queue and never deadlock), a write on an
//! intent locks its row first, and one signed operation is one intent by a unique key on the
//! operation hashes. A lane is held with a session-level advisory lock on a connection of its
//! own, which the server frees when the holder's connection ends (its process killed included).
//!
//! The client is synchronous and runs on a thread of the ledger's own, outside any async
//! runtime, so the ledger may be called from anywhere (from async code through
//! `spawn_blocking`, as every durable backend). A lost connection is made again on the next
//! call: a server restart fails the calls made while it is down, and nothing else.

use super::columns::{
    IN_FLIGHT_SQL, RawRow, address_of, b256_of, corrupt, flight_row, i64_of, u64_of, u256_of,
};
use super::{
    Ceiling, ChainBound, Decision, Intent, IntentId, IntentRecord, LaneId, LaneLock, Ledger, Outcome,
    SignedOp, Spend, machine,
};
use crate::{Error, Result};
use alloy::primitives::{Address, B256, U256};
use postgres::{Client, NoTls, Transaction, error::SqlState};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, mpsc},
};

mod schema;

type Held = Arc<Mutex<HashMap<LaneId, i32>>>;

/// A unit of work for the connection thread: the connection, or why there is none.
type Job = Box<dyn FnOnce(&mut std::result::Result<Client, String>) + Send>;

/// The durable [`Ledger`] on a PostgreSQL server (`postgres://user@host:port/db`), for fleets:
/// every worker, process or machine, that opens the same database shares one set of
/// reservations, so together they never reserve beyond a cap.
pub struct PostgresLedger {
    jobs: Mutex<mpsc::Sender<Job>>,
    locks: Mutex<mpsc::Sender<Job>>,
    /// Lanes held by a [`LaneLock`] of this ledger, with the server process of the connection
    /// that holds the advisory lock (0 while it is being taken): a second holder in this process
    /// is refused before the server is asked (its advisory locks are re-entrant per connection),
    /// and a reservation in a held lane checks that the server still holds it there.
    held: Held,
}

impl std::fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PostgresLedger").finish_non_exhaustive()
    }
}

fn storage(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let context = context.into();
    move |e| Error::Storage { context, source: Box::new(e) }
}

const PENDING: &str = "('reserved', 'signed', 'submitted')";

const I64_MAX: u64 = i64::MAX as u64;

const RECORD_COLUMNS: &str = "id, chain_id, account, session_id, nonce_key, nonce_seq, gas_cost_cap,
    created_at, state, user_op_hash, signed_nonce_key, signed_nonce_seq, op_bytes, submitted_via,
    submit_tx_hash, submit_count, included_success, actual_gas_cost, included_tx_hash,
    included_block, outcome_reason, included_user_op_hash";

/// A thread that owns one connection (made on first use, and again after it is lost) and runs
/// jobs on it in order.
fn connection_thread(url: String, name: &str) -> Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut client: std::result::Result<Client, String> = Err("not connected yet".into());
            for job in rx {
                if client.as_ref().is_ok_and(Client::is_closed) || client.is_err() {
                    client = Client::connect(&url, NoTls).map_err(|e| e.to_string());
                }
                job(&mut client);
            }
        })
        .map_err(|e| Error::Storage {
            context: "starting the ledger's connection thread".into(),
            source: Box::new(e),
        })?;
    Ok(tx)
}

/// Runs `f` on the connection of `jobs` and waits for its answer.
fn on<T: Send + 'static>(
    jobs: &Mutex<mpsc::Sender<Job>>,
    f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (reply, answer) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |client| {
        let out = match client {
            Ok(c) => f(c),
            Err(why) => Err(Error::Storage {
                context: "connecting to the PostgreSQL ledger".into(),
                source: why.clone().into(),
            }),
        };
        let _ = reply.send(out);
    });
    let gone =
        || Error::Storage { context: "the ledger's connection thread".into(), source: "it stopped".into() };
    jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(job).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// Runs `f` in one transaction and commits it; a deadlock or serialization failure (the server
/// chose this transaction to abort) is tried again, a few times.
fn write<T>(client: &mut Client, what: &str, f: impl Fn(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = client.transaction().map_err(storage(format!("{what}: begin")))?;
        let out = f(&mut tx).and_then(|out| {
            tx.commit().map_err(storage(format!("{what}: commit")))?;
            Ok(out)
        });
        match out {
            Err(Error::Storage { source, .. })
                if attempt < 5
                    && source
                        .downcast_ref::<postgres::Error>()
                        .and_then(postgres::Error::code)
                        .is_some_and(|c| {
                            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
                        }) => {}
            other => return other,
        }
    }
}

impl PostgresLedger {
    /// Connects to the database at `url` and brings its schema to this build's version
    /// (versioned migrations, one transaction each, serialised between processes).
    pub fn open(url: &str) -> Result<Self> {
        let ledger = Self {
            jobs: Mutex::new(connection_thread(url.to_owned(), "sak-ledger-pg")?),
            locks: Mutex::new(connection_thread(url.to_owned(), "sak-ledger-pg-locks")?),
            held: Arc::default(),
        };
        ledger.run(schema::migrate)?;
        Ok(ledger)
    }

    fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static) -> Result<T> {
        on(&self.jobs, f)
    }

    /// The intents whose signed operation, or one it replaced, has hash `user_op_hash`.
    pub fn intents_by_user_op_hash(&self, user_op_hash: B256) -> Result<Vec<IntentRecord>> {
        self.run(move |c| {
            let ids: Vec<i64> = c
                .query("SELECT intent_id FROM op_hashes WHERE user_op_hash = $1", &[&user_op_hash.as_slice()])
                .map_err(storage("reading intents by user-op hash"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            ids.into_iter().map(|id| record(c, IntentId(id))).collect()
        })
    }

    /// Recomputes every pending total from the intents and their spends and compares it with
    /// the running totals; returns the scopes that differ (empty when consistent).
    pub fn check_consistency(&self) -> Result<Vec<String>> {
        self.run(|c| {
            let rows = c
                .query(
                    &format!(
                        "WITH summed AS (
                             SELECT i.chain_id, i.account, i.session_id, s.token, s.window_index, s.amount
                             FROM spends s JOIN intents i ON i.id = s.intent_id WHERE i.state IN {PENDING})
                         SELECT t.chain_id, t.account, t.session_id, t.token, t.window_index, t.amount,
                                COALESCE(array_agg(s.amount) FILTER (WHERE s.amount IS NOT NULL), '{{}}')
                         FROM pending_totals t LEFT JOIN summed s USING (chain_id, account, session_id, token, window_index)
                         GROUP BY t.chain_id, t.account, t.session_id, t.token, t.window_index, t.amount"
                    ),
                    &[],
                )
                .map_err(storage("recomputing pending totals"))?;
            let mut diffs = Vec::new();
            for r in rows {
                let stored = u256_of(r.get(5), "pending total")?;
                let mut sum = U256::ZERO;
                for amount in r.get::<_, Vec<Vec<u8>>>(6) {
                    sum = sum.checked_add(u256_of(&amount, "amount")?).ok_or_else(|| corrupt("pending sum overflows"))?;
                }
                if sum != stored {
                    let (chain, window): (i64, i64) = (r.get(0), r.get(4));
                    diffs.push(format!("chain {chain} window {window}: stored {stored}, rows sum to {sum}"));
                }
            }
            Ok(diffs)
        })
    }

    /// Every intent that holds a signed operation, oldest first.
    pub fn signed_intents(&self) -> Result<Vec<IntentRecord>> {
        self.run(|c| records_where(c, "user_op_hash IS NOT NULL", &[]))
    }
}

impl Ledger for PostgresLedger {
    fn reserve(&self, intent: &Intent, ceilings: &[Ceiling]) -> Result<IntentId> {
        let (intent, ceilings) = (intent.clone(), ceilings.to_vec());
        self.run(move |c| write(c, "reserve", |tx| reserve_in(tx, &intent, &ceilings, None)))
    }

    fn reserve_batch(&self, batch: &[(&Intent, &[Ceiling])]) -> Result<Vec<Result<IntentId>>> {
        let batch: Vec<(Intent, Vec<Ceiling>)> =
            batch.iter().map(|(i, c)| ((*i).clone(), c.to_vec())).collect();
        self.run(move |c| {
            write(c, "reserve_batch", |tx| {
                batch
                    .iter()
                    .map(|(intent, ceilings)| {
                        per_item(savepoint(tx, |tx| reserve_in(tx, intent, ceilings, None)))
                    })
                    .collect()
            })
        })
    }

    fn reserve_signed(&self, intent: &Intent, ceilings: &[Ceiling], op: &SignedOp) -> Result<IntentId> {
        let holder = self.holder(intent);
        let (intent, ceilings, op) = (intent.clone(), ceilings.to_vec(), op.clone());
        self.run(move |c| {
            write(c, "reserve_signed", |tx| {
                still_held(tx, holder)?;
                reserve_in(tx, &intent, &ceilings, Some(&op))
            })
        })
    }

    fn mark_signed(&self, id: IntentId, op: &SignedOp) -> Result<()> {
        let op = op.clone();
        self.run(move |c| write(c, "mark_signed", |tx| mark_signed_in(tx, id, &op)))
    }

    fn mark_signed_batch(&self, batch: &[(IntentId, &SignedOp)]) -> Result<Vec<Result<()>>> {
        let batch: Vec<(IntentId, SignedOp)> = batch.iter().map(|(id, op)| (*id, (*op).clone())).collect();
        self.run(move |c| {
            write(c, "mark_signed_batch", |tx| {
                batch
                    .iter()
                    .map(|(id, op)| per_item(savepoint(tx, |tx| mark_signed_in(tx, *id, op))))
                    .collect()
            })
        })
    }

    fn mark_replaced(&self, id: IntentId, op: &SignedOp, gas_cost_cap: U256) -> Result<()> {
        let op = op.clone();
        self.run(move |c| {
            write(c, "mark_replaced", |tx| {
                let rec = locked(tx, id)?;
                if let machine::SignStep::AlreadyDone = machine::replace_step(&rec, &op)? {
                    return Ok(());
                }
                claim_hash(tx, id, &op)?;
                let earlier = rec.signed.as_ref().expect("replace_step checked it is signed");
                tx.execute(
                    "INSERT INTO replaced_ops (intent_id, position, user_op_hash, op_bytes) VALUES ($1, $2, $3, $4)",
                    &[&id.0, &(rec.replaced.len() as i64), &earlier.user_op_hash.as_slice(), &earlier.op_bytes.as_ref()],
                )
                .map_err(storage("keeping the replaced op"))?;
                tx.execute(
                    "UPDATE intents SET state = 'signed', user_op_hash = $2, op_bytes = $3, gas_cost_cap = $4,
                                        submitted_via = NULL, submit_tx_hash = NULL, submit_count = 0
                     WHERE id = $1",
                    &[&id.0, &op.user_op_hash.as_slice(), &op.op_bytes.as_ref(), &gas_cost_cap.to_be_bytes::<32>().as_slice()],
                )
                .map_err(storage("storing the replacement"))?;
                Ok(())
            })
        })
    }

    fn mark_submitted(&self, id: IntentId, via: &str, tx_hash: Option<B256>) -> Result<()> {
        let via = via.to_owned();
        self.run(move |c| {
            write(c, "mark_submitted", |tx| {
                machine::check_submit(id, locked(tx, id)?.state)?;
                tx.execute(
                    "UPDATE intents SET state = 'submitted', submitted_via = $2, submit_tx_hash = $3,
                                        submit_count = submit_count + 1
                     WHERE id = $1",
                    &[&id.0, &via, &tx_hash.as_ref().map(|h| h.as_slice())],
                )
                .map_err(storage("recording submission"))?;
                Ok(())
            })
        })
    }

    fn resolve(&self, id: IntentId, outcome: &Outcome) -> Result<()> {
        let outcome = outcome.clone();
        self.run(move |c| write(c, "resolve", |tx| resolve_in(tx, id, &outcome)))
    }

    fn get(&self, id: IntentId) -> Result<IntentRecord> {
        self.run(move |c| record(c, id))
    }

    fn unresolved(&self) -> Result<Vec<IntentRecord>> {
        self.run(|c| records_where(c, &format!("state IN {PENDING}"), &[]))
    }

    fn reopen(&self, id: IntentId) -> Result<()> {
        self.run(move |c| write(c, "reopen", |tx| reopen_in(tx, id)))?;
        tracing::warn!(%id, "inclusion taken back by a reorg: the intent is pending again");
        Ok(())
    }

    fn included_after(&self, chain_id: u64, account: Address, after_block: u64) -> Result<Vec<IntentRecord>> {
        let (chain_id, after_block) = (i64_of(chain_id.min(I64_MAX)), i64_of(after_block.min(I64_MAX)));
        self.run(move |c| {
            records_where(
                c,
                "state = 'included' AND chain_id = $1 AND account = $2 AND included_block > $3",
                &[&chain_id, &account.as_slice(), &after_block],
            )
        })
    }

    fn pending_total(
        &self,
        chain_id: u64,
        account: Address,
        session_id: B256,
        token: Address,
        window: u64,
    ) -> Result<U256> {
        let scope = Scope { chain_id, account, session_id };
        self.run(move |c| {
            let params = scope.params(token, window);
            let row = c
                .query_opt(&format!("SELECT amount FROM pending_totals WHERE {SCOPE_MATCH}"), &refs(&params))
                .map_err(storage("reading pending total"))?;
            row.map_or(Ok(U256::ZERO), |r| u256_of(r.get(0), "pending total"))
        })
    }

    fn try_lock_lane(&self, lane: &LaneId) -> Result<Option<LaneLock>> {
        {
            let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if held.contains_key(lane) {
                return Ok(None);
            }
            held.insert(*lane, 0);
        }
        let key = lane_key(lane);
        let got = on(&self.locks, move |c| {
            c.query_one("SELECT pg_try_advisory_lock($1), pg_backend_pid()", &[&key])
                .map(|r| r.get::<_, bool>(0).then(|| r.get::<_, i32>(1)))
                .map_err(storage("locking a lane"))
        });
        let free = |held: &Held| {
            held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(lane);
        };
        match got {
            Ok(Some(pid)) => {
                self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(*lane, pid);
                let release =
                    HeldLane { held: Arc::clone(&self.held), lane: *lane, key, locks: self.locks_sender() };
                Ok(Some(LaneLock::new(release)))
            }
            Ok(None) => {
                free(&self.held);
                Ok(None)
            }
            Err(e) => {
                free(&self.held);
                Err(e)
            }
        }
    }

    fn bind_chain(&self, chain_id: u64, genesis: B256) -> Result<ChainBound> {
        if chain_id > i64::MAX as u64 {
            return Err(Error::InvalidIntent { reason: format!("chain id {chain_id} exceeds 2^63 - 1") });
        }
        self.run(move |c| {
            write(c, "bind_chain", |tx| {
                let chain = i64_of(chain_id);
                let inserted = tx
                    .execute(
                        "INSERT INTO chains (chain_id, genesis) VALUES ($1, $2) ON CONFLICT (chain_id) DO NOTHING",
                        &[&chain, &genesis.as_slice()],
                    )
                    .map_err(storage("recording the chain's genesis"))?;
                if inserted == 1 {
                    return Ok(ChainBound::First);
                }
                let known: Vec<u8> = tx
                    .query_one("SELECT genesis FROM chains WHERE chain_id = $1 FOR UPDATE", &[&chain])
                    .map_err(storage("reading the chain's genesis"))?
                    .get(0);
                if known.as_slice() == genesis.as_slice() {
                    return Ok(ChainBound::Same);
                }
                let previous = b256_of(&known, "genesis")?;
                tx.execute("UPDATE chains SET genesis = $2 WHERE chain_id = $1", &[&chain, &genesis.as_slice()])
                    .map_err(storage("recording the chain's genesis"))?;
                let pending = records_where(tx, &format!("state IN {PENDING} AND chain_id = $1"), &[&chain])?;
                for rec in &pending {
                    resolve_in(tx, rec.id, &Outcome::Failed { reason: super::CHAIN_RESET.to_owned() })?;
                }
                Ok(ChainBound::Reset { previous, retired: pending.iter().map(|r| r.id).collect() })
            })
        })
    }

    fn record_decision(&self, d: &Decision) -> Result<()> {
        for (what, v) in [("at", d.at), ("chain id", d.chain_id)] {
            if v > i64::MAX as u64 {
                return Err(Error::InvalidIntent { reason: format!("decision {what} {v} exceeds 2^63 - 1") });
            }
        }
        let d = d.clone();
        let spends = serde_json::to_string(&d.spends).expect("plain struct");
        self.run(move |c| {
            c.execute(
                "INSERT INTO decisions (at, chain_id, account, session_id, key_address, allowed, reason,
                                        spends, user_op_hash, tx_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &i64_of(d.at),
                    &i64_of(d.chain_id),
                    &d.account.as_slice(),
                    &d.session_id.as_slice(),
                    &d.key.as_slice(),
                    &d.allowed,
                    &d.reason,
                    &spends,
                    &d.user_op_hash.as_ref().map(|h| h.as_slice()),
                    &d.tx_hash.as_ref().map(|h| h.as_slice()),
                ],
            )
            .map_err(storage("recording decision"))?;
            Ok(())
        })
    }

    fn decisions(&self, since: u64) -> Result<Vec<Decision>> {
        let since = i64_of(since.min(i64::MAX as u64));
        self.run(move |c| read_decisions(c, "WHERE at >= $1 ORDER BY id", since))
    }

    /// Ids may have gaps (a sequence value is spent by a transaction that rolled back), so the
    /// place is kept by counting rows.
    fn decisions_after(&self, seen: usize) -> Result<Vec<Decision>> {
        let seen = i64::try_from(seen).unwrap_or(i64::MAX);
        self.run(move |c| read_decisions(c, "ORDER BY id OFFSET $1", seen))
    }
}

impl PostgresLedger {
    /// The advisory lock key of `intent`'s lane and the server process holding it, when a lane
    /// lock of this ledger holds it.
    fn holder(&self, intent: &Intent) -> Option<(i64, i32)> {
        let lane = LaneId { chain_id: intent.chain_id, account: intent.account, nonce_key: intent.nonce_key };
        let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.get(&lane).map(|pid| (lane_key(&lane), *pid))
    }

    fn locks_sender(&self) -> mpsc::Sender<Job> {
        self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Refuses ([`Error::LaneLost`]) when `holder`'s lane lock is no longer held by its server
/// process: after a server restart or a dropped connection the lock is gone, and another worker
/// may have taken the lane. A bigint advisory key is `classid` (its high 32 bits) and `objid`
/// (its low 32 bits) with `objsubid` 1 in `pg_locks`.
fn still_held(tx: &mut Transaction<'_>, holder: Option<(i64, i32)>) -> Result<()> {
    let Some((key, pid)) = holder else { return Ok(()) };
    let (high, low) = ((key >> 32) as u32, key as u32);
    let held = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                            AND pid = $1 AND classid = $2 AND objid = $3 AND objsubid = 1)",
            &[&pid, &high, &low],
        )
        .map_err(storage("checking the lane lock"))?
        .get::<_, bool>(0);
    if held { Ok(()) } else { Err(Error::LaneLost) }
}

/// The advisory lock key of a lane: the first 8 bytes of a hash of it.
fn lane_key(lane: &LaneId) -> i64 {
    let mut key = Vec::with_capacity(60);
    key.extend_from_slice(&lane.chain_id.to_be_bytes());
    key.extend_from_slice(lane.account.as_slice());
    key.extend_from_slice(&lane.nonce_key.to_be_bytes::<32>());
    let hash = alloy::primitives::keccak256(&key);
    i64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// A held lane: dropping it unlocks it on the locks connection (without waiting) and frees it
/// in this process.
struct HeldLane {
    held: Held,
    lane: LaneId,
    key: i64,
    locks: mpsc::Sender<Job>,
}

impl Drop for HeldLane {
    fn drop(&mut self) {
        let key = self.key;
        let _ = self.locks.send(Box::new(move |client| {
            if let Ok(c) = client {
                let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&key]);
            }
        }));
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.lane);
    }
}

/// The (chain, account, session) part of a pending total's key.
#[derive(Clone, Copy)]
struct Scope {
    chain_id: u64,
    account: Address,
    session_id: B256,
}

const SCOPE_MATCH: &str =
    "chain_id = $1 AND account = $2 AND session_id = $3 AND token = $4 AND window_index = $5";

impl Scope {
    fn of(intent: &Intent) -> Self {
        Self { chain_id: intent.chain_id, account: intent.account, session_id: intent.session_id }
    }

    fn params(&self, token: Address, window: u64) -> [Box<dyn postgres::types::ToSql + Sync + Send>; 5] {
        [
            Box::new(i64_of(self.chain_id)),
            Box::new(self.account.to_vec()),
            Box::new(self.session_id.to_vec()),
            Box::new(token.to_vec()),
            Box::new(i64_of(window)),
        ]
    }
}

/// Borrowed parameters from boxed ones.
fn refs(
    params: &[Box<dyn postgres::types::ToSql + Sync + Send>],
) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn postgres::types::ToSql + Sync)).collect()
}

/// The pending total of one (scope, token, window), its row locked until the transaction ends
/// (created at zero if missing).
fn lock_pending(tx: &mut Transaction<'_>, scope: Scope, token: Address, window: u64) -> Result<U256> {
    let params = scope.params(token, window);
    let params = refs(&params);
    tx.execute(
        "INSERT INTO pending_totals (chain_id, account, session_id, token, window_index, amount)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[&params[..], &[&U256::ZERO.to_be_bytes::<32>().as_slice() as &(dyn postgres::types::ToSql + Sync)]]
            .concat(),
    )
    .map_err(storage("creating pending total"))?;
    let row = tx
        .query_one(&format!("SELECT amount FROM pending_totals WHERE {SCOPE_MATCH} FOR UPDATE"), &params)
        .map_err(storage("locking pending total"))?;
    u256_of(row.get(0), "pending total")
}

/// The rows of [`IN_FLIGHT_SQL`] for `scope`.
fn in_flight(
    tx: &mut Transaction<'_>,
    scope: Scope,
    token: Address,
    window: u64,
    block: u64,
) -> Result<Vec<machine::FlightRow>> {
    let params = scope.params(token, window);
    let block = i64_of(block);
    let rows = tx
        .query(
            &IN_FLIGHT_SQL.replace('?', "$"),
            &[&refs(&params)[..], &[&block as &(dyn postgres::types::ToSql + Sync)]].concat(),
        )
        .map_err(storage("reading what is in flight"))?;
    rows.iter().map(|r| flight_row(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect()
}

fn set_pending(
    tx: &mut Transaction<'_>,
    scope: Scope,
    token: Address,
    window: u64,
    total: U256,
) -> Result<()> {
    let params = scope.params(token, window);
    let amount = total.to_be_bytes::<32>();
    let amount: &(dyn postgres::types::ToSql + Sync) = &amount.as_slice();
    tx.execute(
        &format!("UPDATE pending_totals SET amount = $6 WHERE {SCOPE_MATCH}"),
        &[&refs(&params)[..], &[amount]].concat(),
    )
    .map_err(storage("updating pending total"))?;
    Ok(())
}

/// The intent's spends summed per (token, window), sorted: rows are locked in this order.
fn sorted_requests(intent: &Intent) -> Result<Vec<(Address, u64, U256)>> {
    let mut requested = machine::requested(intent)?;
    requested.sort_by_key(|(token, window, _)| (*token, *window));
    Ok(requested)
}

/// Reserves `intent` against `ceilings`; with `signed`, the intent is recorded `Signed` with
/// that operation in the same row (no second write, no re-read).
fn reserve_in(
    tx: &mut Transaction<'_>,
    intent: &Intent,
    ceilings: &[Ceiling],
    signed: Option<&SignedOp>,
) -> Result<IntentId> {
    let scope = Scope::of(intent);
    let mut new_totals = Vec::new();
    for (token, window, amount) in sorted_requests(intent)? {
        let ceiling = machine::ceiling(ceilings, token, window)?;
        // The row lock orders this reservation after every other one and every settlement of
        // the scope: what is read below is what they committed.
        let pending = lock_pending(tx, scope, token, window)?;
        let counted = match &ceiling.as_of {
            None => pending,
            Some(as_of) => {
                machine::counted(as_of, token, window, in_flight(tx, scope, token, window, as_of.block)?)?
            }
        };
        machine::check_ceiling(ceiling, counted, amount)?;
        new_totals.push((token, window, machine::add_pending(token, window, pending, amount)?));
    }
    let signed_key = signed.map(|op| op.nonce_key.to_be_bytes::<32>());
    let id: i64 = tx
        .query_one(
            "INSERT INTO intents (chain_id, account, session_id, nonce_key, nonce_seq, gas_cost_cap, created_at,
                                  state, user_op_hash, signed_nonce_key, signed_nonce_seq, op_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &[
                &i64_of(intent.chain_id),
                &intent.account.as_slice(),
                &intent.session_id.as_slice(),
                &intent.nonce_key.to_be_bytes::<32>().as_slice(),
                &intent.nonce_seq.map(i64_of),
                &intent.gas_cost_cap.to_be_bytes::<32>().as_slice(),
                &i64_of(intent.created_at),
                &if signed.is_some() { "signed" } else { "reserved" },
                &signed.map(|op| op.user_op_hash.as_slice()),
                &signed_key.as_ref().map(|k| k.as_slice()),
                &signed.map(|op| i64_of(op.nonce_seq)),
                &signed.map(|op| op.op_bytes.as_ref()),
            ],
        )
        .map_err(storage("inserting intent"))?
        .get(0);
    if let Some(op) = signed {
        // A refusal here rolls the row back with the caller's transaction (or savepoint).
        machine::check_signed_nonce(IntentId(id), intent, op)?;
        claim_hash(tx, IntentId(id), op)?;
    }
    for (position, s) in intent.spends.iter().enumerate() {
        tx.execute(
            "INSERT INTO spends (intent_id, position, token, window_index, amount) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &(position as i64), &s.token.as_slice(), &i64_of(s.window), &s.amount.to_be_bytes::<32>().as_slice()],
        )
        .map_err(storage("inserting spends"))?;
    }
    for (token, window, total) in new_totals {
        set_pending(tx, scope, token, window, total)?;
    }
    Ok(IntentId(id))
}

/// Records that intent `id` holds `op`'s hash; another intent holding it is `DuplicateOp`.
fn claim_hash(tx: &mut Transaction<'_>, id: IntentId, op: &SignedOp) -> Result<()> {
    let hash = op.user_op_hash.as_slice();
    let claimed = tx
        .execute(
            "INSERT INTO op_hashes (user_op_hash, intent_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&hash, &id.0],
        )
        .map_err(storage("claiming the signed op's hash"))?;
    if claimed == 1 {
        return Ok(());
    }
    let holder: i64 = tx
        .query_one("SELECT intent_id FROM op_hashes WHERE user_op_hash = $1", &[&hash])
        .map_err(storage("looking up the signed op's hash"))?
        .get(0);
    if holder == id.0 { Ok(()) } else { Err(Error::DuplicateOp { id, existing: IntentId(holder) }) }
}

fn mark_signed_in(tx: &mut Transaction<'_>, id: IntentId, op: &SignedOp) -> Result<()> {
    let rec = locked(tx, id)?;
    if let machine::SignStep::Store = machine::sign_step(&rec, op)? {
        claim_hash(tx, id, op)?;
        tx.execute(
            "UPDATE intents SET state = 'signed', user_op_hash = $2, signed_nonce_key = $3,
                                signed_nonce_seq = $4, op_bytes = $5
             WHERE id = $1",
            &[
                &id.0,
                &op.user_op_hash.as_slice(),
                &op.nonce_key.to_be_bytes::<32>().as_slice(),
                &i64_of(op.nonce_seq),
                &op.op_bytes.as_ref(),
            ],
        )
        .map_err(storage("storing signed op"))?;
    }
    Ok(())
}

fn reopen_in(tx: &mut Transaction<'_>, id: IntentId) -> Result<()> {
    let rec = locked(tx, id)?;
    let to = machine::reopen_step(&rec)?;
    let scope = Scope::of(&rec.intent);
    for (token, window, amount) in sorted_requests(&rec.intent)? {
        let pending = lock_pending(tx, scope, token, window)?;
        set_pending(tx, scope, token, window, machine::add_pending(token, window, pending, amount)?)?;
    }
    tx.execute(
        "UPDATE intents SET state = $2, included_success = NULL, actual_gas_cost = NULL,
                            included_tx_hash = NULL, included_block = NULL, included_user_op_hash = NULL
         WHERE id = $1",
        &[&id.0, &to.as_str()],
    )
    .map_err(storage("reopening intent"))?;
    Ok(())
}

fn resolve_in(tx: &mut Transaction<'_>, id: IntentId, outcome: &Outcome) -> Result<()> {
    let rec = locked(tx, id)?;
    machine::check_resolve(id, rec.state, outcome)?;
    let scope = Scope::of(&rec.intent);
    for (token, window, amount) in sorted_requests(&rec.intent)? {
        let pending = lock_pending(tx, scope, token, window)?;
        let rest = pending.checked_sub(amount).ok_or_else(|| {
            corrupt(format!("intent {id}: pending total {pending} below its spend {amount}"))
        })?;
        set_pending(tx, scope, token, window, rest)?;
    }
    let state = outcome.state().as_str();
    match outcome {
        Outcome::Included { user_op_hash, success, actual_gas_cost, tx_hash, block } => tx.execute(
            "UPDATE intents SET state = $2, included_success = $3, actual_gas_cost = $4,
                                included_tx_hash = $5, included_block = $6, included_user_op_hash = $7
             WHERE id = $1",
            &[
                &id.0,
                &state,
                success,
                &actual_gas_cost.to_be_bytes::<32>().as_slice(),
                &tx_hash.as_slice(),
                &i64_of(*block),
                &user_op_hash.as_slice(),
            ],
        ),
        Outcome::Failed { reason } | Outcome::Released { reason } => tx.execute(
            "UPDATE intents SET state = $2, outcome_reason = $3 WHERE id = $1",
            &[&id.0, &state, reason],
        ),
    }
    .map_err(storage("resolving intent"))?;
    Ok(())
}

/// A batch item in a savepoint of its own: a refused item leaves nothing behind, and the
/// batch goes on.
fn savepoint<T>(tx: &mut Transaction<'_>, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
    let mut sp = tx.savepoint("item").map_err(storage("batch item: savepoint"))?;
    let out = f(&mut sp)?;
    sp.commit().map_err(storage("batch item: release"))?;
    Ok(out)
}

/// Splits a batch item's result: storage failures abort the whole batch, refusals are that
/// item's answer.
fn per_item<T>(r: Result<T>) -> Result<Result<T>> {
    match r {
        Err(e @ (Error::Storage { .. } | Error::Corrupt { .. })) => Err(e),
        other => Ok(other),
    }
}

/// Intent `id`, its row locked until the transaction ends.
fn locked(tx: &mut Transaction<'_>, id: IntentId) -> Result<IntentRecord> {
    tx.query_opt("SELECT id FROM intents WHERE id = $1 FOR UPDATE", &[&id.0])
        .map_err(storage("locking intent"))?
        .ok_or(Error::IntentNotFound(id))?;
    record(tx, id)
}

fn record(c: &mut impl postgres::GenericClient, id: IntentId) -> Result<IntentRecord> {
    records_where(c, "id = $1", &[&id.0])?.pop().ok_or(Error::IntentNotFound(id))
}

fn records_where(
    c: &mut impl postgres::GenericClient,
    filter: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<IntentRecord>> {
    let rows = c
        .query(&format!("SELECT {RECORD_COLUMNS} FROM intents WHERE {filter} ORDER BY id"), params)
        .map_err(storage("reading intents"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let raw = RawRow {
            id: r.get(0),
            chain_id: r.get(1),
            account: r.get(2),
            session_id: r.get(3),
            nonce_key: r.get(4),
            nonce_seq: r.get(5),
            gas_cost_cap: r.get(6),
            created_at: r.get(7),
            state: r.get(8),
            user_op_hash: r.get(9),
            signed_nonce_key: r.get(10),
            signed_nonce_seq: r.get(11),
            op_bytes: r.get(12),
            submitted_via: r.get(13),
            submit_tx_hash: r.get(14),
            submit_count: r.get(15),
            included_success: r.get(16),
            actual_gas_cost: r.get(17),
            included_tx_hash: r.get(18),
            included_block: r.get(19),
            outcome_reason: r.get(20),
            included_user_op_hash: r.get(21),
        };
        let id = raw.id;
        let spends = c
            .query(
                "SELECT token, window_index, amount FROM spends WHERE intent_id = $1 ORDER BY position",
                &[&id],
            )
            .map_err(storage("reading spends"))?
            .iter()
            .map(|s| {
                Ok(Spend {
                    token: address_of(s.get(0), "token")?,
                    window: u64_of(s.get(1), "window")?,
                    amount: u256_of(s.get(2), "amount")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let replaced = c
            .query(
                "SELECT user_op_hash, op_bytes FROM replaced_ops WHERE intent_id = $1 ORDER BY position",
                &[&id],
            )
            .map_err(storage("reading replaced ops"))?
            .iter()
            .map(|s| (s.get(0), s.get(1)))
            .collect();
        out.push(raw.decode(spends, replaced)?);
    }
    Ok(out)
}

fn read_decisions(c: &mut Client, tail: &str, param: i64) -> Result<Vec<Decision>> {
    let rows = c
        .query(
            &format!(
                "SELECT at, chain_id, account, session_id, key_address, allowed, reason, spends, user_op_hash,
                        tx_hash
                 FROM decisions {tail}"
            ),
            &[&param],
        )
        .map_err(storage("reading decisions"))?;
    rows.iter()
        .map(|r| {
            Ok(Decision {
                at: u64_of(r.get(0), "at")?,
                chain_id: u64_of(r.get(1), "chain_id")?,
                account: address_of(r.get(2), "account")?,
                session_id: b256_of(r.get(3), "session_id")?,
                key: address_of(r.get(4), "key_address")?,
                allowed: r.get(5),
                reason: r.get(6),
                spends: serde_json::from_str(r.get(7))
                    .map_err(|e| corrupt(format!("decision spends: {e}")))?,
                user_op_hash: r.get::<_, Option<&[u8]>>(8).map(|h| b256_of(h, "user_op_hash")).transpose()?,
                tx_hash: r.get::<_, Option<&[u8]>>(9).map(|h| b256_of(h, "tx_hash")).transpose()?,
            })
        })
        .collect()
}
