//! `sak completions SHELL`: shell completion scripts from the command definition.

use clap::Args;
use clap_complete::Shell;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  sak completions bash > ~/.local/share/bash-completion/completions/sak\n  \
                        sak completions zsh > \"${fpath[1]}/_sak\"\n  sak completions fish > ~/.config/fish/completions/sak.fish"
)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the script for `command`, the whole command tree.
pub(crate) fn run(args: CompletionsArgs, mut command: clap::Command) -> eyre::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sak", &mut out);
    crate::output::data(String::from_utf8(out)?.trim_end())
}
