//! Transaction traces from anvil: the call tree (`callTracer`) and the opcode-level struct
//! log, with the struct log's call frames reconstructed (code address, storage address,
//! caller, value) so that checks can say which contract executed each step.
//!
//! Struct logs of mined transactions need anvil's `--steps-tracing`
//! (`sak_testkit::Profile::with_steps_tracing`); the call tree does not.

use crate::{Error, Result};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    sol_types::SolCall,
};
use serde::Deserialize;
use serde_json::json;

/// One EVM step of the default struct logger (geth's format, as anvil writes it).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructLog {
    /// Program counter in the executing code.
    pub pc: u64,
    /// Opcode name (`SLOAD`, `KECCAK256`, ...).
    pub op: String,
    /// Gas left before the step.
    pub gas: u64,
    /// Gas the step costs (for calls: including the gas handed to the callee).
    pub gas_cost: u64,
    /// Call depth; the transaction's top frame is 1.
    pub depth: u64,
    /// The stack before the step, bottom first (the top is the last element).
    #[serde(default)]
    pub stack: Vec<U256>,
}

impl StructLog {
    /// The `n`-th stack item from the top (0 = top).
    pub fn stack_top(&self, n: usize) -> Option<U256> {
        self.stack.len().checked_sub(n + 1).map(|i| self.stack[i])
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StructTrace {
    struct_logs: Vec<StructLog>,
}

/// One frame of the `callTracer` call tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFrame {
    /// `CALL`, `STATICCALL`, `DELEGATECALL`, `CALLCODE`, `CREATE`, `CREATE2`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The caller (for a `DELEGATECALL`: the delegating account).
    pub from: Address,
    /// The callee (the code address for a `DELEGATECALL`).
    #[serde(default)]
    pub to: Option<Address>,
    /// Wei sent with the call.
    #[serde(default)]
    pub value: Option<U256>,
    /// Call data.
    pub input: Bytes,
    /// Return or revert data.
    #[serde(default)]
    pub output: Option<Bytes>,
    /// Gas used inside the frame, children included.
    pub gas_used: U256,
    /// Set when the frame reverted or failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Sub-calls in execution order.
    #[serde(default)]
    pub calls: Vec<Self>,
}

impl CallFrame {
    /// The first four bytes of the input, if there are four.
    pub fn selector(&self) -> Option<[u8; 4]> {
        self.input.get(..4).map(|s| s.try_into().expect("four bytes"))
    }

    /// This frame and all its descendants, in execution (pre-)order.
    pub fn walk(&self) -> Vec<&Self> {
        let mut out = vec![self];
        for call in &self.calls {
            out.extend(call.walk());
        }
        out
    }

    /// `gas_used` as a `u64`.
    pub fn gas(&self) -> u64 {
        self.gas_used.saturating_to()
    }
}

/// The call tree of a mined transaction.
pub async fn call_tree<P: Provider>(provider: &P, tx: B256) -> Result<CallFrame> {
    let value: serde_json::Value = provider
        .raw_request("debug_traceTransaction".into(), (tx, json!({ "tracer": "callTracer" })))
        .await
        .map_err(Error::rpc("debug_traceTransaction"))?;
    serde_json::from_value(value).map_err(Error::Decode)
}

/// The struct log of a mined transaction (stack on; storage, memory and return data off).
pub async fn struct_logs<P: Provider>(provider: &P, tx: B256) -> Result<Vec<StructLog>> {
    let options = json!({ "disableStorage": true, "enableMemory": false, "enableReturnData": false });
    let value: serde_json::Value = provider
        .raw_request("debug_traceTransaction".into(), (tx, options))
        .await
        .map_err(Error::rpc("debug_traceTransaction"))?;
    let trace: StructTrace = serde_json::from_value(value).map_err(Error::Decode)?;
    if trace.struct_logs.is_empty() {
        return Err(Error::Trace(
            "empty struct log: start anvil with --steps-tracing (Profile::with_steps_tracing)".into(),
        ));
    }
    Ok(trace.struct_logs)
}

/// A call frame reconstructed from a struct log. Calls that run no code (precompiles,
/// accounts without code) leave no steps and so have no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The opcode that opened the frame (`CALL`, ...); `TX` for the transaction's own frame.
    pub kind: String,
    /// Whose code runs (`None` for a contract being created).
    pub code: Option<Address>,
    /// Whose storage `SLOAD`/`SSTORE` touch: the callee, or the caller's storage address for
    /// `DELEGATECALL` and `CALLCODE`.
    pub storage: Option<Address>,
    /// `msg.sender` in the frame.
    pub caller: Address,
    /// Wei sent with the call.
    pub value: U256,
    /// Struct-log depth of the frame's steps.
    pub depth: u64,
    /// The enclosing frame.
    pub parent: Option<usize>,
    /// Index of the frame's first step in the struct log.
    pub first_step: usize,
    /// One past the last step of the frame and its descendants.
    pub end_step: usize,
}

/// The frames of a struct log and, for every step, the frame it runs in.
#[derive(Debug, Clone)]
pub struct Frames {
    /// Frames in the order they were entered (frame 0 is the transaction's).
    pub frames: Vec<Frame>,
    /// `step_frame[i]` is the frame of step `i`.
    pub step_frame: Vec<usize>,
}

/// `validateUserOp(PackedUserOperation,bytes32,uint256)`: the EntryPoint's call into an
/// account in the validation phase, by which [`locate`] finds the validation frame.
pub const VALIDATE_USER_OP: [u8; 4] = sak_contracts::SakAccount::validateUserOpCall::SELECTOR;

/// The call opcodes that may open a frame.
pub const CALL_OPS: [&str; 6] = ["CALL", "CALLCODE", "DELEGATECALL", "STATICCALL", "CREATE", "CREATE2"];

impl Frames {
    /// Rebuilds the frames of a transaction from `from` to `to` from its struct log.
    pub fn build(logs: &[StructLog], from: Address, to: Address) -> Self {
        let mut frames = vec![Frame {
            kind: "TX".into(),
            code: Some(to),
            storage: Some(to),
            caller: from,
            value: U256::ZERO,
            depth: logs.first().map_or(1, |s| s.depth),
            parent: None,
            first_step: 0,
            end_step: logs.len(),
        }];
        let mut step_frame = Vec::with_capacity(logs.len());
        let mut open = vec![0usize];
        for (i, step) in logs.iter().enumerate() {
            while step.depth < frames[*open.last().expect("tx frame")].depth {
                let done = open.pop().expect("deeper than the tx frame");
                frames[done].end_step = i;
            }
            if i > 0 && step.depth == logs[i - 1].depth + 1 {
                let prev = &logs[i - 1];
                let parent = *open.last().expect("tx frame");
                let here = frames[parent].storage.unwrap_or_default();
                let address = |n| prev.stack_top(n).map(|v: U256| Address::from_word(v.into()));
                let (code, storage, caller, value) = match prev.op.as_str() {
                    "CALL" => {
                        let to = address(1);
                        (to, to, here, prev.stack_top(2).unwrap_or_default())
                    }
                    "STATICCALL" => {
                        let to = address(1);
                        (to, to, here, U256::ZERO)
                    }
                    "DELEGATECALL" => (address(1), Some(here), frames[parent].caller, frames[parent].value),
                    "CALLCODE" => (address(1), Some(here), here, prev.stack_top(2).unwrap_or_default()),
                    // CREATE/CREATE2: the new address is only known once the frame returns.
                    _ => (None, None, here, prev.stack_top(0).unwrap_or_default()),
                };
                frames.push(Frame {
                    kind: prev.op.clone(),
                    code,
                    storage,
                    caller,
                    value,
                    depth: step.depth,
                    parent: Some(parent),
                    first_step: i,
                    end_step: logs.len(),
                });
                open.push(frames.len() - 1);
            }
            step_frame.push(*open.last().expect("tx frame"));
        }
        Self { frames, step_frame }
    }

    /// Whether frame `inner` is `outer` or inside it.
    pub fn within(&self, inner: usize, outer: usize) -> bool {
        let mut f = Some(inner);
        while let Some(i) = f {
            if i == outer {
                return true;
            }
            f = self.frames[i].parent;
        }
        false
    }

    /// The `n`-th frame (0-based, in entry order) opened by a `kind` call from `caller` to `code`.
    pub fn nth_call(&self, kind: &str, caller: Address, code: Address, n: usize) -> Option<usize> {
        self.frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == kind && f.caller == caller && f.code == Some(code))
            .nth(n)
            .map(|(i, _)| i)
    }
}

/// Locates, in both traces of one transaction, the frame of the `n`-th `CALL` from `caller` to
/// `callee` whose input starts with `selector`: the `callTracer` frame and the index of the
/// matching struct-log frame. Both traces list calls into code in the same order, so the
/// match is by rank among the `CALL`s from `caller` to `callee`.
pub fn locate<'a>(
    tree: &'a CallFrame,
    frames: &Frames,
    caller: Address,
    callee: Address,
    selector: [u8; 4],
    n: usize,
) -> Option<(&'a CallFrame, usize)> {
    let calls: Vec<&CallFrame> = tree
        .walk()
        .into_iter()
        .filter(|c| c.kind == "CALL" && c.from == caller && c.to == Some(callee))
        .collect();
    let (rank, call) = calls.iter().enumerate().filter(|(_, c)| c.selector() == Some(selector)).nth(n)?;
    Some((call, frames.nth_call("CALL", caller, callee, rank)?))
}
