//! `SigningCore::sign_batch`: operations in a batch count against each other like consecutive
//! operations on chain, and against what the ledger already holds in flight; one ledger
//! transaction reserves them all, another persists the signed bytes.

use alloy::primitives::{Address, U256};
use sak_contracts::{ENTRY_POINT_V08, MockERC20};
use sak_policy::{Call, Context, Refusal, Session, encode_execute};
use sak_primitives::{Gas, Policy, SpendLimit};
use sak_signer::{
    Error,
    guard::{Binding, Preflight, SigningCore},
    keystore::LocalKey,
    ledger::{IntentState, Ledger, SqliteLedger},
};
use sak_userop::{Fees, GasLimits, Lane, UserOpBuilder};
use std::sync::Arc;

const CLOCK: u64 = 1_800_000_000;

#[test]
fn a_batch_is_capped_as_a_whole_and_recorded_signed() {
    let key = LocalKey::generate().unwrap();
    let token = Address::repeat_byte(0x70);
    let account = Address::repeat_byte(0xac);
    let policy = Policy {
        valid_after: CLOCK - 10,
        valid_until: CLOCK + 86_400,
        permissions: vec![],
        spend_limits: vec![SpendLimit {
            token,
            allowance: U256::from(1_000),
            period: 86_400,
            transfer: true,
        }],
        gas: Gas::Unlimited,
        max_fee_per_gas: 0,
        max_pre_verification_gas: 0,
        max_ops: 0,
        paymaster: None,
    };
    let session = Session::new(1, key.address(), policy);
    let binding = Binding {
        chain_id: 31_337,
        context: Context::account(account, ENTRY_POINT_V08),
        session_id: 1,
        lane_key: sak_userop::session_nonce_key(1, 1),
        init_code: Default::default(),
        delegate: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SqliteLedger::open(&dir.path().join("ledger.db")).unwrap());
    let core = SigningCore::new(key, &session, binding, ENTRY_POINT_V08, ledger.clone()).unwrap();
    let lane = Lane::new(account, sak_userop::session_nonce_key(1, 1));
    let op = |seq: u64, amount: u64| {
        let calls = vec![Call::contract(
            token,
            &MockERC20::transferCall { to: Address::repeat_byte(0xb0), value: U256::from(amount) },
        )];
        let op = UserOpBuilder::new(account)
            .nonce(lane.nonce(seq))
            .call_data(encode_execute(&calls))
            .gas(GasLimits {
                verification: 100_000,
                call: 50_000,
                pre_verification: 50_000,
                ..Default::default()
            })
            .fees(Fees { max_fee_per_gas: 1, max_priority_fee_per_gas: 1 })
            .build();
        (op, calls, seq)
    };

    // One operation already in flight (reserved and signed, not on chain yet).
    let (first, calls, seq) = op(0, 200);
    core.sign(&session, None, first, &calls, CLOCK, seq, Preflight::Check).unwrap();

    // 300 + 300 fit beside it (800); the third 300 does not (200 remain); the 100 after it fits.
    // (A batch decides each operation after the ones before it; one the ledger then refuses
    // still counts for the later ones: conservative, never more than the cap.)
    let results = core
        .sign_batch(&session, vec![op(1, 300), op(2, 300), op(3, 300), op(4, 100)], CLOCK, Preflight::Check)
        .unwrap();
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    match &results[2] {
        Err(Error::Refused(Refusal::SpendCapExceeded { requested, remaining, .. })) => {
            assert_eq!((*requested, *remaining), (U256::from(300), U256::from(200)));
        }
        other => panic!("expected SpendCapExceeded, got {other:?}"),
    }
    let pending = ledger.unresolved().unwrap();
    assert_eq!(pending.len(), 4, "the one before and three of the batch");
    assert!(pending.iter().all(|r| r.state == IntentState::Signed && r.signed.is_some()));
    let total: U256 = pending.iter().flat_map(|r| r.intent.spends.iter().map(|s| s.amount)).sum();
    assert_eq!(total, U256::from(900));
    // Each persisted op is the one returned, byte for byte.
    for (r, signed) in pending[1..].iter().zip(results.iter().filter_map(|r| r.as_ref().ok())) {
        assert_eq!(r.signed.as_ref().unwrap().user_op_hash, signed.user_op_hash);
    }
}
