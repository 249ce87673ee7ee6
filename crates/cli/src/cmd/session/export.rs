//! `sak session export ID --out FILE`: the session handed to an agent as one bundle
//! ([`sak::handoff`]); `sak agent import FILE` reads it on the agent's machine.

use crate::{
    ctx::Ctx,
    output::{self, Hinted},
    store::write_atomic,
};
use clap::Args;
use sak::handoff;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The session id (`sak session list`).
    id: u32,
    /// Write the bundle to this file (created with mode 0600; never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Leave the key out: the agent gets it as $SAK_SESSION_KEY from its secret store
    /// (`sak key export NAME --unencrypted --out FILE` hands it over separately).
    #[arg(long)]
    no_key: bool,
}

/// What `sak session export` prints (`--json`).
#[derive(Debug, Serialize)]
struct Exported {
    out: String,
    session: u32,
    account: sak::Address,
    key: sak::Address,
    key_name: String,
    /// Whether the bundle holds the key (encrypted under the session keys' passphrase).
    with_key: bool,
    chain_id: u64,
    valid_until: u64,
}

pub(super) async fn export(args: ExportArgs, ctx: &Ctx) -> eyre::Result<()> {
    if args.out.exists() {
        return Err(Hinted::refused(format!("{} exists", args.out.display()), "choose a new file").into());
    }
    let chain = ctx.chain().await?;
    let bundle = handoff::export(ctx, &chain, args.id, !args.no_key).await?;
    write_atomic(&args.out, serde_json::to_string_pretty(&bundle)?.as_bytes(), 0o600)?;
    let out = Exported {
        out: args.out.display().to_string(),
        session: args.id,
        account: bundle.account.address,
        key: bundle.session.key,
        key_name: bundle.session.key_name.clone(),
        with_key: bundle.key.is_some(),
        chain_id: bundle.chain_id,
        valid_until: bundle.session.policy.valid_until,
    };
    output::emit(&ctx.global, &out, || {
        let key = if out.with_key {
            format!(
                "its key `{}` encrypted under the session keys' passphrase (never the owner's)",
                out.key_name
            )
        } else {
            "no key: give the agent $SAK_SESSION_KEY from a secret store".to_owned()
        };
        format!(
            "wrote session #{} of {} to {} (mode 0600): {key}, the account, chain {}, sak's contracts, \
             the address book and the policy. No owner secret is in it.\n\
             On the agent's machine:\n  \
             sak agent import {}          # asks for (or reads $SAK_KEY_PASSWORD) the passphrase\n  \
             sak agent relayer new        # or set $SAK_RELAYER_KEY, or use --via bundler\n  \
             sak swap --session {} --in tUSD --out TKN --amount 10 --min-out 0",
            out.session, out.account, out.out, out.chain_id, out.out, out.session
        )
    })
}
