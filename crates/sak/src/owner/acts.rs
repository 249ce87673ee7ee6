//! The owner's acts on the account's sessions: grant, revoke one, revoke all; each a
//! transaction the owner signs, reported once it is the network's confirmations deep. On a
//! modular account each is an owner operation in which the account calls its module.

use super::Owner;
use crate::{Chain, Hinted, Home, OptionExt, Result, error::ensure, store::AccountRecord};
use alloy::{
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
    sol_types::SolCall,
};
use sak_contracts::{SakAccount, SessionKeyValidator};
use sak_policy::Call;
use sak_primitives::Policy;

/// An owner act on a modular account's sessions: the account calls its `SessionKeyValidator`
/// (`call`: an `ISakSessions` function, the same on the module as on sak's accounts) in an owner
/// operation, after a dry run. The receipt of the transaction that carried it.
pub(super) async fn module_act(
    home: &Home,
    chain: &Chain,
    account: &AccountRecord,
    call: &impl SolCall,
    what: &str,
) -> Result<TransactionReceipt> {
    let calls = [Call::contract(chain.contracts.session_key_validator, call)];
    super::simulate(chain, account, &calls).await?;
    let tx = super::execute(home, chain, account, &calls, what).await?;
    chain.provider.get_transaction_receipt(tx).await?.ok_or_err(format!("no receipt for {what} (tx {tx})"))
}

/// Grants `policy` to `key` on `account` (the owner's `grantSession`); returns (id, tx, block).
pub async fn send_grant(
    home: &Home,
    chain: &Chain,
    account: &AccountRecord,
    policy: &Policy,
    key: Address,
) -> Result<(u32, B256, u64)> {
    let config = policy.to_session_config(key);
    if account.kind.is_modular() {
        home.progress("the owner signs an operation of the account calling grantSession…");
        let receipt =
            module_act(home, chain, account, &SakAccount::grantSessionCall { config }, "grantSession")
                .await?;
        let id = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<SessionKeyValidator::AccountSessionGranted>().ok())
            .find(|l| l.inner.data.account == account.address)
            .ok_or_err("no AccountSessionGranted event for the account in the receipt")?
            .inner
            .data
            .id;
        return Ok((id, receipt.transaction_hash, receipt.block_number.unwrap_or_default()));
    }
    let account = account.address;
    let owner = home.owner().await?;
    let wallet = home.owner_provider(chain, &owner)?;
    home.progress("the owner signs grantSession…");
    let pending = SakAccount::new(account, &wallet)
        .grantSession(config)
        .send()
        .await
        .map_err(|e| owner_call_error(e, "grantSession"))?;
    let receipt = mined(home, pending, "grantSession").await?;
    Ok((granted_id(&receipt)?, receipt.transaction_hash, receipt.block_number.unwrap_or_default()))
}

/// The session id a `grantSession` receipt announces.
pub fn granted_id(receipt: &alloy::rpc::types::TransactionReceipt) -> Result<u32> {
    Ok(receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
        .ok_or_err("no SessionGranted event in the receipt")?
        .inner
        .data
        .id)
}

/// The hint when the account answers `NotOwner` to this home's owner key.
pub const NOT_OWNER_HINT: &str = "this home's owner key is not the account's owner (ownership moved with \
     `transfer-ownership`, or another key was imported): `sak account show` shows the owner on chain; act from \
     that owner's home";

/// An owner transaction refused by the account: named like the contracts' error (a refusal,
/// exit 1, with the hint to fix the policy or the owner key).
pub fn owner_call_error(e: alloy::contract::Error, what: &str) -> crate::Error {
    refused_by_account(e, what, "fix the policy and try again", true).unwrap_or_else(|e| e.wrap(what))
}

/// The account's own error as a [`Hinted`] (`refused`: exit 1, else 2); else the call's error
/// as it is.
fn refused_by_account(
    e: alloy::contract::Error,
    what: &str,
    hint: &str,
    refused: bool,
) -> Result<crate::Error, crate::Error> {
    let Some(err) = e.as_decoded_interface_error::<SakAccount::SakAccountErrors>() else {
        return Err(crate::Error::from(e));
    };
    let hint = if matches!(err, SakAccount::SakAccountErrors::NotOwner(_)) { NOT_OWNER_HINT } else { hint };
    let message = format!("{what} refused by the account: {}", sak_userop::describe_sak(&err));
    let hinted = if refused { Hinted::refused(message, hint) } else { Hinted::new(message, hint) };
    Ok(hinted.into())
}

/// The owner's `revokeAllSessions` on `account`, mined: every session ends (a fresh salt).
pub async fn send_revoke_all(
    home: &Home,
    chain: &Chain,
    account: &AccountRecord,
    owner: &Owner,
) -> Result<TransactionReceipt> {
    if account.kind.is_modular() {
        return module_act(home, chain, account, &SakAccount::revokeAllSessionsCall {}, "revokeAllSessions")
            .await;
    }
    let account = account.address;
    let wallet = home.owner_provider(chain, owner)?;
    let pending = SakAccount::new(account, &wallet)
        .revokeAllSessions()
        .send()
        .await
        .map_err(|e| owner_error(e, "revokeAllSessions"))?;
    mined(home, pending, "revokeAllSessions").await
}

/// An owner revoke the account refused, named like the contracts' error (exit 2).
fn owner_error(e: alloy::contract::Error, what: &str) -> crate::Error {
    let hint = "check the session's state with `sak session list`, then try again";
    refused_by_account(e, what, hint, false).unwrap_or_else(|e| e.wrap(format!("sending {what}")))
}

/// The receipt of an owner transaction once it is the network's `confirmations` deep; exit 3
/// (outcome unknown, with the transaction) when it cannot be had, exit 2 when it reverted.
pub async fn mined(
    home: &Home,
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
    what: &str,
) -> Result<TransactionReceipt> {
    let tx = *pending.tx_hash();
    let receipt = match pending.with_required_confirmations(home.network.depth()).get_receipt().await {
        Ok(receipt) => receipt,
        Err(e) => {
            return Err(Hinted::unknown(
                format!("{what} was sent (tx {tx}) and its outcome is not known yet: {e}"),
                "it may still land: check with `sak session list` (or the transaction on an explorer) \
                 before sending it again",
                tx,
            )
            .into());
        }
    };
    ensure!(receipt.status(), "{what} reverted (tx {})", receipt.transaction_hash);
    Ok(receipt)
}

/// Revokes session `id` of `account` with the owner's `wallet`; the receipt once deep enough.
pub async fn send_revoke(
    home: &Home,
    wallet: &DynProvider,
    account: Address,
    id: u32,
) -> Result<TransactionReceipt> {
    home.progress(&format!("the owner signs revokeSession({id})…"));
    let pending = SakAccount::new(account, wallet)
        .revokeSession(id)
        .send()
        .await
        .map_err(|e| owner_error(e, "revokeSession"))?;
    mined(home, pending, "revokeSession").await
}
