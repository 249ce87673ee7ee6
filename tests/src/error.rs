//! Errors of the end-to-end helpers.

use alloy::transports::TransportError;

/// What can go wrong while building, simulating, submitting or tracing user operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A JSON-RPC request failed.
    #[error("{method}: {source}")]
    Rpc {
        /// The RPC method.
        method: &'static str,
        /// The transport's error.
        source: TransportError,
    },
    /// A contract call or transaction failed to send.
    #[error("{what}: {source}")]
    Contract {
        /// What was being done.
        what: &'static str,
        /// The contract binding's error.
        source: alloy::contract::Error,
    },
    /// Waiting for a receipt failed.
    #[error("waiting for the receipt: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    /// A trace did not decode.
    #[error("decoding a trace: {0}")]
    Decode(#[source] serde_json::Error),
    /// A trace is unusable (for example empty).
    #[error("trace: {0}")]
    Trace(String),
    /// Simulating `handleOps` showed that the operation would fail.
    #[error("simulation: {0}")]
    Simulation(String),
    /// The `handleOps` transaction did not do what it should.
    #[error("handleOps: {0}")]
    HandleOps(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn rpc(method: &'static str) -> impl FnOnce(TransportError) -> Self {
        move |source| Self::Rpc { method, source }
    }

    pub(crate) fn contract(what: &'static str) -> impl FnOnce(alloy::contract::Error) -> Self {
        move |source| Self::Contract { what, source }
    }
}
