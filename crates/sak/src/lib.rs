//! # sak: smart agent keys
//!
//! The library behind the `sak` command. An owner gives an AI agent or bot a *session key*: a
//! key that acts for the owner's account only within limits the chain enforces (which contracts
//! and functions, how much of each token per period, from when until when, until revoked).
//!
//! Everything starts from a [`Home`]: its files (config, keys, the spend ledger, the accounts
//! and sessions made from it), the network and the account chosen to act on.
//!
//! ```no_run
//! # async fn demo() -> sak::Result<()> {
//! use sak::{Home, Options};
//!
//! let home = Home::open(Options::default().network("local"))?;
//! let chain = home.chain().await?;
//! let (name, account) = home.named_account(chain.chain_id)?;
//! println!("account `{name}` at {} is owned by {}", account.address, account.owner);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod agent;
pub mod audit;
pub mod calls;
pub mod config;
pub mod doctor;
mod error;
pub mod grants;
mod home;
pub mod leftover;
pub mod owner;
pub mod scan;
pub mod sessions;
pub mod store;
pub mod verify;
pub mod watch;
pub mod words;

pub use error::{Error, Hinted, OptionExt, Result, WrapErr};
pub use home::{
    Ask, AskFn, Chain, Contracts, DAMAGED_KEY_HINT, Home, KEY_PASSWORD_ENV, Options, Progress, Retired,
    keystore_address, redacted_error,
};
pub use sak_node as node;
