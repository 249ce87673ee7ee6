//! Sessions as the chain has them: a session's policy read back from its `SessionGranted`
//! event, its state from `getSession`, and the contracts' period arithmetic.
//!
//! A revoked session's record is deleted on-chain (and unreachable after `revokeAllSessions`),
//! so "revoked" is told apart from "never granted" by the grant event.

mod detail;

pub use detail::{AllowanceUse, Detail, GasUse, OpsUse, detail};

use crate::{Chain, Hinted, Home, Result, error::WrapErr, store::AccountRecord};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
};
use sak_contracts::ISakSessions::SessionView;
use sak_primitives::Policy;
pub use sak_signer::guard::Host;

/// Refuses `what` (a command reading an account's own session events) on a modular account,
/// whose events the module emits: not followed by it yet.
pub fn require_sak_account(account: &AccountRecord, what: &str) -> Result<()> {
    if account.kind.is_modular() {
        return Err(Hinted::new(
            format!("{what} does not follow a modular (7579) account's sessions yet: {} is one", account.address),
            "use `sak session list` / `sak session show` for its sessions, and `sak audit` (without --chain) for \
             what this home signed",
        )
        .into());
    }
    Ok(())
}

/// Where `account`'s sessions are kept: in the account, or (a modular account) in sak's
/// `SessionKeyValidator` module (at its one address on every chain).
pub fn host_of(account: &AccountRecord) -> Host {
    if account.kind.is_modular() {
        Host::module(account.address, sak_contracts::SakAddresses::canonical().session_key_validator)
    } else {
        Host::account(account.address)
    }
}

/// A session's status from `getSession` at chain time `now`.
pub fn status_of(view: &sak_contracts::ISakSessions::SessionView, now: u64) -> &'static str {
    let (after, until) = (view.validAfter.to::<u64>(), view.validUntil.to::<u64>());
    if view.signer == Address::ZERO && until == 0 {
        "unknown"
    } else if view.signer == Address::ZERO {
        "revoked"
    } else if now > until {
        "expired"
    } else if now < after {
        "not-started"
    } else if view.active {
        "active"
    } else {
        "revoked"
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a session from the chain
// ---------------------------------------------------------------------------------------------

/// A session as the chain has it.
#[derive(Debug, Clone)]
pub struct OnChain {
    /// The session id.
    pub id: u32,
    /// The session key's address.
    pub signer: Address,
    /// The policy as granted (from the `SessionGranted` event).
    pub policy: Policy,
    /// The transaction of its (last) grant.
    pub grant_tx: B256,
    /// That transaction's block.
    pub grant_block: u64,
    /// `active`, `not-started`, `expired` or `revoked`.
    pub status: &'static str,
    /// For a revoked session: `revoke` (this session alone) or `revoke-all`.
    pub revoked_by: Option<&'static str>,
}

impl OnChain {
    /// Whether the session can still act (now or once it starts).
    pub fn live(&self) -> bool {
        matches!(self.status, "active" | "not-started")
    }
}

async fn logs(provider: &DynProvider, filter: &Filter, what: &str) -> Result<Vec<alloy::rpc::types::Log>> {
    provider.get_logs(filter).await.map_err(|e| {
        Hinted::new(
            format!("reading {what} events from the chain: {e}"),
            "use an RPC endpoint that serves eth_getLogs from the grant's block on (--rpc-url)",
        )
        .into()
    })
}

/// The last grant event of session `id` in `host`, from `from_block` on.
pub async fn grant_log(
    provider: &DynProvider,
    host: Host,
    id: u32,
    from_block: u64,
) -> Result<Option<alloy::rpc::types::Log>> {
    Ok(logs(provider, &host.grants(Some(id), from_block), "SessionGranted").await?.pop())
}

/// The session's policy from its grant: the recorded grant transaction, else a log scan.
pub async fn granted_policy(
    provider: &DynProvider,
    host: Host,
    id: u32,
    record: Option<&crate::store::SessionRecord>,
) -> Result<sak_primitives::Policy> {
    if let Some(rec) = record
        && let Some(receipt) = provider.get_transaction_receipt(rec.tx).await?
    {
        let grant = host.grants(Some(id), 0);
        for log in receipt.inner.logs().iter().filter(|l| grant.matches(&l.inner)) {
            if let Ok((_, config)) = host.granted(&log.inner) {
                return Ok(sak_primitives::Policy::from_session_config(&config)?);
            }
        }
    }
    Ok(sak_signer::guard::load_hosted_session(provider, host, id, 0).await?.policy)
}

/// Session `id` of `host`'s account as the chain has it at chain time `now`; None if it was
/// never granted there (the scan starts at `from_block`: the recorded grant block, else 0).
pub async fn lookup(
    chain: &Chain,
    host: Host,
    id: u32,
    from_block: u64,
    now: u64,
) -> Result<Option<OnChain>> {
    let Some(log) = grant_log(&chain.provider, host, id, from_block).await? else {
        return Ok(None);
    };
    let grant_block = log.block_number.unwrap_or(from_block);
    let grant_tx = log.transaction_hash.unwrap_or_default();
    let (granted, config) = host.granted(&log.inner).wrap_err("decoding the grant event")?;
    let policy = Policy::from_session_config(&config)
        .wrap_err_with(|| format!("session #{id}'s granted policy does not read back"))?;
    let view = host.view(&chain.provider, id).await?;
    let (status, revoked_by) = match status_of(&view, now) {
        // Granted, yet no stored record under the current salt: revoked one way or the other.
        "unknown" | "revoked" => ("revoked", Some(how_revoked(chain, host, id, grant_block).await?)),
        status => (status, None),
    };
    let signer = sak_signer::guard::hosted_session_key(&chain.provider, host, id, granted, grant_block)
        .await
        .wrap_err("reading the session's key")?;
    Ok(Some(OnChain { id, signer, policy, grant_tx, grant_block, status, revoked_by }))
}

/// `revoke` if a revocation of session `id` alone follows the grant, else `revoke-all`.
async fn how_revoked(chain: &Chain, host: Host, id: u32, grant_block: u64) -> Result<&'static str> {
    Ok(if logs(&chain.provider, &host.revocations(id, grant_block), "SessionRevoked").await?.is_empty() {
        "revoke-all"
    } else {
        "revoke"
    })
}

/// Session `id`'s status on `account` from its `getSession` `view` at chain time `now`: like
/// [`status_of`], except that a session whose stored record is gone is `revoked` when its grant
/// is on the chain from `from_block` on (revocation deletes the record), and `unknown` only
/// when it is not (never granted, a different chain, a reset node).
pub async fn chain_status(
    provider: &DynProvider,
    host: Host,
    id: u32,
    from_block: u64,
    view: &SessionView,
    now: u64,
) -> Result<&'static str> {
    match status_of(view, now) {
        "unknown" if grant_log(provider, host, id, from_block).await?.is_some() => Ok("revoked"),
        status => Ok(status),
    }
}

fn unknown_session(home: &Home, account: Address, id: u32) -> crate::Error {
    Hinted::new(
        format!("no session #{id} was ever granted on account {account} (network `{}`)", home.network_name),
        "list the sessions with `sak session list`",
    )
    .into()
}

/// The session, or exit 2 pointing at `sak session list`.
pub async fn find(home: &Home, chain: &Chain, account: &AccountRecord, id: u32, now: u64) -> Result<OnChain> {
    let host = host_of(account);
    let account = account.address;
    let record = home.session_record(account, id)?.filter(|r| r.chain_id == chain.chain_id);
    if let Some(r) = record
        && let Some(s) = lookup(chain, host, id, r.block, now).await?
    {
        return Ok(s);
    }
    // Not granted from here (or a record the chain does not bear out): the account's index of
    // grants says where to read.
    match crate::grants::grant_block(home, chain, host, id).await? {
        Some(block) => {
            lookup(chain, host, id, block, now).await?.ok_or_else(|| unknown_session(home, account, id))
        }
        None => Err(unknown_session(home, account, id)),
    }
}

// ---------------------------------------------------------------------------------------------
// Period arithmetic
// ---------------------------------------------------------------------------------------------

/// One allowance in the period that contains the chain's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodUse {
    /// The period's index since `valid_after`.
    pub window: u64,
    /// First second of the period (unix seconds).
    pub starts_at: u64,
    /// Charged in this period.
    pub spent: U256,
    /// What the session may still spend this period (0 once it cannot act).
    pub remaining: U256,
    /// When the next period starts with the full allowance; None if the session ends first or
    /// can no longer act.
    pub renews_at: Option<u64>,
}

/// The contracts' accounting (`SessionLib._charge`): periods are fixed windows of `period`
/// seconds from `valid_after`; the counter (`counter_spent` in window `counter_window`) only
/// counts while its window is the current one, `(now - valid_after) / period`. Before the
/// session starts this is window 0; after it ends, its last window.
pub fn period_use(
    cap: U256,
    counter_spent: U256,
    counter_window: u64,
    (valid_after, valid_until): (u64, u64),
    period: u64,
    now: u64,
    live: bool,
) -> PeriodUse {
    let period = period.max(1);
    let t = now.clamp(valid_after, valid_until.max(valid_after));
    // A charge is never in a later window than the chain's clock; should the latest block lag
    // a charge's clock claim, the charged window is the current one.
    let window = ((t - valid_after) / period).max(counter_window);
    let spent = if counter_window == window { counter_spent } else { U256::ZERO };
    let starts_at = valid_after.saturating_add(window.saturating_mul(period));
    let next = starts_at.saturating_add(period);
    PeriodUse {
        window,
        starts_at,
        spent,
        remaining: if live { cap.saturating_sub(spent) } else { U256::ZERO },
        renews_at: (live && next <= valid_until).then_some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::{PeriodUse, U256, period_use};

    const DAY: u64 = 86_400;
    const START: u64 = 1_800_000_000;

    fn cap() -> U256 {
        U256::from(1_000_000_000u64)
    }

    #[test]
    fn a_fresh_session_has_its_whole_allowance_and_renews_a_period_after_its_start() {
        let u = period_use(cap(), U256::ZERO, 0, (START, START + 7 * DAY), DAY, START + 10, true);
        assert_eq!(
            u,
            PeriodUse {
                window: 0,
                starts_at: START,
                spent: U256::ZERO,
                remaining: cap(),
                renews_at: Some(START + DAY)
            }
        );
    }

    #[test]
    fn spend_counts_only_in_its_own_window() {
        let spent = U256::from(300_000_000u64);
        // Charged in window 0, read during window 0: counts.
        let u = period_use(cap(), spent, 0, (START, START + 7 * DAY), DAY, START + DAY - 1, true);
        assert_eq!((u.window, u.spent, u.remaining), (0, spent, U256::from(700_000_000u64)));
        assert_eq!(u.renews_at, Some(START + DAY));
        // The next period begins at START + DAY exactly: the counter is stale.
        let u = period_use(cap(), spent, 0, (START, START + 7 * DAY), DAY, START + DAY, true);
        assert_eq!((u.window, u.spent, u.remaining), (1, U256::ZERO, cap()));
        assert_eq!((u.starts_at, u.renews_at), (START + DAY, Some(START + 2 * DAY)));
        // Charged in window 3, read in window 3.
        let u = period_use(cap(), spent, 3, (START, START + 7 * DAY), DAY, START + 3 * DAY + 5, true);
        assert_eq!((u.window, u.remaining), (3, U256::from(700_000_000u64)));
    }

    #[test]
    fn no_renewal_past_the_end_and_nothing_left_once_over() {
        // Last period: the next would start after valid_until.
        let u = period_use(cap(), U256::ZERO, 0, (START, START + DAY + 100), DAY, START + DAY + 50, true);
        assert_eq!((u.window, u.renews_at), (1, None));
        // Revoked or expired: nothing remains, nothing renews; the last period's spend shows.
        let spent = U256::from(5u64);
        let u = period_use(cap(), spent, 6, (START, START + 7 * DAY), DAY, START + 30 * DAY, false);
        assert_eq!((u.window, u.spent, u.remaining, u.renews_at), (7, U256::ZERO, U256::ZERO, None));
        let u = period_use(cap(), spent, 7, (START, START + 7 * DAY), DAY, START + 30 * DAY, false);
        assert_eq!((u.spent, u.remaining), (spent, U256::ZERO));
    }

    #[test]
    fn before_the_start_it_is_the_first_period() {
        let u = period_use(cap(), U256::ZERO, 0, (START, START + 7 * DAY), DAY, START - 500, true);
        assert_eq!((u.window, u.remaining, u.renews_at), (0, cap(), Some(START + DAY)));
    }
}
