//! The evaluator: what the contracts decide for a session's operation, computed off-chain.

use crate::{
    Refusal,
    calldata::{Call, decode_execute, decode_run},
};
use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolCall,
};
use sak_contracts::{ENTRY_POINT_V07, SakAddresses, SessionAdapter, adapter_of};
use sak_primitives::{GWEI, Gas, NATIVE, Op, PERMIT2, Policy, Selector, TRANSFER};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who the session state belongs to: the account, the EntryPoint, the holder of the state
/// (the account itself, or the validator module) and the adapter factory. These are never
/// session targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// The account the session acts for.
    pub account: Address,
    /// The EntryPoint the account trusts.
    pub entry_point: Address,
    /// The contract that stores the sessions (= `account` for sak's own accounts).
    pub holder: Address,
    /// The `SessionAdapter` factory the holder was built with; the account's adapter is its
    /// clone ([`Context::adapter`]).
    pub adapter_factory: Address,
}

impl Context {
    /// A sak account (the smart account or a 7702-delegated EOA) built with sak's canonical
    /// adapter factory: it holds its own sessions.
    pub fn account(account: Address, entry_point: Address) -> Self {
        let adapter_factory = SakAddresses::canonical().session_adapter;
        Self { account, entry_point, holder: account, adapter_factory }
    }

    /// A modular (ERC-7579) account whose sessions `module` (sak's `SessionKeyValidator`)
    /// keeps, with sak's canonical adapter factory.
    pub fn module(account: Address, entry_point: Address, module: Address) -> Self {
        Self { holder: module, ..Self::account(account, entry_point) }
    }

    /// The account's adapter: every session call but a capped `transfer` goes through it.
    pub fn adapter(&self) -> Address {
        adapter_of(self.adapter_factory, self.account)
    }

    fn privileged(&self, target: Address) -> bool {
        target == self.account
            || target == self.entry_point
            || target == self.holder
            || target == self.adapter_factory
            || target == PERMIT2
            || target == ENTRY_POINT_V07
    }
}

/// What is used of an allowance: `spent` in period `window` (an index from `valid_after`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Base units (or wei) charged in `window`.
    pub spent: U256,
    /// The period index of `spent`.
    pub window: u64,
}

/// A session as the chain records it: the granted policy and its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id (never reused on an account).
    pub id: u32,
    /// The session key's address.
    pub signer: Address,
    /// The granted policy.
    pub policy: Policy,
    /// False once revoked (or all sessions revoked).
    pub active: bool,
    /// Per token (`NATIVE` for ETH): what is used in which window.
    pub spent: BTreeMap<Address, Usage>,
    /// Gas charged (wei) in which gas window.
    pub gas: Usage,
    /// Operations validated so far.
    pub ops_used: u32,
}

/// A session operation to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The batch the account will execute.
    pub calls: Vec<Call>,
    /// The clock the operation claims (chain time, unix seconds).
    pub clock: u64,
    /// The most the account pays for gas (the EntryPoint's prefund); 0 if sponsored.
    pub gas_cost: U256,
    /// The operation's `maxFeePerGas` (wei per gas).
    pub max_fee_per_gas: U256,
    /// The operation's `preVerificationGas`.
    pub pre_verification_gas: U256,
    /// The sponsoring paymaster, if any.
    pub paymaster: Option<Address>,
}

impl Operation {
    /// An operation that pays no gas from the account (a probe, or the direct path).
    pub fn unpaid(calls: Vec<Call>, clock: u64) -> Self {
        Self {
            calls,
            clock,
            gas_cost: U256::ZERO,
            max_fee_per_gas: U256::ZERO,
            pre_verification_gas: U256::ZERO,
            paymaster: None,
        }
    }

    /// An operation from the account's `execute` calldata, with its gas fields: the prefund,
    /// `maxFeePerGas` and `preVerificationGas`.
    pub fn from_call_data(
        call_data: &[u8],
        clock: u64,
        [gas_cost, max_fee_per_gas, pre_verification_gas]: [U256; 3],
        paymaster: Option<Address>,
    ) -> Result<Self, Refusal> {
        Ok(Self {
            calls: decode_execute(call_data)?,
            clock,
            gas_cost,
            max_fee_per_gas,
            pre_verification_gas,
            paymaster,
        })
    }
}

/// One charge against an allowance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Charge {
    /// The token (`NATIVE` for ETH).
    pub token: Address,
    /// The period index charged.
    pub window: u64,
    /// Base units (or wei).
    pub amount: U256,
    /// What remains of the period's allowance after this charge.
    pub remaining: U256,
    /// When the period ends and the allowance renews (unix seconds).
    pub resets_at: u64,
}

/// An operation the policy admits, and what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Authorization {
    /// The operation is valid from this second: the `validAfter` the contracts return, which
    /// EntryPoint v0.7 admits from this second and v0.8 from the next (so an operation never
    /// runs before the period it is charged to)...
    pub valid_after: u64,
    /// ...to this second (inclusive): the session's bounds narrowed to every charged period.
    pub valid_until: u64,
    /// Token and ETH charges, in call order.
    pub charges: Vec<Charge>,
    /// The gas charge, if the account pays and the session has a budget.
    pub gas: Option<Charge>,
}

impl Session {
    /// A freshly granted session.
    pub fn new(id: u32, signer: Address, policy: Policy) -> Self {
        Self { id, signer, policy, active: true, spent: BTreeMap::new(), gas: Usage::default(), ops_used: 0 }
    }

    /// Decides `op` the way the contracts' `SessionLib.authorize` does, in the same order, with
    /// the same errors. Pure: apply the result with [`Session::apply`].
    pub fn authorize(&self, op: &Operation, ctx: &Context) -> Result<Authorization, Refusal> {
        let policy = &self.policy;
        if op.calls.is_empty() {
            return Err(Refusal::EmptyBatch);
        }
        if !self.active {
            return Err(Refusal::SessionNotActive { id: self.id });
        }
        let clock = op.clock;
        if clock < policy.valid_after || clock > policy.valid_until {
            return Err(Refusal::ClockOutsideSession {
                clock,
                valid_after: policy.valid_after,
                valid_until: policy.valid_until,
            });
        }
        let mut auth = Authorization {
            valid_after: policy.valid_after,
            valid_until: policy.valid_until,
            charges: vec![],
            gas: None,
        };
        // Charges within one batch accumulate, as the contracts' storage does.
        let mut spent = self.spent.clone();
        // Tokens moved into the adapter that no later `run` has listed yet, in order.
        let mut funded: Vec<Option<Address>> = Vec::new();
        for call in &op.calls {
            if let Some(charge) = self.authorize_call(call, clock, ctx, &mut spent, &mut funded)? {
                auth.valid_after = auth.valid_after.max(charge.resets_at - self.period_of(charge.token));
                auth.valid_until = auth.valid_until.min(charge.resets_at - 1);
                auth.charges.push(charge);
            }
        }
        if let Some(token) = funded.into_iter().flatten().next() {
            return Err(Refusal::AdapterFundingUnlisted { token });
        }

        if policy.max_ops != 0 && self.ops_used >= policy.max_ops {
            return Err(Refusal::OperationLimitReached { max_ops: policy.max_ops });
        }
        let gas_cost = if op.paymaster.is_some() { U256::ZERO } else { op.gas_cost };
        if !gas_cost.is_zero() {
            if policy.gas == Gas::SponsoredOnly {
                return Err(Refusal::GasBudgetExceeded {
                    requested: gas_cost,
                    remaining: U256::ZERO,
                    resets_at: None,
                });
            }
            let cap = U256::from(policy.max_fee_per_gas);
            if !cap.is_zero() && op.max_fee_per_gas > cap {
                return Err(Refusal::FeePerGasAboveCap { requested: op.max_fee_per_gas, cap });
            }
            let cap = U256::from(policy.max_pre_verification_gas);
            if !cap.is_zero() && op.pre_verification_gas > cap {
                return Err(Refusal::PreVerificationGasAboveCap { requested: op.pre_verification_gas, cap });
            }
            match policy.gas {
                Gas::Unlimited | Gas::SponsoredOnly => {}
                Gas::Budget { wei, period } => {
                    let k = (clock - policy.valid_after) / u64::from(period);
                    if k < self.gas.window {
                        return Err(Refusal::StaleGasWindow { claimed: k, current: self.gas.window });
                    }
                    let used = if k == self.gas.window { self.gas.spent } else { U256::ZERO };
                    let remaining = wei - used;
                    let start = policy.valid_after + k * u64::from(period);
                    let resets_at = start + u64::from(period);
                    if gas_cost > remaining {
                        return Err(Refusal::GasBudgetExceeded {
                            requested: gas_cost,
                            remaining,
                            resets_at: Some(resets_at),
                        });
                    }
                    auth.valid_after = auth.valid_after.max(start);
                    auth.valid_until = auth.valid_until.min(resets_at - 1);
                    // Charged in whole gwei, rounded up (the budget and what remains of it are
                    // whole gwei, so the comparison above is the same).
                    let amount = gas_cost.div_ceil(U256::from(GWEI)) * U256::from(GWEI);
                    auth.gas = Some(Charge {
                        token: NATIVE,
                        window: k,
                        amount,
                        remaining: remaining - amount,
                        resets_at,
                    });
                }
            }
        }
        // The contracts check the paymaster after the policy (SessionLib.validateUserOp).
        if let Some(paymaster) = op.paymaster
            && policy.paymaster != Some(paymaster)
        {
            return Err(Refusal::PaymasterNotPermitted { paymaster });
        }
        Ok(auth)
    }

    /// Records an admitted operation's charges, as the chain does when it validates.
    pub fn apply(&mut self, auth: &Authorization) {
        for c in &auth.charges {
            let usage = self.spent.entry(c.token).or_default();
            let base = if usage.window == c.window { usage.spent } else { U256::ZERO };
            *usage = Usage { spent: base + c.amount, window: c.window };
        }
        if let Some(g) = &auth.gas {
            let base = if self.gas.window == g.window { self.gas.spent } else { U256::ZERO };
            self.gas = Usage { spent: base + g.amount, window: g.window };
        }
        if self.policy.max_ops != 0 {
            self.ops_used += 1;
        }
    }

    /// What remains of `token`'s allowance at time `now`, and when it renews.
    pub fn remaining(&self, token: Address, now: u64) -> Option<(U256, u64)> {
        let limit = self.policy.spend_limit(token)?;
        let k = now.saturating_sub(self.policy.valid_after) / u64::from(limit.period);
        let usage = self.spent.get(&token).copied().unwrap_or_default();
        let used = if usage.window == k { usage.spent } else { U256::ZERO };
        Some((
            limit.allowance.saturating_sub(used),
            self.policy.valid_after + (k + 1) * u64::from(limit.period),
        ))
    }

    fn period_of(&self, token: Address) -> u64 {
        self.policy.spend_limit(token).map_or(1, |l| u64::from(l.period))
    }

    fn authorize_call(
        &self,
        call: &Call,
        clock: u64,
        ctx: &Context,
        spent: &mut BTreeMap<Address, Usage>,
        funded: &mut Vec<Option<Address>>,
    ) -> Result<Option<Charge>, Refusal> {
        let target = call.target;
        if ctx.privileged(target) {
            return Err(Refusal::ForbiddenTarget { target });
        }
        let data = &call.data;
        let selector = if data.len() < 4 { Selector::ZERO } else { Selector::from_slice(&data[..4]) };

        if selector == TRANSFER && data.len() == 68 {
            let limit = self.policy.spend_limit(target).filter(|l| l.token != NATIVE && call.value.is_zero());
            let Some(limit) = limit else {
                return Err(Refusal::CallNotPermitted { target, selector });
            };
            let to = &data[4..36];
            if to == ctx.adapter().into_word().as_slice() {
                funded.push(Some(target));
            } else if !limit.transfer {
                return Err(Refusal::RecipientNotPermitted {
                    token: target,
                    to: Address::from_slice(&to[12..]),
                });
            }
            let amount = U256::from_be_slice(&data[36..68]);
            return self.charge(target, amount, clock, spent).map(Some);
        }

        let adapter = ctx.adapter();
        if target != adapter || selector != SessionAdapter::runCall::SELECTOR {
            if self.policy.permission(target, selector).is_some() {
                return Err(Refusal::CallNotThroughAdapter { target, selector });
            }
            return Err(Refusal::CallNotPermitted { target, selector });
        }

        let run = decode_run(call)?;
        let inner = run.call;
        let target = inner.target;
        if ctx.privileged(target) || target == adapter {
            return Err(Refusal::ForbiddenTarget { target });
        }
        for entry in funded.iter_mut() {
            if entry.is_some_and(|token| run.tokens.contains(&token.into_word())) {
                *entry = None;
            }
        }
        let Some(selector) = inner.selector() else {
            return Err(Refusal::CallNotPermitted { target, selector: Selector::ZERO });
        };
        let data = &inner.data;
        let Some(permission) = self.policy.permission(target, selector) else {
            return Err(Refusal::CallNotPermitted { target, selector });
        };
        for c in &permission.conditions {
            let start = 4 + 32 * usize::from(c.arg);
            let failed = Refusal::ArgumentConditionFailed { target, selector, arg_index: c.arg };
            let word = data.get(start..start + 32).map(B256::from_slice).ok_or_else(|| failed.clone())?;
            let arg = U256::from_be_bytes(word.0);
            let ok = c.ty.canonical(&word)
                && match &c.op {
                    Op::Eq { value } => word == *value,
                    Op::Lte { value } => c.ty.compare(arg, *value).is_le(),
                    Op::Gte { value } => c.ty.compare(arg, *value).is_ge(),
                    Op::OneOf { values } => values.contains(&word),
                    Op::EqAccount => word == ctx.account.into_word(),
                };
            if !ok {
                return Err(failed);
            }
        }
        if call.value.is_zero() {
            return Ok(None);
        }
        if !permission.allow_value {
            return Err(Refusal::ValueNotPermitted { target, selector, value: call.value });
        }
        if self.policy.spend_limit(NATIVE).is_none() {
            return Err(Refusal::SpendCapExceeded {
                token: NATIVE,
                requested: call.value,
                remaining: U256::ZERO,
                resets_at: None,
            });
        }
        self.charge(NATIVE, call.value, clock, spent).map(Some)
    }

    fn charge(
        &self,
        token: Address,
        amount: U256,
        clock: u64,
        spent: &mut BTreeMap<Address, Usage>,
    ) -> Result<Charge, Refusal> {
        let limit = self.policy.spend_limit(token).expect("callers check the limit exists");
        let period = u64::from(limit.period);
        let k = (clock - self.policy.valid_after) / period;
        let usage = spent.entry(token).or_default();
        if k < usage.window {
            return Err(Refusal::StaleWindow { token, claimed: k, current: usage.window });
        }
        let used = if k == usage.window { usage.spent } else { U256::ZERO };
        let remaining = limit.allowance - used;
        let resets_at = self.policy.valid_after + (k + 1) * period;
        if amount > remaining {
            return Err(Refusal::SpendCapExceeded {
                token,
                requested: amount,
                remaining,
                resets_at: Some(resets_at),
            });
        }
        *usage = Usage { spent: used + amount, window: k };
        Ok(Charge { token, window: k, amount, remaining: remaining - amount, resets_at })
    }
}
