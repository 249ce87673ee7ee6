use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A ledger intent's id (unique within one ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IntentId(pub i64);

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One EntryPoint nonce lane of one account on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LaneId {
    /// The chain id.
    pub chain_id: u64,
    /// The account.
    pub account: Address,
    /// The 192-bit nonce key.
    pub nonce_key: U256,
}

/// A lane held by one caller ([`Ledger::try_lock_lane`](super::Ledger::try_lock_lane)); dropping
/// it frees the lane.
pub struct LaneLock {
    _held: Box<dyn Send + Sync>,
}

impl LaneLock {
    pub(crate) fn new(held: impl Send + Sync + 'static) -> Self {
        Self { _held: Box::new(held) }
    }
}

impl fmt::Debug for LaneLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LaneLock")
    }
}

/// What [`Ledger::bind_chain`](super::Ledger::bind_chain) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainBound {
    /// The ledger had not seen this chain id: its genesis is recorded now.
    First,
    /// The same chain as before.
    Same,
    /// Another chain under the same id (a restarted local node, a reset testnet): the old
    /// chain's operations in flight can never land on it. They were resolved as Failed, so
    /// that nothing of the dead chain counts against the new one or is settled against it.
    Reset {
        /// The genesis hash the ledger knew.
        previous: B256,
        /// The intents resolved.
        retired: Vec<IntentId>,
    },
}

/// Where an intent is in the write-ahead flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentState {
    /// Spend reserved; nothing signed yet.
    Reserved,
    /// The signed op is persisted; maybe not yet sent.
    Signed,
    /// Sent at least once (to a bundler or in our own `handleOps`).
    Submitted,
    /// Terminal: on chain (its `UserOperationEvent` seen), successful or reverted.
    Included,
    /// Terminal: will never be included (expired, rejected, nonce consumed by nothing of ours).
    Failed,
    /// Terminal: given up before it could spend (signing refused, superseded).
    Released,
}

impl IntentState {
    /// Reserved, Signed or Submitted: still counts against ceilings.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Reserved | Self::Signed | Self::Submitted)
    }

    /// The lower-case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Signed => "signed",
            Self::Submitted => "submitted",
            Self::Included => "included",
            Self::Failed => "failed",
            Self::Released => "released",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reserved" => Self::Reserved,
            "signed" => Self::Signed,
            "submitted" => Self::Submitted,
            "included" => Self::Included,
            "failed" => Self::Failed,
            "released" => Self::Released,
            _ => return None,
        })
    }
}

impl fmt::Display for IntentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One token movement an operation will cause, in one period window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// The ERC-20 token (native ETH as the policy represents it).
    pub token: Address,
    /// The period window index (0 = the session's first period).
    pub window: u64,
    /// The amount in the token's smallest unit.
    pub amount: U256,
}

/// What an operation about to be signed will do, as far as the ledger cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The chain id (at most 2^63 - 1).
    pub chain_id: u64,
    /// The smart account (or 7702-delegated EOA) that pays.
    pub account: Address,
    /// The session the op is signed under.
    pub session_id: B256,
    /// The EntryPoint nonce lane (a 192-bit key: at most 2^192 - 1).
    pub nonce_key: U256,
    /// The sequence within the lane, if already known.
    pub nonce_seq: Option<u64>,
    /// The spends, per token and window (the same pair may appear more than once; they add).
    pub spends: Vec<Spend>,
    /// The most the op may cost in gas (wei), as signed.
    pub gas_cost_cap: U256,
    /// When the intent was made (unix seconds, supplied by the caller).
    pub created_at: u64,
}

/// The most that may be in flight for one (token, window) of an intent's (chain, account,
/// session), computed by the caller from the on-chain remaining allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceiling {
    /// The token.
    pub token: Address,
    /// The window.
    pub window: u64,
    /// What counts (see `as_of`) plus this intent may not exceed this.
    pub max_pending: U256,
    /// The chain state `max_pending` was read at. `None`: every pending intent (Reserved,
    /// Signed, Submitted) counts. `Some`: exactly the intents the chain had not counted at that
    /// block count (see [`AsOf`]).
    pub as_of: Option<AsOf>,
}

/// The chain state a ceiling was read at: what the counters there have already counted.
///
/// An intent the chain's counters at `block` include must not count again, and one they do
/// not include must: a pending intent whose nonce its lane had already used by `block` (its
/// operation landed, or another took the nonce and it never can) is in the counters or never
/// spends; an intent included *after* `block` is not in them, although it is no longer pending.
/// Without this, a reader racing another worker's settlement counts a landed spend twice (a
/// false refusal) or, once it is settled, not at all (an operation the chain refuses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsOf {
    /// The block the counters were read at.
    pub block: u64,
    /// `(nonce key, next sequence)` at `block` for the lanes that had intents in flight; the
    /// intents of a lane not listed count while pending.
    pub next_seqs: Vec<(U256, u64)>,
}

impl AsOf {
    /// Whether an intent in `state`, signed at `nonce` (key, sequence) and included at
    /// `included_block`, is not yet in the counters read at [`AsOf::block`].
    pub fn counts(
        &self,
        state: IntentState,
        nonce: Option<(U256, u64)>,
        included_block: Option<u64>,
    ) -> bool {
        match state {
            IntentState::Reserved | IntentState::Signed | IntentState::Submitted => nonce
                .is_none_or(|(key, seq)| self.next_seqs.iter().all(|(k, next)| *k != key || seq >= *next)),
            IntentState::Included => included_block.is_none_or(|b| b > self.block),
            IntentState::Failed | IntentState::Released => false,
        }
    }
}

/// A signed user operation, exactly as it will be (re)submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOp {
    /// The ERC-4337 user operation hash.
    pub user_op_hash: B256,
    /// The nonce's 192-bit key.
    pub nonce_key: U256,
    /// The nonce's sequence.
    pub nonce_seq: u64,
    /// The encoded signed op (the caller's encoding; stored and returned byte for byte).
    pub op_bytes: Bytes,
}

/// The latest submission of an intent's op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// How it was sent (`self-bundled`, a bundler URL...).
    pub via: String,
    /// The transaction that carried it, when known.
    pub tx_hash: Option<B256>,
    /// How many times it was submitted.
    pub count: u32,
}

/// How an intent ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The op was included (its `UserOperationEvent` seen).
    Included {
        /// The operation that landed: the intent's signed operation, or one it replaced (see
        /// [`IntentRecord::replaced`]).
        user_op_hash: B256,
        /// `UserOperationEvent.success` (false: the calls reverted, gas was still paid).
        success: bool,
        /// `UserOperationEvent.actualGasCost`, wei.
        actual_gas_cost: U256,
        /// The transaction that included it.
        tx_hash: B256,
        /// Its block number.
        block: u64,
    },
    /// The op will never be included.
    Failed {
        /// Why (an error name).
        reason: String,
    },
    /// Abandoned before it could spend.
    Released {
        /// Why.
        reason: String,
    },
}

impl IntentRecord {
    /// Every operation the intent signed, oldest first: those it replaced, then its own.
    pub fn user_op_hashes(&self) -> impl Iterator<Item = B256> + '_ {
        self.replaced.iter().chain(&self.signed).map(|s| s.user_op_hash)
    }
}

impl Outcome {
    pub(crate) fn state(&self) -> IntentState {
        match self {
            Self::Included { .. } => IntentState::Included,
            Self::Failed { .. } => IntentState::Failed,
            Self::Released { .. } => IntentState::Released,
        }
    }
}

/// Everything the ledger holds about one intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRecord {
    /// Its id.
    pub id: IntentId,
    /// What was reserved.
    pub intent: Intent,
    /// Where it is.
    pub state: IntentState,
    /// The signed op, once Signed (the latest, when it was replaced).
    pub signed: Option<SignedOp>,
    /// The operations it replaced with a fee bump, oldest first: the same calls at the same
    /// nonce with lower fees. Any one of them, or `signed`, may land; never two.
    #[serde(default)]
    pub replaced: Vec<SignedOp>,
    /// The latest submission, once Submitted.
    pub submission: Option<Submission>,
    /// The outcome, once terminal.
    pub outcome: Option<Outcome>,
}

/// One signing decision, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When (unix seconds, supplied by the caller).
    pub at: u64,
    /// The chain id.
    pub chain_id: u64,
    /// The account.
    pub account: Address,
    /// The session.
    pub session_id: B256,
    /// The session key's address.
    pub key: Address,
    /// Whether the op was allowed.
    pub allowed: bool,
    /// Why: `ok`, or the refusal's error name (`SpendCapExceeded`...).
    pub reason: String,
    /// The spends the op would cause.
    pub spends: Vec<Spend>,
    /// The op's hash, when computed.
    pub user_op_hash: Option<B256>,
    /// The transaction, when known.
    pub tx_hash: Option<B256>,
}
