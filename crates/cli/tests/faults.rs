//! `sak` against what goes wrong around it: a flaky or lying RPC endpoint (the test kit's fault
//! proxy between sak and anvil) and damaged files in its home. Every error says what to do, and
//! a flaky endpoint does not stop an agent.

mod common;

use alloy::{
    primitives::{Address, U256},
    providers::ProviderBuilder,
};
use common::{Home, Run, block_on, swap_args};
use sak_contracts::SakAccount;
use sak_testkit::{Fault, FaultPlan, FaultProxy};
use std::time::Duration;

fn spent(home: &Home, account: Address, id: u64) -> U256 {
    let usd: Address =
        home.node_summary.as_ref().unwrap()["contracts"]["usd"].as_str().unwrap().parse().unwrap();
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    block_on(async {
        U256::from(SakAccount::new(account, provider).getSpend(id as u32, usd).call().await.unwrap().spent)
    })
}

/// `sak --rpc-url PROXY ARGS`.
fn through(home: &Home, proxy: &FaultProxy, args: &[String]) -> Run {
    let mut all = vec!["--rpc-url", proxy.url()];
    all.extend(args.iter().map(String::as_str));
    home.sak(&all)
}

/// Swaps of 1 tUSD while a fifth of all requests (reads and sends alike) get 429, 503, a
/// dropped connection before or after the node saw them, or an answer held 2 s. Reads and
/// sends retry, so most swaps go through; none is charged twice.
#[test]
fn swaps_go_through_a_flaky_endpoint() {
    const SWAPS: u64 = 30;
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let proxy =
        FaultProxy::start(home.rpc_url.as_deref().unwrap(), FaultPlan::flaky(0.2, Duration::from_secs(2)))
            .unwrap();
    let mut succeeded = 0u64;
    let mut exits = std::collections::BTreeMap::<i32, u64>::new();
    for _ in 0..SWAPS {
        let run = through(&home, &proxy, &swap_args(&id.to_string(), "1"));
        *exits.entry(run.code).or_default() += 1;
        if run.code == 0 {
            succeeded += 1;
        } else {
            assert!(run.stderr.contains("hint: "), "no hint:\n{}", run.stderr);
        }
    }
    let moved = spent(&home, account, id) / U256::from(1_000_000u64);
    let stats = proxy.stats();
    eprintln!(
        "flaky endpoint at 20%: {SWAPS} swaps, {succeeded} succeeded, exits {exits:?}, {moved} tUSD charged on chain; \
         proxy {stats:?}"
    );
    assert!(stats.values().sum::<u64>() > SWAPS * 10, "the proxy saw the swaps' requests: {stats:?}");
    assert!(stats.get("close").copied().unwrap_or(0) > 0, "{stats:?}");
    assert!(succeeded * 10 >= SWAPS * 7, "only {succeeded} of {SWAPS} swaps succeeded at 20% faults");
    // Every success is on chain, and nothing was charged twice (one swap, at most 1 tUSD).
    assert!(
        moved >= U256::from(succeeded) && moved <= U256::from(SWAPS),
        "{moved} tUSD for {succeeded} successes"
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
