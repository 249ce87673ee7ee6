//! The calldata the evaluator must understand: the account's batch `execute`, ERC-20
//! `transfer`, the adapter's `run`, and Uniswap V2 router swaps.
//!
//! A session's batch holds two kinds of element (anything else is refused): a capped token's
//! `transfer`, and `run(target, data, tokens)` on the account's adapter, which makes the call
//! `target`/`data` itself. [`fund`] and [`through_adapter`] build them.

use crate::Refusal;
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::{SolCall, SolValue},
};
use sak_contracts::{IUniswapV2Router02 as Router, MockERC20, SakAccount, SessionAdapter};
use sak_primitives::{ETH_SEND, Selector};
use serde::Serialize;

/// ERC-7579 mode of a plain batch: call type 0x01, default exec type, no selector or payload.
pub const BATCH_MODE: B256 = {
    let mut mode = [0u8; 32];
    mode[0] = 0x01;
    B256::new(mode)
};

/// One call of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Call {
    /// The contract or address called.
    pub target: Address,
    /// Native value sent, in wei.
    pub value: U256,
    /// Calldata; empty for a plain ETH send.
    pub data: Bytes,
}

impl Call {
    /// A call.
    pub fn new(target: Address, value: U256, data: impl Into<Bytes>) -> Self {
        Self { target, value, data: data.into() }
    }

    /// A call of a binding's function, without value.
    pub fn contract<C: SolCall>(target: Address, call: &C) -> Self {
        Self::new(target, U256::ZERO, call.abi_encode())
    }

    /// The call's selector; [`ETH_SEND`] for empty calldata. `None` for 1 to 3 bytes, or
    /// calldata that starts with four zero bytes (a call into a fallback): no permission
    /// matches those.
    pub fn selector(&self) -> Option<Selector> {
        match self.data.len() {
            0 => Some(ETH_SEND),
            1..=3 => None,
            _ => Some(Selector::from_slice(&self.data[..4])).filter(|s| *s != ETH_SEND),
        }
    }
}

/// The batch element moving `amount` of `token` from the account into its `adapter` (charged to
/// the token's cap), to be used by a [`through_adapter`] call in the same batch.
pub fn fund(adapter: Address, token: Address, amount: U256) -> Call {
    Call::contract(token, &MockERC20::transferCall { to: adapter, value: amount })
}

/// The batch element that makes `call` through the account's `adapter`: the adapter approves
/// `call.target` for its balance of each of `tokens`, calls it with `call.value` (charged to
/// the ETH cap), then withdraws the approvals and returns `tokens` and any ETH to the account.
pub fn through_adapter(adapter: Address, call: &Call, tokens: &[Address]) -> Call {
    let run =
        SessionAdapter::runCall { target: call.target, data: call.data.clone(), tokens: tokens.to_vec() };
    Call { target: adapter, value: call.value, data: run.abi_encode().into() }
}

/// `call` paid with `amount` of `token`: [`fund`] the adapter with it, then make `call`
/// [`through_adapter`], which may pull it (what is left returns to the account). The shape of
/// an approve-and-swap for a session.
pub fn funded_call(adapter: Address, token: Address, amount: U256, call: &Call) -> Vec<Call> {
    vec![fund(adapter, token, amount), through_adapter(adapter, call, &[token])]
}

/// An adapter `run` element, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The call the adapter makes; it carries the element's value.
    pub call: Call,
    /// The token list as 32-byte words (a word with dirty upper bits names no token).
    pub tokens: Vec<B256>,
}

/// The inner call of a `run(address,bytes,address[])` element, decoded exactly as the
/// contracts do (`SessionLib.decodeRun`): canonical offsets, nothing after the token list, at
/// most 64 tokens.
pub fn decode_run(element: &Call) -> Result<Run, Refusal> {
    let data = &element.data[..];
    let word = |at: usize| U256::from_be_slice(&data[at..at + 32]);
    let malformed = Err(Refusal::MalformedAdapterCall);
    if data.len() < 4 + 0xa0 {
        return malformed;
    }
    let head = word(4);
    let len = word(100);
    if head >> 160 != U256::ZERO || word(36) != U256::from(0x60) || len > U256::from(data.len()) {
        return malformed;
    }
    let len = len.to::<usize>();
    let tokens_offset = 0x80 + len.div_ceil(32) * 32;
    if word(68) != U256::from(tokens_offset) || data.len() < 4 + tokens_offset + 32 {
        return malformed;
    }
    let n = word(4 + tokens_offset);
    if n > U256::from(64) || data.len() != 36 + tokens_offset + 32 * n.to::<usize>() {
        return malformed;
    }
    let call = Call {
        target: Address::from_slice(&data[16..36]),
        value: element.value,
        data: Bytes::copy_from_slice(&data[132..132 + len]),
    };
    let tokens = data[36 + tokens_offset..].chunks(32).map(B256::from_slice).collect();
    Ok(Run { call, tokens })
}

/// `abi.encode(Execution[])`: a batch as ERC-7821 batch mode and `executeWithSession` take it.
pub fn execution_data(calls: &[Call]) -> Bytes {
    let tuples: Vec<(Address, U256, Bytes)> =
        calls.iter().map(|c| (c.target, c.value, c.data.clone())).collect();
    tuples.abi_encode().into()
}

/// `execute(BATCH_MODE, abi.encode(calls))` on the account: what every session operation runs.
pub fn encode_execute(calls: &[Call]) -> Bytes {
    SakAccount::executeCall { mode: BATCH_MODE, executionData: execution_data(calls) }.abi_encode().into()
}

/// The calls of an account `execute` in batch mode, refused like the contracts refuse them.
pub fn decode_execute(call_data: &[u8]) -> Result<Vec<Call>, Refusal> {
    if call_data.len() < 4 + 64 || call_data[..4] != SakAccount::executeCall::SELECTOR {
        return Err(Refusal::SessionExecutionMode { mode: B256::ZERO });
    }
    let mode = B256::from_slice(&call_data[4..36]);
    if mode != BATCH_MODE {
        return Err(Refusal::SessionExecutionMode { mode });
    }
    // Strict decoding: the off-chain side is never more lenient than the contracts.
    let execute = SakAccount::executeCall::abi_decode_validate(call_data)
        .map_err(|_| Refusal::SessionExecutionMode { mode })?;
    let tuples = <Vec<(Address, U256, Bytes)>>::abi_decode_validate(&execute.executionData)
        .map_err(|_| Refusal::SessionExecutionMode { mode })?;
    if tuples.is_empty() {
        return Err(Refusal::EmptyBatch);
    }
    Ok(tuples.into_iter().map(|(target, value, data)| Call { target, value, data }).collect())
}

/// What a call does, for display, audit and the signer's checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// A plain ETH send.
    EthSend { to: Address, value: U256 },
    /// ERC-20 `transfer`.
    Transfer { token: Address, to: Address, amount: U256 },
    /// ERC-20 `approve` (charged in full as spend).
    Approve { token: Address, spender: Address, amount: U256 },
    /// A Uniswap V2 router swap.
    Swap {
        router: Address,
        function: &'static str,
        /// Exact input, or the most input for exact-output swaps (`None`: the ETH sent).
        amount_in: Option<U256>,
        /// Least output, or the exact output.
        amount_out: U256,
        path: Vec<Address>,
        recipient: Address,
        deadline: U256,
    },
    /// Anything else.
    Other { target: Address, selector: Option<Selector> },
}

/// Decodes a call into what it does. Only exact encodings are recognised (a `transfer` with
/// trailing bytes is `Other`, as the contracts refuse it). An adapter `run` is described by the
/// call it makes.
pub fn describe(call: &Call) -> Action {
    let data = &call.data[..];
    let target = call.target;
    if data.len() >= 4
        && data[..4] == SessionAdapter::runCall::SELECTOR
        && let Ok(run) = decode_run(call)
    {
        return describe(&run.call);
    }
    if data.is_empty() {
        return Action::EthSend { to: target, value: call.value };
    }
    if data.len() == 68 {
        if let Ok(t) = MockERC20::transferCall::abi_decode_validate(data) {
            return Action::Transfer { token: target, to: t.to, amount: t.value };
        }
        if let Ok(a) = MockERC20::approveCall::abi_decode_validate(data) {
            return Action::Approve { token: target, spender: a.spender, amount: a.value };
        }
    }
    let swap = |function, amount_in, amount_out, path: &Vec<Address>, recipient, deadline| Action::Swap {
        router: target,
        function,
        amount_in,
        amount_out,
        path: path.clone(),
        recipient,
        deadline,
    };
    if let Ok(s) = Router::swapExactTokensForTokensCall::abi_decode_validate(data) {
        return swap("swapExactTokensForTokens", Some(s.amountIn), s.amountOutMin, &s.path, s.to, s.deadline);
    }
    if let Ok(s) = Router::swapTokensForExactTokensCall::abi_decode_validate(data) {
        return swap("swapTokensForExactTokens", Some(s.amountInMax), s.amountOut, &s.path, s.to, s.deadline);
    }
    if let Ok(s) = Router::swapExactTokensForETHCall::abi_decode_validate(data) {
        return swap("swapExactTokensForETH", Some(s.amountIn), s.amountOutMin, &s.path, s.to, s.deadline);
    }
    if let Ok(s) = Router::swapExactETHForTokensCall::abi_decode_validate(data) {
        return swap("swapExactETHForTokens", None, s.amountOutMin, &s.path, s.to, s.deadline);
    }
    if let Ok(s) = Router::swapETHForExactTokensCall::abi_decode_validate(data) {
        return swap("swapETHForExactTokens", None, s.amountOut, &s.path, s.to, s.deadline);
    }
    Action::Other { target, selector: Call { target, value: call.value, data: call.data.clone() }.selector() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    const TOKEN: Address = address!("0x00000000000000000000000000000000000a11ce");
    const ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");

    fn transfer(to: Address, amount: u64) -> Call {
        let data = MockERC20::transferCall { to, value: U256::from(amount) }.abi_encode().into();
        Call { target: TOKEN, value: U256::ZERO, data }
    }

    #[test]
    fn execute_round_trips_and_refuses_other_shapes() {
        let calls =
            vec![transfer(ROUTER, 5), Call { target: ROUTER, value: U256::from(7), data: Bytes::new() }];
        let encoded = encode_execute(&calls);
        assert_eq!(&encoded[..4], &[0xe9, 0xae, 0x5c, 0x53], "ERC-7821 execute(bytes32,bytes)");
        assert_eq!(&encoded[4..36], BATCH_MODE.as_slice());
        assert_eq!(decode_execute(&encoded).unwrap(), calls);

        assert_eq!(decode_execute(&encode_execute(&[])), Err(Refusal::EmptyBatch));
        let mut single = encoded.to_vec();
        single[4] = 0x00;
        assert_eq!(
            decode_execute(&single),
            Err(Refusal::SessionExecutionMode { mode: B256::from_slice(&single[4..36]) })
        );
        assert_eq!(decode_execute(&encoded[..60]), Err(Refusal::SessionExecutionMode { mode: B256::ZERO }));
        let mut truncated = encoded.to_vec();
        truncated.truncate(encoded.len() - 32);
        assert!(matches!(decode_execute(&truncated), Err(Refusal::SessionExecutionMode { .. })));
    }

    #[test]
    fn describes_transfers_approvals_swaps_and_the_rest() {
        assert_eq!(
            describe(&transfer(ROUTER, 5)),
            Action::Transfer { token: TOKEN, to: ROUTER, amount: U256::from(5) }
        );
        let mut padded = transfer(ROUTER, 5);
        padded.data = [padded.data.to_vec(), vec![0; 32]].concat().into();
        assert!(matches!(describe(&padded), Action::Other { .. }), "trailing bytes are not a transfer");

        let path = vec![TOKEN, ROUTER];
        let data = Router::swapExactTokensForTokensCall {
            amountIn: U256::from(100),
            amountOutMin: U256::from(1),
            path: path.clone(),
            to: TOKEN,
            deadline: U256::from(9),
        }
        .abi_encode();
        let action = describe(&Call { target: ROUTER, value: U256::ZERO, data: data.into() });
        assert_eq!(
            action,
            Action::Swap {
                router: ROUTER,
                function: "swapExactTokensForTokens",
                amount_in: Some(U256::from(100)),
                amount_out: U256::from(1),
                path,
                recipient: TOKEN,
                deadline: U256::from(9),
            }
        );
        let zero_selector = Call { target: ROUTER, value: U256::ZERO, data: vec![0, 0, 0, 0, 1].into() };
        assert_eq!(zero_selector.selector(), None);
        assert_eq!(describe(&zero_selector), Action::Other { target: ROUTER, selector: None });
    }
}
