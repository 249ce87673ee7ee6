//! Submission benchmark on a local anvil, self-bundled vs through Alto, in one run:
//! - intent → receipt latency (p50, p95) of sequential session-key transfers;
//! - throughput of 200 session-key transfers spread over several nonce lanes, sent
//!   concurrently (one task per lane).
//!
//! Printed figures only. Run: `cargo run --release -p sak-userop --example bench_submit`.

use alloy::{
    network::TransactionBuilder,
    primitives::{
        Address, B256, U256,
        aliases::{U24, U40, U80, U96, U192},
    },
    providers::Provider,
    rpc::types::TransactionRequest,
};
use sak_contracts::{ISakSessions, MockERC20, SakAccount, SakAccountFactory};
use sak_testkit::{Alto, Kit, Profile};
use sak_userop::{
    BundlerClient, Call, FeeCaps, Intent, OpSigner, SelfBundler, Submitter, UserOpClient, retrying_provider,
};
use std::time::{Duration, Instant};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const LATENCY_OPS: usize = 30;
const THROUGHPUT_OPS: usize = 200;
const LANES: usize = 8;

#[tokio::main]
async fn main() -> BoxResult<()> {
    let kit = Kit::start(Profile::test()).await?;
    let d = *kit.deployment();
    let keys = kit.dev_signers().to_vec();
    let (owner, agent, relayer) = (keys[1].clone(), keys[2].clone(), keys[3].clone());
    let provider = kit.provider();

    let factory = SakAccountFactory::new(d.sak_account_factory, provider);
    let account = factory.getAddress(owner.address(), B256::ZERO).call().await?;
    factory.createAccount(owner.address(), B256::ZERO).send().await?.get_receipt().await?;
    let fund = TransactionRequest::default().with_to(account).with_value(U256::from(10u128.pow(20)));
    provider.send_transaction(fund).await?.get_receipt().await?;
    MockERC20::new(d.usd, provider)
        .mint(account, U256::from(10u64.pow(15)))
        .send()
        .await?
        .get_receipt()
        .await?;
    let now = provider.get_block_by_number(Default::default()).await?.ok_or("no block")?.header.timestamp;
    let config = ISakSessions::SessionConfig {
        signer: agent.address(),
        validAfter: U40::from(now),
        validUntil: U40::from(now + 30 * 86_400),
        permissions: vec![],
        spendLimits: vec![ISakSessions::SpendLimit {
            token: d.usd,
            allowance: U96::from(10u64.pow(12)),
            period: 86_400,
            allowTransfer: true,
        }],
        gasBudget: U80::MAX,
        gasPeriod: 0,
        maxOps: U24::ZERO,
        paymaster: Address::ZERO,
        maxFeePerGas: Default::default(),
        maxPreVerificationGas: Default::default(),
    };
    let receipt = SakAccount::new(account, provider)
        .grantSession(config)
        .from(owner.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    let session = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
        .ok_or("no SessionGranted")?
        .inner
        .data
        .id;
    assert_eq!(session, 1, "the bench's lanes are session 1's");
    let signer = OpSigner::session(agent, session);
    let transfer = Call::contract(
        d.usd,
        &MockERC20::transferCall { to: Address::repeat_byte(0xa1), value: U256::from(1_000) },
    );

    let read = retrying_provider(kit.rpc_url(), Default::default())?;
    let self_client = UserOpClient::new(
        read.clone(),
        SelfBundler::new(kit.rpc_url(), relayer, d.entry_point).await?,
        FeeCaps::UNLIMITED,
    )
    .await?;
    let alto =
        Alto::start(&kit, &["--block-time", "100"]).await.map_err(|e| format!("{e}; hint: {}", e.hint()))?;
    let alto_client =
        UserOpClient::new(read, BundlerClient::new(alto.url(), d.entry_point)?, FeeCaps::UNLIMITED).await?;

    // Warm-up: each lane's first op pays the fresh-key nonce write; keep it out of the figures.
    for l in 0..=LANES as u64 {
        let warm = |base: u64| Intent::calls(account, lane(base + l), std::slice::from_ref(&transfer));
        self_client.send(&warm(1_000), &signer).await?;
        alto_client.send(&warm(2_000), &signer).await?;
    }

    println!("sak-userop submission benchmark (anvil automine, debug or release as built, one machine)");
    println!("session-key ERC-20 transfer on a SakAccount, warm lanes\n");
    let self_lat = latency(&self_client, account, 1_000, &transfer, &signer).await?;
    let alto_lat = latency(&alto_client, account, 2_000, &transfer, &signer).await?;
    println!("intent → receipt latency over {LATENCY_OPS} sequential ops:");
    println!(
        "  self-bundled: p50 {:>7.1} ms   p95 {:>7.1} ms",
        ms(pct(&self_lat, 50)),
        ms(pct(&self_lat, 95))
    );
    println!(
        "  Alto:         p50 {:>7.1} ms   p95 {:>7.1} ms",
        ms(pct(&alto_lat, 50)),
        ms(pct(&alto_lat, 95))
    );

    let self_tp = throughput(&self_client, account, 1_001, &transfer, &signer).await?;
    let alto_tp = throughput(&alto_client, account, 2_001, &transfer, &signer).await?;
    println!("\n{THROUGHPUT_OPS} ops over {LANES} lanes, one task per lane:");
    println!(
        "  self-bundled: {:>7.1} ops/s ({:.2} s)",
        THROUGHPUT_OPS as f64 / self_tp.as_secs_f64(),
        self_tp.as_secs_f64()
    );
    println!(
        "  Alto:         {:>7.1} ops/s ({:.2} s)",
        THROUGHPUT_OPS as f64 / alto_tp.as_secs_f64(),
        alto_tp.as_secs_f64()
    );
    println!("  ratio self / Alto: {:.2}", alto_tp.as_secs_f64() / self_tp.as_secs_f64());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[((sorted.len() * p).div_ceil(100)).saturating_sub(1).min(sorted.len() - 1)]
}

async fn latency<S: Submitter>(
    client: &UserOpClient<S>,
    account: Address,
    lane: u64,
    transfer: &Call,
    signer: &OpSigner,
) -> BoxResult<Vec<Duration>> {
    let mut out = Vec::with_capacity(LATENCY_OPS);
    for _ in 0..LATENCY_OPS {
        let intent = Intent::calls(account, self::lane(lane), std::slice::from_ref(transfer));
        let started = Instant::now();
        let r = client.send(&intent, signer).await?;
        out.push(started.elapsed());
        assert!(r.success);
    }
    out.sort();
    Ok(out)
}

async fn throughput<S: Submitter>(
    client: &UserOpClient<S>,
    account: Address,
    first_lane: u64,
    transfer: &Call,
    signer: &OpSigner,
) -> BoxResult<Duration> {
    let started = Instant::now();
    let per_lane = THROUGHPUT_OPS / LANES;
    let tasks = (0..LANES as u64).map(|l| async move {
        for _ in 0..per_lane {
            let intent = Intent::calls(account, lane(first_lane + l), std::slice::from_ref(transfer));
            let r = client.send(&intent, signer).await.map_err(|e| e.to_string())?;
            if !r.success {
                return Err("execution failed".to_string());
            }
        }
        Ok::<_, String>(())
    });
    for result in join_all(tasks).await {
        result?;
    }
    Ok(started.elapsed())
}

/// Polls every future on this task until all are done.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    done.into_iter().map(|v| v.expect("done")).collect()
}

/// Lane `n` of session 1 (a session's operations are admitted only in its own lanes).
fn lane(n: u64) -> U192 {
    sak_userop::session_nonce_key(1, n.into())
}
