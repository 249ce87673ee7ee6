//! The pipeline on anvil: session and owner operations on a sak smart account reach receipts
//! by self-bundling and through Alto; a policy refusal comes back as the typed
//! `SpendCapExceeded`; concurrent lanes; fee caps under a base-fee spike; relayer checks; the
//! EIP-7702 account path.

mod common;

use alloy::{
    primitives::{Address, U256, aliases::U192},
    providers::Provider,
};
use common::{Fixture, USD_CAP, fund};
use sak_contracts::{SakAccount, sak_7702::Sak7702Account};
use sak_userop::{
    AaCode, Error, FeeCapKind, FeeCaps, Intent, OpSigner, SakError, SelfBundler, Sent, Submitter,
    UserOpClient,
    eip7702::{self, AuthorizationSender, ChainScope},
};

/// Lane `lane` of session `id` (the contracts admit a session's ops only in its own lanes).
fn lane(id: u32, lane: u64) -> U192 {
    sak_userop::session_nonce_key(id, lane.into())
}

/// The owner's lane.
const OWNER_LANE: U192 = U192::ZERO;

async fn session_and_owner_ops_reach_receipts<S: Submitter>(fx: &Fixture, client: &UserOpClient<S>) {
    let before = fx.usd_balance(common::ALICE).await;
    let session = Intent::calls(fx.account, lane(fx.session, 0), &[fx.transfer(1_000_000)]);
    let r = client.send(&session, &fx.session_signer()).await.unwrap();
    assert!(r.success, "session op: {:?}", r.revert);
    assert_eq!(r.sender, fx.account);
    assert!(r.actual_gas_cost > U256::ZERO && r.actual_gas_used > U256::ZERO);
    assert_eq!(r.nonce, (U256::from(lane(fx.session, 0)) << 64));
    let tx = fx.provider().get_transaction_receipt(r.tx_hash).await.unwrap().unwrap();
    assert_eq!(tx.block_number, Some(r.block_number));

    // The detailed form keeps the operation as sent: the one the receipt is about, signed by
    // the owner over its hash, carrying the limits it reports.
    let owner = Intent::calls(fx.account, OWNER_LANE, &[fx.transfer(2_000_000)]);
    let Sent { prepared, receipt: r } = client.send_detailed(&owner, &fx.owner_signer()).await.unwrap();
    assert!(r.success, "owner op: {:?}", r.revert);
    assert_eq!(prepared.user_op_hash, r.user_op_hash);
    assert_eq!((prepared.op.sender, prepared.op.nonce), (r.sender, r.nonce));
    assert_eq!(sak_userop::gas_limits(&prepared.op), prepared.limits);
    assert_eq!(client.hasher().hash(&prepared.op, None).unwrap(), r.user_op_hash);
    let signature = alloy::primitives::Signature::from_raw(&prepared.op.signature).unwrap();
    assert_eq!(signature.recover_address_from_prehash(&r.user_op_hash).unwrap(), fx.owner.address());
    assert_eq!(fx.usd_balance(common::ALICE).await - before, U256::from(3_000_000));
}

/// Over the daily cap: the account's `validateUserOp` reverts with the policy error; the
/// EntryPoint wraps it (AA23) and we get `SpendCapExceeded` back, typed. Nothing was sent, so
/// the nonce is free again.
async fn over_cap_is_refused_with_spend_cap_exceeded<S: Submitter>(fx: &Fixture, client: &UserOpClient<S>) {
    let intent = Intent::calls(fx.account, lane(fx.session, 77), &[fx.transfer(USD_CAP + 1)]);
    let err = client.send(&intent, &fx.session_signer()).await.unwrap_err();
    assert_eq!(err.aa_code(), Some(AaCode::Reverted), "{err}");
    match err.sak() {
        Some(SakError::SpendCapExceeded(e)) => {
            assert_eq!(e.token, fx.d.usd);
            assert_eq!(e.requested, U256::from(USD_CAP + 1));
        }
        _ => panic!("expected SpendCapExceeded, got {err}"),
    }
    assert!(err.to_string().contains("SpendCapExceeded(token: "), "{err}");
    let snapshot = client.lanes().snapshot(intent.lane()).unwrap();
    assert!(snapshot.in_flight.is_empty() && snapshot.next == 0, "{snapshot:?}");
}

#[tokio::test]
async fn self_bundled_session_and_owner_ops_reach_receipts() {
    let fx = Fixture::new().await;
    let client = fx.self_client().await;
    session_and_owner_ops_reach_receipts(&fx, &client).await;
}

#[tokio::test]
async fn alto_session_and_owner_ops_reach_receipts() {
    let fx = Fixture::new().await;
    let alto = fx.alto().await;
    let client = fx.alto_client(&alto).await;
    assert_eq!(client.submitter().supported_entry_points().await.unwrap(), vec![fx.d.entry_point]);
    assert_eq!(client.submitter().chain_id().await.unwrap(), fx.kit.chain_id());
    session_and_owner_ops_reach_receipts(&fx, &client).await;
}

/// Alto in safe mode cannot validate any EntryPoint v0.8 operation, ours or anyone's: a
/// tripwire, so the day a pinned Alto can, this fails and becomes the safe-mode test.
///
/// Anvil runs Alto's JavaScript ERC-7562 collector (`debug_traceCall` with a JS tracer), so
/// the node is not the obstacle. Alto 0.0.20's safe validator simulates a v0.8 operation
/// through the EntryPoint's `delegateAndRevert`, then decodes the outermost revert as
/// `ValidationResult`; it is the EntryPoint's `DelegateAndRevert(bool,bytes)` (selector
/// 0x99410554), which it does not unwrap, so every operation is refused with that decode error
/// before any rule is checked. Our own checker (`sak-e2e`'s erc7562 tests) applies the rules
/// to the same validations meanwhile.
#[tokio::test]
async fn safe_mode_alto_refuses_every_v08_operation_before_its_rules() {
    let fx = Fixture::new().await;
    let alto = fx.safe_alto().await;
    let client = fx.alto_client(&alto).await;
    let session = Intent::calls(fx.account, lane(fx.session, 0), &[fx.transfer(1_000_000)]);
    let owner = Intent::calls(fx.account, OWNER_LANE, &[fx.transfer(1_000_000)]);
    for (intent, signer) in [(session, fx.session_signer()), (owner, fx.owner_signer())] {
        let err = client.send(&intent, &signer).await.expect_err("a safe-mode Alto that validates v0.8 ops");
        assert!(format!("{err:?}").contains("0x99410554"), "another failure than the known one: {err:?}");
    }
    assert_eq!(fx.usd_balance(common::ALICE).await, U256::ZERO, "nothing was included");
}

#[tokio::test]
async fn self_bundled_over_cap_is_refused_with_spend_cap_exceeded() {
    let fx = Fixture::new().await;
    over_cap_is_refused_with_spend_cap_exceeded(&fx, &fx.self_client().await).await;
}

#[tokio::test]
async fn alto_over_cap_is_refused_with_spend_cap_exceeded() {
    let fx = Fixture::new().await;
    let alto = fx.alto().await;
    over_cap_is_refused_with_spend_cap_exceeded(&fx, &fx.alto_client(&alto).await).await;
}

/// The same user operation sent straight to `handleOps` (no estimate, no local check): the
/// EntryPoint's own revert decodes the same way.
#[tokio::test]
async fn handle_ops_revert_decodes_to_the_policy_error() {
    let fx = Fixture::new().await;
    let client = fx.self_client().await;
    let intent = Intent::calls(fx.account, lane(fx.session, 5), &[fx.transfer(USD_CAP + 1)]);
    let reservation = client.lanes().reserve(intent.lane()).await.unwrap();
    // Prepare refuses (the estimate simulates the op); build the op by hand instead.
    let clock = client.chain_time().await.unwrap();
    let mut op = sak_userop::UserOpBuilder::new(fx.account)
        .nonce(reservation.nonce())
        .call_data(intent.call_data.clone())
        .gas(sak_userop::GasLimits {
            verification: 500_000,
            call: 200_000,
            pre_verification: 60_000,
            ..Default::default()
        })
        .fees(sak_userop::Fees { max_fee_per_gas: 10_000_000_000, max_priority_fee_per_gas: 1_000_000_000 })
        .build();
    let hash = client.hasher().hash(&op, None).unwrap();
    op.signature = fx.session_signer().sign(hash, clock).await.unwrap();
    let err = client.submitter().submit(&op, None, hash).await.unwrap_err();
    assert!(matches!(err.sak(), Some(SakError::SpendCapExceeded(_))), "{err}");
    reservation.release();
}

/// Several lanes at once (one per agent task), several operations each, all concurrently
/// through one pipeline: every operation lands and each lane's nonces are 0..n.
async fn concurrent_lanes<S: Submitter>(fx: &Fixture, client: &UserOpClient<S>, lanes: u64, per_lane: u64) {
    let signer = fx.session_signer();
    let tasks = (0..lanes).map(|l| {
        let signer = signer.clone();
        async move {
            let mut nonces = Vec::new();
            for _ in 0..per_lane {
                let intent = Intent::calls(fx.account, lane(fx.session, 100 + l), &[fx.transfer(1_000)]);
                let r = client.send(&intent, &signer).await.unwrap();
                assert!(r.success);
                nonces.push(r.nonce);
            }
            nonces
        }
    });
    let all = futures_join_all(tasks).await;
    for (l, nonces) in all.iter().enumerate() {
        let expected: Vec<U256> = (0..per_lane)
            .map(|s| (U256::from(lane(fx.session, 100 + l as u64)) << 64) | U256::from(s))
            .collect();
        assert_eq!(nonces, &expected);
    }
}

async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll all at once on this task.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.extend(done.into_iter().map(|v| v.expect("done")));
    out
}

#[tokio::test]
async fn self_bundled_concurrent_lanes() {
    let fx = Fixture::new().await;
    concurrent_lanes(&fx, &fx.self_client().await, 4, 5).await;
}

#[tokio::test]
async fn alto_concurrent_lanes() {
    let fx = Fixture::new().await;
    let alto = fx.alto().await;
    concurrent_lanes(&fx, &fx.alto_client(&alto).await, 3, 3).await;
}

/// A base-fee spike above the cap: the pipeline refuses before signing, and the nonce it had
/// reserved is free again.
#[tokio::test]
async fn base_fee_spike_is_refused_by_the_fee_cap() {
    let fx = Fixture::new().await;
    let caps = FeeCaps {
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 2_000_000_000,
        max_total_cost_wei: U256::from(10u64.pow(16)),
    };
    let client = fx.self_client_with(caps).await;
    let intent = Intent::calls(fx.account, lane(fx.session, 9), &[fx.transfer(1_000)]);
    assert!(client.send(&intent, &fx.session_signer()).await.unwrap().success, "within the caps");

    let _: () = fx
        .provider()
        .raw_request("anvil_setNextBlockBaseFeePerGas".into(), (U256::from(50_000_000_000u64),))
        .await
        .unwrap();
    let err = client.send(&intent, &fx.session_signer()).await.unwrap_err();
    assert!(matches!(err, Error::FeeCapExceeded { kind: FeeCapKind::MaxFeePerGas, .. }), "{err}");
    assert!(err.hint().is_some());
    let snapshot = client.lanes().snapshot(intent.lane()).unwrap();
    assert_eq!((snapshot.next, snapshot.in_flight.len()), (1, 0), "{snapshot:?}");

    // A total-cost cap below what the op's limits could cost is refused too.
    let tight = fx
        .self_client_with(FeeCaps { max_total_cost_wei: U256::from(1_000_000u64), ..FeeCaps::UNLIMITED })
        .await;
    let err = tight.send(&intent, &fx.session_signer()).await.unwrap_err();
    assert!(matches!(err, Error::FeeCapExceeded { kind: FeeCapKind::TotalCost, .. }), "{err}");
}

/// The relayer must not be the sender nor an EOA with code (an EIP-7702 delegation).
#[tokio::test]
async fn relayer_must_be_a_plain_eoa_other_than_the_sender() {
    let fx = Fixture::new().await;
    let keys = fx.kit.dev_signers();
    let delegated = keys[6].clone();
    eip7702::delegate_self(fx.provider(), &delegated, fx.d.sak_7702_account).await.unwrap();
    let err = SelfBundler::new(fx.kit.rpc_url(), delegated, fx.d.entry_point).await.unwrap_err();
    assert!(matches!(&err, Error::Relayer { reason, .. } if reason.contains("EIP-7702")), "{err}");

    // The relayer as the operation's sender.
    let plain = keys[5].clone();
    let bundler = SelfBundler::new(fx.kit.rpc_url(), plain.clone(), fx.d.entry_point).await.unwrap();
    let op = sak_userop::UserOpBuilder::new(plain.address()).build();
    let err = bundler.send(&op, None, Default::default()).await.unwrap_err();
    assert!(matches!(&err, Error::Relayer { reason, .. } if reason.contains("sender")), "{err}");
}

/// EIP-7702 authorizations: the chain's id, the nonce for who sends the type-4 transaction,
/// and the delegation checked after mining.
#[tokio::test]
async fn eip7702_authorizations_have_the_right_chain_and_nonce() {
    let fx = Fixture::new().await;
    let keys = fx.kit.dev_signers();
    let eoa = keys[4].clone();
    let provider = fx.provider();
    let nonce = provider.get_transaction_count(eoa.address()).await.unwrap();
    let relayed = eip7702::sign_authorization(
        provider,
        &eoa,
        fx.d.sak_7702_account,
        AuthorizationSender::Relayed,
        ChainScope::Current,
    )
    .await
    .unwrap();
    assert_eq!(relayed.chain_id, U256::from(fx.kit.chain_id()));
    assert_ne!(relayed.chain_id, U256::ZERO);
    assert_eq!(relayed.nonce, nonce);
    assert_eq!(relayed.recover_authority().unwrap(), eoa.address());
    let own = eip7702::sign_authorization(
        provider,
        &eoa,
        fx.d.sak_7702_account,
        AuthorizationSender::SelfSponsored,
        ChainScope::Current,
    )
    .await
    .unwrap();
    assert_eq!(own.nonce, nonce + 1);
    let any = eip7702::sign_authorization(
        provider,
        &eoa,
        fx.d.sak_7702_account,
        AuthorizationSender::Relayed,
        ChainScope::AllChains,
    )
    .await
    .unwrap();
    assert_eq!(any.chain_id, U256::ZERO, "only when asked");

    // Relayed by another key: the authorization with the current nonce takes effect.
    eip7702::send_authorization(
        provider,
        &keys[5],
        eoa.address(),
        relayed,
        fx.d.sak_7702_account,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(eip7702::delegate_of(provider, eoa.address()).await.unwrap(), Some(fx.d.sak_7702_account));
    // A wrong delegate fails the check.
    assert!(eip7702::check_delegation(provider, eoa.address(), Address::repeat_byte(9)).await.is_err());

    // Self-sponsored: nonce + 1.
    let other = keys[6].clone();
    eip7702::delegate_self(provider, &other, fx.d.sak_7702_account).await.unwrap();
    eip7702::check_delegation(provider, other.address(), fx.d.sak_7702_account).await.unwrap();
}

/// The EIP-7702 account: an EOA delegated to `Sak7702Account` (owner = the EOA) sends an owner
/// op and a session op with the 0x7702 initCode marker (the hash binds the delegate), by
/// self-bundling; then a fresh EOA is delegated by its first operation through Alto (the
/// authorization rides in Alto's type-4 bundle transaction).
#[tokio::test]
async fn eip7702_account_path() {
    let fx = Fixture::new().await;
    let keys = fx.kit.dev_signers();
    let provider = fx.provider();

    // Self-bundled, delegated beforehand by the EOA itself.
    let eoa = keys[4].clone();
    eip7702::delegate_self(provider, &eoa, fx.d.sak_7702_account).await.unwrap();
    let session = fx.grant(eoa.address(), eoa.address()).await;
    sak_contracts::MockERC20::new(fx.d.usd, provider)
        .mint(eoa.address(), U256::from(10u64.pow(12)))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let client = fx.self_client().await;
    let owner_op = Intent::calls(eoa.address(), OWNER_LANE, &[fx.transfer(10)]).eip7702(None);
    let r = client.send(&owner_op, &OpSigner::owner(eoa.clone())).await.unwrap();
    assert!(r.success, "{:?}", r.revert);
    let session_op = Intent::calls(eoa.address(), lane(session, 1), &[fx.transfer(20)]).eip7702(None);
    let r = client.send(&session_op, &OpSigner::session(fx.agent.clone(), session)).await.unwrap();
    assert!(r.success, "{:?}", r.revert);

    // Self-bundled, delegated by its first operation: the authorization (relayed: the EOA's
    // current nonce) rides in our relayer's type-4 handleOps transaction.
    let fresh = keys[5].clone();
    sak_contracts::MockERC20::new(fx.d.usd, provider)
        .mint(fresh.address(), U256::from(10u64.pow(12)))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let auth = eip7702::sign_authorization(
        provider,
        &fresh,
        fx.d.sak_7702_account,
        AuthorizationSender::Relayed,
        ChainScope::Current,
    )
    .await
    .unwrap();
    let first = Intent::calls(fresh.address(), OWNER_LANE, &[fx.transfer(5)]).eip7702(Some(auth));
    let r = client.send(&first, &OpSigner::owner(fresh.clone())).await.unwrap();
    assert!(r.success, "{:?}", r.revert);
    eip7702::check_delegation(provider, fresh.address(), fx.d.sak_7702_account).await.unwrap();
    assert_eq!(SakAccount::new(fresh.address(), provider).owner().call().await.unwrap(), fresh.address());

    // Through Alto: the first op of a fresh EOA carries the authorization (relayed: the EOA's
    // current nonce).
    let fresh = keys[7].clone();
    fund(provider, fresh.address()).await;
    sak_contracts::MockERC20::new(fx.d.usd, provider)
        .mint(fresh.address(), U256::from(10u64.pow(12)))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let alto = fx.alto().await;
    let client = fx.alto_client(&alto).await;
    let auth = eip7702::sign_authorization(
        provider,
        &fresh,
        fx.d.sak_7702_account,
        AuthorizationSender::Relayed,
        ChainScope::Current,
    )
    .await
    .unwrap();
    let first = Intent::calls(fresh.address(), OWNER_LANE, &[fx.transfer(30)]).eip7702(Some(auth));
    let r = client.send(&first, &OpSigner::owner(fresh.clone())).await.unwrap();
    assert!(r.success, "{:?}", r.revert);
    eip7702::check_delegation(provider, fresh.address(), fx.d.sak_7702_account).await.unwrap();
    let owner = Sak7702Account::new(fresh.address(), provider).owner().call().await.unwrap();
    assert_eq!(owner, fresh.address());
}

/// Sends are idempotent: the same signed operation sent twice to the bundler (as a retry after
/// a timeout would) is reconciled by hash, and lands once.
#[tokio::test]
async fn alto_duplicate_send_is_reconciled_by_hash() {
    let fx = Fixture::new().await;
    let alto = fx.alto().await;
    let client = fx.alto_client(&alto).await;
    let intent = Intent::calls(fx.account, lane(fx.session, 3), &[fx.transfer(1_000)]);
    let reservation = client.lanes().reserve(intent.lane()).await.unwrap();
    let prepared = client.prepare(&intent, &fx.session_signer(), &reservation).await.unwrap();
    let bundler = client.submitter();
    let first = bundler.send(&prepared.op, None, prepared.user_op_hash).await.unwrap();
    let second = bundler.send(&prepared.op, None, prepared.user_op_hash).await.unwrap();
    assert_eq!(first, second);
    let receipt = bundler.receipt(&first).await.unwrap();
    assert!(receipt.success);
    reservation.commit();
    // Once included, a resend is still reconciled (the bundler knows the hash), not an error.
    let third = bundler.send(&prepared.op, None, prepared.user_op_hash).await.unwrap();
    assert_eq!(third.user_op_hash, prepared.user_op_hash);
    let by_hash = bundler.user_operation_by_hash(prepared.user_op_hash).await.unwrap().unwrap();
    assert_eq!(by_hash.user_operation.nonce, prepared.op.nonce);
    assert_eq!(by_hash.transaction_hash, Some(receipt.tx_hash));
}

/// An owner operation whose execution reverts (`grantSession` with no signer: the account's
/// `InvalidSigner`). The pipeline refuses it at estimation, typed; forced on chain, the op is
/// included with `success == false` and the `UserOperationRevertReason` decodes to the same
/// error.
async fn execution_revert_is_typed<S: Submitter>(fx: &Fixture, client: &UserOpClient<S>) {
    let mut config = fx_config(fx).await;
    config.signer = Address::ZERO;
    let bad = sak_userop::Call::contract(fx.account, &SakAccount::grantSessionCall { config });
    let intent = Intent::calls(fx.account, OWNER_LANE, &[bad]);
    let err = client.send(&intent, &fx.owner_signer()).await.unwrap_err();
    assert!(matches!(err.sak(), Some(SakError::InvalidSigner(_))), "{err}");
}

async fn fx_config(fx: &Fixture) -> sak_contracts::ISakSessions::SessionConfig {
    let now = fx.provider().get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp;
    sak_contracts::ISakSessions::SessionConfig {
        signer: fx.agent.address(),
        validAfter: alloy::primitives::aliases::U40::from(now),
        validUntil: alloy::primitives::aliases::U40::from(now + 3_600),
        permissions: vec![],
        spendLimits: vec![],
        gasBudget: alloy::primitives::aliases::U80::MAX,
        gasPeriod: 0,
        maxOps: alloy::primitives::aliases::U24::ZERO,
        paymaster: Address::ZERO,
        maxFeePerGas: Default::default(),
        maxPreVerificationGas: Default::default(),
    }
}

#[tokio::test]
async fn self_bundled_execution_revert_is_typed() {
    let fx = Fixture::new().await;
    let client = fx.self_client().await;
    execution_revert_is_typed(&fx, &client).await;

    // Forced on chain with fixed limits: included, failed, reason decoded.
    let mut config = fx_config(&fx).await;
    config.signer = Address::ZERO;
    let bad = sak_userop::Call::contract(fx.account, &SakAccount::grantSessionCall { config });
    let reservation = client.lanes().reserve(sak_userop::Lane::new(fx.account, OWNER_LANE)).await.unwrap();
    let mut op = sak_userop::UserOpBuilder::new(fx.account)
        .nonce(reservation.nonce())
        .call_data(sak_userop::execute_batch(&[bad]))
        .gas(sak_userop::GasLimits {
            verification: 300_000,
            call: 300_000,
            pre_verification: 60_000,
            ..Default::default()
        })
        .fees(sak_userop::Fees { max_fee_per_gas: 10_000_000_000, max_priority_fee_per_gas: 1_000_000_000 })
        .build();
    let hash = client.hasher().hash(&op, None).unwrap();
    op.signature = fx.owner_signer().sign(hash, 0).await.unwrap();
    let receipt = client.submitter().submit(&op, None, hash).await.unwrap();
    reservation.commit();
    assert!(!receipt.success);
    assert!(receipt.actual_gas_cost > U256::ZERO, "the failed op still paid");
    match receipt.revert.as_ref().and_then(sak_userop::Revert::sak) {
        Some(SakError::InvalidSigner(_)) => {}
        _ => panic!("expected InvalidSigner, got {:?}", receipt.revert),
    }
}

#[tokio::test]
async fn alto_execution_revert_is_typed() {
    let fx = Fixture::new().await;
    let alto = fx.alto().await;
    execution_revert_is_typed(&fx, &fx.alto_client(&alto).await).await;
}

/// Another client uses the lane's next nonce behind our allocator's back: our next op is
/// refused with AA25, the lane resyncs from the EntryPoint, and the op after that lands.
#[tokio::test]
async fn stale_lane_resyncs_after_aa25() {
    let fx = Fixture::new().await;
    let ours = fx.self_client().await;
    // Another relayer: a shared relayer key is handled too, but is not what this tests.
    let other =
        SelfBundler::new(fx.kit.rpc_url(), fx.kit.dev_signers()[5].clone(), fx.d.entry_point).await.unwrap();
    let theirs = UserOpClient::new(fx.read_provider().await, other, FeeCaps::UNLIMITED).await.unwrap();
    let intent = Intent::calls(fx.account, lane(fx.session, 42), &[fx.transfer(1_000)]);
    let key = U256::from(lane(fx.session, 42)) << 64;
    assert_eq!(ours.send(&intent, &fx.session_signer()).await.unwrap().nonce, key);
    // Their allocator reads the chain (sequence 1) and uses it.
    let r = theirs.send(&intent, &fx.session_signer()).await.unwrap();
    assert_eq!(r.nonce, key | U256::from(1));
    // Ours still believes 1 is next.
    let err = ours.send(&intent, &fx.session_signer()).await.unwrap_err();
    assert_eq!(err.aa_code(), Some(AaCode::InvalidNonce), "{err}");
    assert!(err.hint().is_some());
    let r = ours.send(&intent, &fx.session_signer()).await.unwrap();
    assert_eq!(r.nonce, key | U256::from(2), "resynced");
}

/// Two self-bundlers sharing one relayer key: the relayer nonce moves behind each one's back
/// ("nonce too low"); the send re-reads it and goes through.
#[tokio::test]
async fn self_bundlers_sharing_a_relayer_key_recover_its_nonce() {
    let fx = Fixture::new().await;
    let a = fx.self_client().await;
    let b = fx.self_client().await;
    for i in 0..3u64 {
        let client = if i % 2 == 0 { &a } else { &b };
        let intent = Intent::calls(fx.account, lane(fx.session, 50 + i), &[fx.transfer(1_000)]);
        assert!(client.send(&intent, &fx.session_signer()).await.unwrap().success);
    }
}
