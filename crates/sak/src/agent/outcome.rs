//! What an act ends in: its record in the audit log, a refusal in words, what remains.

use super::*;

/// What to do.
pub(super) struct Job {
    pub(super) command: &'static str,
    pub(super) calls: Vec<Call>,
    pub(super) swap: Option<SwapPlan>,
}

/// Appends a decision to the audit log; a failure is reported, never hidden, and does not undo
/// what was done.
pub(super) async fn record<L: Ledger + 'static>(ledger: &Arc<L>, decision: Decision) {
    let ledger = Arc::clone(ledger);
    let done =
        tokio::task::spawn_blocking(move || ledger.record_decision(&decision).map_err(|e| e.to_string()))
            .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not record the decision in the audit log"),
        Err(e) => tracing::error!(error = %e, "could not record the decision in the audit log"),
    }
}

/// A guard error as the user reads it: a refusal keeps the contracts' error name (exit 1, and
/// `refusal` in the JSON error) and says what remains and when it renews; other errors keep
/// their hint.
pub(super) async fn refused<L: Ledger + 'static, S: Submitter>(
    e: sak_signer::Error,
    what: &str,
    guard: &GuardedSigner<L, S>,
    chain: &Chain,
    decimals: &[(Address, Option<u8>)],
) -> crate::Error {
    let Some(mut refusal) = e.refusal() else {
        if e.hint().is_some() {
            return crate::Error::from(e).wrap(format!("{what} failed"));
        }
        let hint = if matches!(&e, sak_signer::Error::UserOp(sak_userop::Error::Reverted(_))) {
            "the calls revert when simulated, so nothing was signed: check the amounts, the account's \
             balances and --min-out; `sak send --dry-run` shows what the policy allows"
        } else {
            "check the node and the account's ETH (`sak account show`); RUST_LOG=sak_signer=debug shows more"
        };
        return Hinted::new(format!("{what} failed: {e}"), hint).into();
    };
    let local = matches!(e, sak_signer::Error::Refused(_));
    let by = if local {
        "refused by the session's policy before signing (nothing signed, nothing sent)"
    } else {
        "refused by the contracts (the chain's check of the signed operation): nothing moved"
    };
    let mut context = format!("{what} {by}");
    // What remains, from the chain's counters now (a refusal from the contracts does not say
    // when the allowance renews).
    let now = guard.chain_time().await.unwrap_or_else(|_| sak_primitives::units::unix_now());
    if let Ok(session) = guard.refresh().await {
        let left = allowances(&session, now, chain, decimals);
        match &mut refusal {
            Refusal::SpendCapExceeded { token, resets_at, .. } => {
                if let Some(a) = left.iter().find(|a| a.token == *token) {
                    resets_at.get_or_insert(a.renews_at);
                    context += &format!("; {}", a.sentence());
                }
            }
            Refusal::GasBudgetExceeded { resets_at, .. } => {
                if let Some(g) = gas_budget(&session, now) {
                    resets_at.get_or_insert(g.renews_at);
                    context += &format!(
                        "; {} ETH of the gas budget remains until {}",
                        sak_primitives::units::format_amount(
                            g.remaining_wei.parse().unwrap_or_default(),
                            Some(18)
                        ),
                        format_time_from(g.renews_at, now)
                    );
                }
            }
            // A dead or used-up session has nothing left to spend: its allowances would mislead.
            Refusal::SessionNotActive { .. }
            | Refusal::ClockOutsideSession { .. }
            | Refusal::OperationLimitReached { .. } => {}
            _ => {
                let all: Vec<String> = left.iter().map(AllowanceOut::sentence).collect();
                if !all.is_empty() {
                    context += &format!("; {}", all.join("; "));
                }
            }
        }
    }
    if !local {
        tracing::debug!(error = %e, "the contracts' refusal");
    }
    let words = refusal_in_words(&refusal, now, |t| (token_name(chain, t), decimals_of(decimals, t)));
    let hint = sak_signer::Error::Refused(refusal.clone())
        .hint()
        .unwrap_or_else(|| "the session's policy refuses this operation".into());
    Hinted::refused(format!("{context}: {words}"), hint).with_refusal(refusal).into()
}

pub(super) async fn balance(chain: &Chain, token: Address, holder: Address) -> Result<U256> {
    MockERC20::new(token, &chain.provider).balanceOf(holder).call().await.wrap_err("balanceOf")
}

/// The decimals of every capped token (book, else `decimals()`; unknown: None).
pub(super) async fn token_decimals(chain: &Chain, session: &Session) -> Vec<(Address, Option<u8>)> {
    let mut out = Vec::new();
    for limit in &session.policy.spend_limits {
        let d = if limit.token == NATIVE { Some(18) } else { decimals(chain, limit.token).await.ok() };
        out.push((limit.token, d));
    }
    out
}

pub(super) fn decimals_of(decimals: &[(Address, Option<u8>)], token: Address) -> Option<u8> {
    if token == NATIVE {
        return Some(18);
    }
    decimals.iter().find(|(t, _)| *t == token).and_then(|(_, d)| *d)
}

pub(super) fn token_name(chain: &Chain, token: Address) -> String {
    if token == NATIVE { "ETH".into() } else { chain.contracts.name(token) }
}

pub(super) fn allowances(
    session: &Session,
    now: u64,
    chain: &Chain,
    decimals: &[(Address, Option<u8>)],
) -> Vec<AllowanceOut> {
    session
        .policy
        .spend_limits
        .iter()
        .filter_map(|l| {
            let (remaining, renews_at) = session.remaining(l.token, now)?;
            Some(AllowanceOut {
                token: l.token,
                name: token_name(chain, l.token),
                decimals: decimals_of(decimals, l.token),
                cap: l.allowance.to_string(),
                period_s: l.period,
                remaining: remaining.to_string(),
                renews_at,
                now,
            })
        })
        .collect()
}

pub(super) fn gas_budget(session: &Session, now: u64) -> Option<GasBudgetOut> {
    let Gas::Budget { wei, period } = session.policy.gas else { return None };
    let period = u64::from(period.max(1));
    let k = now.saturating_sub(session.policy.valid_after) / period;
    let used = if session.gas.window == k { session.gas.spent } else { U256::ZERO };
    Some(GasBudgetOut {
        budget_wei: wei.to_string(),
        remaining_wei: wei.saturating_sub(used).to_string(),
        renews_at: session.policy.valid_after + (k + 1) * period,
    })
}

/// A progress line while this run waits: for another operation on the session's lane (another
/// `sak` process, or the daemon, signing under the same session), or for the session's next
/// period when the current one ends too soon for an operation to land in it.
pub fn lane_wait_notice(home: &Home, session: u32) -> sak_signer::settle::WaitNotice {
    use sak_signer::settle::Wait;
    let home = home.clone();
    sak_signer::settle::WaitNotice(Arc::new(move |wait: Wait| {
        let line = match wait {
            Wait::Lane { waited } => format!(
                "waiting for another operation on session #{session}'s lane to settle ({} s of at most {} s; \
                 operations of one lane go one at a time: give each worker a --lane of its own)…",
                waited.as_secs(),
                sak_signer::settle::LANE_WAIT.as_secs()
            ),
            Wait::PeriodEdge { edge, wait } => format!(
                "session #{session}'s period ends at {}, too soon for an operation to land in it: waiting {} s \
                 to sign in the next period (charged there)…",
                format_time(edge),
                wait.as_secs()
            ),
        };
        home.progress(&line);
    }))
}
