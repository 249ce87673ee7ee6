#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod routes;

use sak::{
    Chain, Hinted, Home, Result, WrapErr,
    agent::{self, Agent, HeldKey},
};
use serde::Serialize;
use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

/// How the daemon serves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where it listens: a loopback address (port 0: any free port).
    pub listen: SocketAddr,
    /// The session it signs for, and how operations travel (its key is held in memory).
    pub agent: agent::Options,
}

impl Config {
    /// Session `session` on `listen`, self-bundled.
    pub fn new(listen: SocketAddr, session: u32) -> Self {
        Self { listen, agent: agent::Options::new(session) }
    }
}

/// A running daemon, as `sak agent serve` announces it (`--json`). No secret is in it: the
/// bearer token is in `token_file` (mode 0600), readable by the home's user only.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The file that holds the bearer token.
    pub token_file: PathBuf,
    /// The session it signs for.
    pub session: u32,
    /// The session key it holds.
    pub key: sak::Address,
    /// The account.
    pub account: sak::Address,
    /// This process.
    pub pid: u32,
}

/// What every request shares: the home, the chain, the held key, the token.
pub(crate) struct State {
    pub(crate) home: Home,
    pub(crate) chain: Chain,
    pub(crate) agent: agent::Options,
    pub(crate) account: sak::Address,
    pub(crate) token: String,
}

/// `data/daemon.lock`: held while a daemon serves this home.
pub fn lock_path(home: &Home) -> PathBuf {
    home.paths.data_dir.join("daemon.lock")
}

/// `data/daemon.token`: the bearer token of the running daemon.
pub fn token_path(home: &Home) -> PathBuf {
    home.paths.data_dir.join("daemon.token")
}

/// Serves `config` for `home` until `shutdown` completes, then lets the requests in flight
/// finish. Refused when another daemon serves this home, when `listen` is not a loopback
/// address, or when the session's key does not open. `ready` hears where it listens once it
/// does.
pub async fn serve(
    home: Home,
    config: Config,
    ready: impl FnOnce(&Running),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if !config.listen.ip().is_loopback() {
        return Err(Hinted::refused(
            format!("{} is not a loopback address: the daemon signs for whoever reaches it", config.listen),
            "listen on 127.0.0.1 (or ::1); put an authenticated proxy in front to reach it from elsewhere",
        )
        .into());
    }
    std::fs::create_dir_all(&home.paths.data_dir)
        .wrap_err_with(|| format!("creating {}", home.paths.data_dir.display()))?;
    let lock = std::fs::File::create(lock_path(&home)).wrap_err("opening the daemon's lock file")?;
    if lock.try_lock().is_err() {
        return Err(Hinted::refused(
            format!("another daemon serves this home ({} is locked)", lock_path(&home).display()),
            "stop it first (its `sak agent serve` process), or serve another home (SAK_HOME)",
        )
        .into());
    }
    let chain = home.chain().await?;
    let account = home.account(chain.chain_id)?.address;
    let mut options = config.agent.clone();
    // Opening the agent checks the session on the chain and decrypts its key, once.
    let held: HeldKey = Agent::open(&options, &home, &chain).await?.held_key();
    options.held_key = Some(held.clone());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .wrap_err_with(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr().wrap_err("the listening address")?;
    let token = random_token()?;
    sak::store::write_atomic(&token_path(&home), token.as_bytes(), 0o600)?;
    let running = Running {
        url: format!("http://{address}"),
        token_file: token_path(&home),
        session: options.session,
        key: held.address(),
        account,
        pid: std::process::id(),
    };
    let state = Arc::new(State { home, chain, agent: options, account, token });
    ready(&running);
    tracing::info!(url = %running.url, session = running.session, "the daemon serves");
    let served = axum::serve(listener, routes::router(Arc::clone(&state)))
        .with_graceful_shutdown(shutdown)
        .await
        .wrap_err("serving");
    let _ = std::fs::remove_file(token_path(&state.home));
    drop(lock);
    served
}

fn random_token() -> Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| sak::Error::msg(format!("reading randomness: {e}")))?;
    Ok(hex::encode(bytes))
}
