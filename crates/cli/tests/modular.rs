//! A modular (ERC-7579) account from the command line: `sak account create --kind 7579` (an
//! OpenZeppelin ERC-7579 account with sak's `SessionKeyValidator` installed), a trader session
//! granted by an owner operation in which the account calls the module, swaps within the cap
//! on the module's nonce lane, one beyond it refused before signing and by the module when
//! forced, the session listed and shown from the module's records, its key rotated, revoked,
//! revoke-all and the emergency stop, each by another owner operation, refused after; and what
//! is not for a modular account yet says so.

mod common;

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use common::{Home, block_on, refusal, swap_args};
use sak_contracts::{SakAddresses, SessionKeyValidator};
use serde_json::Value;
use std::future::IntoFuture;

#[test]
fn a_modular_account_grants_swaps_and_revokes_from_the_command_line() {
    let home = Home::with_node();
    let account: Address = home.owner_and_account("7579").parse().unwrap();
    home.sak(&["node", "fund", "account", "--eth", "5", "--usd", "5000"]).ok();
    let module = SakAddresses::canonical().session_key_validator;
    let p: DynProvider =
        ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap()).erased();
    let usd: Address =
        home.node_summary.as_ref().unwrap()["contracts"]["usd"].as_str().unwrap().parse().unwrap();

    let shown = home.json(&["account", "show"]);
    assert_eq!(shown["kind"], "7579", "{shown}");
    assert_eq!(shown["owner"], home.json(&["owner", "show"])["address"], "{shown}");
    assert!(shown["code_size"].as_u64().unwrap() > 0, "deployed: {shown}");
    // Created again: nothing new.
    assert_eq!(home.json(&["account", "create", "--kind", "7579"])["created"], false);

    // The grant is an owner operation; the module keeps the session for this account.
    let id = home.trader_session("bot");
    assert_eq!(id, 1);
    let view =
        block_on(SessionKeyValidator::new(module, &p).getSession(account, 1).call().into_future()).unwrap();
    assert!(view.active, "session 1 is the module's, for the account");
    // The module admits a period's operations from the second after its start.
    block_on(async {
        let _: Value = p.raw_request("evm_increaseTime".into(), (2,)).await.unwrap();
        let _: Value = p.raw_request("evm_mine".into(), ()).await.unwrap();
    });

    let done = home.json(&swap_args("1", "600").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(done["state"], "included", "{done}");
    assert_eq!(done["charges"][0]["remaining"], "400000000", "{done}");
    let spent = block_on(SessionKeyValidator::new(module, &p).getSpend(account, 1, usd).call().into_future())
        .unwrap()
        .spent;
    assert_eq!(U256::from(spent), U256::from(600_000_000u64), "charged by the module");

    let doc = refusal(&home, &swap_args("1", "600"), &[], "SpendCapExceeded");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("before signing") && message.contains("400 tUSD remains"), "{message}");
    let doc = refusal(&home, &swap_args("1", "600"), &["--no-preflight"], "SpendCapExceeded");
    assert!(doc["error"]["message"].as_str().unwrap().contains("refused by the contracts"), "{doc}");

    // Listed and shown from the module's records.
    let listed = home.json(&["session", "list"]);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    assert_eq!((sessions[0]["id"].as_u64(), sessions[0]["status"].as_str()), (Some(1), Some("active")));
    let detail = home.json(&["session", "show", "1"]);
    assert_eq!(detail["allowances"][0]["remaining"], "400000000", "{detail}");

    // One nonce lane per session on a modular account, and no direct path.
    let lane = home
        .sak(
            &[
                &["--json"][..],
                &swap_args("1", "1").iter().map(String::as_str).collect::<Vec<_>>(),
                &["--lane", "1"],
            ]
            .concat(),
        )
        .fails(2);
    assert!(lane.json()["error"]["message"].as_str().unwrap().contains("one nonce lane"), "{}", lane.stdout);

    // A new key for the session, by owner operation: the same counters, the new key signs.
    let rotated = home.json(&["session", "rotate", "1"]);
    assert_eq!(rotated["key_name"], "bot-r2", "{rotated}");
    let view =
        block_on(SessionKeyValidator::new(module, &p).getSession(account, 1).call().into_future()).unwrap();
    assert_eq!(format!("{:#x}", view.signer), rotated["key"].as_str().unwrap().to_lowercase());
    let done = home.json(&swap_args("1", "100").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(done["charges"][0]["remaining"], "300000000", "{done}");

    // Two more sessions, ended by revoke-all and by the emergency stop, each an owner operation.
    assert_eq!(home.trader_session("bot2"), 2);

    // Revoked by another owner operation: refused locally and by the module.
    let revoked = home.json(&["session", "revoke", "1"]);
    assert_eq!(revoked["already_revoked"], false, "{revoked}");
    assert!(
        !block_on(SessionKeyValidator::new(module, &p).getSession(account, 1).call().into_future())
            .unwrap()
            .active
    );
    refusal(&home, &swap_args("1", "1"), &[], "SessionNotActive");
    refusal(&home, &swap_args("1", "1"), &["--no-preflight"], "SessionNotActive");
    assert_eq!(home.json(&["session", "list"])["sessions"][0]["status"], "revoked");

    let all = home.json(&["session", "revoke-all"]);
    let ended: Vec<u64> =
        all["ended"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ended, vec![2], "{all}");
    assert!(
        !block_on(SessionKeyValidator::new(module, &p).getSession(account, 2).call().into_future())
            .unwrap()
            .active
    );
    refusal(&home, &swap_args("2", "1"), &[], "SessionNotActive");
    assert_eq!(home.trader_session("bot3"), 3);
    home.sak(&["session", "panic", "--keep-approvals", "--yes"]).ok();
    assert!(
        !block_on(SessionKeyValidator::new(module, &p).getSession(account, 3).call().into_future())
            .unwrap()
            .active
    );
    refusal(&home, &swap_args("3", "1"), &["--no-preflight"], "SessionNotActive");

    // What does not follow a modular account's sessions yet says so, with what to use.
    let watch = home.sak(&["--json", "watch", "--once"]).fails(2);
    assert!(
        watch.json()["error"]["message"].as_str().unwrap().contains("modular (7579)"),
        "{}",
        watch.stdout
    );
}
