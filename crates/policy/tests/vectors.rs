//! The shared policy vectors (`contracts/test/vectors/policy.json`): cases written here, with
//! the outcome the Rust evaluator gives. The forge test `PolicyVectors.t.sol` replays every
//! step on the contracts' engine and requires the same outcome, byte for byte (revert data,
//! validity window, spend counters). This test fails when the evaluator's answers drift from
//! the committed file; `SAK_WRITE_VECTORS=1` rewrites it after a deliberate change (then run
//! forge to prove the contracts agree).

use alloy::{
    primitives::{Address, B256, Bytes, I256, U256, address, hex},
    sol_types::{SolCall, SolValue},
};
use sak_contracts::{ENTRY_POINT_V07, IUniswapV2Router02, MockERC20, SakAccount, SessionAdapter, adapter_of};
use sak_policy::{
    Call, Context, Operation, Session,
    calldata::{fund, through_adapter},
    encode_execute,
};
use sak_primitives::{
    ArgType, Condition, GWEI, Gas, NATIVE, Op, PERMIT2, Permission, Policy, Selector, SpendLimit,
};
use serde_json::{Value, json};

const ACCOUNT: Address = address!("0x00000000000000000000000000000000000acc01");
const ENTRY_POINT: Address = address!("0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108");
const HOLDER: Address = address!("0x0000000000000000000000000000000000e0e0e0");
/// Where the vectors' `SessionAdapter` factory sits (the forge replay deploys its code there).
const ADAPTERS: Address = address!("0x00000000000000000000000000000000000ada97");
const USD: Address = address!("0x00000000000000000000000000000000000a11ce");
const TKN: Address = address!("0x0000000000000000000000000000000000000b0b");
const ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
const ALICE: Address = address!("0x00000000000000000000000000000000000a1ec0");
const PAYMASTER: Address = address!("0x00000000000000000000000000000000000fee01");
const SIGNER: Address = address!("0x00000000000000000000000000000000005e5510");

const START: u64 = 1_800_000_000;
const DAY: u64 = 86_400;
const PATH: &str = "../../contracts/test/vectors/policy.json";

fn ctx() -> Context {
    Context { account: ACCOUNT, entry_point: ENTRY_POINT, holder: HOLDER, adapter_factory: ADAPTERS }
}

/// The account's adapter.
fn adapter() -> Address {
    adapter_of(ADAPTERS, ACCOUNT)
}

/// `call` made through the account's adapter, returning `tokens`.
fn via(call: Call, tokens: &[Address]) -> Call {
    through_adapter(adapter(), &call, tokens)
}

fn base_policy() -> Policy {
    Policy {
        valid_after: START,
        valid_until: START + 30 * DAY,
        permissions: vec![],
        spend_limits: vec![],
        gas: Gas::Unlimited,
        max_fee_per_gas: 0,
        max_pre_verification_gas: 0,
        max_ops: 0,
        paymaster: None,
    }
}

fn usd_limit(allowance: u64, transfer: bool) -> SpendLimit {
    SpendLimit { token: USD, allowance: U256::from(allowance), period: DAY as u32, transfer }
}

fn to_adapter(token: Address, amount: u64) -> Call {
    fund(adapter(), token, U256::from(amount))
}

fn transfer(token: Address, to: Address, amount: u64) -> Call {
    let data = MockERC20::transferCall { to, value: U256::from(amount) }.abi_encode();
    Call { target: token, value: U256::ZERO, data: data.into() }
}

fn approve(token: Address, spender: Address, amount: u64) -> Call {
    let data = MockERC20::approveCall { spender, value: U256::from(amount) }.abi_encode();
    Call { target: token, value: U256::ZERO, data: data.into() }
}

fn swap(amount_in: u64, to: Address) -> Call {
    let data = IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: U256::from(amount_in),
        amountOutMin: U256::from(1),
        path: vec![USD, TKN],
        to,
        deadline: U256::from(START + 365 * DAY),
    }
    .abi_encode();
    Call { target: ROUTER, value: U256::ZERO, data: data.into() }
}

fn raw(target: Address, value: u64, data: &[u8]) -> Call {
    Call { target, value: U256::from(value), data: Bytes::copy_from_slice(data) }
}

fn swap_permission() -> Permission {
    Permission {
        target: ROUTER,
        selector: IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR.into(),
        allow_value: false,
        conditions: vec![Condition { arg: 3, op: Op::EqAccount, ty: ArgType::Address }],
    }
}

/// A step: an operation (its calls or raw calldata), or the owner revoking the session.
enum Step {
    /// The op's only gas is `pvg` (`preVerificationGas`) at `fee` (`maxFeePerGas`): its
    /// prefund is their product.
    Op {
        clock: u64,
        calls: Vec<Call>,
        fee: u64,
        pvg: u64,
        paymaster: Option<Address>,
    },
    RawCallData {
        clock: u64,
        call_data: Bytes,
    },
    Revoke,
}

fn op(clock: u64, calls: Vec<Call>) -> Step {
    Step::Op { clock, calls, fee: 0, pvg: 0, paymaster: None }
}

/// An op whose prefund is `gwei` gwei: `gwei` gas at 1 gwei.
fn gas_op(clock: u64, calls: Vec<Call>, gwei: u64, paymaster: Option<Address>) -> Step {
    Step::Op { clock, calls, fee: GWEI, pvg: gwei, paymaster }
}

fn priced_op(clock: u64, calls: Vec<Call>, fee: u64, pvg: u64, paymaster: Option<Address>) -> Step {
    Step::Op { clock, calls, fee, pvg, paymaster }
}

struct Case {
    name: &'static str,
    policy: Policy,
    steps: Vec<Step>,
}

fn cases() -> Vec<Case> {
    let t = START + 10;
    let mut cases = Vec::new();
    let mut case = |name, policy, steps| cases.push(Case { name, policy, steps });

    let usd = Policy { spend_limits: vec![usd_limit(1_000, true)], ..base_policy() };
    case(
        "transfer: within the cap, over it, renewed next period, then a stale period",
        usd.clone(),
        vec![
            op(t, vec![transfer(USD, ALICE, 600)]),
            op(t + 1, vec![transfer(USD, ALICE, 401)]),
            op(t + 2, vec![transfer(USD, ALICE, 400)]),
            op(t + 3, vec![transfer(USD, ALICE, 1)]),
            op(START + DAY, vec![transfer(USD, ALICE, 1_000)]),
            op(START + DAY - 1, vec![transfer(USD, ALICE, 1)]),
        ],
    );
    // A permitted call the adapter can make with what it was given.
    let ping = Permission {
        target: ROUTER,
        selector: Selector::from(hex!("11223344")),
        allow_value: false,
        conditions: vec![],
    };
    let use_it = |tokens: &[Address]| via(raw(ROUTER, 0, &hex!("11223344")), tokens);
    let usd_ping = Policy { permissions: vec![ping.clone()], ..usd.clone() };
    case(
        "batch: charges accumulate within one operation, into the adapter or out",
        usd_ping.clone(),
        vec![
            op(t, vec![transfer(USD, ALICE, 700), to_adapter(USD, 301), use_it(&[USD])]),
            op(t, vec![to_adapter(USD, 1_000), use_it(&[USD])]),
        ],
    );
    case(
        "adapter funding: a later run must list it (returned within the operation)",
        Policy {
            spend_limits: vec![usd_limit(1_000, false), SpendLimit { token: TKN, ..usd_limit(1_000, false) }],
            ..usd_ping.clone()
        },
        vec![
            op(t, vec![to_adapter(USD, 1)]),
            op(t, vec![to_adapter(USD, 1), use_it(&[TKN])]),
            op(t, vec![use_it(&[USD]), to_adapter(USD, 1)]),
            op(t, vec![to_adapter(USD, 1), to_adapter(TKN, 1), use_it(&[USD])]),
            op(t, vec![to_adapter(USD, 1), to_adapter(TKN, 1), use_it(&[TKN, USD])]),
            op(t, vec![to_adapter(USD, 1), use_it(&[USD]), to_adapter(USD, 2), use_it(&[USD])]),
            op(t, vec![to_adapter(USD, 1), use_it(&[]), use_it(&[USD])]),
        ],
    );
    case(
        "token flags: without transfer only into the adapter; approve never; trailing bytes and value refused",
        Policy { spend_limits: vec![usd_limit(1_000, false)], ..usd_ping },
        vec![
            op(t, vec![transfer(USD, ALICE, 1)]),
            op(t, vec![to_adapter(USD, 1), use_it(&[USD])]),
            op(t, vec![approve(USD, adapter(), 1)]),
            op(t, vec![raw(USD, 0, &[to_adapter(USD, 1).data.to_vec(), vec![0; 32]].concat())]),
            op(t, vec![Call { value: U256::from(1), ..to_adapter(USD, 1) }]),
            op(t, vec![to_adapter(USD, 1_000), use_it(&[USD])]),
            op(t, vec![to_adapter(TKN, 1), use_it(&[TKN])]),
            op(t, vec![raw(NATIVE, 0, &to_adapter(USD, 1).data)]),
        ],
    );
    case(
        "forbidden targets whatever the policy: account, EntryPoints, holder, adapter factory, Permit2",
        usd.clone(),
        vec![
            op(t, vec![raw(ACCOUNT, 0, &[])]),
            op(t, vec![raw(ENTRY_POINT, 0, &hex!("b760faf9"))]),
            op(t, vec![raw(ENTRY_POINT_V07, 0, &hex!("b760faf9"))]),
            op(t, vec![raw(HOLDER, 0, &hex!("12345678"))]),
            op(t, vec![raw(ADAPTERS, 0, &hex!("12345678"))]),
            op(t, vec![approve(PERMIT2, ALICE, 1)]),
            op(t, vec![via(raw(ACCOUNT, 0, &hex!("12345678")), &[])]),
            op(t, vec![via(raw(PERMIT2, 0, &hex!("12345678")), &[])]),
            op(t, vec![via(raw(adapter(), 0, &[]), &[])]),
            op(t, vec![via(raw(ADAPTERS, 0, &hex!("12345678")), &[])]),
        ],
    );
    case(
        "swap: through the adapter, recipient the account; direct calls, value and unknown selectors refused",
        Policy {
            permissions: vec![swap_permission()],
            spend_limits: vec![usd_limit(1_000, false)],
            ..base_policy()
        },
        vec![
            op(t, vec![to_adapter(USD, 500), via(swap(500, ACCOUNT), &[USD])]),
            op(t, vec![swap(500, ACCOUNT)]),
            op(t, vec![via(swap(500, ALICE), &[USD])]),
            op(t, vec![via(swap(500, adapter()), &[USD])]),
            op(t, vec![via(Call { value: U256::from(5), ..swap(1, ACCOUNT) }, &[])]),
            op(t, vec![via(raw(ROUTER, 0, &hex!("deadbeef")), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &hex!("38ed17")), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &hex!("38ed1739")), &[])]),
            op(t, vec![to_adapter(USD, 501), via(swap(501, ACCOUNT), &[USD, TKN])]),
        ],
    );
    let run = |target: Address, data: &[u8], tokens: Vec<Address>| {
        SessionAdapter::runCall { target, data: Bytes::copy_from_slice(data), tokens }.abi_encode()
    };
    let swap_data = swap(1, ACCOUNT).data.to_vec();
    let canonical = run(ROUTER, &swap_data, vec![USD]);
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut data = canonical.clone();
        edit(&mut data);
        raw(adapter(), 0, &data)
    };
    let word_at = |data: &mut Vec<u8>, at: usize, value: u64| {
        data[at..at + 32].copy_from_slice(B256::from(U256::from(value)).as_slice());
    };
    case(
        "adapter calls: only run, only canonical ABI; the adapter's other functions and selectors refused",
        Policy {
            permissions: vec![swap_permission()],
            spend_limits: vec![usd_limit(1_000, false)],
            ..base_policy()
        },
        vec![
            op(t, vec![raw(adapter(), 0, &canonical)]),
            op(t, vec![raw(adapter(), 0, &SessionAdapter::sweepCall { tokens: vec![USD] }.abi_encode())]),
            op(t, vec![raw(adapter(), 0, &[])]),
            op(t, vec![with(&|d| d.extend_from_slice(&[0; 32]))]),
            op(t, vec![with(&|d| d.truncate(d.len() - 32))]),
            op(t, vec![with(&|d| word_at(d, 36, 0x80))]),
            op(t, vec![with(&|d| word_at(d, 68, 0x60))]),
            op(t, vec![with(&|d| d[4] = 1)]),
            op(t, vec![with(&|d| word_at(d, 100, 1 << 20))]),
            op(t, vec![raw(adapter(), 0, &run(ROUTER, &swap_data, vec![USD; 65]))]),
            op(t, vec![raw(adapter(), 0, &run(ROUTER, &swap_data, vec![USD; 64]))]),
            op(t, vec![raw(adapter(), 0, &canonical[..160])]),
        ],
    );
    let word = |n: u64| B256::from(U256::from(n));
    let conditions = Permission {
        target: ROUTER,
        selector: Selector::from(hex!("11223344")),
        allow_value: false,
        conditions: vec![
            Condition { arg: 0, op: Op::Eq { value: word(7) }, ty: ArgType::Word },
            Condition { arg: 1, op: Op::Lte { value: U256::from(100) }, ty: ArgType::Uint(256) },
            Condition { arg: 2, op: Op::Gte { value: U256::from(10) }, ty: ArgType::Uint(256) },
            Condition {
                arg: 3,
                op: Op::OneOf { values: vec![ALICE.into_word(), word(9)] },
                ty: ArgType::Word,
            },
        ],
    };
    let signed = |x: i64| I256::try_from(x).unwrap().into_raw();
    let typed = Permission {
        target: ROUTER,
        selector: Selector::from(hex!("11223344")),
        allow_value: false,
        conditions: vec![
            Condition { arg: 0, op: Op::Gte { value: signed(-100) }, ty: ArgType::Int(16) },
            Condition { arg: 0, op: Op::Lte { value: U256::from(100) }, ty: ArgType::Int(16) },
            Condition { arg: 1, op: Op::Gte { value: U256::from(10) }, ty: ArgType::Uint(8) },
            Condition { arg: 2, op: Op::Eq { value: word(1) }, ty: ArgType::Bool },
            Condition { arg: 3, op: Op::OneOf { values: vec![ALICE.into_word()] }, ty: ArgType::Address },
        ],
    };
    let typed_args = |a: U256, b: U256, c: U256, d: U256| {
        let mut data = hex!("11223344").to_vec();
        for w in [a, b, c, d] {
            data.extend_from_slice(&w.to_be_bytes::<32>());
        }
        via(raw(ROUTER, 0, &data), &[])
    };
    let (one, alice) = (U256::from(1), U256::from_be_bytes(ALICE.into_word().0));
    let high = |bits: usize| U256::from(1) << bits;
    case(
        "typed conditions: int16 compared as signed, canonical encoding (uint8, int16, bool, address) required",
        Policy { permissions: vec![typed], ..base_policy() },
        vec![
            op(t, vec![typed_args(signed(-100), U256::from(10), one, alice)]),
            op(t, vec![typed_args(signed(100), U256::from(255), one, alice)]),
            op(t, vec![typed_args(signed(-101), U256::from(10), one, alice)]),
            op(t, vec![typed_args(signed(101), U256::from(10), one, alice)]),
            // -65535 as an int256 (<= 100), +1 to a decoder that reads the low 16 bits
            op(t, vec![typed_args(signed(-65_535), U256::from(10), one, alice)]),
            // 0x8000 is not sign-extended: -32768 to a decoder that sign-extends 16 bits
            op(t, vec![typed_args(U256::from(0x8000), U256::from(10), one, alice)]),
            // uint8 261 >= 10 as a uint256; a decoder that masks reads 5
            op(t, vec![typed_args(U256::ZERO, high(8) + U256::from(5), one, alice)]),
            op(t, vec![typed_args(U256::ZERO, U256::from(9), one, alice)]),
            op(t, vec![typed_args(U256::ZERO, U256::from(10), U256::from(2), alice)]),
            op(t, vec![typed_args(U256::ZERO, U256::from(10), one, alice + high(160))]),
        ],
    );
    let args = |a: u64, b: u64, c: u64, d: B256| {
        let mut data = hex!("11223344").to_vec();
        for w in [word(a), word(b), word(c), d] {
            data.extend_from_slice(w.as_slice());
        }
        data
    };
    case(
        "conditions: ==, <=, >=, one-of; each failing alone; calldata too short",
        Policy { permissions: vec![conditions], ..base_policy() },
        vec![
            op(t, vec![via(raw(ROUTER, 0, &args(7, 100, 10, ALICE.into_word())), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &args(7, 0, u64::MAX, word(9))), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &args(8, 100, 10, word(9))), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &args(7, 101, 10, word(9))), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &args(7, 100, 9, word(9))), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &args(7, 100, 10, word(10))), &[])]),
            op(t, vec![via(raw(ROUTER, 0, &args(7, 100, 10, word(9))[..4 + 96]), &[])]),
        ],
    );
    let eth_send =
        Permission { target: ALICE, selector: Selector::ZERO, allow_value: true, conditions: vec![] };
    let native =
        SpendLimit { token: NATIVE, allowance: U256::from(1_000), period: DAY as u32, transfer: false };
    case(
        "native ETH: sends through the adapter charged to the ETH cap; direct, fallback and short data refused",
        Policy { permissions: vec![eth_send.clone()], spend_limits: vec![native], ..base_policy() },
        vec![
            op(t, vec![via(raw(ALICE, 600, &[]), &[])]),
            op(t, vec![via(raw(ALICE, 401, &[]), &[])]),
            op(t, vec![raw(ALICE, 1, &[])]),
            op(t, vec![via(raw(ALICE, 1, &hex!("00000000")), &[])]),
            op(t, vec![via(raw(ALICE, 1, &hex!("01")), &[])]),
            op(t, vec![via(raw(ALICE, 0, &[]), &[])]),
            op(t, vec![raw(adapter(), 1, &[])]),
        ],
    );
    case(
        "native ETH: value without an ETH cap, and on a permission without value",
        Policy {
            permissions: vec![eth_send, Permission { allow_value: false, ..swap_permission() }],
            ..base_policy()
        },
        vec![
            op(t, vec![via(raw(ALICE, 1, &[]), &[])]),
            op(t, vec![via(Call { value: U256::from(1), ..swap(1, ACCOUNT) }, &[])]),
        ],
    );
    case(
        "time: before valid_after, at both bounds, after valid_until",
        Policy { valid_until: START + 2 * DAY, ..usd.clone() },
        vec![
            op(START - 1, vec![transfer(USD, ALICE, 1)]),
            op(START, vec![transfer(USD, ALICE, 1)]),
            op(START + 2 * DAY, vec![transfer(USD, ALICE, 1)]),
            op(START + 2 * DAY + 1, vec![transfer(USD, ALICE, 1)]),
        ],
    );
    case(
        "operation count: the third of two operations is refused",
        Policy { max_ops: 2, ..usd.clone() },
        vec![
            op(t, vec![transfer(USD, ALICE, 1)]),
            op(t, vec![transfer(USD, ALICE, 1)]),
            op(t, vec![transfer(USD, ALICE, 1)]),
        ],
    );
    let call = || use_it(&[]);
    case(
        "gas budget: charged per period, exceeded, renewed, stale period",
        Policy {
            permissions: vec![ping.clone()],
            gas: Gas::Budget { wei: U256::from(1_000_000 * GWEI), period: DAY as u32 },
            ..base_policy()
        },
        vec![
            gas_op(t, vec![call()], 600_000, None),
            gas_op(t, vec![call()], 400_001, None),
            gas_op(START + 3 * DAY, vec![call()], 1_000_000, None),
            gas_op(START + DAY, vec![call()], 1, None),
        ],
    );
    case(
        "fee caps: the account pays only for fees and preVerificationGas up to the caps, in whole gwei",
        Policy {
            permissions: vec![ping.clone()],
            gas: Gas::Budget { wei: U256::from(10 * GWEI), period: DAY as u32 },
            max_fee_per_gas: 1_000,
            max_pre_verification_gas: 5_000_000,
            paymaster: Some(PAYMASTER),
            ..base_policy()
        },
        vec![
            priced_op(t, vec![call()], 1_001, 1, None),
            priced_op(t, vec![call()], 1_000, 5_000_001, None),
            // 1.500001 gwei, charged 2; then 5 gwei: 3 remain.
            priced_op(t, vec![call()], 1_000, 1_500_001, None),
            priced_op(t, vec![call()], 1_000, 5_000_000, None),
            priced_op(t, vec![call()], 1_000, 3_000_001, None),
            priced_op(t, vec![call()], 1_000, 3_000_000, None),
            // Sponsored by the session's paymaster: the account pays nothing, no cap applies.
            priced_op(t, vec![call()], 1_000_000_000_000, 10_000_000, Some(PAYMASTER)),
        ],
    );
    case(
        "fee caps on an unlimited budget",
        Policy { permissions: vec![ping], gas: Gas::Unlimited, max_fee_per_gas: 7, ..base_policy() },
        vec![priced_op(t, vec![call()], 8, 1, None), priced_op(t, vec![call()], 7, 100_000_000, None)],
    );
    case(
        "paymaster: only the session's may sponsor; no budget means no account-paid gas",
        Policy { gas: Gas::SponsoredOnly, paymaster: Some(PAYMASTER), ..usd.clone() },
        vec![
            gas_op(t, vec![transfer(USD, ALICE, 1)], 500_000, Some(PAYMASTER)),
            gas_op(t, vec![transfer(USD, ALICE, 1)], 500_000, Some(ALICE)),
            gas_op(t, vec![transfer(USD, ALICE, 1)], 1, None),
        ],
    );
    case(
        "paymaster: a session without one refuses every paymaster",
        usd.clone(),
        vec![gas_op(t, vec![transfer(USD, ALICE, 1)], 0, Some(PAYMASTER))],
    );
    case(
        "revocation: signed operations stop validating",
        usd.clone(),
        vec![op(t, vec![transfer(USD, ALICE, 1)]), Step::Revoke, op(t, vec![transfer(USD, ALICE, 1)])],
    );
    let batch = encode_execute(&[transfer(USD, ALICE, 1)]);
    let mut single_mode = batch.to_vec();
    single_mode[4] = 0;
    case(
        "execution shape: only a non-empty batch execute",
        usd,
        vec![
            Step::RawCallData { clock: t, call_data: single_mode.into() },
            Step::RawCallData { clock: t, call_data: encode_execute(&[]) },
            Step::RawCallData {
                clock: t,
                call_data: SakAccount::grantSessionCall { config: base_policy().to_session_config(SIGNER) }
                    .abi_encode()
                    .into(),
            },
        ],
    );
    cases
}

fn u256(v: U256) -> Value {
    json!(format!("{v:#x}"))
}

fn generate() -> Value {
    let mut out = Vec::new();
    for case in cases() {
        case.policy.validate(None).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut session = Session::new(1, SIGNER, case.policy.clone());
        let mut steps = Vec::new();
        for step in case.steps {
            let (clock, call_data, (fee, pvg), paymaster) = match step {
                Step::Revoke => {
                    session.active = false;
                    steps.push(json!({ "action": "revoke" }));
                    continue;
                }
                Step::Op { clock, calls, fee, pvg, paymaster } => {
                    (clock, encode_execute(&calls), (fee, pvg), paymaster)
                }
                Step::RawCallData { clock, call_data } => (clock, call_data, (0, 0), None),
            };
            let gas = [U256::from(fee) * U256::from(pvg), U256::from(fee), U256::from(pvg)];
            let outcome = Operation::from_call_data(&call_data, clock, gas, paymaster)
                .and_then(|op| session.authorize(&op, &ctx()));
            let mut v = json!({
                "action": "validate",
                "clock": clock,
                "maxFeePerGas": fee,
                "preVerificationGas": pvg,
                "paymaster": paymaster.unwrap_or_default(),
                "callData": call_data,
            });
            match outcome {
                Ok(auth) => {
                    session.apply(&auth);
                    v["ok"] = json!(true);
                    v["validAfter"] = json!(auth.valid_after);
                    v["validUntil"] = json!(auth.valid_until);
                    v["revert"] = json!("0x");
                }
                Err(refusal) => {
                    v["ok"] = json!(false);
                    v["error"] = json!(refusal.to_string());
                    v["revert"] = json!(refusal.revert_data());
                }
            }
            // Spend counters after the step, for every capped token.
            v["spent"] = json!(
                case.policy
                    .spend_limits
                    .iter()
                    .map(|l| {
                        let usage = session.spent.get(&l.token).copied().unwrap_or_default();
                        json!({ "token": l.token, "spent": u256(usage.spent), "window": usage.window })
                    })
                    .collect::<Vec<_>>()
            );
            steps.push(v);
        }
        out.push(json!({
            "name": case.name,
            "grantAt": START - 100,
            "policy": case.policy,
            "config": Bytes::from(case.policy.to_session_config(SIGNER).abi_encode()),
            "steps": steps,
        }));
    }
    json!({
        "about": "Shared policy vectors: written by crates/policy/tests/vectors.rs (SAK_WRITE_VECTORS=1), replayed on the contracts by contracts/test/PolicyVectors.t.sol.",
        "context": {
            "account": ACCOUNT,
            "entryPoint": ENTRY_POINT,
            "holder": HOLDER,
            "adapter": ADAPTERS,
            "accountAdapter": adapter(),
            "signer": SIGNER,
        },
        "cases": out,
    })
}

#[test]
fn evaluator_matches_the_committed_vectors() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("SAK_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let line = committed.lines().zip(fresh.lines()).position(|(a, b)| a != b).unwrap_or(0) + 1;
        panic!(
            "the evaluator's answers differ from {} (first difference at line {line}).\n\
             If the change is deliberate: SAK_WRITE_VECTORS=1 cargo test -p sak-policy --test vectors, \
             then forge test --match-contract PolicyVectors to prove the contracts agree.",
            path.display()
        );
    }
}
