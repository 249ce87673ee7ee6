//! Ledger rules, run against both backends so they agree exactly.

mod common;

use alloy::primitives::{Address, B256, U256};
use common::*;
use sak_signer::{
    Error,
    ledger::{
        AsOf, Ceiling, Decision, IntentState, Ledger, MemoryLedger, Outcome, PostgresLedger, Spend,
        SqliteLedger,
    },
};
use sak_testkit::Postgres;

/// A backend's name, the ledger, and what keeps it alive.
type Backend = (&'static str, Box<dyn Ledger>, Box<dyn std::any::Any>);

/// Each backend with what keeps it alive (its folder, its server). PostgreSQL runs when it is
/// installed (a server of the test's own), and must when `SAK_REQUIRE_POSTGRES=1` (CI).
fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteLedger::open(&dir.path().join("ledger.db")).unwrap();
    let mut out: Vec<Backend> = vec![
        ("memory", Box::new(MemoryLedger::new()), Box::new(())),
        ("sqlite", Box::new(sqlite), Box::new(dir)),
    ];
    if let Some(pg) = Postgres::start_or_skip().unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint())) {
        let ledger = PostgresLedger::open(&pg.url()).unwrap();
        out.push(("postgres", Box::new(ledger), Box::new(pg)));
    }
    out
}

#[test]
fn reserve_refuses_beyond_ceiling_with_the_numbers() {
    for (name, ledger, _dir) in backends() {
        ledger.reserve(&intent(60, 1), &ceiling(100)).unwrap();
        ledger.reserve(&intent(40, 2), &ceiling(100)).unwrap();
        let err = ledger.reserve(&intent(1, 3), &ceiling(100)).unwrap_err();
        match err {
            Error::CeilingExceeded { token, window, pending, requested, ceiling } => {
                assert_eq!(
                    (token, window, pending, requested, ceiling),
                    (TOKEN, 0, U256::from(100), U256::from(1), U256::from(100)),
                    "{name}"
                );
            }
            other => panic!("{name}: {other}"),
        }
        assert_eq!(pending(&*ledger), U256::from(100), "{name}: the refused intent left nothing");
        assert_eq!(ledger.unresolved().unwrap().len(), 2, "{name}");
    }
}

#[test]
fn pending_is_scoped_per_chain_account_session_token_and_window() {
    for (name, ledger, _dir) in backends() {
        ledger.reserve(&intent(100, 1), &ceiling(100)).unwrap();
        // Another window, token, session, account or chain has its own budget.
        let mut other =
            vec![intent_u256(TOKEN, 1, U256::from(100), 1), intent_u256(OTHER_TOKEN, 0, U256::from(100), 1)];
        let mut i = intent(100, 1);
        i.session_id = B256::repeat_byte(2);
        other.push(i.clone());
        i = intent(100, 1);
        i.account = Address::repeat_byte(0xbb);
        other.push(i.clone());
        i = intent(100, 1);
        i.chain_id = 1;
        other.push(i);
        for intent in other {
            let s = intent.spends[0];
            let c = [Ceiling { token: s.token, window: s.window, max_pending: U256::from(100), as_of: None }];
            ledger.reserve(&intent, &c).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(pending(&*ledger), U256::from(100), "{name}");
        assert_eq!(
            ledger.pending_total(CHAIN, ACCOUNT, SESSION, TOKEN, 1).unwrap(),
            U256::from(100),
            "{name}"
        );
    }
}

/// A ceiling read at a block counts exactly what the chain's counters there had not counted:
/// a pending intent whose lane nonce the block had used is in them (or never spends), an
/// intent included after the block is not (although settled), an unsigned one always counts,
/// a failed one never does.
#[test]
fn a_ceiling_read_at_a_block_counts_exactly_what_that_block_had_not_counted() {
    let at = |block: u64, next_seqs: &[(u64, u64)], max: u64| {
        let next_seqs = next_seqs.iter().map(|&(k, s)| (U256::from(k), s)).collect();
        vec![Ceiling {
            token: TOKEN,
            window: 0,
            max_pending: U256::from(max),
            as_of: Some(AsOf { block, next_seqs }),
        }]
    };
    let counted = |ledger: &dyn Ledger, ceilings: &[Ceiling]| match ledger.reserve(&intent(1000, 9), ceilings)
    {
        Err(Error::CeilingExceeded { pending, .. }) => pending,
        other => panic!("{other:?}"),
    };
    for (name, ledger, _dir) in backends() {
        let signed = |amount: u64, lane: u64, seq: u64| {
            let mut i = intent(amount, lane);
            i.nonce_seq = Some(seq);
            let op = signed_op(lane, seq);
            (ledger.reserve_signed(&i, &ceiling(1000), &op).unwrap(), op)
        };
        signed(30, 1, 0);
        let (b, op_b) = signed(40, 2, 5);
        ledger.resolve(b, &landed_at(10, &op_b)).unwrap();
        ledger.reserve(&intent(20, 3), &ceiling(1000)).unwrap();
        let (d, _) = signed(1, 4, 0);
        ledger.resolve(d, &Outcome::Failed { reason: "nonce taken".into() }).unwrap();
        let mut elsewhere = intent(500, 1);
        elsewhere.session_id = B256::repeat_byte(9);
        ledger
            .reserve(&elsewhere, &[Ceiling { max_pending: U256::from(500), ..ceiling(0)[0].clone() }])
            .unwrap();

        // Every pending intent of the scope, as before: 30 + 20.
        assert_eq!(counted(&*ledger, &ceiling(100)), U256::from(50), "{name}");
        // Block 9 had used lane 1's nonce 0 (in its counters) and not yet seen the 40 land.
        assert_eq!(counted(&*ledger, &at(9, &[(1, 1)], 100)), U256::from(60), "{name}");
        // Block 10 holds the 40; lane 1's nonce 0 is unused there, or its lane is not listed.
        assert_eq!(counted(&*ledger, &at(10, &[(1, 0)], 100)), U256::from(50), "{name}");
        assert_eq!(counted(&*ledger, &at(10, &[], 100)), U256::from(50), "{name}");
        assert_eq!(counted(&*ledger, &at(10, &[(1, 1), (3, 5)], 100)), U256::from(20), "{name}");
        // Up to the ceiling exactly is reserved, and the running total goes on from all pending.
        ledger.reserve(&intent(40, 5), &at(9, &[(1, 1)], 100)).unwrap();
        assert!(matches!(
            ledger.reserve(&intent(1, 6), &at(9, &[(1, 1)], 100)),
            Err(Error::CeilingExceeded { .. })
        ));
        assert_eq!(pending(&*ledger), U256::from(90), "{name}");
    }
}

/// An inclusion a reorg took back is reopened: pending again (Submitted if it was sent, Signed
/// otherwise), counted against its ceiling again, settled anew later; only an included intent
/// is reopened, and only recent inclusions of the account are listed for the re-check.
#[test]
fn an_inclusion_a_reorg_took_back_is_reopened_and_counts_again() {
    for (name, ledger, _dir) in backends() {
        let (sent_op, quiet_op) = (signed_op(1, 0), signed_op(2, 0));
        let sent = ledger.reserve_signed(&intent(30, 1), &ceiling(100), &sent_op).unwrap();
        ledger.mark_submitted(sent, "self-bundled", None).unwrap();
        ledger.resolve(sent, &landed_at(10, &sent_op)).unwrap();
        let quiet = ledger.reserve_signed(&intent(20, 2), &ceiling(100), &quiet_op).unwrap();
        ledger.resolve(quiet, &landed_at(5, &quiet_op)).unwrap();
        let mut elsewhere = intent(1, 3);
        elsewhere.account = Address::repeat_byte(0xbb);
        let other_op = signed_op(3, 0);
        let other = ledger.reserve_signed(&elsewhere, &ceiling(100), &other_op).unwrap();
        ledger.resolve(other, &landed_at(11, &other_op)).unwrap();
        assert_eq!(pending(&*ledger), U256::ZERO, "{name}");

        let ids = |after| {
            ledger.included_after(CHAIN, ACCOUNT, after).unwrap().iter().map(|r| r.id).collect::<Vec<_>>()
        };
        assert_eq!((ids(4), ids(5), ids(10)), (vec![sent, quiet], vec![sent], vec![]), "{name}");

        ledger.reopen(sent).unwrap();
        ledger.reopen(quiet).unwrap();
        let (sent_rec, quiet_rec) = (ledger.get(sent).unwrap(), ledger.get(quiet).unwrap());
        assert_eq!(
            (sent_rec.state, quiet_rec.state),
            (IntentState::Submitted, IntentState::Signed),
            "{name}"
        );
        assert!(sent_rec.outcome.is_none() && sent_rec.signed == Some(sent_op.clone()), "{name}");
        assert_eq!(pending(&*ledger), U256::from(50), "{name}: both count again");
        assert!(ids(0).is_empty(), "{name}");
        assert_eq!(ledger.unresolved().unwrap().len(), 2, "{name}");
        assert!(
            matches!(ledger.reopen(sent), Err(Error::IllegalTransition { .. })),
            "{name}: only an inclusion"
        );
        let never = ledger.reserve(&intent(1, 4), &ceiling(100)).unwrap();
        assert!(matches!(ledger.reopen(never), Err(Error::IllegalTransition { .. })), "{name}");
        // Settled anew: landed in another block.
        ledger.resolve(sent, &landed_at(12, &sent_op)).unwrap();
        ledger.resolve(quiet, &Outcome::Failed { reason: "nonce taken".into() }).unwrap();
        assert_eq!(pending(&*ledger), U256::from(1), "{name}");
        assert_eq!(ids(11), vec![sent], "{name}");
    }
}

#[test]
fn amounts_beyond_64_bits_are_summed_exactly() {
    for (name, ledger, _dir) in backends() {
        let big = U256::from(u64::MAX) * U256::from(3u64); // > 2^64: SQLite integers would overflow
        let c = [Ceiling { token: TOKEN, window: 0, max_pending: U256::MAX, as_of: None }];
        ledger.reserve(&intent_u256(TOKEN, 0, big, 1), &c).unwrap();
        ledger.reserve(&intent_u256(TOKEN, 0, big, 2), &c).unwrap();
        assert_eq!(pending(&*ledger), big * U256::from(2), "{name}");
        // One more that would overflow 256 bits is refused, not wrapped.
        let err = ledger.reserve(&intent_u256(TOKEN, 0, U256::MAX, 3), &c).unwrap_err();
        assert!(matches!(err, Error::CeilingExceeded { .. }), "{name}: {err}");
        // Two spends of the same (token, window) in one intent add up.
        let mut twice = intent_u256(TOKEN, 0, U256::from(5), 4);
        twice.spends.push(Spend { token: TOKEN, window: 0, amount: U256::from(5) });
        let c = [Ceiling {
            token: TOKEN,
            window: 0,
            max_pending: big * U256::from(2) + U256::from(9),
            as_of: None,
        }];
        let err = ledger.reserve(&twice, &c).unwrap_err();
        assert!(
            matches!(err, Error::CeilingExceeded { requested, .. } if requested == U256::from(10)),
            "{name}: {err}"
        );
    }
}

#[test]
fn invalid_intents_are_refused() {
    for (name, ledger, _dir) in backends() {
        let mut i = intent(1, 0);
        i.nonce_key = U256::from(1) << 192;
        assert!(matches!(ledger.reserve(&i, &ceiling(10)), Err(Error::InvalidIntent { .. })), "{name}");
        i.nonce_key = (U256::from(1) << 192) - U256::from(1);
        ledger.reserve(&i, &ceiling(10)).unwrap();
        let other = intent_u256(OTHER_TOKEN, 0, U256::from(1), 0);
        assert!(
            matches!(ledger.reserve(&other, &ceiling(10)), Err(Error::MissingCeiling { token, window: 0 }) if token == OTHER_TOKEN),
            "{name}"
        );
    }
}

#[test]
fn state_machine_is_enforced_and_resolution_frees_the_reservation() {
    for (name, ledger, _dir) in backends() {
        let id = ledger.reserve(&intent(50, 7), &ceiling(100)).unwrap();
        let op = signed_op(7, 0);
        // Not signed yet: cannot be submitted or included.
        assert!(
            matches!(
                ledger.mark_submitted(id, "x", None),
                Err(Error::IllegalTransition { from: IntentState::Reserved, .. })
            ),
            "{name}"
        );
        let included = Outcome::Included {
            user_op_hash: op.user_op_hash,
            success: true,
            actual_gas_cost: U256::from(1),
            tx_hash: B256::repeat_byte(9),
            block: 5,
        };
        assert!(matches!(ledger.resolve(id, &included), Err(Error::IllegalTransition { .. })), "{name}");
        // The nonce must be the intent's lane.
        assert!(
            matches!(ledger.mark_signed(id, &signed_op(8, 0)), Err(Error::NonceMismatch { .. })),
            "{name}"
        );

        ledger.mark_signed(id, &op).unwrap();
        ledger.mark_signed(id, &op).unwrap(); // idempotent
        let other = signed_op(7, 1);
        assert!(
            matches!(ledger.mark_signed(id, &other), Err(Error::SignedOpConflict { existing, attempted, .. }) if existing == op.user_op_hash && attempted == other.user_op_hash),
            "{name}"
        );
        ledger.mark_submitted(id, "bundler", None).unwrap();
        ledger.mark_submitted(id, "self-bundled", Some(B256::repeat_byte(3))).unwrap();
        ledger.mark_signed(id, &op).unwrap(); // still idempotent after submission
        let rec = ledger.get(id).unwrap();
        assert_eq!(rec.state, IntentState::Submitted, "{name}");
        assert_eq!(rec.signed.as_ref(), Some(&op), "{name}");
        let sub = rec.submission.unwrap();
        assert_eq!(
            (sub.via.as_str(), sub.tx_hash, sub.count),
            ("self-bundled", Some(B256::repeat_byte(3)), 2),
            "{name}"
        );
        assert_eq!(pending(&*ledger), U256::from(50), "{name}");

        ledger.resolve(id, &included).unwrap();
        assert_eq!(pending(&*ledger), U256::ZERO, "{name}: resolved intents stop counting");
        assert!(ledger.unresolved().unwrap().is_empty(), "{name}");
        let rec = ledger.get(id).unwrap();
        assert_eq!((rec.state, rec.outcome.as_ref()), (IntentState::Included, Some(&included)), "{name}");
        // Terminal states never change.
        for outcome in [
            included.clone(),
            Outcome::Failed { reason: "x".into() },
            Outcome::Released { reason: "x".into() },
        ] {
            assert!(
                matches!(
                    ledger.resolve(id, &outcome),
                    Err(Error::IllegalTransition { from: IntentState::Included, .. })
                ),
                "{name}"
            );
        }
        assert!(
            matches!(ledger.mark_submitted(id, "x", None), Err(Error::IllegalTransition { .. })),
            "{name}"
        );

        // Released straight from Reserved; Failed from Signed.
        let a = ledger.reserve(&intent(10, 1), &ceiling(100)).unwrap();
        ledger.resolve(a, &Outcome::Released { reason: "PolicyRefused".into() }).unwrap();
        let b = ledger.reserve(&intent(10, 2), &ceiling(100)).unwrap();
        ledger.mark_signed(b, &signed_op(2, 0)).unwrap();
        ledger.resolve(b, &Outcome::Failed { reason: "Expired".into() }).unwrap();
        assert_eq!(
            ledger.get(b).unwrap().outcome,
            Some(Outcome::Failed { reason: "Expired".into() }),
            "{name}"
        );
        assert_eq!(pending(&*ledger), U256::ZERO, "{name}");
        assert!(
            matches!(ledger.get(sak_signer::ledger::IntentId(999)), Err(Error::IntentNotFound(_))),
            "{name}"
        );
    }
}

#[test]
fn unresolved_carries_what_a_reconciler_needs() {
    for (name, ledger, _dir) in backends() {
        let reserved = ledger.reserve(&intent(1, 1), &ceiling(100)).unwrap();
        let signed = ledger.reserve(&intent(2, 2), &ceiling(100)).unwrap();
        let done = ledger.reserve(&intent(3, 3), &ceiling(100)).unwrap();
        ledger.mark_signed(signed, &signed_op(2, 0)).unwrap();
        ledger.resolve(done, &Outcome::Released { reason: "test".into() }).unwrap();
        let open = ledger.unresolved().unwrap();
        assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), vec![reserved, signed], "{name}");
        assert_eq!(open[0].intent, intent(1, 1), "{name}");
        assert_eq!(open[0].signed, None, "{name}");
        assert_eq!(open[1].signed.as_ref(), Some(&signed_op(2, 0)), "{name}");
    }
}

#[test]
fn decision_log_appends_and_filters_by_time_and_by_place() {
    for (name, ledger, _dir) in backends() {
        let d = |at, allowed: bool, reason: &str| Decision {
            at,
            chain_id: CHAIN,
            account: ACCOUNT,
            session_id: SESSION,
            key: Address::repeat_byte(0x5e),
            allowed,
            reason: reason.into(),
            spends: vec![Spend { token: TOKEN, window: 0, amount: U256::MAX }],
            user_op_hash: allowed.then(|| B256::repeat_byte(1)),
            tx_hash: None,
        };
        let all = [d(10, true, "ok"), d(20, false, "SpendCapExceeded"), d(30, true, "ok")];
        for x in &all {
            ledger.record_decision(x).unwrap();
        }
        assert_eq!(ledger.decisions(0).unwrap(), all.to_vec(), "{name}");
        assert_eq!(ledger.decisions(20).unwrap(), all[1..].to_vec(), "{name}");
        // A follower keeps its place by count.
        assert_eq!(ledger.decisions_after(0).unwrap(), all.to_vec(), "{name}");
        assert_eq!(ledger.decisions_after(2).unwrap(), all[2..].to_vec(), "{name}");
        assert_eq!(ledger.decisions_after(3).unwrap(), Vec::new(), "{name}");
    }
}

#[test]
fn sqlite_finds_intents_by_their_user_op_hash() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db")).unwrap();
    let unsigned = ledger.reserve(&intent(1, 1), &ceiling(100)).unwrap();
    let signed = ledger.reserve(&intent(2, 2), &ceiling(100)).unwrap();
    ledger.mark_signed(signed, &signed_op(2, 0)).unwrap();
    let hash = signed_op(2, 0).user_op_hash;
    let found = ledger.intents_by_user_op_hash(hash).unwrap();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), vec![signed]);
    assert_ne!(found[0].id, unsigned);
    assert!(ledger.intents_by_user_op_hash(B256::repeat_byte(0xee)).unwrap().is_empty());
}

#[test]
fn sqlite_never_deletes_and_keeps_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = SqliteLedger::open(&path).unwrap();
    ledger.reserve(&intent(1, 1), &ceiling(10)).unwrap();
    ledger
        .record_decision(&Decision {
            at: 1,
            chain_id: CHAIN,
            account: ACCOUNT,
            session_id: SESSION,
            key: Address::ZERO,
            allowed: false,
            reason: "SpendCapExceeded".into(),
            spends: vec![],
            user_op_hash: None,
            tx_hash: None,
        })
        .unwrap();
    drop(ledger);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!((mode.as_str(), version), ("wal", 4));
    for (sql, message) in [
        ("DELETE FROM intents", "never deletes intents"),
        ("DELETE FROM spends", "never deletes spends"),
        ("UPDATE spends SET amount = x'00'", "spends are immutable"),
        ("DELETE FROM decisions", "append-only"),
        ("UPDATE decisions SET allowed = 1", "append-only"),
    ] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains(message), "{sql}: {err}");
    }
    drop(conn);
    // Reopening keeps the data and the schema version.
    let ledger = SqliteLedger::open(&path).unwrap();
    assert_eq!(pending(&ledger), U256::from(1));
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
    assert!(ledger.check_consistency().unwrap().is_empty());
    // A running total tampered with behind the ledger's back is reported.
    drop(ledger);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE pending_totals SET amount = ?1", [U256::from(2).to_be_bytes::<32>()]).unwrap();
    drop(conn);
    assert_eq!(SqliteLedger::open(&path).unwrap().check_consistency().unwrap().len(), 1);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteLedger::open(&path).unwrap());
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 5).unwrap();
    let err = SqliteLedger::open(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }) && err.to_string().contains("newer"), "{err}");
}

#[test]
fn batches_check_each_intent_against_the_earlier_ones() {
    for (name, ledger, _dir) in backends() {
        let c = ceiling(100);
        let intents: Vec<_> = (0..5).map(|lane| intent(30, lane)).collect();
        let mut batch: Vec<(&sak_signer::ledger::Intent, &[Ceiling])> =
            intents.iter().map(|i| (i, c.as_slice())).collect();
        let bad_lane = intent_u256(TOKEN, 0, U256::from(1), 0);
        let mut bad_lane = bad_lane;
        bad_lane.nonce_key = U256::MAX;
        batch.insert(1, (&bad_lane, c.as_slice()));
        let results = ledger.reserve_batch(&batch).unwrap();
        assert_eq!(results.len(), 6, "{name}");
        assert!(matches!(results[1], Err(Error::InvalidIntent { .. })), "{name}");
        let accepted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(accepted.len(), 3, "{name}: 3 x 30 fit in 100");
        assert!(
            matches!(results[4], Err(Error::CeilingExceeded { pending, .. }) if pending == U256::from(90)),
            "{name}"
        );
        assert_eq!(pending(&*ledger), U256::from(90), "{name}");

        let ops: Vec<_> = (0..3).map(|lane| signed_op(lane, 0)).collect();
        let mut signs: Vec<_> = accepted.iter().copied().zip(ops.iter()).collect();
        let wrong = signed_op(9, 0);
        signs.push((accepted[0], &wrong)); // a second, different op for an intent: refused
        let results = ledger.mark_signed_batch(&signs).unwrap();
        assert!(results[..3].iter().all(Result::is_ok), "{name}: {results:?}");
        assert!(matches!(results[3], Err(Error::SignedOpConflict { .. })), "{name}");
        for (id, op) in accepted.iter().zip(&ops) {
            assert_eq!(ledger.get(*id).unwrap().signed.as_ref(), Some(op), "{name}");
        }
    }
}

#[test]
fn one_signed_operation_is_one_intent() {
    for (name, ledger, _dir) in backends() {
        let first = ledger.reserve(&intent(10, 1), &ceiling(100)).unwrap();
        ledger.mark_signed(first, &signed_op(1, 0)).unwrap();
        let second = ledger.reserve(&intent(10, 1), &ceiling(100)).unwrap();
        let err = ledger.mark_signed(second, &signed_op(1, 0)).unwrap_err();
        assert!(
            matches!(err, Error::DuplicateOp { id, existing } if id == second && existing == first),
            "{name}: {err}"
        );
        // Nothing was stored for the second; it can still sign something else.
        assert_eq!(ledger.get(second).unwrap().state, IntentState::Reserved, "{name}");
        ledger.mark_signed(second, &signed_op(1, 1)).unwrap();
    }
}

/// `reserve_signed` writes the intent and its signed operation in one row; a refusal after the
/// row is written (a nonce off the intent's lane, a hash another intent holds) must leave
/// neither the row nor its pending spend.
#[test]
fn a_refused_signed_reservation_records_nothing() {
    for (name, ledger, _dir) in backends() {
        let held = signed_op(1, 0);
        let first = ledger.reserve_signed(&intent(10, 1), &ceiling(100), &held).unwrap();
        assert_eq!(ledger.get(first).unwrap().state, IntentState::Signed, "{name}");
        let err = ledger.reserve_signed(&intent(10, 2), &ceiling(100), &signed_op(3, 0)).unwrap_err();
        assert!(matches!(err, Error::NonceMismatch { .. }), "{name}: {err}");
        let err = ledger.reserve_signed(&intent(10, 1), &ceiling(100), &held).unwrap_err();
        assert!(matches!(err, Error::DuplicateOp { existing, .. } if existing == first), "{name}: {err}");
        assert_eq!(pending(&*ledger), U256::from(10), "{name}: only the first counts");
        assert_eq!(ledger.unresolved().unwrap().len(), 1, "{name}: only the first was recorded");
        // The refusals spent nothing of the ceiling: 90 more fit.
        ledger.reserve_signed(&intent(90, 2), &ceiling(100), &signed_op(2, 0)).unwrap();
    }
}

#[test]
fn a_lane_has_one_holder_until_it_lets_go() {
    use sak_signer::ledger::LaneId;
    for (name, ledger, _dir) in backends() {
        let lane = LaneId { chain_id: CHAIN, account: ACCOUNT, nonce_key: U256::from(7) };
        let other = LaneId { nonce_key: U256::from(8), ..lane };
        let held = ledger.try_lock_lane(&lane).unwrap().expect(name);
        assert!(ledger.try_lock_lane(&lane).unwrap().is_none(), "{name}: held twice");
        let _other = ledger.try_lock_lane(&other).unwrap().expect("another lane is free");
        drop(held);
        assert!(ledger.try_lock_lane(&lane).unwrap().is_some(), "{name}: freed on drop");
    }
    // Across processes the kernel's lock decides, and frees it when the holder dies: see the
    // CLI's concurrent agents test.
}

#[test]
fn a_chain_reset_under_the_same_id_retires_what_was_in_flight_there() {
    use sak_signer::ledger::ChainBound;
    for (name, ledger, _dir) in backends() {
        let (old, new) = (B256::repeat_byte(1), B256::repeat_byte(2));
        assert_eq!(ledger.bind_chain(CHAIN, old).unwrap(), ChainBound::First, "{name}");
        assert_eq!(ledger.bind_chain(CHAIN, old).unwrap(), ChainBound::Same, "{name}");
        let signed = ledger.reserve(&intent(10, 1), &ceiling(100)).unwrap();
        ledger.mark_signed(signed, &signed_op(1, 0)).unwrap();
        let reserved = ledger.reserve(&intent(20, 2), &ceiling(100)).unwrap();
        let mut elsewhere = intent(30, 3);
        elsewhere.chain_id = CHAIN + 1;
        let elsewhere = ledger.reserve(&elsewhere, &ceiling(100)).unwrap();
        assert_eq!(pending(ledger.as_ref()), U256::from(30));

        let bound = ledger.bind_chain(CHAIN, new).unwrap();
        assert_eq!(bound, ChainBound::Reset { previous: old, retired: vec![signed, reserved] }, "{name}");
        assert_eq!(pending(ledger.as_ref()), U256::ZERO, "{name}: nothing of the dead chain counts");
        for id in [signed, reserved] {
            let rec = ledger.get(id).unwrap();
            assert_eq!(rec.state, IntentState::Failed, "{name}");
            assert!(
                matches!(rec.outcome, Some(Outcome::Failed { reason }) if reason.contains("chain reset"))
            );
        }
        assert_eq!(
            ledger.get(elsewhere).unwrap().state,
            IntentState::Reserved,
            "{name}: other chains untouched"
        );
        assert_eq!(ledger.bind_chain(CHAIN, new).unwrap(), ChainBound::Same, "{name}");
    }
}

/// A replacement of `op` (a fee bump): the same nonce, other bytes, another hash.
fn bumped(op: &sak_signer::ledger::SignedOp, fee: u8) -> sak_signer::ledger::SignedOp {
    let mut bytes = op.op_bytes.to_vec();
    bytes.push(fee);
    sak_signer::ledger::SignedOp {
        user_op_hash: alloy::primitives::keccak256(&bytes),
        op_bytes: bytes.into(),
        ..op.clone()
    }
}

#[test]
fn a_fee_bump_keeps_every_operation_of_the_intent_and_its_reservation() {
    for (name, ledger, _dir) in backends() {
        let id = ledger.reserve(&intent(40, 3), &ceiling(100)).unwrap();
        let first = signed_op(3, 0);
        // Only a signed operation can be replaced.
        assert!(
            matches!(
                ledger.mark_replaced(id, &first, U256::from(1)),
                Err(Error::IllegalTransition { from: IntentState::Reserved, .. })
            ),
            "{name}"
        );
        ledger.mark_signed(id, &first).unwrap();
        ledger.mark_submitted(id, "self-bundled", Some(B256::repeat_byte(7))).unwrap();
        let second = bumped(&first, 1);
        ledger.mark_replaced(id, &second, U256::from(2)).unwrap();
        // Repeating it is a no-op.
        ledger.mark_replaced(id, &second, U256::from(2)).unwrap();
        let rec = ledger.get(id).unwrap();
        assert_eq!(rec.state, IntentState::Signed, "{name}: the replacement is not sent yet");
        assert_eq!(rec.signed.as_ref(), Some(&second), "{name}");
        assert_eq!(rec.replaced, vec![first.clone()], "{name}");
        assert_eq!(rec.submission, None, "{name}");
        assert_eq!(rec.intent.gas_cost_cap, U256::from(2), "{name}");
        assert_eq!(pending(&*ledger), U256::from(40), "{name}: the reservation stands as it was");

        // Another nonce, an operation it already replaced, a hash another intent holds: refused.
        let mut elsewhere = bumped(&second, 2);
        elsewhere.nonce_seq = 1;
        assert!(
            matches!(ledger.mark_replaced(id, &elsewhere, U256::from(3)), Err(Error::NonceMismatch { .. })),
            "{name}"
        );
        assert!(
            matches!(ledger.mark_replaced(id, &first, U256::from(3)), Err(Error::SignedOpConflict { .. })),
            "{name}"
        );
        let other = ledger.reserve(&intent(10, 4), &ceiling(100)).unwrap();
        let err = ledger
            .mark_signed(other, &sak_signer::ledger::SignedOp { nonce_key: U256::from(4), ..first.clone() });
        assert!(matches!(err, Err(Error::DuplicateOp { existing, .. }) if existing == id), "{name}: {err:?}");

        // The original landed: the intent is included by it, and the reservation is freed.
        let third = bumped(&second, 3);
        ledger.mark_replaced(id, &third, U256::from(4)).unwrap();
        assert_eq!(
            ledger.get(id).unwrap().replaced,
            vec![first.clone(), second.clone()],
            "{name}: oldest first"
        );
        let landed = Outcome::Included {
            user_op_hash: first.user_op_hash,
            success: true,
            actual_gas_cost: U256::from(1),
            tx_hash: B256::repeat_byte(9),
            block: 5,
        };
        ledger.resolve(id, &landed).unwrap();
        let rec = ledger.get(id).unwrap();
        assert_eq!(rec.outcome, Some(landed), "{name}");
        assert_eq!(pending(&*ledger), U256::from(10), "{name}: only the other intent's is left");
        assert!(
            matches!(
                ledger.mark_replaced(id, &bumped(&third, 4), U256::from(5)),
                Err(Error::IllegalTransition { .. })
            ),
            "{name}: a settled intent is never replaced"
        );
    }
}

#[test]
fn sqlite_finds_an_intent_by_any_of_its_operations_and_reads_older_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    // A ledger written by a build before fee bumps (schema v2), with an intent in flight.
    let ledger = SqliteLedger::open(&path).unwrap();
    let id = ledger.reserve(&intent(5, 1), &ceiling(100)).unwrap();
    drop(ledger);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX intents_landed; DROP TRIGGER replaced_ops_keep; DROP TRIGGER replaced_ops_frozen; DROP TABLE replaced_ops;
             ALTER TABLE intents DROP COLUMN included_user_op_hash; PRAGMA user_version = 2;",
        )
        .unwrap();
    let ledger = SqliteLedger::open(&path).unwrap();
    let first = signed_op(1, 0);
    ledger.mark_signed(id, &first).unwrap();
    let second = bumped(&first, 1);
    ledger.mark_replaced(id, &second, U256::from(2)).unwrap();
    for hash in [first.user_op_hash, second.user_op_hash] {
        assert_eq!(
            ledger.intents_by_user_op_hash(hash).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id]
        );
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    // An intent included before schema v3 (no landed hash recorded) landed by its own operation.
    conn.execute("UPDATE intents SET state = 'included', included_success = 1, actual_gas_cost = ?1, included_tx_hash = ?2, included_block = 3, included_user_op_hash = NULL", rusqlite::params![U256::from(1).to_be_bytes::<32>(), B256::repeat_byte(9).as_slice()]).unwrap();
    assert!(
        matches!(ledger.get(id).unwrap().outcome, Some(Outcome::Included { user_op_hash, .. }) if user_op_hash == second.user_op_hash)
    );
}
