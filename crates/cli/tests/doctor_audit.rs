//! `sak doctor`, `sak deploy` and `sak audit` as a user runs them: a healthy local home, each
//! kind of breakage with its fix, deployment on a bare anvil that lacks sak's contracts, an
//! https endpoint, and the audit of real signing decisions.

mod common;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
};
use common::{Home, block_on, doctor_check};
use sak_contracts::sak_deployments;
use sak_testkit::{AnvilNode, Profile, Toolchain, deploy_entry_point};
use serde_json::Value;
use std::{os::unix::fs::PermissionsExt, path::Path};

/// `sak --json doctor ARGS` when a check fails: exit 2, the report on stdout, the error and
/// hint on stderr.
fn doctor_failing(home: &Home, args: &[&str]) -> Value {
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    let run = home.sak(&all).fails(2);
    assert!(run.stderr.contains("check"), "{}", run.stderr);
    let doc = run.json();
    for c in doc["checks"].as_array().unwrap() {
        if c["status"] != "ok" {
            assert!(
                c["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "a {} check without a fix: {c}",
                c["status"]
            );
        }
    }
    doc
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Replaces `from` with `to` in the home's config file (exactly once).
fn edit_config(home: &Home, from: &str, to: &str) {
    let path = home.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "`{from}` in {text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn doctor_passes_a_healthy_home_and_names_each_breakage_with_its_fix() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();

    let doc = home.json(&["doctor", "--session", &id]);
    assert_eq!(doc["network"], "local");
    assert_eq!(doc["chain_id"], 31337);
    for c in doc["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
        assert!(c["fix"].is_null(), "{c}");
    }
    for name in [
        "config",
        "rpc",
        "chain_id",
        "create2_deployer",
        "entry_point",
        "sak_account_factory",
        "sak_7702_account",
        "key_dir",
        "owner_key",
        "session_key_files",
        "account",
        "ledger",
        "session",
        "session_key",
    ] {
        doctor_check(&doc, name);
    }
    assert!(
        doctor_check(&doc, "session_caps")["detail"].as_str().unwrap().contains("tUSD: 1000 of 1000 left")
    );
    let text = home.sak(&["doctor"]).ok();
    assert!(text.stdout.contains("0 failed"), "{}", text.stdout);

    // Deploy on a local chain: `sak node up` deployed everything, so nothing is sent.
    let deployed = home.json(&["deploy"]);
    assert_eq!(deployed["sent"], 0);
    let statuses: Vec<&str> =
        deployed["contracts"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["present"; 9]);
    let nodes = &home.node_summary.as_ref().unwrap()["contracts"];
    for (i, key) in [
        "session_adapter",
        "sak_account_implementation",
        "sak_account_factory",
        "sak_7702_account",
        "session_key_validator",
        "sak_7579_account_implementation",
        "sak_7579_account_factory",
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(deployed["contracts"][2 + i]["address"], nodes[key], "{key}");
    }
    assert_eq!(home.json(&["deploy", "--dry-run"])["contracts"], deployed["contracts"]);

    // An owner keystore others can read.
    let owner = home.data().join("keys/owner.json");
    set_mode(&owner, 0o644);
    let doc = doctor_failing(&home, &[]);
    let c = doctor_check(&doc, "owner_key");
    assert_eq!(c["status"], "fail");
    assert!(c["fix"].as_str().unwrap().starts_with("chmod 600"), "{c}");
    set_mode(&owner, 0o600);

    // A session that does not exist.
    let doc = doctor_failing(&home, &["--session", "99"]);
    let c = doctor_check(&doc, "session");
    assert!(c["detail"].as_str().unwrap().contains("does not exist"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("sak session list"), "{c}");

    // A revoked session is revoked, not "does not exist" (revocation deletes its record).
    home.sak(&["session", "revoke", &id]).ok();
    let doc = doctor_failing(&home, &["--session", &id]);
    let c = doctor_check(&doc, "session");
    assert_eq!(c["detail"], format!("session #{id} is revoked"), "{c}");

    // The config expects another chain than the endpoint serves.
    edit_config(&home, "chain_id = 31337", "chain_id = 1");
    let doc = doctor_failing(&home, &[]);
    let c = doctor_check(&doc, "chain_id");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("expects chain 1"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("chain_id"), "{c}");
    edit_config(&home, "chain_id = 1\n", "chain_id = 31337\n");
    home.json(&["doctor"]);

    // The node stops: the configured URL (this node's) refuses connections.
    let url = home.rpc_url.clone().unwrap();
    edit_config(
        &home,
        "rpc_url = \"http://127.0.0.1:8545\"\nchain_id = 31337",
        &format!("rpc_url = \"{url}\"\nchain_id = 31337"),
    );
    home.json(&["node", "down"]);
    let doc = doctor_failing(&home, &[]);
    let c = doctor_check(&doc, "rpc");
    assert!(c["detail"].as_str().unwrap().contains("connection refused"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("sak node up"), "{c}");
    assert!(
        doc["checks"].as_array().unwrap().iter().all(|c| c["name"] != "entry_point"),
        "no chain, no contract checks"
    );
    // Offline checks still ran.
    assert_eq!(doctor_check(&doc, "owner_key")["status"], "ok");
}

#[test]
fn doctor_reports_a_malformed_config_and_tries_https() {
    let home = Home::new();
    home.sak(&["init"]).ok();

    // An https endpoint is attempted (TLS is built in): the connection is refused, and the
    // API key in the URL's path appears nowhere.
    let url = format!("https://127.0.0.1:{}/v2/not-a-real-api-key", closed_port());
    let run = home.sak(&["--json", "--network", "sepolia", "--rpc-url", &url, "doctor"]).fails(2);
    let doc = run.json();
    let c = doctor_check(&doc, "rpc");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.contains("connection refused"), "{c}");
    assert!(!detail.to_lowercase().contains("scheme"), "https must be supported: {c}");
    assert!(!run.stdout.contains("not-a-real-api-key") && !run.stderr.contains("not-a-real-api-key"));
    // Sepolia's bundler comes from an unset variable: a warning that names it.
    let b = doctor_check(&doc, "bundler");
    assert_eq!(b["status"], "warn");
    assert!(b["fix"].as_str().unwrap().contains("SEPOLIA_BUNDLER_URL"), "{b}");
    // Other commands keep the key out of their errors too.
    let run = home.sak(&["--network", "sepolia", "--rpc-url", &url, "session", "list"]).fails(2);
    assert!(!run.stderr.contains("not-a-real-api-key"), "{}", run.stderr);

    let config = home.path().join("config.toml");
    std::fs::write(&config, "network = \"local\"\nnetworkz = {}\n").unwrap();
    let doc = doctor_failing(&home, &[]);
    let c = doctor_check(&doc, "config");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("networkz"), "{c}");
    // The offline checks still ran, and doctor changed nothing.
    doctor_check(&doc, "key_dir");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "network = \"local\"\nnetworkz = {}\n");
    assert!(!home.data().join("ledger.sqlite").exists());
}

#[test]
fn deploy_on_a_bare_chain_needs_the_entry_point_then_deploys_once() {
    let toolchain = Toolchain::locate().unwrap();
    let anvil = AnvilNode::spawn(&toolchain.anvil().unwrap(), &Profile::test()).unwrap();
    let url = anvil.endpoint().to_owned();
    let home = Home::new();
    home.sak(&["init", "--network", "bare", "--rpc-url", &url, "--chain-id", "31337"]).ok();
    home.sak(&["owner", "new"]).ok();

    // No EntryPoint v0.8 on this chain: sak does not deploy it (it is the canonical contract
    // everyone shares), and says so before sending anything.
    let run = home.sak(&["deploy"]).fails(2);
    assert!(run.stderr.contains("no EntryPoint v0.8"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: sak's accounts need the canonical EntryPoint"), "{}", run.stderr);
    let doc = doctor_failing(&home, &[]);
    assert_eq!(doctor_check(&doc, "entry_point")["status"], "fail");
    assert!(doctor_check(&doc, "sak_account_factory")["fix"].as_str().unwrap().contains("sak deploy"));

    // Whoever runs the chain deploys the EntryPoint (here: anvil's first dev account, through
    // the CREATE2 deployer, at its canonical address).
    let dev = anvil.dev_signers()[0].clone();
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(dev)).connect_http(url.parse().unwrap()).erased();
    block_on(async { deploy_entry_point(&provider, &toolchain).await.unwrap() });

    let plan = home.json(&["deploy", "--dry-run"]);
    assert_eq!(plan["sent"], 0);
    let ours = &plan["contracts"].as_array().unwrap()[2..];
    assert!(
        ours.iter().all(|c| c["status"] == "would-deploy" && c["gas"].as_u64().unwrap() > 100_000),
        "{plan}"
    );

    // The owner pays, and has nothing yet.
    let owner = plan["payer"].as_str().unwrap().to_owned();
    let run = home.sak(&["deploy"]).fails(2);
    assert!(
        run.stderr.contains("send at least") && run.stderr.to_lowercase().contains(&owner),
        "{}",
        run.stderr
    );
    block_on(async {
        let _: () = provider
            .raw_request("anvil_setBalance".into(), (owner.clone(), U256::from(10u64).pow(U256::from(18))))
            .await
            .unwrap();
    });

    let deployed = home.json(&["deploy"]);
    assert_eq!(deployed["sent"], 7);
    for (c, planned) in deployed["contracts"].as_array().unwrap()[2..].iter().zip(ours) {
        assert_eq!(c["status"], "deployed", "{c}");
        assert_eq!(c["address"], planned["address"]);
        let tx: B256 = c["tx"].as_str().unwrap().parse().unwrap();
        let address: Address = c["address"].as_str().unwrap().parse().unwrap();
        block_on(async {
            let receipt = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
            assert_eq!(receipt.from, owner.parse::<Address>().unwrap(), "the owner paid");
            assert!(!provider.get_code_at(address).await.unwrap().is_empty());
        });
    }
    // The canonical CREATE2 addresses (those `sak node up` uses, and the README shows).
    let expected = sak_deployments().map(|c| (c.name, c.address));
    let got: Vec<(&str, Address)> = deployed["contracts"].as_array().unwrap()[2..]
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["address"].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(got, expected);

    // Again: nothing sent, same addresses.
    let again = home.json(&["deploy"]);
    assert_eq!(again["sent"], 0);
    for (a, b) in again["contracts"].as_array().unwrap().iter().zip(deployed["contracts"].as_array().unwrap())
    {
        assert_eq!(a["address"], b["address"]);
        assert_eq!(a["status"], "present");
    }
    let doc = home.sak(&["--json", "doctor"]).json();
    for name in [
        "create2_deployer",
        "entry_point",
        "session_adapter",
        "sak_account_implementation",
        "sak_account_factory",
        "sak_7702_account",
        "session_key_validator",
        "sak_7579_account_implementation",
        "sak_7579_account_factory",
    ] {
        assert_eq!(doctor_check(&doc, name)["status"], "ok", "{doc:#}");
    }
    drop(anvil);
}

#[test]
fn audit_lists_real_decisions_filters_by_time_and_flags_old_keys() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();
    home.sak(&["key", "new", "--name", "idle"]).ok();
    let swap = |amount: &str| home.swap(&id, amount, &["--json"]);
    let done = swap("300").ok().json();
    swap("900").fails(1);

    let audit = home.json(&["audit"]);
    assert_eq!(audit["ledger_exists"], true);
    assert_eq!((audit["allowed"].as_u64(), audit["refused"].as_u64()), (Some(1), Some(1)));
    let d = audit["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{audit:#}");
    assert_eq!(d[0]["allowed"], true);
    assert_eq!(d[0]["key_name"], "bot");
    assert_eq!(d[0]["session"].to_string(), id);
    assert_eq!(d[0]["spends"][0]["token_name"], "tUSD");
    assert_eq!(d[0]["spends"][0]["amount"], "300");
    assert_eq!(d[0]["user_op_hash"], done["user_op_hash"]);
    assert_eq!(d[0]["tx_hash"], done["transaction"], "joined through the intent");
    assert_eq!(d[0]["outcome"], "included");
    assert_eq!(d[1]["allowed"], false);
    assert_eq!(d[1]["reason"], "SpendCapExceeded");
    assert!(d[1]["tx_hash"].is_null());
    // Fresh keys and sessions: nothing to flag with the defaults (30d, 90d).
    assert_eq!(audit["flags"], serde_json::json!([]));
    let text = home.sak(&["audit"]).ok().stdout;
    assert!(text.contains("refused SpendCapExceeded") && text.contains("300 tUSD"), "{text}");

    // --since: unix seconds, RFC 3339, a duration ago; bad input is an error that changes nothing.
    let second = d[1]["at"].as_u64().unwrap();
    let later = home.json(&["audit", "--since", &second.to_string()]);
    assert!(later["decisions"].as_array().unwrap().iter().all(|x| x["at"].as_u64().unwrap() >= second));
    assert_eq!(later["decisions"].as_array().unwrap().last().unwrap()["reason"], "SpendCapExceeded");
    assert_eq!(
        home.json(&["audit", "--since", "2020-01-01T00:00:00Z"])["decisions"].as_array().unwrap().len(),
        2
    );
    assert_eq!(home.json(&["audit", "--since", "2999-01-01T00:00:00Z"])["decisions"], serde_json::json!([]));
    let recent = home.json(&["audit", "--since", "1h"]);
    assert_eq!(recent["since"].as_u64().unwrap() + 3_600, recent["now"].as_u64().unwrap());
    home.sak(&["audit", "--since", "yesterday"]).fails(2);
    home.sak(&["audit", "--stale", "soon"]).fails(2);
    assert_eq!(home.json(&["audit"])["decisions"], audit["decisions"]);

    // Tiny thresholds: every key is stale, the session is due for rotation.
    let flagged = home.json(&["audit", "--stale", "0s", "--rotate-after", "0s"]);
    assert_eq!(flagged["chain_checked"], true);
    let flags = flagged["flags"].as_array().unwrap();
    let stale: Vec<&str> =
        flags.iter().filter(|f| f["kind"] == "stale").map(|f| f["key_name"].as_str().unwrap()).collect();
    assert_eq!(stale, ["bot", "idle"]);
    let rotate = flags.iter().find(|f| f["kind"] == "rotate").unwrap();
    assert_eq!(rotate["session"].to_string(), id);
    assert_eq!(
        rotate["fix"].as_str().unwrap(),
        format!("`sak session rotate {id}` (a new key for the same session; the old key stops working)")
    );
    let idle = flagged["keys"].as_array().unwrap().iter().find(|k| k["name"] == "idle").unwrap();
    assert!(idle["last_decision"].is_null() && idle["sessions"] == serde_json::json!([]));

    // --check (cron): exit 2 when anything is flagged, with the same report; 0 otherwise.
    home.sak(&["audit", "--check"]).ok();
    let checked = home.sak(&["audit", "--check", "--stale", "0s", "--rotate-after", "0s", "--json"]).fails(2);
    let kinds = |flags: &serde_json::Value| -> Vec<String> {
        flags.as_array().unwrap().iter().map(|f| f["kind"].to_string()).collect()
    };
    assert_eq!(kinds(&checked.json()["flags"]), kinds(&flagged["flags"]));
    assert!(checked.stderr.contains("3 flags raised"), "{}", checked.stderr);
}

#[test]
fn audit_without_a_ledger_is_empty_and_creates_nothing() {
    let home = Home::new();
    home.sak(&["init"]).ok();
    let audit = home.json(&["audit"]);
    assert_eq!(audit["ledger_exists"], false);
    assert_eq!(audit["decisions"], serde_json::json!([]));
    assert!(!home.data().join("ledger.sqlite").exists());
    assert!(home.sak(&["audit"]).ok().stdout.contains("no ledger yet"));
}

/// A run killed after its operation was signed and persisted, before it logged the decision or
/// learned the outcome: the audit still shows the operation (pending), `sak op list` lists it,
/// and `sak op status` settles it from the chain without sending it (exit 3: it may still land).
#[test]
fn an_operation_whose_run_was_cut_off_is_audited_listed_and_settled_without_sending() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("smart").parse().unwrap();
    let id = home.trader_session("bot");
    let done = home.swap(&id.to_string(), "10", &["--json"]).ok().json();
    // What the killed run left: an intent on a lane of its own, signed, never sent.
    let hash = B256::repeat_byte(0x5a);
    let cut_off = home.plant_signed_intent(account, id, (0xdead, 0), hash);

    let audit = home.json(&["audit"]);
    let rows = audit["decisions"].as_array().unwrap();
    let row = rows.iter().find(|d| d["user_op_hash"] == serde_json::json!(hash)).expect("a row for the op");
    assert_eq!(row["outcome"], "pending (signed)", "{row:#}");
    assert_eq!(row["key_name"], "bot");
    assert!(row["reason"].as_str().unwrap().starts_with("ok (signed"), "{row:#}");
    let ok = rows.iter().find(|d| d["user_op_hash"] == done["user_op_hash"]).unwrap();
    assert_eq!(ok["outcome"], "included");
    assert_eq!(
        rows.iter().filter(|d| d["user_op_hash"] == done["user_op_hash"]).count(),
        1,
        "one row per op"
    );

    let list = home.json(&["op", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["intent"], cut_off);
    assert_eq!(list[0]["state"], "signed");

    // Not on chain, its nonce free: it may still land. Exit 3, and nothing was sent.
    let run = home.sak(&["--json", "op", "status", &cut_off.to_string()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.json()["state"], "signed");
    assert!(run.stderr.contains("may still land"), "{}", run.stderr);
    // By hash too; an unknown one is an error with a hint.
    assert_eq!(home.sak(&["op", "status", &hash.to_string()]).code, 3);
    let run = home.sak(&["op", "status", "999"]).fails(2);
    assert!(run.stderr.contains("sak op list"), "{}", run.stderr);
    // A settled one: exit 0.
    let settled = home.json(&["op", "status", done["user_op_hash"].as_str().unwrap()]);
    assert_eq!(settled["state"], "included");
}

#[test]
fn audit_chain_lists_the_accounts_session_operations_signed_here_or_elsewhere() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();
    // The agent's machine: a copy of the home as it is now, with a ledger of its own from here on.
    let agent = Home::new();
    let copied = std::process::Command::new("cp")
        .args(["-a", &format!("{}/.", home.path().display()), &agent.path().display().to_string()])
        .status()
        .unwrap();
    assert!(copied.success());
    let here_op = home.swap(&id, "300", &["--json"]).ok().json();
    let mut direct_args = vec!["--json".to_owned()];
    direct_args.extend(common::swap_args(&id, "100"));
    direct_args.extend(["--via".to_owned(), "direct".to_owned()]);
    let here_direct = home.sak(&direct_args.iter().map(String::as_str).collect::<Vec<_>>()).ok().json();
    let there_op = agent.swap(&id, "200", &["--json"]).ok().json();

    let audit = home.json(&["audit", "--chain"]);
    let chain = &audit["chain"];
    let ops = chain["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 3, "{chain:#}");
    let find = |key: &str, value: &Value| {
        ops.iter()
            .find(|o| o[key] == *value)
            .unwrap_or_else(|| panic!("no op with {key} {value} in {chain:#}"))
    };
    let mine = find("user_op_hash", &here_op["user_op_hash"]);
    assert_eq!((mine["path"].as_str(), mine["origin"].as_str()), (Some("user-op"), Some("here")));
    assert_eq!(mine["tx_hash"], here_op["transaction"]);
    assert_eq!(mine["success"], true);
    let direct = find("tx_hash", &here_direct["transaction"]);
    assert_eq!((direct["path"].as_str(), direct["origin"].as_str()), (Some("direct"), Some("here")));
    assert!(direct["user_op_hash"].is_null());
    let theirs = find("user_op_hash", &there_op["user_op_hash"]);
    assert_eq!((theirs["path"].as_str(), theirs["origin"].as_str()), (Some("user-op"), Some("elsewhere")));
    assert!(
        ops.iter().all(|o| o["session"].as_u64().unwrap().to_string() == id
            && o["time"].as_str().unwrap().ends_with("UTC"))
    );
    assert_eq!(chain["elsewhere"], 1);
    // The owner's own acts (the grant) are no session operations; the agent's home, asked the
    // same, sees its own op as here and the owner home's two as elsewhere.
    assert_eq!(agent.json(&["audit", "--chain"])["chain"]["elsewhere"], 2);
    let text = home.sak(&["audit", "--chain"]).ok().stdout;
    assert!(text.contains("3 session operations") && text.contains("1 signed elsewhere"), "{text}");

    // --from-block past the last op: nothing; past the head: an error that says what to do.
    let to = chain["to_block"].as_u64().unwrap();
    let none = home.json(&["audit", "--chain", "--from-block", &to.to_string()]);
    assert!(none["chain"]["ops"].as_array().unwrap().len() < 3);
    home.sak(&["audit", "--chain", "--from-block", &(to + 1_000).to_string()]).fails(2);
    home.sak(&["audit", "--from-block", "1"]).fails_without_hint(2);
    // Without --chain, no chain part.
    assert!(home.json(&["audit"])["chain"].is_null());
}

/// A restarted node is a new chain: the doctor says so (and nothing about accounts that only
/// the old chain had), and `--repair` creates the home's accounts again under their names and
/// addresses, restores the default, and names each session to grant anew. Run again, it has
/// nothing to do.
#[test]
fn after_a_chain_reset_the_doctor_repairs_the_accounts_and_names_the_sessions_to_grant_again() {
    let mut home = Home::with_node();
    let main = home.owner_and_account("smart");
    let eoa = home.json(&["account", "create", "--kind", "7702", "--name", "eoa"])["address"].clone();
    home.sak(&["account", "use", "eoa"]).ok();
    let id = home.trader_session("bot");

    home.stop_node();
    home.start_node();
    let doc = doctor_failing(&home, &[]);
    let c = doctor_check(&doc, "chain_identity");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("`main`"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("sak doctor --repair"), "{c}");
    assert!(doc["checks"].as_array().unwrap().iter().all(|c| c["name"] != "account"), "{doc:#}");

    // Without an owner key nothing can be made: the repair says why, and nothing changes.
    let key = home.data().join("keys/owner.json");
    std::fs::rename(&key, key.with_extension("away")).unwrap();
    let doc = doctor_failing(&home, &["--repair"]);
    assert!(doctor_check(&doc, "repair")["fix"].as_str().unwrap().contains("sak owner"), "{doc:#}");
    std::fs::rename(key.with_extension("away"), &key).unwrap();

    let doc = home.json(&["doctor", "--repair"]);
    let repair = &doc["repair"];
    let made: Vec<(&str, &str, bool)> = repair["recreated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (a["name"].as_str().unwrap(), a["address"].as_str().unwrap(), a["created"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(made, [("eoa", eoa.as_str().unwrap(), true), ("main", main.to_lowercase().as_str(), true)]);
    assert_eq!(repair["sessions"][0]["id"], id);
    assert_eq!(repair["sessions"][0]["command"], "sak --account eoa session grant --key bot …");
    assert_eq!(doctor_check(&doc, "chain_identity")["status"], "ok");
    assert_eq!(doctor_check(&doc, "account")["status"], "ok", "{doc:#}");
    let shown = home.json(&["account", "show"]);
    assert_eq!((&shown["name"], &shown["code_size"]), (&"eoa".into(), &23.into()), "the default is back");
    assert!(home.json(&["--account", "main", "account", "show"])["code_size"].as_u64().unwrap() > 0);

    let again = home.json(&["doctor", "--repair"]);
    assert!(doctor_check(&again, "repair")["detail"].as_str().unwrap().starts_with("nothing to repair"));
    // The home works on the new chain: a session granted anew swaps.
    home.sak(&["node", "fund", "account", "--usd", "100"]).ok();
    let id = home.trader_session("bot-2");
    home.swap(&id.to_string(), "1", &[]).ok();
}
