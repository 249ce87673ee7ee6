#![doc = include_str!("../README.md")]

mod error;
mod file;
mod policy;
pub mod units;

pub use error::{Error, Problem, Result};
pub use file::{
    AddressBook, AllowFile, ConditionFile, DISPATCHERS, GasFile, Number, PolicyFile, Role, SpendFile,
    dispatcher,
};
pub use policy::{
    APPROVE, ASSET_SELECTORS, ArgType, Condition, DAY, ETH_SEND, GWEI, Gas, MAX_ALLOWANCE, MAX_ARG_WORDS,
    MAX_CONDITIONS, MAX_FEE_CAP, MAX_GAS_BUDGET, MAX_ONE_OF, MAX_OPS, MAX_PERMISSIONS,
    MAX_PRE_VERIFICATION_GAS_CAP, MAX_SPEND_LIMITS, MAX_TIME, MIN_PERIOD, NATIVE, Op, PERMIT2, Permission,
    Policy, Selector, SpendLimit, TRANSFER, moves_assets,
};
