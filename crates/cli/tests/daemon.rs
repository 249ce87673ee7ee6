//! `sak agent serve`: a daemon holds the session key and signs for clients that hold only its
//! bearer token; the guard, the ledger and the chain decide as for `sak swap`.

mod common;

use alloy::transports::http::reqwest;
use common::{Home, lost_answers, start_daemon, start_daemon_with};
use serde_json::{Value, json};
use std::{process::Child, time::Duration};

fn stop(child: &mut Child) -> std::process::ExitStatus {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the daemon did not stop on SIGTERM within 10 s");
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut req = if method == "GET" { self.http.get(url) } else { self.http.post(url) };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    async fn swap(&self, amount: &str) -> (u16, Value) {
        let body = json!({ "token_in": "tUSD", "token_out": "TKN", "amount": amount, "min_out": "0" });
        self.call("POST", "/v1/swap", Some(body), Some(&self.token)).await
    }
}

#[test]
fn a_daemon_signs_for_token_holders_within_the_cap_and_restarts_without_double_counting() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    assert_eq!(home.trader_session("bot"), 1);
    let (mut daemon, running) = start_daemon(&home);
    assert!(running["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{running}");
    // One daemon per home.
    let second = home.sak(&["agent", "serve", "--session", "1", "--listen", "127.0.0.1:0"]).fails(1);
    assert!(second.stderr.contains("another daemon serves this home"), "{}", second.stderr);

    let token_file = running["token_file"].as_str().unwrap();
    let token = std::fs::read_to_string(token_file).unwrap();
    assert!(!running.to_string().contains(&token), "the token was announced");
    let client =
        Client { http: reqwest::Client::new(), url: running["url"].as_str().unwrap().to_owned(), token };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Without the token, or with another: 401 and nothing read.
        assert_eq!(client.call("GET", "/v1/session", None, None).await.0, 401);
        let (status, doc) = client.call("GET", "/v1/session", None, Some("0123")).await;
        assert_eq!(status, 401, "{doc}");
        let (status, session) = client.call("GET", "/v1/session", None, Some(&client.token)).await;
        assert_eq!((status, session["status"].as_str()), (200, Some("active")), "{session}");
        assert_eq!(session["allowances"][0]["remaining"], "1000000000");

        let (status, quote) = client
            .call(
                "POST",
                "/v1/quote",
                Some(json!({"token_in": "tUSD", "token_out": "TKN", "amount": "300"})),
                Some(&client.token),
            )
            .await;
        assert_eq!(status, 200, "{quote}");
        assert_ne!(quote["amount_out"], "0");

        // Two swaps at once: both land, each charged once.
        let ((s1, r1), (s2, r2)) = tokio::join!(client.swap("300"), client.swap("300"));
        assert_eq!((s1, s2), (200, 200), "{r1}\n{r2}");
        assert_eq!((r1["state"].as_str(), r2["state"].as_str()), (Some("included"), Some("included")));
        // Over what is left (400): refused by name, nothing signed.
        let (status, refused) = client.swap("500").await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["error"]["refusal"]["name"], "SpendCapExceeded", "{refused}");
        assert_eq!(refused["state"], "refused");
        // A malformed request: 400 with a hint, or axum's own rejection of the body.
        let (status, _) =
            client.call("POST", "/v1/send", Some(json!({"to": "nowhere"})), Some(&client.token)).await;
        assert_eq!(status, 400);
    });

    // SIGTERM: it stops, its token goes; a new daemon reads the same ledger and chain.
    assert!(stop(&mut daemon).success());
    assert!(!std::path::Path::new(token_file).exists(), "the token outlived the daemon");
    let (mut daemon, running) = start_daemon(&home);
    let client = Client {
        http: reqwest::Client::new(),
        url: running["url"].as_str().unwrap().to_owned(),
        token: std::fs::read_to_string(running["token_file"].as_str().unwrap()).unwrap(),
    };
    runtime.block_on(async {
        assert_ne!(client.token, "", "a new token");
        let (_, session) = client.call("GET", "/v1/session", None, Some(&client.token)).await;
        assert_eq!(session["allowances"][0]["remaining"], "400000000", "{session}");
        let (status, report) = client.swap("400").await;
        assert_eq!((status, report["state"].as_str()), (200, Some("included")), "{report}");
        let (status, _) = client.swap("1").await;
        assert_eq!(status, 422);
    });
    assert!(stop(&mut daemon).success());
}

/// An operation whose answers were lost is a 202 with its hash, not a failure; a daemon started
/// again settles it from the chain (it landed) and charges it once: the next swap moves only
/// its own amount.
#[test]
fn an_operation_in_flight_when_the_daemon_stops_is_settled_by_the_next_one_never_charged_twice() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    assert_eq!(home.trader_session("bot"), 1);
    let (_receipts_down, answers_lost) = lost_answers(&home);
    let (mut daemon, running) = start_daemon_with(&home, &["--rpc-url", answers_lost.url()]);
    let client = |running: &Value| Client {
        http: reqwest::Client::new(),
        url: running["url"].as_str().unwrap().to_owned(),
        token: std::fs::read_to_string(running["token_file"].as_str().unwrap()).unwrap(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = client(&running);
    let (status, unknown) = runtime.block_on(first.swap("200"));
    assert_eq!((status, unknown["state"].as_str()), (202, Some("unknown")), "{unknown}");
    let hash = unknown["user_op_hash"].as_str().expect("an unknown outcome carries its hash").to_owned();
    assert!(stop(&mut daemon).success());

    // Started again on the node itself: the operation is found included, charged once.
    let (mut daemon, running) = start_daemon(&home);
    let again = client(&running);
    runtime.block_on(async {
        let (status, report) = again.swap("100").await;
        assert_eq!((status, report["state"].as_str()), (200, Some("included")), "{report}");
        let recovered = report["recovered"].as_array().unwrap();
        assert!(
            recovered.iter().any(|r| r["user_op_hash"] == hash.as_str() && r["outcome"] == "included"),
            "the earlier operation was not settled: {report}"
        );
        let (_, session) = again.call("GET", "/v1/session", None, Some(&again.token)).await;
        assert_eq!(session["allowances"][0]["spent"], "300000000", "{session}");
    });
    assert!(stop(&mut daemon).success());
}
