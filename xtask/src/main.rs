//! Repository tasks, run as `cargo xtask <task>`.
//!
//! - `artifacts`: compile `contracts/src` with the solc shim through `foundry-compilers` and write
//!   the ABI + bytecode artifacts that `sak-contracts` commits and binds.
//! - `artifacts --check`: compile again and fail if the committed artifacts differ.

mod artifacts;
mod foundry;

use std::{path::PathBuf, process::ExitCode};

const USAGE: &str = "usage: cargo xtask artifacts [--check]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["artifacts"] => artifacts::write(&repo_root()),
        ["artifacts", "--check"] => artifacts::check(&repo_root()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo").to_path_buf()
}
