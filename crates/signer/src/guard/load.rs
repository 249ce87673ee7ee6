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
    load_hosted_session(provider, Host::account(account), id, from_block).await
}

/// [`load_session_from`] for a session wherever it lives ([`Host`]): in the account, or in
/// the module of a modular account (its `AccountSessionGranted` event).
pub async fn load_hosted_session(
    provider: &DynProvider,
    host: Host,
    id: u32,
    from_block: u64,
) -> Result<Session> {
    let logs = provider
        .get_logs(&host.grants(Some(id), from_block))
        .await
        .map_err(|e| Error::Chain(format!("eth_getLogs: {e}")))?;
    let log = logs.last().ok_or(Error::UnknownSession { account: host.account, id })?;
    let (granted, config) = host.granted(&log.inner)?;
    let policy = sak_primitives::Policy::from_session_config(&config)
        .map_err(|e| Error::Chain(format!("the granted policy does not read back: {e}")))?;
    let signer =
        hosted_session_key(provider, host, id, granted, log.block_number.unwrap_or_default()).await?;
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
    hosted_session_key(provider, Host::account(account), id, granted, from_block).await
}

/// [`session_key`] for a session wherever it lives ([`Host`]).
pub async fn hosted_session_key(
    provider: &DynProvider,
    host: Host,
    id: u32,
    granted: Address,
    from_block: u64,
) -> Result<Address> {
    let now = host.counters(provider, id, BlockId::latest()).await?;
    if now.signer != Address::ZERO {
        return Ok(now.signer);
    }
    let logs = provider
        .get_logs(&host.rotations(id, from_block))
        .await
        .map_err(|e| Error::Chain(format!("eth_getLogs: {e}")))?;
    match logs.last() {
        Some(l) => host.rotated_to(&l.inner),
        None => Ok(granted),
    }
}
