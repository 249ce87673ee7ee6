//! EntryPoint v0.8 user operations, the minimum the end-to-end tests and the gas benchmark
//! need:
//!
//! ```text
//!  user_op(sender, nonce, initCode, callData)
//!      │
//!      ▼
//!  fill_gas ── PVG by formula, limits from a traced handleOps simulation (debug_traceCall)
//!      │
//!      ▼
//!  sign ────── owner: ECDSA(userOpHash) │ session: 0x01 ‖ id ‖ clock ‖ ECDSA(digest)
//!      │
//!      ▼
//!  handle_ops ─ a bundler account sends EntryPoint.handleOps ─▶ UserOperationEvent
//! ```

use crate::{Error, Result, trace};
use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::{BlockNumberOrTag, TransactionReceipt, TransactionRequest},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{SolCall, SolInterface, SolValue},
};
use sak_contracts::{ENTRY_POINT_V08, IEntryPoint, SakAccount};

/// A v0.8 packed user operation.
pub type UserOp = IEntryPoint::PackedUserOperation;

/// ERC-7579 mode of a plain batch: call type 0x01, default exec type, no selector or payload.
pub const BATCH_MODE: B256 = {
    let mut mode = [0u8; 32];
    mode[0] = 0x01;
    B256::new(mode)
};

/// `validateUserOp(PackedUserOperation,bytes32,uint256)`: the EntryPoint's validation call.
pub const VALIDATE_USER_OP: [u8; 4] = SakAccount::validateUserOpCall::SELECTOR;

/// Tag byte of a session signature.
pub const SESSION_TAG: u8 = 0x01;

/// Length of a session signature: tag, uint32 id, uint40 clock, r, s, v.
pub const SESSION_SIGNATURE_LEN: usize = 1 + 4 + 5 + 65;

/// Verification gas the probe simulation allows (the estimate replaces it).
const PROBE_VERIFICATION_GAS: u128 = 1_500_000;
/// Execution gas the probe simulation allows (the estimate replaces it).
const PROBE_CALL_GAS: u128 = 1_500_000;
/// Precision of the verification-gas bisection.
const VERIFICATION_BISECTION_STEP: u128 = 500;
/// Gas for simulating `handleOps`.
const SIMULATION_TX_GAS: u64 = 15_000_000;

/// Packs two 128-bit values the way v0.8 does (`accountGasLimits`, `gasFees`): `high << 128 | low`.
pub fn pack_gas(high: u128, low: u128) -> B256 {
    B256::from((U256::from(high) << 128) | U256::from(low))
}

/// The gas limits of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasLimits {
    /// `verificationGasLimit`: account creation, `validateUserOp` and the EntryPoint's
    /// validation bookkeeping (AA26 counts all of it).
    pub verification: u128,
    /// `callGasLimit`: the execution call; EntryPoint v0.8 charges 10% of whatever of it
    /// goes unused beyond 40,000.
    pub call: u128,
    /// `preVerificationGas`: what the EntryPoint cannot measure (intrinsic and calldata gas,
    /// bundle overhead). Added to `actualGasUsed` as is.
    pub pre_verification: u128,
}

/// An operation's gas prices (wei per gas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// `maxPriorityFeePerGas`.
    pub max_priority_fee_per_gas: u128,
    /// `maxFeePerGas`.
    pub max_fee_per_gas: u128,
}

impl Fees {
    /// A 1 gwei tip over twice the latest base fee.
    pub async fn current<P: Provider>(provider: &P) -> Result<Self> {
        let block = provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(Error::rpc("eth_getBlockByNumber"))?
            .ok_or_else(|| Error::HandleOps("no latest block".into()))?;
        let base = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        let tip = 1_000_000_000;
        Ok(Self { max_priority_fee_per_gas: tip, max_fee_per_gas: 2 * base + tip })
    }
}

/// An unsigned operation without gas fields.
pub fn user_op(sender: Address, nonce: U256, init_code: Bytes, call_data: Bytes) -> UserOp {
    UserOp {
        sender,
        nonce,
        initCode: init_code,
        callData: call_data,
        accountGasLimits: B256::ZERO,
        preVerificationGas: U256::ZERO,
        gasFees: B256::ZERO,
        paymasterAndData: Bytes::new(),
        signature: Bytes::new(),
    }
}

/// Writes limits and fees into `op` (invalidating any signature).
pub fn set_gas(op: &mut UserOp, limits: GasLimits, fees: Fees) {
    op.accountGasLimits = pack_gas(limits.verification, limits.call);
    op.preVerificationGas = U256::from(limits.pre_verification);
    op.gasFees = pack_gas(fees.max_priority_fee_per_gas, fees.max_fee_per_gas);
}

/// `SakAccount.execute(BATCH_MODE, abi.encode(Execution[]))` for `(target, value, data)` calls:
/// the only shape a session may sign.
pub fn sak_execute(calls: &[(Address, U256, Bytes)]) -> Bytes {
    SakAccount::executeCall { mode: BATCH_MODE, executionData: calls.to_vec().abi_encode().into() }
        .abi_encode()
        .into()
}

/// The EntryPoint's nonce of `sender` in lane (key) 0.
pub async fn nonce<P: Provider>(provider: &P, sender: Address) -> Result<U256> {
    IEntryPoint::new(ENTRY_POINT_V08, provider)
        .getNonce(sender, alloy::primitives::aliases::U192::ZERO)
        .call()
        .await
        .map_err(Error::contract("EntryPoint.getNonce"))
}

/// The latest block's timestamp: the clock a session signs.
pub async fn chain_time<P: Provider>(provider: &P) -> Result<u64> {
    Ok(provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(Error::rpc("eth_getBlockByNumber"))?
        .ok_or_else(|| Error::HandleOps("no latest block".into()))?
        .header
        .timestamp)
}

/// Who signs an operation.
#[derive(Debug, Clone)]
pub enum OpSigner {
    /// The account's owner: 65 bytes `r ‖ s ‖ v` over the raw user operation hash.
    Owner(PrivateKeySigner),
    /// A session key: `0x01 ‖ id ‖ clock ‖ r ‖ s ‖ v` over [`session_digest`].
    Session {
        /// The session key.
        key: PrivateKeySigner,
        /// The session id the account granted.
        id: u32,
        /// The clock claim (unix seconds, < 2^40): the chain's current time.
        clock: u64,
    },
}

impl OpSigner {
    /// The signature over `user_op_hash`.
    pub fn sign_hash(&self, user_op_hash: B256) -> Bytes {
        match self {
            Self::Owner(key) => ecdsa(key, user_op_hash).into(),
            Self::Session { key, id, clock } => {
                let sig = ecdsa(key, session_digest(user_op_hash, *id, *clock));
                let mut out = Vec::with_capacity(SESSION_SIGNATURE_LEN);
                out.push(SESSION_TAG);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&clock.to_be_bytes()[3..]);
                out.extend_from_slice(&sig);
                out.into()
            }
        }
    }
}

/// What a session key signs: `keccak256(abi.encode(userOpHash, uint32 id, uint40 clock))`.
pub fn session_digest(user_op_hash: B256, id: u32, clock: u64) -> B256 {
    keccak256((user_op_hash, U256::from(id), U256::from(clock)).abi_encode())
}

fn ecdsa(key: &PrivateKeySigner, hash: B256) -> [u8; 65] {
    key.sign_hash_sync(&hash).expect("a local key signs any hash").as_bytes()
}

/// The user operation hash, from the EntryPoint itself.
pub async fn user_op_hash<P: Provider>(provider: &P, op: &UserOp) -> Result<B256> {
    IEntryPoint::new(ENTRY_POINT_V08, provider)
        .getUserOpHash(op.clone())
        .call()
        .await
        .map_err(Error::contract("EntryPoint.getUserOpHash"))
}

/// Signs `op` as it stands.
pub async fn sign<P: Provider>(provider: &P, op: &mut UserOp, signer: &OpSigner) -> Result<()> {
    op.signature = signer.sign_hash(user_op_hash(provider, op).await?);
    Ok(())
}

/// `preVerificationGas` by the eth-infinitism / Alto default formula for a bundle of one on
/// L1: the calldata gas of the ABI-encoded operation with every numeric field, the paymaster
/// data and the signature filled with 0xff (so the result does not depend on them), plus
/// 21,000 for the transaction, 18,300 per operation and 4 per 32-byte word.
pub fn pre_verification_gas(op: &UserOp) -> u128 {
    let filled = UserOp {
        nonce: U256::MAX,
        accountGasLimits: B256::repeat_byte(0xff),
        preVerificationGas: U256::MAX,
        gasFees: B256::repeat_byte(0xff),
        paymasterAndData: vec![0xff; op.paymasterAndData.len()].into(),
        signature: vec![0xff; op.signature.len()].into(),
        ..op.clone()
    };
    let packed = filled.abi_encode();
    let calldata: u128 = packed.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum();
    // Alto rounds `4 * (len + 31) / 32` as a float: round half up.
    let words = (4 * (packed.len() as u128 + 31) + 16) / 32;
    calldata + 21_000 + 18_300 + words
}

/// What a traced `handleOps` simulation of one operation shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simulated {
    /// Gas used by account creation (if any) and `validateUserOp`, inside those frames.
    pub validation_gas: u64,
    /// Gas used inside the account's execution frame.
    pub execution_gas: u64,
}

/// `handleOps([op], bundler)` sent by `bundler`.
pub fn handle_ops_request(ops: Vec<UserOp>, bundler: Address) -> TransactionRequest {
    TransactionRequest::default()
        .with_from(bundler)
        .with_to(ENTRY_POINT_V08)
        .with_input(IEntryPoint::handleOpsCall { ops, beneficiary: bundler }.abi_encode())
}

/// Simulates `handleOps([op])` in the pending block with the call tracer. Fails when the
/// bundle would revert (validation) or the operation's execution would fail.
pub async fn simulate<P: Provider>(provider: &P, bundler: Address, op: &UserOp) -> Result<Simulated> {
    let request = handle_ops_request(vec![op.clone()], bundler).with_gas_limit(SIMULATION_TX_GAS);
    let tree = trace::call_tree_of(provider, &request).await?;
    if let Some(error) = &tree.error {
        return Err(Error::Simulation(format!(
            "handleOps reverts ({error}): {}",
            describe_revert(&tree.output)
        )));
    }
    let inner = tree
        .calls
        .iter()
        .position(|c| c.from == ENTRY_POINT_V08 && c.to == Some(ENTRY_POINT_V08))
        .ok_or_else(|| Error::Simulation("no innerHandleOp frame in the call tree".into()))?;
    let validation_gas =
        tree.calls[..inner].iter().filter(|c| c.to != Some(bundler)).map(trace::CallFrame::gas).sum();
    let execution = tree.calls[inner]
        .calls
        .iter()
        .find(|c| c.to == Some(op.sender))
        .ok_or_else(|| Error::Simulation("no execution call to the sender".into()))?;
    if let Some(error) = &execution.error {
        return Err(Error::Simulation(format!(
            "execution fails ({error}): {}",
            describe_revert(&execution.output)
        )));
    }
    Ok(Simulated { validation_gas, execution_gas: execution.gas() })
}

fn describe_revert(output: &Option<Bytes>) -> String {
    let Some(data) = output else { return "no data".into() };
    match IEntryPoint::IEntryPointErrors::abi_decode(data) {
        Ok(IEntryPoint::IEntryPointErrors::FailedOp(e)) => format!("FailedOp({}, {:?})", e.opIndex, e.reason),
        Ok(IEntryPoint::IEntryPointErrors::FailedOpWithRevert(e)) => {
            format!("FailedOpWithRevert({}, {:?}, {})", e.opIndex, e.reason, e.inner)
        }
        _ => data.to_string(),
    }
}

/// Fills `op`'s gas fields and signs it, as a bundler's estimate would:
/// - `preVerificationGas` from [`pre_verification_gas`];
/// - `callGasLimit` = 1.1 × the execution frame's gas in a traced simulation + 5,000 (63/64
///   headroom for nested calls, well inside the 40,000 of unused execution gas that v0.8 leaves
///   unpenalised);
/// - `verificationGasLimit` = 1.1 × the least limit with which the simulation passes (found by
///   bisection: AA26 counts the EntryPoint's own validation work too, such as a first nonce
///   write, so the frames' gas alone is not enough).
///
/// A last simulation with the final limits must pass.
pub async fn fill_gas<P: Provider>(
    provider: &P,
    bundler: Address,
    op: &mut UserOp,
    signer: &OpSigner,
    fees: Fees,
) -> Result<GasLimits> {
    // The chain can move a block between the probe and the check (a busy machine), and the
    // next block's environment changes execution gas (Uniswap's first swap in a block writes
    // its price accumulators): estimate again rather than fail.
    let mut attempt = 1;
    loop {
        match fill_gas_once(provider, bundler, op, signer, fees).await {
            Err(Error::Simulation(_)) if attempt < 3 => attempt += 1,
            result => return result,
        }
    }
}

async fn fill_gas_once<P: Provider>(
    provider: &P,
    bundler: Address,
    op: &mut UserOp,
    signer: &OpSigner,
    fees: Fees,
) -> Result<GasLimits> {
    let mut limits =
        GasLimits { verification: PROBE_VERIFICATION_GAS, call: PROBE_CALL_GAS, pre_verification: 0 };
    set_gas(op, limits, fees);
    sign(provider, op, signer).await?;
    limits.pre_verification = pre_verification_gas(op);
    set_gas(op, limits, fees);
    sign(provider, op, signer).await?;
    let probe = simulate(provider, bundler, op).await?;
    limits.call = u128::from(probe.execution_gas) * 11 / 10 + 5_000;

    // Invariant: `low` fails, `high` passes.
    let (mut low, mut high) = (u128::from(probe.validation_gas), PROBE_VERIFICATION_GAS);
    while high - low > VERIFICATION_BISECTION_STEP {
        let mid = low + (high - low) / 2;
        set_gas(op, GasLimits { verification: mid, ..limits }, fees);
        sign(provider, op, signer).await?;
        match simulate(provider, bundler, op).await {
            Ok(_) => high = mid,
            Err(Error::Simulation(_)) => low = mid,
            Err(other) => return Err(other),
        }
    }
    limits.verification = high * 11 / 10;
    set_gas(op, limits, fees);
    sign(provider, op, signer).await?;
    simulate(provider, bundler, op).await?;
    Ok(limits)
}

/// One operation's `UserOperationEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpEvent {
    /// The user operation hash.
    pub user_op_hash: B256,
    /// The account.
    pub sender: Address,
    /// The nonce used.
    pub nonce: U256,
    /// Whether the execution succeeded.
    pub success: bool,
    /// Wei the operation paid.
    pub actual_gas_cost: U256,
    /// Gas the operation was charged for (including `preVerificationGas` and any penalty).
    pub actual_gas_used: u64,
}

/// A mined `handleOps` transaction.
#[derive(Debug, Clone)]
pub struct Included {
    /// The transaction hash.
    pub tx_hash: B256,
    /// The transaction's `gasUsed`.
    pub tx_gas_used: u64,
    /// One `UserOperationEvent` per operation, in order.
    pub events: Vec<OpEvent>,
    /// `UserOperationRevertReason`s (execution reverts), if any.
    pub revert_reasons: Vec<Bytes>,
    /// The receipt.
    pub receipt: TransactionReceipt,
}

/// Sends `handleOps(ops, bundler)` from `bundler` (a signer of `provider`) with the gas limit
/// `eth_estimateGas` gives, and reads the operations' events.
pub async fn handle_ops<P: Provider>(provider: &P, bundler: Address, ops: Vec<UserOp>) -> Result<Included> {
    let count = ops.len();
    let receipt = IEntryPoint::new(ENTRY_POINT_V08, provider)
        .handleOps(ops, bundler)
        .from(bundler)
        .send()
        .await
        .map_err(Error::contract("EntryPoint.handleOps"))?
        .get_receipt()
        .await?;
    if !receipt.status() {
        return Err(Error::HandleOps(format!("transaction {} reverted", receipt.transaction_hash)));
    }
    let logs = receipt.inner.logs().iter().filter(|l| l.address() == ENTRY_POINT_V08);
    let mut events = Vec::new();
    let mut revert_reasons = Vec::new();
    for log in logs {
        if let Ok(e) = log.log_decode::<IEntryPoint::UserOperationEvent>() {
            let e = e.inner.data;
            events.push(OpEvent {
                user_op_hash: e.userOpHash,
                sender: e.sender,
                nonce: e.nonce,
                success: e.success,
                actual_gas_cost: e.actualGasCost,
                actual_gas_used: e.actualGasUsed.saturating_to(),
            });
        } else if let Ok(e) = log.log_decode::<IEntryPoint::UserOperationRevertReason>() {
            revert_reasons.push(e.inner.data.revertReason);
        }
    }
    if events.len() != count {
        return Err(Error::HandleOps(format!("{} UserOperationEvents for {count} operations", events.len())));
    }
    Ok(Included {
        tx_hash: receipt.transaction_hash,
        tx_gas_used: receipt.gas_used,
        events,
        revert_reasons,
        receipt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_fields_pack_high_then_low() {
        let packed = pack_gas(0x1234, 0xabcd);
        assert_eq!(U256::from_be_bytes(packed.0) >> 128, U256::from(0x1234));
        assert_eq!(U256::from_be_bytes(packed.0) & U256::from(u128::MAX), U256::from(0xabcd));
    }

    #[test]
    fn session_signature_is_tag_id_clock_then_ecdsa() {
        let key = PrivateKeySigner::random();
        let hash = B256::repeat_byte(7);
        let signer = OpSigner::Session { key: key.clone(), id: 0x0102_0304, clock: 0x05_0607_0809 };
        let sig = signer.sign_hash(hash);
        assert_eq!(sig.len(), SESSION_SIGNATURE_LEN);
        assert_eq!(&sig[..10], &[1, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let ecdsa = alloy::primitives::Signature::from_raw(&sig[10..]).unwrap();
        let digest = session_digest(hash, 0x0102_0304, 0x05_0607_0809);
        assert_eq!(ecdsa.recover_address_from_prehash(&digest).unwrap(), key.address());
        assert!(matches!(sig[74], 27 | 28), "v is 27 or 28");
    }

    #[test]
    fn pre_verification_gas_ignores_numeric_fields_and_counts_bytes() {
        let mut op =
            user_op(Address::repeat_byte(1), U256::from(2), Bytes::new(), Bytes::from(vec![0u8; 64]));
        op.signature = vec![1u8; 65].into();
        // Encoded as viem's `encodeAbiParameters([tuple], [op])`: a dynamic tuple behind an offset.
        assert_eq!(U256::from_be_slice(&op.abi_encode()[..32]), U256::from(32));
        let a = pre_verification_gas(&op);
        op.nonce = U256::from(99);
        op.preVerificationGas = U256::from(50_000);
        assert_eq!(pre_verification_gas(&op), a, "numeric fields are maxed out before counting");
        op.callData = Bytes::from(vec![0u8; 96]);
        assert_eq!(
            pre_verification_gas(&op),
            a + 32 * 4 + 4,
            "32 more zero bytes: 4 gas each, one more word"
        );
    }
}
