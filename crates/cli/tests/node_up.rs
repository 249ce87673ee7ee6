//! `sak node up` as a user runs it: started, read, stopped by each signal; bad input refused.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const SAK: &str = env!("CARGO_BIN_EXE_sak");

/// `sak` with a private SAK_HOME (one per test process: nextest runs each test in its own), so
/// that `node up` records itself there, never in the user's home.
fn sak_cmd() -> Command {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().unwrap());
    let mut cmd = Command::new(SAK);
    cmd.env("SAK_HOME", home.path()).env_remove("SAK_NETWORK").env_remove("SAK_RPC_URL");
    cmd
}

struct Running {
    child: Child,
    summary: serde_json::Value,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sak --json node up --port 0 <extra>` and waits for its JSON summary line.
fn node_up(extra: &[&str]) -> Running {
    let mut child = sak_cmd()
        .args(["--json", "--quiet", "node", "up", "--port", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).expect("sak node up printed nothing within 60 s");
    let summary = serde_json::from_str(&line).unwrap_or_else(|e| {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("not JSON ({e}): {line:?}\nstderr: {err}")
    });
    Running { child, summary }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn wait_gone(pid: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rpc_chain_id(url: &str) -> Option<u64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use alloy::providers::{Provider, ProviderBuilder};
        ProviderBuilder::new().connect_http(url.parse().unwrap()).get_chain_id().await.ok()
    })
}

fn stops_cleanly_on(sig: &str) {
    let mut up = node_up(&[]);
    let s = &up.summary;
    assert_eq!(s["profile"], "local");
    assert_eq!(s["chain_id"], 31337);
    assert_eq!(s["contracts"]["entry_point"], "0x4337084d9e255ff0702461cf8895ce9e3b5ff108");
    assert_eq!(s["dev_accounts"].as_array().unwrap().len(), 10);
    assert!(s["fork"].is_null());
    let url = s["rpc_url"].as_str().unwrap().to_string();
    assert_eq!(rpc_chain_id(&url), Some(31337), "the printed RPC URL answers");
    let anvil = s["anvil_pid"].as_u64().unwrap();
    assert!(alive(anvil));

    signal(up.child.id(), sig);
    let status = up.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "sak exits 0 on {sig}");
    wait_gone(anvil);
    assert_eq!(rpc_chain_id(&url), None, "nothing answers after {sig}");
}

#[test]
fn node_up_json_then_sigterm_stops_anvil() {
    stops_cleanly_on("TERM");
}

#[test]
fn node_up_then_ctrl_c_stops_anvil() {
    stops_cleanly_on("INT");
}

#[test]
fn node_up_killed_outright_leaves_no_anvil() {
    let mut up = node_up(&[]);
    let anvil = up.summary["anvil_pid"].as_u64().unwrap();
    signal(up.child.id(), "KILL");
    up.child.wait().unwrap();
    wait_gone(anvil);
}

#[test]
fn node_up_reports_anvil_dying_under_it() {
    let mut up = node_up(&[]);
    let anvil = up.summary["anvil_pid"].as_u64().unwrap();
    signal(anvil as u32, "KILL");
    let status = up.child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    let mut err = String::new();
    up.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("exited on its own"), "{err}");
}

/// Runs sak to completion; returns (exit code, stdout, stderr).
fn sak(args: &[&str]) -> (i32, String, String) {
    let out = sak_cmd().args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn malformed_anvil_toml_names_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("anvil.toml");
    std::fs::write(&file, "[profiles.local]\nchain_id = 5\nblocktime = 2\n").unwrap();
    let (code, out, err) = sak(&["node", "up", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "no data on stdout: {out}");
    assert!(err.contains(&format!("{}:3:1", file.display())), "{err}");
    assert!(err.contains("blocktime"), "{err}");
    assert!(err.contains("hint: a profile takes only these keys"), "{err}");
}

#[test]
fn unknown_profile_lists_the_defined_ones_in_json_too() {
    let (code, out, err) = sak(&["--json", "node", "up", "--profile", "mainnet"]);
    assert_eq!(code, 2);
    assert!(err.contains("no profile named `mainnet`"), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["error"]["hint"], "use one of the defined profiles: fork, local, test");
}

#[test]
fn port_in_use_is_refused_with_a_hint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (code, _, err) = sak(&["node", "up", "--port", &port]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("127.0.0.1:{port}: the port is already in use")), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn fork_profile_without_its_url_says_which_variable_to_set() {
    let out =
        sak_cmd().args(["node", "up", "--profile", "fork"]).env_remove("SAK_FORK_URL").output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("SAK_FORK_URL"), "{err}");
}
