//! The EntryPoint v0.8 user operation hash, computed locally: EIP-712 over
//! `PackedUserOperation` with the domain `("ERC4337", "1", chainId, entryPoint)`, and the
//! EIP-7702 rule of `Eip7702Support` (an `initCode` starting with the `0x7702` marker hashes as
//! `delegate ‖ initCode[20..]`).

use crate::{
    error::{Error, Result},
    op::{UserOp, is_eip7702_init_code},
};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
    sol_types::{Eip712Domain, SolValue, eip712_domain},
};

/// `keccak256("PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,
/// bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)")`
/// (`UserOperationLib.PACKED_USEROP_TYPEHASH`).
pub fn packed_user_op_typehash() -> B256 {
    keccak256(
        "PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)",
    )
}

/// Hashes user operations for one EntryPoint v0.8 on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserOpHasher {
    entry_point: Address,
    chain_id: u64,
    separator: B256,
    typehash: B256,
}

impl UserOpHasher {
    /// For `entry_point` on `chain_id`.
    pub fn new(entry_point: Address, chain_id: u64) -> Self {
        let domain: Eip712Domain = eip712_domain! {
            name: "ERC4337",
            version: "1",
            chain_id: chain_id,
            verifying_contract: entry_point,
        };
        Self { entry_point, chain_id, separator: domain.separator(), typehash: packed_user_op_typehash() }
    }

    /// The EntryPoint.
    pub const fn entry_point(&self) -> Address {
        self.entry_point
    }

    /// The chain id.
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The hash `EntryPoint.getUserOpHash(op)` returns. `delegate` is the EIP-7702 delegate of
    /// the sender, needed (only) when `op.initCode` carries the 7702 marker: the delegation
    /// the operation will run under (the authorization's address, or the sender's current
    /// `0xef0100 ‖ delegate` code).
    pub fn hash(&self, op: &UserOp, delegate: Option<Address>) -> Result<B256> {
        let init_code_hash = if is_eip7702_init_code(&op.initCode) {
            let delegate = delegate.ok_or_else(|| {
                Error::Eip7702(
                    "initCode has the 0x7702 marker: the sender's delegate is needed to hash".into(),
                )
            })?;
            let rest = op.initCode.get(20..).unwrap_or_default();
            keccak256([delegate.as_slice(), rest].concat())
        } else {
            keccak256(&op.initCode)
        };
        let struct_hash = keccak256(
            (
                self.typehash,
                op.sender,
                op.nonce,
                init_code_hash,
                keccak256(&op.callData),
                op.accountGasLimits,
                op.preVerificationGas,
                op.gasFees,
                keccak256(&op.paymasterAndData),
            )
                .abi_encode(),
        );
        let mut digest = [0u8; 66];
        digest[..2].copy_from_slice(&[0x19, 0x01]);
        digest[2..34].copy_from_slice(self.separator.as_slice());
        digest[34..].copy_from_slice(struct_hash.as_slice());
        Ok(keccak256(digest))
    }
}

/// [`UserOpHasher::hash`] in one call.
///
/// ```
/// use alloy::primitives::Address;
/// use sak_userop::{UserOpBuilder, user_op_hash};
/// let op = UserOpBuilder::new(Address::repeat_byte(1)).build();
/// let hash = user_op_hash(&op, sak_contracts::ENTRY_POINT_V08, 31337, None)?;
/// # Ok::<(), sak_userop::Error>(())
/// ```
pub fn user_op_hash(
    op: &UserOp,
    entry_point: Address,
    chain_id: u64,
    delegate: Option<Address>,
) -> Result<B256> {
    UserOpHasher::new(entry_point, chain_id).hash(op, delegate)
}

/// Splits a 256-bit nonce into its 192-bit key and 64-bit sequence.
pub fn split_nonce(nonce: U256) -> (U256, u64) {
    (nonce >> 64, (nonce & U256::from(u64::MAX)).to::<u64>())
}
