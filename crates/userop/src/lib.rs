#![doc = include_str!("../README.md")]

mod calldata;
mod client;
pub mod direct;
pub mod eip7702;
mod error;
mod gas;
mod hash;
mod nonce;
mod op;
mod revert;
mod submit;
mod transport;

pub use calldata::{
    DEFAULT_SESSION_TTL, OpSigner, SESSION_DOMAIN_SEPARATOR, SESSION_NONCE_TAG, SESSION_OP_TYPEHASH,
    SESSION_SIGNATURE_LEN, SESSION_TAG, encode_owner_signature, encode_session_signature, in_session_lanes,
    module_nonce_key, session_digest, session_envelope, session_nonce_key, session_of_nonce,
};
pub use client::{Intent, Prepared, Sent, UserOpClient};
pub use error::{Error, FeeCapKind, Result};
pub use gas::{FeeCaps, next_base_fee, pre_verification_gas};
pub use hash::{UserOpHasher, packed_user_op_typehash, split_nonce, user_op_hash};
pub use nonce::{EntryPointNonces, Lane, LaneSnapshot, NonceLanes, NonceSource, Reservation};
pub use op::{
    EIP7702_MARKER, Fees, GasLimits, OpDebug, Paymaster, RpcUserOperation, UserOp, UserOpBuilder, fees,
    gas_limits, is_eip7702_init_code, pack_u128s, set_fees, set_gas_limits, unpack_u128s,
};
pub use revert::{AaCode, OpRejected, Revert, SakError, describe_sak};
/// One call of a batch, and the account's batch `execute` (one definition, in sak-policy, for
/// the evaluator and the pipeline alike).
pub use sak_policy::{Call, calldata::BATCH_MODE, encode_execute as execute_batch};
pub use submit::{
    BundlerClient, Pending, RECEIPT_TIMEOUT, SelfBundler, Submitter, UserOpReceipt, UserOperationByHash,
};
pub use transport::{RetryConfig, is_retryable, retrying_client, retrying_provider};
