//! Differential test of the off-chain evaluator against the contracts (SECURITY #53): random
//! session operations are decided by `sak_policy::Session::authorize` and by the account's own
//! `validateUserOp` on anvil (called as the EntryPoint, the on-chain checks alone), and must
//! agree on accept/reject, on the exact revert data, on the validity window and on every spend,
//! gas and operation counter afterwards. Zero "Rust accepts, chain refuses" cases, and none the other way.

use alloy::{
    primitives::{Address, B256, Bytes, I256, U256, address},
    providers::{PendingTransactionBuilder, Provider},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use sak_contracts::{ENTRY_POINT_V08, IUniswapV2Router02, MockERC20, SakAccount, SakAddresses};
use sak_policy::{Call, Context, Operation, Session, calldata::through_adapter, encode_execute};
use sak_primitives::{
    ArgType, Condition, Gas, NATIVE, Op, PERMIT2, Permission, Policy, Selector, SpendLimit,
};
use sak_testkit::{Kit, Profile};

const ALICE: Address = address!("0x00000000000000000000000000000000000a1ec0");
const BOB: Address = address!("0x0000000000000000000000000000000000000b0b");
const PAYMASTER: Address = address!("0x00000000000000000000000000000000000fee01");
const PING: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
const DAY: u64 = 86_400;

/// What a generated call does, before the fixture's addresses are filled in. `via`: made
/// through the account's adapter (the permitted shape) rather than by the account itself.
#[derive(Clone, Debug)]
enum CallSpec {
    Transfer {
        token: usize,
        amount: u64,
        to_adapter: bool,
    },
    Approve {
        token: usize,
        amount: u64,
    },
    Swap {
        to_account: bool,
        amount: u64,
        value: u64,
        via: bool,
    },
    EthSend {
        to_alice: bool,
        value: u64,
        data: Vec<u8>,
        via: bool,
    },
    /// `a`: an int16 word (sign-extended or not); `b`: a uint8 word (clean or with a high bit).
    Ping {
        a: U256,
        b: U256,
        short: bool,
        via: bool,
    },
    Raw {
        target: usize,
        selector: [u8; 4],
        via: bool,
    },
}

#[derive(Clone, Debug)]
struct OpSpec {
    calls: Vec<CallSpec>,
    /// Seconds from the previous operation's clock: mostly forward, sometimes back (stale
    /// periods), sometimes far (past the session's end).
    clock_step: i64,
    /// `maxFeePerGas` (wei) and `preVerificationGas`, the op's only gas: its prefund is their
    /// product. Fees on both sides of the session's cap.
    fee: u64,
    pvg: u64,
    paymaster: Option<bool>,
}

fn call_spec() -> impl Strategy<Value = CallSpec> {
    // Mostly calls the policy admits, so that accepted operations move the counters; every
    // refusal path still comes up.
    let token = || prop_oneof![6 => Just(0usize), 2 => Just(1), 1 => Just(2)];
    let eth_data = prop_oneof![8 => Just(vec![]), 1 => proptest::collection::vec(any::<u8>(), 1..6)];
    let via = || proptest::bool::weighted(0.9);
    prop_oneof![
        5 => (token(), 0..400u64, proptest::bool::weighted(0.5))
            .prop_map(|(token, amount, to_adapter)| CallSpec::Transfer { token, amount, to_adapter }),
        1 => (token(), 0..300u64).prop_map(|(token, amount)| CallSpec::Approve { token, amount }),
        2 => (proptest::bool::weighted(0.85), 0..500u64, prop_oneof![6 => Just(0u64), 1 => 1..10u64], via())
            .prop_map(|(to_account, amount, value, via)| CallSpec::Swap { to_account, amount, value, via }),
        3 => (proptest::bool::weighted(0.85), 0..300_000u64, eth_data, via())
            .prop_map(|(to_alice, value, data, via)| CallSpec::EthSend { to_alice, value, data, via }),
        2 => (ping_int16(), ping_uint8(), proptest::bool::weighted(0.05), via())
            .prop_map(|(a, b, short, via)| CallSpec::Ping { a, b, short, via }),
        1 => (0..7usize, any::<[u8; 4]>(), via())
            .prop_map(|(target, selector, via)| CallSpec::Raw { target, selector, via }),
    ]
}

/// Words for an `int16` argument: canonical values around the bounds -100 and 100, and words
/// that are not sign-extended (a masking decoder would read them as something else).
fn ping_int16() -> impl Strategy<Value = U256> {
    prop_oneof![
        6 => (-130i64..130).prop_map(|x| I256::try_from(x).unwrap().into_raw()),
        1 => (0u64..0x1_0000).prop_map(U256::from),
        1 => (1u64..u64::MAX, 0u64..0x1_0000)
            .prop_map(|(high, low)| ((U256::MAX ^ (U256::from(high) << 16)) >> 16 << 16) | U256::from(low)),
    ]
}

/// Words for a `uint8` argument: 0..4 clean, or with bit 8 set (a masking decoder reads 0..4).
fn ping_uint8() -> impl Strategy<Value = U256> {
    (0u64..4, proptest::bool::weighted(0.1)).prop_map(|(b, dirty)| U256::from(b | (u64::from(dirty) << 8)))
}

/// The session's `max_fee_per_gas` (wei) and `max_pre_verification_gas`.
const FEE_CAP: u64 = 5_000;
const PVG_CAP: u64 = 1_500_000;

fn op_spec() -> impl Strategy<Value = OpSpec> {
    (
        prop_oneof![1 => Just(vec![]), 15 => proptest::collection::vec(call_spec(), 1..3)],
        prop_oneof![2 => -7_200..0i64, 16 => 0..7_200i64, 3 => 0..(DAY as i64), 1 => (DAY as i64)..(4 * DAY as i64)],
        prop_oneof![2 => Just((0u64, 0u64)), 2 => (prop_oneof![4 => 1..=FEE_CAP, 1 => FEE_CAP + 1..4 * FEE_CAP], 0..2 * PVG_CAP)],
        prop_oneof![8 => Just(None), 1 => any::<bool>().prop_map(Some)],
    )
        .prop_map(|(calls, clock_step, (fee, pvg), paymaster)| OpSpec { calls, clock_step, fee, pvg, paymaster })
}

struct Fixture {
    kit: Kit,
    account: Address,
    owner: Address,
    tokens: [Address; 3],
}

impl Fixture {
    async fn new() -> Self {
        let kit = Kit::start(Profile::test()).await.unwrap();
        let d = *kit.deployment();
        let owner = kit.dev_accounts()[1];
        let account = kit.sak_account(owner, B256::ZERO).await.unwrap();
        // The third token has no spend limit: the session may never move it.
        Self { kit, account, owner, tokens: [d.usd, d.tkn, d.weth] }
    }

    fn policy(&self, now: u64) -> Policy {
        let limit = |token, allowance: u64, period: u64, transfer| SpendLimit {
            token,
            allowance: U256::from(allowance),
            period: period as u32,
            transfer,
        };
        let router = self.kit.deployment().uniswap_v2_router;
        Policy {
            valid_after: now,
            valid_until: now + 5 * DAY,
            permissions: vec![
                Permission {
                    target: router,
                    selector: IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR.into(),
                    allow_value: false,
                    conditions: vec![Condition { arg: 3, op: Op::EqAccount, ty: ArgType::Address }],
                },
                Permission { target: ALICE, selector: Selector::ZERO, allow_value: true, conditions: vec![] },
                Permission {
                    target: router,
                    selector: PING.into(),
                    allow_value: false,
                    conditions: vec![
                        // a <= 100 as an int16, b >= 1 as a uint8: one-sided, so that only the
                        // canonical-encoding check refuses a dirty word that a wider read admits
                        Condition { arg: 0, op: Op::Lte { value: U256::from(100) }, ty: ArgType::Int(16) },
                        Condition { arg: 1, op: Op::Gte { value: U256::from(1) }, ty: ArgType::Uint(8) },
                    ],
                },
            ],
            spend_limits: vec![
                limit(self.tokens[0], 1_000, DAY, true),
                limit(self.tokens[1], 500, 3_600, false),
                limit(NATIVE, 1_000_000, DAY, false),
            ],
            // 5 gwei a day: a few operations at the fees drawn (charged in whole gwei, rounded up).
            gas: Gas::Budget { wei: U256::from(5_000_000_000u64), period: DAY as u32 },
            max_fee_per_gas: FEE_CAP,
            max_pre_verification_gas: PVG_CAP as u32,
            max_ops: 8,
            paymaster: Some(PAYMASTER),
        }
    }

    fn call(&self, spec: &CallSpec) -> Call {
        let router = self.kit.deployment().uniswap_v2_router;
        let adapter = SakAddresses::canonical().adapter_of(self.account);
        let erc20 = |token: usize, data: Vec<u8>| Call {
            target: self.tokens[token],
            value: U256::ZERO,
            data: data.into(),
        };
        let maybe_via =
            |via: bool, call: Call| if via { through_adapter(adapter, &call, &self.tokens) } else { call };
        match spec {
            CallSpec::Transfer { token, amount, to_adapter } => erc20(
                *token,
                MockERC20::transferCall {
                    to: if *to_adapter { adapter } else { ALICE },
                    value: U256::from(*amount),
                }
                .abi_encode(),
            ),
            CallSpec::Approve { token, amount } => erc20(
                *token,
                MockERC20::approveCall { spender: router, value: U256::from(*amount) }.abi_encode(),
            ),
            CallSpec::Swap { to_account, amount, value, via } => maybe_via(
                *via,
                Call {
                    target: router,
                    value: U256::from(*value),
                    data: IUniswapV2Router02::swapExactTokensForTokensCall {
                        amountIn: U256::from(*amount),
                        amountOutMin: U256::from(1),
                        path: vec![self.tokens[0], self.tokens[1]],
                        to: if *to_account { self.account } else { ALICE },
                        deadline: U256::MAX,
                    }
                    .abi_encode()
                    .into(),
                },
            ),
            CallSpec::EthSend { to_alice, value, data, via } => maybe_via(
                *via,
                Call {
                    target: if *to_alice { ALICE } else { BOB },
                    value: U256::from(*value),
                    data: data.clone().into(),
                },
            ),
            CallSpec::Ping { a, b, short, via } => {
                let mut data = PING.to_vec();
                data.extend_from_slice(&a.to_be_bytes::<32>());
                if !short {
                    data.extend_from_slice(&b.to_be_bytes::<32>());
                }
                maybe_via(*via, Call { target: router, value: U256::ZERO, data: data.into() })
            }
            CallSpec::Raw { target, selector, via } => {
                let factory = SakAddresses::canonical().session_adapter;
                let target =
                    [self.account, ENTRY_POINT_V08, PERMIT2, router, self.tokens[2], adapter, factory]
                        [*target];
                maybe_via(*via, Call { target, value: U256::ZERO, data: selector.to_vec().into() })
            }
        }
    }

    async fn grant(&self, policy: &Policy) -> u32 {
        self.kit.grant_session(self.account, self.owner, policy.to_session_config(ALICE)).await.unwrap()
    }

    /// The account's `validateUserOp` as the EntryPoint calls it: `Ok(validationData)`, or the
    /// revert data. When it succeeds the call is also mined, so the charge is recorded.
    async fn validate(&self, id: u32, op: &Operation) -> Result<U256, Bytes> {
        // Format 2 with no deadline of its own (the policy's window decides), in lane 0 of the
        // session's nonce lanes.
        let mut signature = vec![sak_userop::SESSION_TAG];
        signature.extend_from_slice(&id.to_be_bytes());
        signature.extend_from_slice(&op.clock.to_be_bytes()[3..]);
        signature.extend_from_slice(&[0xff; 5]);
        signature.extend_from_slice(&[0; 64]);
        signature.push(27);
        let user_op = SakAccount::PackedUserOperation {
            sender: self.account,
            nonce: U256::from(sak_userop::session_nonce_key(id, 0)) << 64,
            initCode: Bytes::new(),
            callData: encode_execute(&op.calls),
            accountGasLimits: B256::ZERO,
            // Prefund = preVerificationGas x maxFeePerGas (the other limits are 0).
            preVerificationGas: op.pre_verification_gas,
            gasFees: B256::from(op.max_fee_per_gas),
            paymasterAndData: op
                .paymaster
                .map(|p| [p.as_slice(), &[0; 32]].concat().into())
                .unwrap_or_default(),
            signature: signature.into(),
        };
        let input = SakAccount::validateUserOpCall {
            userOp: user_op,
            userOpHash: B256::ZERO,
            missingAccountFunds: U256::ZERO,
        }
        .abi_encode();
        let tx = TransactionRequest::default()
            .from(ENTRY_POINT_V08)
            .to(self.account)
            .input(input.into())
            .gas_limit(5_000_000);
        let provider = self.kit.provider();
        match provider.call(tx.clone()).await {
            Ok(out) => {
                let out: Bytes = out;
                let hash: B256 = provider.raw_request("eth_sendTransaction".into(), (tx,)).await.unwrap();
                let receipt = PendingTransactionBuilder::new(provider.root().clone(), hash)
                    .get_receipt()
                    .await
                    .unwrap();
                assert!(receipt.status(), "validateUserOp passed in eth_call but failed when mined");
                Ok(U256::from_be_slice(&out))
            }
            Err(e) => Err(e
                .as_error_resp()
                .and_then(|r| r.as_revert_data())
                .unwrap_or_else(|| panic!("no revert data: {e}"))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_evaluator_and_contracts_agree_on_random_operations() {
    let f = Fixture::new().await;
    let provider = f.kit.provider();
    let _: () = provider.raw_request("anvil_impersonateAccount".into(), (ENTRY_POINT_V08,)).await.unwrap();
    let _: () = provider
        .raw_request("anvil_setBalance".into(), (ENTRY_POINT_V08, U256::from(10u128.pow(21))))
        .await
        .unwrap();
    let ctx = Context::account(f.account, ENTRY_POINT_V08);
    let cases: u32 = std::env::var("SAK_DIFFERENTIAL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let mut runner = TestRunner::new_with_rng(
        Config { cases, failure_persistence: None, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let handle = tokio::runtime::Handle::current();
    // Fn closure (proptest): the tallies live in cells.
    let accepted = std::cell::Cell::new(0u32);
    let refused = std::cell::RefCell::new(std::collections::BTreeMap::<&'static str, u32>::new());
    let result = runner.run(&proptest::collection::vec(op_spec(), 1..25), |ops| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let now =
                    provider.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp;
                let policy = f.policy(now);
                let id = f.grant(&policy).await;
                let mut session = Session::new(id, ALICE, policy.clone());
                // Starts just before the session does.
                let mut clock = policy.valid_after as i64 - 30;
                for spec in &ops {
                    clock += spec.clock_step;
                    let op = Operation {
                        calls: spec.calls.iter().map(|c| f.call(c)).collect(),
                        clock: clock.max(0) as u64,
                        gas_cost: U256::from(spec.fee) * U256::from(spec.pvg),
                        max_fee_per_gas: U256::from(spec.fee),
                        pre_verification_gas: U256::from(spec.pvg),
                        paymaster: spec.paymaster.map(|own| if own { PAYMASTER } else { ALICE }),
                    };
                    let expected = session.authorize(&op, &ctx);
                    let actual = f.validate(id, &op).await;
                    match (&expected, &actual) {
                        (Ok(auth), Ok(data)) => {
                            let until = (*data >> 160_usize).to::<u128>() as u64 & 0xffff_ffff_ffff;
                            let after = (*data >> 208_usize).to::<u64>();
                            prop_assert_eq!(
                                (after + 1, until),
                                (auth.valid_after, auth.valid_until),
                                "window of {:?}",
                                spec
                            );
                            session.apply(auth);
                            accepted.set(accepted.get() + 1);
                        }
                        (Err(refusal), Err(data)) => {
                            prop_assert_eq!(
                                &refusal.revert_data(),
                                data,
                                "refusal of {:?}: {}",
                                spec,
                                refusal
                            );
                            *refused.borrow_mut().entry(refusal.name()).or_default() += 1;
                        }
                        _ => {
                            return Err(TestCaseError::fail(format!(
                                "disagreement on {spec:?}: rust {expected:?}, chain {actual:?}"
                            )));
                        }
                    }
                    let account = SakAccount::new(f.account, provider);
                    let usage = account.getUsage(id).call().await.unwrap();
                    prop_assert_eq!(
                        (
                            U256::from(usage.gasSpent),
                            u64::from(usage.gasWindow.to::<u32>()),
                            usage.opsUsed.to::<u32>()
                        ),
                        (session.gas.spent, session.gas.window, session.ops_used),
                        "gas and operation counters after {:?}",
                        spec
                    );
                    for token in [f.tokens[0], f.tokens[1], NATIVE] {
                        let chain = account.getSpend(id, token).call().await.unwrap();
                        let rust = session.spent.get(&token).copied().unwrap_or_default();
                        prop_assert_eq!(
                            (U256::from(chain.spent), u64::from(chain.window.to::<u32>())),
                            (rust.spent, rust.window),
                            "spend of {} after {:?}",
                            token,
                            spec
                        );
                    }
                }
                Ok(())
            })
        })
    });
    let (accepted, refused) = (accepted.get(), refused.into_inner());
    eprintln!("differential: {accepted} accepted, refused by reason: {refused:?}");
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(accepted > 50, "too few accepted operations to mean anything: {accepted}");
    assert!(refused.len() >= 10, "too few kinds of refusal exercised: {refused:?}");
}
