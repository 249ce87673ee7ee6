//! Reservations against one ceiling from many threads and processes never exceed it.
#![allow(clippy::result_large_err)] // sak_signer::Error, as the crate returns it

mod common;

use alloy::primitives::U256;
use common::*;
use sak_signer::{
    Error,
    ledger::{Ceiling, IntentState, LaneId, Ledger, MemoryLedger, Outcome, PostgresLedger, SqliteLedger},
};
use sak_testkit::Postgres;
use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::Instant,
};

const AMOUNT: u64 = 7;
const CEILING: u64 = 7 * 50 + 6; // room for exactly 50 reservations
const CHILD_DB_ENV: &str = "SAK_CONCURRENCY_TEST_DB";
const ATTEMPTS_PER_WORKER: u64 = 30;

/// Tries `ATTEMPTS_PER_WORKER` reservations; returns how many were accepted.
fn hammer(ledger: &dyn Ledger, worker: u64) -> u64 {
    let mut accepted = 0;
    for i in 0..ATTEMPTS_PER_WORKER {
        match ledger.reserve(&intent(AMOUNT, worker * 1000 + i), &ceiling(CEILING)) {
            Ok(_) => accepted += 1,
            Err(Error::CeilingExceeded { pending, .. }) => {
                assert!(
                    pending + U256::from(AMOUNT) > U256::from(CEILING),
                    "refused with room left: {pending}"
                );
            }
            Err(e) => panic!("worker {worker}: {e}"),
        }
    }
    accepted
}

fn assert_exactly_filled(ledger: &dyn Ledger, accepted: u64) {
    assert_eq!(accepted, CEILING / AMOUNT, "accepted reservations");
    let open = ledger.unresolved().unwrap();
    assert_eq!(open.len() as u64, accepted);
    assert!(open.iter().all(|r| r.state == IntentState::Reserved));
    assert_eq!(pending(ledger), U256::from(accepted * AMOUNT));
    assert!(pending(ledger) <= U256::from(CEILING));
}

#[test]
fn threads_with_shared_and_separate_connections_never_exceed_the_ceiling() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ledger.db");
    let shared = Arc::new(SqliteLedger::open(&db).unwrap());
    let mut handles = Vec::new();
    for worker in 0..6u64 {
        let shared = Arc::clone(&shared);
        let db = db.clone();
        handles.push(std::thread::spawn(move || {
            if worker % 2 == 0 {
                hammer(&*shared, worker)
            } else {
                hammer(&SqliteLedger::open(&db).unwrap(), worker)
            }
        }));
    }
    let accepted = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_exactly_filled(&*shared, accepted);
    assert!(shared.check_consistency().unwrap().is_empty());

    let memory = Arc::new(MemoryLedger::new());
    let accepted = (0..6u64)
        .map(|w| {
            let m = Arc::clone(&memory);
            std::thread::spawn(move || hammer(&*m, w))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_exactly_filled(&*memory, accepted);
}

/// Signers of one process reserving and persisting at once share commits (group commit): every
/// call still gets its own answer, in a group the ceiling holds exactly, a refused call (over
/// the ceiling, or an operation another intent holds) leaves nothing, and the running totals
/// match the rows.
#[test]
fn concurrent_signed_reservations_are_committed_together_and_answered_each() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = Arc::new(SqliteLedger::open(&tmp.path().join("ledger.db")).unwrap());
    // An operation an intent already holds (another token: the ceiling below stays exact).
    let held = || {
        let mut i = intent_u256(OTHER_TOKEN, 0, U256::from(1), 99);
        i.nonce_seq = Some(0);
        let c = vec![Ceiling { token: OTHER_TOKEN, window: 0, max_pending: U256::MAX, as_of: None }];
        (i, c, signed_op(99, 0))
    };
    let (i, c, op) = held();
    shared.reserve_signed(&i, &c, &op).unwrap();
    let (ids, duplicates): (Vec<Vec<i64>>, Vec<u64>) = (0..8u64)
        .map(|worker| {
            let ledger = Arc::clone(&shared);
            std::thread::spawn(move || {
                let (mut ids, mut duplicates) = (Vec::new(), 0);
                for seq in 0..ATTEMPTS_PER_WORKER {
                    let mut i = intent(AMOUNT, worker);
                    i.nonce_seq = Some(seq);
                    match ledger.reserve_signed(&i, &ceiling(CEILING), &signed_op(worker, seq)) {
                        Ok(id) => ids.push(id.0),
                        Err(Error::CeilingExceeded { .. }) => {}
                        Err(e) => panic!("worker {worker}: {e}"),
                    }
                    if seq == 1 {
                        let (i, c, op) = held();
                        match ledger.reserve_signed(&i, &c, &op) {
                            Err(Error::DuplicateOp { .. }) => duplicates += 1,
                            other => panic!("worker {worker}: {other:?}"),
                        }
                    }
                }
                (ids, duplicates)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .unzip();
    let mut ids: Vec<i64> = ids.into_iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, CEILING / AMOUNT, "one answer per accepted call, none shared");
    assert_eq!(duplicates.iter().sum::<u64>(), 8, "each duplicate refused");
    let open = shared.unresolved().unwrap();
    assert_eq!(open.len(), ids.len() + 1, "a refused call left nothing");
    assert!(open.iter().all(|r| r.state == IntentState::Signed && r.signed.is_some()));
    assert_eq!(pending(&*shared), U256::from(CEILING / AMOUNT * AMOUNT));
    assert!(shared.check_consistency().unwrap().is_empty());
}

/// The child role: does nothing unless the parent set the database variable.
#[test]
fn concurrency_child() {
    let Ok(db) = std::env::var(CHILD_DB_ENV) else { return };
    let worker: u64 = std::env::var("SAK_CONCURRENCY_WORKER").unwrap().parse().unwrap();
    let accepted = hammer(&*open(&db), worker);
    println!("ACCEPTED={accepted}");
}

/// The ledger at `db`: a PostgreSQL URL or an SQLite file.
fn open(db: &str) -> Box<dyn Ledger> {
    if db.starts_with("postgres://") {
        Box::new(PostgresLedger::open(db).unwrap())
    } else {
        Box::new(SqliteLedger::open(Path::new(db)).unwrap())
    }
}

/// Runs the child role of this test binary, test `role`, with `env`.
fn child(role: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([role, "--exact", "--nocapture", "--test-threads=1"]).stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Workers sharing one PostgreSQL database, as threads with a connection each and as processes
/// (as separate homes, or machines, would): together they fill the ceiling exactly.
#[test]
fn workers_sharing_one_postgres_database_never_exceed_the_ceiling() {
    let Some(pg) = Postgres::start_or_skip().unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint())) else {
        return;
    };
    let url = pg.url();
    let ledger = PostgresLedger::open(&url).unwrap();
    let children: Vec<_> = (0..4u64)
        .map(|w| {
            child(
                "concurrency_child",
                &[(CHILD_DB_ENV, url.clone()), ("SAK_CONCURRENCY_WORKER", w.to_string())],
            )
        })
        .collect();
    let threads: Vec<_> = (4..8u64)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || hammer(&PostgresLedger::open(&url).unwrap(), w))
        })
        .collect();
    let mut accepted: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {}", out.status);
        accepted += count(&String::from_utf8(out.stdout).unwrap(), "ACCEPTED=");
    }
    assert_exactly_filled(&ledger, accepted);
    assert!(ledger.check_consistency().unwrap().is_empty());
}

/// The number after `key` in a child's output.
fn count(stdout: &str, key: &str) -> u64 {
    stdout
        .split(key)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key} in child output: {stdout}"))
        .parse()
        .unwrap()
}

const STRESS_ENV: &str = "SAK_PG_STRESS_URL";

/// The stress child: reserve (7 against a ceiling of 50 × 7 + 6), then sign and release or
/// leave pending, for 4 s, printing each accepted intent as it is accepted. A storage error
/// (the server restarting) is waited out and the loop goes on.
#[test]
fn pg_stress_child() {
    let Ok(url) = std::env::var(STRESS_ENV) else { return };
    let worker: u64 = std::env::var("SAK_CONCURRENCY_WORKER").unwrap().parse().unwrap();
    let ledger = loop {
        match PostgresLedger::open(&url) {
            Ok(l) => break l,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < std::time::Duration::from_secs(4) {
        i += 1;
        match ledger.reserve(&intent(AMOUNT, worker * 100_000 + i), &ceiling(CEILING)) {
            Ok(id) => {
                println!("ACCEPTED {}", id.0);
                let _ = ledger.mark_signed(id, &signed_op(worker * 100_000 + i, 0));
                if i % 2 == 0 {
                    let _ = ledger.resolve(id, &Outcome::Released { reason: "stress".into() });
                }
            }
            Err(Error::CeilingExceeded { .. }) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

/// Six worker processes reserve, sign and release on one PostgreSQL ledger while two of them
/// are killed with SIGKILL and the server is restarted under them. Nothing is lost (every
/// intent a worker was told of is in the ledger), nothing counts twice (the running totals
/// equal the pending intents' spends), and what is pending never passes the ceiling. Prints
/// its figures.
/// `f` again while the server is coming back (a connection lost with a restart fails once).
fn through_restart<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    for _ in 0..20 {
        match f() {
            Err(Error::Storage { .. }) => std::thread::sleep(std::time::Duration::from_millis(250)),
            other => return other,
        }
    }
    f()
}

/// A PostgreSQL restart drops the advisory locks that held workers' lanes, and another worker
/// may take a lane then. The worker that still believes it holds it is refused (`LaneLost`)
/// when it reserves there, with nothing recorded; taking the lane anew, it reserves again.
#[test]
fn a_lane_lock_lost_in_a_server_restart_refuses_the_reservation() {
    let Some(pg) = Postgres::start_or_skip().unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint())) else {
        return;
    };
    let ledger = PostgresLedger::open(&pg.url()).unwrap();
    let lane = LaneId { chain_id: CHAIN, account: ACCOUNT, nonce_key: U256::from(3) };
    let at = |seq: u64| {
        let mut i = intent(5, 3);
        i.nonce_seq = Some(seq);
        (i, signed_op(3, seq))
    };
    let mine = ledger.try_lock_lane(&lane).unwrap().expect("a free lane");
    let (first, first_op) = at(0);
    ledger.reserve_signed(&first, &ceiling(100), &first_op).unwrap();

    pg.restart().unwrap();
    let other = PostgresLedger::open(&pg.url()).unwrap();
    let theirs = other.try_lock_lane(&lane).unwrap().expect("the restart freed the lane");
    let (next, next_op) = at(1);
    let err = through_restart(|| ledger.reserve_signed(&next, &ceiling(100), &next_op)).unwrap_err();
    assert!(matches!(err, Error::LaneLost), "{err}");
    assert!(err.hint().is_some_and(|h| h.contains("run it again")), "{err}");
    assert_eq!(other.unresolved().unwrap().len(), 1, "the refused reservation left nothing");

    drop(theirs);
    drop(mine);
    let again = through_restart(|| ledger.try_lock_lane(&lane)).unwrap().expect("free again");
    ledger.reserve_signed(&next, &ceiling(100), &next_op).unwrap();
    drop(again);
}

#[test]
fn postgres_workers_under_kill_9_and_a_server_restart_lose_nothing_and_never_exceed() {
    let Some(pg) = Postgres::start_or_skip().unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint())) else {
        return;
    };
    let url = pg.url();
    drop(PostgresLedger::open(&url).unwrap());
    let mut children: Vec<_> = (0..6u64)
        .map(|w| {
            child("pg_stress_child", &[(STRESS_ENV, url.clone()), ("SAK_CONCURRENCY_WORKER", w.to_string())])
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(800));
    for c in &mut children[..2] {
        c.kill().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    let restarted = Instant::now();
    pg.restart().unwrap();
    let outage = restarted.elapsed();
    let mut told = Vec::new();
    let mut killed = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        killed += u32::from(!out.status.success());
        told.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("ACCEPTED "))
                .map(|id| id.parse::<i64>().unwrap()),
        );
    }
    let ledger = PostgresLedger::open(&url).unwrap();
    for id in &told {
        ledger.get(sak_signer::ledger::IntentId(*id)).unwrap_or_else(|e| panic!("intent {id} was lost: {e}"));
    }
    assert!(ledger.check_consistency().unwrap().is_empty(), "{:?}", ledger.check_consistency());
    let open = ledger.unresolved().unwrap();
    let pending_sum: u64 = open.len() as u64 * AMOUNT;
    assert_eq!(pending(&ledger), U256::from(pending_sum));
    assert!(pending_sum <= CEILING);
    assert_eq!(killed, 2, "two workers were killed");
    let released =
        ledger.signed_intents().unwrap().iter().filter(|r| r.state == IntentState::Released).count();
    eprintln!(
        "postgres stress: 6 workers (2 killed -9), server restarted ({:.1} s down): {} reservations told, \
         {} released, {} pending ({} of the ceiling {}), totals consistent, 0 lost",
        outage.as_secs_f64(),
        told.len(),
        released,
        open.len(),
        pending_sum,
        CEILING
    );
}

#[test]
fn processes_sharing_one_database_never_exceed_the_ceiling() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ledger.db");
    drop(SqliteLedger::open(&db).unwrap());
    let children: Vec<_> = (0..4u64)
        .map(|w| {
            let db = db.display().to_string();
            child("concurrency_child", &[(CHILD_DB_ENV, db), ("SAK_CONCURRENCY_WORKER", w.to_string())])
        })
        .collect();
    let mut accepted = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {}", out.status);
        accepted += count(&String::from_utf8(out.stdout).unwrap(), "ACCEPTED=");
    }
    let ledger = SqliteLedger::open(&db).unwrap();
    assert_exactly_filled(&ledger, accepted);
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
    assert!(ledger.check_consistency().unwrap().is_empty());
}

/// Prints reserve → mark_signed → resolve cycles per second for each backend (run with
/// `--no-capture` to see them).
#[test]
fn throughput_figures() {
    fn cycles(ledger: &dyn Ledger, n: u64) -> f64 {
        let big = ceiling(u64::MAX);
        let start = Instant::now();
        for i in 0..n {
            let id = ledger.reserve(&intent(1, i), &big).unwrap();
            ledger.mark_signed(id, &signed_op(i, 0)).unwrap();
            ledger.resolve(id, &Outcome::Released { reason: "bench".into() }).unwrap();
        }
        n as f64 / start.elapsed().as_secs_f64()
    }
    /// reserve_batch + mark_signed_batch, 64 intents per batch: intents per second.
    fn batched(ledger: &dyn Ledger, batches: u64) -> f64 {
        let big = ceiling(u64::MAX);
        let start = Instant::now();
        for b in 0..batches {
            let intents: Vec<_> = (0..64).map(|i| intent(1, b * 64 + i)).collect();
            let items: Vec<_> = intents.iter().map(|i| (i, big.as_slice())).collect();
            let ids: Vec<_> = ledger.reserve_batch(&items).unwrap().into_iter().map(Result::unwrap).collect();
            let ops: Vec<_> = (0..64).map(|i| signed_op(b * 64 + i, 0)).collect();
            let signs: Vec<_> = ids.into_iter().zip(ops.iter()).collect();
            assert!(ledger.mark_signed_batch(&signs).unwrap().iter().all(Result::is_ok));
        }
        (batches * 64) as f64 / start.elapsed().as_secs_f64()
    }
    let memory = cycles(&MemoryLedger::new(), 20_000);
    let tmp = tempfile::tempdir().unwrap();
    let sqlite = cycles(&SqliteLedger::open(&tmp.path().join("ledger.db")).unwrap(), 200);
    let sqlite_batched = batched(&SqliteLedger::open(&tmp.path().join("batched.db")).unwrap(), 20);
    eprintln!(
        "ledger cycles/s (reserve+mark_signed+resolve): memory {memory:.0}, sqlite {sqlite:.0}; \
         sqlite reserve_batch+mark_signed_batch (64 per batch): {sqlite_batched:.0} intents/s"
    );
    assert!(memory > 0.0 && sqlite > 0.0 && sqlite_batched > 0.0);
    if let Some(pg) = Postgres::start_or_skip().unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint())) {
        let postgres = cycles(&PostgresLedger::open(&pg.create_database("cycles").unwrap()).unwrap(), 200);
        let batched = batched(&PostgresLedger::open(&pg.create_database("batched").unwrap()).unwrap(), 20);
        eprintln!(
            "ledger cycles/s: postgres {postgres:.0} (sqlite {sqlite:.0}); postgres reserve_batch+mark_signed_batch \
             (64 per batch): {batched:.0} intents/s"
        );
    }
}
