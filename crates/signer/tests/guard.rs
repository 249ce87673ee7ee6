//! The guarded signer on anvil: a bot swapping through the real Uniswap V2 router within its
//! cap, refused locally with what remains, the same operation forced past the local check and
//! refused on chain; concurrent lanes sharing one ledger never exceed the cap together; revoked,
//! expired, wrong-chain and malformed inputs give their error and leave the ledger consistent;
//! a `kill -9` at each step of the pipeline, then `recover`, loses no reservation, resubmits
//! nothing and spends nothing twice.

use alloy::{
    primitives::{Address, B256, U256, aliases::U192},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use sak_contracts::{IUniswapV2Router02, MockERC20, SakAccount};
use sak_policy::{Call, Context, Refusal, Session, calldata::funded_call};
use sak_primitives::{ArgType, Condition, Gas, Op, Permission, Policy, SpendLimit};
use sak_signer::{
    Error,
    guard::{Binding, GuardedSigner, Preflight, Recovered, load_session},
    keystore::LocalKey,
    ledger::{IntentId, IntentState, Ledger, MemoryLedger, SqliteLedger},
};
use sak_testkit::{Kit, Profile};
use sak_userop::{FeeCaps, SelfBundler, session_nonce_key};
use std::{os::unix::process::ExitStatusExt, path::Path, process::Command, sync::Arc};

const DAY: u64 = 86_400;
/// 1,000 tUSD a day (6 decimals).
const CAP: u64 = 1_000_000_000;
const ALICE: Address = Address::repeat_byte(0xa1);

struct Fixture {
    kit: Kit,
    account: Address,
    owner: Address,
    relayer: PrivateKeySigner,
}

impl Fixture {
    async fn new() -> Self {
        let kit = Kit::start(Profile::test()).await.unwrap();
        let (owner, relayer) = (kit.dev_accounts()[1], kit.dev_signers()[3].clone());
        let account = kit.sak_account(owner, B256::ZERO).await.unwrap();
        Self { kit, account, owner, relayer }
    }

    fn provider(&self) -> &DynProvider {
        self.kit.provider()
    }

    async fn now(&self) -> u64 {
        self.kit.chain_time().await.unwrap()
    }

    /// A trader policy: swaps on the router to the account, tUSD approvals up to [`CAP`] a day
    /// and transfers, for 30 days.
    async fn trader_policy(&self) -> Policy {
        let d = self.kit.deployment();
        let now = self.now().await;
        Policy {
            valid_after: now,
            valid_until: now + 30 * DAY,
            permissions: vec![Permission {
                target: d.uniswap_v2_router,
                selector: IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR.into(),
                allow_value: false,
                conditions: vec![Condition { arg: 3, op: Op::EqAccount, ty: ArgType::Address }],
            }],
            spend_limits: vec![SpendLimit {
                token: d.usd,
                allowance: U256::from(CAP),
                period: DAY as u32,
                transfer: true,
            }],
            gas: Gas::Unlimited,
            max_fee_per_gas: 0,
            max_pre_verification_gas: 0,
            max_ops: 0,
            paymaster: None,
        }
    }

    async fn grant(&self, policy: &Policy, key: Address) -> u32 {
        self.kit.grant_session(self.account, self.owner, policy.to_session_config(key)).await.unwrap()
    }

    async fn guard<L: Ledger + 'static>(
        &self,
        key: LocalKey,
        id: u32,
        lane: u64,
        ledger: Arc<L>,
    ) -> GuardedSigner<L, SelfBundler> {
        self.guard_via(key, id, lane, ledger, self.relayer.clone()).await
    }

    /// [`Fixture::guard`] with its own relayer: a `SelfBundler` keeps its relayer's transaction
    /// nonces itself, so concurrent bundlers need a relayer key each.
    async fn guard_via<L: Ledger + 'static>(
        &self,
        key: LocalKey,
        id: u32,
        lane: u64,
        ledger: Arc<L>,
        relayer: PrivateKeySigner,
    ) -> GuardedSigner<L, SelfBundler> {
        let session = load_session(self.provider(), self.account, id).await.unwrap();
        let binding = Binding {
            chain_id: self.kit.chain_id(),
            context: Context::account(self.account, self.kit.deployment().entry_point),
            session_id: id,
            lane_key: session_nonce_key(id, lane.into()),
            init_code: Default::default(),
            delegate: None,
        };
        let bundler =
            SelfBundler::new(self.kit.rpc_url(), relayer, self.kit.deployment().entry_point).await.unwrap();
        GuardedSigner::new(
            key,
            session,
            binding,
            self.provider().clone(),
            bundler,
            FeeCaps::UNLIMITED,
            ledger,
        )
        .await
        .unwrap()
    }

    /// tUSD into the account's adapter, and the adapter's swap of it (recipient: the account).
    fn fund_and_swap(&self, amount: u64) -> Vec<Call> {
        let d = self.kit.deployment();
        let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
            amountIn: U256::from(amount),
            amountOutMin: U256::from(1),
            path: vec![d.usd, d.tkn],
            to: self.account,
            deadline: U256::MAX,
        };
        let adapter = sak_contracts::adapter_of(d.session_adapter, self.account);
        funded_call(adapter, d.usd, U256::from(amount), &Call::contract(d.uniswap_v2_router, &swap))
    }

    fn transfer(&self, amount: u64) -> Vec<Call> {
        vec![Call::contract(
            self.kit.deployment().usd,
            &MockERC20::transferCall { to: ALICE, value: U256::from(amount) },
        )]
    }

    async fn spent(&self, id: u32) -> U256 {
        let spend = SakAccount::new(self.account, self.provider())
            .getSpend(id, self.kit.deployment().usd)
            .call()
            .await
            .unwrap();
        U256::from(spend.spent)
    }

    async fn balance(&self, token: Address, who: Address) -> U256 {
        MockERC20::new(token, self.provider()).balanceOf(who).call().await.unwrap()
    }
}

fn assert_consistent<L: Ledger>(ledger: &L) {
    assert!(ledger.unresolved().unwrap().is_empty(), "nothing left in flight");
}

#[tokio::test]
async fn bot_swaps_within_its_cap_is_refused_locally_then_on_chain() {
    let fx = Fixture::new().await;
    let d = *fx.kit.deployment();
    let key = LocalKey::generate().unwrap();
    let id = fx.grant(&fx.trader_policy().await, key.address()).await;
    let ledger = Arc::new(MemoryLedger::new());
    let bot = fx.guard(key, id, 1, ledger.clone()).await;

    let tkn_before = fx.balance(d.tkn, fx.account).await;
    let done = bot.execute(&fx.fund_and_swap(600_000_000), Preflight::Check).await.unwrap();
    assert!(done.receipt.success, "{:?}", done.receipt.revert);
    assert!(fx.balance(d.tkn, fx.account).await > tkn_before, "the swap paid the account");
    assert_eq!(fx.spent(id).await, U256::from(600_000_000u64));
    assert_eq!(done.charges[0].remaining, U256::from(400_000_000u64));

    // The next swap does not fit: refused before anything is signed, with what remains.
    let err = bot.execute(&fx.fund_and_swap(600_000_000), Preflight::Check).await.unwrap_err();
    let Error::Refused(Refusal::SpendCapExceeded { token, requested, remaining, resets_at: Some(resets_at) }) =
        &err
    else {
        panic!("expected SpendCapExceeded, got {err}")
    };
    assert_eq!(
        (*token, *requested, *remaining),
        (d.usd, U256::from(600_000_000u64), U256::from(400_000_000u64))
    );
    let session = bot.session().await;
    assert_eq!(*resets_at, session.policy.valid_after + DAY);
    assert!(err.to_string().contains("SpendCapExceeded"), "{err}");
    assert!(err.hint().is_some(), "a refusal says what to do");

    // Forced past the local check: the contracts refuse it with the same error.
    let err = bot.execute(&fx.fund_and_swap(600_000_000), Preflight::SkipForProof).await.unwrap_err();
    match err.refusal() {
        Some(Refusal::SpendCapExceeded { requested, remaining, .. }) => {
            assert_eq!((requested, remaining), (U256::from(600_000_000u64), U256::from(400_000_000u64)));
        }
        other => panic!("expected the chain's SpendCapExceeded, got {other:?} from {err}"),
    }
    assert_eq!(fx.spent(id).await, U256::from(600_000_000u64), "nothing more left the account");
    assert_consistent(ledger.as_ref());
    let decisions = ledger.decisions(0).unwrap();
    let reasons: Vec<(&str, bool)> = decisions.iter().map(|d| (d.reason.as_str(), d.allowed)).collect();
    assert_eq!(reasons, [("ok", true), ("SpendCapExceeded", false), ("SpendCapExceeded", false)]);

    // What remains still goes through.
    bot.execute(&fx.fund_and_swap(400_000_000), Preflight::Check).await.unwrap();
    assert_eq!(fx.spent(id).await, U256::from(CAP));
}

#[tokio::test]
async fn concurrent_lanes_sharing_a_ledger_never_exceed_the_cap() {
    let fx = Fixture::new().await;
    let key = PrivateKeySigner::random();
    let id = fx.grant(&fx.trader_policy().await, key.address()).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SqliteLedger::open(&dir.path().join("ledger.db")).unwrap());
    let mut bots = Vec::new();
    for lane in 1..=5u64 {
        let relayer = fx.kit.dev_signers()[3 + lane as usize].clone();
        let bot = fx.guard_via(LocalKey::from_signer(key.clone()), id, lane, ledger.clone(), relayer).await;
        bots.push(Arc::new(bot));
    }
    // Five bots each want 300 tUSD of a 1,000 tUSD day: three fit.
    let tasks: Vec<_> = bots
        .iter()
        .map(|bot| {
            let (bot, calls) = (bot.clone(), fx.transfer(300_000_000));
            tokio::spawn(async move { bot.execute(&calls, Preflight::Check).await })
        })
        .collect();
    let mut ok = 0u64;
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => {
                assert!(done.receipt.success);
                ok += 1;
            }
            // Refused locally (the ledger saw the others in flight), or by the contracts when the
            // simulation ran after the others landed: either way nothing was sent.
            Err(e) if matches!(e.refusal(), Some(Refusal::SpendCapExceeded { .. })) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 3, "exactly what fits the cap went through");
    assert_eq!(fx.spent(id).await, U256::from(900_000_000u64));
    assert_eq!(fx.balance(fx.kit.deployment().usd, ALICE).await, U256::from(900_000_000u64));
    assert_consistent(ledger.as_ref());
}

#[tokio::test]
async fn revoked_expired_wrong_chain_and_malformed_inputs_are_refused_cleanly() {
    let fx = Fixture::new().await;
    let key = PrivateKeySigner::random();
    let policy = fx.trader_policy().await;
    let ledger = Arc::new(MemoryLedger::new());

    // Malformed: an empty batch, and a call the policy does not know.
    let id = fx.grant(&policy, key.address()).await;
    let bot = fx.guard(LocalKey::from_signer(key.clone()), id, 1, ledger.clone()).await;
    let err = bot.execute(&[], Preflight::Check).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refusal::EmptyBatch)), "{err}");
    let foreign =
        Call::contract(fx.kit.deployment().tkn, &MockERC20::transferCall { to: ALICE, value: U256::from(1) });
    let err = bot.execute(&[foreign], Preflight::Check).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refusal::CallNotPermitted { .. })), "{err}");

    // Revoked: refused locally, and on chain when forced.
    SakAccount::new(fx.account, fx.provider())
        .revokeSession(id)
        .from(fx.owner)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let err = bot.execute(&fx.transfer(1), Preflight::Check).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refusal::SessionNotActive { id: i }) if i == id), "{err}");
    let err = bot.execute(&fx.transfer(1), Preflight::SkipForProof).await.unwrap_err();
    assert!(matches!(err.refusal(), Some(Refusal::SessionNotActive { .. })), "{err}");

    // Expired: a new session, then the chain's clock moves past its end.
    let id = fx.grant(&policy, key.address()).await;
    let bot = fx.guard(LocalKey::from_signer(key.clone()), id, 2, ledger.clone()).await;
    let _: u64 = fx.provider().raw_request("evm_increaseTime".into(), (31 * DAY,)).await.unwrap();
    let _: String = fx.provider().raw_request("evm_mine".into(), ()).await.unwrap();
    let err = bot.execute(&fx.transfer(1), Preflight::Check).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refusal::ClockOutsideSession { .. })), "{err}");
    assert_eq!(fx.spent(id).await, U256::ZERO);
    assert_consistent(ledger.as_ref());

    // Wrong chain: a binding for another chain id is refused before anything is signed.
    let session: Session = load_session(fx.provider(), fx.account, id).await.unwrap();
    let binding = Binding {
        chain_id: 1,
        context: Context::account(fx.account, fx.kit.deployment().entry_point),
        session_id: id,
        lane_key: session_nonce_key(id, 3),
        init_code: Default::default(),
        delegate: None,
    };
    let bundler = SelfBundler::new(fx.kit.rpc_url(), fx.relayer.clone(), fx.kit.deployment().entry_point)
        .await
        .unwrap();
    let build = |binding: Binding, key: PrivateKeySigner, bundler: SelfBundler| {
        GuardedSigner::new(
            LocalKey::from_signer(key),
            session.clone(),
            binding,
            fx.provider().clone(),
            bundler,
            FeeCaps::UNLIMITED,
            ledger.clone(),
        )
    };
    let err = build(binding.clone(), key.clone(), bundler).await.unwrap_err();
    assert!(matches!(err, Error::WrongChain { expected: 1, .. }), "{err}");
    // More initCode than the 0x7702 marker: the contracts would refuse every operation.
    let bundler = SelfBundler::new(fx.kit.rpc_url(), fx.relayer.clone(), fx.kit.deployment().entry_point)
        .await
        .unwrap();
    let long = Binding { chain_id: fx.kit.chain_id(), init_code: vec![0x77; 21].into(), ..binding.clone() };
    let err = build(long, key.clone(), bundler).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refusal::SessionInitCode)), "{err}");
    // A nonce lane that is not the session's (the owner's key 0, another session's lane): the
    // contracts refuse every such operation (`SessionNonceKey`), so the guard signs none.
    for lane_key in [U192::ZERO, session_nonce_key(id + 1, 0)] {
        let bundler = SelfBundler::new(fx.kit.rpc_url(), fx.relayer.clone(), fx.kit.deployment().entry_point)
            .await
            .unwrap();
        let other = Binding { chain_id: fx.kit.chain_id(), lane_key, ..binding.clone() };
        let err = build(other, key.clone(), bundler).await.unwrap_err();
        assert!(matches!(err, Error::Refused(Refusal::SessionNonceKey { key }) if key == lane_key), "{err}");
    }
    assert!(ledger.decisions(0).unwrap().iter().all(|d| !d.allowed));
}

// ---------------------------------------------------------------------------------------------
// kill -9 at each step of the pipeline
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "SAK_GUARD_CRASH";

/// The child role: sends one 100 tUSD transfer through a guard with a SQLite ledger, against the
/// parent's anvil; `SAK_FAILPOINT` kills it on the way. Does nothing unless the parent set
/// `SAK_GUARD_CRASH` (JSON: rpc, ledger, id, account, entryPoint, usd, chainId).
#[tokio::test]
async fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let field = |k: &str| spec[k].as_str().unwrap().to_owned();
    let (rpc, account, entry_point) =
        (field("rpc"), field("account").parse().unwrap(), field("entryPoint").parse().unwrap());
    let id = spec["id"].as_u64().unwrap() as u32;
    let provider = sak_userop::retrying_provider(&rpc, Default::default()).unwrap();
    let session = load_session(&provider, account, id).await.unwrap();
    let binding = Binding {
        chain_id: spec["chainId"].as_u64().unwrap(),
        context: Context::account(account, entry_point),
        session_id: id,
        lane_key: session_nonce_key(id, 7),
        init_code: Default::default(),
        delegate: None,
    };
    let bundler = SelfBundler::new(&rpc, dev_key(RELAYER), entry_point).await.unwrap();
    let ledger = Arc::new(SqliteLedger::open(Path::new(&field("ledger"))).unwrap());
    let bot = GuardedSigner::new(
        LocalKey::from_signer(dev_key(SESSION_KEY)),
        session,
        binding,
        provider,
        bundler,
        FeeCaps::UNLIMITED,
        ledger,
    )
    .await
    .unwrap();
    let usd = field("usd").parse().unwrap();
    let transfer =
        Call::contract(usd, &MockERC20::transferCall { to: ALICE, value: U256::from(100_000_000u64) });
    bot.execute(&[transfer], Preflight::Check).await.unwrap();
}

/// Dev accounts: 1 owner, 3 relayer, 5 the crash test's session key.
const RELAYER: u32 = 3;
const SESSION_KEY: u32 = 5;

/// One of anvil's public dev keys, from its public test mnemonic.
fn dev_key(index: u32) -> PrivateKeySigner {
    alloy::signers::local::MnemonicBuilder::<alloy::signers::local::coins_bip39::English>::default()
        .phrase("test test test test test test test test test test test junk")
        .index(index)
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test]
async fn kill_9_at_each_step_then_recover_loses_nothing_and_spends_nothing_twice() {
    let fx = Fixture::new().await;
    let key = dev_key(SESSION_KEY);
    let id = fx.grant(&fx.trader_policy().await, key.address()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    assert_eq!(key.address(), fx.kit.dev_accounts()[SESSION_KEY as usize]);
    let d = *fx.kit.deployment();
    let spec = serde_json::json!({
        "rpc": fx.kit.rpc_url(),
        "ledger": db.display().to_string(),
        "id": id,
        "account": fx.account,
        "entryPoint": d.entry_point,
        "usd": d.usd,
        "chainId": fx.kit.chain_id(),
    })
    .to_string();
    // (failpoint, what recover must do with the child's intent)
    type Case = (&'static str, fn(&Recovered) -> bool);
    // The reservation and the signed bytes are one transaction (`reserve`): no state holds one
    // without the other.
    let cases: [Case; 3] = [
        ("reserve:after_commit", |r| matches!(r, Recovered::Pending(..))),
        ("guard:after_sign", |r| matches!(r, Recovered::Pending(..))),
        ("guard:after_submit", |r| matches!(r, Recovered::Included(..))),
    ];
    let mut expected_spent = 0u64;
    for (failpoint, check) in cases {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &spec)
            .env("SAK_FAILPOINT", failpoint)
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{failpoint}: the child must die by SIGKILL");

        let ledger = Arc::new(SqliteLedger::open(&db).unwrap());
        assert_eq!(ledger.unresolved().unwrap().len(), 1, "{failpoint}: the reservation survived");
        let bot = fx.guard(LocalKey::from_signer(key.clone()), id, 7, ledger.clone()).await;
        let recovered = bot.recover().await.unwrap();
        assert_eq!(recovered.len(), 1, "{failpoint}");
        assert!(check(&recovered[0]), "{failpoint}: {recovered:?}");
        match recovered[0] {
            Recovered::Included(..) => expected_spent += 100_000_000,
            Recovered::Pending(old, _) => {
                // Signed, never sent: nothing resubmits it and its reservation still counts.
                assert_eq!(fx.spent(id).await, U256::from(expected_spent), "{failpoint}: not resubmitted");
                assert_eq!(ledger.get(old).unwrap().state, IntentState::Signed);
                // The lane's next operation takes its nonce. A different one leaves it Failed;
                // the identical one (signatures are deterministic) carries that intent on, so
                // the operation is counted once.
                let (amount, then) = match failpoint {
                    "guard:after_sign" => (100_000_000, IntentState::Included),
                    _ => (40_000_000, IntentState::Failed),
                };
                bot.execute(&fx.transfer(amount), Preflight::Check).await.unwrap();
                expected_spent += amount;
                assert_eq!(ledger.get(old).unwrap().state, then, "{failpoint}");
            }
            _ => {}
        }
        assert_consistent(ledger.as_ref());
        // The chain and the ledger agree: every included intent is spent once, nothing else.
        assert_eq!(fx.spent(id).await, U256::from(expected_spent), "{failpoint}");
        let included: U256 = (1..)
            .map_while(|i| ledger.get(IntentId(i)).ok())
            .filter(|r| r.state == IntentState::Included)
            .flat_map(|r| r.intent.spends.into_iter().map(|s| s.amount))
            .sum();
        assert_eq!(included, U256::from(expected_spent), "{failpoint}");
        // Recovering again changes nothing.
        assert!(bot.recover().await.unwrap().is_empty());
    }
    // After all that, the lane still works.
    let ledger = Arc::new(SqliteLedger::open(&db).unwrap());
    let bot = fx.guard(LocalKey::from_signer(key), id, 7, ledger).await;
    bot.execute(&fx.transfer(1), Preflight::Check).await.unwrap();
}

#[tokio::test]
async fn a_rotated_session_keeps_its_spend_and_refuses_the_old_key() {
    let fx = Fixture::new().await;
    let (old_key, new_key) = (LocalKey::generate().unwrap(), LocalKey::generate().unwrap());
    let new_address = new_key.address();
    let id = fx.grant(&fx.trader_policy().await, old_key.address()).await;
    let old = fx.guard(old_key, id, 1, Arc::new(MemoryLedger::new())).await;
    old.execute(&fx.transfer(600_000_000), Preflight::Check).await.unwrap();

    // The owner rotates the session to a new key in one transaction.
    let owner = fx.kit.provider();
    SakAccount::new(fx.account, owner)
        .rotateSessionKey(id, new_address)
        .from(fx.owner)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // The old key's guard sees the rotation and signs nothing.
    let err = old.execute(&fx.transfer(1), Preflight::Check).await.unwrap_err();
    assert!(matches!(err, Error::WrongSessionKey { expected, .. } if expected == new_address), "{err}");

    // The new key has what the period has left, not a fresh cap.
    let new = fx.guard(new_key, id, 2, Arc::new(MemoryLedger::new())).await;
    let err = new.execute(&fx.transfer(400_000_001), Preflight::Check).await.unwrap_err();
    assert!(matches!(err, Error::Refused(Refusal::SpendCapExceeded { .. })), "{err}");
    new.execute(&fx.transfer(400_000_000), Preflight::Check).await.unwrap();
    assert_eq!(fx.spent(id).await, U256::from(CAP));
}

#[tokio::test]
async fn fee_caps_lower_the_price_and_refuse_what_exceeds_them() {
    let fx = Fixture::new().await;
    let base_fee = sak_userop::next_base_fee(fx.provider()).await.unwrap();
    // The default price is 2 x base fee + 1 gwei of tip; this cap is below it, above the base.
    let cap = base_fee + base_fee / 2 + 1;
    let policy = Policy {
        gas: Gas::Budget { wei: U256::from(50_000_000_000_000_000u64), period: DAY as u32 },
        max_fee_per_gas: cap as u64,
        ..fx.trader_policy().await
    };
    let key = LocalKey::generate().unwrap();
    let id = fx.grant(&policy, key.address()).await;
    let ledger = Arc::new(MemoryLedger::new());
    let bot = fx.guard(key, id, 1, ledger.clone()).await;

    // Within the cap: the tip and the fee are lowered to fit it, and the op lands.
    assert!(base_fee > 0, "anvil's base fee");
    let done = bot.execute(&fx.fund_and_swap(100_000_000), Preflight::Check).await.unwrap();
    assert!(done.receipt.success, "{:?}", done.receipt.revert);
    let price = done.receipt.actual_gas_cost / done.receipt.actual_gas_used;
    assert!(price <= U256::from(cap), "paid {price} wei per gas, above the cap {cap}");

    // A base fee above the cap: refused before signing, with the contracts' name and a hint.
    let _: () = fx
        .provider()
        .raw_request("anvil_setNextBlockBaseFeePerGas".into(), (U256::from(cap + 1),))
        .await
        .unwrap();
    let err = bot.execute(&fx.fund_and_swap(100_000_000), Preflight::Check).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused(Refusal::FeePerGasAboveCap { requested, cap: c })
            if *requested == U256::from(cap + 1) && *c == U256::from(cap)),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("max_fee_per_gas"), "{:?}", err.hint());
    assert_consistent(ledger.as_ref());

    // A preVerificationGas cap below what the operation needs: the policy's refusal.
    let key = LocalKey::generate().unwrap();
    let tight = Policy { max_fee_per_gas: 0, max_pre_verification_gas: 1_000, ..policy };
    let id = fx.grant(&tight, key.address()).await;
    let bot = fx.guard(key, id, 1, ledger.clone()).await;
    let err = bot.execute(&fx.fund_and_swap(100_000_000), Preflight::Check).await.unwrap_err();
    assert!(matches!(&err, Error::Refused(Refusal::PreVerificationGasAboveCap { .. })), "{err}");
    // Forced past the local check, the contracts refuse it with the same error.
    let err = bot.execute(&fx.fund_and_swap(100_000_000), Preflight::SkipForProof).await.unwrap_err();
    assert!(matches!(err.refusal(), Some(Refusal::PreVerificationGasAboveCap { .. })), "{err}");
    assert_consistent(ledger.as_ref());
}

/// The same guard on a modular account: sak's `Sak7579Account` (OpenZeppelin's ERC-7579
/// account) whose sessions the `SessionKeyValidator` module keeps. The owner grants by an owner
/// operation (the account calls the module); the session is read back from the module's
/// account-scoped event and counters; a transfer within the cap lands on the module's nonce
/// lane; one beyond it is refused before signing, with what remains, and by the module when
/// forced.
#[tokio::test]
async fn a_modular_accounts_session_is_guarded_like_any_other() {
    use sak_signer::guard::{Host, load_hosted_session};
    use sak_userop::{Intent, OpSigner, UserOpClient, module_nonce_key};
    let fx = Fixture::new().await;
    let d = *fx.kit.deployment();
    let owner_key = fx.kit.dev_signers()[2].clone();
    let account = fx.kit.sak_7579_account(owner_key.address(), B256::ZERO).await.unwrap();
    let module = d.session_key_validator;

    // The owner grants through an owner operation: only the EntryPoint or the account itself
    // may make the account call anything.
    let key = LocalKey::generate().unwrap();
    let mut policy = fx.trader_policy().await;
    policy.permissions.clear();
    let grant = Call::contract(
        module,
        // `grantSession(SessionConfig)`: the same function on the module and on sak's accounts.
        &SakAccount::grantSessionCall { config: policy.to_session_config(key.address()) },
    );
    let bundler = SelfBundler::new(fx.kit.rpc_url(), fx.relayer.clone(), d.entry_point).await.unwrap();
    let client = UserOpClient::new(fx.provider().clone(), bundler, FeeCaps::UNLIMITED).await.unwrap();
    let sent = client
        .send(&Intent::calls(account, U192::ZERO, &[grant]), &OpSigner::owner(owner_key))
        .await
        .unwrap();
    assert!(sent.success, "the owner's grant operation: {:?}", sent.revert);

    let host = Host::module(account, module);
    let session = load_hosted_session(fx.provider(), host, 1, 0).await.unwrap();
    assert_eq!((session.id, session.signer), (1, key.address()), "read back from AccountSessionGranted");
    // Another account's session #1 on the same module is not this one.
    assert!(load_hosted_session(fx.provider(), Host::module(fx.account, module), 1, 0).await.is_err());

    let binding = Binding {
        chain_id: fx.kit.chain_id(),
        context: Context::module(account, d.entry_point, module),
        session_id: 1,
        lane_key: module_nonce_key(module, 1),
        init_code: Default::default(),
        delegate: None,
    };
    let bundler = SelfBundler::new(fx.kit.rpc_url(), fx.relayer.clone(), d.entry_point).await.unwrap();
    let ledger = Arc::new(MemoryLedger::new());
    let bot =
        GuardedSigner::new(key, session, binding, fx.provider().clone(), bundler, FeeCaps::UNLIMITED, ledger)
            .await
            .unwrap();
    let transfer = |amount: u64| {
        vec![Call::contract(d.usd, &MockERC20::transferCall { to: ALICE, value: U256::from(amount) })]
    };
    // The module admits a period's operations from the second after its start.
    let _: u64 = fx.provider().raw_request("evm_increaseTime".into(), (2,)).await.unwrap();
    let _: String = fx.provider().raw_request("evm_mine".into(), ()).await.unwrap();

    let done = bot.execute(&transfer(600_000_000), Preflight::Check).await.unwrap();
    assert!(done.receipt.success, "{:?}", done.receipt.revert);
    assert_eq!(fx.balance(d.usd, ALICE).await, U256::from(600_000_000u64));
    let spent = sak_contracts::SessionKeyValidator::new(module, fx.provider())
        .getSpend(account, 1, d.usd)
        .call()
        .await
        .unwrap()
        .spent;
    assert_eq!(U256::from(spent), U256::from(600_000_000u64), "charged by the module");

    let err = bot.execute(&transfer(600_000_000), Preflight::Check).await.unwrap_err();
    let Error::Refused(Refusal::SpendCapExceeded { remaining, .. }) = &err else {
        panic!("expected SpendCapExceeded, got {err}")
    };
    assert_eq!(*remaining, U256::from(400_000_000u64), "read from the module's counters");
    let err = bot.execute(&transfer(600_000_000), Preflight::SkipForProof).await.unwrap_err();
    assert!(
        matches!(err.refusal(), Some(Refusal::SpendCapExceeded { .. })),
        "the module refuses it too: {err}"
    );
    assert_eq!(fx.balance(d.usd, ALICE).await, U256::from(600_000_000u64), "nothing more left");
}
