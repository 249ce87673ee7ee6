//! `sak node up|status|down|fund`: a local chain with everything deployed, until Ctrl-C,
//! SIGTERM or `sak node down`.

use crate::{
    ctx::Ctx,
    output::{self, Hinted},
    store::{NodeFile, pid_alive},
};
use alloy::{
    primitives::{Address, U256, utils::format_ether},
    providers::Provider,
};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak_node::{Deployment, Kit, NodeConfig};
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
    /// Whether this home's `sak node up` is running, and what it serves.
    #[command(after_help = "Examples:\n  sak node status\n  sak node status --json")]
    Status,
    /// Stop this home's `sak node up` (and its anvil).
    #[command(after_help = "Examples:\n  sak node down")]
    Down,
    /// Local and fork chains only: send ETH from anvil's first dev account and mint tUSD/TKN to
    /// an address (the owner, an account).
    #[command(
        after_help = "Examples:\n  sak node fund owner --eth 10\n  sak node fund account --eth 5 --usd 5000"
    )]
    Fund(FundArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FundArgs {
    /// `owner`, `account`, or a 0x address.
    who: String,
    /// Whole ETH to send.
    #[arg(long, default_value = "0")]
    eth: String,
    /// Whole tUSD to mint.
    #[arg(long, default_value = "0")]
    usd: String,
    /// Whole TKN to mint.
    #[arg(long, default_value = "0")]
    tkn: String,
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

pub(crate) async fn run(command: NodeCommand, ctx: &Ctx) -> eyre::Result<()> {
    match command {
        NodeCommand::Up(args) => up(args, ctx).await,
        NodeCommand::Status => status(ctx).await,
        NodeCommand::Down => down(ctx).await,
        NodeCommand::Fund(args) => fund(args, ctx).await,
    }
}

async fn up(args: UpArgs, ctx: &Ctx) -> eyre::Result<()> {
    let global = &ctx.global;
    let node_file = ctx.paths.node_file();
    if let Some(running) = NodeFile::load_live(&node_file)? {
        return Err(Hinted::new(
            format!(
                "`sak node up` is already running for this home (pid {}, {})",
                running.pid, running.rpc_url
            ),
            "stop it with `sak node down`, or use another SAK_HOME",
        )
        .into());
    }
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
        output::progress(global, &format!("forking {origin} (fetching chain state may take a while)…"));
    }
    let started = std::time::Instant::now();
    let mut kit = tokio::select! {
        kit = Kit::start(profile) => kit.wrap_err("starting the local chain")?,
        _ = sigint.recv() => return Ok(()),
        _ = sigterm.recv() => return Ok(()),
    };
    output::progress(
        global,
        &format!("ready in {:.1}s ({})", started.elapsed().as_secs_f64(), config.source()),
    );

    let summary = Summary::collect(&kit).await?;
    let record = NodeFile::of(&kit, std::process::id());
    record.save(&node_file)?;
    // Removed however the loop below ends.
    let _remove = RemoveOnDrop(node_file);
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
    output::progress(global, &format!("{signal}: stopped anvil (pid {pid})"));
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What `sak node status` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
struct Status {
    running: bool,
    #[serde(flatten)]
    node: Option<NodeFile>,
    block_number: Option<u64>,
    reachable: bool,
}

async fn status(ctx: &Ctx) -> eyre::Result<()> {
    let node = NodeFile::load_live(&ctx.paths.node_file())?;
    let mut block_number = None;
    if let Some(n) = &node {
        let provider = alloy::providers::ProviderBuilder::new().connect_http(n.rpc_url.parse()?);
        block_number = tokio::time::timeout(Duration::from_secs(5), provider.get_block_number())
            .await
            .ok()
            .and_then(Result::ok);
    }
    let out = Status { running: node.is_some(), reachable: block_number.is_some(), node, block_number };
    output::emit(&ctx.global, &out, || match &out.node {
        Some(n) => format!(
            "running    pid {} (anvil pid {}), profile `{}`\nRPC URL    {}\nchain id   {}\nblock      {}\nstarted    {}",
            n.pid,
            n.anvil_pid,
            n.profile,
            n.rpc_url,
            n.chain_id,
            out.block_number.map_or_else(|| "unreachable".into(), |b| b.to_string()),
            sak_primitives::units::format_time(n.started_at),
        ),
        None => "not running (start it with `sak node up`)".into(),
    })?;
    if out.running && !out.reachable {
        return Err(Hinted::new(
            "the node is running but its RPC does not answer",
            "restart it: `sak node down && sak node up`",
        )
        .into());
    }
    Ok(())
}

async fn down(ctx: &Ctx) -> eyre::Result<()> {
    let path = ctx.paths.node_file();
    let Some(node) = NodeFile::load_live(&path)? else {
        output::emit(&ctx.global, &serde_json::json!({ "stopped": false, "running": false }), || {
            "not running".into()
        })?;
        return Ok(());
    };
    // SIGTERM to the `sak node up` process we recorded (never by name); it stops anvil.
    let pid = i32::try_from(node.pid)?;
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes plain integers.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) } == 0;
    eyre::ensure!(sent, "could not signal pid {pid}: {}", std::io::Error::last_os_error());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pid_alive(node.pid) || pid_alive(node.anvil_pid) {
        if std::time::Instant::now() > deadline {
            return Err(Hinted::new(
                format!("pid {} did not stop within 10 s", node.pid),
                format!("stop it yourself: kill {}", node.pid),
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    output::emit(
        &ctx.global,
        &serde_json::json!({ "stopped": true, "pid": node.pid, "anvil_pid": node.anvil_pid }),
        || format!("stopped `sak node up` (pid {}) and anvil (pid {})", node.pid, node.anvil_pid),
    )
}

async fn fund(args: FundArgs, ctx: &Ctx) -> eyre::Result<()> {
    use sak_primitives::units::parse_amount;
    if !ctx.kind().is_anvil() {
        return Err(Hinted::refused(
            format!(
                "`sak node fund` only works on local and fork networks; `{}` is {:?}",
                ctx.network_name,
                ctx.kind()
            ),
            "fund accounts on public networks from a wallet or faucet",
        )
        .into());
    }
    let chain = ctx.chain().await?;
    let to = match args.who.as_str() {
        "owner" => ctx.owner_address()?,
        "account" => ctx.account(chain.chain_id)?.address,
        other => chain.contracts.resolve(other)?,
    };
    let eth = parse_amount(&args.eth, Some(18))
        .ok_or_else(|| eyre::eyre!("--eth {:?} is not an amount", args.eth))?;
    let usd = parse_amount(&args.usd, Some(6))
        .ok_or_else(|| eyre::eyre!("--usd {:?} is not an amount", args.usd))?;
    let tkn = parse_amount(&args.tkn, Some(18))
        .ok_or_else(|| eyre::eyre!("--tkn {:?} is not an amount", args.tkn))?;
    let txs = ctx.fund_from_dev(&chain, to, eth, usd, tkn).await?;
    let out = serde_json::json!({ "to": to, "eth_wei": eth, "usd": usd, "tkn": tkn, "txs": txs });
    output::emit(&ctx.global, &out, || {
        format!(
            "funded {to}: {} ETH, {} tUSD, {} TKN ({} transactions)",
            args.eth,
            args.usd,
            args.tkn,
            txs.len()
        )
    })
}

/// What `sak node up` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
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
            ("SessionAdapter", c.session_adapter),
            ("SakAccount", c.sak_account_implementation),
            ("SakAccountFactory", c.sak_account_factory),
            ("Sak7702Account", c.sak_7702_account),
            ("SessionKeyValidator", c.session_key_validator),
            ("Sak7579Account", c.sak_7579_account_implementation),
            ("Sak7579AccountFactory", c.sak_7579_account_factory),
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
