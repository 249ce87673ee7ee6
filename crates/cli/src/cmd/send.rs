//! `sak send` and `sak swap`: an agent acting under a session, through the guarded signer.

use crate::ctx::Ctx;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// How a signed user operation reaches the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Via {
    /// The network's ERC-4337 bundler (bundler_url in the config, or --bundler-url).
    Bundler,
    /// Our own `handleOps` transaction (local and fork: a dev key pays; elsewhere the owner).
    #[value(name = "self")]
    SelfBundled,
    /// No user operation: a relayer calls the account's `executeWithSession` (EIP-712).
    Direct,
}

/// Flags shared by `send` and `swap`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The session id (`sak session list`).
    #[arg(long)]
    pub(crate) session: u32,
    /// The session key (name or address) [default: the key the session was granted to here].
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// How to submit.
    #[arg(long, value_enum, default_value = "self")]
    pub(crate) via: Via,
    /// The bundler for --via bundler [default: the network's bundler_url].
    #[arg(long, value_name = "URL")]
    pub(crate) bundler_url: Option<String>,
    /// Decide with the local policy and print what would happen; sign and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Local and fork networks only: skip the off-chain policy and let the contracts refuse
    /// (to prove that the chain itself enforces the session).
    #[arg(long)]
    pub(crate) no_preflight: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak send --session 1 --to tUSD --sig 'transfer(address,uint256)' 0xabc…def 25000000\n  \
                        sak send --session 1 --to 0xRecipient --value 0.01ether\n  \
                        sak send --session 1 --batch calls.json --via bundler --dry-run")]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    /// The contract or address called (0x address or a name from the network's book).
    #[arg(long, required_unless_present = "batch")]
    pub(crate) to: Option<String>,
    /// ETH sent with the call (`0.01ether`, `1gwei`, or wei).
    #[arg(long, default_value = "0")]
    pub(crate) value: String,
    /// Raw call data (hex).
    #[arg(long, conflicts_with_all = ["sig", "batch"])]
    pub(crate) data: Option<String>,
    /// A function signature, with ARGS after it: 'transfer(address,uint256)' 0x… 100.
    #[arg(long, conflicts_with = "batch")]
    pub(crate) sig: Option<String>,
    /// The function's arguments.
    #[arg(requires = "sig", num_args = 0..)]
    pub(crate) args: Vec<String>,
    /// A JSON file of calls: [{"to": "...", "value": "0", "data": "0x..."}, ...].
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub(crate) batch: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak swap --session 1 --in tUSD --out TKN --amount 300 --min-out 0.14\n  \
                        sak swap --session 1 --router 0x… --in tUSD --out TKN --amount 300 --min-out 0 --dry-run")]
pub(crate) struct SwapArgs {
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    /// The Uniswap V2 router [default on local chains: the local router].
    #[arg(long, value_name = "ADDR|NAME")]
    pub(crate) router: Option<String>,
    /// The token sold (name or address).
    #[arg(long = "in", value_name = "TOKEN")]
    pub(crate) token_in: String,
    /// The token bought.
    #[arg(long = "out", value_name = "TOKEN")]
    pub(crate) token_out: String,
    /// Whole units of --in to sell (approved to the router in the same operation).
    #[arg(long)]
    pub(crate) amount: String,
    /// Whole units of --out to receive at least (slippage bound).
    #[arg(long)]
    pub(crate) min_out: String,
}

pub(crate) async fn send(_args: SendArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak send: being built")
}

pub(crate) async fn swap(_args: SwapArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak swap: being built")
}
