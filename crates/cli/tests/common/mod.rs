//! Running the `sak` binary as a user would: a private SAK_HOME per test, a `sak node up` on a
//! free port when the test needs a chain (stopped by pid on drop), stdin closed.

#![allow(dead_code)]

use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

pub(crate) const SAK: &str = env!("CARGO_BIN_EXE_sak");
/// The keystore password of every test home (never a real secret).
pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// Session keys' passphrase: never the owner's.
pub(crate) const KEY_PASSWORD: &str = "session keys have their own";

/// What a `sak` run left behind.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn from_output(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout as one JSON document.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    /// Asserts exit 0 and returns self.
    pub(crate) fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts the exit code only (clap's own usage errors have no `hint:` line).
    pub(crate) fn fails_without_hint(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit code and a `hint:` line on stderr.
    pub(crate) fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.contains("error: "), "no error line:\n{}", self.stderr);
        assert!(self.stderr.contains("hint: "), "no hint line:\n{}", self.stderr);
        self
    }
}

/// A user's sak home, optionally with its own local chain.
pub(crate) struct Home {
    dir: tempfile::TempDir,
    node: Option<Child>,
    pub(crate) rpc_url: Option<String>,
    pub(crate) node_summary: Option<Value>,
}

impl Home {
    /// A fresh home without a chain.
    pub(crate) fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), node: None, rpc_url: None, node_summary: None }
    }

    /// A fresh home with `sak node up --port 0` running.
    pub(crate) fn with_node() -> Self {
        let mut home = Self::new();
        home.start_node();
        home
    }

    /// Starts `sak node up --port 0` in this home (a new chain each time).
    pub(crate) fn start_node(&mut self) {
        self.start_node_with(&[]);
    }

    /// Starts `sak node up --port 0` with `extra` arguments (for example `--fork-url`).
    pub(crate) fn start_node_with(&mut self, extra: &[&str]) {
        let home = self;
        let mut args = vec!["--json", "--quiet", "node", "up", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = home.command(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("sak node up printed nothing in 120 s");
        let summary: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        home.rpc_url = Some(summary["rpc_url"].as_str().unwrap().to_owned());
        home.node_summary = Some(summary);
        home.node = Some(child);
    }

    /// Stops the node this home started (by its pid: `sak node up` stops its anvil when it goes).
    pub(crate) fn stop_node(&mut self) {
        if let Some(mut child) = self.node.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            for _ in 0..100 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `sak` command in this home, with the password in the environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(SAK);
        cmd.args(args)
            .env("SAK_HOME", self.dir.path())
            .env("SAK_PASSWORD", PASSWORD)
            .env("SAK_KEY_PASSWORD", KEY_PASSWORD)
            .env_remove("SAK_SESSION_KEY")
            .env_remove("SAK_RELAYER_KEY")
            .env_remove("SAK_NETWORK")
            .env_remove("SAK_RPC_URL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `cmd` (from [`Self::command`], its environment as set) on a terminal (a
    /// pseudo-terminal from Python's `pty`): for each (prompt, answer) in turn, types the
    /// answer and Enter once the prompt shows. stdout holds everything the terminal showed.
    pub(crate) fn on_terminal(&self, cmd: &Command, answers: &[(&str, &str)]) -> Run {
        const DRIVER: &str = r#"
import json, os, pty, sys, time
answers = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
seen, at = b"", 0
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    while answers and answers[0][0].encode() in seen[at:]:
        at = seen.index(answers[0][0].encode(), at) + len(answers[0][0])
        time.sleep(0.3)  # as a person would: the prompt turns echo off just after it shows
        os.write(fd, answers.pop(0)[1].encode() + b"\n")
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"#;
        let script = serde_json::to_string(answers).unwrap();
        let mut driver = Command::new("python3");
        driver.args(["-c", DRIVER, &script]).arg(cmd.get_program()).args(cmd.get_args()).stdin(Stdio::null());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => driver.env(k, v),
                None => driver.env_remove(k),
            };
        }
        Run::from_output(driver.output().expect("python3 (drives the pseudo-terminal)"))
    }

    /// Runs `sak ARGS` to completion.
    pub(crate) fn sak(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().unwrap())
    }

    /// Runs `sak --json ARGS`, asserts success, returns the document.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.sak(&all).ok().json()
    }

    /// `sak --json account call --to TO --sig SIG ARGS --yes`: the owner calls from the account.
    pub(crate) fn owner_call(&self, to: &str, sig: &str, args: &[&str]) -> Value {
        self.json(&[&["account", "call", "--to", to, "--sig", sig][..], args, &["--yes"]].concat())
    }

    /// init, owner new, 10 ETH to the owner, `account create --kind KIND`, and for a smart
    /// account 5 ETH and 5,000 tUSD to it. Returns the account address.
    pub(crate) fn owner_and_account(&self, kind: &str) -> String {
        self.sak(&["init"]).ok();
        self.sak(&["owner", "new"]).ok();
        self.sak(&["node", "fund", "owner", "--eth", "10", "--usd", "5000"]).ok();
        let account = self.json(&["account", "create", "--kind", kind]);
        if kind == "smart" {
            self.sak(&["node", "fund", "account", "--eth", "5", "--usd", "5000"]).ok();
        }
        account["address"].as_str().unwrap().to_owned()
    }

    /// A new key NAME and a trader session for it (cap tUSD:1000/1d, 7 days). Returns the id.
    pub(crate) fn trader_session(&self, name: &str) -> u64 {
        self.sak(&["key", "new", "--name", name]).ok();
        let granted = self.json(&[
            "session",
            "grant",
            "--key",
            name,
            "--role",
            "trader",
            "--cap",
            "tUSD:1000/1d",
            "--expires",
            "7d",
        ]);
        granted["id"].as_u64().unwrap()
    }
}

impl Home {
    /// What a run killed after persisting its signed operation leaves in this home's ledger: an
    /// intent of 5 tUSD under session `id` of `account`, signed as `hash` at nonce
    /// (`nonce_key`, `nonce_seq`), never sent. Returns its intent number.
    pub(crate) fn plant_signed_intent(
        &self,
        account: alloy::primitives::Address,
        id: u64,
        (nonce_key, nonce_seq): (u64, u64),
        hash: alloy::primitives::B256,
    ) -> i64 {
        use alloy::primitives::{Address, B256, U256};
        use sak_signer::ledger::{Ceiling, Intent, Ledger, SignedOp, Spend, SqliteLedger};
        let summary = self.node_summary.as_ref().unwrap();
        let usd: Address = summary["contracts"]["usd"].as_str().unwrap().parse().unwrap();
        let ledger = SqliteLedger::open(&self.data().join("ledger.sqlite")).unwrap();
        let intent = Intent {
            chain_id: summary["chain_id"].as_u64().unwrap(),
            account,
            session_id: B256::from(U256::from(id)),
            nonce_key: U256::from(nonce_key),
            nonce_seq: Some(nonce_seq),
            spends: vec![Spend { token: usd, window: 0, amount: U256::from(5_000_000u64) }],
            gas_cost_cap: U256::from(10u64.pow(15)),
            created_at: 1_700_000_000,
        };
        let ceiling = [Ceiling { token: usd, window: 0, max_pending: U256::from(u64::MAX), as_of: None }];
        let planted = ledger.reserve(&intent, &ceiling).unwrap();
        let op =
            SignedOp { user_op_hash: hash, nonce_key: intent.nonce_key, nonce_seq, op_bytes: vec![1].into() };
        ledger.mark_signed(planted, &op).unwrap();
        planted.0
    }
}

/// Runs `f` on a fresh single-threaded runtime (the tests' own RPC reads).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// The check named `name` of a `sak doctor --json` document.
pub(crate) fn doctor_check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {doc:#}"))
}

/// The JSON error document of a refused `sak --json ARGS EXTRA`: exit 1, its refusal named
/// `name`, like the contracts' error.
pub(crate) fn refusal(home: &Home, args: &[String], extra: &[&str], name: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend(args.iter().map(String::as_str));
    all.extend_from_slice(extra);
    let run = home.sak(&all).fails(1);
    let doc = run.json();
    assert_eq!(doc["error"]["refusal"]["name"], name, "{doc}\nstderr:\n{}", run.stderr);
    assert_eq!(doc["error"]["exit_code"], 1);
    doc
}

/// `swap --session ID --in tUSD --out TKN --amount AMOUNT --min-out 0`.
pub(crate) fn swap_args(session: &str, amount: &str) -> Vec<String> {
    ["swap", "--session", session, "--in", "tUSD", "--out", "TKN", "--amount", amount, "--min-out", "0"]
        .map(String::from)
        .to_vec()
}

impl Home {
    /// `sak [EXTRA…] swap …` of AMOUNT tUSD for TKN under session ID (see [`swap_args`]).
    pub(crate) fn swap(&self, session: &str, amount: &str, extra: &[&str]) -> Run {
        let args = swap_args(session, amount);
        let mut all: Vec<&str> = extra.to_vec();
        all.extend(args.iter().map(String::as_str));
        self.sak(&all)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.stop_node();
    }
}

/// Runs the MCP client (the official TypeScript SDK, `tools/node/mcp-client.mjs`) on `server`
/// (sak's arguments) with `calls`, in `env` (sak's own variables cleared first); its document.
pub(crate) fn mcp_client(server: &[&str], calls: &Value, env: &[(&str, &str)]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/node/mcp-client.mjs");
    let mut command = vec![SAK];
    command.extend_from_slice(server);
    let node = std::env::var_os("SAK_NODE").unwrap_or_else(|| "node".into());
    let mut cmd = Command::new(node);
    cmd.arg(&script).arg(serde_json::json!(command).to_string()).arg(calls.to_string()).stdin(Stdio::null());
    for var in [
        "SAK_HOME",
        "SAK_PASSWORD",
        "SAK_KEY_PASSWORD",
        "SAK_SESSION_KEY",
        "SAK_RELAYER_KEY",
        "SAK_DAEMON_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env_remove("SAK_NETWORK").env_remove("SAK_RPC_URL").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node (runs the MCP client)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP client failed ({}):\n{stdout}\n{}\nhint: `make toolchain` installs tools/node",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `sak --json agent serve --session 1 --listen 127.0.0.1:0` in `home`: the child and what it
/// announced.
pub(crate) fn start_daemon(home: &Home) -> (Child, Value) {
    start_daemon_with(home, &[])
}

/// [`start_daemon`] with global flags before the command (`--rpc-url URL`).
pub(crate) fn start_daemon_with(home: &Home, global: &[&str]) -> (Child, Value) {
    let mut args = global.to_vec();
    args.extend(["--json", "agent", "serve", "--session", "1", "--listen", "127.0.0.1:0"]);
    let mut child = home.command(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let running: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, running)
}

/// Proxies in front of `home`'s node where receipts are never answered and the answer to a
/// send is lost after the node took it: (inner, outer); keep both, point sak at the outer.
pub(crate) fn lost_answers(home: &Home) -> (sak_testkit::FaultProxy, sak_testkit::FaultProxy) {
    use sak_testkit::{Fault, FaultPlan, FaultProxy};
    let receipts_down = FaultProxy::start(
        home.rpc_url.as_deref().unwrap(),
        FaultPlan::new(1.0, vec![Fault::Unavailable]).only(&["eth_getTransactionReceipt"]),
    )
    .unwrap();
    let answers_lost = FaultProxy::start(
        receipts_down.url(),
        FaultPlan::new(1.0, vec![Fault::CloseAfterForward]).only(&["eth_sendRawTransaction"]),
    )
    .unwrap();
    (receipts_down, answers_lost)
}
