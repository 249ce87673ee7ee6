//! Replacing a stuck operation with a fee bump.

use super::*;
use crate::ledger::{IntentRecord, IntentState};
use sak_userop::{fees, session_envelope};

/// The least fee rise a replacement carries, in percent: mempools (ERC-7562's, and the
/// transaction pools of geth and anvil) take a replacement only at 10% or more above the fees it
/// replaces.
pub const MIN_BUMP_PERCENT: u64 = 10;

/// What [`GuardedSigner::replace`] did.
#[derive(Debug)]
pub enum Bumped {
    /// The operation was settled already when the lane was settled first (included, failed or
    /// released): nothing was signed. Its record says how it ended.
    Settled(Box<IntentRecord>),
    /// The replacement, or the operation it replaced, landed.
    Executed(Box<Executed>),
}

impl<L: Ledger + 'static, S: Submitter> GuardedSigner<L, S> {
    /// Replaces operation `id` of this signer's lane, signed and not on chain yet (stuck: priced
    /// under what the chain asks now, or held by a bundler that does not include it), with the
    /// same calls at the same nonce, re-signed with fees `bump_percent` (at least
    /// [`MIN_BUMP_PERCENT`]) above its own and at least the price for the next block, and waits
    /// for it like [`execute`](Self::execute).
    ///
    /// The replacement keeps the original's clock and signed deadline: its charges go to the
    /// same period (the intent's reservation stands as it is), and a bump never lets an
    /// operation land later than the original could. Both stay recorded under the one intent;
    /// whichever lands takes the nonce, so at most one does, and settling looks for both.
    ///
    /// Refused, with nothing signed: an intent of another lane, fees above the session's
    /// `max_fee_per_gas` ([`Refusal::FeePerGasAboveCap`]) or the caller's caps, an operation
    /// the policy now refuses. A replacement the submitter refuses is
    /// [`Error::OutcomeUnknown`] with the original's hash: the original may still land (both stay
    /// recorded, and settling looks for both).
    pub async fn replace(&self, id: IntentId, bump_percent: u64) -> Result<Bumped> {
        let lock = self.settler.lock_lane(self.lane()).await?;
        self.settler.settle_lane(self.lane(), &lock).await?;
        let rec = self.blocking(move |l| l.get(id)).await?;
        if crate::settle::lane_of(&rec) != self.lane() || rec.intent.session_id != self.core.session_key() {
            return Err(Error::InvalidIntent {
                reason: format!(
                    "intent {id} is not of session {}'s lane on this account",
                    self.binding.session_id
                ),
            });
        }
        let signed = match (&rec.signed, rec.state) {
            (_, state) if !state.is_pending() => return Ok(Bumped::Settled(Box::new(rec))),
            (Some(signed), IntentState::Signed | IntentState::Submitted) => signed.clone(),
            // Settling under the lock released every unsigned intent of the lane.
            _ => return Err(Error::InvalidIntent { reason: format!("intent {id} was never signed") }),
        };
        let original = UserOp::abi_decode(&signed.op_bytes)
            .map_err(|e| Error::InvalidIntent { reason: format!("intent {id}'s stored operation: {e}") })?;
        let (_, clock, deadline) = session_envelope(&original.signature).ok_or_else(|| {
            Error::InvalidIntent { reason: format!("intent {id} is not a session operation") }
        })?;
        let calls = sak_policy::decode_execute(&original.callData).map_err(Error::Refused)?;

        let session = self.refresh().await?;
        let fees = self.bumped_fees(&session, fees(&original), bump_percent).await?;
        self.caps.check(&sak_userop::gas_limits(&original), &fees)?;
        let mut op = original.clone();
        sak_userop::set_fees(&mut op, fees);
        // The bundle transaction that carried the original, and every operation of the intent:
        // any of them may land.
        let replacing = rec.submission.as_ref().and_then(|s| s.tx_hash);
        let mut hashes: Vec<B256> = rec.user_op_hashes().collect();
        let core = Arc::clone(&self.core);
        let replaced =
            tokio::task::spawn_blocking(move || core.replace(&session, &rec, op, &calls, (clock, deadline)))
                .await
                .map_err(|e| Error::Chain(format!("signing task failed: {e}")))?;
        let (op, user_op_hash, auth) = match replaced {
            Ok(r) => r,
            Err(Error::Refused(refusal)) => return Err(self.refuse(refusal, clock).await),
            Err(e) => return Err(e),
        };
        let spends: Vec<Spend> = auth
            .charges
            .iter()
            .map(|c| Spend { token: c.token, window: c.window, amount: c.amount })
            .collect();
        self.decide(clock, true, "ok", &spends, Some(user_op_hash)).await;

        let earlier = signed.user_op_hash;
        hashes.insert(0, user_op_hash);
        let pending = match self.submitter.replace(&op, user_op_hash, replacing).await {
            Ok(p) => Some(p),
            Err(e) if e.is_definite_rejection() => {
                return Err(Error::OutcomeUnknown {
                    intent: id,
                    user_op_hash: earlier,
                    reason: format!(
                        "its replacement was refused ({e}); the operation it replaces may still land"
                    ),
                    deadline: Some(deadline),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending the replacement failed; looking it up by hash");
                None
            }
        };
        let receipt = match self.landed(id, pending, &hashes).await? {
            Ok(r) => r,
            Err(reason) => {
                return Err(Error::OutcomeUnknown {
                    intent: id,
                    user_op_hash,
                    reason,
                    deadline: Some(deadline),
                });
            }
        };
        self.settler.settle(id, &receipt).await?;
        if receipt.user_op_hash == user_op_hash {
            self.session.lock().await.apply(&auth);
        }
        let charges = auth.charges;
        Ok(Bumped::Executed(Box::new(Executed {
            intent: id,
            user_op_hash: receipt.user_op_hash,
            receipt,
            charges,
        })))
    }

    /// Fees for a replacement of an operation that carries `old`: each `bump_percent` above
    /// (plus one wei, so that a zero tip rises too) and at least the price for the next block,
    /// within the session's `max_fee_per_gas`.
    async fn bumped_fees(&self, session: &Session, old: Fees, bump_percent: u64) -> Result<Fees> {
        let pct = u128::from(bump_percent.max(MIN_BUMP_PERCENT));
        let up = |fee: u128| fee.saturating_mul(100 + pct) / 100 + 1;
        let cap = session.policy.max_fee_per_gas;
        let now = self.price(cap).await?;
        let tip = up(old.max_priority_fee_per_gas).max(now.max_priority_fee_per_gas);
        let fees = Fees {
            max_fee_per_gas: up(old.max_fee_per_gas).max(now.max_fee_per_gas).max(tip),
            max_priority_fee_per_gas: tip,
        };
        if cap != 0 && fees.max_fee_per_gas > u128::from(cap) {
            return Err(Error::Refused(Refusal::FeePerGasAboveCap {
                requested: U256::from(fees.max_fee_per_gas),
                cap: U256::from(cap),
            }));
        }
        Ok(fees)
    }
}
