#![doc = include_str!("../README.md")]

mod alto;
mod fault;
mod postgres;

pub use alto::{ALTO_DIR_ENV, ALTO_EXECUTOR_ACCOUNT, ALTO_UTILITY_ACCOUNT, Alto, AltoError, NODE_ENV};
pub use fault::{Fault, FaultPlan, FaultProxy};
pub use postgres::{Postgres, PostgresError, REQUIRE_POSTGRES_ENV};
pub use sak_node::*;
