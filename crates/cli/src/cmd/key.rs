//! `sak key new|list|export|rekey`: session keys, the keys agents sign with, each under the
//! session keys' passphrase (never the owner's password).

use crate::{
    ctx::Ctx,
    output::{self, Hinted},
    store::write_atomic,
};
use alloy::primitives::Address;
use clap::{Args, Subcommand};
use sak::store::valid_name;
use sak_signer::keystore::{self, LocalKey};
use serde::Serialize;
use std::path::PathBuf;
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Generate a session key, encrypted under the session keys' passphrase ($SAK_KEY_PASSWORD,
    /// never the owner's password).
    #[command(after_help = "Examples:\n  sak key new --name price-bot\n  sak key new --json")]
    New(NewArgs),
    /// The session keys in this home, with the sessions granted to them here.
    #[command(after_help = "Examples:\n  sak key list\n  sak key list --json")]
    List,
    /// Hand a key to an agent runtime: its encrypted keystore (default) or, with
    /// --unencrypted, the raw private key; only to a file (--out, mode 0600) or to stdout with
    /// --stdout.
    #[command(after_help = "Examples:\n  sak key export price-bot --out /run/agent/key.json\n  \
                            sak key export price-bot --unencrypted --stdout | agent --key-stdin")]
    Export(ExportArgs),
    /// Put a key made by an older sak, under the owner's password, under the session keys'
    /// passphrase instead (needs both; the key itself does not change).
    #[command(after_help = "Examples:\n  SAK_PASSWORD=… SAK_KEY_PASSWORD=… sak key rekey price-bot")]
    Rekey(RekeyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RekeyArgs {
    /// The key's name or address.
    key: String,
}

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The key's name [default: agent-N].
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The key's name or address.
    key: String,
    /// Write to this file (created with mode 0600; never overwritten).
    #[arg(long, value_name = "FILE", conflicts_with = "stdout")]
    out: Option<PathBuf>,
    /// Write to standard output.
    #[arg(long)]
    stdout: bool,
    /// Export the raw private key (hex) instead of the encrypted keystore.
    #[arg(long)]
    unencrypted: bool,
}

/// One key in `sak key list --json`.
#[derive(Debug, Serialize)]
struct KeyInfo {
    name: String,
    address: Option<Address>,
    path: String,
    /// Sessions granted to this key from this home: (network, account, id).
    sessions: Vec<KeySession>,
}

#[derive(Debug, Serialize)]
struct KeySession {
    network: String,
    account: Address,
    id: u32,
    granted_at: u64,
}

pub(crate) fn run(command: KeyCommand, ctx: &Ctx) -> eyre::Result<()> {
    match command {
        KeyCommand::New(args) => new(args, ctx),
        KeyCommand::List => list(ctx),
        KeyCommand::Export(args) => export(args, ctx),
        KeyCommand::Rekey(args) => rekey(args, ctx),
    }
}

fn new(args: NewArgs, ctx: &Ctx) -> eyre::Result<()> {
    let existing = ctx.session_keys()?;
    let name = match args.name {
        Some(n) => n,
        None => (1..)
            .map(|i| format!("agent-{i}"))
            .find(|n| !existing.iter().any(|(e, ..)| e == n))
            .unwrap_or_default(),
    };
    if !valid_name(&name) {
        return Err(Hinted::new(
            format!("`{name}` is not a usable key name"),
            "use letters, digits, `-`, `_` and `.` (up to 64, not starting with `.` or `-`)",
        )
        .into());
    }
    let path = ctx.paths.session_keys_dir().join(format!("{name}.json"));
    if path.exists() {
        return Err(Hinted::refused(format!("a key named `{name}` exists"), "choose another --name").into());
    }
    let password = ctx.new_key_password()?;
    let key = LocalKey::generate()?;
    output::progress(&ctx.global, "encrypting the key (scrypt, about a second)…");
    keystore::save(&path, &key, &password)?;
    let out =
        serde_json::json!({ "name": name, "address": key.address(), "path": path.display().to_string() });
    output::emit(&ctx.global, &out, || {
        format!(
            "session key `{name}`  {}\nstored in {}\nnext: `sak session grant --key {name} --role trader`",
            key.address(),
            path.display()
        )
    })
}

fn list(ctx: &Ctx) -> eyre::Result<()> {
    let state = ctx.state()?;
    let keys: Vec<KeyInfo> = ctx
        .session_keys()?
        .into_iter()
        .map(|(name, path, address)| {
            let sessions = state
                .networks
                .iter()
                .flat_map(|(net, s)| s.sessions.iter().map(move |r| (net, r)))
                .filter(|(_, r)| Some(r.key) == address)
                .map(|(net, r)| KeySession {
                    network: net.clone(),
                    account: r.account,
                    id: r.id,
                    granted_at: r.key_since(),
                })
                .collect();
            KeyInfo { name, address, path: path.display().to_string(), sessions }
        })
        .collect();
    output::emit(&ctx.global, &serde_json::json!({ "keys": keys }), || {
        if keys.is_empty() {
            return "no session keys yet: `sak key new --name NAME`".into();
        }
        let mut s = format!("{:<20} {:<42} sessions\n", "name", "address");
        for k in &keys {
            let sessions: Vec<String> =
                k.sessions.iter().map(|s| format!("{}#{}", s.network, s.id)).collect();
            s += &format!(
                "{:<20} {:<42} {}\n",
                k.name,
                k.address.map_or_else(|| "(unreadable)".into(), |a| a.to_string()),
                if sessions.is_empty() { "-".into() } else { sessions.join(", ") }
            );
        }
        s
    })
}

fn export(args: ExportArgs, ctx: &Ctx) -> eyre::Result<()> {
    if args.out.is_none() && !args.stdout {
        return Err(Hinted::refused(
            "refusing to export a key without a destination",
            "pass --out FILE (written 0600) or --stdout explicitly",
        )
        .into());
    }
    let (name, path) = ctx.session_key_path(&args.key)?;
    let bytes: Zeroizing<Vec<u8>> = if args.unencrypted {
        let key = keystore::load(&path, &ctx.key_password()?)?;
        Zeroizing::new(
            format!("0x{}\n", alloy::hex::encode(key.signer().credential().to_bytes())).into_bytes(),
        )
    } else {
        // Checks the file's permissions and that it decrypts with the password, then copies it.
        keystore::load(&path, &ctx.key_password()?)?;
        Zeroizing::new(std::fs::read(&path)?)
    };
    match &args.out {
        Some(out) => {
            if out.exists() {
                return Err(Hinted::refused(format!("{} exists", out.display()), "choose a new file").into());
            }
            write_atomic(out, &bytes, 0o600)?;
            let what = if args.unencrypted { "raw private key" } else { "encrypted keystore" };
            output::progress(
                &ctx.global,
                &format!("wrote the {what} of `{name}` to {} (mode 0600)", out.display()),
            );
            if ctx.global.json {
                output::data(&serde_json::json!({ "name": name, "out": out.display().to_string(), "unencrypted": args.unencrypted }).to_string())?;
            }
            Ok(())
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

fn rekey(args: RekeyArgs, ctx: &Ctx) -> eyre::Result<()> {
    let (name, path) = ctx.session_key_path(&args.key)?;
    let passphrase = ctx.new_key_password()?;
    let (key, rekeyed) = match keystore::load(&path, &passphrase) {
        Ok(key) => (key, false),
        Err(sak_signer::Error::WrongPassword { .. }) => {
            let key = keystore::load(&path, &ctx.password()?).map_err(|e| {
                Hinted::new(
                    format!("`{name}` opens with neither the session keys' passphrase nor the owner's password: {e}"),
                    "set $SAK_KEY_PASSWORD (or $SAK_PASSWORD) to the one it was made with",
                )
            })?;
            output::progress(&ctx.global, "re-encrypting the key (scrypt, about a second)…");
            // Written beside it, then renamed over it: the file is the old one or the new one.
            let fresh = path.with_file_name(format!(".{name}.rekeyed.json"));
            let _ = std::fs::remove_file(&fresh);
            keystore::save(&fresh, &key, &passphrase)?;
            std::fs::rename(&fresh, &path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            (key, true)
        }
        Err(e) => return Err(e.into()),
    };
    let out = serde_json::json!({ "name": name, "address": key.address(), "rekeyed": rekeyed });
    output::emit(&ctx.global, &out, || {
        if rekeyed {
            format!("key `{name}` ({}) is now under the session keys' passphrase", key.address())
        } else {
            format!("key `{name}` is already under the session keys' passphrase: nothing to do")
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_names_are_plain_file_names() {
        for ok in ["agent-1", "price_bot", "a.b"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
