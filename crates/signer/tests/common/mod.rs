//! Builders shared by the ledger tests.
#![allow(dead_code, unreachable_pub)]

use alloy::primitives::{Address, B256, Bytes, U256};
use sak_signer::ledger::{Ceiling, Intent, Outcome, SignedOp, Spend};

pub const CHAIN: u64 = 31337;
pub const TOKEN: Address = Address::repeat_byte(0x11);
pub const OTHER_TOKEN: Address = Address::repeat_byte(0x22);
pub const ACCOUNT: Address = Address::repeat_byte(0xaa);
pub const SESSION: B256 = B256::repeat_byte(0x01);

pub fn intent(amount: u64, lane: u64) -> Intent {
    intent_u256(TOKEN, 0, U256::from(amount), lane)
}

pub fn intent_u256(token: Address, window: u64, amount: U256, lane: u64) -> Intent {
    Intent {
        chain_id: CHAIN,
        account: ACCOUNT,
        session_id: SESSION,
        nonce_key: U256::from(lane),
        nonce_seq: None,
        spends: vec![Spend { token, window, amount }],
        gas_cost_cap: U256::from(10u64.pow(15)),
        created_at: 1_700_000_000,
    }
}

pub fn ceiling(max: u64) -> Vec<Ceiling> {
    vec![Ceiling { token: TOKEN, window: 0, max_pending: U256::from(max), as_of: None }]
}

/// Deterministic "signed op" bytes for lane/seq, so a parent process knows what a child wrote.
pub fn signed_op(lane: u64, seq: u64) -> SignedOp {
    // Distinct for every (lane, seq): the ledger keeps one intent per signed operation.
    let mut bytes = Vec::with_capacity(316);
    bytes.extend_from_slice(&lane.to_be_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    for i in 0..300u64 {
        bytes.push((i.wrapping_mul(31) ^ lane.wrapping_mul(7) ^ seq) as u8);
    }
    SignedOp {
        user_op_hash: alloy::primitives::keccak256(&bytes),
        nonce_key: U256::from(lane),
        nonce_seq: seq,
        op_bytes: Bytes::from(bytes),
    }
}

pub fn pending<L: sak_signer::ledger::Ledger + ?Sized>(ledger: &L) -> U256 {
    ledger.pending_total(CHAIN, ACCOUNT, SESSION, TOKEN, 0).unwrap()
}

/// `op` landed, successfully, in `block`.
pub fn landed_at(block: u64, op: &SignedOp) -> Outcome {
    Outcome::Included {
        user_op_hash: op.user_op_hash,
        success: true,
        actual_gas_cost: U256::from(1),
        tx_hash: B256::repeat_byte(7),
        block,
    }
}
