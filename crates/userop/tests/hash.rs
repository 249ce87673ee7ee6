//! The locally computed v0.8 user operation hash equals `EntryPoint.getUserOpHash` on anvil
//! and viem's `getUserOperationHash` (entryPointVersion "0.8", the pinned viem in
//! `tools/node`) for random operations, including EIP-7702 ones (initCode with the 0x7702
//! marker: the hash covers the sender's delegate).

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use sak_contracts::IEntryPoint;
use sak_testkit::{Kit, Profile};
use sak_userop::{EIP7702_MARKER, OpDebug, RpcUserOperation, UserOp, UserOpHasher};
use std::{io::Write, path::Path, process::Command};

/// An EOA whose code the test sets to a delegation, and its delegate.
const DELEGATED: Address = Address::repeat_byte(0x77);
const DELEGATE: Address = Address::repeat_byte(0xde);

#[derive(Clone)]
struct Case(UserOp);

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        OpDebug(&self.0).fmt(f)
    }
}

impl Case {
    fn delegate(&self) -> Option<Address> {
        sak_userop::is_eip7702_init_code(&self.0.initCode).then_some(DELEGATE)
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Random operations of every shape ERC-7769 can express: with or without factory, with or
/// without paymaster, and a third of them EIP-7702 (marker initCode, sometimes with data).
fn any_case() -> impl Strategy<Value = Case> {
    (
        any::<[u8; 20]>(),
        any::<[u8; 32]>(),
        prop_oneof![Just(None), (any::<[u8; 20]>(), bytes(100)).prop_map(Some),],
        prop_oneof![2 => Just(false), 1 => Just(true)],
        bytes(40),
        bytes(300),
        (any::<u128>(), any::<u128>(), any::<u128>(), any::<u128>(), any::<[u8; 32]>()),
        proptest::option::of((any::<[u8; 52]>(), bytes(40))),
        bytes(100),
    )
        .prop_map(|(sender, nonce, factory, eip7702, data7702, call_data, gas, paymaster, signature)| {
            let (vgl, cgl, prio, max, pvg) = gas;
            let (sender, init_code) = if eip7702 {
                (DELEGATED, [EIP7702_MARKER.as_slice(), &data7702].concat().into())
            } else {
                (
                    Address::from(sender),
                    factory.map(|(f, d)| Bytes::from([&f[..], &d].concat())).unwrap_or_default(),
                )
            };
            Case(UserOp {
                sender,
                nonce: U256::from_be_bytes(nonce),
                initCode: init_code,
                callData: call_data,
                accountGasLimits: sak_userop::pack_u128s(vgl, cgl),
                preVerificationGas: U256::from_be_bytes(pvg),
                gasFees: sak_userop::pack_u128s(prio, max),
                paymasterAndData: paymaster
                    .map(|(p, d)| Bytes::from([&p[..], &d].concat()))
                    .unwrap_or_default(),
                signature,
            })
        })
}

fn cases(n: usize, seed: u8) -> Vec<Case> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &[seed; 32]),
    );
    let strategy = any_case();
    (0..n).map(|_| strategy.new_tree(&mut runner).expect("a value").current()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_hash_equals_entry_point_get_user_op_hash() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let provider = kit.provider();
    let ep = IEntryPoint::new(kit.deployment().entry_point, provider);
    let designator: Bytes = [&[0xef, 0x01, 0x00][..], DELEGATE.as_slice()].concat().into();
    let _: () = provider.raw_request("anvil_setCode".into(), (DELEGATED, designator)).await.unwrap();
    let hasher = UserOpHasher::new(kit.deployment().entry_point, kit.chain_id());

    // Proptest with the chain as the oracle: one anvil, a few dozen cases.
    let mut runner = TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() });
    let sevens = std::cell::Cell::new(0);
    let result = runner.run(&any_case(), |case| {
        let local = hasher.hash(&case.0, case.delegate()).unwrap();
        let chain = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async { ep.getUserOpHash(case.0.clone()).call().await })
        })
        .unwrap();
        if case.delegate().is_some() {
            sevens.set(sevens.get() + 1);
        }
        prop_assert_eq!(local, chain);
        Ok(())
    });
    result.unwrap();
    assert!(sevens.get() > 0, "EIP-7702 cases were generated");

    // Explicitly: a 7702 op with the bare marker, and one with init data after it.
    for init in [EIP7702_MARKER.to_vec(), [EIP7702_MARKER.as_slice(), &[1, 2, 3]].concat()] {
        let mut op = cases(1, 1).remove(0).0;
        op.sender = DELEGATED;
        op.initCode = init.into();
        assert_eq!(
            hasher.hash(&op, Some(DELEGATE)).unwrap(),
            ep.getUserOpHash(op.clone()).call().await.unwrap()
        );
        assert!(hasher.hash(&op, None).is_err(), "a 7702 op cannot be hashed without its delegate");
        assert_ne!(
            hasher.hash(&op, Some(Address::repeat_byte(1))).unwrap(),
            ep.getUserOpHash(op).call().await.unwrap()
        );
    }
    // Another chain id gives another hash.
    let op = cases(1, 2).remove(0).0;
    let other = UserOpHasher::new(kit.deployment().entry_point, kit.chain_id() + 1);
    assert_ne!(other.hash(&op, Some(DELEGATE)).unwrap(), ep.getUserOpHash(op).call().await.unwrap());
}

#[test]
fn local_hash_equals_viem_get_user_operation_hash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/node");
    assert!(
        dir.join("node_modules/viem").is_dir(),
        "viem is not installed in tools/node\nhint: run `npm ci` in tools/node (`make toolchain` does it)"
    );
    let entry_point = sak_contracts::ENTRY_POINT_V08;
    let chain_id = 31_337u64;
    let hasher = UserOpHasher::new(entry_point, chain_id);
    let cases = cases(64, 7);
    assert!(cases.iter().any(|c| c.delegate().is_some()), "EIP-7702 cases were generated");
    let ops: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(RpcUserOperation::try_from(&c.0).unwrap()).unwrap();
            if let Some(d) = c.delegate() {
                v["delegate"] = d.to_string().into();
            }
            v
        })
        .collect();
    let input = serde_json::json!({ "chainId": chain_id, "entryPoint": entry_point, "ops": ops });
    let node = std::env::var_os(sak_testkit::NODE_ENV).unwrap_or_else(|| "node".into());
    let mut child = Command::new(node)
        .arg("userop-hash.mjs")
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node script failed");
    let viem: Vec<B256> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(viem.len(), cases.len());
    for (case, expected) in cases.iter().zip(viem) {
        assert_eq!(hasher.hash(&case.0, case.delegate()).unwrap(), expected, "{case:?}");
    }
}
