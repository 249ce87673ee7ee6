//! Submission behind one trait: [`SelfBundler`] (`handleOps` from our own relayer key) and
//! [`BundlerClient`] (any ERC-7769 bundler). Both give a [`UserOpReceipt`] and decode failures
//! into typed errors.

use crate::{
    error::{Error, Result},
    op::{GasLimits, RpcUserOperation, UserOp},
    revert::{OpRejected, Revert},
    transport::{RetryConfig, retrying_client, retrying_provider},
};
use alloy::{
    eips::{eip2718::Encodable2718, eip7702::SignedAuthorization},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder, TransactionBuilder7702},
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::{
        client::RpcClient,
        json_rpc::{RpcRecv, RpcSend},
        types::{Log, TransactionReceipt, TransactionRequest},
    },
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
    transports::{RpcError, TransportError},
};
use sak_contracts::IEntryPoint;
use serde::Deserialize;
use serde_json::json;
use std::{
    future::Future,
    time::{Duration, Instant},
};

mod bundler;

pub use bundler::{BundlerClient, UserOperationByHash};

/// JSON-RPC `params: []` (some bundlers refuse `null`).
const NO_PARAMS: [u8; 0] = [];

/// How long submitters wait for a receipt.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(25);

/// What happened to an included operation (`UserOperationEvent`, and the execution's revert
/// reason when it failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOpReceipt {
    /// The user operation hash.
    pub user_op_hash: B256,
    /// The account.
    pub sender: Address,
    /// The nonce used.
    pub nonce: U256,
    /// Whether the execution succeeded. Validation passed either way (the nonce is used and
    /// the gas paid).
    pub success: bool,
    /// Wei the operation paid.
    pub actual_gas_cost: U256,
    /// Gas charged (including `preVerificationGas` and any unused-gas penalty).
    pub actual_gas_used: U256,
    /// The bundle transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// The execution's revert (`UserOperationRevertReason`), decoded, when `!success`.
    pub revert: Option<Revert>,
}

impl UserOpReceipt {
    /// Finds `user_op_hash`'s events among a bundle transaction's logs.
    pub fn from_logs(user_op_hash: B256, tx_hash: B256, block_number: u64, logs: &[Log]) -> Option<Self> {
        let mut receipt = None;
        let mut revert = None;
        for log in logs {
            if let Ok(e) = log.log_decode::<IEntryPoint::UserOperationEvent>() {
                let e = e.inner.data;
                if e.userOpHash == user_op_hash {
                    receipt = Some(Self {
                        user_op_hash,
                        sender: e.sender,
                        nonce: e.nonce,
                        success: e.success,
                        actual_gas_cost: e.actualGasCost,
                        actual_gas_used: e.actualGasUsed,
                        tx_hash,
                        block_number,
                        revert: None,
                    });
                }
            } else if let Ok(e) = log.log_decode::<IEntryPoint::UserOperationRevertReason>()
                && e.inner.data.userOpHash == user_op_hash
            {
                revert = Some(Revert::decode(&e.inner.data.revertReason));
            }
        }
        receipt.map(|r| Self {
            revert: if r.success { None } else { revert.or(Some(Revert::Raw(Bytes::new()))) },
            ..r
        })
    }

    fn from_tx_receipt(user_op_hash: B256, receipt: &TransactionReceipt) -> Result<Self> {
        if !receipt.status() {
            return Err(Error::Bundle { tx_hash: receipt.transaction_hash, reason: "reverted".into() });
        }
        Self::from_logs(
            user_op_hash,
            receipt.transaction_hash,
            receipt.block_number.unwrap_or_default(),
            receipt.inner.logs(),
        )
        .ok_or_else(|| Error::Bundle {
            tx_hash: receipt.transaction_hash,
            reason: format!("no UserOperationEvent for {user_op_hash}"),
        })
    }
}

/// An operation handed to a submitter, not yet known to be included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The user operation hash (computed locally, confirmed by the bundler when there is one).
    pub user_op_hash: B256,
    /// The bundle transaction, when we sent it ourselves.
    pub tx_hash: Option<B256>,
}

/// Something that can estimate and submit user operations to an EntryPoint.
pub trait Submitter: Send + Sync {
    /// The EntryPoint operations go to.
    fn entry_point(&self) -> Address;

    /// How operations travel, for records and messages: `self-bundled`, or `bundler`.
    fn via(&self) -> &'static str;

    /// Gas limits for `op` (already signed, with placeholder limits), and `authorization` when
    /// the sender is an EOA to delegate in the same transaction. A policy refusal or any other
    /// validation failure comes back as [`Error::Rejected`].
    fn estimate(
        &self,
        op: &UserOp,
        authorization: Option<&SignedAuthorization>,
    ) -> impl Future<Output = Result<GasLimits>> + Send;

    /// Sends the signed `op` (whose hash is `user_op_hash`).
    fn send(
        &self,
        op: &UserOp,
        authorization: Option<&SignedAuthorization>,
        user_op_hash: B256,
    ) -> impl Future<Output = Result<Pending>> + Send;

    /// Waits for the receipt of a sent operation.
    fn receipt(&self, pending: &Pending) -> impl Future<Output = Result<UserOpReceipt>> + Send;

    /// Sends `op`, which replaces an operation already sent with the same sender and nonce, at
    /// higher fees (a fee bump). `replacing` is the bundle transaction that carried the earlier
    /// one, when known. Whichever of the two lands first takes the nonce, so at most one does.
    /// By default the same as [`Submitter::send`]: a bundler replaces by sender and nonce in its
    /// mempool.
    fn replace(
        &self,
        op: &UserOp,
        user_op_hash: B256,
        replacing: Option<B256>,
    ) -> impl Future<Output = Result<Pending>> + Send {
        let _ = replacing;
        self.send(op, None, user_op_hash)
    }

    /// [`Submitter::send`] then [`Submitter::receipt`].
    fn submit(
        &self,
        op: &UserOp,
        authorization: Option<&SignedAuthorization>,
        user_op_hash: B256,
    ) -> impl Future<Output = Result<UserOpReceipt>> + Send {
        async move {
            let pending = self.send(op, authorization, user_op_hash).await?;
            self.receipt(&pending).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Self-bundling
// ---------------------------------------------------------------------------------------------

/// Gas given to simulations of `handleOps`.
const SIMULATION_TX_GAS: u64 = 15_000_000;
/// What the EntryPoint spends in validation outside the account's frames (copying and hashing
/// the op, the nonce update: up to 22,100 for a fresh key); unused verification gas is not
/// charged, so this errs high.
const ENTRY_POINT_VALIDATION_OVERHEAD: u128 = 40_000;

/// Submits operations itself: `EntryPoint.handleOps([op], relayer)` in a transaction signed by
/// a relayer key that pays the gas (and is refunded by the EntryPoint). The relayer must not be
/// the sender and must be a plain EOA: no code, in particular no EIP-7702 delegation (a
/// delegated relayer's code could act on the bundle).
///
/// Gas estimation traces a `handleOps` simulation (`debug_traceCall` with the call tracer, as
/// anvil and geth-style nodes offer): the call limit is 1.1 × the execution frame's gas +
/// 5,000, the verification limit an upper bound (v0.8 charges for unused execution gas only).
/// Transactions are signed locally with nonces kept here, so a send retried by the transport is
/// the same transaction, and "already known" means sent.
#[derive(Debug)]
pub struct SelfBundler {
    provider: DynProvider,
    wallet: EthereumWallet,
    relayer: Address,
    entry_point: Address,
    chain_id: u64,
    next_nonce: tokio::sync::Mutex<Option<u64>>,
    receipt_timeout: Duration,
}

impl SelfBundler {
    /// A self-bundler on `rpc_url` sending from `relayer`. Checks that the relayer has no code.
    pub async fn new(rpc_url: &str, relayer: PrivateKeySigner, entry_point: Address) -> Result<Self> {
        Self::with_config(rpc_url, relayer, entry_point, RetryConfig::default()).await
    }

    /// [`SelfBundler::new`] with explicit retry settings.
    pub async fn with_config(
        rpc_url: &str,
        relayer: PrivateKeySigner,
        entry_point: Address,
        retry: RetryConfig,
    ) -> Result<Self> {
        let provider = retrying_provider(rpc_url, retry)?;
        let chain_id = provider.get_chain_id().await.map_err(Error::rpc("eth_chainId"))?;
        let this = Self {
            relayer: relayer.address(),
            wallet: EthereumWallet::from(relayer),
            provider,
            entry_point,
            chain_id,
            next_nonce: tokio::sync::Mutex::new(None),
            receipt_timeout: RECEIPT_TIMEOUT,
        };
        this.check_relayer().await?;
        Ok(this)
    }

    /// How long [`Submitter::receipt`] waits before it gives up ([`Error::Timeout`]: the
    /// operation may still land); [`RECEIPT_TIMEOUT`] by default.
    pub const fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// The relayer's address.
    pub const fn relayer(&self) -> Address {
        self.relayer
    }

    /// The provider used for reads.
    pub const fn provider(&self) -> &DynProvider {
        &self.provider
    }

    async fn check_relayer(&self) -> Result<()> {
        let code = self.provider.get_code_at(self.relayer).await.map_err(Error::rpc("eth_getCode"))?;
        if code.starts_with(&[0xef, 0x01, 0x00]) {
            return Err(Error::Relayer {
                relayer: self.relayer,
                reason: format!("it is an EIP-7702 delegated EOA (code {code})"),
            });
        }
        if !code.is_empty() {
            return Err(Error::Relayer { relayer: self.relayer, reason: "it has code".into() });
        }
        Ok(())
    }

    fn handle_ops(&self, op: &UserOp, authorization: Option<&SignedAuthorization>) -> TransactionRequest {
        let input =
            IEntryPoint::handleOpsCall { ops: vec![op.clone()], beneficiary: self.relayer }.abi_encode();
        let request =
            TransactionRequest::default().with_from(self.relayer).with_to(self.entry_point).with_input(input);
        match authorization {
            Some(auth) => request.with_authorization_list(vec![auth.clone()]),
            None => request,
        }
    }

    async fn simulate(&self, request: &TransactionRequest) -> Result<CallFrame> {
        // Simulated one second after the latest block, the earliest an inclusion can happen:
        // code that does more work once time has passed (Uniswap V2's price accumulators write
        // two fresh slots, +44k gas, in the first swap of a new second) is priced on that
        // path; simulated in the latest block's own second it sometimes was not, and the
        // operation then ran out of call gas.
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| Error::Rpc { method: "eth_getBlockByNumber", source: e })?
            .ok_or_else(|| Error::Simulation("the node has no latest block".into()))?;
        let options = json!({
            "tracer": "callTracer",
            "blockOverrides": { "time": format!("{:#x}", latest.header.timestamp + 1) },
        });
        let value: serde_json::Value = self
            .provider
            .raw_request("debug_traceCall".into(), (request, "pending", options))
            .await
            .map_err(|e| match Error::revert_data_of(&e) {
                Some(data) => Error::from_revert_data(&data),
                None => Error::Rpc { method: "debug_traceCall", source: e },
            })?;
        serde_json::from_value(value).map_err(|e| Error::Decode { what: "call trace", reason: e.to_string() })
    }

    /// Signs and sends `request` with the next relayer nonce, or with nonce `replacing` (a
    /// pending transaction of the relayer's that this one replaces); returns the transaction
    /// hash.
    ///
    /// "already known" means this very transaction is in the pool (a retried send). "nonce too
    /// low" means the relayer's nonce moved (another sender shares the key, or this very
    /// transaction was mined): if it is ours, it is sent; else the nonce is read again and
    /// the transaction rebuilt once (never for a replacement: the transaction it replaced was
    /// mined).
    ///
    /// A replacement (`replacement`) is estimated on the latest block: a pending block that
    /// holds the operation it replaces has spent the operation's nonce (AA25).
    async fn send_tx(
        &self,
        request: TransactionRequest,
        replacement: bool,
        replacing: Option<u64>,
    ) -> Result<B256> {
        let mut next = self.next_nonce.lock().await;
        let estimate = match replacement {
            true => self.provider.estimate_gas(request.clone()).block(alloy::eips::BlockId::latest()),
            false => self.provider.estimate_gas(request.clone()),
        };
        let gas = estimate.await.map_err(|e| match Error::revert_data_of(&e) {
            Some(data) => Error::from_revert_data(&data),
            None => Error::Rpc { method: "eth_estimateGas", source: e },
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let nonce = match (replacing, *next) {
                (Some(n), _) | (None, Some(n)) => n,
                (None, None) => self
                    .provider
                    .get_transaction_count(self.relayer)
                    .pending()
                    .await
                    .map_err(Error::rpc("eth_getTransactionCount"))?,
            };
            let request = request
                .clone()
                .with_nonce(nonce)
                .with_chain_id(self.chain_id)
                .with_gas_limit(gas * 12 / 10 + 20_000);
            let envelope = request
                .build(&self.wallet)
                .await
                .map_err(|e| Error::Simulation(format!("building the bundle transaction: {e}")))?;
            let tx_hash = *envelope.tx_hash();
            match self.provider.send_raw_transaction(&envelope.encoded_2718()).await {
                Ok(_) => {
                    if replacing.is_none() {
                        *next = Some(nonce + 1);
                    }
                    return Ok(tx_hash);
                }
                Err(e) if is_already_known(&e) => {
                    if replacing.is_none() {
                        *next = Some(nonce + 1);
                    }
                    return Ok(tx_hash);
                }
                Err(e) => {
                    *next = None;
                    let nonce_moved = e.to_string().to_ascii_lowercase().contains("nonce too low");
                    if nonce_moved
                        && self.provider.get_transaction_receipt(tx_hash).await.ok().flatten().is_some()
                    {
                        return Ok(tx_hash);
                    }
                    if !(nonce_moved && attempt < 2 && replacing.is_none()) {
                        return Err(Error::Rpc { method: "eth_sendRawTransaction", source: e });
                    }
                }
            }
        }
    }
}

impl SelfBundler {
    /// `handleOps([op])` at fees (`max_fee`, `tip`), after checking that the relayer may send
    /// it (not the sender, no code); see [`SelfBundler::send_tx`] for `replacement` and
    /// `replacing`.
    async fn send_handle_ops(
        &self,
        op: &UserOp,
        authorization: Option<&SignedAuthorization>,
        (max_fee, tip): (u128, u128),
        replacement: bool,
        replacing: Option<u64>,
    ) -> Result<B256> {
        if op.sender == self.relayer {
            return Err(Error::Relayer {
                relayer: self.relayer,
                reason: "it is the operation's sender".into(),
            });
        }
        self.check_relayer().await?;
        let request = self
            .handle_ops(op, authorization)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(tip);
        self.send_tx(request, replacement, replacing).await
    }
}

fn is_duplicate(e: &Error) -> bool {
    matches!(e, Error::Bundler { message, .. } if {
        let m = message.to_ascii_lowercase();
        m.contains("already known") || m.contains("already in mempool")
    })
}

fn is_already_known(e: &TransportError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("already known") || text.contains("known transaction") || text.contains("already imported")
}

impl Submitter for SelfBundler {
    fn entry_point(&self) -> Address {
        self.entry_point
    }

    fn via(&self) -> &'static str {
        "self-bundled"
    }

    async fn estimate(&self, op: &UserOp, authorization: Option<&SignedAuthorization>) -> Result<GasLimits> {
        let request = self.handle_ops(op, authorization).with_gas_limit(SIMULATION_TX_GAS);
        let tree = self.simulate(&request).await?;
        if tree.error.is_some() {
            return Err(Error::from_revert_data(tree.output.as_ref().map_or(&[][..], |d| &d[..])));
        }
        let inner = tree
            .calls
            .iter()
            .position(|c| c.from == self.entry_point && c.to == Some(self.entry_point))
            .ok_or_else(|| Error::Simulation("no innerHandleOp frame in the call tree".into()))?;
        // Validation: everything the EntryPoint called before execution (account creation,
        // validateUserOp, the prefund), except the refund to us.
        let validation: u128 = tree.calls[..inner]
            .iter()
            .filter(|c| c.to != Some(self.relayer))
            .map(|c| c.gas_used.to::<u128>())
            .sum();
        let execution = tree.calls[inner]
            .calls
            .iter()
            .find(|c| c.to == Some(op.sender))
            .ok_or_else(|| Error::Simulation("no execution call to the sender".into()))?;
        if execution.error.is_some() {
            // Validation would pass and the execution revert: refuse before it costs gas.
            return Err(Error::Reverted(Box::new(Revert::decode(
                execution.output.as_ref().map_or(&[][..], |d| &d[..]),
            ))));
        }
        let limits = GasLimits {
            // An upper bound rather than the least limit that passes: finding that takes a
            // bisection that signs the op again at every step (about a dozen simulations), and
            // v0.8 charges no penalty on unused verification gas, so the bound only raises the
            // prefund and the fee cap's worst case, never `actualGasUsed`.
            verification: (validation + ENTRY_POINT_VALIDATION_OVERHEAD) * 12 / 10,
            // 63/64 headroom for nested calls, well inside the 40,000 unused execution gas
            // that v0.8 leaves unpenalised.
            call: execution.gas_used.to::<u128>() * 11 / 10 + 5_000,
            pre_verification: crate::gas::pre_verification_gas(op),
            ..GasLimits::default()
        };
        Ok(limits)
    }

    async fn send(
        &self,
        op: &UserOp,
        authorization: Option<&SignedAuthorization>,
        user_op_hash: B256,
    ) -> Result<Pending> {
        let fees = crate::op::fees(op);
        let (max_fee, tip) = (fees.max_fee_per_gas, fees.max_priority_fee_per_gas);
        let tx_hash = self.send_handle_ops(op, authorization, (max_fee, tip), false, None).await?;
        tracing::debug!(%user_op_hash, %tx_hash, "handleOps sent");
        Ok(Pending { user_op_hash, tx_hash: Some(tx_hash) })
    }

    /// While the transaction `replacing` is this relayer's and pending (in the pool, not
    /// mined), the replacement goes at its nonce with fees at least an eighth above its own, so
    /// the pool swaps one for the other; otherwise (mined, dropped, another relayer's, unknown)
    /// it goes at the relayer's next nonce.
    async fn replace(&self, op: &UserOp, user_op_hash: B256, replacing: Option<B256>) -> Result<Pending> {
        let old = match replacing {
            Some(hash) => self
                .provider
                .get_transaction_by_hash(hash)
                .await
                .map_err(Error::rpc("eth_getTransactionByHash"))?
                // Pending, and the relayer's own: its nonce is in the relayer's sequence.
                .filter(|tx| tx.block_number.is_none() && tx.inner.signer() == self.relayer),
            None => None,
        };
        use alloy::consensus::Transaction as _;
        let bumped = |fee: u128| fee.saturating_add(fee / 8).saturating_add(1);
        let fees = crate::op::fees(op);
        let (max_fee, tip) = match &old {
            Some(old) => (
                fees.max_fee_per_gas.max(bumped(old.max_fee_per_gas())),
                fees.max_priority_fee_per_gas.max(bumped(old.max_priority_fee_per_gas().unwrap_or_default())),
            ),
            None => (fees.max_fee_per_gas, fees.max_priority_fee_per_gas),
        };
        let tx_hash =
            self.send_handle_ops(op, None, (max_fee, tip), true, old.as_ref().map(|o| o.nonce())).await?;
        tracing::debug!(%user_op_hash, %tx_hash, replaced = ?replacing, "handleOps replacement sent");
        Ok(Pending { user_op_hash, tx_hash: Some(tx_hash) })
    }

    async fn receipt(&self, pending: &Pending) -> Result<UserOpReceipt> {
        let tx_hash =
            pending.tx_hash.ok_or_else(|| Error::Simulation("no bundle transaction hash".into()))?;
        let started = Instant::now();
        loop {
            let receipt = self
                .provider
                .get_transaction_receipt(tx_hash)
                .await
                .map_err(Error::rpc("eth_getTransactionReceipt"))?;
            if let Some(receipt) = receipt {
                return UserOpReceipt::from_tx_receipt(pending.user_op_hash, &receipt);
            }
            if started.elapsed() > self.receipt_timeout {
                return Err(Error::Timeout {
                    user_op_hash: pending.user_op_hash,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One frame of the `callTracer` call tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallFrame {
    from: Address,
    #[serde(default)]
    to: Option<Address>,
    #[serde(default)]
    output: Option<Bytes>,
    gas_used: U256,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    calls: Vec<Self>,
}
