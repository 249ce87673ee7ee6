//! What a failed act means to its caller, the same for every front end (the CLI's exit codes and
//! `--json`, the daemon's answers, MCP tool results): refused with nothing signed (1), failed with
//! nothing signed (2), or signed with its outcome not known yet (3, with the operation's hash:
//! it may still land, so sending again could pay twice).
//!
//! Errors of every layer are read through their whole chain ([`causes`]), so a refusal or an
//! unknown outcome deep inside is found whatever wrapped it.

use crate::{Hinted, config::redact_urls_in};
use alloy::primitives::B256;
use sak_policy::Refusal;
use serde::Serialize;
use std::error::Error as StdError;

/// `err` and its causes, each followed by what a [`crate::Error`] wraps whole (a transparent
/// wrapper is not its own `source()`), so lower layers' errors are found by type.
pub fn causes<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source()).flat_map(|c| {
        std::iter::once(c).chain(c.downcast_ref::<crate::Error>().and_then(crate::Error::inner))
    })
}

/// The policy refusal somewhere in `err`'s chain (a local or on-chain policy decision).
pub fn refusal_of(err: &(dyn StdError + 'static)) -> Option<Refusal> {
    causes(err).find_map(|c| {
        c.downcast_ref::<sak_signer::Error>()
            .and_then(sak_signer::Error::refusal)
            .or_else(|| c.downcast_ref::<sak_userop::Error>().and_then(sak_userop::Error::refusal))
            .or_else(|| c.downcast_ref::<Hinted>().and_then(|h| h.refusal.clone()))
    })
}

/// A session operation signed whose outcome is not known yet: (intent, user operation hash,
/// the deadline after which it can no longer land).
pub fn unknown_of(
    err: &(dyn StdError + 'static),
) -> Option<(sak_signer::ledger::IntentId, B256, Option<u64>)> {
    causes(err).find_map(|c| match c.downcast_ref::<sak_signer::Error>() {
        Some(sak_signer::Error::OutcomeUnknown { intent, user_op_hash, deadline, .. }) => {
            Some((*intent, *user_op_hash, *deadline))
        }
        _ => None,
    })
}

/// An owner transaction sent whose outcome is not known yet.
pub fn unknown_tx_of(err: &(dyn StdError + 'static)) -> Option<B256> {
    causes(err).find_map(|c| c.downcast_ref::<Hinted>().and_then(|h| h.unknown_tx))
}

/// 1 refused and nothing signed, 2 an error and nothing signed, 3 signed with its outcome
/// unknown (0 and 4, included and reverted, are results, not errors).
pub fn exit_code(err: &(dyn StdError + 'static)) -> u8 {
    let refused = causes(err).any(|c| c.downcast_ref::<Hinted>().is_some_and(|h| h.refused));
    if unknown_of(err).is_some() || unknown_tx_of(err).is_some() {
        3
    } else if refused || refusal_of(err).is_some() {
        1
    } else {
        2
    }
}

/// The `state` word of an exit code.
pub fn state_of(code: u8) -> &'static str {
    match code {
        1 => "refused",
        3 => "unknown",
        4 => "reverted",
        _ => "failed",
    }
}

/// What to do about `err`: the first hint its chain carries ([`cause_hint`]).
pub fn hint_of(err: &(dyn StdError + 'static)) -> Option<String> {
    causes(err).find_map(cause_hint)
}

/// The hint one cause carries: a [`Hinted`]'s, or a lower layer's.
pub fn cause_hint(cause: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(h) = cause.downcast_ref::<Hinted>() {
        return Some(h.hint.clone());
    }
    cause
        .downcast_ref::<sak_node::Error>()
        .and_then(sak_node::Error::hint)
        .or_else(|| cause.downcast_ref::<sak_signer::Error>().and_then(sak_signer::Error::hint))
        .or_else(|| cause.downcast_ref::<sak_userop::Error>().and_then(|e| e.hint().map(Into::into)))
        .or_else(|| cause.downcast_ref::<sak_primitives::Error>().map(sak_primitives::Error::hint))
}

/// `err` and its causes in one line: RPC URLs' paths (where API keys live) never show, and a
/// cause that only repeats the end of the one before it is left out.
pub fn message_of(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in std::iter::successors(Some(err), |&e| e.source()).map(|c| redact_urls_in(&c.to_string())) {
        if !parts.last().is_some_and(|last| last.ends_with(&cause)) {
            parts.push(cause);
        }
    }
    parts.join(": ")
}

/// A failed act as every front end reports it. Field names are part of the `--json` and daemon
/// interfaces.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// What went wrong.
    pub error: FailureError,
    /// `refused`, `failed` or `unknown`.
    pub state: &'static str,
    /// The ledger's intent of an operation whose outcome is unknown.
    pub intent: Option<i64>,
    /// Its user operation hash.
    pub user_op_hash: Option<B256>,
    /// When it can no longer land (unix seconds).
    pub deadline: Option<u64>,
    /// An owner transaction whose outcome is unknown.
    pub transaction: Option<B256>,
}

/// The error part of a [`Failure`].
#[derive(Debug, Clone, Serialize)]
pub struct FailureError {
    /// The error and its causes, in one line.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// 1, 2 or 3 ([`exit_code`]).
    pub exit_code: u8,
    /// The policy's refusal, by the contracts' error name.
    pub refusal: Option<RefusalOut>,
}

/// A refusal by name, as the contracts say it.
#[derive(Debug, Clone, Serialize)]
pub struct RefusalOut {
    /// The error name (`SpendCapExceeded`, `SessionNotActive`…).
    pub name: &'static str,
    /// It in words.
    pub detail: String,
}

impl Failure {
    /// `err` classified, with `hint` (else the chain's own, else the general one) and `code`
    /// (else [`exit_code`]).
    pub fn of(err: &(dyn StdError + 'static), hint: Option<String>, code: Option<u8>) -> Self {
        let code = code.unwrap_or_else(|| exit_code(err));
        let unknown = unknown_of(err);
        Self {
            error: FailureError {
                message: message_of(err),
                hint: hint.or_else(|| hint_of(err)).unwrap_or_else(|| {
                    "`sak doctor` checks the configuration, keys, chain and contracts; run again with -v for details"
                        .into()
                }),
                exit_code: code,
                refusal: refusal_of(err).map(|r| RefusalOut { name: r.name(), detail: r.to_string() }),
            },
            state: state_of(code),
            intent: unknown.map(|(intent, ..)| intent.0),
            user_op_hash: unknown.map(|(_, hash, _)| hash),
            deadline: unknown.and_then(|(.., deadline)| deadline),
            transaction: unknown_tx_of(err),
        }
    }
}
