//! The signing core: decide, reserve, sign.

use super::*;

/// The part of the pipeline that needs no network: the policy decision for the operation as it
/// will be signed (gas included), the durable reservation, the signature, and the persisted
/// signed operation. [`GuardedSigner`] runs it for every operation; the signing benchmark
/// measures it against a bare `sign_hash`.
#[derive(Debug)]
pub struct SigningCore<L> {
    pub(super) key: LocalKey,
    pub(super) binding: Binding,
    pub(super) hasher: UserOpHasher,
    pub(super) ledger: Arc<L>,
    pub(super) ttl: u64,
}

/// An operation signed and recorded (`Signed` in the ledger), ready to submit.
pub struct SignedIntent {
    /// Its ledger intent.
    pub id: IntentId,
    /// True when an earlier run had signed these very bytes (its outcome unknown, or cut off)
    /// and this run carries that intent on: its decision is already logged, or the audit shows
    /// it from the intent.
    pub carried_on: bool,
    /// The signed operation.
    pub op: UserOp,
    /// Its hash.
    pub user_op_hash: B256,
    /// What the policy admitted (`None` when the preflight was skipped and it refused).
    pub auth: Option<Authorization>,
    /// What was reserved.
    pub spends: Vec<Spend>,
}

/// What one operation will reserve, and the decision behind it.
pub(super) struct Plan {
    auth: Option<Authorization>,
    intent: Intent,
    ceilings: Vec<Ceiling>,
    /// (token, window, when the allowance renews), for refusals.
    resets_at: Vec<(Address, u64, u64)>,
}

impl Plan {
    /// A ledger refusal as the policy's: `SpendCapExceeded` with what remains beside what is
    /// already in flight.
    fn refusal(&self, e: Error) -> Error {
        match e {
            Error::CeilingExceeded { token, window, pending, requested, ceiling } => {
                let resets_at = self.resets_at.iter().find(|r| r.0 == token && r.1 == window).map(|r| r.2);
                Error::Refused(Refusal::SpendCapExceeded {
                    token,
                    requested,
                    remaining: ceiling.saturating_sub(pending),
                    resets_at,
                })
            }
            other => other,
        }
    }
}

impl std::fmt::Debug for SignedIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIntent")
            .field("id", &self.id)
            .field("op", &sak_userop::OpDebug(&self.op))
            .field("user_op_hash", &self.user_op_hash)
            .field("auth", &self.auth)
            .field("spends", &self.spends)
            .finish()
    }
}

impl<L: Ledger> SigningCore<L> {
    /// A core signing for `session` with `key` (it must be the session's key), in the
    /// binding's nonce lane (it must be one of the session's: `SessionNonceKey` otherwise, as
    /// the contracts would refuse it). Each operation's signed deadline is
    /// [`DEFAULT_SESSION_TTL`] after its clock claim (see [`SigningCore::with_ttl`]).
    pub fn new(
        key: LocalKey,
        session: &Session,
        binding: Binding,
        entry_point: Address,
        ledger: Arc<L>,
    ) -> Result<Self> {
        if key.address() != session.signer {
            return Err(Error::WrongSessionKey { expected: session.signer, found: key.address() });
        }
        let modular = binding.context.holder != binding.context.account;
        if !in_session_lanes(binding.lane_key, binding.session_id, modular) {
            return Err(Error::Refused(Refusal::SessionNonceKey { key: binding.lane_key }));
        }
        let hasher = UserOpHasher::new(entry_point, binding.chain_id);
        Ok(Self { key, binding, hasher, ledger, ttl: DEFAULT_SESSION_TTL })
    }

    /// Signs deadlines `secs` after each operation's clock claim (at least 1): past it no
    /// EntryPoint includes the operation, so an outcome left unknown is settled for certain.
    pub fn with_ttl(mut self, secs: u64) -> Self {
        self.ttl = secs.max(1);
        self
    }

    /// Decides `op` (whose gas limits and fees are final) for `calls` at `clock` against
    /// `session`; signs it; reserves its spends (so that, with every operation still in flight,
    /// they fit what the chain says remains) and persists the signed bytes in one ledger
    /// transaction. Refusals are [`Error::Refused`], and leave nothing reserved.
    ///
    /// `as_of` is the chain state `session`'s counters were read at: with it, exactly the
    /// intents those counters do not include count (see [`AsOf`]); without it, every pending
    /// intent does.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        session: &Session,
        as_of: Option<&AsOf>,
        op: UserOp,
        calls: &[Call],
        clock: u64,
        nonce_seq: u64,
        preflight: Preflight,
    ) -> Result<SignedIntent> {
        let plan = self.plan(session, session, as_of, &op, calls, clock, nonce_seq, preflight)?;
        // Signed first, then reserved and persisted in one transaction (one fsync): the
        // signature does not leave this process before the ledger holds it.
        let (op, user_op_hash, signed) = self.seal(op, &plan, clock)?;
        let (id, carried_on) = match self.ledger.reserve_signed(&plan.intent, &plan.ceilings, &signed) {
            Ok(id) => (id, false),
            // Signatures are deterministic: an earlier run that was cut off (outcome unknown)
            // signed these very bytes. They stay that intent's, which this run now carries on;
            // nothing new is recorded.
            Err(Error::DuplicateOp { existing, .. }) => (existing, true),
            Err(e) => return Err(plan.refusal(e)),
        };
        crate::ledger::failpoint("guard", "after_sign");
        Ok(SignedIntent { id, carried_on, op, user_op_hash, auth: plan.auth, spends: plan.intent.spends })
    }

    /// [`SigningCore::sign`] for several operations `(op, calls, nonce_seq)` at once: each is
    /// decided after the ones before it (their charges count, as on chain), then all are
    /// reserved in one ledger transaction and persisted in another, so a durable ledger pays two
    /// fsyncs per batch instead of two per operation. Per-operation results, in order. An
    /// operation the ledger refuses (others in flight) still counts for the later ones of the
    /// batch: conservative, never beyond the cap.
    pub fn sign_batch(
        &self,
        session: &Session,
        batch: Vec<(UserOp, Vec<Call>, u64)>,
        clock: u64,
        preflight: Preflight,
    ) -> Result<Vec<Result<SignedIntent>>> {
        let mut state = session.clone();
        let mut out: Vec<Result<(UserOp, Plan)>> = Vec::with_capacity(batch.len());
        for (op, calls, seq) in batch {
            let planned = self.plan(session, &state, None, &op, &calls, clock, seq, preflight);
            if let Ok(Plan { auth: Some(auth), .. }) = &planned {
                state.apply(auth);
            }
            out.push(planned.map(|plan| (op, plan)));
        }
        let to_reserve: Vec<(&Intent, &[Ceiling])> =
            out.iter().filter_map(|r| r.as_ref().ok()).map(|(_, p)| (&p.intent, &p.ceilings[..])).collect();
        let mut ids = self.ledger.reserve_batch(&to_reserve)?.into_iter();
        let mut sealed = Vec::with_capacity(out.len());
        for planned in out {
            sealed.push(planned.and_then(|(op, plan)| {
                let id = ids.next().expect("one reservation result per plan").map_err(|e| plan.refusal(e))?;
                let (op, user_op_hash, signed) = self.seal(op, &plan, clock)?;
                let intent = SignedIntent {
                    id,
                    carried_on: false,
                    op,
                    user_op_hash,
                    auth: plan.auth,
                    spends: plan.intent.spends,
                };
                Ok((intent, signed))
            }));
        }
        let to_mark: Vec<(IntentId, &SignedOp)> =
            sealed.iter().filter_map(|r| r.as_ref().ok()).map(|(i, s)| (i.id, s)).collect();
        let mut marked = self.ledger.mark_signed_batch(&to_mark)?.into_iter();
        Ok(sealed
            .into_iter()
            .map(|r| {
                r.and_then(|(intent, _)| marked.next().expect("one result per signed op").map(|()| intent))
            })
            .collect())
    }

    /// The decision for `op` against `state` and what to reserve for it. Ceilings come from
    /// `chain`, the counters as the chain has them: everything in flight, this operation
    /// included, must fit what remains there.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        chain: &Session,
        state: &Session,
        as_of: Option<&AsOf>,
        op: &UserOp,
        calls: &[Call],
        clock: u64,
        nonce_seq: u64,
        preflight: Preflight,
    ) -> Result<Plan> {
        let limits = sak_userop::gas_limits(op);
        let max_fee_per_gas = U256::from(sak_userop::fees(op).max_fee_per_gas);
        let operation = Operation {
            calls: calls.to_vec(),
            clock,
            gas_cost: U256::from(limits.total()) * max_fee_per_gas,
            max_fee_per_gas,
            pre_verification_gas: U256::from(limits.pre_verification),
            paymaster: None,
        };
        let auth = match (state.authorize(&operation, &self.binding.context), preflight) {
            (Ok(auth), _) => Some(auth),
            (Err(refusal), Preflight::Check) => return Err(Error::Refused(refusal)),
            (Err(_), Preflight::SkipForProof) => None,
        };
        let charges = auth.as_ref().map_or(&[][..], |a| &a.charges[..]);
        let spends: Vec<Spend> =
            charges.iter().map(|c| Spend { token: c.token, window: c.window, amount: c.amount }).collect();
        let mut ceilings: Vec<Ceiling> = Vec::with_capacity(charges.len());
        for c in charges {
            if !ceilings.iter().any(|x| x.token == c.token && x.window == c.window) {
                let (remaining, _) = chain.remaining(c.token, clock).unwrap_or_default();
                ceilings.push(Ceiling {
                    token: c.token,
                    window: c.window,
                    max_pending: remaining,
                    as_of: as_of.cloned(),
                });
            }
        }
        let resets_at = charges.iter().map(|c| (c.token, c.window, c.resets_at)).collect();
        let intent = Intent {
            chain_id: self.binding.chain_id,
            account: self.binding.context.account,
            session_id: self.session_key(),
            nonce_key: U256::from(self.binding.lane_key),
            nonce_seq: Some(nonce_seq),
            spends,
            gas_cost_cap: operation.gas_cost,
            created_at: clock,
        };
        Ok(Plan { auth, intent, ceilings, resets_at })
    }

    /// Signs `op` (RFC 6979: the same operation always gets the same signature): the signed
    /// operation, its hash, and its bytes as the ledger keeps them.
    fn seal(&self, mut op: UserOp, plan: &Plan, clock: u64) -> Result<(UserOp, B256, SignedOp)> {
        let user_op_hash = self.hasher.hash(&op, self.binding.delegate)?;
        op.signature = self.sign_hash(user_op_hash, clock)?;
        let signed = SignedOp {
            user_op_hash,
            nonce_key: plan.intent.nonce_key,
            nonce_seq: plan.intent.nonce_seq.unwrap_or_default(),
            op_bytes: op.abi_encode().into(),
        };
        Ok((op, user_op_hash, signed))
    }

    /// Re-signs intent `rec`'s operation as `op`: the same calls, nonce, clock and deadline, with
    /// higher fees (a fee bump). It is decided against `session` like a new operation, and its
    /// charges must be what the intent reserved (the same calls in the same period); then it
    /// is persisted as the intent's replacement ([`Ledger::mark_replaced`]). Returns the signed
    /// operation, its hash and what the policy admitted.
    pub(super) fn replace(
        &self,
        session: &Session,
        rec: &crate::ledger::IntentRecord,
        mut op: UserOp,
        calls: &[Call],
        (clock, deadline): (u64, u64),
    ) -> Result<(UserOp, B256, Authorization)> {
        let seq = rec.signed.as_ref().map_or(0, |s| s.nonce_seq);
        let plan = self.plan(session, session, None, &op, calls, clock, seq, Preflight::Check)?;
        if plan.intent.spends != rec.intent.spends {
            return Err(Error::InvalidIntent {
                reason: format!(
                    "intent {}: its replacement would charge {:?}, the intent reserved {:?}",
                    rec.id, plan.intent.spends, rec.intent.spends
                ),
            });
        }
        let user_op_hash = self.hasher.hash(&op, self.binding.delegate)?;
        op.signature = self.sign_hash_until(user_op_hash, clock, deadline)?;
        let signed = SignedOp {
            user_op_hash,
            nonce_key: plan.intent.nonce_key,
            nonce_seq: seq,
            op_bytes: op.abi_encode().into(),
        };
        self.ledger.mark_replaced(rec.id, &signed, plan.intent.gas_cost_cap)?;
        let auth = plan.auth.expect("a checked plan has an authorization");
        Ok((op, user_op_hash, auth))
    }

    /// The session signature for `user_op_hash` at `clock`, valid until `clock + ttl`.
    pub(super) fn sign_hash(&self, user_op_hash: B256, clock: u64) -> Result<Bytes> {
        self.sign_hash_until(user_op_hash, clock, clock + self.ttl)
    }

    /// The session signature for `user_op_hash` at `clock`, valid until `deadline`.
    fn sign_hash_until(&self, user_op_hash: B256, clock: u64, deadline: u64) -> Result<Bytes> {
        let digest = session_digest(user_op_hash, self.binding.session_id, clock, deadline);
        let signature =
            self.key.signer().sign_hash_sync(&digest).map_err(|e| Error::Signing(e.to_string()))?;
        Ok(encode_session_signature(self.binding.session_id, clock, deadline, &signature))
    }

    /// The session's id as the ledger keys it.
    pub(super) fn session_key(&self) -> B256 {
        B256::from(U256::from(self.binding.session_id))
    }
}
