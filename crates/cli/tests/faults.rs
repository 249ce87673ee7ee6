//! `sak` against what goes wrong around it: a flaky or lying RPC endpoint (the test kit's fault
//! proxy between sak and anvil), agents racing on one session, and damaged files in its home.
//! What sak reports is what happened on chain, every error says what to do, and a flaky endpoint
//! does not stop an agent.

mod common;

use alloy::{
    primitives::{Address, U256},
    providers::ProviderBuilder,
};
use common::{Home, Run, block_on, lost_answers, swap_args};
use sak_contracts::SakAccount;
use sak_testkit::{Fault, FaultPlan, FaultProxy};
use std::process::Stdio;
use std::time::Duration;

fn spent(home: &Home, account: Address, id: u64) -> U256 {
    let usd: Address =
        home.node_summary.as_ref().unwrap()["contracts"]["usd"].as_str().unwrap().parse().unwrap();
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    block_on(async {
        U256::from(SakAccount::new(account, provider).getSpend(id as u32, usd).call().await.unwrap().spent)
    })
}

/// `sak --json swap` of `amount` tUSD under session `id` with every send of it lost before the
/// node: signed, outcome unknown (exit 3). Returns its `--json` document.
fn lost_swap(home: &Home, id: u64, amount: &str) -> serde_json::Value {
    let sends_lost = FaultProxy::start(
        home.rpc_url.as_deref().unwrap(),
        FaultPlan::new(1.0, vec![Fault::Close]).only(&["eth_sendRawTransaction"]),
    )
    .unwrap();
    let mut args = vec!["--json".to_owned()];
    args.extend(swap_args(&id.to_string(), amount));
    let run = through(home, &sends_lost, &args);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("never after its deadline"), "{}", run.stderr);
    run.json()
}

/// Moves the node's clock one second past `deadline`, with a block.
fn warp_past(home: &Home, deadline: u64) {
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    block_on(async {
        use alloy::providers::Provider;
        let now = provider.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp;
        let _: serde_json::Value =
            provider.raw_request("evm_increaseTime".into(), (deadline + 1 - now,)).await.unwrap();
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    });
}

/// `sak --rpc-url PROXY ARGS`.
fn through(home: &Home, proxy: &FaultProxy, args: &[String]) -> Run {
    let mut all = vec!["--rpc-url", proxy.url()];
    all.extend(args.iter().map(String::as_str));
    home.sak(&all)
}

/// Swaps of 1 tUSD while a fifth of all requests (reads and sends alike) get 429, 503, a
/// dropped connection before or after the node saw them, or an answer held 2 s. Each swap's exit
/// status is checked against the chain's counter, read directly from the node: 0 spent exactly
/// once, 1 and 2 spent nothing, 3 (signed, outcome unknown) is settled by `sak op status`, which
/// must agree with the chain. `SAK_FAULT_RATE` changes the rate (for the figures of a note).
#[test]
fn every_exit_status_through_a_flaky_endpoint_matches_the_chain() {
    const SWAPS: u64 = 30;
    let rate: f64 = std::env::var("SAK_FAULT_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(0.2);
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let proxy =
        FaultProxy::start(home.rpc_url.as_deref().unwrap(), FaultPlan::flaky(rate, Duration::from_secs(2)))
            .unwrap();
    let unit = U256::from(1_000_000u64);
    let (mut succeeded, mut nothing_moved, mut unknown_included, mut unknown_not, mut mismatches) =
        (0u64, 0u64, 0u64, 0u64, Vec::new());
    for i in 0..SWAPS {
        let before = spent(&home, account, id);
        let mut args = vec!["--json".to_owned()];
        args.extend(swap_args(&id.to_string(), "1"));
        let run = through(&home, &proxy, &args);
        let moved = spent(&home, account, id) - before;
        let doc: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap_or_default();
        match run.code {
            0 if moved == unit && doc["state"] == "included" => succeeded += 1,
            1 | 2 if moved.is_zero() && doc["state"] != "included" => {
                assert!(run.stderr.contains("hint: "), "no hint:\n{}", run.stderr);
                nothing_moved += 1;
            }
            3 => {
                assert_eq!(doc["state"], "unknown", "{}", run.stdout);
                let intent = doc["intent"].as_i64().expect("an unknown outcome names its intent").to_string();
                // Settled without the proxy: what the chain shows now.
                let status = home.sak(&["--json", "op", "status", &intent]);
                let moved = spent(&home, account, id) - before;
                match status.code {
                    0 if moved == unit => unknown_included += 1,
                    3 | 4 if moved.is_zero() => unknown_not += 1,
                    code => {
                        mismatches.push(format!("swap {i}: unknown, then status {code} with {moved} moved"))
                    }
                }
            }
            code => mismatches.push(format!("swap {i}: exit {code} with {moved} moved:\n{}", run.stderr)),
        }
    }
    let stats = proxy.stats();
    eprintln!(
        "flaky endpoint at {rate}: {SWAPS} swaps: {succeeded} succeeded, {nothing_moved} failed with nothing moved, \
         {unknown_included} unknown then included, {unknown_not} unknown then not included, {} mismatches; \
         proxy {stats:?}",
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "exit statuses that do not match the chain: {mismatches:#?}");
    assert!(stats.values().sum::<u64>() > SWAPS * 10, "the proxy saw the swaps' requests: {stats:?}");
    assert!(stats.get("close").copied().unwrap_or(0) > 0, "{stats:?}");
    if rate <= 0.2 {
        assert!(succeeded * 10 >= SWAPS * 7, "only {succeeded} of {SWAPS} swaps succeeded at {rate} faults");
    }
    // Nothing is left in flight, and nothing was charged twice.
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]));
    assert_eq!(spent(&home, account, id), unit * U256::from(succeeded + unknown_included));
}

/// Eight agents swap on one session at once, each 300 tUSD against a 1,000 tUSD cap, over
/// several sessions: exactly three land per session, the others are refused before signing;
/// every process reports its own operation truthfully, none claims another's, none errs, and
/// the chain, the ledger and the outputs agree.
#[test]
fn concurrent_agents_on_one_session_each_get_the_truth() {
    const AGENTS: usize = 8;
    const TRIALS: usize = 3;
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let mut hashes = std::collections::HashSet::new();
    let mut exits = std::collections::BTreeMap::<i32, usize>::new();
    for trial in 0..TRIALS {
        let id = home.trader_session(&format!("bot{trial}"));
        let mut args = vec!["--json".to_owned()];
        args.extend(swap_args(&id.to_string(), "300"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let children: Vec<_> = (0..AGENTS)
            .map(|_| home.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        let runs: Vec<Run> =
            children.into_iter().map(|c| Run::from_output(c.wait_with_output().unwrap())).collect();
        let mut landed = 0;
        for run in &runs {
            *exits.entry(run.code).or_default() += 1;
            match run.code {
                0 => {
                    let doc = run.json();
                    assert_eq!(doc["state"], "included");
                    let hash = doc["user_op_hash"].as_str().unwrap().to_owned();
                    assert!(hashes.insert(hash.clone()), "{hash} claimed by two processes");
                    landed += 1;
                }
                1 => assert!(run.stderr.contains("SpendCapExceeded"), "{}", run.stderr),
                code => panic!("trial {trial}: exit {code}:\n{}", run.stderr),
            }
        }
        assert_eq!(landed, 3, "trial {trial}: {exits:?}");
        assert_eq!(spent(&home, account, id), U256::from(900_000_000u64), "trial {trial}");
    }
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]), "nothing left in flight");
    // Calls that revert (the router's minimum out cannot be met) are caught by the simulation
    // before signing: exit 2, state "failed", nothing signed, nothing in flight.
    let id = home.trader_session("late").to_string();
    let mut args = vec!["--json".to_owned()];
    args.extend(swap_args(&id, "1"));
    *args.last_mut().unwrap() = "1000000".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = home.sak(&args);
    assert_eq!((run.code, &run.json()["state"]), (2, &serde_json::json!("failed")), "{}", run.stderr);
    assert!(run.stderr.contains("revert when simulated, so nothing was signed"), "{}", run.stderr);
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]));
    eprintln!(
        "{AGENTS} agents x {TRIALS} sessions: exits {exits:?}, {} distinct operations landed",
        hashes.len()
    );
}

/// Damaged files in sak's home and a node that lies: each error names the file or the call and
/// says what to do, and nothing on chain or in the ledger changes.
#[test]
fn damaged_files_and_lying_nodes_get_an_error_that_says_what_to_do() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let swap = swap_args(&id.to_string(), "1");
    let swap: Vec<&str> = swap.iter().map(String::as_str).collect();
    home.sak(&swap).ok();
    let data = home.data();
    let ledger = data.join("ledger.sqlite");
    let ledger_bytes = std::fs::read(&ledger).unwrap();

    // Each case: the file, what is written over it, the command, and what the hint must say.
    let revoke = ["session", "revoke", &id.to_string()].map(String::from);
    let revoke: Vec<&str> = revoke.iter().map(String::as_str).collect();
    let cases: [(&str, &[u8], &[&str], &str); 7] = [
        ("keys/session/bot.json", b"{\"address\": \"0x12", &swap, "restore it from your backup"),
        ("keys/owner.json", b"{\"crypto\": {", &revoke, "restore it from your backup"),
        ("state.json", b"garbage", &["session", "list"], "move it aside"),
        ("node.json", b"{\"pid\": ", &["node", "status"], "move it aside"),
        (
            "ledger.sqlite",
            b"not a database at all, not even close to one",
            &swap,
            "the ledger file is damaged",
        ),
        (
            "ledger.sqlite",
            b"not a database at all, not even close to one",
            &["audit"],
            "the ledger file is damaged",
        ),
        ("keys/session/bot.json", b"", &["key", "export", "bot", "--stdout"], "restore it from your backup"),
    ];
    for (file, garbage, args, hint) in cases {
        let path = data.join(file);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, garbage).unwrap();
        let run = home.sak(args).fails(2);
        assert!(run.stderr.contains(hint), "{file} / {args:?}: hint should say `{hint}`:\n{}", run.stderr);
        std::fs::write(&path, good).unwrap();
    }
    assert_eq!(std::fs::read(&ledger).unwrap(), ledger_bytes, "the ledger was left as it was");

    let run =
        home.sak(&["session", "grant", "--key", "bot", "--policy", "/nonexistent/policy.toml"]).fails(2);
    assert!(run.stderr.contains("check the path given to --policy"), "{}", run.stderr);

    // A node whose eth_call answers nothing, or garbage: the error says the answer was wrong.
    let spent_before = spent(&home, account, id);
    for lie in [serde_json::json!("0x"), serde_json::json!(format!("0x{}", "ff".repeat(40)))] {
        let proxy = FaultProxy::start(
            home.rpc_url.as_deref().unwrap(),
            FaultPlan::new(1.0, vec![Fault::Lie(lie.clone())]).only(&["eth_call"]),
        )
        .unwrap();
        for args in [&swap[..], &["session", "show", &id.to_string()][..]] {
            let mut all = vec!["--rpc-url", proxy.url()];
            all.extend_from_slice(args);
            let run = home.sak(&all);
            assert_ne!(run.code, 0, "{lie} / {args:?}: {}", run.stderr);
            assert!(run.stderr.contains("hint: "), "{lie} / {args:?}:\n{}", run.stderr);
            eprintln!("eth_call answers {lie}: sak {}:\n{}", args.join(" "), run.stderr.trim());
        }
        assert!(proxy.stats().get("lie").copied().unwrap_or(0) > 0);
    }
    assert_eq!(spent(&home, account, id), spent_before, "nothing was spent through the lying node");
}

/// `sak op cancel`: an operation whose send was lost (signed, outcome unknown) is made void,
/// by the owner spending its nonce in this home, or by waiting out its deadline with --wait.
/// Nothing is spent either way, and the session goes on; a settled operation is left as it is.
#[test]
fn op_cancel_makes_an_unknown_operation_void_and_says_how() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");

    // The owner's home spends the nonce: void at once.
    let doc = lost_swap(&home, id, "2");
    let intent = doc["intent"].as_i64().unwrap().to_string();
    let run = home.sak(&["--json", "op", "cancel", &intent]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["state"], "failed", "{out:#}");
    assert_eq!(out["how"], "owner", "{out:#}");
    let tx: alloy::primitives::B256 = out["cancelled_by"].as_str().unwrap().parse().unwrap();
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let receipt = block_on(async {
        use alloy::providers::Provider;
        provider.get_transaction_receipt(tx).await.unwrap().unwrap()
    });
    assert!(receipt.status());
    assert_eq!(spent(&home, account, id), U256::ZERO);
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]));
    // Its signed bytes can never validate now: the session's next swap is a new operation.
    home.swap(&id.to_string(), "1", &[]).ok();
    assert_eq!(spent(&home, account, id), U256::from(1_000_000u64));

    // Without the owner key (--wait): unknown until the chain passes the deadline, then void.
    let doc = lost_swap(&home, id, "2");
    let intent = doc["intent"].as_i64().unwrap().to_string();
    let deadline = doc["deadline"].as_u64().unwrap();
    let early = home.sak(&["op", "cancel", &intent, "--wait", "--timeout", "3"]);
    assert_eq!(early.code, 3, "{}", early.stderr);
    assert!(early.stderr.contains("waiting for the chain to pass its deadline"), "{}", early.stderr);
    assert!(early.stderr.contains("it may still land"), "{}", early.stderr);
    // The chain's clock passes the deadline while a cancel waits: it ends the wait.
    let waiting = std::thread::scope(|scope| {
        let waiting =
            scope.spawn(|| home.sak(&["--json", "op", "cancel", &intent, "--wait", "--timeout", "120"]));
        std::thread::sleep(Duration::from_secs(4));
        warp_past(&home, deadline);
        waiting.join().unwrap()
    });
    assert_eq!(waiting.code, 4, "{}", waiting.stderr);
    let out = waiting.json();
    assert_eq!((out["state"].as_str(), out["how"].as_str()), (Some("failed"), Some("deadline")), "{out:#}");
    assert!(out["reason"].as_str().unwrap().contains("deadline"), "{out:#}");
    assert_eq!(spent(&home, account, id), U256::from(1_000_000u64));

    // An operation that was included is reported as it is: nothing is sent.
    let mut swap = vec!["--json".to_owned()];
    swap.extend(swap_args(&id.to_string(), "1"));
    let done = home.sak(&swap.iter().map(String::as_str).collect::<Vec<_>>()).ok().json();
    let out = home.json(&["op", "cancel", done["user_op_hash"].as_str().unwrap()]);
    assert_eq!((out["state"].as_str(), out["how"].as_str()), (Some("included"), None), "{out:#}");
}

/// On a delegated EOA the owner is the account: `sak op cancel` spends the nonce with the EOA's
/// own transaction to the EntryPoint.
#[test]
fn op_cancel_on_a_7702_account_spends_the_nonce_from_the_eoa() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("7702").parse().unwrap();
    let id = home.trader_session("bot");
    let intent = lost_swap(&home, id, "2")["intent"].as_i64().unwrap().to_string();
    let run = home.sak(&["--json", "op", "cancel", &intent]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let out = run.json();
    assert_eq!((out["state"].as_str(), out["how"].as_str()), (Some("failed"), Some("owner")), "{out:#}");
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let tx = block_on(async {
        use alloy::providers::Provider;
        let hash = out["cancelled_by"].as_str().unwrap().parse().unwrap();
        provider.get_transaction_by_hash(hash).await.unwrap().unwrap()
    });
    assert_eq!(
        alloy::consensus::Transaction::to(&tx),
        Some(
            home.node_summary.as_ref().unwrap()["contracts"]["entry_point"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        )
    );
    assert_eq!(tx.inner.signer(), account, "sent by the EOA itself");
    assert_eq!(spent(&home, account, id), U256::ZERO);
    home.swap(&id.to_string(), "1", &[]).ok();
    assert_eq!(spent(&home, account, id), U256::from(1_000_000u64));
}

/// A swap asked for seconds before the session's daily period ends would be valid only until
/// that edge, too soon to land reliably: sak waits past it, says so, and signs in the next
/// period, which is charged.
#[test]
fn a_swap_at_a_period_edge_is_signed_in_the_next_period() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let usd: Address =
        home.node_summary.as_ref().unwrap()["contracts"]["usd"].as_str().unwrap().parse().unwrap();
    let edge = block_on(async {
        use alloy::providers::Provider;
        let sak = SakAccount::new(account, &provider);
        let start = sak.getSession(id as u32).call().await.unwrap().validAfter.to::<u64>();
        let edge = start + 86_400 - 1;
        let _: serde_json::Value =
            provider.raw_request("evm_setNextBlockTimestamp".into(), (edge - 8,)).await.unwrap();
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
        edge
    });
    // A live chain: a block a second, as on a network (anvil mines only when sent something).
    let url = home.rpc_url.clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let miner = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                block_on(async {
                    use alloy::providers::Provider;
                    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
                });
            }
        })
    };
    let run = home.swap(&id.to_string(), "1", &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    miner.join().unwrap();
    let run = run.ok();
    assert!(run.stderr.contains("too soon for an operation to land in it"), "{}", run.stderr);
    block_on(async {
        let spend = SakAccount::new(account, &provider).getSpend(id as u32, usd).call().await.unwrap();
        assert_eq!(spend.window.to::<u32>(), 1, "charged to the period after the edge at {edge}");
        assert_eq!(U256::from(spend.spent), U256::from(1_000_000u64));
    });
    // Mid-period, no wait.
    let run = home.swap(&id.to_string(), "1", &[]).ok();
    assert!(!run.stderr.contains("too soon"), "{}", run.stderr);
}

/// The node restarts: a new chain under the same chain id. The home notices by the genesis
/// block: the old chain's account and sessions are retired (kept in state.json), its operation in
/// flight is marked failed instead of counting against the new chain or being settled there, and
/// the user is told plainly.
#[test]
fn a_new_chain_under_the_same_id_inherits_nothing() {
    let mut home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    home.swap(&id.to_string(), "10", &[]).ok();
    // An operation of the old chain still in flight.
    let in_flight = home.plant_signed_intent(account, id, (0, 1), alloy::primitives::B256::repeat_byte(0x77));

    home.stop_node();
    home.start_node();

    let run = home.sak(&["--json", "session", "list"]);
    assert!(run.stderr.contains("is a new chain under chain id"), "{}", run.stderr);
    assert!(run.stderr.contains("its account and 1 session"), "{}", run.stderr);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.data().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["retired"][0]["sessions"][0]["id"], id, "kept: {state:#}");
    assert!(state["networks"]["local"]["account"].is_null(), "{state:#}");
    // Told once.
    assert!(!home.sak(&["session", "list"]).stderr.contains("new chain"));

    // The old chain's operation can never land: settled as failed, not pending.
    let status = home.sak(&["--json", "op", "status", &in_flight.to_string()]);
    assert_eq!(status.code, 4, "{}", status.stderr);
    let doc = status.json();
    assert_eq!(doc["state"], "failed");
    assert!(doc["reason"].as_str().unwrap().contains("chain reset"), "{doc:#}");
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]));

    // The home starts over on the new chain: a new account, a new session, a swap.
    home.sak(&["node", "fund", "owner", "--eth", "10"]).ok();
    let account: Address =
        home.json(&["account", "create", "--kind", "smart"])["address"].as_str().unwrap().parse().unwrap();
    home.sak(&["node", "fund", "account", "--eth", "5", "--usd", "5000"]).ok();
    let id = home.trader_session("bot2");
    home.swap(&id.to_string(), "1", &[]).ok();
    assert_eq!(spent(&home, account, id), U256::from(1_000_000u64));
}

/// A fork restarted at the same block is a new chain too, though its genesis (the upstream
/// chain's) and even its fork block are the same: the home tells it by the anvil instance, so
/// nothing of the dead fork (account, sessions, an operation in flight) carries over.
#[test]
fn a_restarted_fork_inherits_nothing_from_the_last_one() {
    let upstream = Home::with_node();
    let upstream_url = upstream.rpc_url.clone().unwrap();
    let block = {
        let provider = ProviderBuilder::new().connect_http(upstream_url.parse().unwrap());
        block_on(async {
            use alloy::providers::Provider;
            provider.get_block_number().await.unwrap()
        })
    };
    let block = block.to_string();
    let fork = ["--fork-url", upstream_url.as_str(), "--fork-block-number", block.as_str()];

    let mut home = Home::new();
    home.start_node_with(&fork);
    assert!(!home.node_summary.as_ref().unwrap()["fork"].is_null());
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    home.swap(&id.to_string(), "10", &[]).ok();
    let in_flight = home.plant_signed_intent(account, id, (0, 1), alloy::primitives::B256::repeat_byte(0x78));

    home.stop_node();
    home.start_node_with(&fork);
    let run = home.sak(&["--json", "session", "list"]);
    assert!(run.stderr.contains("is a new chain under chain id"), "{}", run.stderr);
    assert!(run.stderr.contains("its account and 1 session"), "{}", run.stderr);
    let doc = run.json();
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("no account"),
        "the dead fork's account is gone: {doc}"
    );
    let status = home.sak(&["--json", "op", "status", &in_flight.to_string()]);
    assert_eq!(status.code, 4, "{}", status.stderr);
    assert!(status.json()["reason"].as_str().unwrap().contains("chain reset"), "{}", status.stdout);
    // The same fork, still running, stays the same chain.
    assert!(!home.sak(&["session", "list"]).stderr.contains("new chain"));
}

/// A run that waits for another operation on its session's lane says so while it waits, then
/// goes on: here the test itself holds the lane's lock for a few seconds.
#[test]
fn a_run_waiting_for_its_sessions_lane_says_so() {
    use sak_signer::ledger::{LaneId, Ledger, SqliteLedger};
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    home.swap(&id.to_string(), "1", &[]).ok();
    let ledger = SqliteLedger::open(&home.data().join("ledger.sqlite")).unwrap();
    let lane = LaneId {
        chain_id: home.node_summary.as_ref().unwrap()["chain_id"].as_u64().unwrap(),
        account,
        nonce_key: U256::from(sak_userop::session_nonce_key(id as u32, 0)),
    };
    let lock = ledger.try_lock_lane(&lane).unwrap().expect("the lane is free");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(4));
        drop(lock);
    });
    let run = home.swap(&id.to_string(), "1", &[]).ok();
    release.join().unwrap();
    assert!(
        run.stderr.contains(&format!("waiting for another operation on session #{id}'s lane to settle")),
        "{}",
        run.stderr
    );
    assert_eq!(spent(&home, account, id), U256::from(2_000_000u64));
    // Another lane of the session does not wait for this one.
    let lock = ledger.try_lock_lane(&lane).unwrap().unwrap();
    let mut on_lane_1 = swap_args(&id.to_string(), "1");
    on_lane_1.extend(["--lane".to_owned(), "1".to_owned()]);
    let run = home.sak(&on_lane_1.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert!(!run.stderr.contains("waiting for another operation"), "{}", run.stderr);
    drop(lock);
    assert_eq!(spent(&home, account, id), U256::from(3_000_000u64));
    // --json and --quiet keep stderr for errors.
    let lock = ledger.try_lock_lane(&lane).unwrap().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        drop(lock);
    });
    let run = home.swap(&id.to_string(), "1", &["--quiet"]).ok();
    release.join().unwrap();
    assert!(!run.stderr.contains("waiting"), "{}", run.stderr);
}

/// With `confirmations = 3` on the network, a swap (and an owner transaction) is reported
/// included only once its block is three deep: here another process mines the blocks.
#[test]
fn included_means_at_the_networks_confirmation_depth() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let config = home.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen("[networks.local]\n", "[networks.local]\nconfirmations = 3\n", 1);
    assert!(text.contains("confirmations = 3"), "{text}");
    std::fs::write(&config, text).unwrap();

    let url = home.rpc_url.clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let miner = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
            let mut mined = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(700));
                block_on(async {
                    use alloy::providers::Provider;
                    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
                });
                mined += 1;
            }
            mined
        })
    };
    let id = home.trader_session("bot");
    let done = home.swap(&id.to_string(), "1", &["--json"]).ok().json();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mined = miner.join().unwrap();
    let included = done["block"].as_u64().unwrap();
    let latest = block_on(async {
        use alloy::providers::Provider;
        ProviderBuilder::new()
            .connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap())
            .get_block_number()
            .await
            .unwrap()
    });
    assert!(latest >= included + 2, "reported at block {included} with the chain at {latest}");
    assert!(mined >= 2, "{mined}");
}

/// The node mines the operation, but the answer to the send is lost and no receipt can be had
/// (eth_getTransactionReceipt down; two chained proxies): the swap says "unknown" (exit 3, with
/// the intent and hash), never "failed". `sak op status` then settles it from the chain:
/// included, once.
#[test]
fn a_lost_answer_is_reported_unknown_and_settled_later_never_as_failed() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let (_receipts_down, answers_lost) = lost_answers(&home);
    let mut args = vec!["--json".to_owned()];
    args.extend(swap_args(&id.to_string(), "2"));
    let run = through(&home, &answers_lost, &args);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["state"], "unknown");
    assert!(run.stderr.contains("do not repeat the operation"), "{}", run.stderr);
    let intent = doc["intent"].as_i64().unwrap().to_string();
    let hash = doc["user_op_hash"].as_str().unwrap().to_owned();
    // It did land.
    assert_eq!(spent(&home, account, id), U256::from(2_000_000u64));
    assert_eq!(home.json(&["op", "list"])[0]["intent"].to_string(), intent);

    let settled = home.json(&["op", "status", &intent]);
    assert_eq!(
        (settled["state"].as_str(), settled["user_op_hash"].as_str()),
        (Some("included"), Some(&*hash))
    );
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]));
    let audit = home.json(&["audit"]);
    let rows: Vec<_> = audit["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["user_op_hash"] == hash.as_str())
        .collect();
    assert_eq!(rows.len(), 1, "one audit row for the op: {audit:#}");
    assert_eq!(rows[0]["outcome"], "included");
    // The next swap moves only its own amount: nothing is resent.
    home.swap(&id.to_string(), "1", &[]).ok();
    assert_eq!(spent(&home, account, id), U256::from(3_000_000u64));
    let said: Vec<&str> =
        run.stderr.lines().filter(|l| l.starts_with("error:") || l.starts_with("hint:")).collect();
    eprintln!("lost answer: exit 3, then `sak op status` said included; the swap said:\n{}", said.join("\n"));
}

/// An operation that never reached the chain (every send of it lost before the node) is
/// reported unknown (exit 3) with its signed deadline, stays unknown while it could still land,
/// and is settled failed for certain once the chain's clock is past that deadline: nothing
/// moved, and the next swap takes the nonce and moves only its own amount.
#[test]
fn an_op_that_never_landed_is_failed_for_certain_once_its_deadline_passes() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let doc = lost_swap(&home, id, "2");
    assert_eq!(doc["state"], "unknown");
    let deadline = doc["deadline"].as_u64().expect("the signed deadline");
    let intent = doc["intent"].as_i64().unwrap().to_string();
    assert_eq!(spent(&home, account, id), U256::ZERO);

    // Before the deadline it may still land: unknown, and it keeps its reservation.
    let early = home.sak(&["--json", "op", "status", &intent]);
    assert_eq!(early.code, 3, "{}", early.stderr);

    // The chain's clock passes the deadline.
    warp_past(&home, deadline);
    let settled = home.sak(&["--json", "op", "status", &intent]);
    assert_eq!(settled.code, 4, "{}", settled.stderr);
    let doc = settled.json();
    assert_eq!(doc["state"], "failed");
    assert!(doc["reason"].as_str().unwrap().contains("deadline"), "{doc:#}");
    assert_eq!(home.json(&["op", "list"]), serde_json::json!([]));

    home.swap(&id.to_string(), "1", &[]).ok();
    assert_eq!(spent(&home, account, id), U256::from(1_000_000u64));
}

/// `method(params)` on the node; its answer.
fn node_rpc(home: &Home, method: &str, params: serde_json::Value) -> serde_json::Value {
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    block_on(async {
        use alloy::providers::Provider;
        provider.raw_request(method.to_owned().into(), params).await.unwrap()
    })
}

/// The hashes of the transactions waiting in the node's pool.
fn pool(home: &Home) -> Vec<String> {
    let content = node_rpc(home, "txpool_content", serde_json::json!([]));
    let mut out = Vec::new();
    for by_nonce in content["pending"].as_object().into_iter().flat_map(|m| m.values()) {
        for tx in by_nonce.as_object().into_iter().flat_map(|m| m.values()) {
            out.push(tx["hash"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// A stuck operation (its bundle transaction waits in the pool: the node does not mine) is
/// replaced by `sak op bump`: the same calls at the same nonce and deadline, higher fees. With
/// the same relayer the replacement takes the original's place in the pool and lands; spent
/// once. With another relayer both wait, and when the original lands instead, `sak op status`
/// follows it: included, the one that landed named, the other listed in `replaces`, spent once,
/// and the audit says which one landed.
#[test]
fn a_stuck_operation_is_replaced_with_a_fee_bump_and_status_follows_whichever_lands() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let automine = |on: bool| node_rpc(&home, "evm_setAutomine", serde_json::json!([on]));
    let stuck = |amount: &str| {
        automine(false);
        let mut args = vec!["--json".to_owned()];
        args.extend(swap_args(&id.to_string(), amount));
        args.extend(["--timeout".to_owned(), "2".to_owned()]);
        let run = home.sak(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(run.stderr.contains("sak op bump"), "the hint names the bump: {}", run.stderr);
        let doc = run.json();
        let waiting = pool(&home);
        assert_eq!(waiting.len(), 1, "its bundle transaction waits in the pool: {waiting:?}");
        (
            doc["intent"].as_i64().unwrap().to_string(),
            doc["user_op_hash"].as_str().unwrap().to_owned(),
            waiting,
        )
    };

    // The same relayer: the replacement takes the stuck transaction's place.
    let (intent, original, waiting) = stuck("2");
    assert_eq!(home.sak(&["op", "status", &intent]).code, 3);
    // (Turning automine on would mine the stuck transaction: a block is mined once the pool
    // holds the replacement instead.)
    let run = std::thread::scope(|scope| {
        let bump = scope.spawn(|| home.sak(&["--json", "op", "bump", &intent]));
        let started = std::time::Instant::now();
        while pool(&home) == waiting && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        node_rpc(&home, "evm_mine", serde_json::json!([]));
        bump.join().unwrap()
    });
    automine(true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bumped = run.json();
    assert_eq!(bumped["state"], "included", "{bumped:#}");
    let replacement = bumped["user_op_hash"].as_str().unwrap().to_owned();
    assert_ne!(replacement, original);
    assert_eq!(bumped["replaces"], serde_json::json!([original]), "{bumped:#}");
    assert_eq!(spent(&home, account, id), U256::from(2_000_000u64));
    let gone = node_rpc(&home, "eth_getTransactionByHash", serde_json::json!([waiting[0]]));
    assert!(gone.is_null(), "the stuck transaction was replaced in the pool: {gone}");
    // The original's hash finds the intent, and what landed.
    let by_old = home.json(&["op", "status", &original]);
    assert_eq!(
        (by_old["state"].as_str(), by_old["user_op_hash"].as_str()),
        (Some("included"), Some(&*replacement))
    );

    // Another relayer: both wait; the original lands.
    let (intent, original, waiting) = stuck("3");
    let relayer = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"; // anvil dev key 1
    let mut cmd = home.command(&["--json", "op", "bump", &intent, "--percent", "50", "--timeout", "2"]);
    let run = Run::from_output(cmd.env("SAK_RELAYER_KEY", relayer).output().unwrap());
    assert_eq!(run.code, 3, "{}", run.stderr);
    let replacement = run.json()["user_op_hash"].as_str().unwrap().to_owned();
    assert_ne!(replacement, original, "{}", run.stderr);
    let both = pool(&home);
    assert_eq!(both.len(), 2, "the original and its replacement wait: {both:?}");
    let theirs = both.iter().find(|h| **h != waiting[0]).unwrap();
    node_rpc(&home, "anvil_dropTransaction", serde_json::json!([theirs]));
    node_rpc(&home, "evm_mine", serde_json::json!([]));
    automine(true);
    let settled = home.json(&["op", "status", &replacement]);
    assert_eq!(settled["state"], "included", "{settled:#}");
    assert_eq!(settled["user_op_hash"].as_str(), Some(&*original), "{settled:#}");
    assert_eq!(settled["replaces"], serde_json::json!([replacement]), "{settled:#}");
    assert_eq!(spent(&home, account, id), U256::from(5_000_000u64));
    let audit = home.json(&["audit"]);
    let outcome_of = |hash: &str| {
        let rows: Vec<_> =
            audit["decisions"].as_array().unwrap().iter().filter(|d| d["user_op_hash"] == hash).collect();
        assert_eq!(rows.len(), 1, "one audit row for {hash}: {audit:#}");
        rows[0]["outcome"].as_str().unwrap().to_owned()
    };
    assert_eq!(outcome_of(&original), "included");
    assert!(outcome_of(&replacement).starts_with("replaced"), "{audit:#}");

    // A settled operation is not bumped: nothing is signed.
    let again = home.sak(&["--json", "op", "bump", &intent]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["user_op_hash"].as_str(), Some(&*original));
    assert!(pool(&home).is_empty());

    // A session whose fee cap the original already pays in full (1 gwei: the fee is lowered to
    // it) cannot be bumped: refused before signing, and the original stays as it was.
    home.sak(&["key", "new", "--name", "capped"]).ok();
    let capped = home.json(&[
        "session",
        "grant",
        "--key",
        "capped",
        "--role",
        "trader",
        "--cap",
        "tUSD:1000/1d",
        "--expires",
        "7d",
        "--max-fee-per-gas",
        "1gwei",
    ])["id"]
        .as_u64()
        .unwrap();
    automine(false);
    let mut args = vec!["--json".to_owned()];
    args.extend(swap_args(&capped.to_string(), "1"));
    args.extend(["--timeout".to_owned(), "1".to_owned()]);
    let run = home.sak(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 3, "{}", run.stderr);
    let (intent, original) = (
        run.json()["intent"].as_i64().unwrap().to_string(),
        run.json()["user_op_hash"].as_str().unwrap().to_owned(),
    );
    let refused = home.sak(&["--json", "op", "bump", &intent]).fails(1).json();
    assert_eq!(refused["error"]["refusal"]["name"], "FeePerGasAboveCap", "{refused:#}");
    let listed = home.json(&["op", "list"]);
    assert_eq!(listed[0]["user_op_hash"].as_str(), Some(&*original), "{listed:#}");
    assert!(listed[0].get("replaces").is_none(), "{listed:#}");
    node_rpc(&home, "evm_mine", serde_json::json!([]));
    automine(true);
    assert_eq!(home.json(&["op", "status", &intent])["state"], "included");
}

/// An operation that landed while nobody waits for it any more (its worker gave up: outcome
/// unknown, the ledger still has it in flight) is counted once: the chain's counters hold it,
/// so the ledger does not count it again. A worker on another lane may swap what truly remains
/// (not refused for a cap the chain would allow), and no more (refused before signing).
#[test]
fn a_landed_operation_not_yet_settled_counts_once_against_the_cap() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let swap = |lane: &str, extra: &[&str]| {
        let mut args = vec!["--json".to_owned()];
        args.extend(swap_args(&id.to_string(), "400"));
        args.extend(["--lane", lane].iter().chain(extra).map(|s| s.to_string()));
        home.sak(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    node_rpc(&home, "evm_setAutomine", serde_json::json!([false]));
    let first = swap("1", &["--timeout", "2"]);
    assert_eq!(first.code, 3, "{}", first.stderr);
    let intent = first.json()["intent"].as_i64().unwrap().to_string();
    node_rpc(&home, "evm_mine", serde_json::json!([]));
    node_rpc(&home, "evm_setAutomine", serde_json::json!([true]));
    assert_eq!(spent(&home, account, id), U256::from(400_000_000u64));
    assert_eq!(home.json(&["op", "list"])[0]["state"], "submitted", "nobody settled it yet");

    let second = swap("2", &[]);
    assert_eq!(second.code, 0, "600 tUSD remain: {}", second.stderr);
    let third = swap("3", &[]);
    assert_eq!(third.code, 1, "{}", third.stderr);
    assert!(
        third.stderr.contains("before signing") && third.stderr.contains("200 tUSD remains"),
        "{}",
        third.stderr
    );
    assert_eq!(spent(&home, account, id), U256::from(800_000_000u64));
    assert_eq!(home.json(&["op", "status", &intent])["state"], "included");
}

/// A reorg takes an included operation back (anvil's `anvil_reorg`: its block replaced by an
/// empty one). Its signed operation may land again (anyone may send it until its nonce is used
/// or its deadline passes), so `sak op status` no longer says included and the next decision
/// counts it again: a swap of the whole cap is refused before signing, one of what remains
/// beside it lands and takes its nonce, and then it is failed for certain. Spent once.
#[test]
fn an_operation_a_reorg_takes_back_is_counted_again_and_settled_anew() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let session = id.to_string();
    home.swap(&session, "400", &[]).ok();
    let audit = home.json(&["audit"]);
    let intent = audit["decisions"][0]["user_op_hash"].as_str().unwrap().to_owned();
    assert_eq!(spent(&home, account, id), U256::from(400_000_000u64));

    node_rpc(&home, "anvil_reorg", serde_json::json!([1, []]));
    assert_eq!(spent(&home, account, id), U256::ZERO, "the reorg took the swap back");
    let status = home.sak(&["--json", "op", "status", &intent]);
    assert_eq!(status.code, 3, "unknown again: it may land again: {}", status.stderr);
    assert_eq!(status.json()["state"], "submitted", "{}", status.stdout);

    let whole = home.swap(&session, "1000", &[]);
    assert_eq!(whole.code, 1, "{}", whole.stderr);
    assert!(
        whole.stderr.contains("before signing") && whole.stderr.contains("600 tUSD remains"),
        "{}",
        whole.stderr
    );
    home.swap(&session, "600", &[]).ok();
    assert_eq!(spent(&home, account, id), U256::from(600_000_000u64));
    let status = home.sak(&["--json", "op", "status", &intent]);
    assert_eq!(status.json()["state"], "failed", "its nonce went to the next swap: {}", status.stdout);
}

/// Three workers of one session, each on a lane of its own with a relayer of its own, swap 400
/// tUSD at once against a cap of 1,000: none waits for another's lane, two land, and the third
/// is refused before signing (the ledger counts the others' reservations across lanes). Each
/// lane's EntryPoint nonce moved only for its own operation.
#[test]
fn workers_on_lanes_of_their_own_sign_at_once_and_stay_within_the_caps_together() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..=3)
            .map(|lane: usize| {
                let home = &home;
                scope.spawn(move || {
                    let key = home.node_summary.as_ref().unwrap()["dev_accounts"][4 + lane]["private_key"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let mut args = swap_args(&id.to_string(), "400");
                    args.extend(["--lane".to_owned(), lane.to_string()]);
                    let mut cmd = home.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
                    Run::from_output(cmd.env("SAK_RELAYER_KEY", key).output().unwrap())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    codes.sort_unstable();
    assert_eq!(codes, vec![0, 0, 1], "{:#?}", runs.iter().map(|r| &r.stderr).collect::<Vec<_>>());
    assert!(
        runs.iter().all(|r| !r.stderr.contains("waiting for another operation")),
        "a worker waited for another's lane"
    );
    let refused = &runs.iter().find(|r| r.code == 1).unwrap().stderr;
    assert!(refused.contains("SpendCapExceeded") && refused.contains("before signing"), "{refused}");
    assert_eq!(spent(&home, account, id), U256::from(800_000_000u64));
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let entry_point: Address =
        home.node_summary.as_ref().unwrap()["contracts"]["entry_point"].as_str().unwrap().parse().unwrap();
    let used: u64 = (1..=3u128)
        .map(|lane| {
            let key = sak_userop::session_nonce_key(id as u32, lane);
            block_on(async {
                let nonce = sak_contracts::IEntryPoint::new(entry_point, &provider)
                    .getNonce(account, key)
                    .call()
                    .await
                    .unwrap();
                (nonce & U256::from(u64::MAX)).to::<u64>()
            })
        })
        .sum();
    assert_eq!(used, 2, "one nonce used in each of the two lanes whose operation landed");
}
