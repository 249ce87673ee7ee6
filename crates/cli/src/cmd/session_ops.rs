//! `sak session show|revoke|revoke-all|rotate`.

use super::session::{IdArgs, RotateArgs};
use crate::ctx::Ctx;

pub(crate) async fn show(_args: IdArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak session show: being built")
}

pub(crate) async fn revoke(_args: IdArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak session revoke: being built")
}

pub(crate) async fn revoke_all(_ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak session revoke-all: being built")
}

pub(crate) async fn rotate(_args: RotateArgs, _ctx: &Ctx) -> eyre::Result<()> {
    eyre::bail!("sak session rotate: being built")
}
