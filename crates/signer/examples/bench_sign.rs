//! Guarded signing throughput against a bare `sign_hash`, in one run on one machine.
//!
//! Each guarded operation is what [`SigningCore::sign`] does between an operation and its
//! submission: the policy decision (sak-policy, gas included), the reservation in the ledger,
//! the EIP-712 user operation hash, the session signature, and the signed bytes persisted. The
//! baseline is alloy's k256 `sign_hash_sync` over a fresh hash. Rounds alternate between the
//! paths so that machine noise hits all of them alike; the median round is reported. A single
//! guarded operation is reserved and persisted in one transaction (one fsync); the batch rows
//! sign through `SigningCore::sign_batch`: one reservation and one persistence commit per
//! batch, as a bot signing for several lanes at once can. With PostgreSQL installed, the same
//! two rows on a throwaway local server. The threaded rows: [`THREADS`] signers of one session,
//! each on a nonce lane of its own, signing single operations at once into one SQLite ledger,
//! which commits them together (group commit); beside them, raw signing on as many threads.
//!
//! ```text
//! cargo run --release -p sak-signer --example bench_sign [-- OPS_PER_ROUND]
//! ```

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::SignerSync,
};
use sak_contracts::{ENTRY_POINT_V08, MockERC20};
use sak_policy::{Call, Context, Session, encode_execute};
use sak_primitives::{Gas, MAX_ALLOWANCE, Policy, SpendLimit};
use sak_signer::{
    guard::{Binding, Preflight, SigningCore},
    keystore::LocalKey,
    ledger::{Ledger, MemoryLedger, PostgresLedger, SqliteLedger},
};
use sak_userop::{Fees, GasLimits, Lane, UserOp, UserOpBuilder};
use std::{sync::Arc, time::Instant};

const ROUNDS: usize = 5;
/// Operations per `sign_batch` call (two fsyncs per batch).
const BATCH: u64 = 64;
const CLOCK: u64 = 1_800_000_000;
/// Signers at once in the threaded rows.
const THREADS: u64 = 8;

fn main() {
    let ops: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let key = LocalKey::generate().expect("key");
    let raw_key = key.signer().clone();
    let token = Address::repeat_byte(0x70);
    let account = Address::repeat_byte(0xac);
    let policy = Policy {
        valid_after: CLOCK - 10,
        valid_until: CLOCK + 30 * 86_400,
        permissions: vec![],
        spend_limits: vec![SpendLimit { token, allowance: MAX_ALLOWANCE, period: 86_400, transfer: true }],
        gas: Gas::Unlimited,
        max_fee_per_gas: 0,
        max_pre_verification_gas: 0,
        max_ops: 0,
        paymaster: None,
    };
    let session = Session::new(1, key.address(), policy);
    let binding = Binding {
        chain_id: 31_337,
        context: Context::account(account, ENTRY_POINT_V08),
        session_id: 1,
        lane_key: sak_userop::session_nonce_key(1, 1),
        init_code: Default::default(),
        delegate: None,
    };
    let calls = [Call::contract(
        token,
        &MockERC20::transferCall { to: Address::repeat_byte(0xb0), value: U256::from(1) },
    )];
    let template = UserOpBuilder::new(account)
        .call_data(encode_execute(&calls))
        .gas(GasLimits {
            verification: 120_000,
            call: 80_000,
            pre_verification: 50_000,
            ..Default::default()
        })
        .fees(Fees { max_fee_per_gas: 2_000_000_000, max_priority_fee_per_gas: 1_000_000_000 })
        .build();

    let memory = SigningCore::new(
        LocalKey::from_signer(raw_key.clone()),
        &session,
        binding.clone(),
        ENTRY_POINT_V08,
        Arc::new(MemoryLedger::new()),
    )
    .expect("core");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("ledger.db");
    let sqlite_ledger = Arc::new(SqliteLedger::open(&db).expect("ledger"));
    let core_on = |lane: u128| {
        let binding = Binding { lane_key: sak_userop::session_nonce_key(1, lane), ..binding.clone() };
        let key = LocalKey::from_signer(raw_key.clone());
        SigningCore::new(key, &session, binding, ENTRY_POINT_V08, Arc::clone(&sqlite_ledger)).expect("core")
    };
    let sqlite = core_on(1);
    // Lanes 2.. for the threaded rows.
    let threaded: Vec<_> = (0..THREADS).map(|t| (core_on(u128::from(t) + 2), t + 2)).collect();
    let mut seq_threads = vec![0u64; THREADS as usize];

    // PostgreSQL on a throwaway local server (fsync on), when it is installed.
    let pg = sak_testkit::Postgres::start_or_skip().expect("PostgreSQL");
    let postgres = pg.as_ref().map(|pg| {
        let ledger = PostgresLedger::open(&pg.url()).expect("PostgreSQL ledger");
        SigningCore::new(
            LocalKey::from_signer(raw_key.clone()),
            &session,
            binding.clone(),
            ENTRY_POINT_V08,
            Arc::new(ledger),
        )
        .expect("core")
    });

    let lane = Lane::new(account, sak_userop::session_nonce_key(1, 1));
    let (mut seq_memory, mut seq_sqlite, mut seq_pg) = (0u64, 0u64, 0u64);
    let mut rates: [Vec<f64>; 8] = Default::default();
    for round in 0..ROUNDS {
        let start = Instant::now();
        for i in 0..ops {
            let hash = keccak256((round as u64 * ops + i).to_be_bytes());
            std::hint::black_box(raw_key.sign_hash_sync(&hash).expect("sign"));
        }
        rates[0].push(ops as f64 / start.elapsed().as_secs_f64());
        rates[1].push(guarded(&memory, &session, &template, &calls, lane, &mut seq_memory, ops));
        rates[2].push(guarded(&sqlite, &session, &template, &calls, lane, &mut seq_sqlite, ops));
        rates[3].push(guarded_batches(&sqlite, &session, &template, &calls, lane, &mut seq_sqlite, ops));
        let start = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let raw_key = &raw_key;
                scope.spawn(move || {
                    for i in 0..ops / THREADS {
                        let hash =
                            keccak256([(round as u64 * ops + i).to_be_bytes(), t.to_be_bytes()].concat());
                        std::hint::black_box(raw_key.sign_hash_sync(&hash).expect("sign"));
                    }
                });
            }
        });
        rates[6].push((ops / THREADS * THREADS) as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        std::thread::scope(|scope| {
            for ((core, lane), seq) in threaded.iter().zip(seq_threads.iter_mut()) {
                let (session, template, calls) = (&session, &template, &calls);
                let lane = Lane::new(account, sak_userop::session_nonce_key(1, u128::from(*lane)));
                scope.spawn(move || guarded(core, session, template, calls, lane, seq, ops / THREADS));
            }
        });
        rates[7].push((ops / THREADS * THREADS) as f64 / start.elapsed().as_secs_f64());
        if let Some(pg) = &postgres {
            rates[4].push(guarded(pg, &session, &template, &calls, lane, &mut seq_pg, ops));
            rates[5].push(guarded_batches(pg, &session, &template, &calls, lane, &mut seq_pg, ops));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [raw, mem, sql, batched, pg_one, pg_batched, raw_threads, sql_threads] =
        rates.map(|mut v| if v.is_empty() { f64::NAN } else { median(&mut v) });
    println!("guarded signing throughput, {ops} ops x {ROUNDS} alternating rounds (median round)");
    println!("{:<44} {:>12}  {:>8}", "path", "ops/s", "/ raw");
    println!("{:<44} {:>12.0}  {:>8.3}", "raw alloy k256 sign_hash", raw, 1.0);
    println!("{:<44} {:>12.0}  {:>8.3}  (target >= 0.9)", "guarded, in-memory ledger", mem, mem / raw);
    println!(
        "{:<44} {:>12.0}  {:>8.3}  (target >= 0.25)",
        "guarded, SQLite ledger (WAL, synchronous=FULL)",
        sql,
        sql / raw
    );
    let label = format!("  same, sign_batch of {BATCH}");
    println!("{label:<44} {batched:>12.0}  {:>8.3}  (target >= 0.25)", batched / raw);
    let threads_label = format!("  same, {THREADS} threads of single ops (group commit)");
    println!(
        "{threads_label:<44} {sql_threads:>12.0}  {:>8.3}  (target >= 0.25; / raw on {THREADS} threads: {:.3})",
        sql_threads / raw,
        sql_threads / raw_threads
    );
    println!(
        "{:<44} {raw_threads:>12.0}  {:>8.3}",
        format!("raw sign_hash on {THREADS} threads"),
        raw_threads / raw
    );
    if postgres.is_some() {
        println!(
            "{:<44} {pg_one:>12.0}  {:>8.3}",
            "guarded, PostgreSQL ledger (local, fsync on)",
            pg_one / raw
        );
        println!("{label:<44} {pg_batched:>12.0}  {:>8.3}", pg_batched / raw);
    }
}

/// Runs `ops` guarded signings in batches of [`BATCH`]; returns operations per second.
fn guarded_batches<L: Ledger>(
    core: &SigningCore<L>,
    session: &Session,
    template: &UserOp,
    calls: &[Call],
    lane: Lane,
    seq: &mut u64,
    ops: u64,
) -> f64 {
    let start = Instant::now();
    for _ in 0..ops.div_ceil(BATCH) {
        let batch: Vec<_> = (0..BATCH)
            .map(|i| {
                let mut op = template.clone();
                op.nonce = lane.nonce(*seq + i);
                (op, calls.to_vec(), *seq + i)
            })
            .collect();
        for signed in core.sign_batch(session, batch, CLOCK, Preflight::Check).expect("guarded batch") {
            std::hint::black_box(signed.expect("guarded sign").user_op_hash != B256::ZERO);
        }
        *seq += BATCH;
    }
    (ops.div_ceil(BATCH) * BATCH) as f64 / start.elapsed().as_secs_f64()
}

/// Runs `ops` guarded signings; returns operations per second.
fn guarded<L: Ledger>(
    core: &SigningCore<L>,
    session: &Session,
    template: &UserOp,
    calls: &[Call],
    lane: Lane,
    seq: &mut u64,
    ops: u64,
) -> f64 {
    let start = Instant::now();
    for _ in 0..ops {
        let mut op = template.clone();
        op.nonce = lane.nonce(*seq);
        let signed =
            core.sign(session, None, op, calls, CLOCK, *seq, Preflight::Check).expect("guarded sign");
        std::hint::black_box(signed.user_op_hash != B256::ZERO);
        *seq += 1;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}
