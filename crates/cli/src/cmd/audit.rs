//! `sak audit`: the signing decisions from the durable ledger; stale keys, keys due for rotation.

use crate::ctx::Ctx;
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak audit\n  sak audit --since 2026-11-01T00:00:00Z --json\n  sak audit --stale 30d --rotate-after 90d")]
pub(crate) struct AuditArgs {
    /// Only decisions at or after this time (RFC 3339, unix seconds, or a duration ago: 24h).
    #[arg(long, value_name = "TIME|DURATION")]
    pub(crate) since: Option<String>,
    /// Flag keys with no signing decision for this long.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub(crate) stale: String,
    /// Flag keys older than this (due for `sak session rotate`).
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub(crate) rotate_after: String,
}

pub(crate) async fn run(_args: AuditArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak audit: being built")
}
