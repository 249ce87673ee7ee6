use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U192},
    sol_types::SolInterface,
};
use sak_contracts::SakAccount::{self, SakAccountErrors};
use sak_primitives::{Selector, units::format_time};

/// Why the policy refuses an operation. Each variant has the name and fields of the Solidity
/// error the contracts revert with (`ISakSessions`), plus what the user needs to act on it
/// (`resets_at`: when the refused allowance renews). Its message shows times in UTC
/// (`2026-12-05 19:06:29 UTC`), never raw unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The session does not exist under the current revocation salt: never granted, revoked, or all
    /// sessions were revoked.
    #[error("SessionNotActive: session {id} is not active (revoked, or never granted on this account)")]
    SessionNotActive { id: u32 },
    /// The operation's clock is outside `[valid_after, valid_until]`.
    #[error(
        "ClockOutsideSession: time {} is outside the session's window [{}, {}]",
        format_time(*clock),
        format_time(*valid_after),
        format_time(*valid_until)
    )]
    ClockOutsideSession { clock: u64, valid_after: u64, valid_until: u64 },
    /// Not the account's `execute(batchMode, calls)`.
    #[error("SessionExecutionMode: a session operation must be a batch execute (mode {mode})")]
    SessionExecutionMode { mode: B256 },
    /// An `initCode` beyond the bare EIP-7702 marker on a session operation.
    #[error("SessionInitCode: a session operation carries no initCode beyond the 20-byte 0x7702 marker")]
    SessionInitCode,
    /// The operation's EntryPoint nonce key is not one of the session's own lanes.
    #[error("SessionNonceKey: nonce key {key:#x} is not one of this session's lanes")]
    SessionNonceKey { key: U192 },
    /// The signed deadline is before the signed clock claim.
    #[error(
        "DeadlineBeforeClock: the deadline {} is before the operation's time {}",
        format_time(*deadline),
        format_time(*clock)
    )]
    DeadlineBeforeClock { clock: u64, deadline: u64 },
    /// A batch without calls.
    #[error("EmptyBatch: the batch has no calls")]
    EmptyBatch,
    /// The account, an EntryPoint, the session state's holder, the adapter (factory) or Permit2.
    #[error("ForbiddenTarget: {target} can never be called by a session")]
    ForbiddenTarget { target: Address },
    /// No permission for this (target, selector), or the call's shape is not the permitted one.
    #[error("CallNotPermitted: {target} {selector} is not permitted by the session")]
    CallNotPermitted { target: Address, selector: Selector },
    /// A permitted call made by the account itself instead of through its adapter.
    #[error("CallNotThroughAdapter: {target} {selector} is permitted only through the account's adapter")]
    CallNotThroughAdapter { target: Address, selector: Selector },
    /// A capped token's `transfer` to someone other than the adapter, without `transfer`.
    #[error(
        "RecipientNotPermitted: the session may send {token} only into the account's adapter, not to {to}"
    )]
    RecipientNotPermitted { token: Address, to: Address },
    /// A `run` call to the adapter not in the canonical ABI encoding.
    #[error("MalformedAdapterCall: the adapter call is not canonically ABI-encoded")]
    MalformedAdapterCall,
    /// The batch moves `token` into the adapter, and no later `run` lists it.
    #[error(
        "AdapterFundingUnlisted: the batch moves {token} into the adapter but no later adapter call lists it"
    )]
    AdapterFundingUnlisted { token: Address },
    /// Native value on a call that may not carry it.
    #[error("ValueNotPermitted: {target} {selector} may not carry value ({value} wei)")]
    ValueNotPermitted { target: Address, selector: Selector, value: U256 },
    /// An argument condition does not hold.
    #[error("ArgumentConditionFailed: argument word {arg_index} of {target} {selector} breaks its condition")]
    ArgumentConditionFailed { target: Address, selector: Selector, arg_index: u8 },
    /// More than what remains of the token's allowance in this period.
    #[error(
        "SpendCapExceeded: {requested} of {token} requested, {remaining} remains in this period{}",
        resets(*resets_at)
    )]
    SpendCapExceeded { token: Address, requested: U256, remaining: U256, resets_at: Option<u64> },
    /// More gas than what remains of the gas budget in this period (or none may be paid).
    #[error(
        "GasBudgetExceeded: up to {requested} wei of gas requested, {remaining} wei remains{}",
        resets(*resets_at)
    )]
    GasBudgetExceeded { requested: U256, remaining: U256, resets_at: Option<u64> },
    /// The account would pay for an operation priced above the session's `max_fee_per_gas`.
    #[error("FeePerGasAboveCap: a fee of {requested} wei per gas is above the session's cap of {cap}")]
    FeePerGasAboveCap { requested: U256, cap: U256 },
    /// The account would pay for an operation whose `preVerificationGas` is above the
    /// session's `max_pre_verification_gas`.
    #[error("PreVerificationGasAboveCap: preVerificationGas {requested} is above the session's cap of {cap}")]
    PreVerificationGasAboveCap { requested: U256, cap: U256 },
    /// The operation count is used up.
    #[error("OperationLimitReached: all {max_ops} operations of the session are used")]
    OperationLimitReached { max_ops: u32 },
    /// The clock claims a period before the one already charged.
    #[error("StaleWindow: period {claimed} of {token} is over; period {current} was charged since")]
    StaleWindow { token: Address, claimed: u64, current: u64 },
    /// The clock claims a gas period before the one already charged.
    #[error("StaleGasWindow: gas period {claimed} is over; period {current} was charged since")]
    StaleGasWindow { claimed: u64, current: u64 },
    /// A paymaster other than the session's.
    #[error("PaymasterNotPermitted: paymaster {paymaster} may not sponsor this session")]
    PaymasterNotPermitted { paymaster: Address },
}

fn resets(at: Option<u64>) -> String {
    at.map(|t| format!("; it renews at {}", format_time(t))).unwrap_or_default()
}

impl Refusal {
    /// The Solidity error's name, e.g. `SpendCapExceeded`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SessionNotActive { .. } => "SessionNotActive",
            Self::ClockOutsideSession { .. } => "ClockOutsideSession",
            Self::SessionExecutionMode { .. } => "SessionExecutionMode",
            Self::SessionInitCode => "SessionInitCode",
            Self::SessionNonceKey { .. } => "SessionNonceKey",
            Self::DeadlineBeforeClock { .. } => "DeadlineBeforeClock",
            Self::EmptyBatch => "EmptyBatch",
            Self::ForbiddenTarget { .. } => "ForbiddenTarget",
            Self::CallNotPermitted { .. } => "CallNotPermitted",
            Self::CallNotThroughAdapter { .. } => "CallNotThroughAdapter",
            Self::RecipientNotPermitted { .. } => "RecipientNotPermitted",
            Self::MalformedAdapterCall => "MalformedAdapterCall",
            Self::AdapterFundingUnlisted { .. } => "AdapterFundingUnlisted",
            Self::ValueNotPermitted { .. } => "ValueNotPermitted",
            Self::ArgumentConditionFailed { .. } => "ArgumentConditionFailed",
            Self::SpendCapExceeded { .. } => "SpendCapExceeded",
            Self::GasBudgetExceeded { .. } => "GasBudgetExceeded",
            Self::FeePerGasAboveCap { .. } => "FeePerGasAboveCap",
            Self::PreVerificationGasAboveCap { .. } => "PreVerificationGasAboveCap",
            Self::OperationLimitReached { .. } => "OperationLimitReached",
            Self::StaleWindow { .. } => "StaleWindow",
            Self::StaleGasWindow { .. } => "StaleGasWindow",
            Self::PaymasterNotPermitted { .. } => "PaymasterNotPermitted",
        }
    }

    /// The contracts' revert for this refusal, exactly (selector and arguments).
    pub fn to_revert(&self) -> SakAccountErrors {
        use SakAccount as S;
        use SakAccountErrors as E;
        let u40 = |v: u64| alloy::primitives::aliases::U40::from(v);
        match self.clone() {
            Self::SessionNotActive { id } => E::SessionNotActive(S::SessionNotActive { id }),
            Self::ClockOutsideSession { clock, valid_after, valid_until } => {
                E::ClockOutsideSession(S::ClockOutsideSession {
                    clock: u40(clock),
                    validAfter: u40(valid_after),
                    validUntil: u40(valid_until),
                })
            }
            Self::SessionExecutionMode { mode } => E::SessionExecutionMode(S::SessionExecutionMode { mode }),
            Self::SessionInitCode => E::SessionInitCode(S::SessionInitCode),
            Self::SessionNonceKey { key } => E::SessionNonceKey(S::SessionNonceKey { key }),
            Self::DeadlineBeforeClock { clock, deadline } => {
                E::DeadlineBeforeClock(S::DeadlineBeforeClock { clock: u40(clock), deadline: u40(deadline) })
            }
            Self::EmptyBatch => E::EmptyBatch(S::EmptyBatch),
            Self::ForbiddenTarget { target } => E::ForbiddenTarget(S::ForbiddenTarget { target }),
            Self::CallNotPermitted { target, selector } => {
                E::CallNotPermitted(S::CallNotPermitted { target, selector })
            }
            Self::CallNotThroughAdapter { target, selector } => {
                E::CallNotThroughAdapter(S::CallNotThroughAdapter { target, selector })
            }
            Self::RecipientNotPermitted { token, to } => {
                E::RecipientNotPermitted(S::RecipientNotPermitted { token, to })
            }
            Self::MalformedAdapterCall => E::MalformedAdapterCall(S::MalformedAdapterCall),
            Self::AdapterFundingUnlisted { token } => {
                E::AdapterFundingUnlisted(S::AdapterFundingUnlisted { token })
            }
            Self::ValueNotPermitted { target, selector, value } => {
                E::ValueNotPermitted(S::ValueNotPermitted { target, selector, value })
            }
            Self::ArgumentConditionFailed { target, selector, arg_index } => {
                E::ArgumentConditionFailed(S::ArgumentConditionFailed {
                    target,
                    selector,
                    argIndex: arg_index,
                })
            }
            Self::SpendCapExceeded { token, requested, remaining, .. } => {
                E::SpendCapExceeded(S::SpendCapExceeded { token, requested, remaining })
            }
            Self::GasBudgetExceeded { requested, remaining, .. } => {
                E::GasBudgetExceeded(S::GasBudgetExceeded { requested, remaining })
            }
            Self::FeePerGasAboveCap { requested, cap } => {
                E::FeePerGasAboveCap(S::FeePerGasAboveCap { maxFeePerGas: requested, cap })
            }
            Self::PreVerificationGasAboveCap { requested, cap } => {
                E::PreVerificationGasAboveCap(S::PreVerificationGasAboveCap {
                    preVerificationGas: requested,
                    cap,
                })
            }
            Self::OperationLimitReached { max_ops } => E::OperationLimitReached(S::OperationLimitReached {
                maxOps: alloy::primitives::aliases::U24::from(max_ops),
            }),
            Self::StaleWindow { token, claimed, current } => E::StaleWindow(S::StaleWindow {
                token,
                claimedWindow: U256::from(claimed),
                currentWindow: U256::from(current),
            }),
            Self::StaleGasWindow { claimed, current } => E::StaleGasWindow(S::StaleGasWindow {
                claimedWindow: U256::from(claimed),
                currentWindow: U256::from(current),
            }),
            Self::PaymasterNotPermitted { paymaster } => {
                E::PaymasterNotPermitted(S::PaymasterNotPermitted { paymaster })
            }
        }
    }

    /// Reads a contracts' revert back (`resets_at` is not on-chain, so `None`). Errors that
    /// are not authorisation refusals (grant errors, account errors) give `None`.
    pub fn from_revert(error: &SakAccountErrors) -> Option<Self> {
        use SakAccountErrors as E;
        Some(match error {
            E::SessionNotActive(e) => Self::SessionNotActive { id: e.id },
            E::ClockOutsideSession(e) => Self::ClockOutsideSession {
                clock: e.clock.to(),
                valid_after: e.validAfter.to(),
                valid_until: e.validUntil.to(),
            },
            E::SessionExecutionMode(e) => Self::SessionExecutionMode { mode: e.mode },
            E::SessionInitCode(_) => Self::SessionInitCode,
            E::SessionNonceKey(e) => Self::SessionNonceKey { key: e.key },
            E::DeadlineBeforeClock(e) => {
                Self::DeadlineBeforeClock { clock: e.clock.to(), deadline: e.deadline.to() }
            }
            E::EmptyBatch(_) => Self::EmptyBatch,
            E::ForbiddenTarget(e) => Self::ForbiddenTarget { target: e.target },
            E::CallNotPermitted(e) => Self::CallNotPermitted { target: e.target, selector: e.selector },
            E::CallNotThroughAdapter(e) => {
                Self::CallNotThroughAdapter { target: e.target, selector: e.selector }
            }
            E::RecipientNotPermitted(e) => Self::RecipientNotPermitted { token: e.token, to: e.to },
            E::MalformedAdapterCall(_) => Self::MalformedAdapterCall,
            E::AdapterFundingUnlisted(e) => Self::AdapterFundingUnlisted { token: e.token },
            E::ValueNotPermitted(e) => {
                Self::ValueNotPermitted { target: e.target, selector: e.selector, value: e.value }
            }
            E::ArgumentConditionFailed(e) => Self::ArgumentConditionFailed {
                target: e.target,
                selector: e.selector,
                arg_index: e.argIndex,
            },
            E::SpendCapExceeded(e) => Self::SpendCapExceeded {
                token: e.token,
                requested: e.requested,
                remaining: e.remaining,
                resets_at: None,
            },
            E::GasBudgetExceeded(e) => {
                Self::GasBudgetExceeded { requested: e.requested, remaining: e.remaining, resets_at: None }
            }
            E::FeePerGasAboveCap(e) => Self::FeePerGasAboveCap { requested: e.maxFeePerGas, cap: e.cap },
            E::PreVerificationGasAboveCap(e) => {
                Self::PreVerificationGasAboveCap { requested: e.preVerificationGas, cap: e.cap }
            }
            E::OperationLimitReached(e) => Self::OperationLimitReached { max_ops: e.maxOps.to() },
            E::StaleWindow(e) => Self::StaleWindow {
                token: e.token,
                claimed: e.claimedWindow.saturating_to(),
                current: e.currentWindow.saturating_to(),
            },
            E::StaleGasWindow(e) => Self::StaleGasWindow {
                claimed: e.claimedWindow.saturating_to(),
                current: e.currentWindow.saturating_to(),
            },
            E::PaymasterNotPermitted(e) => Self::PaymasterNotPermitted { paymaster: e.paymaster },
            _ => return None,
        })
    }

    /// The revert data the contracts return for this refusal.
    pub fn revert_data(&self) -> Bytes {
        self.to_revert().abi_encode().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_init_code_has_the_contracts_name_and_bytes() {
        let r = Refusal::SessionInitCode;
        assert_eq!(r.name(), "SessionInitCode");
        // The selector of `SessionInitCode()`, as the contracts revert with it.
        assert_eq!(r.revert_data().as_ref(), &alloy::primitives::keccak256("SessionInitCode()")[..4]);
        assert_eq!(Refusal::from_revert(&r.to_revert()), Some(r));
    }

    #[test]
    fn the_envelope_refusals_have_the_contracts_names_and_bytes() {
        let r = Refusal::SessionNonceKey { key: U192::from(7) };
        assert_eq!(r.name(), "SessionNonceKey");
        assert_eq!(&r.revert_data()[..4], &alloy::primitives::keccak256("SessionNonceKey(uint192)")[..4]);
        assert_eq!(Refusal::from_revert(&r.to_revert()), Some(r));
        let r = Refusal::FeePerGasAboveCap { requested: U256::from(3), cap: U256::from(2) };
        assert_eq!(
            &r.revert_data()[..4],
            &alloy::primitives::keccak256("FeePerGasAboveCap(uint256,uint256)")[..4]
        );
        assert_eq!(Refusal::from_revert(&r.to_revert()), Some(r));
        let r = Refusal::PreVerificationGasAboveCap { requested: U256::from(3), cap: U256::from(2) };
        assert_eq!(
            &r.revert_data()[..4],
            &alloy::primitives::keccak256("PreVerificationGasAboveCap(uint256,uint256)")[..4]
        );
        assert_eq!(Refusal::from_revert(&r.to_revert()), Some(r));
        let r = Refusal::DeadlineBeforeClock { clock: 10, deadline: 9 };
        assert_eq!(r.name(), "DeadlineBeforeClock");
        assert_eq!(
            &r.revert_data()[..4],
            &alloy::primitives::keccak256("DeadlineBeforeClock(uint40,uint40)")[..4]
        );
        assert_eq!(Refusal::from_revert(&r.to_revert()), Some(r));
    }
}
