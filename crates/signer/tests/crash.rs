//! SECURITY #58: a real `kill -9` at each step of reserve → sign → submit, then a restart.
//!
//! The parent re-executes this test binary (`crash_child`) with `SAK_FAILPOINT` set; the
//! library's failpoints (feature `failpoints`, on for this crate's tests only) SIGKILL the child
//! just before or just after each commit.

mod common;

use alloy::primitives::{B256, U256};
use common::*;
use sak_signer::{
    Error,
    ledger::{IntentState, Ledger, SqliteLedger},
};
use std::{os::unix::process::ExitStatusExt, path::Path, process::Command};

const DB_ENV: &str = "SAK_CRASH_TEST_DB";
/// Reserved by the parent before the child runs, to catch double counting.
const EARLIER: u64 = 30;
/// What the child reserves.
const CHILD: u64 = 40;
const CEILING: u64 = 100;
const CHILD_LANE: u64 = 5;
/// Set: the child reserves and signs in one transaction (`reserve_signed`).
const ONE_TX_ENV: &str = "SAK_CRASH_ONE_TX";

/// The child role: does nothing unless the parent set `SAK_CRASH_TEST_DB`.
#[test]
fn crash_child() {
    let Ok(db) = std::env::var(DB_ENV) else { return };
    let ledger = SqliteLedger::open(Path::new(&db)).unwrap();
    let (op, reserved) = (signed_op(CHILD_LANE, 0), (intent(CHILD, CHILD_LANE), ceiling(CEILING)));
    let id = if std::env::var_os(ONE_TX_ENV).is_some() {
        // As the guarded signer records an operation: reserved and signed in one transaction.
        ledger.reserve_signed(&reserved.0, &reserved.1, &op).unwrap()
    } else {
        let id = ledger.reserve(&reserved.0, &reserved.1).unwrap();
        ledger.mark_signed(id, &op).unwrap();
        id
    };
    ledger.mark_submitted(id, "self-bundled", Some(B256::repeat_byte(0xee))).unwrap();
}

fn run_child(db: &Path, failpoint: Option<&str>, one_tx: bool) -> std::process::ExitStatus {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["crash_child", "--exact", "--nocapture", "--test-threads=1"]).env(DB_ENV, db);
    if one_tx {
        cmd.env(ONE_TX_ENV, "1");
    }
    match failpoint {
        Some(f) => cmd.env("SAK_FAILPOINT", f),
        None => cmd.env_remove("SAK_FAILPOINT"),
    };
    cmd.status().unwrap()
}

#[test]
fn kill_9_at_each_step_loses_nothing_and_counts_nothing_twice() {
    // (failpoint, reserved and signed in one transaction, state the child's intent must be in
    // after restart; None = never recorded)
    let cases: [(Option<&str>, bool, Option<IntentState>); 9] = [
        (Some("reserve:before_commit"), false, None),
        (Some("reserve:after_commit"), false, Some(IntentState::Reserved)),
        (Some("sign:before_commit"), false, Some(IntentState::Reserved)),
        (Some("sign:after_commit"), false, Some(IntentState::Signed)),
        (Some("submit:before_commit"), false, Some(IntentState::Signed)),
        (Some("submit:after_commit"), false, Some(IntentState::Submitted)),
        (None, false, Some(IntentState::Submitted)),
        (Some("reserve:before_commit"), true, None),
        (Some("reserve:after_commit"), true, Some(IntentState::Signed)),
    ];
    for (failpoint, one_tx, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("ledger.db");
        let earlier = {
            let ledger = SqliteLedger::open(&db).unwrap();
            ledger.reserve(&intent(EARLIER, 1), &ceiling(CEILING)).unwrap()
        };

        let status = run_child(&db, failpoint, one_tx);
        match failpoint {
            Some(f) => {
                assert_eq!(status.signal(), Some(libc::SIGKILL), "{f}: child was not killed: {status}")
            }
            None => assert!(status.success(), "child failed: {status}"),
        }
        let label =
            format!("{}{}", failpoint.unwrap_or("no crash"), if one_tx { " (one transaction)" } else { "" });

        // Restart.
        let ledger = SqliteLedger::open(&db).unwrap();
        assert_eq!(ledger.integrity_check().unwrap(), "ok", "{label}");
        assert_eq!(ledger.check_consistency().unwrap(), Vec::<String>::new(), "{label}: running totals");
        let open = ledger.unresolved().unwrap();
        assert_eq!(open[0].id, earlier, "{label}");
        assert_eq!(open[0].state, IntentState::Reserved, "{label}");
        let child: Vec<_> = open.iter().filter(|r| r.intent.nonce_key == U256::from(CHILD_LANE)).collect();
        match expected {
            None => assert!(child.is_empty(), "{label}: a rolled-back reservation reappeared"),
            Some(state) => {
                assert_eq!(child.len(), 1, "{label}: the reservation must exist exactly once");
                let rec = child[0];
                assert_eq!(rec.state, state, "{label}");
                assert_eq!(rec.intent, intent(CHILD, CHILD_LANE), "{label}");
                if state == IntentState::Reserved {
                    assert_eq!(rec.signed, None, "{label}");
                } else {
                    // Byte-identical op, so a reconciler can resubmit exactly what was signed.
                    assert_eq!(rec.signed.as_ref(), Some(&signed_op(CHILD_LANE, 0)), "{label}");
                }
                assert_eq!(rec.submission.is_some(), state == IntentState::Submitted, "{label}");
            }
        }
        let child_amount = if expected.is_some() { CHILD } else { 0 };
        assert_eq!(pending(&ledger), U256::from(EARLIER + child_amount), "{label}: pending total");

        // A reservation held across the restart still counts against the ceiling.
        let room = CEILING - EARLIER - child_amount;
        let err = ledger.reserve(&intent(room + 1, 9), &ceiling(CEILING)).unwrap_err();
        assert!(
            matches!(err, Error::CeilingExceeded { pending, .. } if pending == U256::from(EARLIER + child_amount)),
            "{label}: {err}"
        );
        let last = ledger.reserve(&intent(room, 9), &ceiling(CEILING)).unwrap();
        assert_eq!(pending(&ledger), U256::from(CEILING), "{label}");
        // Releasing gives the room back, once.
        ledger.resolve(last, &sak_signer::ledger::Outcome::Released { reason: "test".into() }).unwrap();
        assert_eq!(pending(&ledger), U256::from(EARLIER + child_amount), "{label}");
        assert!(ledger.check_consistency().unwrap().is_empty(), "{label}");
    }
}

const BATCH_ENV: &str = "SAK_CRASH_TEST_BATCH_DB";
const BATCH_LANES: [u64; 3] = [11, 12, 13];

/// The batch child role: reserves three intents in one batch, then persists their ops in one.
#[test]
fn crash_batch_child() {
    let Ok(db) = std::env::var(BATCH_ENV) else { return };
    let ledger = SqliteLedger::open(Path::new(&db)).unwrap();
    let intents: Vec<_> = BATCH_LANES.iter().map(|&lane| intent(20, lane)).collect();
    let c = ceiling(CEILING);
    let items: Vec<_> = intents.iter().map(|i| (i, c.as_slice())).collect();
    let ids: Vec<_> = ledger.reserve_batch(&items).unwrap().into_iter().map(Result::unwrap).collect();
    let ops: Vec<_> = BATCH_LANES.iter().map(|&lane| signed_op(lane, 0)).collect();
    let signs: Vec<_> = ids.into_iter().zip(ops.iter()).collect();
    assert!(ledger.mark_signed_batch(&signs).unwrap().iter().all(Result::is_ok));
}

#[test]
fn kill_9_during_a_batch_keeps_it_all_or_nothing() {
    let cases = [
        ("reserve:before_commit", None),
        ("reserve:after_commit", Some(IntentState::Reserved)),
        ("sign:before_commit", Some(IntentState::Reserved)),
        ("sign:after_commit", Some(IntentState::Signed)),
    ];
    for (failpoint, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("ledger.db");
        drop(SqliteLedger::open(&db).unwrap());
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["crash_batch_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(BATCH_ENV, &db)
            .env("SAK_FAILPOINT", failpoint)
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{failpoint}: {status}");

        let ledger = SqliteLedger::open(&db).unwrap();
        assert_eq!(ledger.integrity_check().unwrap(), "ok", "{failpoint}");
        assert!(ledger.check_consistency().unwrap().is_empty(), "{failpoint}");
        let open = ledger.unresolved().unwrap();
        match expected {
            None => assert!(open.is_empty(), "{failpoint}: {open:?}"),
            Some(state) => {
                assert_eq!(open.len(), BATCH_LANES.len(), "{failpoint}: the whole batch, once");
                for (rec, lane) in open.iter().zip(BATCH_LANES) {
                    assert_eq!((rec.state, rec.intent.nonce_key), (state, U256::from(lane)), "{failpoint}");
                    let op = (state == IntentState::Signed).then(|| signed_op(lane, 0));
                    assert_eq!(rec.signed, op, "{failpoint}");
                }
            }
        }
        let expected_pending = if expected.is_some() { 20 * BATCH_LANES.len() as u64 } else { 0 };
        assert_eq!(pending(&ledger), U256::from(expected_pending), "{failpoint}");
    }
}
