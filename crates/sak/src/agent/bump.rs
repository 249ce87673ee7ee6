//! `Agent::bump`: a stuck operation replaced with a fee bump.

use super::*;
use sak_signer::{
    guard::Bumped,
    ledger::{IntentId, IntentRecord},
};

impl Agent<'_> {
    /// Replaces operation `intent` of this session, signed and stuck (not on chain, its nonce
    /// still free), with the same calls at the same nonce re-signed at fees `percent` higher
    /// (at least [`MIN_BUMP_PERCENT`](sak_signer::guard::MIN_BUMP_PERCENT)), sends it the way
    /// [`Options::via`] says, and waits for whichever of the two lands
    /// ([`GuardedSigner::replace`]). The replacement keeps the original's signed deadline.
    ///
    /// Returns the intent as it stands then: included (by the replacement or the original), or
    /// as it was settled already. An outcome still unknown is an error carrying the intent and
    /// hash (exit 3), as for [`Agent::run`]; a refusal (the fee above the session's
    /// `max_fee_per_gas`, the policy) signs nothing and leaves the original as it was.
    pub async fn bump(self, intent: IntentId, percent: u64) -> Result<IntentRecord> {
        let ledger = Arc::new(self.open_ledger()?);
        match self.args.via {
            Via::SelfBundled => {
                let submitter = self.self_bundler(self.relayer()?).await?;
                self.bump_with(submitter, ledger, intent, percent).await
            }
            Via::Bundler => {
                let submitter = self.bundler().await?;
                self.bump_with(submitter, ledger, intent, percent).await
            }
            Via::Direct => Err(Hinted::new(
                "--via direct sends no user operation, so there is none to replace",
                "bump with --via self or --via bundler (the way the operation was sent: `sak op status` shows it)",
            )
            .into()),
        }
    }

    async fn bump_with<S: Submitter>(
        self,
        submitter: S,
        ledger: Arc<AnyLedger>,
        intent: IntentId,
        percent: u64,
    ) -> Result<IntentRecord> {
        let Self { home, chain, args, session, key, binding, .. } = self;
        let guard =
            guarded(home, chain, args, (key, session, binding), submitter, Arc::clone(&ledger)).await?;
        let what = format!("bumping intent {intent} of session #{}", args.session);
        home.progress(&format!(
            "{what}: re-signing its calls at fees {percent}% higher, same nonce and deadline; sending and \
             waiting for inclusion…"
        ));
        match guard.replace(intent, percent).await {
            Ok(Bumped::Settled(rec)) => Ok(*rec),
            Ok(Bumped::Executed(done)) => {
                if !done.receipt.success {
                    tracing::warn!(revert = ?done.receipt.revert, "the operation's calls reverted");
                }
                Ok(ledger.get(done.intent)?)
            }
            Err(e) => {
                let decimals = token_decimals(chain, &guard.session().await).await;
                Err(refused(e, &what, &guard, chain, &decimals).await)
            }
        }
    }
}
