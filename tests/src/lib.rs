//! End-to-end tests live in `tests/tests/`; the gas benchmark in `examples/gas_table.rs`.
//!
//! This library holds what both share: [`userop`] (build, sign, estimate and submit EntryPoint
//! v0.8 user operations) and [`trace`] (anvil's call tree and struct log, with call frames
//! rebuilt). Both are deliberately small: a real user-operation pipeline crate comes later.

mod error;
pub mod trace;
pub mod userop;

pub use error::{Error, Result};
