//! A client of any ERC-7769 bundler, behind the same [`Submitter`] trait as the self-bundler.

use super::*;

/// A client of any ERC-7769 bundler RPC (`eth_sendUserOperation`,
/// `eth_estimateUserOperationGas`, `eth_getUserOperationReceipt`,
/// `eth_getUserOperationByHash`, `eth_supportedEntryPoints`, `eth_chainId`).
#[derive(Debug, Clone)]
pub struct BundlerClient {
    client: RpcClient,
    entry_point: Address,
    poll: Duration,
    receipt_timeout: Duration,
}

/// `eth_estimateUserOperationGas`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GasEstimate {
    pre_verification_gas: U256,
    verification_gas_limit: U256,
    call_gas_limit: U256,
    #[serde(default)]
    paymaster_verification_gas_limit: Option<U256>,
    #[serde(default)]
    paymaster_post_op_gas_limit: Option<U256>,
}

/// `eth_getUserOperationReceipt`'s answer (the parts we read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcReceipt {
    receipt: TransactionReceipt,
}

/// `eth_getUserOperationByHash`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOperationByHash {
    /// The operation.
    pub user_operation: RpcUserOperation,
    /// The EntryPoint.
    pub entry_point: Address,
    /// The bundle transaction, once included.
    #[serde(default)]
    pub transaction_hash: Option<B256>,
    /// Its block, once included.
    #[serde(default)]
    pub block_number: Option<U256>,
}

impl BundlerClient {
    /// A client of the bundler at `url` for `entry_point` (reads and sends retry per
    /// [`RetryConfig::default`]).
    pub fn new(url: &str, entry_point: Address) -> Result<Self> {
        Self::with_config(url, entry_point, RetryConfig::default())
    }

    /// [`BundlerClient::new`] with explicit retry settings.
    pub fn with_config(url: &str, entry_point: Address, retry: RetryConfig) -> Result<Self> {
        Ok(Self {
            client: retrying_client(url, retry)?,
            entry_point,
            poll: Duration::from_millis(50),
            receipt_timeout: RECEIPT_TIMEOUT,
        })
    }

    /// How often [`Submitter::receipt`] asks for the receipt.
    pub const fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// How long [`Submitter::receipt`] waits before it gives up ([`Error::Timeout`]: the
    /// operation may still land); [`RECEIPT_TIMEOUT`] by default.
    pub const fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    async fn call<P: RpcSend, R: RpcRecv>(&self, method: &'static str, params: P) -> Result<R> {
        self.client.request(method, params).await.map_err(|e| bundler_error(method, e))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64> {
        let id: U256 = self.call("eth_chainId", NO_PARAMS).await?;
        Ok(id.saturating_to())
    }

    /// `eth_supportedEntryPoints`.
    pub async fn supported_entry_points(&self) -> Result<Vec<Address>> {
        self.call("eth_supportedEntryPoints", NO_PARAMS).await
    }

    /// `eth_getUserOperationByHash` (`None` when the bundler does not know it).
    pub async fn user_operation_by_hash(&self, hash: B256) -> Result<Option<UserOperationByHash>> {
        self.call("eth_getUserOperationByHash", (hash,)).await
    }

    /// `eth_getUserOperationReceipt` once (`None` while not included).
    pub async fn user_operation_receipt(&self, hash: B256) -> Result<Option<UserOpReceipt>> {
        let receipt: Option<RpcReceipt> = self.call("eth_getUserOperationReceipt", (hash,)).await?;
        receipt.map(|r| UserOpReceipt::from_tx_receipt(hash, &r.receipt)).transpose()
    }

    /// The operation as sent: ERC-7769 JSON. A bare EIP-7702 marker goes out as the short
    /// `"0x7702"` factory that bundlers (Alto) require with an authorization; it hashes the
    /// same (an `initCode` of at most 20 bytes hashes as the delegate alone).
    fn rpc_op(op: &UserOp, authorization: Option<&SignedAuthorization>) -> Result<serde_json::Value> {
        let mut rpc = RpcUserOperation::try_from(op)?;
        rpc.eip7702_auth = authorization.cloned();
        let bare_marker = rpc.factory == Some(crate::op::EIP7702_MARKER)
            && rpc.factory_data.as_ref().is_none_or(|d| d.is_empty());
        let mut value = serde_json::to_value(&rpc)
            .map_err(|e| Error::Decode { what: "user operation", reason: e.to_string() })?;
        if bare_marker && let Some(obj) = value.as_object_mut() {
            obj.insert("factory".into(), "0x7702".into());
            obj.remove("factoryData");
        }
        Ok(value)
    }
}

/// A bundler's JSON-RPC error, decoded: an EntryPoint refusal (AA code, and the account's
/// revert, e.g. a sak policy error) when the message or data carries one.
fn bundler_error(method: &'static str, e: TransportError) -> Error {
    match e {
        RpcError::ErrorResp(payload) => {
            let data =
                payload.data.as_ref().and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok());
            let data_text = data.as_ref().map(|d| d.to_string()).unwrap_or_default();
            if let Some(rejected) = OpRejected::from_message(&format!("{} {data_text}", payload.message)) {
                return Error::Rejected(Box::new(rejected));
            }
            Error::Bundler { method, code: payload.code, message: payload.message.to_string(), data }
        }
        other => Error::Rpc { method, source: other },
    }
}

impl Submitter for BundlerClient {
    fn entry_point(&self) -> Address {
        self.entry_point
    }

    fn via(&self) -> &'static str {
        "bundler"
    }

    async fn estimate(&self, op: &UserOp, authorization: Option<&SignedAuthorization>) -> Result<GasLimits> {
        let rpc = Self::rpc_op(op, authorization)?;
        let e: GasEstimate = self.call("eth_estimateUserOperationGas", (rpc, self.entry_point)).await?;
        Ok(GasLimits {
            verification: e.verification_gas_limit.saturating_to(),
            call: e.call_gas_limit.saturating_to(),
            pre_verification: e.pre_verification_gas.saturating_to(),
            paymaster_verification: e.paymaster_verification_gas_limit.unwrap_or_default().saturating_to(),
            paymaster_post_op: e.paymaster_post_op_gas_limit.unwrap_or_default().saturating_to(),
        })
    }

    async fn send(
        &self,
        op: &UserOp,
        authorization: Option<&SignedAuthorization>,
        user_op_hash: B256,
    ) -> Result<Pending> {
        let rpc = Self::rpc_op(op, authorization)?;
        let sent: Result<B256> = self.call("eth_sendUserOperation", (rpc, self.entry_point)).await;
        match sent {
            Ok(hash) if hash == user_op_hash => Ok(Pending { user_op_hash, tx_hash: None }),
            Ok(hash) => Err(Error::Decode {
                what: "eth_sendUserOperation",
                reason: format!("the bundler hashed the operation as {hash}, we as {user_op_hash}"),
            }),
            Err(e) if is_duplicate(&e) => {
                // This very operation is in the bundler's mempool (a retried send).
                tracing::debug!(%user_op_hash, "the bundler already has the operation");
                Ok(Pending { user_op_hash, tx_hash: None })
            }
            Err(e) if e.is_nonce_error() => {
                // The nonce is taken: by this very operation (sent before a timeout, now
                // included) or by another one. Reconcile by hash.
                match self.user_operation_by_hash(user_op_hash).await {
                    Ok(Some(_)) => {
                        tracing::debug!(%user_op_hash, "the bundler already has the operation");
                        Ok(Pending { user_op_hash, tx_hash: None })
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn receipt(&self, pending: &Pending) -> Result<UserOpReceipt> {
        let started = Instant::now();
        loop {
            if let Some(r) = self.user_operation_receipt(pending.user_op_hash).await? {
                return Ok(r);
            }
            if started.elapsed() > self.receipt_timeout {
                return Err(Error::Timeout {
                    user_op_hash: pending.user_op_hash,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
