#![doc = include_str!("../README.md")]

mod accounts;
mod alto;
mod anvil;
mod config;
mod deploy;
mod error;
mod fault;
mod kit;
mod toolchain;

pub use accounts::{ACCOUNT_ETH, ACCOUNT_USD};
pub use alto::{ALTO_DIR_ENV, ALTO_EXECUTOR_ACCOUNT, ALTO_UTILITY_ACCOUNT, Alto, AltoError, NODE_ENV};
pub use anvil::AnvilNode;
pub use config::{Hardfork, NodeConfig, Profile};
pub use deploy::{Deployment, SEED_TKN, SEED_USD, deploy, deploy_entry_point};
pub use error::{Error, Result};
pub use fault::{Fault, FaultPlan, FaultProxy};
pub use kit::Kit;
pub use toolchain::{ANVIL_ENV, TOOLCHAIN_DIR_ENV, Toolchain};
