//! The account's live allowances, from the chain: every ERC-20 `Approval` the account gave and
//! every Permit2 allowance, with what remains of each now; and the calls that end them.

use crate::{Chain, Home, Result, error::WrapErr, scan};
use alloy::{
    primitives::{Address, U256, aliases::U160},
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent},
};
use sak_contracts::{MockERC20, MockPermit2, SakAccount};
use sak_policy::Call;
use sak_primitives::{PERMIT2, units::format_amount};
use serde::Serialize;
use std::collections::BTreeSet;

/// One live allowance of the account. Field names are part of `sak account approvals --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Allowance {
    /// `erc20` (the token's own allowance) or `permit2` (Permit2's allowance, itself drawing on
    /// the token's allowance to Permit2).
    pub kind: &'static str,
    /// The token.
    pub token: Address,
    /// The token's name in the book, else its address.
    pub token_name: String,
    /// Who may spend it.
    pub spender: Address,
    /// The spender's name in the book, else its address.
    pub spender_name: String,
    /// In whole units when the decimals are known, else base units; `unlimited` for the maximum.
    pub amount: String,
    /// In base units.
    pub raw: U256,
    /// Permit2: when it expires (unix seconds).
    pub expires_at: Option<u64>,
    /// Permit2: whether that has passed.
    pub expired: bool,
    /// The command that revokes it.
    pub fix: String,
}

impl Allowance {
    /// The owner call that sets it to 0.
    pub fn revoke_call(&self) -> Call {
        revoke_call(self.kind == "permit2", self.token, self.spender)
    }
}

/// The owner call that sets the allowance of (`token`, `spender`) to 0: Permit2's, or the
/// token's own.
pub fn revoke_call(permit2: bool, token: Address, spender: Address) -> Call {
    if permit2 {
        let zero =
            MockPermit2::approveCall { token, spender, amount: U160::ZERO, expiration: Default::default() };
        Call::new(PERMIT2, U256::ZERO, zero.abi_encode())
    } else {
        Call::new(token, U256::ZERO, MockERC20::approveCall { spender, value: U256::ZERO }.abi_encode())
    }
}

/// The account's live allowances: every (token, spender) its `Approval` events name in blocks
/// `range`, with what remains at time `now`; Permit2's too when Permit2 is on the chain
/// (second value).
pub async fn live_allowances(
    home: &Home,
    chain: &Chain,
    account: Address,
    range: (u64, u64),
    now: u64,
) -> Result<(Vec<Allowance>, bool)> {
    let owner_topic = account.into_word();
    // ERC-20 approvals: any contract's `Approval(owner, spender, value)` with the account as
    // owner (ERC-721's has a fourth topic, the token id, and is left out).
    let erc20 = Filter::new().event_signature(MockERC20::Approval::SIGNATURE_HASH).topic1(owner_topic);
    let mut pairs = BTreeSet::new();
    for log in scan::logs(home, &chain.provider, &erc20, range, "the account's token approvals").await? {
        if let [_, _, spender] = log.topics() {
            pairs.insert((log.address(), Address::from_word(*spender)));
        }
    }
    let mut out = Vec::new();
    for (token, spender) in pairs {
        let Ok(raw) = MockERC20::new(token, &chain.provider).allowance(account, spender).call().await else {
            continue; // not an ERC-20 after all
        };
        if !raw.is_zero() {
            out.push(allowance(chain, "erc20", token, spender, raw, None, now).await);
        }
    }
    let permit2_on_chain = permit2_on_chain(chain).await?;
    if permit2_on_chain {
        let filter = Filter::new()
            .address(PERMIT2)
            .event_signature(MockPermit2::Approval::SIGNATURE_HASH)
            .topic1(owner_topic);
        let mut pairs = BTreeSet::new();
        for log in
            scan::logs(home, &chain.provider, &filter, range, "the account's Permit2 approvals").await?
        {
            if let [_, _, token, spender] = log.topics() {
                pairs.insert((Address::from_word(*token), Address::from_word(*spender)));
            }
        }
        let permit2 = MockPermit2::new(PERMIT2, &chain.provider);
        for (token, spender) in pairs {
            let a = permit2.allowance(account, token, spender).call().await.wrap_err("Permit2.allowance")?;
            if !a.amount.is_zero() {
                let expires = Some(a.expiration.to::<u64>());
                out.push(
                    allowance(chain, "permit2", token, spender, U256::from(a.amount), expires, now).await,
                );
            }
        }
    }
    Ok((out, permit2_on_chain))
}

/// Whether Permit2 has code on the chain.
pub async fn permit2_on_chain(chain: &Chain) -> Result<bool> {
    Ok(!chain.provider.get_code_at(PERMIT2).await.wrap_err("reading Permit2's code")?.is_empty())
}

/// The chain's head block and its time.
pub async fn head_and_time(chain: &Chain) -> Result<(u64, u64)> {
    let latest = chain
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .wrap_err("reading the latest block")?
        .ok_or_else(|| crate::Error::msg("the node has no latest block"))?;
    Ok((latest.header.number, latest.header.timestamp))
}

async fn allowance(
    chain: &Chain,
    kind: &'static str,
    token: Address,
    spender: Address,
    raw: U256,
    expires_at: Option<u64>,
    now: u64,
) -> Allowance {
    let decimals = decimals_of(chain, token).await;
    let token_name = chain.contracts.name(token);
    let spender_name = chain.contracts.name(spender);
    Allowance {
        kind,
        amount: show_allowance(raw, decimals),
        fix: format!(
            "sak account revoke-approval --token {token_name} --spender {spender_name}{}",
            if kind == "permit2" { " --permit2" } else { "" }
        ),
        token,
        token_name,
        spender,
        spender_name,
        raw,
        expires_at,
        expired: expires_at.is_some_and(|t| t < now),
    }
}

/// A token's decimals: from the book, else asked of the token (None if it does not answer).
pub async fn decimals_of(chain: &Chain, token: Address) -> Option<u8> {
    match chain.contracts.decimals(token) {
        Some(d) => Some(d),
        None => MockERC20::new(token, &chain.provider).decimals().call().await.ok(),
    }
}

/// An allowance in words: `unlimited` for the maximum (the token's, or Permit2's uint160),
/// else the amount in whole units when `decimals` are known.
pub fn show_allowance(raw: U256, decimals: Option<u8>) -> String {
    if raw == U256::MAX || raw == U256::from(U160::MAX) {
        "unlimited".into()
    } else {
        format_amount(raw, decimals)
    }
}

/// The owner's emergency stop as calls of `account`: end every session (revokeAllSessions, on
/// the account itself or, for a modular account, on its module), then, unless
/// `keep_approvals`, set every live allowance found from block `from_block` on to 0. Returns the
/// calls and what they do, in words.
pub async fn panic_calls(
    home: &Home,
    chain: &Chain,
    account: &crate::store::AccountRecord,
    keep_approvals: bool,
    from_block: u64,
) -> Result<(Vec<Call>, String)> {
    let holder = crate::sessions::host_of(account).holder;
    let account = account.address;
    let mut calls = vec![Call::new(holder, U256::ZERO, SakAccount::revokeAllSessionsCall {}.abi_encode())];
    let mut zeroed = Vec::new();
    if !keep_approvals {
        let (head, now) = head_and_time(chain).await?;
        let (live, _) = live_allowances(home, chain, account, (from_block.min(head), head), now).await?;
        for a in live {
            calls.push(a.revoke_call());
            zeroed.push(format!("{} {} to {}", a.kind, a.token_name, a.spender_name));
        }
    }
    let summary = match zeroed.len() {
        0 => "revoke every session (revokeAllSessions); no allowance to zero".to_owned(),
        n => format!(
            "revoke every session (revokeAllSessions) and set {n} allowance{} to 0 ({})",
            if n == 1 { "" } else { "s" },
            zeroed.join(", ")
        ),
    };
    Ok((calls, summary))
}
