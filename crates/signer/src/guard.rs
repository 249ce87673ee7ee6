//! The guarded signer: the only way a bot's session key signs.
//!
//! ```text
//!  calls ─► policy (sak-policy, chain time) ─► nonce lane ─► estimate (simulated probe)
//!        ─► policy again, with the gas the account may pay ─► ledger.reserve (durable)
//!        ─► sign ─► ledger.mark_signed (exact bytes) ─► submit ─► ledger.mark_submitted
//!        ─► receipt ─► ledger.resolve
//!  recover(): every unresolved intent of the lane is settled by facts: on chain → Included,
//!             its nonce taken by another operation → Failed, never signed → Released, else it
//!             stays Pending (it may still land). Nothing is ever resubmitted unasked.
//! ```
//!
//! One operation per nonce lane is in flight at a time: the signer holds the ledger's lane lock
//! ([`Ledger::try_lock_lane`]) from reservation to settlement, across tasks and processes. So no
//! nonce is signed twice by live signers, each caller learns the outcome of its own operation
//! only, and whoever holds the lock knows that the lane's other unresolved intents have no live
//! owner. An operation whose outcome cannot be known yet is reported as
//! [`Error::OutcomeUnknown`], never as failed.
//!
//! A refusal is a [`Refusal`] named like the contracts' error and says what remains; nothing is
//! signed for it. The policy is evaluated against the chain's counters (all read at one block
//! before each operation) and the ledger adds every operation those counters do not hold yet
//! (in flight, or landed after that block; [`AsOf`]), so concurrent operations on several lanes
//! cannot together exceed a cap, and none is counted twice.

use crate::{
    Error, Result,
    keystore::LocalKey,
    ledger::{
        AsOf, Ceiling, ChainBound, Decision, Intent, IntentId, LaneId, Ledger, Outcome, SignedOp, Spend,
    },
    settle::Settler,
};
use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U192},
    providers::{DynProvider, Provider},
    rpc::types::{BlockId, BlockNumberOrTag},
    signers::SignerSync,
    sol_types::SolValue,
};
use sak_policy::{Authorization, Call, Context, Operation, Refusal, Session, encode_execute};
use sak_userop::{
    DEFAULT_SESSION_TTL, EntryPointNonces, FeeCaps, Fees, GasLimits, Lane, NonceLanes, Submitter, UserOp,
    UserOpBuilder, UserOpHasher, UserOpReceipt, encode_session_signature, in_session_lanes, next_base_fee,
    session_digest, set_gas_limits,
};
use std::sync::Arc;

pub use crate::settle::Recovered;

mod host;
mod load;
mod replace;
mod signing;

pub use host::Host;
pub use load::{hosted_session_key, load_hosted_session, load_session, load_session_from, session_key};
pub use replace::{Bumped, MIN_BUMP_PERCENT};
pub use signing::{SignedIntent, SigningCore};

/// Limits of the estimation probe; the estimate replaces them.
const PROBE_LIMITS: GasLimits = GasLimits {
    verification: 1_000_000,
    call: 1_000_000,
    pre_verification: 100_000,
    paymaster_verification: 0,
    paymaster_post_op: 0,
};

/// Whether the off-chain policy runs before signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preflight {
    /// Always, except to prove what the chain refuses on its own.
    Check,
    /// Sign whatever is asked and let the contracts decide. For local and fork chains only
    /// (`sak send --no-preflight`): an owner uses it to see the chain itself refuse.
    SkipForProof,
}

/// What an executed operation did.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The ledger intent that recorded it.
    pub intent: IntentId,
    /// The user operation hash.
    pub user_op_hash: B256,
    /// Its receipt.
    pub receipt: UserOpReceipt,
    /// What the policy charged (empty when the preflight was skipped).
    pub charges: Vec<sak_policy::Charge>,
}

/// Where the session lives.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The chain id.
    pub chain_id: u64,
    /// The account and its EntryPoint.
    pub context: Context,
    /// The session id on that account.
    pub session_id: u32,
    /// The nonce lane this signer uses (one per session or agent).
    pub lane_key: U192,
    /// `initCode`: empty for a deployed smart account, the 0x7702 marker for a delegated EOA.
    pub init_code: Bytes,
    /// For a delegated EOA: the delegate the operation hash binds.
    pub delegate: Option<Address>,
}

/// An operation that would have less than this many seconds (or a quarter of its shortest
/// period) to land before the end of the period it is charged to waits for the next period
/// instead (see [`GuardedSigner::execute`]): a few blocks of an L1, many of an L2.
pub const PERIOD_EDGE_MARGIN: u64 = 30;

/// A session key that signs only what its policy admits, with every spend in a durable ledger.
#[derive(Debug)]
pub struct GuardedSigner<L, S> {
    core: Arc<SigningCore<L>>,
    binding: Binding,
    session: tokio::sync::Mutex<Session>,
    provider: DynProvider,
    submitter: S,
    lanes: NonceLanes<EntryPointNonces<DynProvider>>,
    caps: FeeCaps,
    ledger: Arc<L>,
    settler: Settler<L>,
    chain_bound: ChainBound,
    confirmations: u64,
}

impl<L: Ledger + 'static, S: Submitter> GuardedSigner<L, S> {
    /// A guarded signer for `session` (its policy as granted; counters are read from the chain
    /// before each operation). Refuses a key that is not the session's, a node on another chain
    /// than the binding's, and an `init_code` beyond the bare 0x7702 marker (`SessionInitCode`,
    /// as the contracts would).
    pub async fn new(
        key: LocalKey,
        session: Session,
        binding: Binding,
        provider: DynProvider,
        submitter: S,
        caps: FeeCaps,
        ledger: Arc<L>,
    ) -> Result<Self> {
        // The contracts refuse a session operation with more initCode than the 0x7702 marker.
        if binding.init_code.len() > 20 {
            return Err(Error::Refused(Refusal::SessionInitCode));
        }
        let found = provider.get_chain_id().await.map_err(|e| Error::Chain(format!("eth_chainId: {e}")))?;
        if found != binding.chain_id {
            return Err(Error::WrongChain { expected: binding.chain_id, found });
        }
        let entry_point = submitter.entry_point();
        let core =
            Arc::new(SigningCore::new(key, &session, binding.clone(), entry_point, Arc::clone(&ledger))?);
        let lanes = NonceLanes::new(EntryPointNonces::new(provider.clone(), entry_point));
        let settler = Settler::new(provider.clone(), entry_point, Arc::clone(&ledger));
        let chain_bound = settler.bind_chain(binding.chain_id).await?;
        Ok(Self {
            core,
            binding,
            session: tokio::sync::Mutex::new(session),
            provider,
            submitter,
            lanes,
            caps,
            ledger,
            settler,
            chain_bound,
            confirmations: 1,
        })
    }

    /// Reports an operation included only once it is `n` blocks deep (1, the default: in its
    /// own block), looking it up again at that depth so that a reorganisation is noticed.
    pub fn with_confirmations(mut self, n: u64) -> Self {
        self.confirmations = n.max(1);
        self
    }

    /// Tells `notice` while an operation waits for another one on the session's lane (another
    /// process or task of the same session); see [`WaitNotice`](crate::settle::WaitNotice).
    pub fn with_wait_notice(mut self, notice: crate::settle::WaitNotice) -> Self {
        self.settler = self.settler.with_wait_notice(notice);
        self
    }

    /// Signs each operation with a deadline `secs` after its clock claim (default
    /// [`DEFAULT_SESSION_TTL`]); see [`SigningCore::with_ttl`].
    pub fn with_ttl(mut self, secs: u64) -> Self {
        let core = Arc::get_mut(&mut self.core).expect("with_ttl is called before the signer is shared");
        core.ttl = secs.max(1);
        self
    }

    /// Whether the ledger had seen this chain, and what it retired if the chain was reset
    /// under the same id (see [`Ledger::bind_chain`]).
    pub fn chain_bound(&self) -> &ChainBound {
        &self.chain_bound
    }

    /// The session as last read from the chain.
    pub async fn session(&self) -> Session {
        self.session.lock().await.clone()
    }

    /// The chain's latest block time: the clock the policy and the session signature use.
    pub async fn chain_time(&self) -> Result<u64> {
        Ok(self.latest_block().await?.1)
    }

    /// The latest block's number and time.
    async fn latest_block(&self) -> Result<(u64, u64)> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| Error::Chain(format!("eth_getBlockByNumber: {e}")))?
            .ok_or_else(|| Error::Chain("no latest block".into()))?;
        Ok((block.header.number, block.header.timestamp))
    }

    /// Reads the session's state from the chain: active or not, every spend counter, the gas
    /// and operation counters.
    pub async fn refresh(&self) -> Result<Session> {
        self.refresh_at(BlockId::latest()).await
    }

    /// [`refresh`](Self::refresh) with every counter read at `block`.
    async fn refresh_at(&self, block: BlockId) -> Result<Session> {
        let host = Host::of(&self.binding.context);
        let id = self.binding.session_id;
        let counters = host.counters(&self.provider, id, block).await?;
        let tokens: Vec<Address> =
            self.session.lock().await.policy.spend_limits.iter().map(|l| l.token).collect();
        let mut spent = Vec::with_capacity(tokens.len());
        for token in tokens {
            spent.push((token, host.spend(&self.provider, id, token, block).await?));
        }
        let mut session = self.session.lock().await;
        // `active` is also false after expiry; expiry is the policy's own check (with its time).
        session.active = counters.signer != Address::ZERO;
        // The owner may have rotated the session to another key (`rotateSessionKey`).
        if session.active {
            session.signer = counters.signer;
        }
        session.gas = counters.gas;
        session.ops_used = counters.ops_used;
        session.spent.extend(spent);
        Ok(session.clone())
    }

    /// The chain as one block shows it: that block's time (the clock), the session's counters
    /// there, and which of this session's intents in flight those counters already include
    /// (each lane's EntryPoint nonce there; see [`AsOf`]). Decided against this, an operation
    /// counts every other one exactly once, whether it settles before, during or after.
    async fn snapshot(&self) -> Result<(u64, Session, AsOf)> {
        let (number, clock) = self.latest_block().await?;
        let block = BlockId::number(number);
        let session = self.refresh_at(block).await?;
        // An inclusion a reorg took back counts again (its operation may land again).
        self.settler
            .recheck_inclusions_at(self.binding.chain_id, self.binding.context.account, number)
            .await?;
        // Read after the block: an intent reserved later cannot have landed in it.
        let unresolved = self.blocking(|l| l.unresolved()).await?;
        let mut keys: Vec<U256> = unresolved
            .iter()
            .filter(|r| {
                r.intent.chain_id == self.binding.chain_id
                    && r.intent.account == self.binding.context.account
                    && r.intent.session_id == self.core.session_key()
            })
            .map(|r| r.signed.as_ref().map_or(r.intent.nonce_key, |s| s.nonce_key))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut next_seqs = Vec::with_capacity(keys.len());
        for key in keys {
            next_seqs.push((key, self.settler.next_seq(self.binding.context.account, key, block).await?));
        }
        Ok((clock, session, AsOf { block: number, next_seqs }))
    }

    /// What the policy decides for `calls` now, without signing or reserving anything
    /// (`--dry-run`). Gas is not included (the estimate needs a signature).
    pub async fn check(&self, calls: &[Call]) -> Result<Authorization> {
        let clock = self.chain_time().await?;
        let session = self.refresh().await?;
        let op = Operation::unpaid(calls.to_vec(), clock);
        session.authorize(&op, &self.binding.context).map_err(Error::Refused)
    }

    /// Checks, reserves, signs, records, submits and waits for `calls`, holding the lane for
    /// the whole time. Fails with [`Error::OutcomeUnknown`] when the operation was signed and
    /// its outcome cannot be known yet (it may still land).
    pub async fn execute(&self, calls: &[Call], preflight: Preflight) -> Result<Executed> {
        let lock = self.settler.lock_lane(self.lane()).await?;
        let leftovers = self.settler.settle_lane(self.lane(), &lock).await?;
        let executed = self.execute_locked(calls, preflight).await;
        if executed.is_ok() && leftovers.iter().any(|r| matches!(r, Recovered::Pending(..))) {
            // This operation took the nonce an earlier run's op was waiting for.
            self.settler.settle_lane(self.lane(), &lock).await?;
        }
        executed
    }

    async fn execute_locked(&self, calls: &[Call], preflight: Preflight) -> Result<Executed> {
        let ctx = self.binding.context;
        let (clock, session, as_of) = self.snapshot().await?;
        if session.active && session.signer != self.core.key.address() {
            // Rotated away: the chain would refuse this key's signature.
            return Err(Error::WrongSessionKey { expected: session.signer, found: self.core.key.address() });
        }
        let probe = |clock| Operation::unpaid(calls.to_vec(), clock);
        let (clock, session, as_of) = if preflight == Preflight::Check {
            let auth = match session.authorize(&probe(clock), &ctx) {
                Ok(auth) => auth,
                Err(refusal) => return Err(self.refuse(refusal, clock).await),
            };
            match self.past_period_edge(&session, auth.valid_until, clock).await? {
                None => (clock, session, as_of),
                Some(clock) => {
                    // Signed in the next period: decided again, against its counters.
                    let (_, session, as_of) = self.snapshot().await?;
                    if let Err(refusal) = session.authorize(&probe(clock), &ctx) {
                        return Err(self.refuse(refusal, clock).await);
                    }
                    (clock, session, as_of)
                }
            }
        } else {
            (clock, session, as_of)
        };

        let lane = Lane::new(ctx.account, self.binding.lane_key);
        let reservation = self.lanes.reserve(lane).await?;
        let op = match self.estimate(calls, clock, reservation.nonce()).await {
            Ok(v) => v,
            Err(e) => {
                reservation.release();
                // The contracts refused the simulated operation (the forced path, or a gas budget
                // below the probe's prefund): an audited refusal like a local one.
                if let Some(refusal) = e.refusal() {
                    self.decide(clock, false, refusal.name(), &[], None).await;
                }
                return Err(e);
            }
        };
        let core = Arc::clone(&self.core);
        let (seq, calls_owned) = (reservation.sequence(), calls.to_vec());
        let signed = tokio::task::spawn_blocking(move || {
            core.sign(&session, Some(&as_of), op, &calls_owned, clock, seq, preflight)
        })
        .await
        .map_err(|e| Error::Chain(format!("signing task failed: {e}")))?;
        let SignedIntent { id, carried_on, op, user_op_hash, auth, spends } = match signed {
            Ok(s) => s,
            Err(e) => {
                reservation.release();
                return Err(match e {
                    Error::Refused(refusal) => self.refuse(refusal, clock).await,
                    other => other,
                });
            }
        };
        let charges = auth.as_ref().map(|a| a.charges.clone()).unwrap_or_default();

        let pending = match self.submitter.send(&op, None, user_op_hash).await {
            Ok(p) => Some(p),
            Err(e) if e.is_definite_rejection() => {
                // Nothing can land: the nonce is free again, the reservation released.
                reservation.release();
                let reason = e.to_string();
                self.blocking(move |l| l.resolve(id, &Outcome::Failed { reason })).await?;
                let reason = e.refusal().map_or("Rejected", |r| r.name());
                self.decide(clock, false, reason, &spends, Some(user_op_hash)).await;
                return Err(e.into());
            }
            // Maybe sent: the intent stays Signed until the chain says what happened.
            Err(e) => {
                tracing::warn!(error = %e, "sending the operation failed; looking it up by hash");
                None
            }
        };
        // From here on the op may land: its nonce is never reused for something else.
        reservation.commit();
        let receipt = match self.landed(id, pending, &[user_op_hash]).await? {
            Ok(r) => r,
            Err(reason) => {
                if !carried_on {
                    self.decide(clock, true, "unknown", &spends, Some(user_op_hash)).await;
                }
                let deadline = sak_userop::session_envelope(&op.signature).map(|(_, _, d)| d);
                return Err(Error::OutcomeUnknown { intent: id, user_op_hash, reason, deadline });
            }
        };
        self.settler.settle(id, &receipt).await?;
        if let Some(auth) = &auth {
            self.session.lock().await.apply(auth);
        }
        if !carried_on {
            self.decide(clock, true, "ok", &spends, Some(user_op_hash)).await;
        }
        Ok(Executed { intent: id, user_op_hash, receipt, charges })
    }

    /// Records the submission of intent `id` (`pending`, or `None` when the send did not
    /// complete) and waits for the receipt of whichever of `hashes` (its operation, and any it
    /// replaced) lands, at the confirmation depth. The inner `Err` says why the outcome is not
    /// known yet (the operation may still land).
    async fn landed(
        &self,
        id: IntentId,
        pending: Option<sak_userop::Pending>,
        hashes: &[B256],
    ) -> Result<std::result::Result<UserOpReceipt, String>> {
        let receipt = match pending {
            Some(pending) => {
                let tx_hash = pending.tx_hash;
                let via = self.via();
                self.blocking(move |l| l.mark_submitted(id, &via, tx_hash)).await?;
                crate::ledger::failpoint("guard", "after_submit");
                self.submitter.receipt(&pending).await.map_err(|e| e.to_string())
            }
            None => Err("the send did not complete".to_owned()),
        };
        // Not known from the send: the chain may still show it (a dropped answer, a held one,
        // or an operation it replaced).
        let receipt = match receipt {
            Ok(r) => Ok(r),
            Err(reason) => match self.settler.find_receipt_of(hashes).await {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(reason),
                Err(e) => Err(format!("{reason}; looking it up: {e}")),
            },
        };
        Ok(match receipt {
            Ok(r) => self.at_depth(r).await,
            Err(reason) => Err(reason),
        })
    }

    /// An operation is valid at most until the end of the periods it is charged to. When that
    /// end is a period edge (not the session's expiry) less than [`PERIOD_EDGE_MARGIN`] after
    /// now (the later of the chain's clock and this machine's), an operation signed now could
    /// not land before it (the EntryPoint refuses it after, AA22): waits until the chain's
    /// clock is past the edge and returns it, the clock to sign with instead (its charges go to
    /// the next period). `None`: sign with `clock`.
    async fn past_period_edge(&self, session: &Session, valid_until: u64, clock: u64) -> Result<Option<u64>> {
        let wall =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now = clock.max(wall);
        // A quarter of the shortest period at most: a one-minute period still gets three
        // quarters of its time.
        let shortest =
            session.policy.spend_limits.iter().map(|l| u64::from(l.period)).chain(match session.policy.gas {
                sak_primitives::Gas::Budget { period, .. } => Some(u64::from(period)),
                _ => None,
            });
        let margin = shortest.min().map_or(PERIOD_EDGE_MARGIN, |p| PERIOD_EDGE_MARGIN.min(p / 4));
        if valid_until >= session.policy.valid_until || valid_until >= now + margin {
            return Ok(None);
        }
        let wait = std::time::Duration::from_secs(valid_until + 1 - now.min(valid_until + 1));
        tracing::info!(edge = valid_until, wait_s = wait.as_secs(), "waiting for the session's next period");
        self.settler.notify(crate::settle::Wait::PeriodEdge { edge: valid_until, wait });
        tokio::time::sleep(wait).await;
        // The chain's own clock must pass the edge: the operation is simulated and validated
        // against its blocks. A live chain gets there within a block or two; a chain that mines
        // only when sent something (a local anvil) may not, and then the operation is signed
        // as before, in the period that is ending.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(2 * margin + 10);
        loop {
            let clock = self.chain_time().await?;
            if clock > valid_until {
                return Ok(Some(clock));
            }
            if std::time::Instant::now() > give_up {
                tracing::warn!(
                    edge = valid_until,
                    "the chain's clock did not pass the period edge; signing in the ending period"
                );
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Settles, by facts only, every intent of this signer's lane left unresolved by an earlier
    /// run (a crash, a kill, an unknown outcome): see [`Settler::settle_lane`]. Never resubmits
    /// anything. Waits while another live signer holds the lane.
    pub async fn recover(&self) -> Result<Vec<Recovered>> {
        let lock = self.settler.lock_lane(self.lane()).await?;
        self.settler.settle_lane(self.lane(), &lock).await
    }

    /// `receipt` once its block is [`with_confirmations`](Self::with_confirmations) deep and
    /// the operation is still there; the reason it is not known otherwise.
    async fn at_depth(&self, receipt: UserOpReceipt) -> std::result::Result<UserOpReceipt, String> {
        if self.confirmations == 1 {
            return Ok(receipt);
        }
        let target = receipt.block_number + self.confirmations - 1;
        // A block per 12 s on mainnet-like chains, with room to spare.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30 * self.confirmations);
        loop {
            match self.provider.get_block_number().await {
                Ok(latest) if latest >= target => break,
                _ if std::time::Instant::now() > deadline => {
                    return Err(format!(
                        "included in block {}, not yet {} blocks deep",
                        receipt.block_number, self.confirmations
                    ));
                }
                _ => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
        }
        match self.settler.find_receipt(receipt.user_op_hash).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => {
                Err(format!("block {} was reorganised away; it may land again", receipt.block_number))
            }
            Err(e) => Err(format!("looking it up at depth: {e}")),
        }
    }

    fn lane(&self) -> LaneId {
        LaneId {
            chain_id: self.binding.chain_id,
            account: self.binding.context.account,
            nonce_key: U256::from(self.binding.lane_key),
        }
    }

    /// Builds the operation and estimates it with a probe at the real fees (the prefund the
    /// account pays in validation is part of what is measured). The probe passed the policy
    /// check already and is only simulated, never sent. Its prefund (probe limits × fee) is
    /// charged to the gas budget in the simulation: a session whose remaining budget is below it
    /// is refused at estimation (GasBudgetExceeded, from the contracts).
    async fn estimate(&self, calls: &[Call], clock: u64, nonce: U256) -> Result<UserOp> {
        let (fee_cap, pvg_cap) = {
            let policy = &self.session.lock().await.policy;
            (policy.max_fee_per_gas, policy.max_pre_verification_gas)
        };
        let fees = self.price(fee_cap).await?;
        // The probe stays within the session's preVerificationGas cap, so that the estimate is
        // not refused for it; the operation's own preVerificationGas is decided by the policy
        // check in `plan` (`PreVerificationGasAboveCap` before anything is signed).
        let mut probe = PROBE_LIMITS;
        if pvg_cap != 0 {
            probe.pre_verification = probe.pre_verification.min(u128::from(pvg_cap));
        }
        let mut op = UserOpBuilder::new(self.binding.context.account)
            .nonce(nonce)
            .init_code(self.binding.init_code.clone())
            .call_data(encode_execute(calls))
            .gas(probe)
            .fees(fees)
            .build();
        op.signature = self.core.sign_hash(self.core.hasher.hash(&op, self.binding.delegate)?, clock)?;
        let estimate = self.submitter.estimate(&op, None).await?;
        let limits = GasLimits {
            pre_verification: estimate.pre_verification.max(sak_userop::pre_verification_gas(&op)),
            ..estimate
        };
        self.caps.check(&limits, &fees)?;
        set_gas_limits(&mut op, limits);
        Ok(op)
    }

    /// Fees for the next block within the caller's caps and the session's `max_fee_per_gas`:
    /// the tip and the fee are lowered to fit the session's cap, and a base fee above it is
    /// refused (`FeePerGasAboveCap`, as the contracts would refuse any fee that covers it).
    async fn price(&self, cap: u64) -> Result<Fees> {
        let base_fee = next_base_fee(&self.provider).await?;
        if cap == 0 {
            return Ok(self.caps.price(base_fee)?);
        }
        let cap = u128::from(cap);
        if base_fee > cap {
            return Err(Error::Refused(Refusal::FeePerGasAboveCap {
                requested: U256::from(base_fee),
                cap: U256::from(cap),
            }));
        }
        let caps = FeeCaps {
            max_fee_per_gas: self.caps.max_fee_per_gas.min(cap),
            max_priority_fee_per_gas: self.caps.max_priority_fee_per_gas.min(cap - base_fee),
            ..self.caps
        };
        Ok(caps.price(base_fee)?)
    }

    async fn refuse(&self, refusal: Refusal, clock: u64) -> Error {
        tracing::info!(session = self.binding.session_id, %refusal, "refused by the policy");
        self.decide(clock, false, refusal.name(), &[], None).await;
        Error::Refused(refusal)
    }

    /// Appends to the audit log; a failure to log is reported, never hidden, but does not undo
    /// what was done.
    async fn decide(
        &self,
        at: u64,
        allowed: bool,
        reason: &str,
        spends: &[Spend],
        user_op_hash: Option<B256>,
    ) {
        let decision = Decision {
            at,
            chain_id: self.binding.chain_id,
            account: self.binding.context.account,
            session_id: self.core.session_key(),
            key: self.core.key.address(),
            allowed,
            reason: reason.to_owned(),
            spends: spends.to_vec(),
            user_op_hash,
            tx_hash: None,
        };
        if let Err(e) = self.blocking(move |l| l.record_decision(&decision)).await {
            tracing::error!(error = %e, "could not record the signing decision in the audit log");
        }
    }

    fn via(&self) -> String {
        self.submitter.via().to_owned()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&L) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::settle::off_runtime(&self.ledger, f).await
    }
}
