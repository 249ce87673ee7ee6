//! A session as the chain granted it: its policy from the grant event, its current key.

use super::*;

/// Reads a session's granted policy back from its `SessionGranted` event.
pub async fn load_session(provider: &DynProvider, account: Address, id: u32) -> Result<Session> {
    load_session_from(provider, account, id, 0).await
}

/// [`load_session`], reading events from `from_block` on: the grant's block when it is known
/// (a scan from 0 is more than many public endpoints serve in one request).
pub async fn load_session_from(
    provider: &DynProvider,
    account: Address,
    id: u32,
    from_block: u64,
) -> Result<Session> {
    let filter = Filter::new()
        .address(account)
        .event_signature(SakAccount::SessionGranted::SIGNATURE_HASH)
        .topic1(U256::from(id))
        .from_block(from_block);
    let logs = provider.get_logs(&filter).await.map_err(|e| Error::Chain(format!("eth_getLogs: {e}")))?;
    let log = logs.last().ok_or(Error::UnknownSession { account, id })?;
    let granted = log
        .log_decode::<SakAccount::SessionGranted>()
        .map_err(|e| Error::Chain(format!("SessionGranted event: {e}")))?
        .inner
        .data;
    let policy = sak_primitives::Policy::from_session_config(&granted.config)
        .map_err(|e| Error::Chain(format!("the granted policy does not read back: {e}")))?;
    let signer =
        session_key(provider, account, id, granted.signer, log.block_number.unwrap_or_default()).await?;
    Ok(Session::new(id, signer, policy))
}

/// The key session `id` of `account` signs with now: the one the contracts store, else (a
/// revoked session's record is gone) the last one the owner rotated it to after `from_block`
/// (`SessionKeyRotated`), else `granted`.
pub async fn session_key(
    provider: &DynProvider,
    account: Address,
    id: u32,
    granted: Address,
    from_block: u64,
) -> Result<Address> {
    let view = SakAccount::new(account, provider)
        .getSession(id)
        .call()
        .await
        .map_err(|e| Error::Chain(format!("getSession: {e}")))?;
    if view.signer != Address::ZERO {
        return Ok(view.signer);
    }
    let rotations = Filter::new()
        .address(account)
        .event_signature(SakAccount::SessionKeyRotated::SIGNATURE_HASH)
        .topic1(U256::from(id))
        .from_block(from_block);
    let logs = provider.get_logs(&rotations).await.map_err(|e| Error::Chain(format!("eth_getLogs: {e}")))?;
    match logs.last() {
        Some(l) => Ok(l
            .log_decode::<SakAccount::SessionKeyRotated>()
            .map_err(|e| Error::Chain(format!("SessionKeyRotated event: {e}")))?
            .inner
            .data
            .signer),
        None => Ok(granted),
    }
}
