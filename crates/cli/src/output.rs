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

/// `err` and its causes, each followed by what a [`sak::Error`] wraps whole (a transparent
/// wrapper is not its own `source()`), so lower layers' errors are found by type.
pub(crate) fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
        .flat_map(|c| std::iter::once(c).chain(c.downcast_ref::<sak::Error>().and_then(sak::Error::inner)))
}

/// The policy refusal somewhere in `err`'s chain (a local or on-chain policy decision).
pub(crate) fn refusal_of(err: &eyre::Report) -> Option<sak_policy::Refusal> {
    causes(err.as_ref()).find_map(|c| {
        c.downcast_ref::<sak_signer::Error>()
            .and_then(sak_signer::Error::refusal)
            .or_else(|| c.downcast_ref::<sak_userop::Error>().and_then(sak_userop::Error::refusal))
            .or_else(|| c.downcast_ref::<Hinted>().and_then(|h| h.refusal.clone()))
    })
}

/// The operation a command signed whose outcome is not known yet (exit 3).
fn unknown_of(
    err: &eyre::Report,
) -> Option<(sak_signer::ledger::IntentId, alloy::primitives::B256, Option<u64>)> {
    causes(err.as_ref()).find_map(|c| match c.downcast_ref::<sak_signer::Error>() {
        Some(sak_signer::Error::OutcomeUnknown { intent, user_op_hash, deadline, .. }) => {
            Some((*intent, *user_op_hash, *deadline))
        }
        _ => None,
    })
}

/// An owner transaction sent whose outcome is not known yet (exit 3).
fn unknown_tx_of(err: &eyre::Report) -> Option<alloy::primitives::B256> {
    causes(err.as_ref()).find_map(|c| c.downcast_ref::<Hinted>().and_then(|h| h.unknown_tx))
}

/// The outcome contract (README, "Exit codes"): 1 refused and nothing signed, 2 an error and
/// nothing signed, 3 signed with its outcome unknown; 0 and 4 (included, reverted) come from
/// the commands themselves.
fn exit_code(err: &eyre::Report) -> u8 {
    let refused = causes(err.as_ref()).any(|c| c.downcast_ref::<Hinted>().is_some_and(|h| h.refused));
    if unknown_of(err).is_some() || unknown_tx_of(err).is_some() {
        3
    } else if refused || refusal_of(err).is_some() {
        1
    } else {
        2
    }
}

/// The `state` of a command's `--json` error for its exit code.
fn state_of(code: u8) -> &'static str {
    match code {
        1 => "refused",
        3 => "unknown",
        4 => "reverted",
        _ => "failed",
    }
}

fn hint_of(err: &eyre::Report) -> Option<String> {
    causes(err.as_ref()).find_map(|cause| {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        if let Some(sak_signer::Error::PasswordEnvMissing { var }) = cause.downcast_ref::<sak_signer::Error>() {
            return Some(format!(
                "export {var}=... (the keystore password), or pass --password-file FILE (mode 0600) or --password-fd N"
            ));
        }
        match cause.downcast_ref::<sak_signer::Error>() {
            Some(sak_signer::Error::InsecurePermissions { .. }) => {
                return Some("run the chmod above: keys must be readable by you only".into());
            }
            Some(sak_signer::Error::WrongPassword { path }) => {
                let session_key = path.as_ref().is_some_and(|p| p.parent().is_some_and(|d| d.ends_with("session")));
                return Some(if session_key {
                    "use the passphrase the session key was made with ($SAK_KEY_PASSWORD or --key-password-env); \
                     a key made by an older sak is under the owner's password: `sak key rekey NAME` moves it"
                        .into()
                } else {
                    "use the password the key was stored with ($SAK_PASSWORD, --password-file or --password-fd)".into()
                });
            }
            _ => {}
        }
        cause
            .downcast_ref::<sak_node::Error>()
            .and_then(sak_node::Error::hint)
            .or_else(|| cause.downcast_ref::<sak_signer::Error>().and_then(sak_signer::Error::hint))
            .or_else(|| cause.downcast_ref::<sak_userop::Error>().and_then(|e| e.hint().map(Into::into)))
            .or_else(|| cause.downcast_ref::<sak_primitives::Error>().map(sak_primitives::Error::hint))
            .or_else(|| cause.downcast_ref::<AlreadyReported>().map(|a| a.hint.to_owned()))
            .or_else(|| cause.downcast_ref::<ReportedRefusal>().map(|a| a.hint.clone()))
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
    // Whatever library wrote a cause, an RPC URL's path (where API keys live) never shows. A
    // cause that only repeats the end of the one before it (libraries often wrap and quote
    // their source) is left out.
    let mut causes: Vec<String> = Vec::new();
    for cause in err.chain().map(|c| crate::config::redact_urls_in(&c.to_string())) {
        if !causes.last().is_some_and(|last| last.ends_with(&cause)) {
            causes.push(cause);
        }
    }
    let message = causes.join(": ");
    // Every error says what to do: where no cause knows better, the general checks.
    let hint = hint_of(err).unwrap_or_else(|| {
        if message.contains("ABI decoding failed") || message.contains("returned no data") {
            "the node's answer does not decode as the contract's: check that the RPC endpoint serves the chain \
             the home was set up on and is healthy (`sak doctor` checks both), then run again"
                .into()
        } else {
            "`sak doctor` checks the configuration, keys, chain and contracts; run again with -v for details".into()
        }
    });
    let code = if refused_reported {
        1
    } else if let Some(a) = err.downcast_ref::<AlreadyReported>() {
        a.code
    } else {
        exit_code(err)
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {message}");
    let _ = writeln!(stderr, "hint: {hint}");
    if global.json && already.is_none() {
        let refusal =
            refusal_of(err).map(|r| serde_json::json!({ "name": r.name(), "detail": r.to_string() }));
        let json = serde_json::json!({
            "error": { "message": message, "hint": hint, "exit_code": code, "refusal": refusal },
            "state": state_of(code),
            "intent": unknown_of(err).map(|(intent, ..)| intent.0),
            "user_op_hash": unknown_of(err).map(|(_, hash, _)| hash),
            "deadline": unknown_of(err).and_then(|(.., deadline)| deadline),
            "transaction": unknown_tx_of(err),
        });
        let _ = data(&json.to_string());
    }
    ExitCode::from(code)
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
