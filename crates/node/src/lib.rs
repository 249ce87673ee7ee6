#![doc = include_str!("../README.md")]

mod accounts;
mod anvil;
mod config;
mod deploy;
mod error;
mod kit;
mod toolchain;

pub use accounts::{ACCOUNT_ETH, ACCOUNT_USD};
pub use anvil::{AnvilNode, spawn_tied_to_process};
pub use config::{Hardfork, NodeConfig, Profile};
pub use deploy::{Deployment, SEED_TKN, SEED_USD, deploy, deploy_entry_point};
pub use error::{Error, Result};
pub use kit::Kit;
pub use toolchain::{ANVIL_ENV, TOOLCHAIN_DIR_ENV, Toolchain};
