//! An anvil child process: started from a [`Profile`], stopped (by PID) when dropped.

use crate::{
    config::Profile,
    error::{Error, Result},
};
use alloy::signers::local::PrivateKeySigner;
use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

/// How long anvil may take to listen. A fork fetches chain state first, so it gets longer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const FORK_START_TIMEOUT: Duration = Duration::from_secs(120);
const STDERR_LINES_KEPT: usize = 20;

/// A running anvil. Dropping it kills the process and reaps it.
pub struct AnvilNode {
    child: Child,
    port: u16,
    endpoint: String,
    dev_signers: Vec<PrivateKeySigner>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for AnvilNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnvilNode")
            .field("pid", &self.child.id())
            .field("endpoint", &self.endpoint)
            .field("dev_accounts", &self.dev_signers.len())
            .finish_non_exhaustive()
    }
}

/// What anvil's stdout tells us once it listens.
struct Ready {
    port: u16,
    keys: Vec<String>,
}

impl AnvilNode {
    /// Starts `anvil` with the profile's flags and waits until it accepts connections.
    ///
    /// On Linux the child gets `PR_SET_PDEATHSIG`, so anvil dies with us even when we are
    /// killed with SIGKILL and no destructor runs.
    pub fn spawn(anvil: &Path, profile: &Profile) -> Result<Self> {
        if profile.port != 0 {
            ensure_port_free(profile)?;
        }
        let mut command = Command::new(anvil);
        command.args(profile.anvil_args()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = spawn_tied_to_process(command)
            .map_err(|source| Error::Io { context: format!("starting {}", anvil.display()), source })?;

        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::Builder::new()
            .name("anvil-stdout".into())
            .spawn(move || read_stdout(stdout, ready_tx))
            .map_err(|source| Error::Io { context: "starting the anvil output reader".into(), source })?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        let stderr = child.stderr.take().expect("piped");
        std::thread::Builder::new()
            .name("anvil-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::debug!(target: "sak_node::anvil", "{line}");
                    let mut tail = tail.lock().unwrap();
                    if tail.len() == STDERR_LINES_KEPT {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            })
            .map_err(|source| Error::Io { context: "starting the anvil error reader".into(), source })?;

        let timeout = if profile.fork_url.is_some() { FORK_START_TIMEOUT } else { START_TIMEOUT };
        let deadline = Instant::now() + timeout;
        let mut node = Self { child, port: 0, endpoint: String::new(), dev_signers: vec![], stderr_tail };
        let ready = loop {
            match ready_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ready) => break ready,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = node.child.try_wait() {
                        return Err(node.start_failure(profile, Some(status)));
                    }
                }
                Err(_) => {
                    // Reader gone (stdout closed) or timed out: anvil is not going to listen.
                    std::thread::sleep(Duration::from_millis(100));
                    let status = node.child.try_wait().ok().flatten();
                    return Err(node.start_failure(profile, status));
                }
            }
        };
        node.port = ready.port;
        node.endpoint = format!("http://{}", SocketAddr::new(profile.host, ready.port));
        node.dev_signers =
            ready.keys.iter().map(|k| k.parse::<PrivateKeySigner>()).collect::<Result<_, _>>().map_err(
                |e| Error::AnvilStart { reason: format!("unreadable dev key in anvil's output: {e}") },
            )?;
        tracing::debug!(pid = node.pid(), endpoint = %node.endpoint, "anvil listening");
        Ok(node)
    }

    /// anvil's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port anvil listens on.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP JSON-RPC endpoint, e.g. `http://127.0.0.1:8545`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Signers for anvil's funded dev accounts (anvil's public test mnemonic: never use these
    /// keys on a real network).
    pub fn dev_signers(&self) -> &[PrivateKeySigner] {
        &self.dev_signers
    }

    /// `Some(status)` once anvil has exited (for example, killed from outside).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines anvil wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn start_failure(&mut self, profile: &Profile, status: Option<ExitStatus>) -> Error {
        // Let the stderr reader catch anvil's last words.
        std::thread::sleep(Duration::from_millis(50));
        let tail = self.stderr_tail();
        if tail.contains("in use") {
            return Error::PortInUse { host: profile.host.to_string(), port: profile.port };
        }
        let what = match status {
            Some(status) => format!("anvil exited ({status})"),
            None => "anvil did not listen in time".to_string(),
        };
        let reason = if tail.is_empty() { what } else { format!("{what}: {tail}") };
        // A fork URL can appear in anvil's messages: never echo its secret parts.
        let reason = match (&profile.fork_url, profile.fork_origin()) {
            (Some(url), Some(origin)) => reason.replace(url.as_str(), &format!("{origin}/…")),
            _ => reason,
        };
        Error::AnvilStart { reason }
    }
}

impl Drop for AnvilNode {
    fn drop(&mut self) {
        // By PID, the child we started: never by process name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_port_free(profile: &Profile) -> Result<()> {
    match TcpListener::bind(SocketAddr::new(profile.host, profile.port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(Error::PortInUse { host: profile.host.to_string(), port: profile.port })
        }
        Err(source) => {
            Err(Error::Io { context: format!("checking {}:{}", profile.host, profile.port), source })
        }
    }
}

/// Reads anvil's banner (dev keys, then `Listening on host:port`), reports it, then keeps
/// draining stdout so anvil never blocks on a full pipe.
fn read_stdout(stdout: std::process::ChildStdout, ready: mpsc::Sender<Ready>) {
    let mut keys = Vec::new();
    let mut in_keys = false;
    let mut sent = false;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if !sent {
            let trimmed = line.trim();
            if trimmed == "Private Keys" {
                in_keys = true;
            } else if in_keys && trimmed.starts_with('(') {
                if let Some(key) = trimmed.split_whitespace().nth(1) {
                    keys.push(key.to_string());
                }
            } else if in_keys && trimmed.starts_with("Wallet") {
                in_keys = false;
            } else if let Some(addr) = trimmed.strip_prefix("Listening on ") {
                let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
                sent = true;
                let _ = ready.send(Ready { port, keys: std::mem::take(&mut keys) });
            }
        }
        tracing::trace!(target: "sak_node::anvil", "{line}");
    }
}

/// Spawns `command` so that the child dies when this process does (anvil, Alto).
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so children are
/// forked from one thread that lives as long as the process.
pub fn spawn_tied_to_process(command: Command) -> std::io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
        static SPAWNER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);
        let mut spawner = SPAWNER.lock().unwrap();
        let tx = match &*spawner {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::channel::<Job>();
                std::thread::Builder::new().name("sak-spawner".into()).spawn(move || {
                    for (mut command, reply) in rx {
                        let _ = reply.send(pdeathsig::spawn(&mut command));
                    }
                })?;
                spawner.insert(tx).clone()
            }
        };
        drop(spawner);
        let (reply_tx, reply_rx) = mpsc::channel();
        tx.send((command, reply_tx)).map_err(|_| std::io::Error::other("spawner thread is gone"))?;
        reply_rx.recv().map_err(|_| std::io::Error::other("spawner thread is gone"))?
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut command = command;
        command.spawn()
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod pdeathsig {
    use std::{
        os::unix::process::CommandExt,
        process::{Child, Command},
    };

    pub(super) fn spawn(command: &mut Command) -> std::io::Result<Child> {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (prctl, getppid).
        unsafe {
            let parent = libc::getpid();
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        command.spawn()
    }
}
