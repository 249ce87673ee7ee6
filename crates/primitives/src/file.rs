//! Policy files (TOML or JSON) and role presets, turned into a validated [`Policy`].

use crate::{
    Error, Problem, Result,
    policy::{
        ArgType, Condition, DAY, ETH_SEND, Gas, MAX_FEE_CAP, MAX_PRE_VERIFICATION_GAS_CAP, MAX_TIME, NATIVE,
        Op, Permission, Policy, Selector, SpendLimit,
    },
    units::{parse_amount, parse_duration, parse_time},
};
use alloy::{
    json_abi::{Function, Param},
    primitives::{Address, B256, U256},
};
use serde::{Deserialize, Serialize};

mod resolve;

use resolve::*;

/// Names a policy may use instead of addresses (tokens, routers), with token decimals.
#[derive(Clone, Debug, Default)]
pub struct AddressBook {
    entries: Vec<(String, Address, Option<u8>)>,
}

impl AddressBook {
    /// An empty book: only 0x addresses resolve.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` (matched case-insensitively) for `address`; `decimals` for tokens.
    pub fn with(mut self, name: &str, address: Address, decimals: Option<u8>) -> Self {
        self.entries.push((name.to_owned(), address, decimals));
        self
    }

    /// The address of `name`, a 0x address, or `ETH`/`native` for native ETH (where allowed).
    fn resolve(&self, text: &str, path: &str) -> Result<Address> {
        if text.starts_with("0x") || text.starts_with("0X") {
            return text.parse().map_err(|_| {
                Error::at(path, Problem::Malformed { expected: "a 20-byte 0x address", found: text.into() })
            });
        }
        if text == "*" {
            return Err(Error::at(path, Problem::Wildcard));
        }
        self.entries.iter().find(|(n, ..)| n.eq_ignore_ascii_case(text)).map(|(_, a, _)| *a).ok_or_else(
            || {
                Error::at(
                    path,
                    Problem::UnknownName {
                        name: text.into(),
                        known: self.entries.iter().map(|(n, ..)| n.clone()).collect(),
                    },
                )
            },
        )
    }

    fn resolve_token(&self, text: &str, path: &str) -> Result<Address> {
        if text.eq_ignore_ascii_case("eth") || text.eq_ignore_ascii_case("native") {
            Ok(NATIVE)
        } else {
            self.resolve(text, path)
        }
    }

    fn decimals(&self, token: Address) -> Option<u8> {
        if token == NATIVE {
            return Some(18);
        }
        self.entries.iter().find(|(_, a, _)| *a == token).and_then(|(.., d)| *d)
    }
}

/// A number written as an integer or a string (TOML integers stop at 2^63).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer literal.
    Int(u64),
    /// A negative integer literal (for an `intN` condition).
    Negative(i64),
    /// A string: digits, `0x` hex, or a value with a unit (`"0.01 ether"`).
    Text(String),
}

impl Number {
    fn text(&self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Negative(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

/// A policy file as written. See the crate README for the format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// A preset: `trader`, `payer` or `viewer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `trader`: the Uniswap V2-style router the session swaps through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<String>,
    /// `payer`: addresses the session may send native ETH to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// Start (unix seconds or RFC 3339); default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<Number>,
    /// End (unix seconds or RFC 3339, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Number>,
    /// End relative to the start: `"7d"`, `"12h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<String>,
    /// Operations allowed in total; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ops: Option<u32>,
    /// The paymaster allowed to sponsor the session's operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster: Option<String>,
    /// Gas the account pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas: Option<GasFile>,
    /// Spend limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spend: Vec<SpendFile>,
    /// Call permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<AllowFile>,
    /// Permit generic dispatchers ([`DISPATCHERS`]) in `allow`: refused without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dispatchers: bool,
}

/// Generic dispatchers: functions that make their contract perform calls or moves the caller
/// describes in data (batches of calls, command scripts, vault exits to any receiver). A
/// permission on one permits every route behind it, so a grant names one only with
/// `dispatchers = true`.
pub const DISPATCHERS: &[&str] = &[
    "multicall(bytes[])",
    "multicall(uint256,bytes[])",
    "multicall(bytes32,bytes[])",
    "execute(bytes,bytes[])",
    "execute(bytes,bytes[],uint256)",
    "execute(address,uint256,bytes)",
    "executeBatch(address[],uint256[],bytes[])",
    "aggregate((address,bytes)[])",
    "aggregate3((address,bool,bytes)[])",
    "aggregate3Value((address,bool,uint256,bytes)[])",
    "tryAggregate(bool,(address,bytes)[])",
    "blockAndAggregate((address,bytes)[])",
    "tryBlockAndAggregate(bool,(address,bytes)[])",
    "withdraw(uint256,address,address)",
    "redeem(uint256,address,address)",
];

/// The dispatcher signature with this selector, if it is one of [`DISPATCHERS`].
pub fn dispatcher(selector: Selector) -> Option<&'static str> {
    DISPATCHERS.iter().copied().find(|s| Function::parse(s).is_ok_and(|f| f.selector() == selector))
}

/// `[gas]`: `budget = "0.01 ether"` (or wei, or `"unlimited"`) per `period`, and caps on the
/// price of the operations the account pays for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasFile {
    /// Wei per period, a value with a unit, `"unlimited"`, or 0 (sponsored only).
    pub budget: Number,
    /// Default `"1d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Number>,
    /// Highest fee per gas the account pays (`"50 gwei"`, or wei); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fee_per_gas: Option<Number>,
    /// Highest `preVerificationGas` the account pays for; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pre_verification_gas: Option<Number>,
}

/// `[[spend]]`: a cap per period on one token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendFile {
    /// A name from the address book, a 0x address, or `ETH`.
    pub token: String,
    /// Base units per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<Number>,
    /// Whole units per period (`"250.5"`), scaled by the token's decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Decimals for `amount` when the address book does not know the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
    /// Default `"1d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Number>,
    /// Permit `transfer` to any recipient (default: true for `payer`, else false). Without it
    /// the token moves only into the account's adapter, to fund the session's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<bool>,
    /// Removed: sessions never approve (their calls go through the account's adapter, funded
    /// by `transfer`). Kept so that an old file gets an error that says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<bool>,
}

/// `[[allow]]`: a permitted call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowFile {
    /// A name from the address book or a 0x address.
    pub target: String,
    /// A signature such as `"swap(uint256,address)"`; conditions then name parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// A 4-byte selector; conditions then name 32-byte argument words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Whether the call may carry ETH (charged to the ETH spend limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<bool>,
    /// Conditions on static arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionFile>,
}

/// A condition: `{ arg = 3, op = "eq-account" }`, `{ arg = 0, op = "<=", value = "1000" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionFile {
    /// Parameter index (with `function`) or argument word index (with `selector`).
    pub arg: u8,
    /// `==`, `<=`, `>=`, `one-of`, `eq-account`.
    pub op: String,
    /// For `==`, `<=`, `>=`: a number, 0x hex, or a name from the address book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Number>,
    /// For `one-of`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Number>,
    /// The argument's ABI type (`uint256`, `int24`, `address`, `bool`, …). With `function` it
    /// comes from the signature; with `selector`, `<=` and `>=` need it.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
}

/// The session roles: presets that expand to explicit permissions and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Swaps through one router (recipient = the account), through the account's adapter,
    /// which the session funds with capped tokens.
    Trader,
    /// Transfers listed tokens; sends ETH to listed recipients.
    Payer,
    /// No calls at all.
    Viewer,
}

impl std::str::FromStr for Role {
    type Err = Problem;

    fn from_str(s: &str) -> Result<Self, Problem> {
        match s {
            "trader" => Ok(Self::Trader),
            "payer" => Ok(Self::Payer),
            "viewer" => Ok(Self::Viewer),
            _ => Err(Problem::UnknownRole { role: s.into() }),
        }
    }
}

/// Router functions a `trader` may call: (signature, word index of the recipient `to`,
/// whether the call sends ETH).
const TRADER_SWAPS: [(&str, u8, bool); 5] = [
    ("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)", 3, false),
    ("swapTokensForExactTokens(uint256,uint256,address[],address,uint256)", 3, false),
    ("swapExactTokensForETH(uint256,uint256,address[],address,uint256)", 3, false),
    ("swapExactETHForTokens(uint256,address[],address,uint256)", 2, true),
    ("swapETHForExactTokens(uint256,address[],address,uint256)", 2, true),
];

impl PolicyFile {
    /// Reads a TOML policy.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text)
            .map_err(|e| Error::Syntax { format: "TOML", message: e.to_string().trim().into() })
    }

    /// Reads a JSON policy.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Syntax { format: "JSON", message: e.to_string() })
    }

    /// Expands the role, resolves names through `book`, and validates the result at time
    /// `now` (unix seconds, chain time).
    pub fn resolve(&self, book: &AddressBook, now: u64) -> Result<Policy> {
        let role =
            self.role.as_deref().map(|r| r.parse::<Role>().map_err(|p| Error::at("role", p))).transpose()?;
        let valid_after = match &self.valid_after {
            Some(t) => parse_time(&t.text())
                .ok_or_else(|| malformed("valid_after", "unix seconds or RFC 3339", t))?,
            None => now,
        };
        let valid_until = match (&self.valid_until, &self.valid_for) {
            (Some(_), Some(_)) => {
                return Err(Error::at(
                    "valid_for",
                    Problem::Conflict { message: "both valid_until and valid_for are set".into() },
                ));
            }
            (Some(t), None) => parse_time(&t.text())
                .ok_or_else(|| malformed("valid_until", "unix seconds or RFC 3339", t))?,
            (None, Some(d)) => valid_after.saturating_add(
                parse_duration(d).ok_or_else(|| malformed("valid_for", "a duration such as \"7d\"", d))?,
            ),
            (None, None) => {
                return Err(Error::at(
                    "valid_for",
                    Problem::Conflict {
                        message: "a session needs an end: set valid_for or valid_until".into(),
                    },
                ));
            }
        };
        if valid_after > MAX_TIME || valid_until > MAX_TIME {
            return Err(Error::at("valid_until", Problem::InvalidTimeBounds { valid_after, valid_until }));
        }

        let mut spend_limits = Vec::with_capacity(self.spend.len());
        for (i, s) in self.spend.iter().enumerate() {
            spend_limits.push(self.spend_limit(s, &format!("spend[{i}]"), role, book)?);
        }
        let mut permissions = self.role_permissions(role, book, &spend_limits)?;
        for (i, a) in self.allow.iter().enumerate() {
            let permission = allow(a, &format!("allow[{i}]"), book)?;
            if let Some(function) = dispatcher(permission.selector).filter(|_| !self.dispatchers) {
                return Err(Error::at(
                    format!("allow[{i}]"),
                    Problem::Dispatcher { function: function.into() },
                ));
            }
            permissions.push(permission);
        }

        let paymaster = self.paymaster.as_deref().map(|p| book.resolve(p, "paymaster")).transpose()?;
        let gas = match &self.gas {
            None if paymaster.is_some() => Gas::SponsoredOnly,
            None => {
                return Err(Error::at(
                    "gas",
                    Problem::Conflict {
                        message:
                            "no gas budget: set [gas] budget = \"0.01 ether\" (per period) or a paymaster"
                                .into(),
                    },
                ));
            }
            Some(g) => {
                let budget = g.budget.text();
                if budget == "unlimited" {
                    Gas::Unlimited
                } else {
                    let wei = parse_amount(&budget, Some(18)).ok_or_else(|| {
                        malformed("gas.budget", "wei, \"0.01 ether\" or \"unlimited\"", &g.budget)
                    })?;
                    if wei.is_zero() {
                        Gas::SponsoredOnly
                    } else {
                        Gas::Budget { wei, period: period(g.period.as_ref(), "gas.period")? }
                    }
                }
            }
        };
        if gas == Gas::SponsoredOnly && paymaster.is_none() {
            return Err(Error::at(
                "gas.budget",
                Problem::Conflict {
                    message: "a gas budget of 0 needs a paymaster to sponsor the operations".into(),
                },
            ));
        }

        let cap = |value: Option<&Number>, path: &str, max: u64| -> Result<u64> {
            let Some(v) = value else { return Ok(0) };
            let n = parse_amount(&v.text(), None)
                .ok_or_else(|| malformed(path, "an integer or \"50 gwei\"", v))?;
            if n.is_zero() {
                return Err(Error::at(path, Problem::ZeroAllowance));
            }
            u64::try_from(n)
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| Error::at(path, Problem::Overflow { max: max.to_string() }))
        };
        let gas_file = self.gas.as_ref();
        let max_fee_per_gas =
            cap(gas_file.and_then(|g| g.max_fee_per_gas.as_ref()), "gas.max_fee_per_gas", MAX_FEE_CAP)?;
        let max_pre_verification_gas = cap(
            gas_file.and_then(|g| g.max_pre_verification_gas.as_ref()),
            "gas.max_pre_verification_gas",
            u64::from(MAX_PRE_VERIFICATION_GAS_CAP),
        )?;
        let policy = Policy {
            valid_after,
            valid_until,
            permissions,
            spend_limits,
            gas,
            max_fee_per_gas,
            // Fits: at most MAX_PRE_VERIFICATION_GAS_CAP, checked just above.
            max_pre_verification_gas: max_pre_verification_gas as u32,
            max_ops: self.max_ops.unwrap_or(0),
            paymaster,
        };
        policy.validate(Some(now))?;
        Ok(policy)
    }

    fn spend_limit(
        &self,
        s: &SpendFile,
        path: &str,
        role: Option<Role>,
        book: &AddressBook,
    ) -> Result<SpendLimit> {
        let token = book.resolve_token(&s.token, &format!("{path}.token"))?;
        let allowance = match (&s.allowance, &s.amount) {
            (Some(a), None) => parse_amount(&a.text(), None).ok_or_else(|| {
                malformed(&format!("{path}.allowance"), "base units, e.g. \"250000000\"", a)
            })?,
            (None, Some(amount)) => {
                let decimals = s.decimals.or_else(|| book.decimals(token)).ok_or_else(|| {
                    Error::at(
                        format!("{path}.decimals"),
                        Problem::Conflict { message: format!("decimals of {} unknown", s.token) },
                    )
                })?;
                parse_amount(amount, Some(decimals)).ok_or_else(|| {
                    Error::at(
                        format!("{path}.amount"),
                        Problem::Malformed { expected: "whole units, e.g. \"250.5\"", found: amount.clone() },
                    )
                })?
            }
            _ => {
                return Err(Error::at(
                    path,
                    Problem::Conflict {
                        message: "set exactly one of allowance (base units) and amount".into(),
                    },
                ));
            }
        };
        let native = token == NATIVE;
        if s.approve.is_some() {
            return Err(Error::at(
                format!("{path}.approve"),
                Problem::Conflict {
                    message: "sessions no longer approve: their calls go through the account's adapter, \
                              which the session funds by transfer (charged); remove `approve`"
                        .into(),
                },
            ));
        }
        if role == Some(Role::Viewer) {
            return Err(Error::at(
                path,
                Problem::Conflict { message: "a viewer session moves nothing".into() },
            ));
        }
        Ok(SpendLimit {
            token,
            allowance,
            period: period(s.period.as_ref(), &format!("{path}.period"))?,
            transfer: s.transfer.unwrap_or(!native && role == Some(Role::Payer)),
        })
    }

    fn role_permissions(
        &self,
        role: Option<Role>,
        book: &AddressBook,
        limits: &[SpendLimit],
    ) -> Result<Vec<Permission>> {
        let has_native = limits.iter().any(|l| l.token == NATIVE);
        let mut out = Vec::new();
        match role {
            Some(Role::Trader) => {
                let router = self.router.as_deref().ok_or_else(|| {
                    Error::at(
                        "router",
                        Problem::Conflict { message: "the trader role needs a router".into() },
                    )
                })?;
                let router = book.resolve(router, "router")?;
                for (signature, to, sends_eth) in TRADER_SWAPS {
                    if sends_eth && !has_native {
                        continue;
                    }
                    let function = Function::parse(signature).expect("constant signatures parse");
                    out.push(Permission {
                        target: router,
                        selector: function.selector(),
                        allow_value: sends_eth,
                        conditions: vec![Condition { arg: to, op: Op::EqAccount, ty: ArgType::Address }],
                    });
                }
            }
            Some(Role::Payer) => {
                if !self.recipients.is_empty() && !has_native {
                    return Err(Error::at(
                        "recipients",
                        Problem::Conflict { message: "ETH recipients need a spend entry for ETH".into() },
                    ));
                }
                for (i, r) in self.recipients.iter().enumerate() {
                    let target = book.resolve(r, &format!("recipients[{i}]"))?;
                    out.push(Permission {
                        target,
                        selector: ETH_SEND,
                        allow_value: true,
                        conditions: vec![],
                    });
                }
            }
            Some(Role::Viewer) if !self.allow.is_empty() => {
                return Err(Error::at(
                    "allow",
                    Problem::Conflict { message: "a viewer session makes no calls".into() },
                ));
            }
            Some(Role::Viewer) | None => {}
        }
        if role != Some(Role::Trader) && self.router.is_some() {
            return Err(Error::at(
                "router",
                Problem::Conflict { message: "router is a trader setting".into() },
            ));
        }
        if role != Some(Role::Payer) && !self.recipients.is_empty() {
            return Err(Error::at(
                "recipients",
                Problem::Conflict { message: "recipients is a payer setting".into() },
            ));
        }
        Ok(out)
    }
}

trait ToText {
    fn to_text(&self) -> String;
}
impl From<Address> for Number {
    fn from(a: Address) -> Self {
        Self::Text(a.to_string())
    }
}

impl From<U256> for Number {
    fn from(v: U256) -> Self {
        Self::Text(v.to_string())
    }
}
