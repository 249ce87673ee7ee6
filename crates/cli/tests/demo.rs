//! `sak demo` as a user runs it (the built binary, its own anvil on a free port): exit code 0,
//! the JSON document shows every outcome the demo exists to show, and no secret is ever printed.

use serde_json::Value;
use std::{
    collections::HashSet,
    process::{Command, Output},
    time::{Duration, Instant},
};

const SAK: &str = env!("CARGO_BIN_EXE_sak");

struct Run {
    out: Output,
    json: Value,
    took: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

/// `sak demo --json`, progress left on (stderr), so both streams can be checked.
fn demo_json() -> Run {
    let started = Instant::now();
    let out = Command::new(SAK).args(["demo", "--json"]).output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let run = Run { out, json, took };
    assert_eq!(run.out.status.code(), Some(0), "exit code\nstderr:\n{}", run.stderr());
    run
}

fn num(v: &Value) -> u128 {
    v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")).parse().unwrap()
}

fn steps<'a>(json: &'a Value, pred: impl Fn(&Value) -> bool + 'a) -> Vec<&'a Value> {
    json["steps"].as_array().unwrap().iter().filter(|s| pred(s)).collect()
}

#[test]
fn demo_swaps_within_the_cap_is_refused_locally_on_chain_and_after_revoke() {
    let run = demo_json();
    let j = &run.json;
    assert_eq!(j["ok"], true);
    assert!(j["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{}", j["checks"]);
    assert!(run.took < Duration::from_secs(120), "the demo took {:?}", run.took);
    assert_ne!(j["chain"]["rpc_url"], "http://127.0.0.1:8545", "never the fixed port");

    let cap = num(&j["session"]["cap_per_period"]);
    assert_eq!(cap, 1_000_000_000, "1,000 tUSD a day");
    assert_eq!(j["session"]["period_s"], 86_400);
    assert_eq!(j["session"]["router"], j["addresses"]["contracts"]["uniswap_v2_router"]);
    assert_eq!(j["addresses"]["account"], j["addresses"]["account_counterfactual"]);
    let delegate = j["addresses"]["contracts"]["sak_7702_account"].as_str().unwrap();
    assert_eq!(
        j["addresses"]["eoa_7702_code"].as_str().unwrap().to_lowercase(),
        format!("0xef0100{}", &delegate[2..]).to_lowercase()
    );

    // Allowed swaps: tUSD left the account, TKN arrived, the account paid gas.
    let allowed = steps(j, |s| s["actor"] == "bot" && s["result"] == "allowed");
    assert!(!allowed.is_empty(), "at least one swap allowed");
    for s in &allowed {
        assert!(num(&s["tusd_spent"]) > 0 && num(&s["tkn_received"]) > 0 && num(&s["gas_wei"]) > 0, "{s}");
        assert!(s["user_op_hash"].is_string() && !s["tx_hashes"].as_array().unwrap().is_empty(), "{s}");
    }
    let spent: u128 = allowed.iter().map(|s| num(&s["tusd_spent"])).sum();
    assert!(spent <= cap, "spent {spent} > cap {cap}");
    assert_eq!(num(&j["totals"]["tusd_spent"]), spent);

    // The cap, refused before signing, with what remains and when it renews.
    let local = steps(j, |s| s["error"] == "SpendCapExceeded" && s["decided_by"] == "local-policy");
    assert_eq!(local.len(), 1, "one local SpendCapExceeded");
    assert_eq!(num(&local[0]["remaining"]), cap - spent);
    assert_eq!(local[0]["renews_at"], j["session"]["renews_at"]);
    assert!(
        num(&local[0]["remaining"]) < num(&j["bot"]["buy_tusd"]),
        "refused because the next buy did not fit"
    );

    // The same operation forced past the local check: the contracts refuse it, nothing moves.
    let chain = steps(j, |s| s["error"] == "SpendCapExceeded" && s["decided_by"] == "chain");
    assert_eq!(chain.len(), 1, "one chain SpendCapExceeded");
    for s in local.iter().chain(&chain) {
        assert_eq!((num(&s["tusd_spent"]), num(&s["tkn_received"]), num(&s["gas_wei"])), (0, 0, 0), "{s}");
    }

    // Revoked: the bot is refused, locally and by the chain.
    let all = j["steps"].as_array().unwrap();
    let revoke = all.iter().position(|s| s["phase"] == "revoke").expect("a revoke step");
    let after: Vec<&Value> = all[revoke..].iter().filter(|s| s["error"] == "SessionNotActive").collect();
    let by: HashSet<&str> = after.iter().map(|s| s["decided_by"].as_str().unwrap()).collect();
    assert_eq!(by, HashSet::from(["local-policy", "chain"]), "SessionNotActive after revoke");
    assert!(all[revoke..].iter().all(|s| s["result"] != "allowed"), "nothing allowed after revoke");

    // Isolation: WETH untouched, tUSD beyond the cap untouched, ETH only the session's gas.
    let asset = |name: &str| {
        j["isolation"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["asset"].as_str().unwrap().starts_with(name))
            .unwrap()
    };
    let weth = asset("WETH");
    assert_eq!(weth["before"], weth["after"]);
    assert!(num(&weth["before"]) > 0, "the account held WETH");
    let usd = asset("tUSD");
    assert_eq!(num(&usd["before"]) - num(&usd["after"]), spent);
    assert!(num(&usd["after"]) >= num(&usd["before"]) - cap, "tUSD beyond the cap untouched");
    let eth = asset("ETH");
    let session_gas: u128 = allowed.iter().map(|s| num(&s["gas_wei"])).sum();
    assert_eq!(num(&eth["before"]) - num(&eth["after"]), session_gas, "ETH moved only for the session's gas");
    let tkn = asset("TKN");
    assert_eq!(num(&tkn["after"]) - num(&tkn["before"]), num(&j["totals"]["tkn_received"]));

    // Every session decision is in the audit log.
    let bot_steps = steps(j, |s| s["actor"] == "bot").len();
    assert_eq!(j["audit_log"]["decisions"].as_u64().unwrap() as usize, bot_steps);

    // Progress was visible on stderr, step by step.
    let stderr = run.stderr();
    for n in 1..=6 {
        assert!(stderr.contains(&format!("[{n}/6]")), "step {n} missing from stderr:\n{stderr}");
    }
    assert!(stderr.contains("role = \"trader\""), "the policy is printed");
}

/// Maximal runs of 64 or more hex digits (with or without `0x`: the `x` ends a run) that are not
/// one of `allowed` (lowercase, without `0x`).
fn long_hex_runs(text: &str, allowed: &HashSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut run = String::new();
    for ch in text.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
            continue;
        }
        if run.len() >= 64 && !allowed.contains(&run.to_lowercase()) {
            found.push(run.clone());
        }
        run.clear();
    }
    found
}

#[test]
fn the_secret_scanner_flags_keys_and_passes_hashes() {
    let hash = "ab".repeat(32);
    let allowed = HashSet::from([hash.clone()]);
    assert!(long_hex_runs(&format!("tx 0x{hash} and {}", hash.to_uppercase()), &allowed).is_empty());
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    assert_eq!(long_hex_runs(&format!("key {key}."), &allowed), [&key[2..]]);
    assert_eq!(long_hex_runs(&format!("{hash}00"), &allowed).len(), 1, "a hash glued to more hex");
}

#[test]
fn demo_never_prints_a_secret() {
    let run = demo_json();
    let j = &run.json;
    let mut allowed = HashSet::new();
    for list in ["tx_hashes", "user_op_hashes"] {
        for h in j[list].as_array().unwrap() {
            let h = h.as_str().unwrap();
            assert!(h.len() == 66 && h.starts_with("0x"), "{h}");
            allowed.insert(h[2..].to_lowercase());
        }
    }
    assert!(!allowed.is_empty());
    let (stdout, stderr) = (run.stdout(), run.stderr());
    assert_eq!(long_hex_runs(&stdout, &allowed), Vec::<String>::new(), "stdout");
    assert_eq!(long_hex_runs(&stderr, &allowed), Vec::<String>::new(), "stderr:\n{stderr}");
    // The session key is shown by its address only.
    let key = j["addresses"]["session_key"].as_str().unwrap();
    assert!(stderr.to_lowercase().contains(&key[2..].to_lowercase()), "the session key's address is shown");
}

#[test]
fn demo_text_writes_its_report_to_stdout_only_and_v_adds_the_logs() {
    let run =
        |extra: &[&str]| Command::new(SAK).arg("demo").args(extra).env_remove("RUST_LOG").output().unwrap();
    let quiet = run(&[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&quiet.stdout), String::from_utf8_lossy(&quiet.stderr));
    assert_eq!(quiet.status.code(), Some(0), "stderr:\n{stderr}");
    assert_eq!(stderr, "", "nothing but the report reaches the terminal");
    for part in ["[1/6]", "[6/6]", "sak demo: ran as expected", "Checks: 12/12 passed"] {
        assert!(stdout.contains(part), "`{part}` missing from the report:\n{stdout}");
    }
    assert!(!stdout.contains(" INFO "), "no log lines in the report:\n{stdout}");

    let verbose = run(&["-v"]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert_eq!(verbose.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("INFO") && stderr.contains("deployed SakAccountFactory at"),
        "-v logs:\n{stderr}"
    );
    assert!(!String::from_utf8_lossy(&verbose.stdout).contains("INFO"), "logs stay on stderr");
}
