#![doc = include_str!("../README.md")]

mod anvil;
mod config;
mod deploy;
mod error;
mod kit;
mod toolchain;

pub use anvil::AnvilNode;
pub use config::{Hardfork, NodeConfig, Profile};
pub use deploy::{Deployment, SEED_TKN, SEED_USD, deploy};
pub use error::{Error, Result};
pub use kit::Kit;
pub use toolchain::{ANVIL_ENV, TOOLCHAIN_DIR_ENV, Toolchain};
