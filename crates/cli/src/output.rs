//! Where output goes: data on stdout (JSON under `--json`), progress and errors on stderr.
//! Exit codes: 0 ok, 1 refused (by policy or the user), 2 any other error.

use crate::global::GlobalArgs;
use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};
use tracing_subscriber::{EnvFilter, fmt};

/// Progress to stderr: sak's own events at info, unless `--quiet`; `RUST_LOG` overrides.
pub(crate) fn init_tracing(global: &GlobalArgs) {
    // Logs are for diagnosis, not output: warnings by default, more with -v/-vv.
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "sak=info,sak_node=info,sak_signer=info,sak_userop=info",
        (false, _) => "sak=debug,sak_node=debug,sak_signer=debug,sak_userop=debug,sak_policy=debug",
    };
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
/// wrong): `report` prints the message and hint on stderr only, and exits with `code` (2, or
/// 4 for an operation included but reverted).
#[derive(Debug)]
pub(crate) struct AlreadyReported {
    pub(crate) message: String,
    pub(crate) hint: &'static str,
    pub(crate) code: u8,
}

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AlreadyReported {}

/// Like [`AlreadyReported`] for an outcome that is a refusal (exit 1): the command's data
/// (its `--json` document too) already says what was refused.
#[derive(Debug)]
pub(crate) struct ReportedRefusal {
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl std::fmt::Display for ReportedRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReportedRefusal {}

/// An error that says what to do about it. `refused` errors exit 1 (refused by policy or by
/// the user), others 2.
pub(crate) use sak::Hinted;

pub(crate) use sak::outcome::causes;
use sak::outcome::{Failure, state_of};

/// The first hint `err`'s chain carries: one only the command line gives (they name its
/// flags), else the facade's ([`sak::outcome::cause_hint`]).
fn hint_of(err: &eyre::Report) -> Option<String> {
    causes(err.as_ref()).find_map(|cause| {
        let cli = match cause.downcast_ref::<sak_signer::Error>() {
            Some(sak_signer::Error::PasswordEnvMissing { var }) => Some(format!(
                "export {var}=... (the keystore password), or pass --password-file FILE (mode 0600) or --password-fd N"
            )),
            Some(sak_signer::Error::InsecurePermissions { .. }) => {
                Some("run the chmod above: keys must be readable by you only".into())
            }
            Some(sak_signer::Error::WrongPassword { path }) => {
                let session_key = path.as_ref().is_some_and(|p| p.parent().is_some_and(|d| d.ends_with("session")));
                Some(if session_key {
                    "use the passphrase the session key was made with ($SAK_KEY_PASSWORD or --key-password-env); \
                     a key made by an older sak is under the owner's password: `sak key rekey NAME` moves it"
                        .into()
                } else {
                    "use the password the key was stored with ($SAK_PASSWORD, --password-file or --password-fd)".into()
                })
            }
            _ => cause
                .downcast_ref::<AlreadyReported>()
                .map(|a| a.hint.to_owned())
                .or_else(|| cause.downcast_ref::<ReportedRefusal>().map(|a| a.hint.clone())),
        };
        cli.or_else(|| sak::outcome::cause_hint(cause))
    })
}

/// Prints `err` with its causes and a `hint:` line that says what to do, and returns the
/// exit code.
pub(crate) fn report(global: &GlobalArgs, err: &eyre::Report) -> ExitCode {
    if causes(err.as_ref()).any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let refused_reported = err.downcast_ref::<ReportedRefusal>().is_some();
    let already = err.downcast_ref::<AlreadyReported>().map(|_| ()).or(refused_reported.then_some(()));
    let code = if refused_reported { Some(1) } else { err.downcast_ref::<AlreadyReported>().map(|a| a.code) };
    let message = sak::outcome::message_of(err.as_ref());
    // Every error says what to do: where no cause knows better, the general checks.
    let hint = hint_of(err).or_else(|| {
        (message.contains("ABI decoding failed") || message.contains("returned no data")).then(|| {
            "the node's answer does not decode as the contract's: check that the RPC endpoint serves the chain \
             the home was set up on and is healthy (`sak doctor` checks both), then run again"
                .into()
        })
    });
    let failure = Failure::of(err.as_ref(), hint, code);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", failure.error.message);
    let _ = writeln!(stderr, "hint: {}", failure.error.hint);
    if global.json && already.is_none() {
        let _ = data(&serde_json::to_string(&failure).unwrap_or_default());
    }
    ExitCode::from(failure.error.exit_code)
}

/// A command line clap refused (exit 2), or `--help`/`--version` (exit 0). Under `--json` a
/// refused command line is the JSON error document like any other error, so a bot that reads
/// stdout learns what was wrong with its arguments instead of finding nothing.
pub(crate) fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    // clap stops before it has parsed the flags, so `--json` is looked for on the command line
    // as written (not past a `--`, where it would be a value).
    let json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    if informational || !json {
        err.exit();
    }
    let rendered = err.render().to_string();
    // clap's first line is the error; the rest is its usage line and a pointer to --help.
    let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").trim().to_owned();
    let hint = "run the command with --help to see its arguments";
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{rendered}");
    let json = serde_json::json!({
        "error": { "message": message, "hint": hint, "exit_code": 2, "refusal": null },
        "state": state_of(2),
        "intent": null, "user_op_hash": null, "deadline": null, "transaction": null,
    });
    let _ = data(&json.to_string());
    ExitCode::from(2)
}

/// Prints a command's result: `value` as one JSON document under `--json`, else `human()`.
pub(crate) fn emit<T: serde::Serialize>(
    global: &GlobalArgs,
    value: &T,
    human: impl FnOnce() -> String,
) -> eyre::Result<()> {
    if global.json { data(&serde_json::to_string(value)?) } else { data(human().trim_end()) }
}

/// A warning on stderr, whatever the flags: something the user chose that weakens a protection.
pub(crate) fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {line}");
}

/// A progress line on stderr (not under `--quiet` or `--json`).
pub(crate) fn progress(global: &GlobalArgs, line: &str) {
    if !global.quiet && !global.json {
        // Never `eprintln!`: it panics on a closed stderr (`2>&1 | head`), possibly between two
        // transactions that belong together.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
