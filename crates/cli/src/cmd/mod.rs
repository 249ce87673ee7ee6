//! One module per command.

pub(crate) mod account;
pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod demo;
pub(crate) mod deploy;
pub(crate) mod doctor;
pub(crate) mod init;
pub(crate) mod key;
pub(crate) mod mcp;
pub(crate) mod node;
pub(crate) mod op;
pub(crate) mod owner;
pub(crate) mod send;
pub(crate) mod session;
pub(crate) mod watch;

use crate::{
    ctx::Ctx,
    {
        cli::{Cli, Command},
        global::GlobalArgs,
    },
};

pub(crate) async fn run(command: Command, global: &GlobalArgs) -> eyre::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args, global).await,
        Command::Completions(args) => completions::run(args, <Cli as clap::CommandFactory>::command()),
        Command::Init(args) => init::run(args, global),
        // Before `Ctx::new`: a config that does not parse is one of the things doctor reports.
        Command::Doctor(args) => doctor::run(args, global).await,
        // Before `Ctx::new`: an import may add the network the config lacks.
        Command::Agent(command) => agent::run(command, global).await,
        Command::Mcp(args) => mcp::run(args, global).await,
        command => {
            let ctx = Ctx::new(global)?;
            match command {
                Command::Node(command) => node::run(command, &ctx).await,
                Command::Deploy(args) => deploy::run(args, &ctx).await,
                Command::Owner(command) => owner::run(command, &ctx).await,
                Command::Account(command) => account::run(command, &ctx).await,
                Command::Key(command) => key::run(command, &ctx),
                Command::Session(command) => session::run(command, &ctx).await,
                Command::Send(args) => send::send(args, &ctx).await,
                Command::Swap(args) => send::swap(args, &ctx).await,
                Command::Audit(args) => audit::run(args, &ctx).await,
                Command::Watch(args) => watch::run(args, &ctx).await,
                Command::Op(command) => op::run(command, &ctx).await,
                Command::Demo(_)
                | Command::Completions(_)
                | Command::Init(_)
                | Command::Doctor(_)
                | Command::Agent(_)
                | Command::Mcp(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
