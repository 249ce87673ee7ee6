//! [`Alto`]: Pimlico's ERC-4337 bundler (npm `@pimlico/alto`, pinned in `tools/node/`) started
//! against a [`Kit`]'s anvil, for tests that must go through a real bundler.

use alloy::{
    primitives::Address,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use sak_node::Kit;
use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Environment variable naming the folder that holds Alto's `node_modules` (default: the
/// repository's `tools/node`).
pub const ALTO_DIR_ENV: &str = "SAK_ALTO_DIR";
/// Environment variable naming the `node` binary (default: `node` on the `PATH`).
pub const NODE_ENV: &str = "SAK_NODE";

/// Which of the kit's dev accounts Alto uses. The kit deploys from account 0; tests and the
/// sak crates use the low indexes, so Alto takes the last two of the default ten.
pub const ALTO_UTILITY_ACCOUNT: usize = 8;
/// The dev account Alto sends bundles from (its executor).
pub const ALTO_EXECUTOR_ACCOUNT: usize = 9;

const ALTO_CLI: &str = "node_modules/@pimlico/alto/esm/cli/alto.js";
const START_TIMEOUT: Duration = Duration::from_secs(90);
const OUTPUT_LINES_KEPT: usize = 30;

/// What can go wrong starting Alto. [`AltoError::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AltoError {
    /// `tools/node/node_modules` has no Alto.
    #[error("Alto not found (looked in: {})", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Missing {
        /// Where we looked.
        looked: Vec<PathBuf>,
    },
    /// The kit has too few dev accounts for Alto's executor and utility keys.
    #[error("the kit has {have} dev accounts; Alto needs account {need}")]
    NotEnoughAccounts {
        /// Dev accounts the kit has.
        have: usize,
        /// The index Alto needs.
        need: usize,
    },
    /// Starting the process failed.
    #[error("starting Alto: {0}")]
    Spawn(#[source] std::io::Error),
    /// Alto exited, or did not answer in time.
    #[error("Alto did not start: {reason}")]
    Start {
        /// What we observed, with Alto's last output lines.
        reason: String,
    },
}

impl AltoError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "run `npm ci` in tools/node (`make toolchain` does it)",
            Self::NotEnoughAccounts { .. } => "start the kit with at least 10 dev accounts",
            Self::Spawn(_) => "is `node` (>= 18) on the PATH? Set SAK_NODE to a node binary otherwise",
            Self::Start { .. } => {
                "read Alto's output above; it needs EntryPoint v0.8 deployed and funded executor/utility accounts"
            }
        }
    }
}

/// A running Alto bundler. Dropping it kills the process (by its PID) and reaps it.
pub struct Alto {
    child: Option<Child>,
    pid: u32,
    url: String,
    executor: Address,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for Alto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alto")
            .field("pid", &self.pid)
            .field("url", &self.url)
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl Alto {
    /// Starts Alto against `kit`'s anvil on a free port, with EntryPoint v0.8, safe mode off
    /// (the ERC-7562 tracing of every operation: see [`Alto::start_safe`]) and dev accounts [`ALTO_EXECUTOR_ACCOUNT`] / [`ALTO_UTILITY_ACCOUNT`]
    /// as its keys, and waits until it answers `eth_supportedEntryPoints`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use sak_testkit::{Alto, Kit, Profile};
    /// let kit = Kit::start(Profile::test()).await?;
    /// let alto = Alto::start(&kit, &[]).await?;
    /// println!("bundler at {}", alto.url());
    /// # Ok(()) }
    /// ```
    pub async fn start(kit: &Kit, extra_args: &[&str]) -> Result<Self, AltoError> {
        Self::spawn(kit, false, extra_args).await
    }

    /// As [`Alto::start`], in safe mode: Alto traces each operation's validation with its
    /// ERC-7562 collector (a JavaScript tracer, which anvil runs) and refuses operations that
    /// break a rule, as a public mempool's bundler does.
    pub async fn start_safe(kit: &Kit, extra_args: &[&str]) -> Result<Self, AltoError> {
        Self::spawn(kit, true, extra_args).await
    }

    async fn spawn(kit: &Kit, safe: bool, extra_args: &[&str]) -> Result<Self, AltoError> {
        let dir = locate()?;
        let keys = kit.dev_signers();
        let need = ALTO_EXECUTOR_ACCOUNT.max(ALTO_UTILITY_ACCOUNT);
        if keys.len() <= need {
            return Err(AltoError::NotEnoughAccounts { have: keys.len(), need });
        }
        let port = free_port().map_err(AltoError::Spawn)?;
        let node = std::env::var_os(NODE_ENV).unwrap_or_else(|| "node".into());
        let mut command = Command::new(node);
        // Keys on the command line: acceptable only because these are anvil's public dev keys.
        let hex_key = |k: &PrivateKeySigner| format!("0x{}", alloy::hex::encode(k.to_bytes()));
        command
            .current_dir(&dir)
            .arg(dir.join(ALTO_CLI))
            .args(["--rpc-url", kit.rpc_url()])
            .args(["--entrypoints", &kit.deployment().entry_point.to_string()])
            .args(["--executor-private-keys", &hex_key(&keys[ALTO_EXECUTOR_ACCOUNT])])
            .args(["--utility-private-key", &hex_key(&keys[ALTO_UTILITY_ACCOUNT])])
            .args(["--safe-mode", if safe { "true" } else { "false" }])
            .args(["--port", &port.to_string()])
            .args(["--log-level", "warn", "--public-client-log-level", "warn"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = sak_node::spawn_tied_to_process(command).map_err(AltoError::Spawn)?;
        let pid = child.id();
        let output = Arc::new(Mutex::new(VecDeque::new()));
        for (name, stream) in [
            ("alto-stdout", child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)),
            ("alto-stderr", child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)),
        ] {
            let Some(stream) = stream else { continue };
            let tail = Arc::clone(&output);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        tracing::debug!(target: "sak_testkit::alto", "{line}");
                        let mut tail = tail.lock().unwrap();
                        if tail.len() == OUTPUT_LINES_KEPT {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                })
                .map_err(AltoError::Spawn)?;
        }
        let url = format!("http://{}", SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
        let mut alto =
            Self { child: Some(child), pid, url, executor: keys[ALTO_EXECUTOR_ACCOUNT].address(), output };
        tracing::info!(pid, url = %alto.url, "starting Alto");
        alto.wait_ready(kit.deployment().entry_point).await?;
        Ok(alto)
    }

    async fn wait_ready(&mut self, entry_point: Address) -> Result<(), AltoError> {
        let provider = ProviderBuilder::new().connect_http(self.url.parse().expect("a valid URL"));
        let started = Instant::now();
        let mut last_report = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                std::thread::sleep(Duration::from_millis(100));
                return Err(AltoError::Start {
                    reason: format!("Alto exited ({status}):\n{}", self.output_tail()),
                });
            }
            let no_params: [u8; 0] = [];
            let answer: Result<Vec<Address>, _> =
                provider.raw_request("eth_supportedEntryPoints".into(), no_params).await;
            match answer {
                Ok(eps) if eps.contains(&entry_point) => {
                    tracing::info!(elapsed = ?started.elapsed(), "Alto ready");
                    return Ok(());
                }
                Ok(eps) => {
                    return Err(AltoError::Start {
                        reason: format!("Alto serves {eps:?}, not EntryPoint {entry_point}"),
                    });
                }
                Err(alloy::transports::RpcError::ErrorResp(e)) => {
                    return Err(AltoError::Start { reason: format!("Alto answered with an error: {e}") });
                }
                Err(_) if started.elapsed() < START_TIMEOUT => {
                    if last_report.elapsed() > Duration::from_secs(10) {
                        tracing::info!(elapsed = ?started.elapsed(), "still waiting for Alto");
                        last_report = Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(AltoError::Start {
                        reason: format!(
                            "no answer to eth_supportedEntryPoints after {START_TIMEOUT:?} ({e}):\n{}",
                            self.output_tail()
                        ),
                    });
                }
            }
        }
    }

    /// Alto's JSON-RPC URL (loopback; Alto itself listens on every interface).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Alto's process id.
    pub const fn pid(&self) -> u32 {
        self.pid
    }

    /// The account Alto sends `handleOps` from.
    pub const fn executor(&self) -> Address {
        self.executor
    }

    /// Alto's last output lines (stdout and stderr).
    pub fn output_tail(&self) -> String {
        self.output.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Alto {
    fn drop(&mut self) {
        // By PID: the child we started, never by process name.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `tools/node` (the folder holding Alto's `node_modules`).
fn locate() -> Result<PathBuf, AltoError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os(ALTO_DIR_ENV) {
        candidates.push(PathBuf::from(dir));
    }
    if let Ok(cwd) = std::env::current_dir() {
        candidates.extend(cwd.ancestors().map(|d| d.join("tools/node")));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/node"));
    candidates
        .iter()
        .find(|d| d.join(ALTO_CLI).is_file())
        .cloned()
        .ok_or_else(|| AltoError::Missing { looked: candidates.iter().map(|d| d.join(ALTO_CLI)).collect() })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}
