//! One module per command.

pub(crate) mod demo;
pub(crate) mod node;

use crate::cli::{Command, GlobalArgs};

pub(crate) async fn run(command: Command, global: &GlobalArgs) -> eyre::Result<()> {
    match command {
        Command::Node(command) => node::run(command, global).await,
        Command::Demo(args) => demo::run(args, global).await,
    }
}
