//! JSON-RPC clients that retry reads with backoff on 429, 5xx and timeouts.
//!
//! The retry layer repeats a request with the *same* payload, so a retried
//! `eth_sendRawTransaction` or `eth_sendUserOperation` is the same transaction or operation:
//! idempotent. A duplicate that the server then reports ("already known") is reconciled by
//! hash by the submitters, never re-signed.

use crate::error::{Error, Result};
use alloy::{
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::client::{ClientBuilder, RpcClient},
    transports::{
        RpcError, TransportError, TransportErrorKind,
        http::{Http, reqwest},
        layers::{RateLimitRetryPolicy, RetryBackoffLayer},
    },
};
use std::time::Duration;

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts after the first.
    pub max_retries: u32,
    /// First backoff (doubles, with jitter, per alloy's layer).
    pub initial_backoff: Duration,
    /// Per-request timeout; a timeout counts as retryable.
    pub request_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 8,
            initial_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// Whether a transport error is worth retrying: alloy's rate-limit policy (429, 503, ...) plus
/// any 5xx and request timeouts.
pub fn is_retryable(error: &TransportError) -> bool {
    use alloy::transports::layers::RetryPolicy;
    if RateLimitRetryPolicy::default().should_retry(error) {
        return true;
    }
    match error {
        RpcError::Transport(TransportErrorKind::HttpError(e)) => e.status >= 500,
        RpcError::Transport(TransportErrorKind::Custom(e)) => {
            // reqwest says "error sending request"; the cause ("operation timed out") is below.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
            while let Some(c) = cause {
                let text = c.to_string().to_ascii_lowercase();
                if text.contains("timed out") || text.contains("timeout") || text.contains("connection reset")
                {
                    return true;
                }
                cause = c.source();
            }
            false
        }
        _ => false,
    }
}

/// An HTTP JSON-RPC client for `url` with [`RetryBackoffLayer`] and a request timeout.
pub fn retrying_client(url: &str, config: RetryConfig) -> Result<RpcClient> {
    let url: reqwest::Url =
        url.parse().map_err(|e| Error::Decode { what: "RPC URL", reason: format!("{e}") })?;
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .map_err(|e| Error::Decode { what: "HTTP client", reason: e.to_string() })?;
    let is_local = url.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "::1");
    let policy = RateLimitRetryPolicy::default().or(is_retryable);
    let layer = RetryBackoffLayer::new_with_policy(
        config.max_retries,
        u64::try_from(config.initial_backoff.as_millis()).unwrap_or(u64::MAX),
        u64::MAX,
        policy,
    );
    Ok(ClientBuilder::default().layer(layer).transport(Http::with_client(http, url), is_local))
}

/// A read provider over [`retrying_client`], with no fillers (nothing it sends is filled in
/// behind our back).
pub fn retrying_provider(url: &str, config: RetryConfig) -> Result<DynProvider> {
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(retrying_client(url, config)?)
        .erased())
}
