//! `sak deploy`: sak's contracts through the CREATE2 deployer (same addresses everywhere).

use crate::ctx::Ctx;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak --network sepolia deploy\n  sak --network sepolia deploy --dry-run --json")]
pub(crate) struct DeployArgs {
    /// Show what is deployed and what would be, and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) async fn run(_args: DeployArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak deploy: being built")
}
