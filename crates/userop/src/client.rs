//! [`UserOpClient`]: the pipeline a bot calls, from calls to a receipt.

use crate::{
    Call,
    calldata::OpSigner,
    eip7702::delegate_of,
    error::{Error, Result},
    execute_batch,
    gas::{FeeCaps, next_base_fee, pre_verification_gas},
    hash::UserOpHasher,
    nonce::{EntryPointNonces, Lane, NonceLanes, NonceSource, Reservation},
    op::{EIP7702_MARKER, GasLimits, OpDebug, UserOp, UserOpBuilder, is_eip7702_init_code, set_gas_limits},
    submit::{Submitter, UserOpReceipt},
};
use alloy::{
    eips::eip7702::SignedAuthorization,
    primitives::{Address, B256, Bytes, aliases::U192},
    providers::{DynProvider, Provider},
    rpc::types::BlockNumberOrTag,
};

/// Limits the probe (estimation) operation carries; the estimate replaces them.
const PROBE_LIMITS: GasLimits = GasLimits {
    verification: 1_500_000,
    call: 1_500_000,
    pre_verification: 100_000,
    paymaster_verification: 0,
    paymaster_post_op: 0,
};

/// What a bot wants done: calls from an account, in a nonce lane.
#[derive(Debug, Clone)]
pub struct Intent {
    /// The account.
    pub sender: Address,
    /// The nonce lane's 192-bit key (one per session or agent).
    pub lane_key: U192,
    /// The account's call data.
    pub call_data: Bytes,
    /// `initCode` (empty for a deployed account; [`EIP7702_MARKER`] for a delegated EOA).
    pub init_code: Bytes,
    /// An EIP-7702 authorization to carry in the bundle transaction (EOA not delegated yet).
    pub authorization: Option<SignedAuthorization>,
}

impl Intent {
    /// A batch of `calls` for a sak account (ERC-7821 batch mode).
    pub fn calls(sender: Address, lane_key: U192, calls: &[Call]) -> Self {
        Self {
            sender,
            lane_key,
            call_data: execute_batch(calls),
            init_code: Bytes::new(),
            authorization: None,
        }
    }

    /// Marks the sender as an EIP-7702 account (the op hash then binds the delegate), with the
    /// authorization to carry if it is not delegated yet.
    pub fn eip7702(mut self, authorization: Option<SignedAuthorization>) -> Self {
        self.init_code = EIP7702_MARKER.to_vec().into();
        self.authorization = authorization;
        self
    }

    /// The nonce lane.
    pub const fn lane(&self) -> Lane {
        Lane::new(self.sender, self.lane_key)
    }
}

/// A signed operation, ready to submit.
#[derive(Clone)]
pub struct Prepared {
    /// The operation.
    pub op: UserOp,
    /// Its hash.
    pub user_op_hash: B256,
    /// The limits it carries.
    pub limits: GasLimits,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("op", &OpDebug(&self.op))
            .field("user_op_hash", &self.user_op_hash)
            .field("limits", &self.limits)
            .finish()
    }
}

/// An operation the pipeline sent, and what became of it ([`UserOpClient::send_detailed`]).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The operation as signed and sent, with its hash and limits.
    pub prepared: Prepared,
    /// Its receipt.
    pub receipt: UserOpReceipt,
}

/// The user-operation pipeline: nonce lane → fees within caps → estimate → sign → submit →
/// receipt. Cheap to share between tasks (`&self` everywhere).
#[derive(Debug)]
pub struct UserOpClient<S, N = EntryPointNonces<DynProvider>> {
    provider: DynProvider,
    submitter: S,
    lanes: NonceLanes<N>,
    hasher: UserOpHasher,
    caps: FeeCaps,
}

impl<S: Submitter> UserOpClient<S> {
    /// A pipeline reading the chain through `provider` and submitting through `submitter`,
    /// with nonces from the EntryPoint and fees within `caps`.
    pub async fn new(provider: DynProvider, submitter: S, caps: FeeCaps) -> Result<Self> {
        let lanes = NonceLanes::new(EntryPointNonces::new(provider.clone(), submitter.entry_point()));
        Self::with_lanes(provider, submitter, caps, lanes).await
    }
}

impl<S: Submitter, N: NonceSource> UserOpClient<S, N> {
    /// [`UserOpClient::new`] with a nonce allocator of the caller's (shared with other
    /// pipelines, or over another source).
    pub async fn with_lanes(
        provider: DynProvider,
        submitter: S,
        caps: FeeCaps,
        lanes: NonceLanes<N>,
    ) -> Result<Self> {
        let chain_id = provider.get_chain_id().await.map_err(Error::rpc("eth_chainId"))?;
        let hasher = UserOpHasher::new(submitter.entry_point(), chain_id);
        Ok(Self { provider, submitter, lanes, hasher, caps })
    }

    /// The submitter.
    pub const fn submitter(&self) -> &S {
        &self.submitter
    }

    /// The nonce allocator.
    pub const fn lanes(&self) -> &NonceLanes<N> {
        &self.lanes
    }

    /// The hasher (EntryPoint and chain).
    pub const fn hasher(&self) -> &UserOpHasher {
        &self.hasher
    }

    /// The fee caps.
    pub const fn caps(&self) -> &FeeCaps {
        &self.caps
    }

    /// The latest block's timestamp: the clock a session signs.
    pub async fn chain_time(&self) -> Result<u64> {
        Ok(self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(Error::rpc("eth_getBlockByNumber"))?
            .ok_or_else(|| Error::Decode { what: "latest block", reason: "none".into() })?
            .header
            .timestamp)
    }

    /// Builds, prices, estimates and signs `intent` with nonce `reservation`.
    pub async fn prepare(
        &self,
        intent: &Intent,
        signer: &OpSigner,
        reservation: &Reservation,
    ) -> Result<Prepared> {
        let base_fee = next_base_fee(&self.provider).await?;
        let fees = self.caps.price(base_fee)?;
        let delegate = if is_eip7702_init_code(&intent.init_code) {
            match &intent.authorization {
                Some(auth) => Some(auth.address),
                None => Some(delegate_of(&self.provider, intent.sender).await?.ok_or_else(|| {
                    Error::Eip7702(format!(
                        "{} is not delegated and no authorization was given",
                        intent.sender
                    ))
                })?),
            }
        } else {
            None
        };
        let clock = match signer {
            OpSigner::Session { .. } => self.chain_time().await?,
            OpSigner::Owner(_) => 0,
        };
        let mut op = UserOpBuilder::new(intent.sender)
            .nonce(reservation.nonce())
            .init_code(intent.init_code.clone())
            .call_data(intent.call_data.clone())
            .gas(PROBE_LIMITS)
            .fees(fees)
            .build();
        op.signature = signer.sign(self.hasher.hash(&op, delegate)?, clock).await?;
        let mut limits = PROBE_LIMITS;
        limits.pre_verification = pre_verification_gas(&op);
        set_gas_limits(&mut op, limits);
        op.signature = signer.sign(self.hasher.hash(&op, delegate)?, clock).await?;

        let estimate = self.submitter.estimate(&op, intent.authorization.as_ref()).await?;
        let limits = GasLimits {
            pre_verification: estimate.pre_verification.max(limits.pre_verification),
            ..estimate
        };
        self.caps.check(&limits, &fees)?;
        set_gas_limits(&mut op, limits);
        let user_op_hash = self.hasher.hash(&op, delegate)?;
        op.signature = signer.sign(user_op_hash, clock).await?;
        Ok(Prepared { op, user_op_hash, limits })
    }

    /// The whole pipeline: reserve a nonce in the intent's lane, prepare, submit, wait for the
    /// receipt. The nonce is committed once the operation is on chain (also when its execution
    /// reverted: see [`UserOpReceipt::success`]) and released when nothing was sent; after
    /// AA25 the lane is read from the EntryPoint again.
    pub async fn send(&self, intent: &Intent, signer: &OpSigner) -> Result<UserOpReceipt> {
        self.send_detailed(intent, signer).await.map(|sent| sent.receipt)
    }

    /// [`UserOpClient::send`], keeping the operation as it was signed and sent (its limits,
    /// hash and signature) next to the receipt: for records, audits and gas accounting.
    pub async fn send_detailed(&self, intent: &Intent, signer: &OpSigner) -> Result<Sent> {
        let reservation = self.lanes.reserve(intent.lane()).await?;
        let prepared = match self.prepare(intent, signer, &reservation).await {
            Ok(p) => p,
            Err(e) => return Err(self.settle_failure(intent, reservation, e).await),
        };
        let pending = match self
            .submitter
            .send(&prepared.op, intent.authorization.as_ref(), prepared.user_op_hash)
            .await
        {
            Ok(p) => p,
            Err(e) => return Err(self.settle_failure(intent, reservation, e).await),
        };
        match self.submitter.receipt(&pending).await {
            Ok(receipt) => {
                reservation.commit();
                Ok(Sent { prepared, receipt })
            }
            Err(e @ Error::Timeout { .. }) => {
                // It may still land: never hand this nonce to a different operation. If it
                // never lands, the next op in the lane gets AA25 and the lane resyncs.
                reservation.commit();
                Err(e)
            }
            Err(e) => Err(self.settle_failure(intent, reservation, e).await),
        }
    }

    async fn settle_failure(&self, intent: &Intent, reservation: Reservation, error: Error) -> Error {
        reservation.release();
        if error.is_nonce_error()
            && let Err(e) = self.lanes.resync(intent.lane()).await
        {
            tracing::warn!(error = %e, "resyncing the nonce lane failed");
        }
        error
    }
}
