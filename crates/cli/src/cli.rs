//! Command-line definition: global flags and the subcommand tree.

use crate::cmd::{demo::DemoArgs, node::NodeCommand};
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
    /// The main job in under two minutes: an owner grants a price-trigger bot a capped session
    /// on a throwaway local chain; the bot trades until its cap refuses it, the chain refuses a
    /// forced over-cap attempt, the owner revokes, and the account's other assets are checked.
    Demo(DemoArgs),
}
