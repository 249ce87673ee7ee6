#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod agent;
pub mod audit;
pub mod calls;
pub mod config;
pub mod doctor;
mod error;
pub mod grants;
pub mod handoff;
mod home;
pub mod leftover;
pub mod ops;
pub mod outcome;
pub mod owner;
pub mod scan;
pub mod sessions;
pub mod store;
pub mod verify;
pub mod watch;
pub mod words;

pub use alloy::primitives::{Address, U256};
pub use error::{Error, Hinted, OptionExt, Result, WrapErr};
pub use home::{
    Ask, AskFn, Chain, Contracts, DAMAGED_KEY_HINT, Home, KEY_PASSWORD_ENV, Options, Progress, Retired,
    keystore_address, redacted_error,
};
pub use sak_node as node;
pub use sak_policy::Call;
pub use sak_primitives::{Policy, PolicyFile, units};
