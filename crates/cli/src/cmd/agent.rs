//! `sak agent import|relayer`: the agent's side of a handoff. A home made this way holds the
//! session key and the agent's relayer, never an owner secret.

use crate::{ctx::Ctx, global::GlobalArgs, output};
use alloy::providers::Provider;
use clap::{Args, Subcommand};
use sak::{
    agent::{RELAYER_KEY_ENV, new_relayer, relayer_key, relayer_path},
    config::Paths,
    handoff::{self, Bundle},
};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Make this home able to act under a session exported with `sak session export`: the
    /// network (with the bundle's names), the account, the session and its key (decrypted with
    /// the session keys' passphrase, kept encrypted). No owner key is needed or made.
    #[command(after_help = "Examples:\n  SAK_KEY_PASSWORD=… sak agent import bot-session.json\n  \
                            sak --rpc-url http://10.0.0.5:8545 agent import bot-session.json --name treasury\n\n\
                            --rpc-url given here is kept as the network's endpoint.")]
    Import(ImportArgs),
    /// The agent's own key that pays for self-bundled and direct operations
    /// ($SAK_RELAYER_KEY wins over it; local chains fall back to anvil's dev key).
    #[command(subcommand)]
    Relayer(RelayerCommand),
    /// Hold the session key and sign for an agent that never sees it: loopback HTTP with a
    /// bearer token (in `data/daemon.token`, mode 0600), the same guard and ledger as `sak
    /// swap`. One per home; SIGTERM or Ctrl-C stops it after the requests in flight.
    #[command(after_help = "Examples:\n  sak agent serve --session 1\n  \
                            sak agent serve --session 1 --listen 127.0.0.1:8645 --via bundler --json\n\n\
                            curl -H \"Authorization: Bearer $(cat ~/.local/share/sak/daemon.token)\" \\\n    \
                            -d '{\"token_in\":\"tUSD\",\"token_out\":\"TKN\",\"amount\":\"10\",\"min_out\":\"0\"}' \\\n    \
                            -H 'Content-Type: application/json' http://127.0.0.1:8645/v1/swap")]
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The session it signs for.
    #[arg(long)]
    session: u32,
    /// The session key (name or address) [default: the key the session was granted to here].
    #[arg(long)]
    key: Option<String>,
    /// Where it listens (loopback only; port 0: a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8645")]
    listen: std::net::SocketAddr,
    /// How operations travel.
    #[arg(long, value_enum, default_value = "self")]
    via: sak::agent::Via,
    /// The bundler for --via bundler [default: the network's bundler_url].
    #[arg(long, value_name = "URL")]
    bundler_url: Option<String>,
    /// The session's nonce lane it signs in (give each daemon of a fleet its own).
    #[arg(long, value_name = "N", default_value_t = 0)]
    lane: u128,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The bundle file.
    file: PathBuf,
    /// The account's name in this home [default: its name in the owner's home].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RelayerCommand {
    /// Make `keys/relayer.json` (under the session keys' passphrase) and print its address to
    /// fund.
    #[command(after_help = "Examples:\n  sak agent relayer new")]
    New,
    /// The relayer's address and its balance on the network.
    #[command(after_help = "Examples:\n  sak agent relayer show --json")]
    Show,
}

pub(crate) async fn run(command: AgentCommand, global: &GlobalArgs) -> eyre::Result<()> {
    match command {
        AgentCommand::Import(args) => import(args, global),
        AgentCommand::Relayer(RelayerCommand::New) => {
            let ctx = Ctx::new(global)?;
            let address = new_relayer(&ctx)?;
            let out =
                serde_json::json!({ "address": address, "path": relayer_path(&ctx).display().to_string() });
            output::emit(global, &out, || {
                format!("relayer {address} made ({}): fund it with ETH to pay for operations", out["path"])
            })
        }
        AgentCommand::Relayer(RelayerCommand::Show) => show_relayer(&Ctx::new(global)?).await,
        AgentCommand::Serve(args) => serve(args, &Ctx::new(global)?).await,
    }
}

async fn serve(args: ServeArgs, ctx: &Ctx) -> eyre::Result<()> {
    let mut config = sak_daemon::Config::new(args.listen, args.session);
    config.agent.key = args.key;
    config.agent.via = args.via;
    config.agent.bundler_url = args.bundler_url;
    config.agent.lane = args.lane;
    sak::agent::check(ctx, &config.agent)?;
    let global = ctx.global.clone();
    let ready = move |running: &sak_daemon::Running| {
        let _ = output::emit(&global, running, || {
            format!(
                "serving session #{} (key {}) of {} at {}\n  bearer token in {} (mode 0600)\n  Ctrl-C stops it",
                running.session,
                running.key,
                running.account,
                running.url,
                running.token_file.display()
            )
        });
    };
    let stop = async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    sak_daemon::serve((**ctx).clone(), config, ready, stop).await?;
    output::progress(&ctx.global, "stopped: every request in flight was answered");
    Ok(())
}

/// Before `Ctx::new`: the network may not be in the config until the bundle adds it.
fn import(args: ImportArgs, global: &GlobalArgs) -> eyre::Result<()> {
    let bundle = Bundle::read(&args.file)?;
    let done = handoff::import(&Paths::discover()?, &Ctx::options(global), &bundle, args.name.as_deref())?;
    output::emit(global, &done, || {
        let key = match &done.key_name {
            Some(name) => format!("key `{name}` ({})", done.key),
            None => format!("key {} from $SAK_SESSION_KEY (not in the bundle)", done.key),
        };
        format!(
            "imported session #{} of `{}` ({}) on network `{}`: {key}; {} name{} added to the book.\n\
             Next: a relayer (`sak agent relayer new`, or ${RELAYER_KEY_ENV}) or --via bundler, then\n  \
             sak --network {} swap --session {} --in tUSD --out TKN --amount 10 --min-out 0",
            done.session,
            done.account,
            done.address,
            done.network,
            done.names_added.len(),
            if done.names_added.len() == 1 { "" } else { "s" },
            done.network,
            done.session
        )
    })
}

#[derive(Debug, Serialize)]
struct Relayer {
    /// `env` ($SAK_RELAYER_KEY), `file` (keys/relayer.json) or null (none).
    source: Option<&'static str>,
    address: Option<sak::Address>,
    balance_wei: Option<sak::U256>,
}

async fn show_relayer(ctx: &Ctx) -> eyre::Result<()> {
    let key = relayer_key(ctx)?;
    let source =
        key.as_ref().map(|_| if std::env::var_os(RELAYER_KEY_ENV).is_some() { "env" } else { "file" });
    let address = key.map(|k| k.address());
    let balance_wei = match address {
        Some(a) => Some(ctx.chain().await?.provider.get_balance(a).await?),
        None => None,
    };
    let out = Relayer { source, address, balance_wei };
    output::emit(&ctx.global, &out, || match (out.address, out.balance_wei) {
        (Some(a), Some(b)) => format!(
            "relayer {a} (from {}), {} ETH",
            out.source.unwrap_or("-"),
            sak::units::format_amount(b, Some(18))
        ),
        _ => format!("no relayer: `sak agent relayer new`, or set ${RELAYER_KEY_ENV}"),
    })
}
