//! `sak owner new|import|use-device|show`: the owner key, in an encrypted keystore or on a
//! hardware wallet.

use crate::{
    ctx::Ctx,
    output::{self, Hinted},
    owner::{Device, DeviceFile},
};
use alloy::{primitives::Address, providers::Provider};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak_signer::keystore::{self, LocalKey};
use serde::Serialize;
use std::{io::Read, os::unix::fs::PermissionsExt, path::PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum OwnerCommand {
    /// Generate an owner key and store it encrypted (scrypt) with the password from
    /// $SAK_PASSWORD (or --password-file / --password-fd).
    #[command(
        after_help = "Examples:\n  SAK_PASSWORD=... sak owner new\n  sak owner new --password-file ~/.sak-pass"
    )]
    New,
    /// Import an owner key: a Web3 Secret Storage (v3) keystore file, or a hex private key read
    /// from standard input (never from an argument: those show in `ps`).
    #[command(after_help = "Examples:\n  sak owner import --keystore ~/.foundry/keystores/me\n  \
                            pass show eth/owner | sak owner import --private-key-stdin")]
    Import(ImportArgs),
    /// Keep the owner key on a hardware wallet (a sak built with the `hardware` feature): reads
    /// the device's address and names the device in this home. The device then signs the
    /// owner's transactions, each confirmed on it.
    #[command(
        after_help = "Examples:\n  sak owner use-device ledger\n  sak owner use-device trezor --index 1\n\n\
                            The device signs transactions: grant, revoke, revoke-all, rotate, ownership, \
                            account creation, and every act of a delegated EOA. It is not asked to sign a bare \
                            hash: an EIP-7702 delegation and a smart account's owner operations (account call, \
                            withdraw, revoke-approval) are refused with what to do instead."
    )]
    UseDevice(UseDeviceArgs),
    /// The owner's address, keystore (or device) and balance on the network.
    #[command(after_help = "Examples:\n  sak owner show\n  sak owner show --json")]
    Show,
}

#[derive(Debug, Args)]
pub(crate) struct UseDeviceArgs {
    /// `ledger` or `trezor`.
    #[arg(value_enum)]
    device: Device,
    /// The account index on the device (Ledger Live m/44'/60'/INDEX'/0/0, Trezor
    /// m/44'/60'/0'/0/INDEX).
    #[arg(long, default_value_t = 0)]
    index: u32,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ImportArgs {
    /// A v3 keystore file, decrypted with the password (re-encrypted with it into sak's store).
    #[arg(long, value_name = "FILE")]
    keystore: Option<PathBuf>,
    /// Read a 0x-prefixed hex private key from standard input.
    #[arg(long)]
    private_key_stdin: bool,
}

/// What `owner` commands print. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
struct OwnerInfo {
    address: Address,
    /// `local` (the keystore), `ledger` or `trezor`.
    backend: &'static str,
    /// The keystore file, or for a device the file that names it.
    keystore: String,
    /// The keystore file's mode, e.g. "600".
    mode: String,
    network: String,
    /// Wei on the network (absent when the chain is unreachable).
    balance_wei: Option<alloy::primitives::U256>,
}

pub(crate) async fn run(command: OwnerCommand, ctx: &Ctx) -> eyre::Result<()> {
    match command {
        OwnerCommand::New => {
            refuse_overwrite(ctx)?;
            let key = LocalKey::generate()?;
            store(ctx, &key, "created")
        }
        OwnerCommand::Import(args) => {
            refuse_overwrite(ctx)?;
            let password = ctx.password()?;
            let key = if let Some(path) = &args.keystore {
                let json = std::fs::read(path).wrap_err_with(|| format!("reading {}", path.display()))?;
                keystore::decrypt(&json, &password)
                    .wrap_err_with(|| format!("decrypting {}", path.display()))?
            } else {
                let mut text = Zeroizing::new(String::new());
                std::io::stdin().read_to_string(&mut text).wrap_err("reading the key from standard input")?;
                let signer = text.trim().parse::<alloy::signers::local::PrivateKeySigner>().map_err(|_| {
                    Hinted::new(
                        "standard input is not a hex private key (32 bytes, 0x-prefixed or not)",
                        "pipe exactly the key, e.g. `pass show eth/owner | sak owner import --private-key-stdin`",
                    )
                })?;
                LocalKey::from_signer(signer)
            };
            store(ctx, &key, "imported")
        }
        OwnerCommand::UseDevice(args) => use_device(args, ctx).await,
        OwnerCommand::Show => show(ctx).await,
    }
}

fn refuse_overwrite(ctx: &Ctx) -> eyre::Result<()> {
    if let Some(file) = ctx.owner_device()? {
        return Err(Hinted::refused(
            format!("this home's owner is on a {} ({})", file.device.as_str(), file.address),
            format!(
                "move {} away first if you really mean to replace it",
                ctx.paths.owner_device().display()
            ),
        )
        .into());
    }
    let path = ctx.paths.owner_key();
    if path.exists() {
        return Err(Hinted::refused(
            format!("an owner key already exists at {}", path.display()),
            "sak never overwrites a key: move the file away first if you really mean to replace it",
        )
        .into());
    }
    Ok(())
}

fn store(ctx: &Ctx, key: &LocalKey, verb: &str) -> eyre::Result<()> {
    let password = ctx.password()?;
    let path = ctx.paths.owner_key();
    output::progress(&ctx.global, "encrypting the key (scrypt, about a second)…");
    keystore::save(&path, key, &password)?;
    let info = info(ctx, key.address(), None)?;
    output::emit(&ctx.global, &serde_json::json!({ "action": verb, "owner": info }), || {
        format!(
            "{verb} owner {}\nkeystore {} (mode {})\nback this file up together with its password: it controls the account",
            info.address, info.keystore, info.mode
        )
    })
}

fn info(
    ctx: &Ctx,
    address: Address,
    balance_wei: Option<alloy::primitives::U256>,
) -> eyre::Result<OwnerInfo> {
    let device = ctx.owner_device()?;
    let path = if device.is_some() { ctx.paths.owner_device() } else { ctx.paths.owner_key() };
    let mode =
        std::fs::metadata(&path).map(|m| format!("{:o}", m.permissions().mode() & 0o777)).unwrap_or_default();
    Ok(OwnerInfo {
        address,
        backend: device.map_or("local", |d| d.device.as_str()),
        keystore: path.display().to_string(),
        mode,
        network: ctx.network_name.clone(),
        balance_wei,
    })
}

async fn show(ctx: &Ctx) -> eyre::Result<()> {
    let address = ctx.owner_address()?;
    let balance = match ctx.chain().await {
        Ok(chain) => chain.provider.get_balance(address).await.ok(),
        Err(e) => {
            tracing::warn!("balance unavailable: {e:#}");
            None
        }
    };
    let info = info(ctx, address, balance)?;
    output::emit(&ctx.global, &info, || {
        format!(
            "owner     {}{}\nkeystore  {} (mode {})\nbalance   {} on {}",
            info.address,
            if info.backend == "local" { String::new() } else { format!(" (on a {})", info.backend) },
            info.keystore,
            info.mode,
            info.balance_wei.map_or_else(
                || "unknown (chain unreachable)".into(),
                |b| format!("{} ETH", alloy::primitives::utils::format_ether(b))
            ),
            info.network
        )
    })
}

async fn use_device(args: UseDeviceArgs, ctx: &Ctx) -> eyre::Result<()> {
    refuse_overwrite(ctx)?;
    output::progress(
        &ctx.global,
        &format!("reading the address at index {} of the {}…", args.index, args.device.as_str()),
    );
    let (address, _) = crate::owner::connect(args.device, args.index, None).await?;
    let file = DeviceFile { device: args.device, index: args.index, address };
    crate::store::write_atomic(&ctx.paths.owner_device(), &serde_json::to_vec_pretty(&file)?, 0o600)?;
    let info = info(ctx, address, None)?;
    output::emit(&ctx.global, &serde_json::json!({ "action": "device", "owner": info }), || {
        format!(
            "owner {address} is on the {} (index {}); each owner transaction is confirmed on the device",
            args.device.as_str(),
            args.index
        )
    })
}
