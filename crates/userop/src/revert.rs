//! Revert data decoded into the contracts' own error types: sak policy errors (the same names
//! as in Solidity), EntryPoint `FailedOp`/`FailedOpWithRevert` with their AA codes, and
//! execution reverts (`UserOperationRevertReason`).

use alloy::{
    dyn_abi::{DynSolValue, ErrorExt},
    json_abi::JsonAbi,
    primitives::{Bytes, U256},
    sol_types::{Revert as SolRevert, SolError, SolInterface},
};
use sak_contracts::{IEntryPoint, SakAccount};
use std::{fmt, sync::LazyLock};

/// The account's ABI, for printing errors with their parameter names (the generated binding
/// types carry no `Debug`).
static SAK_ABI: LazyLock<Option<JsonAbi>> = LazyLock::new(|| {
    let artifact: serde_json::Value = serde_json::from_str(sak_contracts::SAK_ACCOUNT_ARTIFACT).ok()?;
    serde_json::from_value(artifact.get("abi")?.clone()).ok()
});

/// Every custom error a sak account can revert with: the `ISakSessions` policy errors
/// (`SpendCapExceeded`, `CallNotPermitted`, ...) and the account's own (`NotOwner`, ...),
/// generated from the committed artifact, so new errors appear on rebuild.
pub type SakError = SakAccount::SakAccountErrors;

/// Revert data, decoded as far as we can.
#[derive(Clone)]
#[non_exhaustive]
pub enum Revert {
    /// A sak account or policy error.
    Sak(SakError),
    /// `Error(string)`.
    Message(String),
    /// `Panic(uint256)`.
    Panic(U256),
    /// Nothing we know (including empty data).
    Raw(Bytes),
}

impl Revert {
    /// Decodes revert data.
    pub fn decode(data: &[u8]) -> Self {
        if let Ok(e) = SakError::abi_decode(data) {
            return Self::Sak(e);
        }
        if let Ok(e) = SolRevert::abi_decode(data) {
            return Self::Message(e.reason);
        }
        if let Ok(p) = alloy::sol_types::Panic::abi_decode(data) {
            return Self::Panic(p.code);
        }
        Self::Raw(Bytes::copy_from_slice(data))
    }

    /// The sak error, if it is one.
    pub const fn sak(&self) -> Option<&SakError> {
        match self {
            Self::Sak(e) => Some(e),
            _ => None,
        }
    }
}

impl PartialEq for Revert {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sak(a), Self::Sak(b)) => a.abi_encode() == b.abi_encode(),
            (Self::Message(a), Self::Message(b)) => a == b,
            (Self::Panic(a), Self::Panic(b)) => a == b,
            (Self::Raw(a), Self::Raw(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Revert {}

impl fmt::Debug for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sak(e) => write!(f, "Sak({})", describe_sak(e)),
            Self::Message(m) => f.debug_tuple("Message").field(m).finish(),
            Self::Panic(c) => f.debug_tuple("Panic").field(c).finish(),
            Self::Raw(d) => f.debug_tuple("Raw").field(d).finish(),
        }
    }
}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sak(e) => write!(f, "{}", describe_sak(e)),
            Self::Message(m) => write!(f, "Error({m:?})"),
            Self::Panic(code) => write!(f, "Panic({code:#x})"),
            Self::Raw(data) if data.is_empty() => f.write_str("reverted without data"),
            Self::Raw(data) => write!(f, "reverted with {data}"),
        }
    }
}

/// `SpendCapExceeded(token: 0x…, requested: 5, remaining: 3)`: the error's Solidity name and
/// its values, read through the account's ABI.
pub fn describe_sak(e: &SakError) -> String {
    let data = e.abi_encode();
    named(&data).unwrap_or_else(|| format!("error {}", Bytes::from(data)))
}

fn named(data: &[u8]) -> Option<String> {
    let error =
        SAK_ABI.as_ref()?.errors().find(|err| data.len() >= 4 && err.selector().as_slice() == &data[..4])?;
    let values = error.decode_error(data).ok()?.body;
    let args: Vec<String> = error
        .inputs
        .iter()
        .zip(&values)
        .map(|(param, value)| format!("{}: {}", param.name, show(value)))
        .collect();
    Some(format!("{}({})", error.name, args.join(", ")))
}

fn show(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::FixedBytes(w, size) => Bytes::copy_from_slice(&w[..*size]).to_string(),
        DynSolValue::Bytes(b) => Bytes::copy_from_slice(b).to_string(),
        DynSolValue::String(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}

/// An EntryPoint validation error code (`AAnn`): what failed before execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AaCode {
    /// AA21: the account did not pay the prefund (too little ETH or deposit).
    NotPrefunded,
    /// AA22: outside the validity window (expired or not due yet).
    ExpiredOrNotDue,
    /// AA23: `validateUserOp` reverted (sak policy refusals arrive here, decoded in `inner`).
    Reverted,
    /// AA24: signature error.
    Signature,
    /// AA25: invalid account nonce (resync the lane).
    InvalidNonce,
    /// AA26: over `verificationGasLimit`.
    OverVerificationGas,
    /// Any other `AAnn` (factory 1x, paymaster 3x, ...).
    Other(u8),
}

impl AaCode {
    /// Parses the `AAnn` prefix of an EntryPoint reason string.
    pub fn parse(reason: &str) -> Option<Self> {
        let at = reason.find("AA")?;
        let digits = reason.get(at + 2..at + 4)?;
        let n: u8 = digits.parse().ok()?;
        Some(match n {
            21 => Self::NotPrefunded,
            22 => Self::ExpiredOrNotDue,
            23 => Self::Reverted,
            24 => Self::Signature,
            25 => Self::InvalidNonce,
            26 => Self::OverVerificationGas,
            n => Self::Other(n),
        })
    }

    /// The numeric code (21 for AA21).
    pub const fn number(self) -> u8 {
        match self {
            Self::NotPrefunded => 21,
            Self::ExpiredOrNotDue => 22,
            Self::Reverted => 23,
            Self::Signature => 24,
            Self::InvalidNonce => 25,
            Self::OverVerificationGas => 26,
            Self::Other(n) => n,
        }
    }
}

impl fmt::Display for AaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AA{}", self.number())
    }
}

/// An EntryPoint refusal of one operation (`FailedOp` / `FailedOpWithRevert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRejected {
    /// Index of the operation in the bundle.
    pub op_index: u64,
    /// The AA code, when the reason carries one.
    pub code: Option<AaCode>,
    /// The EntryPoint's reason string, e.g. `AA23 reverted`.
    pub reason: String,
    /// What the account (or paymaster) reverted with, for `FailedOpWithRevert`.
    pub inner: Option<Revert>,
}

impl fmt::Display for OpRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryPoint rejected op {}: {}", self.op_index, self.reason)?;
        if let Some(inner) = &self.inner {
            write!(f, ": {inner}")?;
        }
        Ok(())
    }
}

impl OpRejected {
    /// Decodes `FailedOp`/`FailedOpWithRevert` revert data of `handleOps`.
    pub fn decode(data: &[u8]) -> Option<Self> {
        match IEntryPoint::IEntryPointErrors::abi_decode(data).ok()? {
            IEntryPoint::IEntryPointErrors::FailedOp(e) => Some(Self {
                op_index: e.opIndex.saturating_to(),
                code: AaCode::parse(&e.reason),
                reason: e.reason,
                inner: None,
            }),
            IEntryPoint::IEntryPointErrors::FailedOpWithRevert(e) => Some(Self {
                op_index: e.opIndex.saturating_to(),
                code: AaCode::parse(&e.reason),
                reason: e.reason,
                inner: Some(Revert::decode(&e.inner)),
            }),
            _ => None,
        }
    }

    /// Reads a bundler's error message, such as Alto's `UserOperation reverted during
    /// simulation with reason: AA23 reverted 0x…`: the AA code, and the first hex blob that
    /// decodes as revert data.
    pub fn from_message(message: &str) -> Option<Self> {
        let code = AaCode::parse(message);
        let inner =
            hex_blobs(message).into_iter().map(|b| Revert::decode(&b)).find(|r| !matches!(r, Revert::Raw(_)));
        if code.is_none() && inner.is_none() {
            return None;
        }
        let reason = match message.find("AA") {
            Some(at) => message[at..].split(" 0x").next().unwrap_or(&message[at..]).trim().to_string(),
            None => message.to_string(),
        };
        Some(Self { op_index: 0, code, reason, inner })
    }
}

/// Every `0x`-prefixed hex run of at least 4 bytes in `text`.
pub(crate) fn hex_blobs(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        let tail = &rest[at + 2..];
        let len = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if len >= 8
            && len % 2 == 0
            && let Ok(bytes) = alloy::hex::decode(&tail[..len])
        {
            out.push(bytes);
        }
        rest = &tail[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, address};
    use sak_contracts::SakAccount::SpendCapExceeded;

    const TOKEN: Address = address!("0x00000000000000000000000000000000000000aa");

    #[test]
    fn decodes_policy_errors_inside_failed_op_with_revert() {
        let inner = SpendCapExceeded { token: TOKEN, requested: U256::from(5), remaining: U256::from(3) };
        let data = IEntryPoint::FailedOpWithRevert {
            opIndex: U256::ZERO,
            reason: "AA23 reverted".into(),
            inner: inner.abi_encode().into(),
        }
        .abi_encode();
        let rejected = OpRejected::decode(&data).unwrap();
        assert_eq!(rejected.code, Some(AaCode::Reverted));
        assert_eq!(rejected.inner, Some(Revert::Sak(SakError::SpendCapExceeded(inner))));
        let text = rejected.to_string();
        assert!(text.contains("AA23 reverted") && text.contains("requested: 5"), "{text}");
    }

    #[test]
    fn reads_bundler_messages() {
        let inner = SpendCapExceeded { token: TOKEN, requested: U256::from(5), remaining: U256::from(3) };
        let msg = format!(
            "UserOperation reverted during simulation with reason: AA23 reverted {}",
            Bytes::from(inner.abi_encode())
        );
        let rejected = OpRejected::from_message(&msg).unwrap();
        assert_eq!(rejected.code, Some(AaCode::Reverted));
        assert_eq!(rejected.reason, "AA23 reverted");
        assert!(matches!(rejected.inner, Some(Revert::Sak(SakError::SpendCapExceeded(_)))));
        assert_eq!(
            OpRejected::from_message("AA25 invalid account nonce").unwrap().code,
            Some(AaCode::InvalidNonce)
        );
        assert!(OpRejected::from_message("something else").is_none());
    }

    #[test]
    fn aa_codes_parse() {
        assert_eq!(AaCode::parse("AA22 expired or not due"), Some(AaCode::ExpiredOrNotDue));
        assert_eq!(AaCode::parse("AA24 signature error"), Some(AaCode::Signature));
        assert_eq!(AaCode::parse("AA13 initCode failed or OOG"), Some(AaCode::Other(13)));
        assert_eq!(AaCode::parse("no code"), None);
        assert_eq!(AaCode::Other(13).to_string(), "AA13");
    }
}
