//! EIP-7702 authorizations: sign one for a delegate with the right chain id and nonce, and
//! check the delegation after mining.

use crate::error::{Error, Result};
use alloy::{
    consensus::Transaction as _,
    eips::eip7702::{Authorization, SignedAuthorization},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder, TransactionBuilder7702},
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::{BlockNumberOrTag, TransactionRequest},
    signers::{Signer, local::PrivateKeySigner},
};

/// The code prefix of a delegated EOA: `0xef0100 ‖ delegate`.
pub const DELEGATION_PREFIX: [u8; 3] = [0xef, 0x01, 0x00];

/// Who sends the type-4 transaction that carries the authorization. It decides the nonce: the
/// sender's own nonce is incremented before authorizations are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationSender {
    /// Someone else (a relayer, a bundler): nonce = the EOA's current nonce.
    Relayed,
    /// The EOA itself: nonce = current nonce + 1.
    SelfSponsored,
}

/// Which chains the authorization is valid on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainScope {
    /// The connected chain's id (the default, and the only safe choice).
    Current,
    /// Chain id 0: valid on every chain. Only on explicit request: anyone can replay it on
    /// another chain where the EOA's nonce matches.
    AllChains,
}

/// `0xef0100 ‖ delegate`: the code a delegation leaves.
pub fn delegation_code(delegate: Address) -> Vec<u8> {
    [&DELEGATION_PREFIX[..], delegate.as_slice()].concat()
}

/// The delegate of `eoa`, read from its code (`None` when it is not delegated).
pub async fn delegate_of<P: Provider>(provider: &P, eoa: Address) -> Result<Option<Address>> {
    let code = provider.get_code_at(eoa).await.map_err(Error::rpc("eth_getCode"))?;
    Ok((code.len() == 23 && code.starts_with(&DELEGATION_PREFIX)).then(|| Address::from_slice(&code[3..])))
}

/// Signs an authorization of `delegate` by `eoa` for the chain `provider` is on, with the
/// nonce `sender` needs.
///
/// ```no_run
/// # async fn demo(provider: alloy::providers::DynProvider, eoa: alloy::signers::local::PrivateKeySigner) -> sak_userop::Result<()> {
/// use sak_userop::eip7702::{AuthorizationSender, ChainScope, sign_authorization};
/// let auth = sign_authorization(&provider, &eoa, sak_contracts::ENTRY_POINT_V08, AuthorizationSender::Relayed, ChainScope::Current).await?;
/// # Ok(()) }
/// ```
pub async fn sign_authorization<P: Provider, S: Signer + Sync>(
    provider: &P,
    eoa: &S,
    delegate: Address,
    sender: AuthorizationSender,
    scope: ChainScope,
) -> Result<SignedAuthorization> {
    let nonce =
        provider.get_transaction_count(eoa.address()).await.map_err(Error::rpc("eth_getTransactionCount"))?;
    let nonce = match sender {
        AuthorizationSender::Relayed => nonce,
        AuthorizationSender::SelfSponsored => nonce + 1,
    };
    let chain_id = match scope {
        ChainScope::Current => {
            let id = provider.get_chain_id().await.map_err(Error::rpc("eth_chainId"))?;
            if id == 0 {
                return Err(Error::Eip7702(
                    "the chain reports id 0; refusing an all-chains authorization".into(),
                ));
            }
            U256::from(id)
        }
        ChainScope::AllChains => U256::ZERO,
    };
    let auth = Authorization { chain_id, address: delegate, nonce };
    let signature = eoa.sign_hash(&auth.signature_hash()).await.map_err(Error::Signing)?;
    Ok(auth.into_signed(signature))
}

/// Fails unless `eoa`'s code is exactly `0xef0100 ‖ delegate` (empty for `Address::ZERO`:
/// a delegation to the zero address clears the code).
pub async fn check_delegation<P: Provider>(provider: &P, eoa: Address, delegate: Address) -> Result<()> {
    let code = provider.get_code_at(eoa).await.map_err(Error::rpc("eth_getCode"))?;
    let expected = if delegate.is_zero() { Vec::new() } else { delegation_code(delegate) };
    if code.as_ref() != expected.as_slice() {
        return Err(Error::Eip7702(format!("{eoa} has code {code}, not a delegation to {delegate}")));
    }
    Ok(())
}

/// Delegates `eoa` to `delegate` with a type-4 transaction the EOA sends itself (nonce + 1
/// authorization), waits for it, and checks the code. Returns the transaction hash.
pub async fn delegate_self<P: Provider>(
    provider: &P,
    eoa: &PrivateKeySigner,
    delegate: Address,
) -> Result<B256> {
    delegate_self_and_call(provider, eoa, delegate, Bytes::new()).await
}

/// Like [`delegate_self`], and in the same transaction calls the EOA with `data`, which runs
/// under the new code (authorizations apply before the call). sak's own delegations use it to
/// end every session left in the EOA's storage from before (`revokeAllSessions`), so nothing
/// can run between the delegation and the revocation. `Address::ZERO` undelegates (then
/// `data` reaches no code).
pub async fn delegate_self_and_call<P: Provider>(
    provider: &P,
    eoa: &PrivateKeySigner,
    delegate: Address,
    data: Bytes,
) -> Result<B256> {
    let auth =
        sign_authorization(provider, eoa, delegate, AuthorizationSender::SelfSponsored, ChainScope::Current)
            .await?;
    send_authorization(provider, eoa, eoa.address(), auth, delegate, data).await
}

/// An authorization signed by an EOA, as found in a block's type-4 transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundAuthorization {
    /// The block of the transaction.
    pub block: u64,
    /// The transaction's index in its block.
    pub tx_index: u64,
    /// The delegate it names (`Address::ZERO`: an undelegation).
    pub delegate: Address,
}

/// Every authorization `eoa` signed in type-4 transactions of blocks `from..=to`, oldest
/// first. Whether its nonce let it apply is not checked: one that did not is reported too (the
/// safe side for "did the delegation change since block N?"). Reads one block per request,
/// eight at a time.
pub async fn authorizations_by<P: Provider>(
    provider: &P,
    eoa: Address,
    from: u64,
    to: u64,
) -> Result<Vec<FoundAuthorization>> {
    let mut found = Vec::new();
    let mut next = from;
    while next <= to {
        let last = to.min(next + 7);
        let blocks = (next..=last).map(|n| {
            std::future::IntoFuture::into_future(
                provider.get_block_by_number(BlockNumberOrTag::Number(n)).full(),
            )
        });
        for (n, block) in (next..).zip(futures::future::join_all(blocks).await) {
            let block = block
                .map_err(Error::rpc("eth_getBlockByNumber"))?
                .ok_or_else(|| Error::Eip7702(format!("the node has no block {n}")))?;
            for tx in block.transactions.txns() {
                for auth in tx.authorization_list().unwrap_or_default() {
                    if auth.recover_authority().is_ok_and(|a| a == eoa) {
                        found.push(FoundAuthorization {
                            block: n,
                            tx_index: tx.transaction_index.unwrap_or_default(),
                            delegate: auth.address,
                        });
                    }
                }
            }
        }
        next = last + 1;
    }
    Ok(found)
}

/// Sends `auth` in a type-4 transaction from `relayer` to the EOA, no value, with `data` (run
/// under the new code; empty for none), waits for it, and checks the EOA's code. Returns the
/// transaction hash.
pub async fn send_authorization<P: Provider>(
    provider: &P,
    relayer: &PrivateKeySigner,
    eoa: Address,
    auth: SignedAuthorization,
    delegate: Address,
    data: Bytes,
) -> Result<B256> {
    let wallet = EthereumWallet::from(relayer.clone());
    let from = relayer.address();
    let nonce = provider
        .get_transaction_count(from)
        .pending()
        .await
        .map_err(Error::rpc("eth_getTransactionCount"))?;
    let chain_id = provider.get_chain_id().await.map_err(Error::rpc("eth_chainId"))?;
    let base = crate::gas::next_base_fee(provider).await?;
    let request = TransactionRequest::default()
        .with_from(from)
        .with_to(eoa)
        .with_nonce(nonce)
        .with_chain_id(chain_id)
        .with_gas_limit(if data.is_empty() { 100_000 } else { 250_000 })
        .with_input(data)
        .with_max_fee_per_gas(base * 2 + 1_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000)
        .with_authorization_list(vec![auth]);
    let envelope = request
        .build(&wallet)
        .await
        .map_err(|e| Error::Eip7702(format!("building the type-4 transaction: {e}")))?;
    let pending = provider
        .send_raw_transaction(&alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope))
        .await
        .map_err(Error::rpc("eth_sendRawTransaction"))?;
    let receipt =
        pending.get_receipt().await.map_err(|e| Error::Eip7702(format!("waiting for the receipt: {e}")))?;
    if !receipt.status() {
        return Err(Error::Eip7702(format!("type-4 transaction {} reverted", receipt.transaction_hash)));
    }
    check_delegation(provider, eoa, delegate).await?;
    if eoa == from {
        // Self-sponsored: the transaction and the authorization each took one of the EOA's
        // nonces. A node may serve the pending count before it counts the second (seen on
        // anvil: the EOA's next transaction failed "nonce too low"); return once it does.
        let settled = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while provider
            .get_transaction_count(from)
            .pending()
            .await
            .map_err(Error::rpc("eth_getTransactionCount"))?
            < nonce + 2
            && std::time::Instant::now() < settled
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(receipt.transaction_hash)
}
