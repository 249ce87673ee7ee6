#![doc = include_str!("../README.md")]

mod error;
pub mod guard;
pub mod keystore;
pub mod ledger;
pub mod settle;

pub use error::{Error, Result};
