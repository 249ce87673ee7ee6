//! Reservations against one ceiling from many threads and processes never exceed it.

mod common;

use alloy::primitives::U256;
use common::*;
use sak_signer::{
    Error,
    ledger::{IntentState, Ledger, MemoryLedger, Outcome, SqliteLedger},
};
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

/// The child role: does nothing unless the parent set the database variable.
#[test]
fn concurrency_child() {
    let Ok(db) = std::env::var(CHILD_DB_ENV) else { return };
    let worker: u64 = std::env::var("SAK_CONCURRENCY_WORKER").unwrap().parse().unwrap();
    let accepted = hammer(&SqliteLedger::open(Path::new(&db)).unwrap(), worker);
    println!("ACCEPTED={accepted}");
}

#[test]
fn processes_sharing_one_database_never_exceed_the_ceiling() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ledger.db");
    drop(SqliteLedger::open(&db).unwrap());
    let children: Vec<_> = (0..4u64)
        .map(|worker| {
            Command::new(std::env::current_exe().unwrap())
                .args(["concurrency_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_DB_ENV, &db)
                .env("SAK_CONCURRENCY_WORKER", worker.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut accepted = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {}", out.status);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let n: u64 = stdout
            .split("ACCEPTED=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no count in child output: {stdout}"))
            .parse()
            .unwrap();
        accepted += n;
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
}
