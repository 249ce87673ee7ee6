//! The two forms of an EntryPoint v0.8 user operation: the on-chain packed struct (the
//! `IEntryPoint::PackedUserOperation` binding, never a copy) and the unpacked ERC-7769 JSON-RPC
//! form, with lossless conversions between them and a builder.

use crate::error::{Error, Result};
use alloy::{
    eips::eip7702::SignedAuthorization,
    primitives::{Address, B256, Bytes, U256, address},
};
use sak_contracts::IEntryPoint;
use serde::{Deserialize, Serialize};

/// A v0.8 packed user operation: the EntryPoint's own type, from the committed artifact.
pub type UserOp = IEntryPoint::PackedUserOperation;

/// EntryPoint v0.8's EIP-7702 `initCode` marker as an address: `0x7702` then 18 zero bytes.
/// An operation whose `initCode` starts with it is from a delegated EOA, and its hash covers
/// the delegate address instead (see [`crate::user_op_hash`]).
pub const EIP7702_MARKER: Address = address!("0x7702000000000000000000000000000000000000");

/// Packs two 128-bit values the way v0.8 does (`accountGasLimits`, `gasFees`): `high ‖ low`.
pub fn pack_u128s(high: u128, low: u128) -> B256 {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&high.to_be_bytes());
    out[16..].copy_from_slice(&low.to_be_bytes());
    B256::new(out)
}

/// The inverse of [`pack_u128s`].
pub fn unpack_u128s(packed: B256) -> (u128, u128) {
    let high = u128::from_be_bytes(packed[..16].try_into().expect("16 bytes"));
    let low = u128::from_be_bytes(packed[16..].try_into().expect("16 bytes"));
    (high, low)
}

/// The gas limits of one operation (gas units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GasLimits {
    /// `verificationGasLimit`: account creation, `validateUserOp` and the EntryPoint's
    /// validation bookkeeping (AA26 counts all of it).
    #[serde(with = "quantity")]
    pub verification: u128,
    /// `callGasLimit`: the execution call. v0.8 charges 10% of whatever goes unused beyond
    /// 40,000, so it should be estimated, not padded.
    #[serde(with = "quantity")]
    pub call: u128,
    /// `preVerificationGas`: what the EntryPoint cannot measure (calldata, intrinsic gas).
    #[serde(with = "quantity")]
    pub pre_verification: u128,
    /// Paymaster validation gas (0 without a paymaster).
    #[serde(with = "quantity")]
    pub paymaster_verification: u128,
    /// Paymaster `postOp` gas (0 without a paymaster).
    #[serde(with = "quantity")]
    pub paymaster_post_op: u128,
}

impl GasLimits {
    /// Every limit added: the most gas the operation can be charged for.
    pub const fn total(&self) -> u128 {
        self.verification
            .saturating_add(self.call)
            .saturating_add(self.pre_verification)
            .saturating_add(self.paymaster_verification)
            .saturating_add(self.paymaster_post_op)
    }
}

/// An operation's gas prices (wei per gas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fees {
    /// `maxFeePerGas`.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`.
    pub max_priority_fee_per_gas: u128,
}

/// A paymaster and its part of the operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paymaster {
    /// The paymaster contract.
    pub address: Address,
    /// Its validation gas limit.
    pub verification_gas: u128,
    /// Its `postOp` gas limit.
    pub post_op_gas: u128,
    /// Data for the paymaster.
    pub data: Bytes,
}

/// Reads the gas limits written in `op` (paymaster limits from `paymasterAndData`).
pub fn gas_limits(op: &UserOp) -> GasLimits {
    let (verification, call) = unpack_u128s(op.accountGasLimits);
    let (paymaster_verification, paymaster_post_op) = if op.paymasterAndData.len() >= 52 {
        unpack_u128s(B256::from_slice(&op.paymasterAndData[20..52]))
    } else {
        (0, 0)
    };
    GasLimits {
        verification,
        call,
        pre_verification: op.preVerificationGas.saturating_to(),
        paymaster_verification,
        paymaster_post_op,
    }
}

/// Reads the fees written in `op`.
pub fn fees(op: &UserOp) -> Fees {
    let (max_priority_fee_per_gas, max_fee_per_gas) = unpack_u128s(op.gasFees);
    Fees { max_fee_per_gas, max_priority_fee_per_gas }
}

/// Writes limits into `op` (invalidating any signature). Paymaster limits are written only
/// when `op` has a paymaster.
pub fn set_gas_limits(op: &mut UserOp, limits: GasLimits) {
    op.accountGasLimits = pack_u128s(limits.verification, limits.call);
    op.preVerificationGas = U256::from(limits.pre_verification);
    if op.paymasterAndData.len() >= 52 {
        let mut pmd = op.paymasterAndData.to_vec();
        pmd[20..52]
            .copy_from_slice(pack_u128s(limits.paymaster_verification, limits.paymaster_post_op).as_slice());
        op.paymasterAndData = pmd.into();
    }
}

/// Writes fees into `op` (invalidating any signature).
pub fn set_fees(op: &mut UserOp, fees: Fees) {
    op.gasFees = pack_u128s(fees.max_priority_fee_per_gas, fees.max_fee_per_gas);
}

/// Whether `init_code` is EntryPoint v0.8's EIP-7702 marker: at least 2 bytes, and its first
/// 20 bytes (zero-padded) equal [`EIP7702_MARKER`] (EntryPoint `Eip7702Support`).
pub fn is_eip7702_init_code(init_code: &[u8]) -> bool {
    if init_code.len() < 2 {
        return false;
    }
    let mut head = [0u8; 20];
    let n = init_code.len().min(20);
    head[..n].copy_from_slice(&init_code[..n]);
    head == EIP7702_MARKER.0.0
}

/// Formats a [`UserOp`] for `Debug` output (the generated binding type has no `Debug`).
pub struct OpDebug<'a>(pub &'a UserOp);

impl std::fmt::Debug for OpDebug<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.0;
        f.debug_struct("PackedUserOperation")
            .field("sender", &op.sender)
            .field("nonce", &op.nonce)
            .field("initCode", &op.initCode)
            .field("callData", &op.callData)
            .field("accountGasLimits", &op.accountGasLimits)
            .field("preVerificationGas", &op.preVerificationGas)
            .field("gasFees", &op.gasFees)
            .field("paymasterAndData", &op.paymasterAndData)
            .field("signature", &op.signature)
            .finish()
    }
}

/// Builds a [`UserOp`].
///
/// ```
/// use alloy::primitives::{Address, U256};
/// use sak_userop::{Call, GasLimits, UserOpBuilder, execute_batch};
/// let op = UserOpBuilder::new(Address::repeat_byte(1))
///     .nonce(U256::from(7))
///     .call_data(execute_batch(&[Call::new(Address::repeat_byte(2), U256::ZERO, vec![])]))
///     .gas(GasLimits { verification: 100_000, call: 50_000, pre_verification: 48_000, ..Default::default() })
///     .build();
/// assert_eq!(sak_userop::gas_limits(&op).call, 50_000);
/// ```
#[derive(Clone)]
pub struct UserOpBuilder {
    op: UserOp,
    paymaster: Option<Paymaster>,
    limits: GasLimits,
}

impl std::fmt::Debug for UserOpBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserOpBuilder")
            .field("op", &OpDebug(&self.op))
            .field("paymaster", &self.paymaster)
            .field("limits", &self.limits)
            .finish()
    }
}

impl UserOpBuilder {
    /// An operation from `sender` with nonce 0 and everything else empty.
    pub fn new(sender: Address) -> Self {
        Self {
            op: UserOp {
                sender,
                nonce: U256::ZERO,
                initCode: Bytes::new(),
                callData: Bytes::new(),
                accountGasLimits: B256::ZERO,
                preVerificationGas: U256::ZERO,
                gasFees: B256::ZERO,
                paymasterAndData: Bytes::new(),
                signature: Bytes::new(),
            },
            paymaster: None,
            limits: GasLimits::default(),
        }
    }

    /// The full 256-bit nonce (`key << 64 | sequence`).
    pub fn nonce(mut self, nonce: U256) -> Self {
        self.op.nonce = nonce;
        self
    }

    /// Deploys the account with `factory.call(data)` (`initCode = factory ‖ data`).
    pub fn factory(mut self, factory: Address, data: impl Into<Bytes>) -> Self {
        self.op.initCode = [factory.as_slice(), &data.into()].concat().into();
        self
    }

    /// Marks the sender as an EIP-7702 delegated EOA: `initCode` = [`EIP7702_MARKER`] (then
    /// the EntryPoint hashes the delegate address into the operation hash).
    pub fn eip7702(mut self) -> Self {
        self.op.initCode = EIP7702_MARKER.to_vec().into();
        self
    }

    /// Raw `initCode`.
    pub fn init_code(mut self, init_code: impl Into<Bytes>) -> Self {
        self.op.initCode = init_code.into();
        self
    }

    /// `callData` (for a sak account, see [`crate::execute_batch`]).
    pub fn call_data(mut self, call_data: impl Into<Bytes>) -> Self {
        self.op.callData = call_data.into();
        self
    }

    /// Gas limits.
    pub const fn gas(mut self, limits: GasLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Fees.
    pub fn fees(mut self, fees: Fees) -> Self {
        set_fees(&mut self.op, fees);
        self
    }

    /// A paymaster (its gas limits are taken from here, overriding [`Self::gas`]'s).
    pub fn paymaster(mut self, paymaster: Paymaster) -> Self {
        self.paymaster = Some(paymaster);
        self
    }

    /// A signature (usually set later, over the hash of the finished operation).
    pub fn signature(mut self, signature: impl Into<Bytes>) -> Self {
        self.op.signature = signature.into();
        self
    }

    /// The operation.
    pub fn build(self) -> UserOp {
        let mut op = self.op;
        let mut limits = self.limits;
        if let Some(pm) = self.paymaster {
            limits.paymaster_verification = pm.verification_gas;
            limits.paymaster_post_op = pm.post_op_gas;
            op.paymasterAndData = [pm.address.as_slice(), &[0u8; 32], &pm.data].concat().into();
        }
        set_gas_limits(&mut op, limits);
        op
    }
}

/// The unpacked user operation of ERC-7769 JSON-RPC (EntryPoint v0.7/v0.8 form): camelCase
/// names, quantities as hex strings. [`TryFrom<&UserOp>`] and [`From<&RpcUserOperation>`]
/// convert without loss (the packed form also has shapes ERC-7769 cannot express, which
/// `try_from` refuses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcUserOperation {
    /// The account.
    pub sender: Address,
    /// `key << 64 | sequence`.
    pub nonce: U256,
    /// Factory, or [`EIP7702_MARKER`] for a delegated EOA (also read from the short
    /// `"0x7702"` some bundlers use).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "factory")]
    pub factory: Option<Address>,
    /// Data for the factory (absent without a factory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory_data: Option<Bytes>,
    /// The account's call data.
    pub call_data: Bytes,
    /// `callGasLimit`.
    #[serde(with = "quantity")]
    pub call_gas_limit: u128,
    /// `verificationGasLimit`.
    #[serde(with = "quantity")]
    pub verification_gas_limit: u128,
    /// `preVerificationGas` (256 bits on chain).
    pub pre_verification_gas: U256,
    /// `maxFeePerGas`.
    #[serde(with = "quantity")]
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`.
    #[serde(with = "quantity")]
    pub max_priority_fee_per_gas: u128,
    /// Paymaster, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster: Option<Address>,
    /// Paymaster validation gas (with a paymaster).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_quantity")]
    pub paymaster_verification_gas_limit: Option<u128>,
    /// Paymaster `postOp` gas (with a paymaster).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_quantity")]
    pub paymaster_post_op_gas_limit: Option<u128>,
    /// Paymaster data (with a paymaster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster_data: Option<Bytes>,
    /// The account's signature.
    pub signature: Bytes,
    /// An EIP-7702 authorization for the bundler to include in the bundle transaction (a
    /// sender that is not delegated yet). Not part of the packed operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip7702_auth: Option<SignedAuthorization>,
}

impl TryFrom<&UserOp> for RpcUserOperation {
    type Error = Error;

    fn try_from(op: &UserOp) -> Result<Self> {
        let (factory, factory_data) = match op.initCode.len() {
            0 => (None, None),
            n if n >= 20 => (
                Some(Address::from_slice(&op.initCode[..20])),
                Some(Bytes::copy_from_slice(&op.initCode[20..])),
            ),
            n => {
                return Err(Error::Malformed(format!(
                    "initCode of {n} bytes has no ERC-7769 factory (use the 20-byte 0x7702 marker)"
                )));
            }
        };
        let pmd = &op.paymasterAndData;
        let (paymaster, pvgl, ppogl, pdata) = match pmd.len() {
            0 => (None, None, None, None),
            n if n >= 52 => {
                let (v, p) = unpack_u128s(B256::from_slice(&pmd[20..52]));
                (
                    Some(Address::from_slice(&pmd[..20])),
                    Some(v),
                    Some(p),
                    Some(Bytes::copy_from_slice(&pmd[52..])),
                )
            }
            n => {
                return Err(Error::Malformed(format!(
                    "paymasterAndData of {n} bytes is neither empty nor paymaster ‖ limits ‖ data"
                )));
            }
        };
        let (verification_gas_limit, call_gas_limit) = unpack_u128s(op.accountGasLimits);
        let (max_priority_fee_per_gas, max_fee_per_gas) = unpack_u128s(op.gasFees);
        Ok(Self {
            sender: op.sender,
            nonce: op.nonce,
            factory,
            factory_data,
            call_data: op.callData.clone(),
            call_gas_limit,
            verification_gas_limit,
            pre_verification_gas: op.preVerificationGas,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            paymaster,
            paymaster_verification_gas_limit: pvgl,
            paymaster_post_op_gas_limit: ppogl,
            paymaster_data: pdata,
            signature: op.signature.clone(),
            eip7702_auth: None,
        })
    }
}

impl From<&RpcUserOperation> for UserOp {
    fn from(op: &RpcUserOperation) -> Self {
        let init_code: Bytes = match op.factory {
            Some(factory) => {
                [factory.as_slice(), op.factory_data.as_ref().map_or(&[][..], |d| &d[..])].concat().into()
            }
            None => Bytes::new(),
        };
        let paymaster_and_data: Bytes = match op.paymaster {
            Some(pm) => [
                pm.as_slice(),
                pack_u128s(
                    op.paymaster_verification_gas_limit.unwrap_or_default(),
                    op.paymaster_post_op_gas_limit.unwrap_or_default(),
                )
                .as_slice(),
                op.paymaster_data.as_ref().map_or(&[][..], |d| &d[..]),
            ]
            .concat()
            .into(),
            None => Bytes::new(),
        };
        Self {
            sender: op.sender,
            nonce: op.nonce,
            initCode: init_code,
            callData: op.call_data.clone(),
            accountGasLimits: pack_u128s(op.verification_gas_limit, op.call_gas_limit),
            preVerificationGas: op.pre_verification_gas,
            gasFees: pack_u128s(op.max_priority_fee_per_gas, op.max_fee_per_gas),
            paymasterAndData: paymaster_and_data,
            signature: op.signature.clone(),
        }
    }
}

/// Hex quantities (`"0x1a"`) for `u128`.
pub(crate) mod quantity {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    pub(crate) fn parse(s: &str) -> Result<u128, String> {
        let hex = s.strip_prefix("0x").ok_or_else(|| format!("quantity {s:?} is not 0x-prefixed"))?;
        if hex.is_empty() {
            return Err("empty quantity".into());
        }
        u128::from_str_radix(hex, 16).map_err(|e| format!("quantity {s:?}: {e}"))
    }
}

mod opt_quantity {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{v:#x}")),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::quantity::parse(&s).map_err(D::Error::custom))
            .transpose()
    }
}

mod factory {
    use super::EIP7702_MARKER;
    use alloy::primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.eq_ignore_ascii_case("0x7702") => Ok(Some(EIP7702_MARKER)),
            Some(s) => s.parse().map(Some).map_err(D::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolValue;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    #[derive(Clone)]
    struct AnyOp(UserOp);

    impl std::fmt::Debug for AnyOp {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            OpDebug(&self.0).fmt(f)
        }
    }

    prop_compose! {
        fn any_op()(
            sender in any::<[u8; 20]>(),
            nonce in any::<[u8; 32]>(),
            factory in proptest::option::of((any::<[u8; 20]>(), bytes(80))),
            call_data in bytes(200),
            limits in any::<[u8; 32]>(),
            pvg in any::<[u8; 32]>(),
            fees in any::<[u8; 32]>(),
            paymaster in proptest::option::of((any::<[u8; 52]>(), bytes(40))),
            signature in bytes(100),
        ) -> AnyOp {
            AnyOp(UserOp {
                sender: Address::from(sender),
                nonce: U256::from_be_bytes(nonce),
                initCode: factory.map(|(f, d)| [&f[..], &d].concat().into()).unwrap_or_default(),
                callData: call_data,
                accountGasLimits: B256::from(limits),
                preVerificationGas: U256::from_be_bytes(pvg),
                gasFees: B256::from(fees),
                paymasterAndData: paymaster.map(|(p, d)| [&p[..], &d].concat().into()).unwrap_or_default(),
                signature,
            })
        }
    }

    proptest! {
        #[test]
        fn packed_to_rpc_to_json_and_back_is_lossless(AnyOp(op) in any_op()) {
            let rpc = RpcUserOperation::try_from(&op).unwrap();
            let json = serde_json::to_string(&rpc).unwrap();
            let back: RpcUserOperation = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &rpc);
            prop_assert_eq!(UserOp::from(&back).abi_encode(), op.abi_encode());
        }
    }

    #[test]
    fn json_is_camel_case_with_hex_quantities() {
        let op = UserOpBuilder::new(Address::repeat_byte(1))
            .nonce(U256::from(1) << 64)
            .eip7702()
            .gas(GasLimits { verification: 0x10, call: 0x20, pre_verification: 0x30, ..Default::default() })
            .fees(Fees { max_fee_per_gas: 7, max_priority_fee_per_gas: 1 })
            .build();
        let json = serde_json::to_value(RpcUserOperation::try_from(&op).unwrap()).unwrap();
        assert_eq!(json["nonce"], "0x10000000000000000");
        assert_eq!(json["callGasLimit"], "0x20");
        assert_eq!(json["verificationGasLimit"], "0x10");
        assert_eq!(json["preVerificationGas"], "0x30");
        assert_eq!(json["maxFeePerGas"], "0x7");
        assert_eq!(json["factory"], "0x7702000000000000000000000000000000000000");
        assert_eq!(json["factoryData"], "0x");
        assert!(json.get("paymaster").is_none());
        let mut short = json;
        short["factory"] = "0x7702".into();
        let short: RpcUserOperation = serde_json::from_value(short).unwrap();
        assert_eq!(short.factory, Some(EIP7702_MARKER));
    }

    #[test]
    fn refuses_shapes_erc7769_cannot_express() {
        let mut op = UserOpBuilder::new(Address::ZERO).build();
        op.initCode = vec![0x77, 0x02].into();
        assert!(RpcUserOperation::try_from(&op).is_err());
        op.initCode = Bytes::new();
        op.paymasterAndData = vec![1; 30].into();
        assert!(RpcUserOperation::try_from(&op).is_err());
    }

    #[test]
    fn eip7702_marker_rule_follows_the_entry_point() {
        assert!(is_eip7702_init_code(&[0x77, 0x02]));
        assert!(is_eip7702_init_code(EIP7702_MARKER.as_slice()));
        assert!(is_eip7702_init_code(&[EIP7702_MARKER.as_slice(), &[1, 2, 3]].concat()));
        assert!(!is_eip7702_init_code(&[0x77]));
        assert!(!is_eip7702_init_code(&[0x77, 0x02, 1]));
        assert!(!is_eip7702_init_code(Address::repeat_byte(0x77).as_slice()));
    }
}
