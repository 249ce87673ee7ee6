//! `sak session verify` as a user runs it: on a `sak node up` chain, verify forks that chain and
//! proves each case there; the real chain, state.json and the home's files stay as they were.

mod common;

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use common::Home;
use sak_contracts::{IEntryPoint, MockERC20, SakAccount};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

/// The cases of an active session, in the order verify prints them, with what each must show.
const CASES: [(&str, &str); 7] = [
    ("allowed", "success"),
    ("over-cap", "SpendCapExceeded"),
    ("foreign-target", "CallNotPermitted"),
    ("wrong-selector", "CallNotPermitted"),
    ("after-expiry", "ClockOutsideSession"),
    ("after-revoke", "SessionNotActive"),
    ("isolation", "as the policy allows"),
];

/// Reads and anvil calls on the home's real chain.
struct RealChain {
    rt: tokio::runtime::Runtime,
    provider: DynProvider,
    contracts: Value,
}

impl RealChain {
    fn of(home: &Home) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = home.rpc_url.as_deref().unwrap().parse().unwrap();
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let contracts = home.node_summary.as_ref().unwrap()["contracts"].clone();
        Self { rt, provider, contracts }
    }

    fn contract(&self, name: &str) -> Address {
        self.contracts[name].as_str().unwrap().parse().unwrap()
    }

    fn rpc(&self, method: &'static str, params: Value) -> Value {
        self.rt.block_on(self.provider.raw_request(method.into(), params)).unwrap()
    }

    fn block_number(&self) -> u64 {
        self.rt.block_on(self.provider.get_block_number()).unwrap()
    }

    /// ETH (balance + EntryPoint deposit), tUSD, TKN and WETH of `account`.
    fn holdings(&self, account: Address) -> Vec<U256> {
        self.rt.block_on(async {
            let deposit = IEntryPoint::new(self.contract("entry_point"), &self.provider)
                .balanceOf(account)
                .call()
                .await
                .unwrap();
            let mut out = vec![self.provider.get_balance(account).await.unwrap() + deposit];
            for token in ["usd", "tkn", "weth"] {
                let t = MockERC20::new(self.contract(token), &self.provider);
                out.push(t.balanceOf(account).call().await.unwrap());
            }
            out
        })
    }

    /// The session's tUSD spend counter and its gas and operation counters, as stored.
    fn counters(&self, account: Address, id: u32) -> (U256, U256, u64) {
        self.rt.block_on(async {
            let a = SakAccount::new(account, &self.provider);
            let spend = a.getSpend(id, self.contract("usd")).call().await.unwrap();
            let usage = a.getUsage(id).call().await.unwrap();
            (U256::from(spend.spent), U256::from(usage.gasSpent), usage.opsUsed.to::<u64>())
        })
    }

    /// The owner revokes session `id` (impersonated: this is the test's anvil).
    fn revoke(&self, account: Address, id: u32) {
        let owner =
            self.rt.block_on(SakAccount::new(account, &self.provider).owner().call().into_future()).unwrap();
        self.rpc("anvil_impersonateAccount", serde_json::json!([owner]));
        let call = SakAccount::revokeSessionCall { id };
        let data = alloy::sol_types::SolCall::abi_encode(&call);
        let tx = serde_json::json!([{ "from": owner, "to": account, "data": alloy::primitives::Bytes::from(data) }]);
        let hash = self.rpc("eth_sendTransaction", tx);
        // Automine answers before the receipt is always readable on a loaded machine: wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let receipt = loop {
            let receipt = self.rpc("eth_getTransactionReceipt", serde_json::json!([hash]));
            if !receipt.is_null() || std::time::Instant::now() > deadline {
                break receipt;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert_eq!(receipt["status"], "0x1", "revokeSession reverted");
        self.rpc("anvil_stopImpersonatingAccount", serde_json::json!([owner]));
    }
}

/// A process that exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Every file under `dir` with its contents: what verify must leave as it was.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

fn assert_every_case_passed(doc: &Value) {
    let cases = doc["cases"].as_array().unwrap();
    let seen: Vec<(&str, &str)> =
        cases.iter().map(|c| (c["case"].as_str().unwrap(), c["expected"].as_str().unwrap())).collect();
    assert_eq!(seen, CASES, "{doc:#}");
    for c in cases {
        assert_eq!(c["result"], "pass", "{c:#}");
        assert_eq!(c["pass"], true, "{c:#}");
    }
    for (c, (_, expected)) in cases.iter().zip(CASES).skip(1).take(5) {
        assert_eq!(c["observed"], expected, "refused by the contracts with the right error: {c:#}");
        assert!(c["tx"].is_null(), "a refused operation sends nothing: {c:#}");
    }
    assert!(
        cases[0]["tx"].as_str().is_some_and(|t| t.len() == 66),
        "the allowed operation was mined on the fork"
    );
    assert_eq!(doc["ok"], true);
}

#[test]
fn a_trader_session_passes_every_case_and_the_real_chain_is_untouched() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let chain = RealChain::of(&home);
    let (block, holdings, counters) =
        (chain.block_number(), chain.holdings(account), chain.counters(account, id as u32));
    let before = files(home.path());

    let started = Instant::now();
    let run = home.sak(&["--json", "session", "verify", &id.to_string()]).ok();
    let doc = run.json();
    assert_every_case_passed(&doc);
    assert_eq!(doc["status"], "active");
    assert_eq!(doc["signed_with"], "session-key");
    assert_eq!(doc["key_name"], "bot");
    assert_eq!(doc["fork_block"], block);
    assert_eq!(doc["account_kind"], "smart");
    let operation = doc["operation"].as_str().unwrap();
    assert!(operation.contains("swap 1 tUSD for TKN"), "a small swap on the local router: {operation}");

    // Isolation: only gas and the swap's tUSD left; TKN came in; WETH untouched.
    let isolation = doc["isolation"].as_array().unwrap();
    let asset =
        |name: &str| isolation.iter().find(|a| a["asset"].as_str().unwrap().starts_with(name)).unwrap();
    assert!(isolation.iter().all(|a| a["ok"] == true), "{isolation:#?}");
    assert_eq!(asset("tUSD")["change"], "-1000000", "exactly the 1 tUSD swapped");
    assert!(asset("TKN")["change"].as_str().unwrap().starts_with('+'));
    assert_eq!(asset("WETH")["change"], "0");
    assert!(asset("ETH")["change"].as_str().unwrap().starts_with('-'), "the account paid its gas");

    // The real chain: not one block, balance or counter moved; the home's files as they were.
    assert_eq!(chain.block_number(), block, "verify sent nothing to the real chain");
    assert_eq!(chain.holdings(account), holdings);
    assert_eq!(chain.counters(account, id as u32), counters);
    assert_eq!(counters.0, U256::ZERO);
    assert_eq!(files(home.path()), before, "state.json, keys and ledgers untouched");

    // The human table: progress on stderr, the table and verdict on stdout.
    let human = home.sak(&["session", "verify", &id.to_string()]).ok();
    assert!(human.stderr.contains("forking local (chain 31337)"), "{}", human.stderr);
    assert!(human.stderr.contains("case 7/7"), "{}", human.stderr);
    assert_eq!(human.stdout.matches(" PASS").count(), 7, "{}", human.stdout);
    assert!(
        human.stdout.contains("verdict: the contracts enforce session #1: 7 of 7 cases"),
        "{}",
        human.stdout
    );
    eprintln!("verify took {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn a_7702_account_session_passes_every_case() {
    let home = Home::with_node();
    // The owner's own EOA: `owner_and_account` gave it 10 ETH and 5,000 tUSD.
    let account = home.owner_and_account("7702");
    let id = home.trader_session("bot");
    let doc = home.json(&["session", "verify", &id.to_string()]);
    assert_every_case_passed(&doc);
    assert_eq!(doc["account_kind"], "7702");
    assert_eq!(doc["account"].as_str().unwrap().to_lowercase(), account.to_lowercase());
}

#[test]
fn an_unknown_session_or_bad_input_is_exit_2_with_a_hint() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let run = home.sak(&["session", "verify", "42"]).fails(2);
    assert!(run.stderr.contains("no session #42"), "{}", run.stderr);
    assert!(run.stderr.contains("sak session list"), "{}", run.stderr);
    assert!(!run.stderr.contains("forking"), "nothing is forked for an unknown session");
    let json = home.sak(&["--json", "session", "verify", "42"]).fails(2).json();
    assert_eq!(json["error"]["exit_code"], 2);
    assert!(json["error"]["hint"].as_str().unwrap().contains("sak session list"));

    // Malformed ids and conflicting flags: clap's usage errors, exit 2.
    assert_eq!(home.sak(&["session", "verify", "one"]).code, 2);
    assert_eq!(home.sak(&["session", "verify", "-1"]).code, 2);
    assert_eq!(home.sak(&["session", "verify", "1", "--key", "bot", "--throwaway-key"]).code, 2);

    // No chain at all: says to start one.
    let away = Home::new();
    away.sak(&["init"]).ok();
    let run = away.sak(&["session", "verify", "1"]).fails(2);
    assert!(run.stderr.contains("sak node up"), "{}", run.stderr);
}

#[test]
fn an_already_revoked_or_expired_session_says_so() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let chain = RealChain::of(&home);

    let revoked = home.trader_session("bot");
    chain.revoke(account, revoked as u32);
    let doc = home.json(&["session", "verify", &revoked.to_string()]);
    assert_eq!(doc["status"], "revoked");
    assert_eq!(doc["ok"], true);
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{doc:#}");
    assert_eq!((&cases[0]["case"], &cases[0]["observed"]), (&"revoked".into(), &"SessionNotActive".into()));
    assert!(doc["verdict"].as_str().unwrap().contains("is revoked"), "{doc:#}");
    let human = home.sak(&["session", "verify", &revoked.to_string()]).ok();
    assert!(human.stdout.contains("session #1 is revoked: the contracts refuse"), "{}", human.stdout);

    home.sak(&["key", "new", "--name", "brief"]).ok();
    let granted = home.json(&[
        "session",
        "grant",
        "--key",
        "brief",
        "--role",
        "trader",
        "--cap",
        "tUSD:10/1m",
        "--expires",
        "2m",
    ]);
    let expired = granted["id"].as_u64().unwrap().to_string();
    chain.rpc("evm_increaseTime", serde_json::json!([300]));
    chain.rpc("evm_mine", serde_json::json!([]));
    let doc = home.json(&["session", "verify", &expired]);
    assert_eq!(doc["status"], "expired");
    assert_eq!(doc["cases"][0]["case"], "expired");
    assert_eq!(doc["cases"][0]["observed"], "ClockOutsideSession");
    assert!(doc["verdict"].as_str().unwrap().contains("has expired"), "{doc:#}");
    // Its policy can no longer be granted, even to a throwaway key: said, with what to do.
    let run = home.sak(&["session", "verify", &expired, "--throwaway-key"]).fails(2);
    assert!(run.stderr.contains("ended at"), "{}", run.stderr);
}

#[test]
fn without_the_session_key_it_says_so_and_offers_key_and_throwaway_key() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot").to_string();
    let keys = home.data().join("keys").join("session");
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("agent-key.json");
    std::fs::rename(keys.join("bot.json"), &moved).unwrap();

    let run = home.sak(&["session", "verify", &id]).fails(2);
    assert!(run.stderr.contains("is not in this home"), "{}", run.stderr);
    assert!(run.stderr.contains("--key FILE") && run.stderr.contains("--throwaway-key"), "{}", run.stderr);

    // The agent's copy of the key, by path: kept private like every key.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = home.sak(&["session", "verify", &id, "--key", moved.to_str().unwrap()]).fails(2);
    assert!(run.stderr.contains("chmod 700"), "{}", run.stderr);
    std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let doc = home.json(&["session", "verify", &id, "--key", moved.to_str().unwrap()]);
    assert_every_case_passed(&doc);
    assert_eq!(doc["signed_with"], "session-key");

    // Another key than the session's: refused before forking.
    home.sak(&["key", "new", "--name", "other"]).ok();
    let run = home.sak(&["session", "verify", &id, "--key", "other"]).fails(2);
    assert!(run.stderr.contains("belongs to"), "{}", run.stderr);

    // The policy, through a throwaway key the impersonated owner grants on the fork only.
    let doc = home.json(&["session", "verify", &id, "--throwaway-key"]);
    assert_every_case_passed(&doc);
    assert_eq!(doc["signed_with"], "throwaway");
    assert_eq!(doc["fork_session"], 2);
    let chain = RealChain::of(&home);
    let view = chain
        .rt
        .block_on(SakAccount::new(account, &chain.provider).getSession(2).call().into_future())
        .unwrap();
    assert_eq!(view.signer, Address::ZERO, "the throwaway grant never reached the real chain");
    assert_eq!(home.json(&["session", "list"])["sessions"].as_array().unwrap().len(), 1);
}

#[test]
fn a_policy_that_cannot_pay_for_one_operation_fails_the_allowed_case_with_exit_1() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    home.sak(&["key", "new", "--name", "stingy"]).ok();
    let granted = home.json(&[
        "session",
        "grant",
        "--key",
        "stingy",
        "--role",
        "payer",
        "--cap",
        "tUSD:100/1d",
        "--gas-budget",
        "0.000000001ether/1d",
        "--expires",
        "2d",
    ]);
    let id = granted["id"].as_u64().unwrap().to_string();
    let run = home.sak(&["--json", "session", "verify", &id]).fails(1);
    // One JSON document on stdout (the table), the error and its hint on stderr.
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["cases"][0]["case"], "allowed");
    assert_eq!(doc["cases"][0]["result"], "fail");
    assert_eq!(doc["cases"][0]["observed"], "GasBudgetExceeded");
    assert_eq!(doc["cases"][6]["result"], "skip", "no isolation without an allowed operation");
    for c in &doc["cases"].as_array().unwrap()[1..6] {
        assert_eq!(c["result"], "pass", "the refusals still hold: {c:#}");
    }
    assert!(run.stderr.contains("allowed (GasBudgetExceeded)"), "{}", run.stderr);
    assert!(run.stderr.contains("--gas-budget"), "{}", run.stderr);
}

#[test]
fn ctrl_c_stops_the_fork() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();
    let mut child = home
        .command(&["session", "verify", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut anvil = None;
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen += &line;
        if let Some(rest) = line.split("(anvil pid ").nth(1) {
            anvil = Some(rest.split(')').next().unwrap().parse::<u32>().unwrap());
            break;
        }
        line.clear();
    }
    let anvil = anvil.unwrap_or_else(|| panic!("no fork started:\n{seen}"));
    assert!(alive(anvil));
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{seen}{rest}");
    assert!(rest.contains("interrupted: stopped the fork"), "{rest}");
    assert!(rest.contains("hint: "), "{rest}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(anvil) {
        assert!(Instant::now() < deadline, "the fork's anvil (pid {anvil}) outlived the interrupt");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_token_the_account_lacks_is_dealt_on_the_fork_only() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    home.sak(&["key", "new", "--name", "seller"]).ok();
    let granted = home.json(&[
        "session",
        "grant",
        "--key",
        "seller",
        "--role",
        "trader",
        "--cap",
        "TKN:2/1d",
        "--expires",
        "1d",
    ]);
    let id = granted["id"].as_u64().unwrap().to_string();
    let chain = RealChain::of(&home);
    let before = chain.holdings(account);
    assert_eq!(before[2], U256::ZERO, "the account holds no TKN");

    let doc = home.json(&["session", "verify", &id]);
    assert_every_case_passed(&doc);
    let setup = doc["setup"].as_array().unwrap();
    assert!(setup.iter().any(|l| l.as_str().unwrap().contains("1 TKN on the fork")), "{setup:?}");
    assert!(doc["operation"].as_str().unwrap().contains("swap 1 TKN for tUSD"), "{doc:#}");
    assert_eq!(chain.holdings(account), before, "the real account never got the TKN");
}
