//! The owner's acts on the account's sessions: grant, revoke one, revoke all; each a
//! transaction the owner signs, reported once it is the network's confirmations deep.

use super::Owner;
use crate::{Chain, Hinted, Home, OptionExt, Result, error::ensure};
use alloy::{
    primitives::{Address, B256},
    providers::DynProvider,
    rpc::types::TransactionReceipt,
};
use sak_contracts::SakAccount;
use sak_primitives::Policy;

/// Sends `grantSession` from the owner key; returns (id, tx, block).
pub async fn send_grant(
    home: &Home,
    chain: &Chain,
    account: Address,
    policy: &Policy,
    key: Address,
) -> Result<(u32, B256, u64)> {
    let owner = home.owner().await?;
    let wallet = home.owner_provider(chain, &owner)?;
    home.progress("the owner signs grantSession…");
    let pending = SakAccount::new(account, &wallet)
        .grantSession(policy.to_session_config(key))
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

/// An owner transaction refused by the account: named like the contracts' error.
pub fn owner_call_error(e: alloy::contract::Error, what: &str) -> crate::Error {
    if let Some(err) = e.as_decoded_interface_error::<SakAccount::SakAccountErrors>() {
        let hint = match err {
            SakAccount::SakAccountErrors::NotOwner(_) => NOT_OWNER_HINT,
            _ => "fix the policy and try again",
        };
        return Hinted::refused(
            format!("{what} refused by the account: {}", sak_userop::describe_sak(&err)),
            hint,
        )
        .into();
    }
    crate::Error::from(e).wrap(what)
}

/// The owner's `revokeAllSessions` on `account`, mined: every session ends (a fresh salt).
pub async fn send_revoke_all(
    home: &Home,
    chain: &Chain,
    account: Address,
    owner: &Owner,
) -> Result<TransactionReceipt> {
    let wallet = home.owner_provider(chain, owner)?;
    let pending = SakAccount::new(account, &wallet)
        .revokeAllSessions()
        .send()
        .await
        .map_err(|e| owner_error(e, "revokeAllSessions"))?;
    mined(home, pending, "revokeAllSessions").await
}

/// An owner transaction the account refused, named like the contracts' error.
fn owner_error(e: alloy::contract::Error, what: &str) -> crate::Error {
    if let Some(err) = e.as_decoded_interface_error::<SakAccount::SakAccountErrors>() {
        let hint = if matches!(err, SakAccount::SakAccountErrors::NotOwner(_)) {
            NOT_OWNER_HINT
        } else {
            "check the session's state with `sak session list`, then try again"
        };
        return Hinted::new(
            format!("{what} refused by the account: {}", sak_userop::describe_sak(&err)),
            hint,
        )
        .into();
    }
    crate::Error::from(e).wrap(format!("sending {what}"))
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
