use crate::ledger::{IntentId, IntentState};
use alloy::primitives::{Address, B256, U256};
use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with keys and the spend ledger.
///
/// No variant ever carries key material or a password: errors are logged and shown to users.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- keys and passwords ----
    /// A key file or key directory can be read or entered by group or others.
    #[error(
        "{} is accessible by group or others (mode {mode:04o}); run `chmod {fix:o} {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode to set (0600 for files, 0700 for directories).
        fix: u32,
    },
    /// The password does not decrypt the keystore (its MAC does not match).
    #[error("wrong password for keystore {}", path.as_deref().map_or_else(|| "<memory>".into(), |p| p.display().to_string()))]
    WrongPassword {
        /// The keystore file, when read from one.
        path: Option<PathBuf>,
    },
    /// An empty password was supplied.
    #[error("the password from {source_name} is empty")]
    EmptyPassword {
        /// Where it came from (`env SAK_PASSWORD`, `fd 3`, a file path).
        source_name: String,
    },
    /// The environment variable that should hold the password is not set (or not UTF-8).
    #[error("environment variable {var} is not set; export it or use --password-fd")]
    PasswordEnvMissing {
        /// The variable's name.
        var: String,
    },
    /// The keystore JSON is not a valid Web3 Secret Storage v3 document.
    #[error("malformed keystore{}: {reason}", path.as_deref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    MalformedKeystore {
        /// The keystore file, when read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// The keystore uses a cipher, KDF or parameter set this crate does not accept.
    #[error("unsupported keystore: {what}")]
    UnsupportedKeystore {
        /// What is unsupported.
        what: String,
    },
    /// The decrypted secret is not a valid secp256k1 private key.
    #[error("the keystore does not hold a valid secp256k1 key")]
    InvalidKey,
    /// The keystore holds a different address than the one it claims.
    #[error("keystore claims address {claimed} but its key is for {actual}")]
    AddressMismatch {
        /// The `address` field of the file.
        claimed: Address,
        /// The address derived from the decrypted key.
        actual: Address,
    },
    /// A file-system operation failed.
    #[error("{context} {}", path.display())]
    Io {
        /// What we were doing.
        context: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An owner signer backend (Ledger, AWS KMS) failed.
    #[error("owner signer ({backend}): {message}")]
    OwnerSigner {
        /// `ledger`, `aws-kms`.
        backend: &'static str,
        /// What it said.
        message: String,
    },

    // ---- ledger ----
    /// Reserving would let more be pending for (token, window) than the ceiling allows.
    #[error(
        "reservation refused: token {token} window {window}: pending {pending} + requested {requested} > ceiling {ceiling}"
    )]
    CeilingExceeded {
        /// The token (native ETH as the caller represents it).
        token: Address,
        /// The period window index.
        window: u64,
        /// Already pending for this (chain, account, session, token, window).
        pending: U256,
        /// What this intent adds.
        requested: U256,
        /// The most that may be pending.
        ceiling: U256,
    },
    /// An intent spends a (token, window) for which the caller gave no ceiling.
    #[error("no ceiling given for token {token} window {window}")]
    MissingCeiling {
        /// The token.
        token: Address,
        /// The window.
        window: u64,
    },
    /// An intent's field is out of range (nonce key above 2^192 - 1, chain id above 2^63 - 1...).
    #[error("invalid intent: {reason}")]
    InvalidIntent {
        /// What is wrong.
        reason: String,
    },
    /// Adding amounts overflowed 256 bits.
    #[error("amount overflow summing spends for token {token} window {window}")]
    AmountOverflow {
        /// The token.
        token: Address,
        /// The window.
        window: u64,
    },
    /// No intent with this id.
    #[error("no intent {0}")]
    IntentNotFound(IntentId),
    /// The intent's state does not allow this step.
    #[error("intent {id}: cannot {action} from state {from}")]
    IllegalTransition {
        /// The intent.
        id: IntentId,
        /// Its current state.
        from: IntentState,
        /// The refused step (`mark_signed`, `mark_submitted`, `resolve(Included)`...).
        action: &'static str,
    },
    /// The intent is already signed with a different user operation.
    #[error("intent {id} is already signed as {existing}; refusing a different op {attempted}")]
    SignedOpConflict {
        /// The intent.
        id: IntentId,
        /// The hash persisted.
        existing: B256,
        /// The hash offered now.
        attempted: B256,
    },
    /// Another intent holds the identical signed operation (same hash): one operation, one
    /// intent, so that it is never counted twice.
    #[error("intent {id}: the same operation is already intent {existing}")]
    DuplicateOp {
        /// The intent that offered it.
        id: IntentId,
        /// The intent that holds it.
        existing: IntentId,
    },
    /// The signed op's nonce does not match the intent's lane (or its known sequence).
    #[error(
        "intent {id}: signed op nonce (key {key}, seq {seq}) does not match the intent's lane (key {intent_key}, seq {intent_seq:?})"
    )]
    NonceMismatch {
        /// The intent.
        id: IntentId,
        /// The signed op's nonce key.
        key: U256,
        /// The signed op's sequence.
        seq: u64,
        /// The intent's nonce key.
        intent_key: U256,
        /// The intent's sequence, if it was known at reservation.
        intent_seq: Option<u64>,
    },
    /// The ledger database failed.
    #[error("ledger storage: {context}")]
    Storage {
        /// What we were doing.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The ledger holds data this code cannot interpret (a newer schema, a bad value).
    #[error("ledger data: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },

    // ---- the guarded signer ----
    /// The policy refuses the operation; nothing was signed. Same name and fields as the
    /// contracts' error, plus when the allowance renews.
    #[error(transparent)]
    Refused(sak_policy::Refusal),
    /// Building, estimating, submitting or tracking the user operation failed (the chain or
    /// the bundler may have refused it: see [`Error::refusal`]).
    #[error(transparent)]
    UserOp(#[from] sak_userop::Error),
    /// Reading the chain failed.
    #[error("chain: {0}")]
    Chain(String),
    /// The node is on another chain than the session's.
    #[error("the node is on chain {found}, the session on chain {expected}")]
    WrongChain {
        /// The session's chain id.
        expected: u64,
        /// The node's.
        found: u64,
    },
    /// The key is not the session's key.
    #[error("key {found} is not the session's key {expected}")]
    WrongSessionKey {
        /// The session's key address.
        expected: Address,
        /// The key given.
        found: Address,
    },
    /// No such session was ever granted on the account.
    #[error("no session {id} was granted on {account}")]
    UnknownSession {
        /// The account.
        account: Address,
        /// The session id.
        id: u32,
    },
    /// The session key could not sign.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The operation was signed and perhaps submitted, and whether it is on chain is not known
    /// yet: it may still land. Never report it as failed, and never sign it again.
    #[error(
        "intent {intent}: operation {user_op_hash} was signed and may still land; its outcome is unknown ({reason})"
    )]
    OutcomeUnknown {
        /// Its ledger intent.
        intent: IntentId,
        /// The user operation hash.
        user_op_hash: B256,
        /// What went wrong while submitting or waiting.
        reason: String,
        /// The signed deadline: no EntryPoint includes the operation after this second, so from
        /// then on `sak op status` settles it for certain.
        deadline: Option<u64>,
    },
    /// Another operation of the same nonce lane (another process, or another task of this one)
    /// stayed in flight for longer than the signer waits.
    #[error("another operation on this nonce lane has been in flight for {waited_s} s")]
    LaneBusy {
        /// How long we waited.
        waited_s: u64,
    },
    /// The shared ledger no longer holds this worker's nonce lane for it (its PostgreSQL server
    /// restarted, or the connection that held the lane dropped): another worker may hold it
    /// now, so nothing was recorded and the signed operation was thrown away, never sent.
    #[error("the ledger lost this worker's hold on its nonce lane (the database connection was lost)")]
    LaneLost,
}

impl Error {
    /// The policy refusal behind this error: a local refusal, or the contracts' own revert
    /// when the operation reached the chain (or the bundler's simulation of it).
    pub fn refusal(&self) -> Option<sak_policy::Refusal> {
        match self {
            Self::Refused(r) => Some(r.clone()),
            Self::UserOp(e) => e.refusal(),
            _ => None,
        }
    }

    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        use sak_policy::Refusal as R;
        Some(match self {
            Self::Refused(R::SpendCapExceeded { resets_at: Some(t), .. }) => {
                format!(
                    "wait until the allowance renews at {}, or ask the owner for a larger cap",
                    sak_primitives::units::format_time(*t)
                )
            }
            Self::Refused(R::SpendCapExceeded { .. } | R::GasBudgetExceeded { .. }) => {
                "ask the owner for a larger cap, or spend less".into()
            }
            Self::Refused(R::SessionNotActive { .. }) => {
                "the owner revoked the session: ask for a new one".into()
            }
            Self::Refused(R::ClockOutsideSession { .. }) => {
                "the session is not valid now (expired or not started): ask the owner for a new one".into()
            }
            Self::Refused(
                R::CallNotPermitted { .. } | R::ArgumentConditionFailed { .. } | R::ValueNotPermitted { .. },
            ) => "the session's policy does not allow this call: `sak session show` lists what it allows"
                .into(),
            Self::Refused(R::OperationLimitReached { .. }) => "the session's operations are used up".into(),
            Self::Refused(R::FeePerGasAboveCap { .. }) => {
                "the network's fee is above the session's max_fee_per_gas: wait for lower fees, use a paymaster, \
                 or ask the owner to raise the cap"
                    .into()
            }
            Self::Refused(R::PreVerificationGasAboveCap { .. }) => {
                "this operation needs more preVerificationGas than the session's max_pre_verification_gas: \
                 send a smaller batch, or ask the owner to raise the cap"
                    .into()
            }
            Self::Refused(_) => "the session's policy refuses this operation".into(),
            Self::UserOp(e) => return e.hint().map(Into::into),
            Self::WrongChain { .. } => "point the RPC URL at the session's chain".into(),
            Self::WrongSessionKey { .. } => "load the key the session was granted to".into(),
            Self::UnknownSession { .. } => "check the session id and the account (`sak session list`)".into(),
            Self::Chain(_) => {
                "check that the RPC endpoint is reachable and serves the session's chain (`sak doctor` checks it)"
                    .into()
            }
            Self::OutcomeUnknown { intent, deadline, .. } => format!(
                "do not repeat the operation: it may still land{}. `sak op status {}` tells its outcome \
                 (and settles it in the ledger); if it is stuck, `sak op bump {}` replaces it with higher fees; \
                 the next operation on this session replaces it if it never lands",
                deadline
                    .map(|d| format!(", but never after its deadline {}", sak_primitives::units::format_time(d)))
                    .unwrap_or_default(),
                intent.0,
                intent.0
            ),
            Self::LaneLost => {
                "nothing was signed or sent: run it again (the lane is taken anew; `sak doctor` \
                 checks the ledger's database)"
                    .into()
            }
            Self::LaneBusy { .. } => {
                "another sak process is waiting for its operation on this session: let it finish \
                 (`sak op list` shows what is in flight), then run again"
                    .into()
            }
            Self::MalformedKeystore { .. }
            | Self::UnsupportedKeystore { .. }
            | Self::InvalidKey
            | Self::AddressMismatch { .. } => {
                "the key file is damaged or not a v3 keystore: restore it from your backup; a lost session key \
                 is replaced by the owner with `sak session rotate ID`"
                    .into()
            }
            Self::Io { .. } => "check that the path exists and that you may read and write it".into(),
            Self::Storage { .. } => {
                "check the ledger file's permissions and free disk space; never delete it while operations \
                 are in flight"
                    .into()
            }
            Self::Corrupt { .. } => {
                "the spend ledger holds data this version cannot read: use the sak version that wrote it, \
                 or restore the file from a backup"
                    .into()
            }
            _ => return None,
        })
    }

    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { context, path: path.into(), source }
    }

    pub(crate) fn malformed(path: Option<&std::path::Path>, reason: impl Into<String>) -> Self {
        Self::MalformedKeystore { path: path.map(Into::into), reason: reason.into() }
    }
}
