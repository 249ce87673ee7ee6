//! Handing a session to an agent on another machine: the owner's home exports one bundle, a
//! second home with no owner key imports it and swaps through its own relayer; the chain's
//! refusals (over the cap, after a revoke) reach it; nothing it holds can grant.

mod common;

use common::{Home, KEY_PASSWORD, Run, mcp_client};
use serde_json::{Value, json};
use std::{os::unix::fs::PermissionsExt, process::Command};

/// `sak --json ARGS` in `home` with `env` set: its run.
fn run_with(home: &Home, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut cmd: Command = home.command(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

/// The owner's home on its own chain, with a smart account and trader session 1 (key `bot`):
/// (home, session id, RPC URL).
fn owner_with_session() -> (Home, String, String) {
    let owner = Home::with_node();
    owner.owner_and_account("smart");
    let id = owner.trader_session("bot").to_string();
    let rpc = owner.rpc_url.clone().unwrap();
    (owner, id, rpc)
}

/// anvil's public dev account `i` of the owner's chain: (address, key), a relayer's.
fn dev_account(owner: &Home, i: usize) -> (String, String) {
    let account = &owner.node_summary.as_ref().unwrap()["dev_accounts"][i];
    (account["address"].as_str().unwrap().to_owned(), account["private_key"].as_str().unwrap().to_owned())
}

fn swap(amount: &str) -> Vec<&str> {
    vec!["swap", "--session", "1", "--in", "tUSD", "--out", "TKN", "--amount", amount, "--min-out", "0"]
}

#[test]
fn an_agent_home_without_any_owner_secret_swaps_and_meets_the_chains_refusals() {
    let (owner, id, rpc) = owner_with_session();
    let (relayer, relayer_key) = dev_account(&owner, 7);

    // The bundle: mode 0600, never overwritten, and nothing of the owner's keystore in it.
    let file = owner.path().join("bot-session.json");
    let bundle_path = file.to_str().unwrap();
    let exported = owner.json(&["session", "export", &id, "--out", bundle_path]);
    assert_eq!(exported["with_key"], true, "{exported}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    owner.sak(&["session", "export", &id, "--out", bundle_path]).fails(1);
    let text = std::fs::read_to_string(&file).unwrap();
    let owner_keystore: Value =
        serde_json::from_str(&std::fs::read_to_string(owner.data().join("keys/owner.json")).unwrap())
            .unwrap();
    let owner_cipher = owner_keystore["crypto"]["ciphertext"].as_str().unwrap();
    assert!(!text.contains(owner_cipher), "the owner's keystore is in the bundle");
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle["session"]["key_name"], "bot");
    assert_eq!(bundle["book"]["tUSD"]["decimals"], 6);

    // The agent's home: imports with the session keys' passphrase and the endpoint.
    let agent = Home::new();
    let imported = agent.json(&["--rpc-url", &rpc, "agent", "import", bundle_path]);
    assert_eq!(
        (imported["session"].as_u64(), imported["key_name"].as_str()),
        (Some(1), Some("bot")),
        "{imported}"
    );
    assert!(!agent.data().join("keys/owner.json").exists(), "the agent's home has no owner key");
    // A second import changes nothing; a wrong passphrase opens nothing.
    agent.json(&["agent", "import", bundle_path]);
    let other = Home::new();
    let wrong =
        run_with(&other, &[("SAK_KEY_PASSWORD", "not the passphrase")], &["agent", "import", bundle_path]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        !other.path().join("config.toml").exists() && !other.data().exists(),
        "a refused import wrote files"
    );

    // No relayer yet: said plainly, nothing sent. With the agent's own relayer: included.
    let none = agent.sak(&swap("300")).fails(2);
    assert!(none.stderr.contains("needs a relayer"), "{}", none.stderr);
    let relayed = run_with(&agent, &[("SAK_RELAYER_KEY", &relayer_key)], &swap("300"));
    let bare = relayer_key.trim_start_matches("0x");
    assert!(!relayed.stdout.contains(bare) && !relayed.stderr.contains(bare), "the relayer key was printed");
    assert!(!any_file_holds(agent.path(), bare), "the relayer key was written to the agent's home");
    let doc = relayed.ok().json();
    assert_eq!(doc["state"], "included", "{doc}");
    assert_eq!(doc["charges"][0]["remaining"], "700000000", "{doc}");
    let shown =
        run_with(&agent, &[("SAK_RELAYER_KEY", &relayer_key)], &["agent", "relayer", "show"]).ok().json();
    assert_eq!(shown["address"].as_str().unwrap().to_lowercase(), relayer.to_lowercase());

    // The imported home serves MCP as well: the session's status, and a dry run.
    let agent_dir = agent.path().to_str().unwrap().to_owned();
    let calls = json!([
        { "name": "status", "arguments": {} },
        { "name": "dry_run", "arguments": { "token_in": "tUSD", "token_out": "TKN", "amount": "10", "min_out": "0" } },
    ]);
    let env = [
        ("SAK_HOME", agent_dir.as_str()),
        ("SAK_KEY_PASSWORD", KEY_PASSWORD),
        ("SAK_RELAYER_KEY", &relayer_key),
    ];
    let doc = mcp_client(&["mcp", "--session", "1"], &calls, &env);
    assert_eq!(doc["results"][0]["structuredContent"]["status"], "active", "{doc}");
    assert_eq!(doc["results"][1]["structuredContent"]["state"], "checked", "{doc}");

    // Over the cap: refused by name, on the agent's machine as on the owner's.
    let over = run_with(&agent, &[("SAK_RELAYER_KEY", &relayer_key)], &swap("800")).fails(1).json();
    assert_eq!(over["error"]["refusal"]["name"], "SpendCapExceeded", "{over}");

    // Nothing the agent holds can grant or un-revoke.
    let grant = agent.sak(&["session", "grant", "--key", "bot", "--role", "trader", "--cap", "tUSD:5000/1d"]);
    assert_ne!(grant.code, 0, "the agent granted: {}", grant.stdout);
    owner.sak(&["session", "revoke", &id]).ok();
    let revoked = run_with(&agent, &[("SAK_RELAYER_KEY", &relayer_key)], &swap("10")).fails(1).json();
    assert_eq!(revoked["error"]["refusal"]["name"], "SessionNotActive", "{revoked}");
    agent.json(&["agent", "import", bundle_path]);
    run_with(&agent, &[("SAK_RELAYER_KEY", &relayer_key)], &swap("10")).fails(1);
}

/// Whether a file under `dir` holds `text`.
fn any_file_holds(dir: &std::path::Path, text: &str) -> bool {
    walk(dir).iter().any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(text)))
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// A bundle without the key: the agent's key comes from `$SAK_SESSION_KEY`; a bundle whose
/// contracts were changed, or of another format, is refused before anything is written.
#[test]
fn a_keyless_bundle_pairs_with_a_key_from_the_environment_and_a_tampered_one_is_refused() {
    let (owner, id, rpc) = owner_with_session();
    let (_, relayer_key) = dev_account(&owner, 6);
    let file = owner.path().join("ci.json");
    let path = file.to_str().unwrap();
    assert_eq!(owner.json(&["session", "export", &id, "--out", path, "--no-key"])["with_key"], false);
    let raw = owner.path().join("bot.key");
    owner.sak(&["key", "export", "bot", "--unencrypted", "--out", raw.to_str().unwrap()]).ok();
    let session_key = std::fs::read_to_string(&raw).unwrap().trim().to_owned();

    let agent = Home::new();
    let imported = agent.json(&["--rpc-url", &rpc, "agent", "import", path]);
    assert_eq!(imported["key_name"], Value::Null, "{imported}");
    assert!(!agent.data().join("keys/session").exists(), "no key file was made");
    let env = [("SAK_RELAYER_KEY", relayer_key.as_str()), ("SAK_SESSION_KEY", session_key.as_str())];
    let doc = run_with(&agent, &env, &swap("100")).ok().json();
    assert_eq!(doc["state"], "included", "{doc}");

    // Tampered: another adapter factory; another format.
    let mut bundle: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    bundle["contracts"]["session_adapter"] = Value::from("0x000000000000000000000000000000000000dEaD");
    let bad = owner.path().join("bad.json");
    std::fs::write(&bad, bundle.to_string()).unwrap();
    let fresh = Home::new();
    fresh.sak(&["agent", "import", bad.to_str().unwrap()]).fails(1);
    bundle["format"] = Value::from("sak-session-bundle/0");
    std::fs::write(&bad, bundle.to_string()).unwrap();
    let run = fresh.sak(&["agent", "import", bad.to_str().unwrap()]).fails(2);
    assert!(run.stderr.contains("not a sak session bundle of this version"), "{}", run.stderr);
    assert!(
        !fresh.path().join("config.toml").exists() && !fresh.data().exists(),
        "a refused import wrote files"
    );
}

/// Points `home`'s config at the spend ledger `url` (config.toml's top-level `ledger`).
fn use_ledger(home: &Home, url: &str) {
    let path = home.path().join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("ledger = \"{url}\"\n{config}")).unwrap();
}

/// Two homes, the owner's and an agent's on another machine, share one PostgreSQL ledger: four
/// swaps of 300 tUSD at once, two from each, against a cap of 1,000. They queue on the
/// session's lane across homes, three land and the fourth is refused before signing; each home's
/// audit shows all four decisions, and neither keeps a ledger file of its own.
#[test]
fn homes_sharing_one_postgres_ledger_share_its_lane_reservations_and_audit() {
    let Some(pg) =
        sak_testkit::Postgres::start_or_skip().unwrap_or_else(|e| panic!("{e}\nhint: {}", e.hint()))
    else {
        return;
    };
    let url = pg.create_database("fleet").unwrap();
    let (owner, id, rpc) = owner_with_session();
    let (_, relayer_key) = dev_account(&owner, 7);
    let file = owner.path().join("bot-session.json");
    owner.json(&["session", "export", &id, "--out", file.to_str().unwrap()]);
    let agent = Home::new();
    agent.json(&["--rpc-url", &rpc, "agent", "import", file.to_str().unwrap()]);
    use_ledger(&owner, &url);
    use_ledger(&agent, &url);

    let runs: Vec<Run> = std::thread::scope(|scope| {
        let swaps: Vec<_> = (0..4)
            .map(|i| {
                let (home, env) = if i % 2 == 0 {
                    (&owner, vec![])
                } else {
                    (&agent, vec![("SAK_RELAYER_KEY", &*relayer_key)])
                };
                scope.spawn(move || run_with(home, &env, &swap("300")))
            })
            .collect();
        swaps.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    codes.sort_unstable();
    assert_eq!(codes, vec![0, 0, 0, 1], "{:#?}", runs.iter().map(|r| &r.stderr).collect::<Vec<_>>());
    let refused = runs.iter().find(|r| r.code == 1).unwrap().json();
    assert_eq!(refused["error"]["refusal"]["name"], "SpendCapExceeded", "{refused:#}");

    for home in [&owner, &agent] {
        assert!(!home.data().join("ledger.sqlite").exists(), "a ledger file of its own");
        let audit = home.json(&["audit"]);
        let decisions = audit["decisions"].as_array().unwrap();
        assert_eq!(decisions.len(), 4, "{audit:#}");
        assert_eq!(decisions.iter().filter(|d| d["allowed"] == true).count(), 3, "{audit:#}");
        assert_eq!(home.json(&["op", "list"]), json!([]));
    }
    let doctor = owner.sak(&["--json", "doctor"]).json();
    let ledger = doctor["checks"].as_array().unwrap().iter().find(|c| c["name"] == "ledger").unwrap();
    assert_eq!(ledger["status"], "ok", "{ledger:#}");
    assert!(ledger["detail"].as_str().unwrap().starts_with("postgres://127.0.0.1:"), "{ledger:#}");
}
