//! Fleet throughput: 1, 4 and 16 workers of one session, each a guarded signer on a nonce lane
//! of its own, sharing one durable ledger (SQLite or PostgreSQL), sending session-key transfers
//! as fast as they settle on `anvil --block-time 1`, self-bundled (a relayer key each) and
//! through Alto. Every figure of the table is measured in this one run.
//!
//! Afterwards: what the chain's counter says was spent must equal what the ledgers recorded as
//! included (nothing counted twice, nothing lost), with nothing left in flight.
//!
//! Run: `cargo run --release -p sak-signer --example bench_fleet` (PostgreSQL rows need
//! PostgreSQL's binaries; `tools/need-postgres` finds or installs them).

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use sak_contracts::{MockERC20, SakAccount};
use sak_policy::{Call, Context};
use sak_primitives::{Gas, Policy, SpendLimit};
use sak_signer::{
    guard::{Binding, GuardedSigner, Preflight, load_session},
    keystore::LocalKey,
    ledger::{AnyLedger, IntentState, Ledger, Outcome, PostgresLedger, SqliteLedger},
};
use sak_testkit::{Alto, Kit, Postgres, Profile};
use sak_userop::{BundlerClient, FeeCaps, SelfBundler, Submitter, session_nonce_key};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long each configuration sends for (operations started before it ends are finished).
const WINDOW: Duration = Duration::from_secs(12);
const WORKERS: [usize; 3] = [1, 4, 16];
/// Dev accounts: 0 deploys, 1 owns the account, 10.. relay one worker each.
const FIRST_RELAYER: usize = 10;
const AMOUNT: u64 = 1;

struct Fleet {
    kit: Kit,
    account: Address,
    session: u32,
    key: PrivateKeySigner,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> BoxResult<()> {
    let mut profile = Profile::test();
    profile.block_time = Some(1);
    profile.accounts = (FIRST_RELAYER + WORKERS[2]) as u32;
    let kit = Kit::start(profile).await?;
    let owner = kit.dev_accounts()[1];
    let account = kit.sak_account(owner, B256::ZERO).await?;
    let key = PrivateKeySigner::random();
    let now = kit.chain_time().await?;
    let d = *kit.deployment();
    let policy = Policy {
        valid_after: now,
        valid_until: now + 30 * 86_400,
        permissions: vec![],
        spend_limits: vec![SpendLimit {
            token: d.usd,
            allowance: U256::from(10u64.pow(12)),
            period: 86_400,
            transfer: true,
        }],
        gas: Gas::Unlimited,
        max_fee_per_gas: 0,
        max_pre_verification_gas: 0,
        max_ops: 0,
        paymaster: None,
    };
    let session = kit.grant_session(account, owner, policy.to_session_config(key.address())).await?;
    let fleet = Fleet { kit, account, session, key };
    let pg = Postgres::start_or_skip().map_err(|e| format!("{e}; hint: {}", e.hint()))?;
    let alto = Alto::start(&fleet.kit, &["--block-time", "100"])
        .await
        .map_err(|e| format!("{e}; hint: {}", e.hint()))?;
    let dir = tempfile::tempdir()?;

    println!("sak fleet benchmark: guarded session-key transfers, anvil --block-time 1, one machine");
    println!("each worker: its own nonce lane (and relayer key, self-bundled); one shared ledger");
    println!("{WINDOW:?} of sending per row\n");
    println!(
        "{:<8} {:<10} {:<13} {:>5} {:>8} {:>8} {:>10}",
        "workers", "ledger", "path", "ops", "seconds", "ops/s", "x 1 worker"
    );
    let mut ledgers: Vec<Arc<AnyLedger>> = Vec::new();
    let mut run = 0u64;
    let backends: &[&str] = if pg.is_some() { &["sqlite", "postgres"] } else { &["sqlite"] };
    for backend in backends {
        for via in ["self-bundled", "Alto"] {
            let mut one = None;
            for workers in WORKERS {
                run += 1;
                let ledger = Arc::new(match *backend {
                    "sqlite" => {
                        AnyLedger::Sqlite(SqliteLedger::open(&dir.path().join(format!("run{run}.db")))?)
                    }
                    _ => {
                        let pg = pg.as_ref().expect("listed only with a server");
                        // The synchronous client may not block a runtime thread unannounced.
                        let url = tokio::task::block_in_place(|| pg.create_database(&format!("run{run}")))?;
                        AnyLedger::Postgres(tokio::task::block_in_place(|| {
                            PostgresLedger::open(&url).map_err(|e| e.to_string())
                        })?)
                    }
                });
                ledgers.push(Arc::clone(&ledger));
                let lanes = (0..workers).map(|w| run * 100 + w as u64);
                let (ops, took) = match via {
                    "self-bundled" => {
                        let mut guards = Vec::new();
                        for (w, lane) in lanes.enumerate() {
                            let relayer = fleet.kit.dev_signers()[FIRST_RELAYER + w].clone();
                            let bundler =
                                SelfBundler::new(fleet.kit.rpc_url(), relayer, d.entry_point).await?;
                            guards.push(fleet.guard(lane, bundler, &ledger).await?);
                        }
                        send(guards, fleet.transfer()).await?
                    }
                    _ => {
                        let mut guards = Vec::new();
                        for lane in lanes {
                            guards.push(
                                fleet
                                    .guard(lane, BundlerClient::new(alto.url(), d.entry_point)?, &ledger)
                                    .await?,
                            );
                        }
                        send(guards, fleet.transfer()).await?
                    }
                };
                let rate = ops as f64 / took.as_secs_f64();
                let base = *one.get_or_insert(rate);
                println!(
                    "{workers:<8} {backend:<10} {via:<13} {ops:>5} {:>8.1} {rate:>8.2} {:>10.2}",
                    took.as_secs_f64(),
                    rate / base
                );
            }
        }
    }

    let spent = U256::from(
        SakAccount::new(fleet.account, fleet.kit.provider())
            .getSpend(fleet.session, d.usd)
            .call()
            .await?
            .spent,
    );
    let (mut included, mut in_flight) = (U256::ZERO, 0usize);
    for ledger in &ledgers {
        in_flight += ledger.unresolved()?.len();
        for rec in signed(ledger)? {
            if rec.state == IntentState::Included
                && matches!(rec.outcome, Some(Outcome::Included { success: true, .. }))
            {
                included += rec.intent.spends.iter().map(|s| s.amount).sum::<U256>();
            }
        }
    }
    println!("\nspent on chain {spent}, included in the ledgers {included}, left in flight {in_flight}");
    println!("over-cap or double-counted: {}", if spent == included && in_flight == 0 { 0 } else { 1 });
    assert_eq!((spent, in_flight), (included, 0), "the chain and the ledgers disagree");
    Ok(())
}

impl Fleet {
    async fn guard<S: Submitter>(
        &self,
        lane: u64,
        submitter: S,
        ledger: &Arc<AnyLedger>,
    ) -> BoxResult<GuardedSigner<AnyLedger, S>> {
        let d = self.kit.deployment();
        let session = load_session(self.kit.provider(), self.account, self.session).await?;
        let binding = Binding {
            chain_id: self.kit.chain_id(),
            context: Context::account(self.account, d.entry_point),
            session_id: self.session,
            lane_key: session_nonce_key(self.session, lane.into()),
            init_code: Default::default(),
            delegate: None,
        };
        let key = LocalKey::from_signer(self.key.clone());
        Ok(GuardedSigner::new(
            key,
            session,
            binding,
            self.kit.provider().clone(),
            submitter,
            FeeCaps::UNLIMITED,
            Arc::clone(ledger),
        )
        .await?)
    }

    fn transfer(&self) -> Vec<Call> {
        let to = Address::repeat_byte(0xa1);
        vec![Call::contract(
            self.kit.deployment().usd,
            &MockERC20::transferCall { to, value: U256::from(AMOUNT) },
        )]
    }
}

/// Each guard sends `calls` one operation after another until [`WINDOW`] has passed; all run at
/// once. Returns how many landed and how long until the last one did.
async fn send<S: Submitter + Send + Sync + 'static>(
    guards: Vec<GuardedSigner<AnyLedger, S>>,
    calls: Vec<Call>,
) -> BoxResult<(usize, Duration)> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for guard in guards {
        let calls = calls.clone();
        tasks.spawn(async move {
            let mut done = 0usize;
            while started.elapsed() < WINDOW {
                let executed = guard.execute(&calls, Preflight::Check).await.map_err(|e| e.to_string())?;
                if !executed.receipt.success {
                    return Err(format!("a transfer reverted: {:?}", executed.receipt.revert));
                }
                done += 1;
            }
            Ok::<_, String>(done)
        });
    }
    let mut ops = 0;
    while let Some(joined) = tasks.join_next().await {
        ops += joined??;
    }
    Ok((ops, started.elapsed()))
}

fn signed(ledger: &AnyLedger) -> BoxResult<Vec<sak_signer::ledger::IntentRecord>> {
    Ok(ledger.signed_intents()?)
}
