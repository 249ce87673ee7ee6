//! `sak`: smart agent keys.

mod cli;
mod cmd;
mod ctx;
mod global;
mod output;
mod owner_exec;

use clap::Parser;
pub(crate) use sak::{calls as call_args, config, leftover, owner, store};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return output::usage_error(&err),
    };
    output::init_tracing(&cli.global);
    // One thread: children are forked from a thread that lives as long as the process (anvil's
    // parent-death signal is tied to it), and a CLI needs no more.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return output::report(&cli.global, &eyre::Report::new(err)),
    };
    match runtime.block_on(cmd::run(cli.command, &cli.global)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => output::report(&cli.global, &err),
    }
}
