//! `sak mcp`: the MCP server on stdin and stdout ([`sak_mcp`]), acting in this process or
//! through a signer daemon.

use crate::{ctx::Ctx, global::GlobalArgs, output::Hinted};
use clap::Args;
use std::path::PathBuf;

/// The environment variable that holds the daemon's bearer token for `--daemon`.
const DAEMON_TOKEN_ENV: &str = "SAK_DAEMON_TOKEN";

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak mcp --session 1\n  \
                        SAK_DAEMON_TOKEN=… sak mcp --daemon http://127.0.0.1:8645\n\n\
                        A desktop MCP host's config (its `mcpServers`):\n  \
                        \"sak\": { \"command\": \"sak\", \"args\": [\"mcp\", \"--session\", \"1\"],\n          \
                        \"env\": { \"SAK_HOME\": \"/home/me/.sak-agent\", \"SAK_KEY_PASSWORD\": \"…\" } }")]
pub(crate) struct McpArgs {
    /// The session the tools act under when they name none.
    #[arg(long)]
    session: Option<u32>,
    /// Act through `sak agent serve` at this URL: this process then holds only the daemon's
    /// bearer token ($SAK_DAEMON_TOKEN, or --token-file), never a key or passphrase.
    #[arg(long, value_name = "URL", conflicts_with = "session")]
    daemon: Option<String>,
    /// The daemon's token file (its `data/daemon.token`) instead of $SAK_DAEMON_TOKEN.
    #[arg(long, value_name = "FILE", requires = "daemon")]
    token_file: Option<PathBuf>,
}

/// Before `Ctx::new`: the server starts and lists its tools even without a config or session.
pub(crate) async fn run(args: McpArgs, global: &GlobalArgs) -> eyre::Result<()> {
    let backend = match &args.daemon {
        Some(url) => {
            let token = match &args.token_file {
                Some(path) => std::fs::read_to_string(path)?.trim().to_owned(),
                None => std::env::var(DAEMON_TOKEN_ENV).map_err(|_| {
                    Hinted::new(
                        format!("--daemon needs the daemon's bearer token: ${DAEMON_TOKEN_ENV} is not set"),
                        "set it to the content of the daemon's data/daemon.token, or pass --token-file FILE",
                    )
                })?,
            };
            sak_mcp::Backend::daemon(url.trim_end_matches('/'), token)
        }
        None => sak_mcp::Backend::local(Ctx::options(global), args.session),
    };
    sak_mcp::Server::new(backend).serve_stdio().await?;
    Ok(())
}
