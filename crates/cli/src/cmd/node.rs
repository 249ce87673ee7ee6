//! `sak node up`: a local chain with everything deployed, until Ctrl-C or SIGTERM.

use crate::{cli::GlobalArgs, output};
use alloy::{
    primitives::{Address, U256, utils::format_ether},
    providers::Provider,
};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak_testkit::{Deployment, Kit, NodeConfig};
use serde::Serialize;
use std::{path::PathBuf, time::Duration};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Start anvil from an anvil.toml profile, deploy the stack, print the addresses, and run
    /// until interrupted.
    #[command(
        after_help = "Examples:\n  sak node up\n  sak node up --json --port 0\n  sak node up --fork-url \"$SEPOLIA_RPC_URL\""
    )]
    Up(UpArgs),
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Profile of anvil.toml to start.
    #[arg(long, default_value = "local")]
    profile: String,
    /// The anvil.toml to read [default: the nearest one from the current directory up, else
    /// the built-in one].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this port instead of the profile's (0: any free port).
    #[arg(long)]
    port: Option<u16>,
    /// Fork this RPC URL instead of starting an empty chain.
    #[arg(long, value_name = "URL")]
    fork_url: Option<String>,
    /// Block to fork at [default: latest].
    #[arg(long, value_name = "BLOCK", requires = "fork_url")]
    fork_block_number: Option<u64>,
}

pub(crate) async fn run(command: NodeCommand, global: &GlobalArgs) -> eyre::Result<()> {
    match command {
        NodeCommand::Up(args) => up(args, global).await,
    }
}

async fn up(args: UpArgs, global: &GlobalArgs) -> eyre::Result<()> {
    let config = match &args.config {
        Some(path) => NodeConfig::load(path)?,
        None => match std::env::current_dir().ok().as_deref().and_then(NodeConfig::find_from) {
            Some(path) => NodeConfig::load(path)?,
            None => NodeConfig::builtin(),
        },
    };
    let mut profile = config.profile(&args.profile)?;
    if let Some(url) = args.fork_url {
        profile = profile.with_fork(url, args.fork_block_number);
    }
    if let Some(port) = args.port {
        profile = profile.with_port(port);
    }
    // Listen for signals before anything starts, so none is missed during start-up.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    if let Some(origin) = profile.fork_origin() {
        tracing::info!("forking {origin} (fetching chain state may take a while)");
    }
    let started = std::time::Instant::now();
    let mut kit = tokio::select! {
        kit = Kit::start(profile) => kit.wrap_err("starting the local chain")?,
        _ = sigint.recv() => return Ok(()),
        _ = sigterm.recv() => return Ok(()),
    };
    tracing::info!("ready in {:.1}s ({})", started.elapsed().as_secs_f64(), config.source());

    let summary = Summary::collect(&kit).await?;
    output::data(&if global.json { serde_json::to_string(&summary)? } else { summary.human() })?;
    if !global.quiet {
        eprintln!("Press Ctrl-C to stop.");
    }

    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let signal = loop {
        tokio::select! {
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = sighup.recv() => break "SIGHUP",
            _ = poll.tick() => {
                if let Some(status) = kit.node_mut().exit_status() {
                    let tail = kit.node().stderr_tail();
                    eyre::bail!("anvil (pid {}) exited on its own ({status}){}", kit.node().pid(),
                        if tail.is_empty() { String::new() } else { format!(": {tail}") });
                }
            }
        }
    };
    let pid = kit.node().pid();
    drop(kit);
    tracing::info!("{signal}: stopped anvil (pid {pid})");
    Ok(())
}

/// What `sak node up` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
struct Summary {
    profile: String,
    rpc_url: String,
    chain_id: u64,
    anvil_pid: u32,
    /// Scheme and host of the forked RPC, never its path or key.
    fork: Option<String>,
    contracts: Deployment,
    dev_accounts: Vec<DevAccount>,
}

#[derive(Debug, Serialize)]
struct DevAccount {
    address: Address,
    /// anvil's public test key: printed because it is public, never usable on a real network.
    private_key: String,
    balance_wei: U256,
}

impl Summary {
    async fn collect(kit: &Kit) -> eyre::Result<Self> {
        let mut dev_accounts = Vec::new();
        for signer in kit.dev_signers() {
            let balance_wei =
                kit.provider().get_balance(signer.address()).await.wrap_err("reading dev balances")?;
            let private_key = format!("0x{}", alloy::hex::encode(signer.credential().to_bytes()));
            dev_accounts.push(DevAccount { address: signer.address(), private_key, balance_wei });
        }
        Ok(Self {
            profile: kit.profile().name.clone(),
            rpc_url: kit.rpc_url().to_string(),
            chain_id: kit.chain_id(),
            anvil_pid: kit.node().pid(),
            fork: kit.profile().fork_origin(),
            contracts: *kit.deployment(),
            dev_accounts,
        })
    }

    fn human(&self) -> String {
        let c = &self.contracts;
        let mut s = format!(
            "Local chain ready (profile `{}`)\n\n  RPC URL    {}\n  Chain ID   {}\n  anvil PID  {}\n",
            self.profile, self.rpc_url, self.chain_id, self.anvil_pid
        );
        if let Some(fork) = &self.fork {
            s += &format!("  Forked     {fork}\n");
        }
        s += "\nContracts\n";
        for (name, address) in [
            ("EntryPoint v0.8", c.entry_point),
            ("SimpleAccountFactory", c.simple_account_factory),
            ("Simple7702Account", c.simple_7702_account),
            ("WETH9", c.weth),
            ("Uniswap V2 factory", c.uniswap_v2_factory),
            ("Uniswap V2 router 02", c.uniswap_v2_router),
            ("tUSD (6 decimals)", c.usd),
            ("TKN (18 decimals)", c.tkn),
            ("tUSD/TKN pair", c.usd_tkn_pair),
            ("SakAccountFactory", c.sak_account_factory),
            ("Sak7702Account", c.sak_7702_account),
        ] {
            s += &format!("  {name:<22} {address}\n");
        }
        s += "\nDev accounts (anvil's public test keys: for local chains only, never a real network)\n";
        for (i, a) in self.dev_accounts.iter().enumerate() {
            s += &format!(
                "  ({i}) {}  {} ETH  key {}\n",
                a.address,
                format_ether(a.balance_wei),
                a.private_key
            );
        }
        s.pop();
        s
    }
}
