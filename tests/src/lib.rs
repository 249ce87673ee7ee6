//! End-to-end tests live in `tests/tests/`; the gas benchmark in `examples/gas_table.rs`. Both
//! drive user operations through the product's pipeline (`sak-userop`: `UserOpClient` over a
//! `SelfBundler`).
//!
//! This library holds what they share beyond it: [`trace`] (anvil's call tree and struct log,
//! with call frames rebuilt), the machinery of the ERC-7562 checker and of the gas breakdown.

mod error;
pub mod trace;

pub use error::{Error, Result};
