//! The facade's error: what went wrong and, where the caller can act, what to do ([`Hinted`]).
//!
//! Errors of the layers below (signer, user operations, policy, node, RPC) are kept whole
//! inside [`Error::Other`], so a caller can still ask them for their refusal or hint
//! ([`Error::inner`]); [`Error::Context`] says what sak was doing when one happened.

use alloy::primitives::B256;
use std::{error::Error as StdError, fmt};

/// The facade's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

type Boxed = Box<dyn StdError + Send + Sync + 'static>;

/// An error of the facade.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What went wrong and what to do about it.
    #[error(transparent)]
    Hinted(Box<Hinted>),
    /// What sak was doing when `source` happened (shown with it: `context: source`).
    #[error("{context}: {source}")]
    Context {
        /// What sak was doing, e.g. `reading state.json`.
        context: String,
        /// What happened.
        #[source]
        source: Boxed,
    },
    /// A failure that has a message only.
    #[error("{0}")]
    Message(String),
    /// An error of a lower layer or library, whole.
    #[error(transparent)]
    Other(Boxed),
}

impl Error {
    /// An error with a message only.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::Message(message.to_string())
    }

    /// This error under `context`: what sak was doing when it happened.
    pub fn wrap(self, context: impl fmt::Display) -> Self {
        Self::Context { context: context.to_string(), source: Box::new(self) }
    }

    /// The [`Hinted`] this is, if it is one.
    pub fn hinted(&self) -> Option<&Hinted> {
        match self {
            Self::Hinted(h) => Some(h),
            _ => None,
        }
    }

    /// The hint of the first [`Hinted`] in this error or its causes.
    pub fn hint(&self) -> Option<&str> {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(self);
        while let Some(c) = cause {
            if let Some(h) = c.downcast_ref::<Self>().and_then(Self::hinted) {
                return Some(&h.hint);
            }
            cause = c.source();
        }
        None
    }

    /// The error this one stands for when it only wraps it ([`Self::Hinted`] and
    /// [`Self::Other`]), for callers that look for a lower layer's error by type: a transparent
    /// wrapper is not its own `source()`.
    pub fn inner(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Hinted(h) => Some(&**h),
            Self::Other(e) => Some(&**e),
            Self::Context { .. } | Self::Message(_) => None,
        }
    }
}

impl From<Hinted> for Error {
    fn from(h: Hinted) -> Self {
        Self::Hinted(Box::new(h))
    }
}

impl From<Box<Hinted>> for Error {
    fn from(h: Box<Hinted>) -> Self {
        Self::Hinted(h)
    }
}

macro_rules! from_lower {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::Other(Box::new(e))
            }
        }
    )*};
}

from_lower!(
    std::io::Error,
    serde_json::Error,
    toml::de::Error,
    toml::ser::Error,
    alloy::transports::TransportError,
    alloy::contract::Error,
    alloy::providers::PendingTransactionError,
    alloy::signers::Error,
    alloy::hex::FromHexError,
    alloy::sol_types::Error,
    sak_signer::Error,
    sak_userop::Error,
    sak_primitives::Error,
    sak_node::Error,
);

/// `.wrap_err(..)` on any result: what sak was doing when the error happened.
pub trait WrapErr<T> {
    /// Wraps the error with `context`.
    fn wrap_err(self, context: impl fmt::Display) -> Result<T>;
    /// Wraps the error with the context `f` makes (only on error).
    fn wrap_err_with<D: fmt::Display>(self, f: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: StdError + Send + Sync + 'static> WrapErr<T> for std::result::Result<T, E> {
    fn wrap_err(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Context { context: context.to_string(), source: Box::new(e) })
    }

    fn wrap_err_with<D: fmt::Display>(self, f: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::Context { context: f().to_string(), source: Box::new(e) })
    }
}

/// `.ok_or_err(..)` on an option: `None` is the error `message`.
pub trait OptionExt<T> {
    /// The value, or an error saying `message`.
    fn ok_or_err(self, message: impl fmt::Display) -> Result<T>;
}

impl<T> OptionExt<T> for Option<T> {
    fn ok_or_err(self, message: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error::msg(message))
    }
}

/// Returns early with an [`Error`]: from a format string, or from anything `Into<Error>`.
macro_rules! bail {
    ($msg:literal $(,)?) => { return Err($crate::Error::msg(format!($msg))) };
    ($fmt:literal, $($arg:tt)+) => { return Err($crate::Error::msg(format!($fmt, $($arg)+))) };
    ($err:expr $(,)?) => { return Err($crate::Error::from($err)) };
}

/// Returns early with an error from a format string unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Error::msg(format!($($arg)+)));
        }
    };
}

/// An [`Error`] from a format string.
macro_rules! err {
    ($($arg:tt)+) => { $crate::Error::msg(format!($($arg)+)) };
}

pub(crate) use {bail, ensure, err};

/// An error that says what to do about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Hinted {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
    /// A refusal (by a policy or the user), not a failure: nothing was signed.
    pub refused: bool,
    /// A transaction sent whose outcome is not known (it may still land).
    pub unknown_tx: Option<B256>,
    /// The policy refusal it tells in words.
    pub refusal: Option<sak_policy::Refusal>,
}

impl Hinted {
    /// A failure with what to do about it.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { message: message.into(), hint: hint.into(), refused: false, unknown_tx: None, refusal: None }
    }

    /// A refusal: a policy said no, or the user declined.
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { refused: true, ..Self::new(message, hint) }
    }

    /// Transaction `tx` was sent and its outcome is not known yet: it may still land.
    pub fn unknown(message: impl Into<String>, hint: impl Into<String>, tx: B256) -> Self {
        Self { unknown_tx: Some(tx), ..Self::new(message, hint) }
    }

    /// This refusal, told in words, carrying the policy's `refusal`.
    pub fn with_refusal(mut self, refusal: sak_policy::Refusal) -> Self {
        self.refused = true;
        self.refusal = Some(refusal);
        self
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Hinted {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lower layer's error stays findable by type under context: a caller's hint and refusal
    /// lookups depend on it.
    #[test]
    fn a_lower_error_is_found_under_context() {
        let lower: Result<()> = Err(std::io::Error::other("disk full").into());
        let err = lower.wrap_err("writing state.json").unwrap_err();
        assert_eq!(err.to_string(), "writing state.json: disk full");
        let source = StdError::source(&err).expect("the cause");
        let inner = source.downcast_ref::<Error>().and_then(Error::inner).expect("wrapped whole");
        assert_eq!(
            inner.downcast_ref::<std::io::Error>().map(ToString::to_string).as_deref(),
            Some("disk full")
        );
        let hinted = Error::from(Hinted::refused("no", "ask the owner"));
        assert!(hinted.hinted().is_some_and(|h| h.refused && h.hint == "ask the owner"));
        assert!(hinted.inner().and_then(|e| e.downcast_ref::<Hinted>()).is_some());
    }
}
