//! `sak send` and `sak swap` as an agent runs them on a local chain: swaps within the cap, the
//! cap refused locally and by the contracts, calls outside the policy, dry runs, revocation,
//! expiry, the direct path and EIP-7702 accounts, a real bundler (Alto), and bad input of every
//! kind.

mod common;

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use common::{Home, Run, block_on, refusal, swap_args};
use sak_contracts::{IEntryPoint, MockERC20, SakAccount};
use sak_signer::ledger::{Decision, Intent, Ledger, SqliteLedger};
use serde_json::Value;

fn provider(home: &Home) -> DynProvider {
    ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap()).erased()
}

fn address(v: &Value) -> Address {
    v.as_str().unwrap_or_else(|| panic!("not an address: {v}")).parse().unwrap()
}

/// The node's tUSD (6 decimals) and TKN addresses.
fn tokens(home: &Home) -> (Address, Address) {
    let c = &home.node_summary.as_ref().unwrap()["contracts"];
    (address(&c["usd"]), address(&c["tkn"]))
}

/// `sak --json ARGS EXTRA`, successful.
fn succeed(home: &Home, args: &[String], extra: &[&str]) -> Value {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    home.json(&all)
}

fn run(home: &Home, args: &[String], extra: &[&str]) -> Run {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    home.sak(&all)
}

fn decisions(home: &Home) -> Vec<Decision> {
    let path = home.data().join("ledger.sqlite");
    assert!(path.exists(), "no ledger at {}", path.display());
    SqliteLedger::open(&path).unwrap().decisions(0).unwrap()
}

async fn spent(p: &DynProvider, account: Address, id: u64, token: Address) -> U256 {
    U256::from(SakAccount::new(account, p).getSpend(id as u32, token).call().await.unwrap().spent)
}

async fn token_balance(p: &DynProvider, token: Address, holder: Address) -> U256 {
    MockERC20::new(token, p).balanceOf(holder).call().await.unwrap()
}

/// The EntryPoint nonce of session `id`'s lane 0 (the one sak signs in).
async fn entry_point_nonce(p: &DynProvider, entry_point: Address, account: Address, id: u64) -> U256 {
    IEntryPoint::new(entry_point, p)
        .getNonce(account, sak_userop::session_nonce_key(id as u32, 0))
        .call()
        .await
        .unwrap()
}

#[test]
fn three_swaps_fit_the_daily_cap_and_the_fourth_is_refused_locally_and_by_the_contracts() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let (usd, tkn) = tokens(&home);
    let entry_point = address(&home.node_summary.as_ref().unwrap()["contracts"]["entry_point"]);
    let p = provider(&home);
    let ledger = home.data().join("ledger.sqlite");

    // A dry run decides and reports, and touches nothing: no ledger, no nonce, no tokens.
    let usd_before = block_on(token_balance(&p, usd, account));
    let nonce_before = block_on(entry_point_nonce(&p, entry_point, account, id));
    let dry = succeed(&home, &swap_args(&id.to_string(), "300"), &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["charges"][0]["amount"], "300000000");
    assert_eq!(dry["charges"][0]["remaining"], "700000000");
    assert!(dry["user_op_hash"].is_null() && dry["transaction"].is_null(), "{dry}");
    assert!(!ledger.exists(), "a dry run created the ledger");
    assert_eq!(block_on(token_balance(&p, usd, account)), usd_before);
    assert_eq!(block_on(entry_point_nonce(&p, entry_point, account, id)), nonce_before);

    // An earlier run crashed after reserving, before signing: the next run settles it first.
    let stale = SqliteLedger::open(&ledger)
        .unwrap()
        .reserve(
            &Intent {
                chain_id: 31_337,
                account,
                session_id: B256::from(U256::from(id)),
                nonce_key: U256::from(sak_userop::session_nonce_key(id as u32, 0)),
                nonce_seq: Some(0),
                spends: Vec::new(),
                gas_cost_cap: U256::ZERO,
                created_at: 0,
            },
            &[],
        )
        .unwrap();

    // Three swaps of 300 tUSD under 1,000 tUSD a day.
    let mut renews_at = 0;
    for (n, left) in [(1, "700000000"), (2, "400000000"), (3, "100000000")] {
        let done = succeed(&home, &swap_args(&id.to_string(), "300"), &[]);
        assert_eq!(done["success"], true, "swap {n}: {done}");
        assert!(done["user_op_hash"].as_str().unwrap().starts_with("0x"));
        assert!(done["transaction"].as_str().unwrap().starts_with("0x"));
        assert!(done["block"].as_u64().unwrap() > 0);
        assert_ne!(done["gas_cost_wei"], "0");
        assert_eq!(done["gas_paid_by"], "account");
        assert_eq!(done["charges"][0]["name"], "tUSD");
        assert_eq!(done["charges"][0]["amount"], "300000000");
        assert_eq!(done["charges"][0]["remaining"], left, "swap {n}");
        assert_eq!(done["allowances"][0]["remaining"], left, "swap {n}");
        assert_ne!(done["swap"]["received"], "0", "TKN paid to the account");
        renews_at = done["allowances"][0]["renews_at"].as_u64().unwrap();
        let recovered = done["recovered"].as_array().unwrap();
        if n == 1 {
            assert_eq!(recovered.len(), 1, "{done}");
            assert_eq!(recovered[0]["intent"], stale.0);
            assert_eq!(recovered[0]["outcome"], "released");
        } else {
            assert!(recovered.is_empty(), "{done}");
        }
    }
    assert_eq!(block_on(spent(&p, account, id, usd)), U256::from(900_000_000u64));
    assert!(block_on(token_balance(&p, tkn, account)) > U256::ZERO);
    let logged = decisions(&home);
    assert_eq!(logged.iter().filter(|d| d.allowed).count(), 3, "{logged:?}");

    // A dry run of the fourth is refused the same way, and records nothing.
    refusal(&home, &swap_args(&id.to_string(), "300"), &["--dry-run"], "SpendCapExceeded");
    assert_eq!(decisions(&home).len(), 3);

    // The fourth: refused locally, before signing, with what remains and when it renews.
    let doc = refusal(&home, &swap_args(&id.to_string(), "300"), &[], "SpendCapExceeded");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("before signing"), "{message}");
    assert!(message.contains("100 tUSD remains this period"), "{message}");
    let renewal = sak_primitives::units::format_time(renews_at);
    assert!(message.contains(&renewal), "no renewal time {renewal} in {message}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(hint.contains(&renewal), "no renewal time in the hint: {doc}");
    // Times in UTC only: never the raw unix seconds, in the message, the hint or the refusal.
    assert!(!doc.to_string().contains(&renews_at.to_string()), "raw unix time in {doc}");
    let human = run(&home, &swap_args(&id.to_string(), "300"), &[]).fails(1);
    assert!(human.stderr.contains("SpendCapExceeded") && human.stderr.contains(&renewal), "{}", human.stderr);
    assert!(!human.stderr.contains(&renews_at.to_string()), "raw unix time in {}", human.stderr);
    assert!(human.stdout.is_empty(), "{}", human.stdout);

    // Forced past the local check: the contracts refuse it, and their counter does not move.
    let doc = refusal(&home, &swap_args(&id.to_string(), "300"), &["--no-preflight"], "SpendCapExceeded");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("refused by the contracts"), "{message}");
    assert!(message.contains("100 tUSD remains this period"), "{message}");
    assert_eq!(block_on(spent(&p, account, id, usd)), U256::from(900_000_000u64));
    assert_eq!(block_on(token_balance(&p, usd, account)), usd_before - U256::from(900_000_000u64));

    let logged = decisions(&home);
    let refused: Vec<&str> = logged.iter().filter(|d| !d.allowed).map(|d| d.reason.as_str()).collect();
    assert_eq!(refused, ["SpendCapExceeded"; 3], "local (json), local (human), chain");

    // What remains still fits: 100 tUSD goes through.
    let done = succeed(&home, &swap_args(&id.to_string(), "100"), &[]);
    assert_eq!(done["charges"][0]["remaining"], "0");
}

#[test]
fn calls_outside_the_policy_revoked_and_expired_sessions_are_refused_by_name() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let short = home.json(&[
        "session",
        "grant",
        "--key",
        "bot",
        "--role",
        "trader",
        "--cap",
        "tUSD:1000/1d",
        "--expires",
        "1h",
    ])["id"]
        .as_u64()
        .unwrap();
    let (usd, tkn) = tokens(&home);
    let p = provider(&home);

    // A TKN transfer: the trader policy permits none.
    let send = |id: u64| {
        [
            "send",
            "--session",
            &id.to_string(),
            "--to",
            "TKN",
            "--sig",
            "transfer(address,uint256)",
            "router",
            "1",
        ]
        .map(String::from)
        .to_vec()
    };
    let doc = refusal(&home, &send(id), &[], "CallNotPermitted");
    assert!(doc["error"]["hint"].as_str().unwrap().contains("sak session show"), "{doc}");
    refusal(&home, &send(id), &["--no-preflight"], "CallNotPermitted");
    assert_eq!(block_on(token_balance(&p, tkn, account)), U256::ZERO);

    // Allowed, then revoked by the owner: refused locally and by the contracts.
    succeed(&home, &swap_args(&id.to_string(), "10"), &[]);
    home.sak(&["session", "revoke", &id.to_string()]).ok();
    refusal(&home, &swap_args(&id.to_string(), "10"), &[], "SessionNotActive");
    refusal(&home, &swap_args(&id.to_string(), "10"), &["--no-preflight"], "SessionNotActive");
    assert_eq!(block_on(spent(&p, account, id, usd)), U256::from(10_000_000u64));

    // Past its end (anvil's clock moved two hours): ClockOutsideSession.
    succeed(&home, &swap_args(&short.to_string(), "10"), &[]);
    block_on(async {
        let _: Value = p.raw_request("evm_increaseTime".into(), (7_200,)).await.unwrap();
        let _: Value = p.raw_request("evm_mine".into(), ()).await.unwrap();
    });
    let doc = refusal(&home, &swap_args(&short.to_string(), "10"), &[], "ClockOutsideSession");
    assert!(doc["error"]["hint"].as_str().unwrap().contains("new one"), "{doc}");
    refusal(&home, &swap_args(&short.to_string(), "10"), &["--no-preflight"], "ClockOutsideSession");
    refusal(&home, &swap_args(&short.to_string(), "10"), &["--dry-run"], "ClockOutsideSession");

    // An id never granted: exit 2 with a hint naming `sak session list`.
    let unknown = run(&home, &swap_args("99", "10"), &[]).fails(2);
    assert!(unknown.stderr.contains("sak session list"), "{}", unknown.stderr);
}

#[test]
fn bad_input_is_refused_with_a_hint_and_changes_nothing() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();
    let state = std::fs::read(home.data().join("state.json")).unwrap();
    let batch = home.path().join("calls.json");
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (vec!["send", "--session", &id, "--to", "nowhere"], None, "unknown name"),
        (vec!["send", "--session", &id, "--to", "0x1234"], None, "20-byte"),
        (vec!["send", "--session", &id, "--to", "TKN", "--value", "1.5"], None, "not an amount of ETH"),
        (vec!["send", "--session", &id, "--to", "TKN", "--data", "0xzz"], None, "not hex"),
        (
            vec!["send", "--session", &id, "--to", "TKN", "--sig", "transfer(address"],
            None,
            "not a function signature",
        ),
        (
            vec!["send", "--session", &id, "--to", "TKN", "--sig", "transfer(address,uint256)", "router"],
            None,
            "takes 2 arguments",
        ),
        (
            vec![
                "send",
                "--session",
                &id,
                "--to",
                "TKN",
                "--sig",
                "transfer(address,uint256)",
                "router",
                "-1",
            ],
            None,
            "not a uint256",
        ),
        (vec!["send", "--session", &id, "--batch"], Some("not json"), "not a list of calls"),
        (vec!["send", "--session", &id, "--batch"], Some("[]"), "has no calls"),
        (
            vec!["send", "--session", &id, "--batch"],
            Some(r#"[{"to": "TKN", "value": true}]"#),
            "neither a string nor a number",
        ),
        (vec!["send", "--session", &id, "--batch"], Some(r#"[{"to": "TKN", "gas": 1}]"#), "unknown field"),
        (
            vec![
                "swap",
                "--session",
                &id,
                "--in",
                "tUSD",
                "--out",
                "TKN",
                "--amount",
                "1.0000001",
                "--min-out",
                "0",
            ],
            None,
            "at most 6 decimals",
        ),
        (
            vec![
                "swap",
                "--session",
                &id,
                "--in",
                "tUSD",
                "--out",
                "TKN",
                "--amount",
                "3 ether",
                "--min-out",
                "0",
            ],
            None,
            "whole units",
        ),
        (
            vec![
                "swap",
                "--session",
                &id,
                "--in",
                "tUSD",
                "--out",
                "tUSD",
                "--amount",
                "1",
                "--min-out",
                "0",
            ],
            None,
            "same token",
        ),
        (
            vec!["swap", "--session", &id, "--in", "tUSD", "--out", "TKN", "--amount", "0", "--min-out", "0"],
            None,
            "zero",
        ),
        (
            vec![
                "swap",
                "--session",
                &id,
                "--in",
                "0x00000000000000000000000000000000000000aa",
                "--out",
                "TKN",
                "--amount",
                "1",
                "--min-out",
                "0",
            ],
            None,
            "decimals()",
        ),
        (vec!["send", "--session", &id, "--key", "nobody", "--to", "TKN"], None, "no session key"),
    ];
    for (mut args, file, expect) in cases {
        let path = batch.to_str().unwrap();
        if let Some(text) = file {
            std::fs::write(&batch, text).unwrap();
            args.push(path);
        }
        let run = home.sak(&args).fails(2);
        assert!(run.stderr.contains(expect), "{args:?}: expected {expect:?} in\n{}", run.stderr);
    }
    // Another key than the session's.
    home.sak(&["key", "new", "--name", "other"]).ok();
    let wrong = home.sak(&["send", "--session", &id, "--key", "other", "--to", "TKN"]).fails(2);
    assert!(wrong.stderr.contains("is not session"), "{}", wrong.stderr);

    assert_eq!(std::fs::read(home.data().join("state.json")).unwrap(), state, "state.json changed");
    assert!(!home.data().join("ledger.sqlite").exists(), "bad input reached the ledger");
}

#[test]
fn flags_that_cannot_apply_are_refused_before_connecting() {
    let home = Home::new();
    home.sak(&["init"]).ok();
    // No chain runs here: these are decided from the flags and the config alone.
    let run = home
        .sak(&[
            "--network",
            "sepolia",
            "swap",
            "--session",
            "1",
            "--in",
            "tUSD",
            "--out",
            "TKN",
            "--amount",
            "1",
            "--min-out",
            "0",
            "--no-preflight",
        ])
        .fails(1);
    assert!(run.stderr.contains("local and fork networks only"), "{}", run.stderr);
    let run = home.sak(&["send", "--session", "1", "--to", "TKN", "--via", "bundler"]).fails(2);
    assert!(run.stderr.contains("--bundler-url"), "{}", run.stderr);
    let doc =
        home.sak(&["--json", "send", "--session", "1", "--to", "TKN", "--via", "bundler"]).fails(2).json();
    assert!(doc["error"]["hint"].as_str().unwrap().contains("bundler_url"), "{doc}");
    // clap: contradictory flags.
    let run = home.sak(&["send", "--session", "1", "--to", "TKN", "--dry-run", "--no-preflight"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn the_direct_path_and_an_eip7702_account_act_under_the_same_policy() {
    let home = Home::with_node();
    let owner = home.owner_and_account("smart");
    let smart: Address = owner.parse().unwrap();
    let id = home.trader_session("bot");
    let (usd, _) = tokens(&home);
    let p = provider(&home);

    // Direct: the relayer pays, the policy is the same, the ledger records the decisions.
    let done = succeed(&home, &swap_args(&id.to_string(), "300"), &["--via", "direct"]);
    assert_eq!(done["via"], "direct");
    assert_eq!(done["gas_paid_by"], "relayer");
    assert!(done["user_op_hash"].is_null());
    assert_eq!(done["charges"][0]["remaining"], "700000000");
    refusal(&home, &swap_args(&id.to_string(), "800"), &["--via", "direct"], "SpendCapExceeded");
    refusal(
        &home,
        &swap_args(&id.to_string(), "800"),
        &["--via", "direct", "--no-preflight"],
        "SpendCapExceeded",
    );
    assert_eq!(block_on(spent(&p, smart, id, usd)), U256::from(300_000_000u64));
    let logged: Vec<(bool, String)> = decisions(&home).into_iter().map(|d| (d.allowed, d.reason)).collect();
    assert_eq!(
        logged,
        [(true, "ok".into()), (false, "SpendCapExceeded".into()), (false, "SpendCapExceeded".into())]
    );
    // Self-bundled after direct: both count against one cap.
    let done = succeed(&home, &swap_args(&id.to_string(), "300"), &[]);
    assert_eq!(done["charges"][0]["remaining"], "400000000");

    // The owner's EOA delegated with EIP-7702, named, becomes the network's default account.
    let eoa: Address =
        address(&home.json(&["account", "create", "--kind", "7702", "--name", "eoa"])["address"]);
    home.sak(&["account", "use", "eoa"]).ok();
    home.sak(&["node", "fund", "account", "--usd", "2000"]).ok();
    let id7702 = home.trader_session("bot7702");
    let done = succeed(&home, &swap_args(&id7702.to_string(), "300"), &[]);
    assert_eq!(done["account"].as_str().unwrap().parse::<Address>().unwrap(), eoa);
    assert_eq!(done["account_kind"], "7702");
    assert_eq!(done["success"], true);
    let done = succeed(&home, &swap_args(&id7702.to_string(), "300"), &["--via", "direct"]);
    assert_eq!(done["charges"][0]["remaining"], "400000000");
    refusal(&home, &swap_args(&id7702.to_string(), "500"), &["--no-preflight"], "SpendCapExceeded");
    assert_eq!(block_on(spent(&p, eoa, id7702, usd)), U256::from(600_000_000u64));
}

/// A home on a chain it did not start (a sak-testkit `Kit`, reached with --rpc-url): names come
/// from the config's book, the agent's own relayer key (never the owner's) pays `--via self`,
/// and `--via bundler` goes through a real ERC-4337 bundler (Alto).
#[test]
fn a_home_on_another_chain_swaps_through_a_real_bundler_and_self_bundles_with_its_own_relayer() {
    use alloy::{network::TransactionBuilder, rpc::types::TransactionRequest};
    use sak_testkit::{Alto, Kit, Profile};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let kit = runtime.block_on(Kit::start(Profile::test())).unwrap();
    let alto = runtime.block_on(Alto::start(&kit, &[])).unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint()));
    let d = *kit.deployment();
    let p = kit.provider().clone();
    let dev = kit.dev_accounts()[0];

    let home = Home::new();
    let url = kit.rpc_url().to_owned();
    let sak = |args: &[&str]| {
        let mut all = vec!["--rpc-url", url.as_str()];
        all.extend_from_slice(args);
        home.sak(&all)
    };
    let json = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        sak(&all).ok().json()
    };
    home.sak(&["init"]).ok();
    // The chain's names, as a user adds them to the config.
    let config_path = home.path().join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path).unwrap().parse().unwrap();
    let mut book = toml::Table::new();
    for (name, address, decimals) in
        [("tUSD", d.usd, Some(6)), ("TKN", d.tkn, Some(18)), ("router", d.uniswap_v2_router, None)]
    {
        let mut entry = toml::Table::new();
        entry.insert("address".into(), address.to_string().into());
        if let Some(decimals) = decimals {
            entry.insert("decimals".into(), toml::Value::Integer(decimals));
        }
        book.insert(name.into(), entry.into());
    }
    config["networks"]["local"].as_table_mut().unwrap().insert("book".into(), book.into());
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();

    // The owner and its account, funded by anvil's dev account 0 (no `sak node up` here).
    let owner = address(&json(&["owner", "new"])["owner"]["address"]);
    let fund = |to: Address, eth: u64| {
        let tx = TransactionRequest::default()
            .with_from(dev)
            .with_to(to)
            .with_value(U256::from(eth) * U256::from(10).pow(U256::from(18)));
        assert!(
            runtime
                .block_on(async { p.send_transaction(tx).await.unwrap().get_receipt().await.unwrap() })
                .status()
        );
    };
    fund(owner, 10);
    let account = address(&json(&["account", "create", "--kind", "smart"])["address"]);
    fund(account, 5);
    runtime.block_on(async {
        let usd = MockERC20::new(d.usd, &p);
        let mint = usd.mint(account, U256::from(5_000_000_000u64)).from(dev);
        assert!(mint.send().await.unwrap().get_receipt().await.unwrap().status());
    });
    sak(&["key", "new", "--name", "bot"]).ok();
    let id = json(&[
        "session",
        "grant",
        "--key",
        "bot",
        "--role",
        "trader",
        "--router",
        "router",
        "--cap",
        "tUSD:1000/1d",
        "--expires",
        "7d",
    ])["id"]
        .as_u64()
        .unwrap();
    let swap = |amount: &str, extra: &[&str]| {
        let mut args = vec!["--json"];
        let base = swap_args(&id.to_string(), amount);
        args.extend(base.iter().map(String::as_str));
        args.extend_from_slice(extra);
        sak(&args)
    };

    // Through Alto.
    let bundled = swap("300", &["--via", "bundler", "--bundler-url", alto.url()]).ok().json();
    assert_eq!(bundled["via"], "bundler");
    assert_eq!(bundled["success"], true, "{bundled}");
    assert!(bundled["user_op_hash"].as_str().unwrap().starts_with("0x"));
    assert_eq!(bundled["charges"][0]["remaining"], "700000000");
    // Self-bundled: without `sak node up` there is no relayer until the agent makes its own
    // (never the owner key); then that key pays for handleOps and the owner's ETH stays.
    let none = swap("300", &[]).fails(2);
    assert!(none.stderr.contains("needs a relayer"), "{}", none.stderr);
    let relayer = address(&json(&["agent", "relayer", "new"])["address"]);
    sak(&["agent", "relayer", "new"]).fails(1);
    fund(relayer, 1);
    let (owner_eth, relayer_eth) =
        runtime.block_on(async { (p.get_balance(owner).await, p.get_balance(relayer).await) });
    let own = swap("300", &[]).ok().json();
    assert_eq!(own["charges"][0]["remaining"], "400000000");
    assert_eq!(
        runtime.block_on(async { p.get_balance(owner).await }).unwrap(),
        owner_eth.unwrap(),
        "the owner relayed"
    );
    // It paid for handleOps and was refunded by the account through the EntryPoint.
    assert_ne!(
        runtime.block_on(async { p.get_balance(relayer).await }).unwrap(),
        relayer_eth.unwrap(),
        "the relayer did not relay"
    );
    let shown = json(&["agent", "relayer", "show"]);
    assert_eq!((shown["source"].as_str(), address(&shown["address"])), (Some("file"), relayer));
    // Over the cap: refused locally, and by the bundler's simulation when forced.
    for extra in [&[][..], &["--no-preflight"][..]] {
        let mut args = vec!["--via", "bundler", "--bundler-url", alto.url()];
        args.extend_from_slice(extra);
        let doc = swap("500", &args).fails(1).json();
        assert_eq!(doc["error"]["refusal"]["name"], "SpendCapExceeded", "{doc}");
    }
    let spent = runtime.block_on(spent(&p, account, id, d.usd));
    assert_eq!(spent, U256::from(600_000_000u64));
    // A bundler that does not answer: exit 2 with a hint.
    let gone = swap("1", &["--via", "bundler", "--bundler-url", "http://127.0.0.1:9"]).fails(2);
    assert!(gone.stderr.contains("does not answer"), "{}", gone.stderr);
}

/// An agent's secrets are its own: a swap needs neither the owner's password (the node relays
/// here) nor a key file when `SAK_SESSION_KEY` holds the key, which is never printed; a key of
/// another session is refused by name.
#[test]
fn an_agent_swaps_without_the_owners_password_and_from_a_key_in_the_environment() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();
    let with_env = |set: &[(&str, &str)]| {
        let args = swap_args(&id, "1");
        let mut cmd = home.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env_remove("SAK_PASSWORD");
        for (k, v) in set {
            cmd.env(k, v);
        }
        Run::from_output(cmd.output().unwrap())
    };
    with_env(&[]).ok();

    let hex = home.sak(&["key", "export", "bot", "--unencrypted", "--stdout"]).ok().stdout.trim().to_owned();
    let key_file = home.data().join("keys/session/bot.json");
    std::fs::rename(&key_file, key_file.with_extension("away")).unwrap();
    let run = with_env(&[("SAK_SESSION_KEY", &hex), ("SAK_KEY_PASSWORD", "")]).ok();
    assert!(!run.stdout.contains(&hex[2..]) && !run.stderr.contains(&hex[2..]), "the key is never printed");
    let other = format!("0x{}", "11".repeat(32));
    let refused = with_env(&[("SAK_SESSION_KEY", &other)]).fails(2);
    assert!(
        refused.stderr.contains("$SAK_SESSION_KEY") && refused.stderr.contains("is not session"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&other[2..]), "nor is a wrong one");
}
