//! Command-line definition: the subcommand tree over the global flags ([`GlobalArgs`]).

use crate::cmd::{
    account::AccountCommand,
    agent::AgentCommand,
    audit::AuditArgs,
    completions::CompletionsArgs,
    demo::DemoArgs,
    deploy::DeployArgs,
    doctor::DoctorArgs,
    init::InitArgs,
    key::KeyCommand,
    mcp::McpArgs,
    node::NodeCommand,
    op::OpCommand,
    owner::OwnerCommand,
    send::{SendArgs, SwapArgs},
    session::SessionCommand,
};
use crate::global::GlobalArgs;
use clap::{Parser, Subcommand};

/// Smart agent keys: give an AI agent or bot a session key that the chain keeps inside its
/// limits.
#[derive(Debug, Parser)]
#[command(
    name = "sak",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = "Files live in $SAK_HOME, else ~/.config/sak and ~/.local/share/sak (XDG).\n\
                  Exit codes: 0 ok, 1 refused (by a policy or by you), 2 any other error, 3 signed\n\
                  with its outcome not known yet (it may still land), 4 included but reverted."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write the config file and create the key directories; choose the default network.
    Init(InitArgs),
    /// Run a local chain with EntryPoint v0.8, the sample accounts and Uniswap V2 deployed.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Deploy sak's contracts on the network (idempotent; same addresses on every chain).
    Deploy(DeployArgs),
    /// The owner key: the wallet's master key, kept in an encrypted keystore.
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// The owner's account: a smart account or the owner EOA delegated with EIP-7702.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Session keys: the keys agents sign with.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Grant, inspect, revoke, rotate and verify sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The agent's side of a handoff: import a session bundle, the agent's relayer.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The MCP server on stdio: an AI agent's tools (status, policy, remaining_caps,
    /// quote_swap, swap, send_call, dry_run) under a session, in process or through the daemon.
    Mcp(McpArgs),
    /// Act as an agent: send calls under a session.
    Send(SendArgs),
    /// Act as an agent: swap through a Uniswap V2 router under a session.
    Swap(SwapArgs),
    /// Check endpoints, chain id, contracts, bundler, keystore permissions and sessions.
    Doctor(DoctorArgs),
    /// Every signing decision from the durable log; stale keys and keys due for rotation.
    Audit(AuditArgs),
    /// Follow the account's blocks and this home's ledger, and raise alerts (near a cap,
    /// refusals, allowance and delegation changes, unknown relayers, rotation, staleness and
    /// expiry due); optionally revoke at once (`--freeze-on`) and POST to a webhook.
    Watch(crate::cmd::watch::WatchArgs),
    /// Operations this home signed whose outcome is not settled, and what became of one.
    #[command(subcommand)]
    Op(OpCommand),
    /// The main job in under two minutes: an owner grants a price-trigger bot a capped session
    /// on a throwaway local chain; the bot trades until its cap refuses it, the chain refuses a
    /// forced over-cap attempt, the owner revokes, and the account's other assets are checked.
    Demo(DemoArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command a user runs has examples in its `--help`.
    #[test]
    fn every_leaf_command_has_examples_in_its_help() {
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            let subs: Vec<&clap::Command> =
                cmd.get_subcommands().filter(|s| s.get_name() != "help").collect();
            if subs.is_empty() {
                let help = cmd.get_after_help().map(ToString::to_string).unwrap_or_default();
                if !help.contains("Examples:") {
                    missing.push(path);
                }
                return;
            }
            for sub in subs {
                walk(sub, format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "sak".into(), &mut missing);
        assert!(missing.is_empty(), "no examples in --help of: {missing:?}");
        Cli::command().debug_assert();
    }
}
