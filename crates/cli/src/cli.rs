//! Command-line definition: global flags and the subcommand tree.

use crate::cmd::node::NodeCommand;
use clap::{Args, Parser, Subcommand};

/// Smart agent keys: give an AI agent or bot a session key that the chain keeps inside its
/// limits.
#[derive(Debug, Parser)]
#[command(name = "sak", version, propagate_version = true, arg_required_else_help = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Print machine-readable JSON on stdout (errors too).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Only errors on stderr, no progress.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a local chain with EntryPoint v0.8, the sample accounts and Uniswap V2 deployed.
    #[command(subcommand)]
    Node(NodeCommand),
}
