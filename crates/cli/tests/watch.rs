//! `sak watch` as an owner runs it: a live monitor beside a trading agent, its alerts on stdout
//! and POSTed to a real local HTTP server (which fails its first request, so the retry is
//! exercised), a kill switch that revokes the session near its cap, and a restart that resumes
//! from the cursor without raising the same alerts again.

mod common;

use alloy::providers::{Provider, ProviderBuilder};
use common::{Home, block_on};
use sak_testkit::{FaultPlan, FaultProxy};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

/// A webhook receiver on a free loopback port: answers 500 to its first request and 200 after;
/// every request's body arrives on the channel with its arrival time.
fn webhook() -> (String, mpsc::Receiver<(Instant, u16, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = if n == 0 { 500 } else { 200 };
            let reason = if status == 200 { "OK" } else { "Internal Server Error" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = tx.send((Instant::now(), status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        }
    });
    (url, rx)
}

/// The watch process, stopped (by its pid) when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

/// Reads alert lines from `lines` until one of `kind` comes (at most 60 s).
fn until(lines: &mpsc::Receiver<Value>, seen: &mut Vec<Value>, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(a) = seen.iter().find(|a| a["kind"] == kind) {
            return a.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(a) => seen.push(a),
            Err(_) => panic!("no `{kind}` alert within 60 s; seen: {seen:#?}"),
        }
    }
}

#[test]
fn watch_alerts_freezes_a_session_near_its_cap_posts_to_a_webhook_and_resumes() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let id = home.trader_session("bot").to_string();
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let start = block_on(async { provider.get_block_number().await }).unwrap() + 1;

    home.sak(&["watch", "--webhook", "not a url"]).fails(2);
    home.sak(&["watch", "--freeze-on", "sometimes"]).fails_without_hint(2);

    let (url, posts) = webhook();
    let relayer = "0x0000000000000000000000000000000000000001";
    let args = [
        "--json",
        "watch",
        "--interval",
        "200ms",
        "--from-block",
        &start.to_string(),
        "--webhook",
        &url,
        "--freeze-on",
        "near_cap",
        "--relayer",
        relayer,
    ];
    let mut child =
        Killed(home.command(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap());
    let (tx, lines) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
    });
    let mut seen = Vec::new();

    // Three swaps of 300 of a 1000 cap: the third reaches 90%.
    home.swap(&id, "300", &[]).ok();
    home.swap(&id, "300", &[]).ok();
    let unknown = until(&lines, &mut seen, "unknown_relayer");
    assert_eq!(unknown["session"].to_string(), id);
    assert!(seen.iter().all(|a| a["kind"] != "near_cap"), "60% is below the 80% threshold: {seen:#?}");
    home.swap(&id, "300", &[]).ok();
    let third = Instant::now();
    let near = until(&lines, &mut seen, "near_cap");
    assert_eq!(near["session"].to_string(), id);
    assert_eq!(near["data"]["spent"], "0x35a4e900", "900 tUSD: {near}");
    assert!(near["detail"].as_str().unwrap().contains("(90%)"), "{near}");
    // The kill switch: the session is revoked at once, and the chain says so.
    let frozen = until(&lines, &mut seen, "frozen");
    assert!(frozen["tx"].as_str().unwrap().starts_with("0x"));
    until(&lines, &mut seen, "session_revoked");
    let list = home.json(&["session", "list"]);
    assert_eq!(list["sessions"][0]["status"], "revoked");
    // The agent's next swap is refused (SessionNotActive), and that is an alert too.
    home.swap(&id, "10", &[]).fails(1);
    let refusal = until(&lines, &mut seen, "refusal");
    assert!(refusal["detail"].as_str().unwrap().contains("SessionNotActive"), "{refusal}");
    // An allowance the owner gives from the account.
    home.owner_call("tUSD", "approve(address,uint256)", &[relayer, "5"]);
    let allowance = until(&lines, &mut seen, "allowance_changed");
    assert_eq!(allowance["data"]["kind"], "erc20");

    // Whatever else this round raised (the last swap's unknown_relayer...).
    while let Ok(a) = lines.recv_timeout(Duration::from_secs(2)) {
        seen.push(a);
    }

    // The webhook got every alert, in order, once it answered 200 (its first answer was 500:
    // that alert was sent again).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = Vec::new();
    while received.iter().filter(|(_, s, _)| *s == 200).count() < seen.len() && Instant::now() < deadline {
        if let Ok(p) = posts.recv_timeout(Duration::from_millis(500)) {
            received.push(p);
        }
    }
    assert_eq!(received[0].1, 500);
    assert_eq!(received[1].2, received[0].2, "the refused post is retried first");
    let delivered: Vec<&Value> = received.iter().filter(|(_, s, _)| *s == 200).map(|(.., b)| b).collect();
    assert_eq!(delivered, seen.iter().collect::<Vec<_>>());
    let near_posted = received.iter().find(|(_, s, b)| *s == 200 && b["kind"] == "near_cap").unwrap().0;
    eprintln!(
        "alert latency: the swap that crossed 80% returned -> near_cap POSTed to the webhook in {} ms",
        near_posted.duration_since(third).as_millis()
    );

    // A restart resumes from the cursor: nothing of the above is raised again.
    drop(child);
    let again = home.sak(&["--json", "watch", "--once", "--relayer", relayer]).ok();
    let kinds: Vec<Value> =
        again.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].clone()).collect();
    assert!(!kinds.iter().any(|k| k == "near_cap" || k == "frozen" || k == "session_revoked"), "{kinds:?}");
}

#[test]
fn watch_once_raises_due_sessions_and_a_changed_delegation() {
    let home = Home::with_node();
    home.owner_and_account("7702");
    home.sak(&["key", "new", "--name", "short"]).ok();
    home.sak(&[
        "session",
        "grant",
        "--key",
        "short",
        "--role",
        "trader",
        "--cap",
        "tUSD:100/1d",
        "--expires",
        "2h",
    ])
    .ok();
    let once = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["--json", "watch", "--once", "--from-block", "1"];
        args.extend_from_slice(extra);
        let run = home.sak(&args).ok();
        run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let kinds = |alerts: &[Value]| -> Vec<String> {
        alerts.iter().map(|a| a["kind"].as_str().unwrap().to_owned()).collect()
    };
    // Ends within 24 h, held "too long" and unused "too long" at these thresholds.
    let first = once(&["--rotate-after", "0s", "--stale", "0s"]);
    let k = kinds(&first);
    for kind in ["session_granted", "expiring", "rotation_due", "stale"] {
        assert!(k.iter().any(|x| x == kind), "no {kind} in {k:?}");
    }
    let expiring = first.iter().find(|a| a["kind"] == "expiring").unwrap();
    assert!(expiring["detail"].as_str().unwrap().contains("UTC"), "{expiring}");
    // Raised once: the next round has nothing new.
    assert_eq!(once(&["--rotate-after", "0s", "--stale", "0s"]), Vec::<Value>::new());
    // Each refusal is an alert; five within ten minutes (the default rate) are one more.
    let refuse = |n| (0..n).for_each(|_| drop(home.swap("1", "500", &[]).fails(1)));
    refuse(3);
    assert_eq!(kinds(&once(&[])), ["refusal"; 3], "3 of 5/10m: no refusal_rate yet");
    refuse(2);
    let burst = once(&[]);
    assert_eq!(kinds(&burst), ["refusal", "refusal", "refusal_rate"]);
    assert_eq!((&burst[2]["session"], &burst[2]["data"]["refused"]), (&1.into(), &5.into()));
    home.sak(&["watch", "--once", "--refusal-rate", "5"]).fails(2);
    // The delegation changes (undelegate: every session revoked, then the code cleared).
    home.sak(&["account", "undelegate"]).ok();
    let k = kinds(&once(&[]));
    assert!(
        k.contains(&"delegation_changed".to_owned()) && k.contains(&"session_revoked".to_owned()),
        "{k:?}"
    );
}

#[test]
fn watch_through_a_failing_endpoint_misses_no_event_and_raises_none_twice() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    let provider = ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap());
    let start = block_on(async { provider.get_block_number().await }).unwrap() + 1;
    let metrics_at = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    // Half the requests fail: connections closed, 503s, answers held back.
    let proxy = FaultProxy::start(
        home.rpc_url.as_deref().unwrap(),
        FaultPlan::flaky(0.5, Duration::from_millis(300)),
    )
    .unwrap();
    let args = [
        "--json",
        "--rpc-url",
        proxy.url(),
        "watch",
        "--interval",
        "200ms",
        "--from-block",
        &start.to_string(),
        "--metrics",
        &metrics_at,
    ];
    let mut child = Killed(home.command(&args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    let (tx, lines) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap());
        }
    });
    for name in ["a", "b", "c", "d"] {
        home.trader_session(name);
    }
    let mut seen: Vec<Value> = Vec::new();
    while seen.iter().filter(|a| a["kind"] == "session_granted").count() < 4 {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => seen.push(a),
            Err(_) => panic!("fewer than 4 session_granted within 60 s: {seen:#?}"),
        }
    }
    while let Ok(a) = lines.recv_timeout(Duration::from_secs(3)) {
        seen.push(a);
    }
    let granted: Vec<u64> = seen
        .iter()
        .filter(|a| a["kind"] == "session_granted")
        .map(|a| a["session"].as_u64().unwrap())
        .collect();
    assert_eq!(granted, [1, 2, 3, 4], "each grant once, in order");
    eprintln!("the watch's endpoint, faults injected: {:?}", proxy.stats());
    // Its counters, for Prometheus.
    let mut scrape = std::net::TcpStream::connect(&metrics_at).unwrap();
    scrape.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut page = String::new();
    scrape.read_to_string(&mut page).unwrap();
    assert!(page.contains("sak_watch_alerts_total{kind=\"session_granted\"} 4"), "{page}");
    let rounds = page.lines().find_map(|l| l.strip_prefix("sak_watch_rounds_total ")).unwrap();
    assert!(rounds.parse::<u64>().unwrap() > 0, "{page}");
    drop(child);
}

/// An endpoint that caps `eth_getLogs` at a few blocks (as public providers cap ranges):
/// the scans shrink their requests until it answers, and see the same events as without it.
#[test]
fn log_scans_adapt_to_an_endpoint_that_caps_their_range() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    for name in ["a", "b", "c"] {
        home.trader_session(name);
    }
    home.owner_call("tUSD", "approve(address,uint256)", &["0x000000000000000000000000000000000000dEaD", "5"]);
    let proxy =
        FaultProxy::start(home.rpc_url.as_deref().unwrap(), FaultPlan::new(0.0, Vec::new()).max_log_range(3))
            .unwrap();
    let run = |args: &[&str], via: Option<&str>| -> String {
        let mut all = vec!["--json"];
        if let Some(url) = via {
            all.extend(["--rpc-url", url]);
        }
        all.extend_from_slice(args);
        home.sak(&all).ok().stdout
    };
    let kinds = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let through = kinds(run(&["watch", "--once", "--from-block", "1"], Some(proxy.url())));
    assert_eq!(through.iter().filter(|k| *k == "session_granted").count(), 3, "{through:?}");
    assert!(through.contains(&"allowance_changed".to_owned()), "{through:?}");
    let approvals = |via| {
        serde_json::from_str::<Value>(&run(&["account", "approvals", "--from-block", "1"], via)).unwrap()
    };
    assert_eq!(approvals(Some(proxy.url()))["approvals"], approvals(None)["approvals"]);
    let refused = proxy.stats().get("log-range").copied().unwrap_or_default();
    assert!(refused > 0, "the cap was met: {:?}", proxy.stats());
}
