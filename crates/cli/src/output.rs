//! Where output goes: data on stdout (JSON under `--json`), progress and errors on stderr.
//! Exit codes: 0 ok, 1 refused (by policy or the user), 2 any other error.

use crate::cli::GlobalArgs;
use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};
use tracing_subscriber::{EnvFilter, fmt};

/// Progress to stderr: sak's own events at info, unless `--quiet`; `RUST_LOG` overrides.
pub(crate) fn init_tracing(global: &GlobalArgs) {
    let default = if global.quiet { "error" } else { "sak=info,sak_testkit=info,sak_signer=warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Writes a line of data to stdout. A closed stdout (`sak … | head`) is not an error.
pub(crate) fn data(line: &str) -> eyre::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// An error whose data was already printed on stdout (a `--json` document saying what went
/// wrong): `report` prints the message and hint on stderr only, and exits 2.
#[derive(Debug)]
pub(crate) struct AlreadyReported {
    pub(crate) message: String,
    pub(crate) hint: &'static str,
}

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AlreadyReported {}

/// Prints `err` with its causes and a `hint:` line where the user can act, and returns the
/// exit code.
pub(crate) fn report(global: &GlobalArgs, err: &eyre::Report) -> ExitCode {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let already = err.downcast_ref::<AlreadyReported>();
    let hint = err.chain().find_map(|cause| {
        cause
            .downcast_ref::<sak_testkit::Error>()
            .and_then(sak_testkit::Error::hint)
            .or_else(|| cause.downcast_ref::<sak_signer::Error>().and_then(sak_signer::Error::hint))
            .or_else(|| cause.downcast_ref::<AlreadyReported>().map(|a| a.hint.to_owned()))
    });
    let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", causes.join(": "));
    if let Some(hint) = &hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    if global.json && already.is_none() {
        let json = serde_json::json!({ "error": { "message": causes.join(": "), "hint": hint } });
        let _ = data(&json.to_string());
    }
    ExitCode::from(2)
}
