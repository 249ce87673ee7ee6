//! Errors of the trace helpers.

use alloy::transports::TransportError;

/// What can go wrong while reading a transaction's traces.
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
    /// A trace did not decode.
    #[error("decoding a trace: {0}")]
    Decode(#[source] serde_json::Error),
    /// A trace is unusable (for example empty).
    #[error("trace: {0}")]
    Trace(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn rpc(method: &'static str) -> impl FnOnce(TransportError) -> Self {
        move |source| Self::Rpc { method, source }
    }
}
