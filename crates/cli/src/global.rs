//! The flags every command takes, and flag values every command reads alike (spans).

use clap::Args;
use sak::Hinted;
use sak_primitives::units::parse_duration;
use std::path::PathBuf;

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
