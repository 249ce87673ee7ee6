#![doc = include_str!("../README.md")]

pub mod calldata;
mod refusal;
mod session;

pub use calldata::{Action, Call, decode_execute, describe, encode_execute, execution_data};
pub use refusal::Refusal;
pub use session::{Authorization, Charge, Context, Operation, Session, Usage};
