//! `sak mcp` driven by a real MCP client from another ecosystem (the official TypeScript SDK,
//! `tools/node/mcp-client.mjs`) over stdio: the tools are listed with their schemas, an allowed
//! swap lands, an over-cap one is a tool error naming the rule; through `--daemon` the server
//! holds only the bearer token.

mod common;

use common::{Home, KEY_PASSWORD, PASSWORD, mcp_client as client, start_daemon};
use serde_json::{Value, json};

const TOOLS: [&str; 7] = ["status", "policy", "remaining_caps", "quote_swap", "swap", "send_call", "dry_run"];

fn swap(amount: &str) -> Value {
    json!({ "name": "swap", "arguments": { "token_in": "tUSD", "token_out": "TKN", "amount": amount, "min_out": "0" } })
}

/// A refusal: a tool error with the contracts' error name and a hint.
fn assert_refused(result: &Value, name: &str) {
    assert_eq!(result["isError"], true, "{result}");
    let doc = &result["structuredContent"];
    assert_eq!(doc["error"]["refusal"]["name"], name, "{result}");
    assert_eq!(doc["state"], "refused", "{result}");
    assert!(!doc["error"]["hint"].as_str().unwrap_or_default().is_empty(), "{result}");
}

#[test]
fn an_mcp_client_lists_the_tools_swaps_and_meets_the_cap_in_process() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    assert_eq!(home.trader_session("bot"), 1);
    let dir = home.path().to_str().unwrap().to_owned();
    let calls = json!([
        { "name": "status", "arguments": {} },
        { "name": "policy", "arguments": {} },
        { "name": "quote_swap", "arguments": { "token_in": "tUSD", "token_out": "TKN", "amount": "300" } },
        { "name": "dry_run", "arguments": { "token_in": "tUSD", "token_out": "TKN", "amount": "300", "min_out": "0" } },
        swap("300"),
        swap("800"),
        { "name": "remaining_caps", "arguments": {} },
        { "name": "status", "arguments": { "session": 9 } },
    ]);
    let doc =
        client(&["mcp", "--session", "1"], &calls, &[("SAK_HOME", &dir), ("SAK_KEY_PASSWORD", KEY_PASSWORD)]);
    let names: Vec<&str> =
        doc["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for tool in TOOLS {
        assert!(names.contains(&tool), "{tool} missing from {names:?}");
    }
    let swap_schema =
        &doc["tools"].as_array().unwrap().iter().find(|t| t["name"] == "swap").unwrap()["input_schema"];
    for field in ["token_in", "token_out", "amount", "min_out", "session"] {
        assert!(swap_schema["properties"][field].is_object(), "{field}: {swap_schema}");
    }
    let r = &doc["results"];
    assert_eq!(r[0]["structuredContent"]["status"], "active", "{}", r[0]);
    assert!(r[1]["structuredContent"]["in_words"].as_str().is_some_and(|w| w.contains("tUSD")), "{}", r[1]);
    assert!(r[1]["structuredContent"]["policy"]["spend_limits"][0].is_object(), "{}", r[1]);
    assert_ne!(r[2]["structuredContent"]["amount_out"], "0", "{}", r[2]);
    assert_eq!(r[3]["structuredContent"]["state"], "checked", "{}", r[3]);
    assert_eq!(r[4]["isError"], false, "{}", r[4]);
    assert_eq!(r[4]["structuredContent"]["state"], "included", "{}", r[4]);
    assert_refused(&r[5], "SpendCapExceeded");
    assert_eq!(r[6]["structuredContent"]["allowances"][0]["remaining"], "700000000", "{}", r[6]);
    assert_eq!(r[7]["isError"], true, "session 9 was never granted: {}", r[7]);
    // No secret in any message.
    let text = doc.to_string();
    assert!(!text.contains(KEY_PASSWORD) && !text.contains(PASSWORD), "a passphrase in an MCP message");
}

/// Without a config or a session the server still starts and lists its tools; each tool
/// answers with what to do.
#[test]
fn without_a_session_the_server_lists_its_tools_and_each_says_what_to_do() {
    let home = Home::new();
    let dir = home.path().to_str().unwrap().to_owned();
    let doc = client(
        &["mcp"],
        &json!([{ "name": "remaining_caps", "arguments": {} }, swap("1")]),
        &[("SAK_HOME", &dir)],
    );
    assert_eq!(doc["tools"].as_array().unwrap().len(), TOOLS.len(), "{doc}");
    for result in doc["results"].as_array().unwrap() {
        assert_eq!(result["isError"], true, "{result}");
        assert!(
            !result["structuredContent"]["error"]["hint"].as_str().unwrap_or_default().is_empty(),
            "{result}"
        );
    }
}

/// Through the daemon: the MCP server's process holds the bearer token only (its environment
/// and open files hold no key or passphrase), and the daemon's guard decides.
#[test]
fn through_the_daemon_the_mcp_server_holds_only_a_token() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    assert_eq!(home.trader_session("bot"), 1);
    let (mut daemon, running) = start_daemon(&home);
    let token = std::fs::read_to_string(running["token_file"].as_str().unwrap()).unwrap();
    let url = running["url"].as_str().unwrap().to_owned();
    let session_key = std::fs::read_to_string(home.data().join("keys/session/bot.json")).unwrap();
    let key_cipher = serde_json::from_str::<Value>(&session_key).unwrap()["crypto"]["ciphertext"].clone();

    // The agent's side: an empty home, the token in its environment, nothing else.
    let agent = Home::new();
    let agent_dir = agent.path().to_str().unwrap().to_owned();
    let calls = json!([swap("300"), swap("800"), { "name": "remaining_caps", "arguments": {} }, { "name": "status", "arguments": { "session": 2 } }]);
    let env =
        [("SAK_HOME", agent_dir.as_str()), ("SAK_DAEMON_TOKEN", token.trim()), ("SAK_MCP_INSPECT", "1")];
    let doc = client(&["mcp", "--daemon", &url], &calls, &env);
    let r = &doc["results"];
    assert_eq!(r[0]["structuredContent"]["state"], "included", "{}", r[0]);
    assert_refused(&r[1], "SpendCapExceeded");
    assert_eq!(r[2]["structuredContent"]["allowances"][0]["remaining"], "700000000", "{}", r[2]);
    assert_eq!(r[3]["isError"], true, "the daemon serves session 1 only: {}", r[3]);

    // What the server's process held while it served: its environment and open files.
    let inspected = &doc["inspected"];
    let environ = inspected["environ"].as_str().expect("the client read the server's environment");
    assert!(environ.contains("SAK_DAEMON_TOKEN="), "the inspection did not see the server's environment");
    for secret in [KEY_PASSWORD, PASSWORD, "SAK_SESSION_KEY", "SAK_KEY_PASSWORD", "SAK_PASSWORD="] {
        assert!(!environ.contains(secret), "the MCP server's environment holds {secret}");
    }
    for fd in inspected["fds"].as_array().unwrap() {
        let target = fd.as_str().unwrap();
        assert!(
            !target.contains("/keys") && !target.contains(home.path().to_str().unwrap()),
            "open: {target}"
        );
    }
    assert!(!doc.to_string().contains(key_cipher.as_str().unwrap()), "key material in an MCP message");
    let _ = std::process::Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
    let _ = daemon.wait();
}
