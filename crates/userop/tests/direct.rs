//! The direct relayed path on anvil: a session-signed batch submitted by a relayer executes
//! within the policy; the relayer cannot alter or replay it; refusals come back typed.

mod common;

use alloy::{primitives::U256, providers::Provider};
use common::{ALICE, Fixture, USD_CAP};
use sak_contracts::SakAccount;
use sak_userop::{
    Error, Revert, SakError,
    direct::{DirectCall, DirectRelayer, SESSION_CALL_TYPE},
};

async fn relayer(fx: &Fixture) -> DirectRelayer {
    DirectRelayer::new(fx.kit.rpc_url(), fx.relayer.clone()).unwrap()
}

async fn direct(fx: &Fixture, relayer: &DirectRelayer, amount: u64) -> DirectCall {
    let now = fx.provider().get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp;
    DirectCall {
        account: fx.account,
        session_id: fx.session,
        calls: vec![fx.transfer(amount)],
        nonce: relayer.next_nonce(fx.account, fx.session).await.unwrap(),
        deadline: now + 600,
    }
}

fn sak_error(err: &Error) -> &SakError {
    err.sak().unwrap_or_else(|| panic!("expected a sak error, got {err}"))
}

#[tokio::test]
async fn a_session_signed_batch_executes_through_a_relayer() {
    let fx = Fixture::new().await;
    let typehash = SakAccount::new(fx.account, fx.provider()).SESSION_CALL_TYPEHASH().call().await.unwrap();
    assert_eq!(
        typehash,
        alloy::primitives::keccak256(SESSION_CALL_TYPE),
        "the type we sign is the contract's"
    );

    let relayer = relayer(&fx).await;
    let chain_id = fx.kit.chain_id();
    let call = direct(&fx, &relayer, 5_000_000).await;
    let signature = call.sign(&fx.agent, chain_id).unwrap();
    let receipt = relayer.submit(&call, signature.clone()).await.unwrap();
    assert!(receipt.status());
    assert_eq!(fx.usd_balance(ALICE).await, U256::from(5_000_000));

    // Replayed: the nonce is consumed.
    let err = relayer.submit(&call, signature).await.unwrap_err();
    assert!(matches!(sak_error(&err), SakError::InvalidNonce(_)), "{err}");

    // Altered by the relayer: the signature no longer matches.
    let call = direct(&fx, &relayer, 5_000_000).await;
    let signature = call.sign(&fx.agent, chain_id).unwrap();
    let altered = DirectCall { calls: vec![fx.transfer(6_000_000)], ..call.clone() };
    let err = relayer.submit(&altered, signature.clone()).await.unwrap_err();
    assert!(matches!(sak_error(&err), SakError::InvalidSessionSignature(_)), "{err}");
    // Moved to another chain: the same.
    let foreign = call.sign(&fx.agent, chain_id + 1).unwrap();
    let err = relayer.submit(&call, foreign).await.unwrap_err();
    assert!(matches!(sak_error(&err), SakError::InvalidSessionSignature(_)), "{err}");
    relayer.submit(&call, signature).await.unwrap();
    assert_eq!(fx.usd_balance(ALICE).await, U256::from(10_000_000));
}

#[tokio::test]
async fn direct_refusals_are_typed_and_cost_nothing() {
    let fx = Fixture::new().await;
    let relayer = relayer(&fx).await;
    let chain_id = fx.kit.chain_id();
    let balance = fx.provider().get_balance(fx.relayer.address()).await.unwrap();

    let call = direct(&fx, &relayer, USD_CAP + 1).await;
    let err = relayer.submit(&call, call.sign(&fx.agent, chain_id).unwrap()).await.unwrap_err();
    match err.refusal() {
        Some(sak_policy::Refusal::SpendCapExceeded { requested, remaining, .. }) => {
            assert_eq!((requested, remaining), (U256::from(USD_CAP + 1), U256::from(USD_CAP)));
        }
        other => panic!("expected SpendCapExceeded, got {other:?} from {err}"),
    }

    let expired = DirectCall { deadline: 1, ..direct(&fx, &relayer, 1).await };
    let err = relayer.submit(&expired, expired.sign(&fx.agent, chain_id).unwrap()).await.unwrap_err();
    assert!(matches!(sak_error(&err), SakError::DeadlinePassed(_)), "{err}");
    assert!(matches!(&err, Error::Reverted(r) if matches!(**r, Revert::Sak(_))));
    assert_eq!(
        fx.provider().get_balance(fx.relayer.address()).await.unwrap(),
        balance,
        "refused in simulation: the relayer paid nothing"
    );
}
