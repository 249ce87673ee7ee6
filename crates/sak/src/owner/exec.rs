//! The owner acting from its account: calls the account makes, simulated first, then sent. A
//! smart or modular account runs them in an owner user operation (self-bundled: by anvil's dev key on a
//! `sak node` chain, else by the owner key); a delegated EOA is the account, and sends them in
//! a transaction of its own (a batch as a call to itself).

use crate::{
    Chain, Hinted, Home, Result,
    error::{WrapErr, ensure},
    store::{AccountKind, AccountRecord},
};
use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256, aliases::U192},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use sak_contracts::SakAccount;
use sak_policy::Call;
use sak_userop::{FeeCaps, OpSigner, SelfBundler, UserOpClient};

/// Runs `calls` as the account runs them (`eth_call` at the latest block: one call from the
/// account; several as the account's own batch, each seeing the state the ones before it
/// left): an error with the revert when they would fail. Nothing is sent.
pub async fn simulate(chain: &Chain, account: &AccountRecord, calls: &[Call]) -> Result<()> {
    let request = |to, value, input| {
        TransactionRequest::default()
            .with_from(account.address)
            .with_to(to)
            .with_value(value)
            .with_input(input)
    };
    let as_run = match calls {
        [call] => request(call.target, call.value, call.data.clone()),
        _ => request(account.address, U256::ZERO, sak_userop::execute_batch(calls)),
    };
    let Err(e) = chain.provider.call(as_run).await else { return Ok(()) };
    let reason = e
        .as_error_resp()
        .and_then(|r| r.as_revert_data())
        .map_or_else(|| e.to_string(), |data| sak_userop::Revert::decode(&data).to_string());
    // Which call: the first that fails on its own (a call that fails only after the ones
    // before it is named by the batch's revert alone).
    let mut which = "the batch".to_owned();
    for (i, call) in calls.iter().enumerate().filter(|_| calls.len() > 1) {
        if chain.provider.call(request(call.target, call.value, call.data.clone())).await.is_err() {
            which = format!("call {i} of the batch");
            break;
        }
    }
    let which = match calls {
        [call] => format!("the call to {}", chain.contracts.name(call.target)),
        _ => which,
    };
    Err(Hinted::new(
        format!("the dry run of {which} from the account fails, so nothing was sent: {reason}"),
        "check the target, arguments and the account's balances (`sak account show`), then run again",
    )
    .into())
}

/// Sends `calls` as the owner from `account`, all in one transaction; returns it. The owner
/// key must own the account.
pub async fn execute(
    home: &Home,
    chain: &Chain,
    account: &AccountRecord,
    calls: &[Call],
    what: &str,
) -> Result<B256> {
    let owner = home.owner().await?;
    match account.kind {
        AccountKind::Eip7702 => {
            // The EOA is the account: one call is its own transaction; several are one
            // transaction to itself, `execute` in batch mode (the account runs its own batches).
            let wallet = home.owner_provider(chain, &owner)?;
            let request = match calls {
                [call] => TransactionRequest::default()
                    .with_to(call.target)
                    .with_value(call.value)
                    .with_input(call.data.clone()),
                _ => TransactionRequest::default()
                    .with_to(account.address)
                    .with_input(sak_userop::execute_batch(calls)),
            };
            let pending =
                wallet.send_transaction(request).await.wrap_err_with(|| format!("sending {what}"))?;
            Ok(super::mined(home, pending, what).await?.transaction_hash)
        }
        AccountKind::Smart | AccountKind::Erc7579 => {
            // `owner()` is the same function on both.
            let on_chain = SakAccount::new(account.address, &chain.provider)
                .owner()
                .call()
                .await
                .wrap_err("SakAccount.owner")?;
            if on_chain != owner.address() {
                return Err(Hinted::refused(
                    format!(
                        "the account {} is owned by {on_chain}, not by this home's owner {}",
                        account.address,
                        owner.address()
                    ),
                    "run this in the owner's home (`sak account show` there)",
                )
                .into());
            }
            let key = owner.key("a smart account's owner operation")?.clone();
            let relayer = match home.node()? {
                Some(node) => node.dev_key.parse::<PrivateKeySigner>().wrap_err("node.json's dev key")?,
                None => key.clone(),
            };
            let bundler = SelfBundler::new(&chain.rpc_url, relayer, chain.contracts.entry_point).await?;
            let client = UserOpClient::new(chain.provider.clone(), bundler, FeeCaps::UNLIMITED).await?;
            let intent = sak_userop::Intent::calls(account.address, U192::ZERO, calls);
            home.progress(&format!("{what}: the owner signs an operation of the account…"));
            let receipt = client
                .send(&intent, &OpSigner::owner(key))
                .await
                .wrap_err_with(|| format!("the owner operation ({what})"))?;
            ensure!(receipt.success, "the owner operation ({what}) reverted (tx {})", receipt.tx_hash);
            Ok(receipt.tx_hash)
        }
    }
}
