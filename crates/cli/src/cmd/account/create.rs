//! `sak account create` (smart, or a delegated EOA), and `sak account undelegate`.

use super::*;

pub(super) async fn require_code(chain: &Chain, address: Address, what: &str) -> eyre::Result<()> {
    if chain.provider.get_code_at(address).await?.is_empty() {
        return Err(Hinted::new(
            format!("{what} is not deployed at {address} on chain {}", chain.chain_id),
            "deploy sak's contracts with `sak deploy` (local chains: `sak node up` deploys everything)",
        )
        .into());
    }
    Ok(())
}

/// The owner pays for deployment and delegation. On local and fork chains an owner without
/// ETH is funded with 10 ETH from anvil's dev account 0 (a public test key); elsewhere it is an
/// error that says where to get some.
pub(super) async fn require_gas_money(chain: &Chain, ctx: &Ctx, owner: Address) -> eyre::Result<()> {
    if !chain.provider.get_balance(owner).await?.is_zero() {
        return Ok(());
    }
    if ctx.kind().is_anvil() && ctx.node()?.is_some() {
        let ten = U256::from(10u128 * 10u128.pow(18));
        ctx.fund_from_dev(chain, owner, ten, U256::ZERO, U256::ZERO).await?;
        output::progress(
            &ctx.global,
            &format!("funded the owner {owner} with 10 ETH from anvil's dev account 0"),
        );
        return Ok(());
    }
    Err(Hinted::new(
        format!("the owner {owner} has no ETH to pay gas"),
        format!("send some ETH to {owner} (a faucet on testnets)"),
    )
    .into())
}

pub(super) async fn create(args: CreateArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let info = create_on(ctx, &chain, args.kind, args.salt, args.name).await?;
    output::emit(&ctx.global, &info, || human(&info))
}

/// Deploys (smart, from `salt`) or delegates (7702) the owner's account on `chain` unless it
/// already is, and records it under `name` ([`free_name`]'s rules).
pub(crate) async fn create_on(
    ctx: &Ctx,
    chain: &Chain,
    kind: AccountKind,
    salt: B256,
    name: Option<String>,
) -> eyre::Result<AccountInfo> {
    let owner = ctx.owner_address()?;
    let address = match kind {
        AccountKind::Smart => {
            require_code(chain, chain.contracts.sak_account_factory, "SakAccountFactory").await?;
            SakAccountFactory::new(chain.contracts.sak_account_factory, &chain.provider)
                .getAddress(owner, salt)
                .call()
                .await
                .wrap_err("SakAccountFactory.getAddress")?
        }
        AccountKind::Eip7702 => owner,
    };
    let name = free_name(ctx, name, address)?;
    let mut ended = (Vec::new(), None);
    let (address, salt, created, transaction) = match kind {
        AccountKind::Smart => {
            let factory_address = chain.contracts.sak_account_factory;
            let deployed = !chain.provider.get_code_at(address).await?.is_empty();
            output::progress(
                &ctx.global,
                &format!(
                    "smart account address {address} ({})",
                    if deployed { "already deployed" } else { "counterfactual: not deployed yet" }
                ),
            );
            let mut tx = None;
            if !deployed {
                require_gas_money(chain, ctx, owner).await?;
                let key = ctx.owner().await?;
                let wallet = ctx.owner_provider(chain, &key)?;
                output::progress(&ctx.global, "deploying through SakAccountFactory…");
                let receipt = SakAccountFactory::new(factory_address, &wallet)
                    .createAccount(owner, salt)
                    .send()
                    .await
                    .wrap_err("createAccount")?
                    .get_receipt()
                    .await?;
                eyre::ensure!(receipt.status(), "createAccount reverted (tx {})", receipt.transaction_hash);
                eyre::ensure!(
                    !chain.provider.get_code_at(address).await?.is_empty(),
                    "the factory deployed nothing at {address}"
                );
                tx = Some(receipt.transaction_hash);
            }
            (address, Some(salt), !deployed, tx)
        }
        AccountKind::Eip7702 => {
            let delegate = chain.contracts.sak_7702_account;
            require_code(chain, delegate, "Sak7702Account").await?;
            let current = eip7702::delegate_of(&chain.provider, owner).await?;
            match current {
                Some(d) if d == delegate => {
                    output::progress(&ctx.global, &format!("{owner} is already delegated to Sak7702Account"));
                    ended = end_leftovers(ctx, chain, owner).await?;
                    (owner, None, false, None)
                }
                Some(other) => {
                    return Err(Hinted::refused(
                        format!("{owner} is delegated to {other}, not to Sak7702Account {delegate}"),
                        "sak does not replace another delegation: undelegate it with the wallet that set it first",
                    )
                    .into());
                }
                None => {
                    require_gas_money(chain, ctx, owner).await?;
                    let key = ctx.owner().await?;
                    output::progress(
                        &ctx.global,
                        "delegating the owner EOA with an EIP-7702 transaction that also ends any session left in its storage…",
                    );
                    let hash = eip7702::delegate_self_and_call(
                        &chain.provider,
                        key.key("an EIP-7702 authorization (delegating the EOA)")?,
                        delegate,
                        leftover::revoke_all_call(),
                    )
                    .await
                    .wrap_err("delegating with EIP-7702")?;
                    (owner, None, true, Some(hash))
                }
            }
        }
    };
    let record = AccountRecord { kind, address, owner, chain_id: chain.chain_id, salt };
    adopt(ctx, &name, &record)?;
    let mut info = info(ctx, chain, (&name, &record), created, transaction).await?;
    (info.ended_leftovers, info.ended_by) = ended;
    Ok(info)
}

/// An EOA already delegated to Sak7702Account may hold sessions from before its last
/// delegation change (made outside sak) or written by another delegate: ends them all with
/// revokeAllSessions before the account is reported ready. Returns what was ended, and how.
pub(super) async fn end_leftovers(
    ctx: &Ctx,
    chain: &Chain,
    eoa: Address,
) -> eyre::Result<(Vec<Leftover>, Option<B256>)> {
    output::progress(&ctx.global, "checking for sessions left from before the last delegation…");
    let found = leftover::find(&chain.provider, eoa).await?;
    if let Some(why) = &found.unchecked {
        output::warn(&format!(
            "{why}; if the EOA was delegated elsewhere since its sessions were granted, run `sak session revoke-all`"
        ));
    }
    let Some(summary) = found.summary() else { return Ok((Vec::new(), None)) };
    output::progress(&ctx.global, &format!("ending every session: {summary}"));
    let receipt = sak::owner::send_revoke_all(ctx, chain, eoa, &ctx.owner().await?).await?;
    let mut ended = found.leftovers;
    if let Some(detail) = &found.tampered {
        // Every live session went with the salt, listed or not.
        let unlisted: Vec<u32> =
            found.live.iter().copied().filter(|id| !ended.iter().any(|l| l.id == *id)).collect();
        ended.extend(unlisted.into_iter().map(|id| Leftover {
            id,
            signer: Address::ZERO,
            reason: "tampered-storage",
            detail: detail.clone(),
        }));
    }
    Ok((ended, Some(receipt.transaction_hash)))
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
        revoked =
            Some(sak::owner::send_revoke_all(ctx, &chain, record.address, &key).await?.transaction_hash);
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
