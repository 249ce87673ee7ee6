//! `sak doctor`: every check a user would otherwise do by hand, each failure with its fix.

use crate::ctx::Ctx;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak doctor\n  sak doctor --session 1 --json\n  sak --network sepolia doctor")]
pub(crate) struct DoctorArgs {
    /// Also check this session: active, in its time window, scoped, its key present.
    #[arg(long)]
    pub(crate) session: Option<u32>,
}

pub(crate) async fn run(_args: DoctorArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak doctor: being built")
}
