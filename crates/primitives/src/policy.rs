//! The validated policy model and its exact on-chain form (`ISakSessions.SessionConfig`).

use crate::{Error, Problem, Result};
use alloy::primitives::{
    Address, B256, FixedBytes, I256, U256,
    aliases::{U24, U40, U80, U96},
};
use sak_contracts::ISakSessions;
use serde::{Deserialize, Serialize};

mod arg_type;

pub use arg_type::ArgType;

/// The token address that stands for native ETH in spend limits.
pub const NATIVE: Address = Address::ZERO;
/// Uniswap's Permit2, the same address on every chain: never a session target.
pub const PERMIT2: Address = alloy::primitives::address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");
/// Shortest period the contracts accept, in seconds.
pub const MIN_PERIOD: u32 = 60;
/// The default period: one day.
pub const DAY: u32 = 86_400;
/// Limits of the contracts (`SessionLib`).
pub const MAX_PERMISSIONS: usize = 32;
/// At most this many spend limits per session.
pub const MAX_SPEND_LIMITS: usize = 16;
/// At most this many conditions per permission.
pub const MAX_CONDITIONS: usize = 8;
/// At most this many values in a one-of condition.
pub const MAX_ONE_OF: usize = 16;
/// Conditions address the first 32 words of the arguments.
pub const MAX_ARG_WORDS: u8 = 32;
/// Largest allowance a spend limit stores (`uint96`).
pub const MAX_ALLOWANCE: U256 = U256::from_limbs([u64::MAX, (1 << 32) - 1, 0, 0]);
/// A finite gas budget is kept, and charged, in whole gwei.
pub const GWEI: u64 = 1_000_000_000;
/// Largest finite gas budget: 2^48 - 1 gwei (the contracts keep the budget in gwei).
pub const MAX_GAS_BUDGET: U256 = U256::from_limbs([0xc9ffffffc4653600, 0x3b9a, 0, 0]);
/// Largest session fee cap (`uint40` wei per gas, about 1,099 gwei).
pub const MAX_FEE_CAP: u64 = (1 << 40) - 1;
/// Largest session `preVerificationGas` cap (`uint24`).
pub const MAX_PRE_VERIFICATION_GAS_CAP: u32 = (1 << 24) - 1;
/// Largest operation count (`uint24`).
pub const MAX_OPS: u32 = (1 << 24) - 1;
/// Largest time bound (`uint40`).
pub const MAX_TIME: u64 = (1 << 40) - 1;

/// A function selector.
pub type Selector = FixedBytes<4>;

/// Selector 0: a plain ETH send with empty calldata.
pub const ETH_SEND: Selector = FixedBytes([0; 4]);
/// ERC-20 `transfer(address,uint256)`.
pub const TRANSFER: Selector = FixedBytes([0xa9, 0x05, 0x9c, 0xbb]);
/// ERC-20 `approve(address,uint256)`: never made by a session.
pub const APPROVE: Selector = FixedBytes([0x09, 0x5e, 0xa7, 0xb3]);

/// Selectors that move or approve assets; only spend limits may permit them (the contracts
/// refuse them in a call permission: `TokenSelectorNeedsSpendLimit`).
pub const ASSET_SELECTORS: [[u8; 4]; 23] = [
    [0xa9, 0x05, 0x9c, 0xbb], // transfer
    [0x09, 0x5e, 0xa7, 0xb3], // approve
    [0x23, 0xb8, 0x72, 0xdd], // transferFrom
    [0x39, 0x50, 0x93, 0x51], // increaseAllowance
    [0xd5, 0x05, 0xac, 0xcf], // permit
    [0x9b, 0xd9, 0xbb, 0xc6], // send (ERC-777)
    [0x62, 0xad, 0x1b, 0x83], // operatorSend
    [0x95, 0x9b, 0x8c, 0x3f], // authorizeOperator
    [0xca, 0xe9, 0xca, 0x51], // approveAndCall(address,uint256,bytes)
    [0x40, 0x00, 0xae, 0xa0], // transferAndCall(address,uint256,bytes)
    [0xb7, 0x53, 0xa9, 0x8c], // push (DAI)
    [0xf2, 0xd5, 0xd5, 0x6b], // pull
    [0xbb, 0x35, 0x78, 0x3b], // move
    [0xa2, 0x2c, 0xb4, 0x65], // setApprovalForAll
    [0x42, 0x84, 0x2e, 0x0e], // safeTransferFrom(address,address,uint256)
    [0xb8, 0x8d, 0x4f, 0xde], // safeTransferFrom(address,address,uint256,bytes)
    [0xf2, 0x42, 0x43, 0x2a], // safeTransferFrom (ERC-1155)
    [0x2e, 0xb2, 0xc2, 0xd6], // safeBatchTransferFrom
    [0x12, 0x96, 0xee, 0x62], // transferAndCall(address,uint256)
    [0x31, 0x77, 0x02, 0x9f], // approveAndCall(address,uint256)
    [0xd8, 0xfb, 0xe9, 0x94], // transferFromAndCall(address,address,uint256)
    [0xc1, 0xd3, 0x4b, 0x89], // transferFromAndCall(address,address,uint256,bytes)
    [0xd7, 0x3d, 0xd6, 0x23], // increaseApproval
];

/// Whether `selector` moves or approves assets (see [`ASSET_SELECTORS`]).
pub fn moves_assets(selector: Selector) -> bool {
    ASSET_SELECTORS.contains(&selector.0)
}

/// A session's policy: what its key may do for the account. This is the v1 model of
/// DESIGN.md, validated; it encodes one-to-one into `ISakSessions.SessionConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// First second at which the session is valid (inclusive, unix seconds).
    pub valid_after: u64,
    /// Last second at which the session is valid (inclusive, unix seconds).
    pub valid_until: u64,
    /// The calls the session may make (through the account's adapter).
    pub permissions: Vec<Permission>,
    /// Per-token caps; the only way any token or native value leaves the account.
    pub spend_limits: Vec<SpendLimit>,
    /// How much of the account's ETH the session may burn on gas.
    pub gas: Gas,
    /// Highest `maxFeePerGas` (wei) of an operation the account pays for; 0 = no cap. Bounds
    /// what a key that bundles its own operations collects per unit of gas.
    #[serde(default)]
    pub max_fee_per_gas: u64,
    /// Highest `preVerificationGas` of an operation the account pays for; 0 = no cap.
    #[serde(default)]
    pub max_pre_verification_gas: u32,
    /// Operations allowed in total; 0 = unlimited.
    pub max_ops: u32,
    /// The one paymaster that may sponsor this session's operations.
    pub paymaster: Option<Address>,
}

/// A permitted call shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// The contract called.
    pub target: Address,
    /// The function selector; [`ETH_SEND`] for a plain ETH send.
    pub selector: Selector,
    /// Whether the call may carry native value (then charged to the native spend limit).
    pub allow_value: bool,
    /// Conditions on static arguments, all of which must hold.
    pub conditions: Vec<Condition>,
}

/// A condition on the `arg`-th 32-byte word after the selector, read as the ABI type `ty`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Word index after the selector (0-based).
    pub arg: u8,
    /// The comparison.
    #[serde(flatten)]
    pub op: Op,
    /// The argument's ABI type: a typed argument must be canonically encoded, and `<=`/`>=`
    /// compare an `intN` as signed.
    #[serde(default, rename = "type", skip_serializing_if = "ArgType::is_word")]
    pub ty: ArgType,
}

/// How an argument word is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Equal to `value`.
    Eq { value: B256 },
    /// At most `value`, in the order of the condition's type (a `uintN` or an `intN`; an
    /// `intN`'s value is its two's complement word).
    Lte { value: U256 },
    /// At least `value`, in the order of the condition's type.
    Gte { value: U256 },
    /// Equal to one of `values`.
    OneOf { values: Vec<B256> },
    /// The account's own address (for example a swap's recipient).
    EqAccount,
}

/// A per-period cap on what leaves the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendLimit {
    /// ERC-20 token, or [`NATIVE`].
    pub token: Address,
    /// Base units per period, 1 ..= 2^96 - 1.
    pub allowance: U256,
    /// Seconds, at least [`MIN_PERIOD`]; windows are aligned to `valid_after`.
    pub period: u32,
    /// ERC-20: `transfer(to, amount)` to any recipient; without it only to the account's
    /// adapter (to fund a call). Charged either way.
    pub transfer: bool,
}

/// The gas the account itself pays for a session's operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Gas {
    /// The account never pays: only the session's paymaster may sponsor its operations.
    SponsoredOnly,
    /// At most `wei` of the account's ETH per `period` (the operation's full prefund is
    /// charged at validation, whatever it then uses).
    Budget { wei: U256, period: u32 },
    /// No gas limit (the owner's explicit choice).
    Unlimited,
}

impl Policy {
    /// The `ISakSessions.SessionConfig` the owner grants for `signer`.
    pub fn to_session_config(&self, signer: Address) -> ISakSessions::SessionConfig {
        let (gas_budget, gas_period) = match self.gas {
            Gas::SponsoredOnly => (U80::ZERO, 0),
            Gas::Budget { wei, period } => (U80::from(wei), period),
            Gas::Unlimited => (U80::MAX, 0),
        };
        ISakSessions::SessionConfig {
            signer,
            validAfter: U40::from(self.valid_after),
            validUntil: U40::from(self.valid_until),
            permissions: self.permissions.iter().map(Permission::to_sol).collect(),
            spendLimits: self
                .spend_limits
                .iter()
                .map(|l| ISakSessions::SpendLimit {
                    token: l.token,
                    allowance: U96::from(l.allowance),
                    period: l.period,
                    allowTransfer: l.transfer,
                })
                .collect(),
            gasBudget: gas_budget,
            gasPeriod: gas_period,
            maxOps: U24::from(self.max_ops),
            paymaster: self.paymaster.unwrap_or_default(),
            maxFeePerGas: U40::from(self.max_fee_per_gas),
            maxPreVerificationGas: U24::from(self.max_pre_verification_gas),
        }
    }

    /// Reads a granted configuration back (for example from a `SessionGranted` event),
    /// applying the same checks as a policy file, with `now` for the expiry check skipped.
    pub fn from_session_config(config: &ISakSessions::SessionConfig) -> Result<Self> {
        let gas = match config.gasBudget {
            U80::ZERO => Gas::SponsoredOnly,
            U80::MAX => Gas::Unlimited,
            wei => Gas::Budget { wei: U256::from(wei), period: config.gasPeriod },
        };
        let permissions = config
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| Permission::from_sol(p, &format!("permissions[{i}]")))
            .collect::<Result<_>>()?;
        let sponsored = gas == Gas::SponsoredOnly;
        let policy = Self {
            valid_after: config.validAfter.to(),
            valid_until: config.validUntil.to(),
            permissions,
            spend_limits: config
                .spendLimits
                .iter()
                .map(|l| SpendLimit {
                    token: l.token,
                    allowance: U256::from(l.allowance),
                    period: l.period,
                    transfer: l.allowTransfer,
                })
                .collect(),
            gas,
            // The contracts keep no fee cap on a session the account never pays for.
            max_fee_per_gas: if sponsored { 0 } else { config.maxFeePerGas.to() },
            max_pre_verification_gas: if sponsored { 0 } else { config.maxPreVerificationGas.to() },
            max_ops: config.maxOps.to(),
            paymaster: (!config.paymaster.is_zero()).then_some(config.paymaster),
        };
        policy.validate(None)?;
        Ok(policy)
    }

    /// The spend limit for `token`, if any.
    pub fn spend_limit(&self, token: Address) -> Option<&SpendLimit> {
        self.spend_limits.iter().find(|l| l.token == token)
    }

    /// The permission for `(target, selector)`, if any.
    pub fn permission(&self, target: Address, selector: Selector) -> Option<&Permission> {
        self.permissions.iter().find(|p| p.target == target && p.selector == selector)
    }

    /// The checks the contracts make at grant that need no chain context, plus the ones a
    /// careful owner wants (no wildcard target, no duplicate). `now` enables the expiry check.
    pub fn validate(&self, now: Option<u64>) -> Result<()> {
        if let Some(now) = now
            && self.valid_until <= now
        {
            return Err(Error::at("valid_until", Problem::Expired { valid_until: self.valid_until, now }));
        }
        if self.valid_after >= self.valid_until || self.valid_until > MAX_TIME {
            let bounds =
                Problem::InvalidTimeBounds { valid_after: self.valid_after, valid_until: self.valid_until };
            return Err(Error::at("valid_until", bounds));
        }
        let span = self.valid_until - self.valid_after;
        if self.permissions.len() > MAX_PERMISSIONS {
            return Err(Error::at("allow", Problem::TooMany { max: MAX_PERMISSIONS }));
        }
        if self.spend_limits.len() > MAX_SPEND_LIMITS {
            return Err(Error::at("spend", Problem::TooMany { max: MAX_SPEND_LIMITS }));
        }
        if self.max_ops > MAX_OPS {
            return Err(Error::at("max_ops", Problem::Overflow { max: MAX_OPS.to_string() }));
        }
        if let Gas::Budget { wei, period } = self.gas {
            if wei.is_zero() {
                return Err(Error::at("gas.budget", Problem::ZeroAllowance));
            }
            if wei > MAX_GAS_BUDGET {
                return Err(Error::at("gas.budget", Problem::Overflow { max: MAX_GAS_BUDGET.to_string() }));
            }
            if !(wei % U256::from(GWEI)).is_zero() {
                return Err(Error::at(
                    "gas.budget",
                    Problem::Malformed { expected: "a whole number of gwei", found: format!("{wei} wei") },
                ));
            }
            check_period("gas.period", period, span, (1 << 24) - 1)?;
        }
        if self.max_fee_per_gas > MAX_FEE_CAP {
            return Err(Error::at(
                "gas.max_fee_per_gas",
                Problem::Overflow { max: format!("{MAX_FEE_CAP} wei") },
            ));
        }
        if self.max_pre_verification_gas > MAX_PRE_VERIFICATION_GAS_CAP {
            return Err(Error::at(
                "gas.max_pre_verification_gas",
                Problem::Overflow { max: MAX_PRE_VERIFICATION_GAS_CAP.to_string() },
            ));
        }
        if self.gas == Gas::SponsoredOnly && (self.max_fee_per_gas != 0 || self.max_pre_verification_gas != 0)
        {
            return Err(Error::at(
                "gas",
                Problem::Conflict {
                    message: "fee caps bound what the account pays, and a sponsored-only session never pays"
                        .into(),
                },
            ));
        }
        if let Some(paymaster) = self.paymaster
            && paymaster.is_zero()
        {
            return Err(Error::at("paymaster", Problem::Wildcard));
        }
        for (i, limit) in self.spend_limits.iter().enumerate() {
            let path = format!("spend[{i}]");
            if let Some(j) = self.spend_limits[..i].iter().position(|l| l.token == limit.token) {
                return Err(Error::at(path, Problem::Duplicate { first: format!("spend[{j}]") }));
            }
            if limit.allowance.is_zero() {
                return Err(Error::at(format!("{path}.allowance"), Problem::ZeroAllowance));
            }
            if limit.allowance > MAX_ALLOWANCE {
                return Err(Error::at(
                    format!("{path}.allowance"),
                    Problem::Overflow { max: MAX_ALLOWANCE.to_string() },
                ));
            }
            check_period(&format!("{path}.period"), limit.period, span, u64::from(u32::MAX))?;
            if limit.token == NATIVE && limit.transfer {
                return Err(Error::at(
                    path,
                    Problem::Conflict {
                        message: "native ETH takes no transfer flag (it leaves only as call value)".into(),
                    },
                ));
            }
        }
        for (i, p) in self.permissions.iter().enumerate() {
            let path = format!("allow[{i}]");
            if p.target.is_zero() || p.target == Address::with_last_byte(1) {
                return Err(Error::at(format!("{path}.target"), Problem::Wildcard));
            }
            if let Some(j) =
                self.permissions[..i].iter().position(|q| q.target == p.target && q.selector == p.selector)
            {
                return Err(Error::at(path, Problem::Duplicate { first: format!("allow[{j}]") }));
            }
            if moves_assets(p.selector) || self.spend_limit(p.target).is_some_and(|l| l.token != NATIVE) {
                return Err(Error::at(
                    format!("{path}.selector"),
                    Problem::NeedsSpendLimit { selector: p.selector.to_string() },
                ));
            }
            if p.conditions.len() > MAX_CONDITIONS {
                return Err(Error::at(
                    format!("{path}.conditions"),
                    Problem::TooMany { max: MAX_CONDITIONS },
                ));
            }
            for (k, c) in p.conditions.iter().enumerate() {
                let cpath = format!("{path}.conditions[{k}]");
                if c.arg >= MAX_ARG_WORDS {
                    return Err(Error::at(
                        format!("{cpath}.arg"),
                        Problem::Overflow { max: (MAX_ARG_WORDS - 1).to_string() },
                    ));
                }
                if !c.ty.fits(&c.op) {
                    return Err(Error::at(
                        format!("{cpath}.type"),
                        Problem::Malformed {
                            expected: "a uintN or intN for <= and >=, an address for eq-account",
                            found: c.ty.to_string(),
                        },
                    ));
                }
                let values = match &c.op {
                    Op::Eq { value } => vec![*value],
                    Op::Lte { value } | Op::Gte { value } => vec![B256::from(*value)],
                    Op::OneOf { values } => values.clone(),
                    Op::EqAccount => vec![],
                };
                if let Some(v) = values.iter().find(|v| !c.ty.canonical(v)) {
                    return Err(Error::at(
                        format!("{cpath}.value"),
                        Problem::Malformed {
                            expected: "a value within the argument's type",
                            found: format!("{v} for {}", c.ty),
                        },
                    ));
                }
                if let Op::OneOf { values } = &c.op {
                    if values.is_empty() {
                        return Err(Error::at(
                            format!("{cpath}.values"),
                            Problem::Malformed { expected: "at least one value", found: "[]".into() },
                        ));
                    }
                    if values.len() > MAX_ONE_OF {
                        return Err(Error::at(
                            format!("{cpath}.values"),
                            Problem::TooMany { max: MAX_ONE_OF },
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The contracts store windows as uint24 indexes: a session must not outlast 2^24 periods.
fn check_period(path: &str, period: u32, span: u64, max: u64) -> Result<()> {
    let seconds = u64::from(period);
    if period < MIN_PERIOD || seconds > max || span / seconds >= (1 << 24) - 1 {
        return Err(Error::at(path, Problem::InvalidPeriod { seconds }));
    }
    Ok(())
}

impl Permission {
    fn to_sol(&self) -> ISakSessions::CallPermission {
        ISakSessions::CallPermission {
            target: self.target,
            selector: self.selector,
            allowValue: self.allow_value,
            conditions: self
                .conditions
                .iter()
                .map(|c| {
                    let (op, values) = match &c.op {
                        Op::Eq { value } => (0, vec![*value]),
                        Op::Lte { value } => (1, vec![B256::from(*value)]),
                        Op::Gte { value } => (2, vec![B256::from(*value)]),
                        Op::OneOf { values } => (3, values.clone()),
                        Op::EqAccount => (4, vec![]),
                    };
                    ISakSessions::ArgCondition { argIndex: c.arg, op, argType: c.ty.code(), values }
                })
                .collect(),
        }
    }

    fn from_sol(p: &ISakSessions::CallPermission, path: &str) -> Result<Self> {
        let conditions = p
            .conditions
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let single = || {
                    (c.values.len() == 1).then(|| c.values[0]).ok_or_else(|| {
                        Error::at(
                            format!("{path}.conditions[{k}].values"),
                            Problem::Malformed {
                                expected: "exactly one value",
                                found: c.values.len().to_string(),
                            },
                        )
                    })
                };
                let op = match c.op {
                    0 => Op::Eq { value: single()? },
                    1 => Op::Lte { value: single()?.into() },
                    2 => Op::Gte { value: single()?.into() },
                    3 => Op::OneOf { values: c.values.clone() },
                    4 if c.values.is_empty() => Op::EqAccount,
                    other => {
                        return Err(Error::at(
                            format!("{path}.conditions[{k}].op"),
                            Problem::Malformed {
                                expected: "an Op of 0..=4 (EqAccount without values)",
                                found: other.to_string(),
                            },
                        ));
                    }
                };
                let ty = ArgType::from_code(c.argType).ok_or_else(|| {
                    Error::at(
                        format!("{path}.conditions[{k}].argType"),
                        Problem::Malformed {
                            expected: "an ArgCondition type code",
                            found: c.argType.to_string(),
                        },
                    )
                })?;
                Ok(Condition { arg: c.argIndex, op, ty })
            })
            .collect::<Result<_>>()?;
        Ok(Self { target: p.target, selector: p.selector, allow_value: p.allowValue, conditions })
    }
}
