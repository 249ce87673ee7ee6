//! JSON-RPC clients that retry with backoff on 429, 5xx, dropped connections and timeouts,
//! under a total deadline per request.
//!
//! The retry layer repeats a request with the *same* payload, so a retried
//! `eth_sendRawTransaction` or `eth_sendUserOperation` is the same transaction or operation:
//! idempotent. A duplicate that the server then reports ("already known") is reconciled by
//! hash by the submitters, never re-signed.

use crate::error::{Error, Result};
use alloy::{
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        client::{ClientBuilder, RpcClient},
        json_rpc::{RequestPacket, ResponsePacket},
    },
    transports::{
        RpcError, TransportError, TransportErrorKind, TransportFut,
        http::{Http, reqwest},
        layers::{RateLimitRetryPolicy, RetryPolicy},
    },
};
use std::{
    hash::{BuildHasher, Hasher},
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tower::{Layer, Service};

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts after the first.
    pub max_retries: u32,
    /// First backoff; it doubles per retry (up to 5 s), with up to 50% jitter added. A server's
    /// `Retry-After` hint wins.
    pub initial_backoff: Duration,
    /// Per-attempt timeout; a timeout counts as retryable.
    pub request_timeout: Duration,
    /// The most one request may take, retries and backoffs included: past it the request fails
    /// with the last error, never hangs.
    pub deadline: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 8,
            initial_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(20),
            deadline: Duration::from_secs(60),
        }
    }
}

/// Whether a transport error is worth retrying: alloy's rate-limit policy (429, 503, ...) plus
/// any 5xx, request timeouts and connections dropped before the answer. A refused connection
/// (nothing listens) is not: the node is down, and saying so at once helps more. Nor is a 5xx
/// whose body is a JSON-RPC error: the server answered (Alto, for one, rejects an operation with
/// 500 and the reason), and asking again gets the same answer. Nor is a refusal of a request's
/// size (`is_size_refusal`), though some providers give it the rate limit's code.
pub fn is_retryable(error: &TransportError) -> bool {
    if is_size_refusal(error) {
        return false;
    }
    if RateLimitRetryPolicy::default().should_retry(error) {
        return true;
    }
    match error {
        RpcError::Transport(TransportErrorKind::HttpError(e)) => {
            e.status >= 500 && !is_rpc_error_body(&e.body)
        }
        RpcError::Transport(TransportErrorKind::Custom(e)) => {
            // reqwest says "error sending request"; the cause ("operation timed out",
            // "connection closed before message completed") is below.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
            while let Some(c) = cause {
                let text = c.to_string().to_ascii_lowercase();
                if [
                    "timed out",
                    "timeout",
                    "connection reset",
                    "connection closed",
                    "broken pipe",
                    "unexpected eof",
                    "incomplete message",
                ]
                .iter()
                .any(|t| text.contains(t))
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

/// An answer that refuses a request for its size: too many blocks or results for `eth_getLogs`
/// ("query returned more than 10000 results", "block range is too large", "exceeds max block
/// range"). Infura answers it with -32005, the code of its rate limit, whose messages speak of a
/// rate ("request rate limited") instead. A smaller request gets an answer; the same one never.
pub(crate) fn is_size_refusal(error: &TransportError) -> bool {
    error.as_error_resp().is_some_and(|e| {
        let message = e.message.to_ascii_lowercase();
        !message.contains("rate")
            && ["more than", "range", "too large", "too many results", "response size"]
                .iter()
                .any(|w| message.contains(w))
    })
}

/// The tower layer behind [`retrying_client`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryLayer(RetryConfig);

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService { inner, config: self.0 }
    }
}

/// See [`RetryLayer`].
#[derive(Debug, Clone)]
pub(crate) struct RetryService<S> {
    inner: S,
    config: RetryConfig,
}

impl<S> Service<RequestPacket> for RetryService<S>
where
    S: Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Clone
        + Send
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        // The ready service goes into the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config;
        Box::pin(async move {
            let started = Instant::now();
            let mut backoff = config.initial_backoff;
            let mut attempt = 0;
            loop {
                let left = config.deadline.saturating_sub(started.elapsed());
                let Ok(result) = tokio::time::timeout(left, inner.call(request.clone())).await else {
                    return Err(past_deadline(&config, attempt + 1, "no answer"));
                };
                let error = match result {
                    Ok(response) => match response.as_error() {
                        Some(e) if attempt < config.max_retries => {
                            let error = TransportError::ErrorResp(e.clone());
                            if !is_retryable(&error) {
                                return Ok(response);
                            }
                            error
                        }
                        _ => return Ok(response),
                    },
                    Err(e) if attempt < config.max_retries && is_retryable(&e) => e,
                    Err(e) => return Err(e),
                };
                attempt += 1;
                let jitter = backoff.mul_f64(
                    (std::collections::hash_map::RandomState::new().build_hasher().finish() % 500) as f64
                        / 1000.0,
                );
                let wait = RateLimitRetryPolicy::default().backoff_hint(&error).unwrap_or(backoff + jitter);
                if started.elapsed() + wait >= config.deadline {
                    return Err(past_deadline(&config, attempt, &error.to_string()));
                }
                tracing::debug!(%error, attempt, wait_ms = wait.as_millis(), "retrying an RPC request");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        })
    }
}

fn past_deadline(config: &RetryConfig, attempts: u32, last: &str) -> TransportError {
    TransportErrorKind::custom_str(&format!(
        "no answer within {} s ({attempts} attempt{}; last: {last})",
        config.deadline.as_secs(),
        if attempts == 1 { "" } else { "s" }
    ))
}

/// Whether an HTTP body is a JSON-RPC response carrying an `error` object.
fn is_rpc_error_body(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("jsonrpc").is_some() && v.get("error").is_some_and(serde_json::Value::is_object))
}

/// An HTTP JSON-RPC client for `url` that retries (see [`RetryConfig`]) with a per-attempt timeout.
pub fn retrying_client(url: &str, config: RetryConfig) -> Result<RpcClient> {
    let url: reqwest::Url =
        url.parse().map_err(|e| Error::Decode { what: "RPC URL", reason: format!("{e}") })?;
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .map_err(|e| Error::Decode { what: "HTTP client", reason: e.to_string() })?;
    let is_local = url.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "::1");
    Ok(ClientBuilder::default().layer(RetryLayer(config)).transport(Http::with_client(http, url), is_local))
}

/// A read provider over [`retrying_client`], with no fillers (nothing it sends is filled in
/// behind our back).
pub fn retrying_provider(url: &str, config: RetryConfig) -> Result<DynProvider> {
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_client(retrying_client(url, config)?)
        .erased())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::transports::HttpError;

    fn http(status: u16, body: &str) -> TransportError {
        RpcError::Transport(TransportErrorKind::HttpError(HttpError { status, body: body.into() }))
    }

    #[test]
    fn a_server_error_is_retried_unless_it_is_a_json_rpc_answer() {
        let answer = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32500,"message":"AA23 reverted"}}"#;
        assert!(is_retryable(&http(500, "Internal Server Error")));
        assert!(is_retryable(&http(502, "")));
        assert!(!is_retryable(&http(500, answer)), "the bundler answered: asking again changes nothing");
        assert!(is_retryable(&http(503, answer)), "503 and 429 stay rate limits, whatever the body");
        assert!(is_retryable(&http(429, answer)));
        assert!(!is_retryable(&http(400, "bad request")));
    }

    #[test]
    fn a_refusal_of_a_requests_size_is_not_retried_even_under_the_rate_limits_code() {
        let answer = |code: i64, message: &str| -> TransportError {
            RpcError::ErrorResp(alloy::rpc::json_rpc::ErrorPayload {
                code,
                message: message.to_owned().into(),
                data: None,
            })
        };
        assert!(!is_retryable(&answer(-32005, "query returned more than 10000 results")));
        assert!(!is_retryable(&answer(-32602, "query exceeds max block range 3")));
        assert!(is_retryable(&answer(-32005, "daily request count exceeded, request rate limited")));
        assert!(is_size_refusal(&answer(-32600, "eth_getLogs block range is too large")));
    }
}
