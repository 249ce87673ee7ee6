//! Gas and fees: `preVerificationGas` by formula, fee suggestions from the chain, and the
//! caller's caps (refuse rather than overpay).

use crate::{
    error::{Error, FeeCapKind, Result},
    op::{Fees, GasLimits, UserOp},
};
use alloy::{
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::BlockNumberOrTag,
    sol_types::SolValue,
};

/// What the caller allows an operation to cost. Every field is a hard cap: an operation that
/// would need more is refused with [`Error::FeeCapExceeded`] before it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeCaps {
    /// Highest `maxFeePerGas` (wei per gas).
    pub max_fee_per_gas: u128,
    /// Highest `maxPriorityFeePerGas` (wei per gas).
    pub max_priority_fee_per_gas: u128,
    /// Highest total: every gas limit × `maxFeePerGas` (wei), the most the op can be charged.
    pub max_total_cost_wei: U256,
}

impl FeeCaps {
    /// No caps (tests, local chains).
    pub const UNLIMITED: Self = Self {
        max_fee_per_gas: u128::MAX,
        max_priority_fee_per_gas: u128::MAX,
        max_total_cost_wei: U256::MAX,
    };

    /// Prices for the next block: a tip of `min(1 gwei, cap)` over twice `base_fee` (room for
    /// base-fee rises), clamped to the caps. Refuses when the base fee alone is above
    /// `max_fee_per_gas` (the op could not be included without overpaying).
    pub fn price(&self, base_fee: u128) -> Result<Fees> {
        let tip = 1_000_000_000u128.min(self.max_priority_fee_per_gas);
        let needed = base_fee.saturating_add(tip);
        if needed > self.max_fee_per_gas {
            return Err(Error::FeeCapExceeded {
                kind: FeeCapKind::MaxFeePerGas,
                required: U256::from(needed),
                cap: U256::from(self.max_fee_per_gas),
            });
        }
        let max_fee = base_fee.saturating_mul(2).saturating_add(tip).min(self.max_fee_per_gas);
        Ok(Fees { max_fee_per_gas: max_fee, max_priority_fee_per_gas: tip })
    }

    /// Checks finished limits and fees against every cap.
    pub fn check(&self, limits: &GasLimits, fees: &Fees) -> Result<()> {
        if fees.max_fee_per_gas > self.max_fee_per_gas {
            return Err(Error::FeeCapExceeded {
                kind: FeeCapKind::MaxFeePerGas,
                required: U256::from(fees.max_fee_per_gas),
                cap: U256::from(self.max_fee_per_gas),
            });
        }
        if fees.max_priority_fee_per_gas > self.max_priority_fee_per_gas {
            return Err(Error::FeeCapExceeded {
                kind: FeeCapKind::MaxPriorityFeePerGas,
                required: U256::from(fees.max_priority_fee_per_gas),
                cap: U256::from(self.max_priority_fee_per_gas),
            });
        }
        let total = U256::from(limits.total()).saturating_mul(U256::from(fees.max_fee_per_gas));
        if total > self.max_total_cost_wei {
            return Err(Error::FeeCapExceeded {
                kind: FeeCapKind::TotalCost,
                required: total,
                cap: self.max_total_cost_wei,
            });
        }
        Ok(())
    }
}

/// The base fee of the block the operation would land in: the pending block's (anvil reports
/// `anvil_setNextBlockBaseFeePerGas` there), else the latest's.
pub async fn next_base_fee<P: Provider>(provider: &P) -> Result<u128> {
    for tag in [BlockNumberOrTag::Pending, BlockNumberOrTag::Latest] {
        if let Some(block) =
            provider.get_block_by_number(tag).await.map_err(Error::rpc("eth_getBlockByNumber"))?
            && let Some(fee) = block.header.base_fee_per_gas
        {
            return Ok(u128::from(fee));
        }
    }
    Ok(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::UserOpBuilder;
    use alloy::primitives::{Address, Bytes};

    #[test]
    fn pre_verification_gas_ignores_numeric_fields_and_counts_bytes() {
        let mut op = UserOpBuilder::new(Address::repeat_byte(1))
            .nonce(U256::from(2))
            .call_data(vec![0u8; 64])
            .signature(vec![1u8; 65])
            .build();
        let a = pre_verification_gas(&op);
        op.nonce = U256::from(99);
        op.preVerificationGas = U256::from(50_000);
        assert_eq!(pre_verification_gas(&op), a);
        op.callData = Bytes::from(vec![0u8; 96]);
        assert_eq!(pre_verification_gas(&op), a + 32 * 4 + 4);
    }

    #[test]
    fn caps_refuse_rather_than_overpay() {
        let caps = FeeCaps {
            max_fee_per_gas: 50_000_000_000,
            max_priority_fee_per_gas: 2_000_000_000,
            max_total_cost_wei: U256::from(10u64.pow(16)),
        };
        let fees = caps.price(10_000_000_000).unwrap();
        assert_eq!(fees, Fees { max_fee_per_gas: 21_000_000_000, max_priority_fee_per_gas: 1_000_000_000 });
        let clamped = caps.price(30_000_000_000).unwrap();
        assert_eq!(clamped.max_fee_per_gas, 50_000_000_000, "clamped to the cap, still above base + tip");
        let spike = caps.price(60_000_000_000).unwrap_err();
        assert!(matches!(spike, Error::FeeCapExceeded { kind: FeeCapKind::MaxFeePerGas, .. }));
        let limits = GasLimits {
            verification: 200_000,
            call: 100_000,
            pre_verification: 50_000,
            ..Default::default()
        };
        caps.check(&limits, &fees).unwrap();
        let big = GasLimits { call: 1_000_000, ..limits };
        assert!(matches!(
            caps.check(&big, &clamped).unwrap_err(),
            Error::FeeCapExceeded { kind: FeeCapKind::TotalCost, .. }
        ));
    }
}
