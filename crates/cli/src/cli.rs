//! Command-line definition: global flags, the subcommand tree, and flag values every command
//! reads alike (spans).

use crate::cmd::{
    account::AccountCommand,
    audit::AuditArgs,
    completions::CompletionsArgs,
    demo::DemoArgs,
    deploy::DeployArgs,
    doctor::DoctorArgs,
    init::InitArgs,
    key::KeyCommand,
    node::NodeCommand,
    op::OpCommand,
    owner::OwnerCommand,
    send::{SendArgs, SwapArgs},
    session::SessionCommand,
};
use crate::output::Hinted;
use clap::{Args, Parser, Subcommand};
use sak_primitives::units::parse_duration;
use std::path::PathBuf;

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

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Print machine-readable JSON on stdout (errors too).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Only errors on stderr, no progress.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// Also log what happens underneath on stderr: -v what is deployed, sent and decided,
    /// -vv debug detail. `RUST_LOG` (e.g. `sak_userop=debug`) takes precedence.
    #[arg(long, short, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// The network from the config (`local`, `fork`, `sepolia`, or one you added)
    /// [default: the config's `network`].
    #[arg(long, short = 'n', global = true, env = "SAK_NETWORK", value_name = "NAME")]
    pub(crate) network: Option<String>,
    /// The account to act on, by the name `sak account create --name` gave it (or its
    /// address) [default: the network's default account, `sak account use` sets it].
    #[arg(long, short = 'a', global = true, env = "SAK_ACCOUNT", value_name = "NAME")]
    pub(crate) account: Option<String>,
    /// Use this RPC URL instead of the network's.
    #[arg(long, global = true, env = "SAK_RPC_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) rpc_url: Option<String>,
    /// Read the owner keystore's password from this file (mode 0600) instead of $SAK_PASSWORD.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "password_fd")]
    pub(crate) password_file: Option<PathBuf>,
    /// Read the keystore password from this inherited file descriptor.
    #[arg(long, global = true, value_name = "FD")]
    pub(crate) password_fd: Option<u32>,
    /// Read session keys' passphrase from this environment variable instead of
    /// $SAK_KEY_PASSWORD (on a terminal without either, sak asks). Session keys are never
    /// under the owner's password.
    #[arg(long = "key-password-env", alias = "password-env", global = true, value_name = "NAME")]
    pub(crate) key_password_env: Option<String>,
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

/// A duration flag (`30d`, `90d`, `24h`) in seconds, or an error that shows how to write it.
pub(crate) fn parse_span(flag: &str, text: &str) -> eyre::Result<u64> {
    parse_duration(text).ok_or_else(|| {
        Hinted::new(
            format!("{flag} {text:?} is not a duration"),
            format!("write a number with s, m, h, d or w: {flag} 30d"),
        )
        .into()
    })
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
