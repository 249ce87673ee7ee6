//! `sak session verify`: the sandbox proof on a fork.

use super::session::IdArgs;
use crate::ctx::Ctx;

pub(crate) async fn run(_args: IdArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak session verify: being built")
}
