//! `sak account create` (smart, or a delegated EOA), and `sak account undelegate`.

use super::*;
use sak_userop::eip7702;

pub(super) async fn create(args: CreateArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let info = sak::owner::create_account(ctx, &chain, args.kind, args.salt, args.name).await?;
    if let Some(why) = &info.unchecked {
        output::warn(why);
    }
    output::emit(&ctx.global, &info, || human(&info))
}

pub(super) async fn undelegate(ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let record = ctx.account(chain.chain_id)?;
    if record.kind != AccountKind::Eip7702 {
        return Err(Hinted::refused(
            format!("{} is a smart account, not a delegated EOA", record.address),
            "only an EIP-7702 account can be undelegated; end its sessions with `sak session revoke-all`",
        )
        .into());
    }
    let key = ctx.owner().await?;
    let delegate = eip7702::delegate_of(&chain.provider, record.address).await?;
    let mut revoked = None;
    if delegate == Some(chain.contracts.sak_7702_account) {
        output::progress(&ctx.global, "ending every session (revokeAllSessions) before undelegating…");
        revoked = Some(sak::owner::send_revoke_all(ctx, &chain, &record, &key).await?.transaction_hash);
    }
    let mut transaction = None;
    if delegate.is_some() {
        output::progress(
            &ctx.global,
            "clearing the EOA's code with an EIP-7702 authorization to the zero address…",
        );
        transaction = Some(
            eip7702::delegate_self(
                &chain.provider,
                key.key("an EIP-7702 authorization (undelegating)")?,
                Address::ZERO,
            )
            .await
            .wrap_err("undelegating with EIP-7702")?,
        );
    }
    let out = Undelegated {
        account: record.address,
        previous_delegate: delegate,
        sessions_revoked_by: revoked,
        transaction,
    };
    output::emit(&ctx.global, &out, || match (out.previous_delegate, out.sessions_revoked_by) {
        (None, _) => format!("{} is not delegated: nothing to do", out.account),
        (Some(d), Some(r)) => format!(
            "ended every session (tx {r}), then undelegated {} from {d}: it is a plain EOA again\n  \
             `sak account create --kind 7702` delegates it again (with fresh sessions only)",
            out.account
        ),
        (Some(d), None) => format!("undelegated {} from {d}: it is a plain EOA again", out.account),
    })
}

/// What `sak account undelegate` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
pub(super) struct Undelegated {
    account: Address,
    /// The delegate before this run (null: it was not delegated, nothing was sent).
    previous_delegate: Option<Address>,
    /// The revokeAllSessions transaction (sent when the delegate was Sak7702Account).
    sessions_revoked_by: Option<B256>,
    /// The type-4 transaction that cleared the code.
    transaction: Option<B256>,
}
