use crate::revert::{AaCode, OpRejected, Revert, SakError};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    transports::TransportError,
};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which fee cap an operation would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeCapKind {
    /// `maxFeePerGas` (wei per gas): the base fee alone is above the cap.
    MaxFeePerGas,
    /// `maxPriorityFeePerGas` (wei per gas).
    MaxPriorityFeePerGas,
    /// The most the operation may cost: all gas limits × `maxFeePerGas` (wei).
    TotalCost,
}

/// What can go wrong building, pricing, submitting or following a user operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The EntryPoint refused the operation before execution (`FailedOp`/`FailedOpWithRevert`,
    /// from a simulation, the bundle transaction, or a bundler): AA code, reason, and the
    /// account's revert decoded (a sak policy error for a session op beyond its policy).
    #[error("{0}")]
    Rejected(Box<OpRejected>),
    /// The account's `validateUserOp` (or a simulation) reverted outside the EntryPoint's
    /// wrapping, e.g. a policy error seen by a direct simulation.
    #[error("reverted: {0}")]
    Reverted(Box<Revert>),
    /// The price would exceed a caller-supplied cap: refused rather than overpay.
    #[error("fee cap exceeded: {kind:?} needs {required} wei, the cap is {cap} wei")]
    FeeCapExceeded {
        /// Which cap.
        kind: FeeCapKind,
        /// What the operation would need.
        required: U256,
        /// The cap.
        cap: U256,
    },
    /// A JSON-RPC call to the node failed.
    #[error("{method}: {source}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The bundler answered with an error we could not decode into [`Error::Rejected`].
    #[error("bundler {method}: error {code}: {message}")]
    Bundler {
        /// The method.
        method: &'static str,
        /// JSON-RPC error code (ERC-7769: -32500 validation, -32521 execution, ...).
        code: i64,
        /// The message.
        message: String,
        /// The `data` field, if any.
        data: Option<serde_json::Value>,
    },
    /// The relayer key may not send bundles for this operation.
    #[error("relayer {relayer}: {reason}")]
    Relayer {
        /// The relayer's address.
        relayer: Address,
        /// Why not (it is the sender; it has code, e.g. an EIP-7702 delegation).
        reason: String,
    },
    /// The operation cannot be written in the requested form (e.g. an `initCode` shorter than
    /// an address has no ERC-7769 `factory`).
    #[error("malformed user operation: {0}")]
    Malformed(String),
    /// An EIP-7702 step failed (no delegation where one is needed, or the wrong one).
    #[error("EIP-7702: {0}")]
    Eip7702(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(#[source] alloy::signers::Error),
    /// The bundle transaction reverted on chain, or gave no `UserOperationEvent` for the op.
    #[error("bundle transaction {tx_hash}: {reason}")]
    Bundle {
        /// The transaction.
        tx_hash: B256,
        /// What happened.
        reason: String,
    },
    /// No receipt within the wait limit. The operation may still land: reconcile by
    /// `user_op_hash` before building another one with the same nonce.
    #[error("no receipt for user operation {user_op_hash} after {waited_ms} ms (it may still land)")]
    Timeout {
        /// The operation.
        user_op_hash: B256,
        /// How long we waited.
        waited_ms: u64,
    },
    /// Simulating the operation did not give what gas estimation needs.
    #[error("simulation: {0}")]
    Simulation(String),
    /// A response did not decode.
    #[error("decoding {what}: {reason}")]
    Decode {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn rpc(method: &'static str) -> impl FnOnce(TransportError) -> Self {
        move |source| Self::Rpc { method, source }
    }

    /// Maps revert data to [`Error::Rejected`] when it is an EntryPoint refusal, else
    /// [`Error::Reverted`].
    pub fn from_revert_data(data: &[u8]) -> Self {
        OpRejected::decode(data)
            .map_or_else(|| Self::Reverted(Box::new(Revert::decode(data))), |r| Self::Rejected(Box::new(r)))
    }

    /// The sak policy (or account) error behind this failure, wherever it was wrapped.
    pub fn sak(&self) -> Option<&SakError> {
        match self {
            Self::Rejected(r) => r.inner.as_ref().and_then(Revert::sak),
            Self::Reverted(inner) => inner.sak(),
            _ => None,
        }
    }

    /// The policy refusal behind this failure (same name and fields as the contracts' error),
    /// when the chain refused the operation for its session policy.
    pub fn refusal(&self) -> Option<sak_policy::Refusal> {
        self.sak().and_then(sak_policy::Refusal::from_revert)
    }

    /// Whether nothing of this failure can ever land on chain: the node, the bundler or the
    /// simulation refused the operation itself (not a transport error or a timeout, after which
    /// it may still be included).
    pub fn is_definite_rejection(&self) -> bool {
        match self {
            Self::Rejected(_) | Self::Reverted(_) | Self::FeeCapExceeded { .. } | Self::Relayer { .. } => {
                true
            }
            Self::Bundler { .. } => !self.is_nonce_error(),
            _ => false,
        }
    }

    /// The EntryPoint's AA code, if the EntryPoint refused the operation.
    pub fn aa_code(&self) -> Option<AaCode> {
        match self {
            Self::Rejected(r) => r.code,
            _ => None,
        }
    }

    /// Whether the node or bundler said the nonce is wrong (AA25): resync the lane.
    pub fn is_nonce_error(&self) -> bool {
        self.aa_code() == Some(AaCode::InvalidNonce)
            || matches!(self, Self::Bundler { message, .. } if message.contains("nonce"))
    }

    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::Rejected(r) => match r.code? {
                AaCode::NotPrefunded => "fund the account (ETH or an EntryPoint deposit)",
                AaCode::ExpiredOrNotDue => {
                    "the session's window (or the signed clock's period) is not now: sign again with the chain's time"
                }
                AaCode::InvalidNonce => "another operation used this nonce: resync the lane and sign again",
                AaCode::Signature => "the signature does not match the account's owner or the session key",
                _ => return None,
            },
            Self::FeeCapExceeded { .. } => "wait for lower fees or raise the cap in the policy",
            Self::Relayer { .. } => "use a plain EOA with no code that is not the account as the relayer",
            Self::Timeout { .. } => {
                "query the receipt by user operation hash before sending anything with this nonce"
            }
            _ => return None,
        })
    }

    /// Bytes of revert data in an alloy contract error, if any.
    pub(crate) fn from_contract(what: &'static str, e: alloy::contract::Error) -> Self {
        if let Some(data) = e.as_revert_data() {
            return Self::from_revert_data(&data);
        }
        match e {
            alloy::contract::Error::TransportError(source) => Self::Rpc { method: what, source },
            other => Self::Simulation(format!("{what}: {other}")),
        }
    }

    pub(crate) fn revert_data_of(e: &TransportError) -> Option<Bytes> {
        e.as_error_resp().and_then(|p| p.as_revert_data())
    }
}
