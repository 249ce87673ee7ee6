//! `sak session show|revoke|revoke-all|rotate` as an owner runs them on a local chain: the
//! allowances after a grant, after a swap and across a period, revocation (once, twice, of an
//! unknown id, of everything), rotation to a new key, their JSON, and bad input.

mod common;

use alloy::{
    providers::{Provider, ProviderBuilder},
    sol_types::SolEvent,
};
use common::Home;
use sak_primitives::units::format_time;
use serde_json::Value;

const DAY: u64 = 86_400;

/// Moves the node's clock forward by `secs` and mines a block (anvil's test methods).
fn advance(home: &Home, secs: u64) {
    let url = home.rpc_url.as_deref().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let provider = ProviderBuilder::new().connect_http(url);
        let _: Value = provider.raw_request("evm_increaseTime".into(), (secs,)).await.unwrap();
        let _: Value = provider.raw_request("evm_mine".into(), serde_json::json!([])).await.unwrap();
    });
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn statuses(home: &Home) -> Vec<(u64, String)> {
    home.json(&["session", "list"])["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (u64_of(&s["id"]), s["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn show_follows_a_cap_through_a_swap_a_new_period_and_expiry() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();

    // Fresh: the whole cap remains, renewing one period after the session's start.
    let shown = home.json(&["session", "show", &id]);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["key_name"], "bot");
    assert_eq!(shown["revoked_by"], Value::Null);
    let valid_after = u64_of(&shown["policy"]["valid_after"]);
    assert_eq!(u64_of(&shown["policy"]["valid_until"]), valid_after + 7 * DAY);
    let tusd = &shown["allowances"][0];
    assert_eq!(tusd["name"], "tUSD");
    assert_eq!(tusd["decimals"], 6);
    assert_eq!(tusd["cap"], "1000000000", "1,000 tUSD in base units, decimal");
    assert_eq!(tusd["spent"], "0");
    assert_eq!(tusd["remaining"], tusd["cap"]);
    assert_eq!(tusd["window"], 0);
    assert_eq!(u64_of(&tusd["renews_at"]), valid_after + DAY);
    assert_eq!(shown["gas"]["kind"], "budget");
    assert_eq!(shown["gas"]["budget_wei"], "100000000000000000");
    assert_eq!(shown["gas"]["spent_wei"], "0");
    assert_eq!(shown["operations"], Value::Null);
    // The granted policy reads back exactly as granted (hex, as `session grant --json`).
    assert_eq!(shown["policy"]["spend_limits"][0]["allowance"], "0x3b9aca00");

    let human = home.sak(&["session", "show", &id]).ok().stdout;
    assert!(human.contains("session #1  active"), "{human}");
    let line = human.lines().find(|l| l.trim_start().starts_with("tUSD")).unwrap();
    assert!(
        line.contains("1000 left of 1000 per 1d") && line.contains(&format_time(valid_after + DAY)),
        "{line}"
    );

    // An agent swaps 300 tUSD under the session: the contracts' counter shows in `show`.
    home.swap(&id, "300", &[]).ok();
    let shown = home.json(&["session", "show", &id]);
    let tusd = &shown["allowances"][0];
    assert_eq!(tusd["spent"], "300000000");
    assert_eq!(tusd["remaining"], "700000000");
    assert_eq!(u64_of(&tusd["renews_at"]), valid_after + DAY);
    let gas_spent: u128 = shown["gas"]["spent_wei"].as_str().unwrap().parse().unwrap();
    let gas_left: u128 = shown["gas"]["remaining_wei"].as_str().unwrap().parse().unwrap();
    assert!(gas_spent > 0, "the account paid the swap's gas from the budget");
    assert_eq!(gas_spent + gas_left, 100_000_000_000_000_000);
    let human = home.sak(&["session", "show", &id]).ok().stdout;
    assert!(human.contains("700 left of 1000 per 1d (spent: 300)"), "{human}");

    // A day later the next window begins: the counter is stale, the whole cap is back.
    advance(&home, DAY);
    let tusd = home.json(&["session", "show", &id])["allowances"][0].clone();
    assert_eq!(tusd["window"], 1);
    assert_eq!(u64_of(&tusd["period_start"]), valid_after + DAY);
    assert_eq!(tusd["spent"], "0");
    assert_eq!(tusd["remaining"], "1000000000");
    assert_eq!(u64_of(&tusd["renews_at"]), valid_after + 2 * DAY);

    // Past its end: expired, nothing left, nothing renews.
    advance(&home, 7 * DAY);
    let shown = home.json(&["session", "show", &id]);
    assert_eq!(shown["status"], "expired");
    assert_eq!(shown["allowances"][0]["remaining"], "0");
    assert_eq!(shown["allowances"][0]["renews_at"], Value::Null);
    assert_eq!(shown["gas"]["remaining_wei"], "0");
    let human = home.sak(&["session", "show", &id]).ok().stdout;
    assert!(human.contains("EXPIRED at") && human.contains("nothing more can be spent"), "{human}");
    // An expired session cannot be rotated: there is nothing left to hand over.
    let refused = home.sak(&["session", "rotate", &id]).fails(2);
    assert!(refused.stderr.contains("expired"), "{}", refused.stderr);
}

#[test]
fn revoke_once_twice_unknown_and_all() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    for name in ["a", "b", "c"] {
        home.trader_session(name);
    }
    let state_file = home.data().join("state.json");

    // Without the password nothing is sent and nothing stored changes.
    let before = std::fs::read(&state_file).unwrap();
    let run = without_password(&home, &["session", "revoke", "1"]).fails(2);
    assert!(run.stderr.contains("SAK_PASSWORD"), "{}", run.stderr);
    assert_eq!(std::fs::read(&state_file).unwrap(), before);
    assert_eq!(statuses(&home)[0].1, "active");

    let revoked = home.json(&["session", "revoke", "1"]);
    assert_eq!(revoked["already_revoked"], false);
    assert_eq!(revoked["status_before"], "active");
    assert!(revoked["transaction"].as_str().unwrap().starts_with("0x"));
    assert_eq!(statuses(&home), vec![(1, "revoked".into()), (2, "active".into()), (3, "active".into())]);

    // Again: reported, not an error, nothing sent (so no password needed).
    let again = without_password(&home, &["--json", "session", "revoke", "1"]).ok().json();
    assert_eq!(again["already_revoked"], true);
    assert_eq!(again["revoked_by"], "revoke");
    assert_eq!(again["transaction"], Value::Null);
    let human = home.sak(&["session", "revoke", "1"]).ok().stdout;
    assert!(human.contains("already revoked"), "{human}");

    // Never granted on this account: exit 2, pointing at `sak session list`.
    for cmd in ["revoke", "show", "rotate"] {
        let unknown = home.sak(&["session", cmd, "42"]).fails(2);
        assert!(
            unknown.stderr.contains("#42") && unknown.stderr.contains("sak session list"),
            "{}",
            unknown.stderr
        );
    }
    let unknown = home.sak(&["--json", "session", "revoke", "42"]).fails(2).json();
    assert_eq!(unknown["error"]["exit_code"], 2);
    assert!(unknown["error"]["hint"].as_str().unwrap().contains("sak session list"));
    assert_eq!(home.sak(&["session", "show", "not-a-number"]).code, 2);

    let shown = home.json(&["session", "show", "1"]);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revoked_by"], "revoke");
    assert_eq!(shown["allowances"][0]["remaining"], "0");
    assert_eq!(shown["allowances"][0]["spent"], "0", "a single revoke leaves the counters readable");

    // Everything at once: the sessions still live (2 and 3) are reported as ended.
    let all = home.json(&["session", "revoke-all"]);
    let ended: Vec<u64> = all["ended"].as_array().unwrap().iter().map(|e| u64_of(&e["id"])).collect();
    assert_eq!(ended, vec![2, 3]);
    assert_eq!(all["ended"][0]["key_name"], "b");
    let salt = all["salt"].as_str().unwrap();
    assert!(salt.len() == 18 && salt.starts_with("0x") && salt != "0x0000000000000000", "{salt}");
    assert_eq!(statuses(&home), vec![(1, "revoked".into()), (2, "revoked".into()), (3, "revoked".into())]);
    let shown = home.json(&["session", "show", "3"]);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revoked_by"], "revoke-all");
    assert_eq!(shown["allowances"][0]["spent"], Value::Null, "counters of the old epoch are unreachable");
    let human = home.sak(&["session", "show", "3"]).ok().stdout;
    assert!(human.contains("REVOKED (with all sessions"), "{human}");
    assert_eq!(home.json(&["session", "revoke", "3"])["revoked_by"], "revoke-all");
    // A revoked session's key is refused by the chain.
    home.swap("2", "1", &[]).fails(1);
}

#[test]
fn rotate_gives_the_session_a_new_key_in_one_transaction_and_keeps_its_counters() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    home.trader_session("bot");
    let keys_dir = home.data().join("keys").join("session");
    let state_file = home.data().join("state.json");
    home.swap("1", "300", &[]).ok();
    let old = home.json(&["session", "show", "1"]);
    assert_eq!(old["allowances"][0]["remaining"], "700000000");

    // Missing password: no key made, nothing changed.
    let before = std::fs::read(&state_file).unwrap();
    let run = without_password(&home, &["session", "rotate", "1"]).fails(2);
    assert!(run.stderr.contains("SAK_PASSWORD"), "{}", run.stderr);
    assert!(!keys_dir.join("bot-r2.json").exists());
    assert_eq!(std::fs::read(&state_file).unwrap(), before);
    // Bad --key values.
    home.sak(&["session", "rotate", "1", "--key", "bot"]).fails(2);
    home.sak(&["session", "rotate", "1", "--key", "../evil"]).fails(2);

    let rotated = home.json(&["session", "rotate", "1"]);
    assert_eq!(rotated["id"], 1);
    assert_eq!(rotated["key_name"], "bot-r2");
    assert_eq!(rotated["key_created"], true);
    assert_eq!(rotated["old_key"], old["key"]);
    assert_ne!(rotated["key"], old["key"]);
    assert!(keys_dir.join("bot-r2.json").exists());

    // Still one session, now with the new key; what the old key spent this period still counts.
    let list = home.json(&["session", "list"]);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(list["sessions"][0]["status"], "active");
    assert_eq!(list["sessions"][0]["key_name"], "bot-r2");
    assert!(list["sessions"][0]["rotated_at"].is_u64());
    let new = home.json(&["session", "show", "1"]);
    assert_eq!(new["key"], rotated["key"]);
    assert_eq!(new["policy"], old["policy"]);
    assert_eq!(new["allowances"][0]["remaining"], "700000000", "no fresh cap on rotation");
    home.swap("1", "701", &[]).fails(1);
    home.swap("1", "5", &[]).ok();

    // Again, to an existing key given by name, then a new one: the name counter goes on.
    home.sak(&["key", "new", "--name", "spare"]).ok();
    let human = home.sak(&["session", "rotate", "1", "--key", "spare"]).ok().stdout;
    assert!(human.contains("session #1 now signs with `spare`"), "{human}");
    assert_eq!(home.json(&["session", "rotate", "1"])["key_name"], "spare-r2");
    assert_eq!(statuses(&home), vec![(1, "active".into())]);

    // Revoked: the last key is told so by name (SessionNotActive, exit 1); rotating is refused.
    home.sak(&["session", "revoke", "1"]).ok();
    let refused = home.swap("1", "1", &[]).fails(1);
    assert!(refused.stderr.contains("SessionNotActive"), "{}", refused.stderr);
    home.sak(&["session", "rotate", "1"]).fails(2);
}

/// Runs `sak ARGS` without `SAK_PASSWORD` in its environment.
fn without_password(home: &Home, args: &[&str]) -> common::Run {
    let mut cmd = home.command(args);
    cmd.env_remove("SAK_PASSWORD");
    common::Run::from_output(cmd.output().unwrap())
}

#[test]
fn ownership_moves_to_another_home_in_two_steps_and_sessions_stay() {
    let a = Home::with_node();
    let account = a.owner_and_account("smart");
    let id = a.trader_session("bot");
    let old_owner = a.json(&["owner", "show"])["address"].as_str().unwrap().to_owned();

    // A second home on the same chain, with an owner key of its own.
    let b = Home::new();
    let url = a.rpc_url.clone().unwrap();
    b.sak(&["init", "--network", "shared", "--rpc-url", &url, "--chain-id", "31337"]).ok();
    b.sak(&["owner", "new"]).ok();
    let new_owner = b.json(&["owner", "show"])["address"].as_str().unwrap().to_owned();
    a.sak(&["node", "fund", &new_owner, "--eth", "1"]).ok();

    // Not proposed yet: refused, nothing changes.
    let early = b.sak(&["account", "accept-ownership", &account]).fails(1);
    assert!(early.stderr.contains("transfer-ownership"), "{}", early.stderr);
    let proposed = a.json(&["account", "transfer-ownership", "--to", &new_owner]);
    assert_eq!(proposed["pending_owner"].as_str().unwrap().to_lowercase(), new_owner.to_lowercase());
    assert_eq!(proposed["owner"].as_str().unwrap(), old_owner);
    // Still the old owner's: it can grant.
    a.sak(&["key", "new", "--name", "bot2"]).ok();
    a.sak(&["session", "grant", "--key", "bot2", "--role", "viewer", "--expires", "1d"]).ok();

    let accepted = b.json(&["account", "accept-ownership", &account]);
    assert_eq!(accepted["owner"].as_str().unwrap(), new_owner);
    assert_eq!(b.json(&["account", "show"])["address"].as_str().unwrap(), account);

    // The old owner is refused by the account; the session it granted still works.
    let refused =
        a.sak(&["session", "grant", "--key", "bot2", "--role", "viewer", "--expires", "1d"]).fails(1);
    assert!(refused.stderr.contains("NotOwner"), "{}", refused.stderr);
    assert!(refused.stderr.contains("ownership moved"), "the hint says why: {}", refused.stderr);
    // `account show` says whose it is on chain, and that this home no longer owns it.
    let shown = a.json(&["account", "show"]);
    assert_eq!(shown["owner"].as_str().unwrap(), new_owner);
    assert_eq!(shown["home_is_owner"], false);
    assert_eq!(b.json(&["account", "show"])["home_is_owner"], true);
    a.swap(&id.to_string(), "10", &[]).ok();

    // Each home lists every session the account issued: its own grants `here`, the other's
    // `elsewhere` (read from the chain, no key name); a record of an id the chain never issued
    // (a reset chain's) is `local-only`.
    b.sak(&["key", "new", "--name", "b-bot"]).ok();
    b.sak(&["session", "grant", "--key", "b-bot", "--role", "viewer", "--expires", "1d"]).ok();
    let origins = |home: &Home| -> Vec<(u64, String, String, Value)> {
        home.json(&["session", "list"])["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap().to_owned();
                (u64_of(&s["id"]), text("origin"), text("status"), s["key_name"].clone())
            })
            .collect()
    };
    let active = || "active".to_owned();
    assert_eq!(
        origins(&b),
        vec![
            (1, "elsewhere".into(), active(), Value::Null),
            (2, "elsewhere".into(), active(), Value::Null),
            (3, "here".into(), active(), "b-bot".into()),
        ]
    );
    let listed = b.json(&["session", "list"]);
    assert_eq!(listed["sessions"][0]["key"].as_str().unwrap().len(), 42, "the key is read from the chain");
    assert!(listed["sessions"][0]["granted_at"].is_null());
    let state_file = a.data().join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let network = state["networks"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .find(|n| n["sessions"].as_array().is_some_and(|s| !s.is_empty()))
        .unwrap();
    let mut stray = network["sessions"][0].clone();
    stray["id"] = 50.into();
    network["sessions"].as_array_mut().unwrap().push(stray);
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    assert_eq!(
        origins(&a),
        vec![
            (1, "here".into(), active(), "bot".into()),
            (2, "here".into(), active(), "bot2".into()),
            (3, "elsewhere".into(), active(), Value::Null),
            (50, "local-only".into(), "unknown".into(), "bot".into()),
        ]
    );
    assert!(a.sak(&["session", "list"]).ok().stdout.contains("local-only: recorded here"));
    // A delegated EOA cannot hand its key over.
    let c = Home::with_node();
    c.owner_and_account("7702");
    let eoa = c.sak(&["account", "transfer-ownership", "--to", &new_owner]).fails(1);
    assert!(eoa.stderr.contains("delegated EOA"), "{}", eoa.stderr);
}

#[test]
fn a_7702_account_keeps_no_session_from_before_its_last_delegation() {
    use alloy::{
        primitives::{Address, B256, U256, keccak256},
        signers::local::PrivateKeySigner,
        sol_types::SolValue,
    };
    use sak_contracts::{AccountState, SIMPLE_7702_ACCOUNT_V08, SakAccount};
    use sak_userop::eip7702;
    use std::io::Write;

    let home = Home::with_node();
    home.sak(&["init"]).ok();
    // anvil's dev key 8 (a public test key) owns the EOA: the test signs its own
    // authorizations to re-delegate it outside sak.
    let dev_key_8 =
        home.node_summary.as_ref().unwrap()["dev_accounts"][8]["private_key"].as_str().unwrap().to_owned();
    let mut import = home.command(&["owner", "import", "--private-key-stdin"]);
    let mut child =
        import.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(dev_key_8.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    home.sak(&["node", "fund", "owner", "--eth", "10", "--usd", "5000"]).ok();
    let owner: PrivateKeySigner = dev_key_8.parse().unwrap();
    let eoa = owner.address();
    // One runtime for the whole test: the provider's block watcher lives on it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let provider = alloy::providers::ProviderBuilder::new()
        .connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let sak7702: Address = home.node_summary.as_ref().unwrap()["contracts"]["sak_7702_account"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let revoked_in = |tx: &str| {
        let receipt =
            rt.block_on(provider.get_transaction_receipt(tx.parse::<B256>().unwrap())).unwrap().unwrap();
        receipt
            .inner
            .logs()
            .iter()
            .any(|l| l.topic0() == Some(&SakAccount::AllSessionsRevoked::SIGNATURE_HASH))
    };
    let check = |doc: &Value| common::doctor_check(doc, "leftover_sessions").clone();

    // sak's delegation ends whatever the EOA's storage held, in its own transaction.
    let created = home.json(&["account", "create", "--kind", "7702"]);
    assert_eq!(created["created"], true);
    assert!(
        revoked_in(created["transaction"].as_str().unwrap()),
        "revokeAllSessions in the type-4 transaction"
    );
    let id = home.trader_session("bot");
    assert_eq!(check(&home.json(&["doctor"]))["status"], "ok");

    // Away and back outside sak: the old session is live again, and the doctor says so.
    rt.block_on(eip7702::delegate_self(&provider, &owner, SIMPLE_7702_ACCOUNT_V08)).unwrap();
    rt.block_on(eip7702::delegate_self(&provider, &owner, sak7702)).unwrap();
    let view =
        rt.block_on(async { SakAccount::new(eoa, &provider).getSession(id as u32).call().await }).unwrap();
    assert!(view.active, "EIP-7702 keeps storage: the session is live again");
    let doc = home.sak(&["--json", "doctor"]).fails(2).json();
    let c = check(&doc);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains(&format!("session #{id}")), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("sak account create --kind 7702"), "{c}");

    // `account create` ends it before reporting the account ready.
    let again = home.json(&["account", "create", "--kind", "7702"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["ended_leftovers"][0]["id"], id);
    assert_eq!(again["ended_leftovers"][0]["reason"], "granted-before-delegation");
    assert!(revoked_in(again["ended_by"].as_str().unwrap()));
    assert_eq!(home.json(&["session", "show", &id.to_string()])["status"], "revoked");
    assert_eq!(check(&home.json(&["doctor"]))["status"], "ok");
    // Nothing left: running it again sends nothing.
    let idle = home.json(&["account", "create", "--kind", "7702"]);
    assert_eq!(idle["ended_by"], Value::Null);

    // A record another delegate wrote, under the current salt, at the next id, with the id
    // counter moved to it: live, with no grant event.
    let id2 = home.trader_session("bot2");
    let slot = AccountState::slot(eoa);
    let word = rt.block_on(async { provider.get_storage_at(eoa, slot.into()).await }).unwrap();
    let state = AccountState::from_word(word);
    let planted = state.next_id + 1;
    let set = |slot: B256, value: U256| {
        let _: Value = rt
            .block_on(provider.raw_request("anvil_setStorageAt".into(), (eoa, slot, B256::from(value))))
            .unwrap();
    };
    set(slot, word + (U256::from(1u8) << 224));
    let records = U256::from_be_slice(sak_contracts::SESSIONS_STORAGE_ROOT.as_slice()) + U256::from(1u8);
    let s_key = keccak256((state.salt, planted).abi_encode());
    let record_slot = keccak256((eoa, keccak256((s_key, records).abi_encode())).abi_encode());
    set(
        record_slot,
        U256::from_be_slice(Address::repeat_byte(0x66).as_slice()) | (U256::from(u64::MAX >> 24) << 200),
    );
    assert!(
        rt.block_on(async { SakAccount::new(eoa, &provider).getSession(planted).call().await })
            .unwrap()
            .active
    );
    let c = check(&home.sak(&["--json", "doctor"]).fails(2).json());
    assert!(c["detail"].as_str().unwrap().contains("no grant event"), "{c}");
    let again = home.json(&["account", "create", "--kind", "7702"]);
    let ended: Vec<(u64, String)> = again["ended_leftovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (u64_of(&l["id"]), l["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(ended, [(u64::from(planted), "no-grant-event".to_owned())]);
    assert!(
        !rt.block_on(async { SakAccount::new(eoa, &provider).getSession(planted).call().await })
            .unwrap()
            .active
    );
    // The owner's own session went with the salt (revoke-all ends everything).
    assert_eq!(home.json(&["session", "show", &id2.to_string()])["status"], "revoked");

    // Undelegating ends every session first, then clears the code; a second run sends nothing.
    let id3 = home.trader_session("bot3");
    let out = home.json(&["account", "undelegate"]);
    assert_eq!(out["previous_delegate"].as_str().unwrap().parse::<Address>().unwrap(), sak7702);
    assert!(revoked_in(out["sessions_revoked_by"].as_str().unwrap()));
    assert!(rt.block_on(async { provider.get_code_at(eoa).await }).unwrap().is_empty(), "a plain EOA again");
    assert_eq!(home.json(&["account", "undelegate"])["previous_delegate"], Value::Null);
    // Delegating back brings no session back.
    assert_eq!(home.json(&["account", "create", "--kind", "7702"])["created"], true);
    assert!(
        !rt.block_on(async { SakAccount::new(eoa, &provider).getSession(id3 as u32).call().await })
            .unwrap()
            .active
    );
}

/// A session this home has no record of (granted from another home, or the records lost) is
/// found through the account's index of grants: `session show` and a swap read its policy from
/// its grant's block. The index is a cache: written behind the confirmation depth, brought up
/// to date incrementally, rebuilt when it does not parse.
#[test]
fn sessions_without_a_record_are_found_through_the_accounts_index_of_grants() {
    let home = Home::with_node();
    let account = home.owner_and_account("smart").to_lowercase();
    let first = home.trader_session("bot");
    let second = home.trader_session("bot2");
    // Forget the records, as a home that did not grant them.
    let state_path = home.data().join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["networks"]["local"]["sessions"] = Value::Array(Vec::new());
    std::fs::write(&state_path, state.to_string()).unwrap();

    let shown = home.json(&["session", "show", &second.to_string()]);
    assert_eq!((&shown["id"], &shown["status"]), (&second.into(), &"active".into()));
    let index_path = home.data().join(format!("index/grants-local-{account}.json"));
    let index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let grants = index["grants"].as_object().unwrap();
    assert_eq!(grants.len(), 2, "{index}");
    assert!(grants[&first.to_string()].as_u64() < grants[&second.to_string()].as_u64(), "{index}");
    let indexed_to = index["next_block"].as_u64().unwrap();

    // A swap under it, with its key named (no record says which).
    let mut swap = common::swap_args(&second.to_string(), "1");
    swap.extend(["--key".to_owned(), "bot2".to_owned()]);
    home.sak(&swap.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    let index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    assert!(index["next_block"].as_u64().unwrap() >= indexed_to, "only ever forward: {index}");
    // A damaged cache is rebuilt, not trusted.
    std::fs::write(&index_path, "{ not json").unwrap();
    assert_eq!(home.json(&["session", "show", &first.to_string()])["status"], "active");
    assert_eq!(
        serde_json::from_slice::<Value>(&std::fs::read(&index_path).unwrap()).unwrap()["grants"],
        index["grants"]
    );
    // An id the account never issued is unknown, with the list's hint.
    let unknown = home.sak(&["session", "show", "9"]).fails(2);
    assert!(unknown.stderr.contains("sak session list"), "{}", unknown.stderr);
}
