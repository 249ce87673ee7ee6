//! ERC-7562 rules for the validation phase of `SakAccount`, checked on anvil's traces of real
//! `handleOps` transactions: every validation path (owner; session transfer; session
//! approve + swap with argument conditions; session with a finite gas budget and an op limit;
//! the same on an EOA delegated to `Sak7702Account`; a session sponsored by its paymaster, whose
//! own validation is checked too) is submitted, then `debug_traceTransaction` (struct logger
//! and callTracer) is read, the account's `validateUserOp` frame (EntryPoint → account,
//! selector 0x19822f7c, and everything it calls) is located, and the opcode, storage and call
//! rules are asserted.
//!
//! The same rules cover `SessionKeyValidator`, the ERC-7579 module, installed on an
//! OpenZeppelin ERC-7579 account: its storage is the module's, so every slot it touches must be
//! associated with the account ([STO-021]: `keccak256(account ‖ x) + n`, n <= 128). The
//! preimages come from a memory-enabled struct log of the same validation call (`debug_traceCall`
//! from the EntryPoint, just before the operation is submitted).
//!
//! The checker is proven able to fail on a real trace: applied to the *execution* frame of an
//! operation that reads TIMESTAMP and NUMBER, writes a token's storage and sends ETH, it must
//! report each with its opcode, pc and depth.

use alloy::{
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U24, U40, U80, U96, U192},
    },
    providers::Provider,
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolValue},
};
use sak_contracts::{
    ENTRY_POINT_V08, IEntryPoint, ISakSessions, IUniswapV2Router02, MockERC20, MockERC7579Account,
    MockPaymaster, SakAccount, SessionKeyValidator,
};
use sak_e2e::trace::{self, CallFrame, Frames, StructLog, VALIDATE_USER_OP};
use sak_policy::calldata::funded_call;
use sak_testkit::{Deployment, Kit, Profile};
use sak_userop::{
    Call, FeeCaps, Fees, GasLimits, Intent, OpSigner, Paymaster, SelfBundler, Submitter, UserOpBuilder,
    UserOpClient, UserOpReceipt,
};
use serde::Deserialize;
use serde_json::json;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------

/// [OP-011] Opcodes an entity may not use in validation (plus CREATE/CREATE2: the account is
/// already deployed, so nothing may be created). anvil names 0x44 `DIFFICULTY` or `PREVRANDAO`.
const BANNED: [&str; 18] = [
    "GASPRICE",
    "GASLIMIT",
    "DIFFICULTY",
    "PREVRANDAO",
    "TIMESTAMP",
    "BASEFEE",
    "BLOCKHASH",
    "NUMBER",
    "ORIGIN",
    "COINBASE",
    "SELFBALANCE",
    "BALANCE",
    "CREATE",
    "CREATE2",
    "SELFDESTRUCT",
    "INVALID",
    "BLOBHASH",
    "BLOBBASEFEE",
];

const STORAGE_OPS: [&str; 4] = ["SLOAD", "SSTORE", "TLOAD", "TSTORE"];
const MESSAGE_CALLS: [&str; 4] = ["CALL", "CALLCODE", "DELEGATECALL", "STATICCALL"];
/// `EntryPoint.depositTo(address)`.
const DEPOSIT_TO: [u8; 4] = [0xb7, 0x60, 0xfa, 0xf9];
/// `IPaymaster.validatePaymasterUserOp`.
const VALIDATE_PAYMASTER_USER_OP: [u8; 4] = MockPaymaster::validatePaymasterUserOpCall::SELECTOR;

/// One broken rule, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    rule: &'static str,
    op: String,
    pc: u64,
    depth: u64,
    /// Whose code ran the opcode.
    code: Option<Address>,
    detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.map_or("?".into(), |a| a.to_string());
        write!(f, "{}: {} at pc {}, depth {}, in code {code}", self.rule, self.op, self.pc, self.depth)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// What a check looked at, so a test can show it was not vacuous.
#[derive(Debug, Default)]
struct Coverage {
    steps: usize,
    storage_ops: usize,
    /// Storage ops outside the account, at slots associated with it.
    associated: usize,
    calls: usize,
}

/// [STO-021] Slots associated with the account in other contracts: `keccak256(account ‖ x) + n`
/// for `0 <= n <= 128`. `bases` are the results of the validation's `KECCAK256`s whose input
/// starts with the account's address as a 32-byte word.
#[derive(Debug, Default)]
struct Associated {
    bases: Vec<U256>,
}

impl Associated {
    fn contains(&self, slot: U256) -> bool {
        self.bases.iter().any(|&b| slot >= b && slot - b <= U256::from(128))
    }
}

/// Checks the frame `frame` of a struct log (and everything it calls) against the
/// validation-phase rules for the unstaked account `sender`:
/// - [OP-011] no banned opcode; [OP-012] `GAS` only immediately before a message call;
/// - [STO-010/021] storage (SLOAD/SSTORE/TLOAD/TSTORE) only in the account's own storage or,
///   in another contract (the validator module), at a slot in `associated` (the EntryPoint's
///   own bookkeeping of the account's deposit, inside `depositTo`, is the EntryPoint's and
///   exempt). Our accounts pass with `associated` empty: they touch only their own storage;
/// - [OP-061] no call with value except to the EntryPoint (the prefund).
fn check_steps(
    logs: &[StructLog],
    frames: &Frames,
    frame: usize,
    sender: Address,
    associated: &Associated,
) -> (Vec<Violation>, Coverage) {
    let mut out = Vec::new();
    let mut coverage = Coverage::default();
    let f = &frames.frames[frame];
    for i in f.first_step..f.end_step {
        let step = &logs[i];
        let here = &frames.frames[frames.step_frame[i]];
        let violation = |rule, detail: String| Violation {
            rule,
            op: step.op.clone(),
            pc: step.pc,
            depth: step.depth,
            code: here.code,
            detail,
        };
        coverage.steps += 1;
        let op = step.op.as_str();
        if BANNED.contains(&op) || op.starts_with("0x") || op.starts_with("UNKNOWN") {
            out.push(violation("OP-011 banned opcode in validation", String::new()));
        }
        if op == "GAS" {
            let next = logs.get(i + 1).filter(|n| n.depth == step.depth).map(|n| n.op.as_str());
            if !next.is_some_and(|n| MESSAGE_CALLS.contains(&n)) {
                out.push(violation("OP-012 GAS not followed by a call", format!("next: {next:?}")));
            }
        }
        if STORAGE_OPS.contains(&op) {
            coverage.storage_ops += 1;
            let slot = step.stack_top(0).unwrap_or_default();
            match here.storage {
                Some(at) if at == sender || at == ENTRY_POINT_V08 => {}
                Some(_) if associated.contains(slot) => coverage.associated += 1,
                at => out.push(violation(
                    "STO-010 storage outside the account",
                    format!("storage of {at:?}, slot {slot:#x}"),
                )),
            }
        }
        if MESSAGE_CALLS.contains(&op) {
            coverage.calls += 1;
        }
        if matches!(op, "CALL" | "CALLCODE") {
            let value = step.stack_top(2).unwrap_or_default();
            let to = step.stack_top(1).map(|v| Address::from_word(v.into())).unwrap_or_default();
            if !value.is_zero() && to != ENTRY_POINT_V08 {
                out.push(violation("OP-061 call with value", format!("{value} wei to {to}")));
            }
        }
    }
    (out, coverage)
}

/// Call-tree rules for the validation subtree (callTracer), reported with the offending call:
/// - [OP-052/053/054] the account may call the EntryPoint only with `depositTo` or the
///   receive function (the prefund);
/// - [OP-020] no out-of-gas inside validation;
/// - [OP-062] only known precompiles (0x01..0x11 on Prague, 0x100 P-256).
fn check_calls(tree: &CallFrame) -> Vec<String> {
    let mut out = Vec::new();
    for call in tree.walk() {
        let to = call.to.unwrap_or_default();
        if to == ENTRY_POINT_V08 && call.from != ENTRY_POINT_V08 {
            let ok = call.input.is_empty() || call.selector() == Some(DEPOSIT_TO);
            if !ok {
                out.push(format!("OP-054 call to the EntryPoint from {}: input {}", call.from, call.input));
            }
        }
        if call.error.as_deref().is_some_and(|e| e.contains("out of gas")) {
            out.push(format!("OP-020 out of gas in validation: {} → {to} ({:?})", call.from, call.error));
        }
        let n = U256::from_be_slice(to.as_slice());
        if n > U256::ZERO && n < U256::from(0x1000) && !(n <= U256::from(0x11) || n == U256::from(0x100)) {
            out.push(format!("OP-062 unknown precompile {to} called from {}", call.from));
        }
    }
    out
}

/// The two traces of a mined `handleOps` transaction.
struct Traced {
    tree: CallFrame,
    logs: Vec<StructLog>,
    frames: Frames,
}

impl Traced {
    /// The traces of the bundle transaction of `receipt`, sent by `bundler`.
    async fn of<P: Provider>(provider: &P, receipt: &UserOpReceipt, bundler: Address) -> Self {
        let tree = trace::call_tree(provider, receipt.tx_hash).await.unwrap();
        let logs = trace::struct_logs(provider, receipt.tx_hash).await.unwrap();
        let frames = Frames::build(&logs, bundler, ENTRY_POINT_V08);
        Self { tree, logs, frames }
    }

    /// The `n`-th call from the EntryPoint to `sender` with `selector`: callTracer frame and
    /// struct-log frame, checked to agree.
    fn frame(&self, sender: Address, selector: [u8; 4]) -> (&CallFrame, usize) {
        let (call, frame) = trace::locate(&self.tree, &self.frames, ENTRY_POINT_V08, sender, selector, 0)
            .unwrap_or_else(|| {
                panic!("no EntryPoint → {sender} call with selector {}", Bytes::from(selector))
            });
        let f = &self.frames.frames[frame];
        assert_eq!((f.kind.as_str(), f.code, f.caller), ("CALL", Some(sender), ENTRY_POINT_V08));
        (call, frame)
    }

    /// Every rule over the validation frame of `sender`'s operation.
    fn validation_violations(&self, sender: Address, associated: &Associated) -> (Vec<String>, Coverage) {
        self.violations(sender, VALIDATE_USER_OP, sender, associated)
    }

    /// Every rule over the EntryPoint's call of `entity` with `selector` (the account's
    /// `validateUserOp`, a paymaster's `validatePaymasterUserOp`), for the operation of `sender`.
    fn violations(
        &self,
        entity: Address,
        selector: [u8; 4],
        sender: Address,
        associated: &Associated,
    ) -> (Vec<String>, Coverage) {
        let (call, frame) = self.frame(entity, selector);
        let (steps, coverage) = check_steps(&self.logs, &self.frames, frame, sender, associated);
        let mut all: Vec<String> = steps.iter().map(ToString::to_string).collect();
        all.extend(check_calls(call));
        (all, coverage)
    }
}

/// Asserts the account's validation breaks no rule (storage only its own) and was not trivial;
/// returns what it looked at.
fn assert_follows_rules(traced: &Traced, sender: Address, selector: [u8; 4]) -> Coverage {
    let coverage = assert_follows_rules_for(traced, sender, selector, sender);
    assert!(coverage.steps > 300, "validation frame too small to be the real one: {coverage:?}");
    coverage
}

/// Asserts the EntryPoint's `selector` call of `entity` (an account, a paymaster) for the
/// operation of `sender` breaks no rule; returns what it looked at.
fn assert_follows_rules_for(
    traced: &Traced,
    entity: Address,
    selector: [u8; 4],
    sender: Address,
) -> Coverage {
    let (violations, coverage) = traced.violations(entity, selector, sender, &Associated::default());
    assert!(
        violations.is_empty(),
        "ERC-7562 violations in {} of {entity}:\n  {}",
        Bytes::from(selector),
        violations.join("\n  ")
    );
    coverage
}

// ---------------------------------------------------------------------------------------------
// Fixture: a SakAccount on anvil with steps tracing
// ---------------------------------------------------------------------------------------------

const DAY: u32 = 86_400;
const ALICE: Address = Address::repeat_byte(0xa1);

struct Fixture {
    kit: Kit,
    d: Deployment,
    account: Address,
    owner: PrivateKeySigner,
    agent: PrivateKeySigner,
    /// The pipeline, self-bundling from dev account 9.
    client: UserOpClient<SelfBundler>,
}

impl Fixture {
    async fn new() -> Self {
        let kit = Kit::start(Profile::test().with_steps_tracing()).await.unwrap();
        let d = *kit.deployment();
        let keys = kit.dev_signers();
        let (owner, agent, relayer) = (keys[1].clone(), keys[2].clone(), keys[9].clone());
        let bundler = SelfBundler::new(kit.rpc_url(), relayer, ENTRY_POINT_V08).await.unwrap();
        let client = UserOpClient::new(kit.provider().clone(), bundler, FeeCaps::UNLIMITED).await.unwrap();
        let account = kit.sak_account(owner.address(), B256::ZERO).await.unwrap();
        Self { kit, d, account, owner, agent, client }
    }

    /// A session for the agent from now for 30 days.
    async fn session(
        &self,
        permissions: Vec<ISakSessions::CallPermission>,
        spend_limits: Vec<ISakSessions::SpendLimit>,
        gas_budget: U80,
        gas_period: u32,
        max_ops: u32,
    ) -> ISakSessions::SessionConfig {
        let now = self.client.chain_time().await.unwrap();
        ISakSessions::SessionConfig {
            signer: self.agent.address(),
            validAfter: U40::from(now),
            validUntil: U40::from(now + 30 * u64::from(DAY)),
            permissions,
            spendLimits: spend_limits,
            gasBudget: gas_budget,
            gasPeriod: gas_period,
            maxOps: U24::from(max_ops),
            paymaster: Address::ZERO,
            maxFeePerGas: Default::default(),
            maxPreVerificationGas: Default::default(),
        }
    }

    fn usd_limit(&self, transfer: bool) -> ISakSessions::SpendLimit {
        ISakSessions::SpendLimit {
            token: self.d.usd,
            allowance: U96::from(1_000_000_000u64),
            period: DAY,
            allowTransfer: transfer,
        }
    }

    async fn grant(&self, config: ISakSessions::SessionConfig) -> u32 {
        self.kit.grant_session(self.account, self.owner.address(), config).await.unwrap()
    }

    fn session_signer(&self, id: u32) -> OpSigner {
        OpSigner::session(self.agent.clone(), id)
    }

    /// The bundle transactions' sender.
    fn bundler(&self) -> Address {
        self.client.submitter().relayer()
    }

    /// Submits a batch through the pipeline (the owner's lane 0 or the session's lane 0,
    /// estimated limits, `handleOps`); it must succeed.
    async fn submit(&self, calls: &[Call], signer: OpSigner) -> UserOpReceipt {
        let lane = match &signer {
            OpSigner::Session { id, .. } => sak_userop::session_nonce_key(*id, 0),
            OpSigner::Owner(_) => U192::ZERO,
        };
        let intent = Intent::calls(self.account, lane, calls);
        let receipt = self.client.send(&intent, &signer).await.unwrap();
        assert!(receipt.success, "execution failed: {:?}", receipt.revert);
        receipt
    }

    /// Traces `receipt`'s transaction and asserts the validation frame breaks no rule and was
    /// not trivial.
    async fn assert_compliant(&self, receipt: &UserOpReceipt, min_storage_ops: usize) {
        let traced = Traced::of(self.kit.provider(), receipt, self.bundler()).await;
        let coverage = assert_follows_rules(&traced, self.account, VALIDATE_USER_OP);
        assert!(coverage.storage_ops >= min_storage_ops, "{coverage:?}");
        assert!(coverage.calls >= 2, "ecrecover and the prefund at least: {coverage:?}");
    }

    fn transfer(&self, amount: u64) -> Call {
        Call::contract(self.d.usd, &MockERC20::transferCall { to: ALICE, value: U256::from(amount) })
    }
}

// ---------------------------------------------------------------------------------------------
// Validation paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn owner_op_validation_follows_erc7562() {
    let fx = Fixture::new().await;
    let included = fx.submit(&[fx.transfer(1_000_000)], OpSigner::owner(fx.owner.clone())).await;
    // Owner: the owner slot, the EntryPoint deposit.
    fx.assert_compliant(&included, 2).await;
}

#[tokio::test]
async fn session_transfer_validation_follows_erc7562() {
    let fx = Fixture::new().await;
    let config = fx.session(vec![], vec![fx.usd_limit(true)], U80::MAX, 0, 0).await;
    let id = fx.grant(config).await;
    for _ in 0..2 {
        let included = fx.submit(&[fx.transfer(1_000_000)], fx.session_signer(id)).await;
        // Epoch, session record, spend record (read and charged), the deposit.
        fx.assert_compliant(&included, 5).await;
    }
}

#[tokio::test]
async fn session_swap_with_argument_conditions_validation_follows_erc7562() {
    let fx = Fixture::new().await;
    let amount_in = U256::from(100_000_000u64);
    let permission = ISakSessions::CallPermission {
        target: fx.d.uniswap_v2_router,
        selector: IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR.into(),
        allowValue: false,
        conditions: vec![
            // amountIn <= 500 tUSD: a condition with a stored value.
            ISakSessions::ArgCondition {
                argIndex: 0,
                op: 1,
                argType: 32, // uint256
                values: vec![B256::from(U256::from(500_000_000u64))],
            },
            // to == the account.
            ISakSessions::ArgCondition { argIndex: 3, op: 4, argType: 0x94, values: vec![] }, // address
        ],
    };
    let config = fx.session(vec![permission], vec![fx.usd_limit(false)], U80::MAX, 0, 0).await;
    let id = fx.grant(config).await;

    let provider = fx.kit.provider();
    let path = vec![fx.d.usd, fx.d.tkn];
    let router = IUniswapV2Router02::new(fx.d.uniswap_v2_router, provider);
    let quoted = router.getAmountsOut(amount_in, path.clone()).call().await.unwrap()[1];
    let deadline = U256::from(fx.client.chain_time().await.unwrap() + 3_600);
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: quoted * U256::from(99) / U256::from(100),
        path,
        to: fx.account,
        deadline,
    };
    let adapter = sak_contracts::adapter_of(fx.d.session_adapter, fx.account);
    let calls = funded_call(adapter, fx.d.usd, amount_in, &Call::contract(fx.d.uniswap_v2_router, &swap));
    let included = fx.submit(&calls, fx.session_signer(id)).await;
    assert!(
        MockERC20::new(fx.d.tkn, provider).balanceOf(fx.account).call().await.unwrap()
            >= quoted * U256::from(99) / U256::from(100)
    );
    // Epoch, session, spend record, permission, two conditions, one condition value, the deposit.
    fx.assert_compliant(&included, 8).await;
}

#[tokio::test]
async fn session_with_gas_budget_and_op_limit_validation_follows_erc7562() {
    let fx = Fixture::new().await;
    // 0.05 ETH of gas per day, at most 5 operations.
    let budget = U80::from(5u64 * 10u64.pow(16));
    let config = fx.session(vec![], vec![fx.usd_limit(true)], budget, DAY, 5).await;
    let id = fx.grant(config).await;
    let included = fx.submit(&[fx.transfer(1_000_000)], fx.session_signer(id)).await;
    // The counters are read and written too.
    fx.assert_compliant(&included, 7).await;
}

/// The EIP-7702 form: an EOA delegated to `Sak7702Account` (the sender's code is the
/// delegate's, its storage the EOA's), a session transfer with a finite gas budget and an op
/// limit, sent as sak sends it (the `0x7702` initCode marker, so the operation hash binds the
/// delegate).
#[tokio::test]
async fn session_validation_on_an_eip7702_account_follows_erc7562() {
    let fx = Fixture::new().await;
    let provider = fx.kit.provider();
    let eoa = fx.kit.dev_signers()[3].clone();
    sak_userop::eip7702::delegate_self(provider, &eoa, fx.d.sak_7702_account).await.unwrap();
    let usd = MockERC20::new(fx.d.usd, provider);
    usd.mint(eoa.address(), U256::from(10u64.pow(12))).send().await.unwrap().get_receipt().await.unwrap();
    let budget = U80::from(5u64 * 10u64.pow(16));
    let config = fx.session(vec![], vec![fx.usd_limit(true)], budget, DAY, 5).await;
    // The EOA is its own owner: it grants by calling itself.
    let id = fx.kit.grant_session(eoa.address(), eoa.address(), config).await.unwrap();

    let intent =
        Intent::calls(eoa.address(), sak_userop::session_nonce_key(id, 0), &[fx.transfer(1_000_000)])
            .eip7702(None);
    let included = fx.client.send(&intent, &fx.session_signer(id)).await.unwrap();
    assert!(included.success, "execution failed: {:?}", included.revert);
    let traced = Traced::of(provider, &included, fx.bundler()).await;
    let coverage = assert_follows_rules(&traced, eoa.address(), VALIDATE_USER_OP);
    // State word, session, counters and spend (read and written), the deposit.
    assert!(coverage.storage_ops >= 7, "{coverage:?}");
    assert!(coverage.calls >= 2, "ecrecover and the prefund at least: {coverage:?}");
}

/// A session sponsored by its paymaster (`gasBudget` 0: only that paymaster may pay): the
/// account's validation reads the session's paymaster record and sends no prefund; the
/// paymaster's own validation (an OpenZeppelin paymaster that sponsors everything) is held to
/// the same rules, with no storage at all.
#[tokio::test]
async fn sponsored_session_validation_follows_erc7562() {
    let fx = Fixture::new().await;
    let provider = fx.kit.provider();
    let paymaster = MockPaymaster::deploy(provider).await.unwrap();
    let deposit = paymaster.deposit().value(U256::from(10u64.pow(18)));
    deposit.send().await.unwrap().get_receipt().await.unwrap();
    let pm = *paymaster.address();
    let mut config = fx.session(vec![], vec![fx.usd_limit(true)], U80::ZERO, 0, 0).await;
    config.paymaster = pm;
    let id = fx.grant(config).await;

    let key = sak_userop::session_nonce_key(id, 0);
    let entry_point = IEntryPoint::new(ENTRY_POINT_V08, provider);
    let nonce = entry_point.getNonce(fx.account, key).call().await.unwrap();
    let base_fee = sak_userop::next_base_fee(provider).await.unwrap();
    let fees =
        Fees { max_fee_per_gas: base_fee * 2 + 1_000_000_000, max_priority_fee_per_gas: 1_000_000_000 };
    let limits =
        GasLimits { verification: 400_000, call: 200_000, pre_verification: 100_000, ..Default::default() };
    let sponsor = Paymaster { address: pm, verification_gas: 100_000, post_op_gas: 0, data: Bytes::new() };
    let mut op = UserOpBuilder::new(fx.account)
        .nonce(nonce)
        .call_data(sak_userop::execute_batch(&[fx.transfer(1_000_000)]))
        .gas(limits)
        .fees(fees)
        .paymaster(sponsor)
        .build();
    let chain_id = provider.get_chain_id().await.unwrap();
    let hash = sak_userop::UserOpHasher::new(ENTRY_POINT_V08, chain_id).hash(&op, None).unwrap();
    let clock = fx.client.chain_time().await.unwrap();
    op.signature = fx.session_signer(id).sign(hash, clock).await.unwrap();
    let before = provider.get_balance(fx.account).await.unwrap();
    let included = fx.client.submitter().submit(&op, None, hash).await.unwrap();
    assert!(included.success, "execution failed: {:?}", included.revert);
    assert_eq!(provider.get_balance(fx.account).await.unwrap(), before, "the paymaster paid");

    let traced = Traced::of(provider, &included, fx.bundler()).await;
    let account = assert_follows_rules(&traced, fx.account, VALIDATE_USER_OP);
    // State word, session, paymaster record, spend (read and written).
    assert!(account.storage_ops >= 5, "{account:?}");
    assert!(account.calls >= 1, "ecrecover at least: {account:?}");
    let sponsor = assert_follows_rules_for(&traced, pm, VALIDATE_PAYMASTER_USER_OP, fx.account);
    assert_eq!(sponsor.storage_ops, 0, "{sponsor:?}");
    assert!(sponsor.steps > 50, "the paymaster's frame ran its checks: {sponsor:?}");
}

// ---------------------------------------------------------------------------------------------
// The ERC-7579 module on a third-party modular account
// ---------------------------------------------------------------------------------------------

/// One step of a memory-enabled struct log: enough to read `KECCAK256` inputs and outputs.
#[derive(Deserialize)]
struct MemoryStep {
    op: String,
    depth: u64,
    #[serde(default)]
    stack: Vec<U256>,
    /// 32-byte words, hex (with or without `0x`).
    #[serde(default)]
    memory: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemoryTrace {
    struct_logs: Vec<MemoryStep>,
}

/// The results of every `KECCAK256` in `request`'s execution whose input starts with
/// `account` as a 32-byte word (a mapping keyed by the account), and how many hashes ran.
async fn account_keyed_hashes<P: Provider>(
    provider: &P,
    request: &alloy::rpc::types::TransactionRequest,
    account: Address,
) -> (Associated, usize) {
    let options = json!({ "disableStorage": true, "enableMemory": true, "enableReturnData": false });
    let value: serde_json::Value =
        provider.raw_request("debug_traceCall".into(), (request, "latest", options)).await.unwrap();
    let trace: MemoryTrace = serde_json::from_value(value).unwrap();
    let key = B256::left_padding_from(account.as_slice());
    let mut associated = Associated::default();
    let mut hashes = 0;
    for (i, step) in trace.struct_logs.iter().enumerate() {
        if step.op != "KECCAK256" {
            continue;
        }
        hashes += 1;
        let top = |n: usize| step.stack[step.stack.len() - 1 - n].saturating_to::<usize>();
        let (offset, size) = (top(0), top(1));
        let memory: Vec<u8> = step
            .memory
            .iter()
            .flat_map(|w| alloy::hex::decode(w.trim_start_matches("0x")).expect("hex memory word"))
            .collect();
        if size < 32 || memory.len() < offset + 32 || memory[offset..offset + 32] != key[..] {
            continue;
        }
        let next = trace.struct_logs[i + 1..].iter().find(|s| s.depth == step.depth).expect("hash result");
        associated.bases.push(*next.stack.last().expect("hash on the stack"));
    }
    (associated, hashes)
}

/// `SessionKeyValidator` installed on an OpenZeppelin ERC-7579 account (`MockERC7579Account`):
/// a session transfer with a finite gas budget and an op limit (every record the engine keeps:
/// epoch, session, counters, spend). The module's storage is another contract's, so each slot
/// it reads or writes in validation must be associated with the account; the same op's
/// validation is first traced with memory to learn which slots those are.
#[tokio::test]
async fn module_session_validation_on_an_erc7579_account_follows_erc7562() {
    let fx = Fixture::new().await;
    let provider = fx.kit.provider();
    let module = fx.d.session_key_validator;
    let modular = *MockERC7579Account::deploy(provider, module).await.unwrap().address();
    let fund = alloy::rpc::types::TransactionRequest::default().to(modular).value(U256::from(10u64.pow(18)));
    provider.send_transaction(fund).await.unwrap().get_receipt().await.unwrap();
    MockERC20::new(fx.d.usd, provider)
        .mint(modular, U256::from(10u64.pow(12)))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // The account grants (an owner action): impersonated, through a wallet-less provider so
    // that anvil sends the transaction as the account.
    let budget = U80::from(5u64 * 10u64.pow(16));
    let mut config = fx.session(vec![], vec![fx.usd_limit(true)], budget, DAY, 5).await;
    // On EntryPoint v0.8 the module's op is due from the second after its period's start
    // (contracts/README, "Trust that remains"). A real chain's next block is always later than
    // the clock the op signs (the latest block's time); anvil can mine the grant and the op in
    // the same second, so the session starts one second back.
    config.validAfter -= U40::from(1);
    let _: () = provider.raw_request("anvil_impersonateAccount".into(), (modular,)).await.unwrap();
    let plain = alloy::providers::ProviderBuilder::new().connect_http(fx.kit.rpc_url().parse().unwrap());
    // `grantSession(SessionConfig)` has the same signature on the module and on our accounts.
    let grant = alloy::rpc::types::TransactionRequest::default()
        .from(modular)
        .to(module)
        .input(Bytes::from(SakAccount::grantSessionCall { config }.abi_encode()).into());
    let receipt = plain.send_transaction(grant).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    let _: () = provider.raw_request("anvil_stopImpersonatingAccount".into(), (modular,)).await.unwrap();
    let id = SessionKeyValidator::new(module, provider).getSession(modular, 1).call().await.unwrap();
    assert!(id.active, "session 1 granted on the modular account");

    // A session op on the module's nonce lane (OpenZeppelin routes validation by the key's
    // top 20 bytes).
    let key = sak_userop::module_nonce_key(module, 1);
    let intent = Intent::calls(modular, key, &[fx.transfer(1_000_000)]);
    let reservation = fx.client.lanes().reserve(intent.lane()).await.unwrap();
    let prepared = fx.client.prepare(&intent, &fx.session_signer(1), &reservation).await.unwrap();

    // The same validation, traced with memory, for the account-keyed hashes.
    let (op, hash) = (&prepared.op, prepared.user_op_hash);
    let validate = [&VALIDATE_USER_OP[..], &(op.clone(), hash, U256::ZERO).abi_encode_params()].concat();
    let request = alloy::rpc::types::TransactionRequest::default()
        .from(ENTRY_POINT_V08)
        .to(modular)
        .input(Bytes::from(validate).into())
        .gas_limit(2_000_000);
    let (associated, hashes) = account_keyed_hashes(provider, &request, modular).await;
    assert!(hashes >= associated.bases.len() && associated.bases.len() >= 4, "{associated:?}");

    let included = fx.client.submitter().submit(op, None, hash).await.unwrap();
    reservation.commit();
    assert!(included.success, "execution failed: {:?}", included.revert);
    assert_eq!(
        SessionKeyValidator::new(module, provider).getSpend(modular, 1, fx.d.usd).call().await.unwrap().spent,
        U96::from(1_000_000u64)
    );

    let traced = Traced::of(provider, &included, fx.bundler()).await;
    let (violations, coverage) = traced.validation_violations(modular, &associated);
    assert!(
        violations.is_empty(),
        "ERC-7562 violations in the module's validation:\n  {}",
        violations.join("\n  ")
    );
    assert!(coverage.steps > 300, "{coverage:?}");
    // Epoch, session, counters (read and written), spend (read and written), at least.
    assert!(coverage.associated >= 6, "the module's associated storage was not checked: {coverage:?}");
    assert!(coverage.calls >= 2, "the module call and ecrecover at least: {coverage:?}");

    // Negative control: the same trace without the preimages reports each module slot.
    let (strict, _) = traced.validation_violations(modular, &Associated::default());
    let foreign =
        strict.iter().filter(|v| v.starts_with("STO-010") && v.contains(&module.to_string())).count();
    assert_eq!(foreign, coverage.associated, "{strict:?}");
}

// ---------------------------------------------------------------------------------------------
// The checker can fail
// ---------------------------------------------------------------------------------------------

/// Runtime code: TIMESTAMP (pc 0), NUMBER (pc 1), POP, POP, STOP.
const CLOCK_READER: [u8; 5] = [0x42, 0x43, 0x50, 0x50, 0x00];
const CLOCK_READER_AT: Address = Address::repeat_byte(0xc1);

#[tokio::test]
async fn checker_reports_clock_reads_foreign_storage_and_value_calls_on_a_real_trace() {
    let fx = Fixture::new().await;
    let provider = fx.kit.provider();
    let _: () = provider
        .raw_request("anvil_setCode".into(), (CLOCK_READER_AT, Bytes::from(CLOCK_READER)))
        .await
        .unwrap();
    // The owner may run anything in execution: read the clock, move a token, send 1 wei.
    let calls = [
        Call::new(CLOCK_READER_AT, U256::ZERO, Bytes::new()),
        fx.transfer(1),
        Call::new(ALICE, U256::from(1), Bytes::new()),
    ];
    let included = fx.submit(&calls, OpSigner::owner(fx.owner.clone())).await;
    let traced = Traced::of(provider, &included, fx.bundler()).await;

    // Validation of the same operation is clean...
    let (violations, _) = traced.validation_violations(fx.account, &Associated::default());
    assert!(violations.is_empty(), "{violations:?}");

    // ...and the same checker over its execution frame reports every breach, precisely.
    let (_, execution) = traced.frame(fx.account, SakAccount::executeCall::SELECTOR);
    let (violations, _) =
        check_steps(&traced.logs, &traced.frames, execution, fx.account, &Associated::default());
    let reader =
        traced.frames.frames.iter().find(|f| f.code == Some(CLOCK_READER_AT)).expect("clock reader frame");
    assert!(reader.depth > traced.frames.frames[execution].depth);
    let at = |op: &str, pc| {
        violations.iter().any(|v| {
            v.rule.starts_with("OP-011")
                && v.op == op
                && v.pc == pc
                && v.depth == reader.depth
                && v.code == Some(CLOCK_READER_AT)
        })
    };
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(at("TIMESTAMP", 0), "TIMESTAMP at pc 0 not reported:\n  {}", listed.join("\n  "));
    assert!(at("NUMBER", 1), "NUMBER at pc 1 not reported:\n  {}", listed.join("\n  "));
    assert!(
        violations
            .iter()
            .any(|v| v.rule.starts_with("STO-010") && v.op == "SSTORE" && v.code == Some(fx.d.usd)),
        "the token's SSTORE not reported:\n  {}",
        listed.join("\n  ")
    );
    assert!(
        violations.iter().any(|v| v.rule.starts_with("OP-061") && v.detail.contains(&ALICE.to_string())),
        "the 1 wei to Alice not reported:\n  {}",
        listed.join("\n  ")
    );
    let shown = violations.iter().find(|v| v.op == "TIMESTAMP").unwrap().to_string();
    assert_eq!(
        shown,
        format!(
            "OP-011 banned opcode in validation: TIMESTAMP at pc 0, depth {}, in code {CLOCK_READER_AT}",
            reader.depth
        )
    );
}

fn step(pc: u64, op: &str, depth: u64, stack: &[u64]) -> StructLog {
    StructLog {
        pc,
        op: op.into(),
        gas: 100_000,
        gas_cost: 3,
        depth,
        stack: stack.iter().map(|&v| U256::from(v)).collect(),
    }
}

#[test]
fn gas_counts_only_right_before_a_call() {
    let account = Address::repeat_byte(0xac);
    let ok = [
        step(0, "PUSH1", 1, &[]),
        step(2, "GAS", 1, &[1, 0, 0, 0, 0, 1]),
        step(3, "STATICCALL", 1, &[1, 0, 0, 0, 0, 1, 9]),
    ];
    let frames = Frames::build(&ok, Address::ZERO, account);
    assert!(check_steps(&ok, &frames, 0, account, &Associated::default()).0.is_empty());

    let bad = [step(0, "GAS", 1, &[]), step(1, "POP", 1, &[9])];
    let frames = Frames::build(&bad, Address::ZERO, account);
    let (violations, _) = check_steps(&bad, &frames, 0, account, &Associated::default());
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0].to_string(),
        format!(
            "OP-012 GAS not followed by a call: GAS at pc 0, depth 1, in code {account} (next: Some(\"POP\"))"
        )
    );
}

#[test]
fn storage_of_another_contract_reached_by_a_call_is_reported() {
    let account = Address::repeat_byte(0xac);
    let other = Address::repeat_byte(0x07);
    let word = |a: Address| U256::from_be_slice(a.as_slice());
    // The account CALLs `other` (gas, to, value 0, ...); `other` reads slot 5.
    let logs = [
        StructLog {
            stack: vec![
                U256::ZERO,
                U256::ZERO,
                U256::ZERO,
                U256::ZERO,
                U256::ZERO,
                word(other),
                U256::from(50_000),
            ],
            ..step(0, "CALL", 1, &[])
        },
        step(0, "PUSH1", 2, &[]),
        step(2, "SLOAD", 2, &[5]),
        step(3, "STOP", 2, &[]),
        step(1, "STOP", 1, &[1]),
    ];
    let frames = Frames::build(&logs, Address::ZERO, account);
    assert_eq!(frames.frames[1].storage, Some(other));
    let (violations, coverage) = check_steps(&logs, &frames, 0, account, &Associated::default());
    assert_eq!(coverage.storage_ops, 1);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].rule, "STO-010 storage outside the account");
    assert_eq!((violations[0].pc, violations[0].depth, violations[0].code), (2, 2, Some(other)));

    // Slot 5 is keccak(account ‖ x) + 5 for a base of 0: associated, so allowed...
    let near = Associated { bases: vec![U256::ZERO] };
    let (violations, coverage) = check_steps(&logs, &frames, 0, account, &near);
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(coverage.associated, 1);
    // ...but not 129 or more past the base, nor below it.
    for base in [U256::from(6), U256::MAX - U256::from(200)] {
        let far = Associated { bases: vec![base] };
        assert_eq!(check_steps(&logs, &frames, 0, account, &far).0.len(), 1, "base {base}");
    }
    let just = Associated { bases: vec![U256::ZERO] };
    assert!(just.contains(U256::from(128)) && !just.contains(U256::from(129)));
}
