//! The direct relayed path, without a bundler: the session key signs a batch for the account's
//! `executeWithSession`, a relayer submits it and pays the gas, and the contracts check it with
//! the same engine as user operations, against the block's clock.
//!
//! ```text
//!  calls ─► DirectCall { account, session, nonce = directNonce(session), deadline }
//!        ─► EIP-712 SessionCall(id, keccak256(executionData), nonce, deadline)
//!           under the account's domain ("SakAccount", "2", chain id, account)
//!        ─► session key signs ─► relayer sends executeWithSession ─► receipt
//! ```
//!
//! The signature binds chain, account, session, nonce, deadline and the exact batch bytes, so
//! the relayer can neither alter nor replay it.

use crate::{
    Call,
    error::{Error, Result},
};
use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256, aliases::U40, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{BlockOverrides, TransactionReceipt, TransactionRequest},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{SolCall, SolValue, eip712_domain},
};
use sak_contracts::SakAccount;
use sak_policy::execution_data;

/// The EIP-712 type a session key signs for `executeWithSession` (the contract's
/// `SESSION_CALL_TYPEHASH` is its keccak256; a test checks they agree).
pub const SESSION_CALL_TYPE: &str =
    "SessionCall(uint32 id,bytes32 executionDataHash,uint256 nonce,uint40 deadline)";

/// A batch for `executeWithSession`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectCall {
    /// The account.
    pub account: Address,
    /// The session id.
    pub session_id: u32,
    /// The calls.
    pub calls: Vec<Call>,
    /// Must equal the account's `directNonce(session_id)` when it executes (one lane per
    /// session).
    pub nonce: U256,
    /// Last second (inclusive) at which it may execute.
    pub deadline: u64,
}

impl DirectCall {
    /// The EIP-712 digest the session key signs, for chain `chain_id`.
    pub fn digest(&self, chain_id: u64) -> B256 {
        let domain = eip712_domain! {
            name: "SakAccount",
            version: "2",
            chain_id: chain_id,
            verifying_contract: self.account,
        };
        let struct_hash = keccak256(
            (
                keccak256(SESSION_CALL_TYPE),
                self.session_id,
                keccak256(execution_data(&self.calls)),
                self.nonce,
                U40::from(self.deadline),
            )
                .abi_encode(),
        );
        keccak256([&[0x19, 0x01][..], domain.separator().as_slice(), struct_hash.as_slice()].concat())
    }

    /// The session key's 65-byte signature for chain `chain_id`.
    pub fn sign(&self, key: &impl SignerSync, chain_id: u64) -> Result<Bytes> {
        let signature = key.sign_hash_sync(&self.digest(chain_id)).map_err(Error::Signing)?;
        Ok(signature.as_bytes().to_vec().into())
    }

    /// The `executeWithSession` calldata carrying `signature`.
    pub fn call_data(&self, signature: Bytes) -> Bytes {
        SakAccount::executeWithSessionCall {
            id: self.session_id,
            executionData: execution_data(&self.calls),
            nonce: self.nonce,
            deadline: U40::from(self.deadline),
            signature,
        }
        .abi_encode()
        .into()
    }
}

/// A relayer key that submits signed direct calls and pays their gas.
#[derive(Debug)]
pub struct DirectRelayer {
    provider: DynProvider,
    relayer: Address,
    confirmations: u64,
}

impl DirectRelayer {
    /// A relayer sending through `rpc_url` with `relayer`'s key.
    pub fn new(rpc_url: &str, relayer: PrivateKeySigner) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Malformed(format!("RPC URL: {e}")))?;
        let address = relayer.address();
        let provider =
            ProviderBuilder::new().wallet(EthereumWallet::from(relayer)).connect_http(url).erased();
        Ok(Self { provider, relayer: address, confirmations: 1 })
    }

    /// Returns receipts only once they are `n` blocks deep (1, the default: in their block).
    pub fn with_confirmations(mut self, n: u64) -> Self {
        self.confirmations = n.max(1);
        self
    }

    /// The next direct nonce of session `id` on `account`.
    pub async fn next_nonce(&self, account: Address, id: u32) -> Result<U256> {
        SakAccount::new(account, &self.provider)
            .directNonce(id)
            .call()
            .await
            .map_err(|e| Error::from_contract("directNonce", e))
    }

    /// Submits `call` with its session `signature` and waits for the receipt. The call is
    /// simulated first, so a refusal comes back typed (`SpendCapExceeded`, `InvalidNonce`,
    /// `DeadlinePassed`, ...) and costs the relayer nothing. The receipt may show a revert
    /// (state changed since the simulation). [`Error::Bundle`] means the transaction was sent
    /// and its outcome is unknown.
    pub async fn submit(&self, call: &DirectCall, signature: Bytes) -> Result<TransactionReceipt> {
        let tx = TransactionRequest::default()
            .with_from(self.relayer)
            .with_to(call.account)
            .with_input(call.call_data(signature));
        // Simulated and priced one second after the latest block, the earliest it can be
        // mined: code that does more once time has passed (Uniswap V2's price accumulators,
        // +44k gas in the first swap of a new second) must fit the gas limit then.
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(Error::rpc("eth_getBlockByNumber"))?
            .ok_or_else(|| Error::Simulation("the node has no latest block".into()))?;
        let next_second = BlockOverrides { time: Some(latest.header.timestamp + 1), ..Default::default() };
        let refused = |method: &'static str| {
            move |e| match Error::revert_data_of(&e) {
                Some(data) => Error::from_revert_data(&data),
                None => Error::Rpc { method, source: e },
            }
        };
        self.provider
            .call(tx.clone())
            .with_block_overrides(next_second.clone())
            .await
            .map_err(refused("eth_call"))?;
        let gas = self
            .provider
            .estimate_gas(tx.clone())
            .with_block_overrides(next_second)
            .await
            .map_err(refused("eth_estimateGas"))?;
        let tx = tx.with_gas_limit(gas);
        let pending = self.provider.send_transaction(tx).await.map_err(Error::rpc("eth_sendTransaction"))?;
        let tx_hash = *pending.tx_hash();
        // Sent: from here an error means the outcome is unknown (it may still be mined). A
        // receipt with status 0 (reverted when mined: state changed since the simulation) is the
        // caller's to report; nothing but gas moved.
        pending
            .with_required_confirmations(self.confirmations)
            .get_receipt()
            .await
            .map_err(|e| Error::Bundle { tx_hash, reason: e.to_string() })
    }
}
