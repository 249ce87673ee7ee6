//! Unit tests of the plans and cases, without a fork.

use super::*;
use sak_primitives::{Gas, Permission, SpendLimit};

fn policy(limits: Vec<SpendLimit>, permissions: Vec<Permission>) -> Policy {
    Policy {
        valid_after: 1_000,
        valid_until: 100_000,
        permissions,
        spend_limits: limits,
        gas: Gas::Unlimited,
        max_fee_per_gas: 0,
        max_pre_verification_gas: 0,
        max_ops: 0,
        paymaster: None,
    }
}

fn limit(token: Address, transfer: bool) -> SpendLimit {
    SpendLimit { token, allowance: U256::from(1_000), period: 86_400, transfer }
}

#[test]
fn the_wrong_selector_is_one_the_policy_does_not_permit_on_that_target() {
    let token = Address::repeat_byte(0x11);
    let account = Address::repeat_byte(0xaa);
    let other = Address::repeat_byte(0xbb);
    let p = policy(vec![limit(token, true)], vec![]);
    let (call, name) = wrong_selector_call(&p, token, account, other).unwrap();
    assert_eq!(name, "transferFrom");
    assert_eq!(call.data.len(), 4 + 3 * 32);
    assert!(!permits(&p, token, call.data[..4].try_into().unwrap()));
    // A policy that somehow permits transferFrom there gets the next function.
    let transfer_from: [u8; 4] = keccak256(b"transferFrom(address,address,uint256)")[..4].try_into().unwrap();
    let p = policy(
        vec![limit(token, true)],
        vec![Permission {
            target: token,
            selector: transfer_from.into(),
            allow_value: false,
            conditions: vec![],
        }],
    );
    let (call, name) = wrong_selector_call(&p, token, account, other).unwrap();
    assert_eq!(name, "removeLiquidity");
    assert_eq!(call.data.len(), 4 + 7 * 32);
}

#[test]
fn permits_reads_the_spend_limits_token_functions() {
    let token = Address::repeat_byte(0x11);
    let p = policy(vec![limit(token, false)], vec![]);
    assert!(permits(&p, token, TRANSFER.0), "a capped token may always move into the adapter");
    assert!(!permits(&p, token, sak_primitives::APPROVE.0), "sessions never approve");
    assert!(!permits(&p, Address::repeat_byte(0x22), TRANSFER.0));
}

#[test]
fn the_allowed_operation_is_one_the_policy_admits() {
    let (token, account) = (Address::repeat_byte(0x11), Address::repeat_byte(0xaa));
    let facts = OnForkStatic {
        id: 1,
        signer: Address::repeat_byte(0x55),
        account,
        entry_point: Address::repeat_byte(0xee),
    };
    let recipient = fresh(account, 1, "recipient");
    let candidates = [Plan::Transfer { token, recipient }];
    // A transfer to anyone is admitted; without `transfer` the token only funds adapter
    // calls, and with no call permitted there is no operation to build.
    let p = policy(vec![limit(token, true)], vec![]);
    assert!(matches!(admitted(&candidates, &p, &facts, 2_000), Some(Plan::Transfer { .. })));
    assert!(admitted(&candidates, &policy(vec![limit(token, false)], vec![]), &facts, 2_000).is_none());
    // Outside the window nothing is admitted.
    assert!(admitted(&candidates, &p, &facts, 200_000).is_none());
    // Nothing capped: nothing to do.
    assert!(admitted(&candidates, &policy(vec![], vec![]), &facts, 2_000).is_none());
}

#[test]
fn the_next_period_starts_at_the_next_multiple_of_the_period_after_the_start() {
    assert_eq!(next_period(1_000, 60, 1_000), 1_060);
    assert_eq!(next_period(1_000, 60, 1_059), 1_060);
    assert_eq!(next_period(1_000, 60, 1_060), 1_120);
    assert_eq!(next_period(1_000, 86_400, 90_000), 1_000 + 2 * 86_400);
}

#[test]
fn a_router_gets_a_router_function_as_its_wrong_selector() {
    let router = Address::repeat_byte(0x77);
    let p = policy(vec![], vec![]);
    let (_, name) = wrong_selector_call(&p, router, Address::ZERO, Address::ZERO).unwrap();
    assert_eq!(name, "removeLiquidity");
}

#[test]
fn fresh_addresses_differ_by_purpose_and_are_stable() {
    let a = Address::repeat_byte(0xaa);
    assert_eq!(fresh(a, 1, "target"), fresh(a, 1, "target"));
    assert_ne!(fresh(a, 1, "target"), fresh(a, 1, "recipient"));
    assert_ne!(fresh(a, 1, "target"), fresh(a, 2, "target"));
}
