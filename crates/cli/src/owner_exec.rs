//! The owner acting from its account: calls simulated and sent by the facade
//! ([`sak::owner::execute`]), confirmed here first.

use crate::{cli::GlobalArgs, output::Hinted};
pub(crate) use sak::owner::{execute, simulate};
use std::io::{BufRead, IsTerminal, Write};

/// Asks before an owner action: `--yes` proceeds; on a terminal the user answers; anything
/// else (a script without `--yes`, `--json` without `--yes`) is refused (exit 1): nothing sent.
pub(crate) fn confirm(global: &GlobalArgs, yes: bool, question: &str) -> eyre::Result<()> {
    if yes {
        return Ok(());
    }
    if global.json || !std::io::stdin().is_terminal() {
        return Err(Hinted::refused(
            format!("not confirmed: {question} (nothing was sent)"),
            "pass --yes to send it from a script, or run it on a terminal to answer",
        )
        .into());
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Hinted::refused("declined: nothing was sent", "run it again and answer y to send it").into())
    }
}
