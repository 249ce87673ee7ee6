//! One round of the watch: the blocks since the last round (the account's events, its user
//! operations, its approvals), then the state checks (spend near a cap, the delegation, the
//! ledger's refusals, sessions falling due).

use super::{Alert, Kind, Watcher};
use crate::{Result, error::WrapErr, scan, store::AccountKind};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use sak_contracts::{IEntryPoint, MockERC20, MockPermit2, SakAccount};
use sak_primitives::{
    PERMIT2,
    units::{format_span, format_time_from},
};
use sak_signer::ledger::{Decision, Ledger};
use std::collections::{BTreeMap, BTreeSet};

/// Blocks read per round at most.
const ROUND_BLOCKS: u64 = 5 * scan::CHUNK;

impl Watcher<'_> {
    /// Reads what happened since the last round; returns its alerts and whether it reached the
    /// head. Advances the cursor in memory only (persisted by [`Self::save`]).
    pub async fn round(&mut self) -> Result<(Vec<Alert>, bool)> {
        let p = self.chain.provider.clone();
        let (latest, now) = p
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .wrap_err("reading the latest block")?
            .map_or((0, 0), |b| (b.header.number, b.header.timestamp));
        // A block with `depth` confirmations: 1 is the head itself.
        let head = latest.saturating_sub(self.home.network.depth() - 1);
        let mut alerts = Vec::new();
        let mut touched = BTreeSet::new();
        let from = self.cursor.next_block;
        let to = head.min(from.saturating_add(ROUND_BLOCKS - 1));
        if from <= to {
            self.events((from, to), now, &mut alerts, &mut touched).await?;
        }
        for id in touched {
            self.near_cap(id, now, &mut alerts).await?;
        }
        let has_code = self.delegation(now, &mut alerts).await?;
        let (fresh, logged) = self.decisions()?;
        self.refusals(&fresh, now, &mut alerts);
        if has_code {
            // Without code (undelegated, not deployed) no session can act: nothing falls due.
            self.due(now, &mut alerts).await?;
        }
        if from <= to {
            self.cursor.next_block = to + 1;
        }
        self.cursor.decisions_seen = logged;
        Ok((alerts, to >= head))
    }

    async fn events(
        &mut self,
        range: (u64, u64),
        now: u64,
        alerts: &mut Vec<Alert>,
        touched: &mut BTreeSet<u32>,
    ) -> Result<()> {
        let (p, a) = (&self.chain.provider, self.account.address);
        let account_events = Filter::new().address(a).event_signature(vec![
            SakAccount::SessionGranted::SIGNATURE_HASH,
            SakAccount::SessionRevoked::SIGNATURE_HASH,
            SakAccount::AllSessionsRevoked::SIGNATURE_HASH,
            SakAccount::SessionKeyRotated::SIGNATURE_HASH,
            SakAccount::SessionExecuted::SIGNATURE_HASH,
        ]);
        let user_ops = Filter::new()
            .address(self.chain.contracts.entry_point)
            .event_signature(IEntryPoint::UserOperationEvent::SIGNATURE_HASH)
            .topic2(a.into_word());
        let approvals = Filter::new()
            .event_signature(vec![MockERC20::Approval::SIGNATURE_HASH, MockPermit2::Approval::SIGNATURE_HASH])
            .topic1(a.into_word());
        let mut logs = scan::logs(self.home, p, &account_events, range, "the account's events").await?;
        logs.extend(scan::logs(self.home, p, &user_ops, range, "the account's user operations").await?);
        logs.extend(scan::logs(self.home, p, &approvals, range, "the account's approvals").await?);
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        for log in logs {
            let (block, tx) = scan::placed(&log)?;
            let mut raised = |this: &Self, kind, session, detail: String, data| {
                let mut alert = this.alert(kind, log.block_timestamp.unwrap_or(now), session, detail, data);
                (alert.block, alert.tx) = (Some(block), Some(tx));
                alerts.push(alert);
            };
            let topic0 = log.topic0().copied().unwrap_or_default();
            if topic0 == SakAccount::SessionGranted::SIGNATURE_HASH {
                let e = log.log_decode::<SakAccount::SessionGranted>()?.inner.data;
                raised(
                    self,
                    Kind::SessionGranted,
                    Some(e.id),
                    format!("session #{} granted to {}", e.id, e.signer),
                    serde_json::json!({ "signer": e.signer }),
                );
            } else if topic0 == SakAccount::SessionRevoked::SIGNATURE_HASH {
                let e = log.log_decode::<SakAccount::SessionRevoked>()?.inner.data;
                raised(
                    self,
                    Kind::SessionRevoked,
                    Some(e.id),
                    format!("session #{} revoked", e.id),
                    serde_json::json!({}),
                );
            } else if topic0 == SakAccount::AllSessionsRevoked::SIGNATURE_HASH {
                raised(
                    self,
                    Kind::SessionRevoked,
                    None,
                    "every session revoked (revokeAllSessions)".into(),
                    serde_json::json!({}),
                );
            } else if topic0 == SakAccount::SessionKeyRotated::SIGNATURE_HASH {
                let e = log.log_decode::<SakAccount::SessionKeyRotated>()?.inner.data;
                raised(
                    self,
                    Kind::KeyRotated,
                    Some(e.id),
                    format!("session #{} now signs with {}", e.id, e.signer),
                    serde_json::json!({ "signer": e.signer }),
                );
            } else if topic0 == SakAccount::SessionExecuted::SIGNATURE_HASH {
                let id = log.log_decode::<SakAccount::SessionExecuted>()?.inner.data.id;
                touched.insert(id);
                self.check_relayer(tx, id, &mut raised).await?;
            } else if topic0 == IEntryPoint::UserOperationEvent::SIGNATURE_HASH {
                let e = log.log_decode::<IEntryPoint::UserOperationEvent>()?.inner.data;
                let Some(id) = sak_userop::session_of_nonce(e.nonce) else { continue };
                touched.insert(id);
                if !e.success {
                    raised(
                        self,
                        Kind::OpReverted,
                        Some(id),
                        format!(
                            "an operation of session #{id} was included but its calls reverted (gas paid, nothing else moved)"
                        ),
                        serde_json::json!({ "user_op_hash": e.userOpHash }),
                    );
                }
                self.check_relayer(tx, id, &mut raised).await?;
            } else if topic0 == MockERC20::Approval::SIGNATURE_HASH && log.topics().len() == 3 {
                let spender = Address::from_word(log.topics()[2]);
                let amount = U256::from_be_slice(log.data().data.get(..32).unwrap_or_default());
                let token = log.address();
                raised(
                    self,
                    Kind::AllowanceChanged,
                    None,
                    format!(
                        "the account set the allowance of {} to {} at {amount}",
                        self.chain.contracts.name(token),
                        self.chain.contracts.name(spender)
                    ),
                    serde_json::json!({ "kind": "erc20", "token": token, "spender": spender, "raw": amount }),
                );
            } else if topic0 == MockPermit2::Approval::SIGNATURE_HASH
                && log.address() == PERMIT2
                && log.topics().len() == 4
            {
                let (token, spender) =
                    (Address::from_word(log.topics()[2]), Address::from_word(log.topics()[3]));
                let e = log.log_decode::<MockPermit2::Approval>()?.inner.data;
                raised(
                    self,
                    Kind::AllowanceChanged,
                    None,
                    format!(
                        "the account set the Permit2 allowance of {} to {} at {}",
                        self.chain.contracts.name(token),
                        self.chain.contracts.name(spender),
                        e.amount
                    ),
                    serde_json::json!({ "kind": "permit2", "token": token, "spender": spender, "raw": U256::from(e.amount), "expiration": e.expiration.to::<u64>() }),
                );
            }
        }
        Ok(())
    }

    /// `unknown_relayer` when `--relayer` is given and transaction `tx`'s sender is not one.
    async fn check_relayer(
        &self,
        tx: B256,
        id: u32,
        raised: &mut impl FnMut(&Self, Kind, Option<u32>, String, serde_json::Value),
    ) -> Result<()> {
        if self.rules.relayers.is_empty() {
            return Ok(());
        }
        let Some(t) =
            self.chain.provider.get_transaction_by_hash(tx).await.wrap_err("eth_getTransactionByHash")?
        else {
            return Ok(());
        };
        let from = t.inner.signer();
        if !self.rules.relayers.contains(&from) {
            raised(
                self,
                Kind::UnknownRelayer,
                Some(id),
                format!("session #{id} was used through {from}, not a --relayer"),
                serde_json::json!({ "relayer": from }),
            );
        }
        Ok(())
    }

    /// `near_cap` once per session, token and period.
    async fn near_cap(&mut self, id: u32, now: u64, alerts: &mut Vec<Alert>) -> Result<()> {
        if !self.policies.contains_key(&id) {
            let (account, chain_id) = (self.account.address, self.chain.chain_id);
            let record = self.home.state()?.networks.remove(&self.home.network_name).and_then(|n| {
                n.sessions.into_iter().find(|r| r.account == account && r.chain_id == chain_id && r.id == id)
            });
            let host = crate::sessions::host_of(&self.account);
            let policy = match crate::sessions::granted_policy(
                &self.chain.provider,
                host,
                id,
                record.as_ref(),
            )
            .await
            {
                Ok(p) => Some(p),
                // No grant event (a planted record): nothing to measure against.
                Err(e)
                    if matches!(
                        e.inner().and_then(|i| i.downcast_ref()),
                        Some(sak_signer::Error::UnknownSession { .. })
                    ) =>
                {
                    None
                }
                Err(e) => return Err(e),
            };
            self.policies.insert(id, policy);
        }
        let Some(policy) = self.policies.get(&id).cloned().flatten() else { return Ok(()) };
        let host = crate::sessions::host_of(&self.account);
        for limit in &policy.spend_limits {
            let stored =
                host.spend(&self.chain.provider, id, limit.token, alloy::eips::BlockId::latest()).await?;
            let u = crate::sessions::period_use(
                limit.allowance,
                stored.spent,
                stored.window,
                (policy.valid_after, policy.valid_until),
                u64::from(limit.period),
                now,
                true,
            );
            let key = format!("near_cap:{id}:{}:{}", limit.token, u.window);
            if limit.allowance.is_zero()
                || u.spent * U256::from(100) < limit.allowance * U256::from(self.rules.near_cap)
                || self.cursor.raised.contains(&key)
            {
                continue;
            }
            self.cursor.raised.insert(key);
            let decimals = self.chain.contracts.decimals(limit.token);
            let name = self.chain.contracts.name(limit.token);
            let show = |v| sak_primitives::units::format_amount(v, decimals);
            let percent = u.spent * U256::from(100) / limit.allowance;
            alerts.push(self.alert(
                Kind::NearCap,
                now,
                Some(id),
                format!(
                    "session #{id} has spent {} of {} {name} this period ({percent}%){}",
                    show(u.spent),
                    show(limit.allowance),
                    u.renews_at.map(|t| format!("; it renews at {}", format_time_from(t, now))).unwrap_or_default()
                ),
                serde_json::json!({ "token": limit.token, "spent": u.spent, "cap": limit.allowance, "window": u.window, "renews_at": u.renews_at }),
            ));
        }
        Ok(())
    }

    /// `delegation_changed` when a delegated EOA's code differs from the last round's; returns
    /// whether the account has code.
    async fn delegation(&mut self, now: u64, alerts: &mut Vec<Alert>) -> Result<bool> {
        let code = self.chain.provider.get_code_at(self.account.address).await.wrap_err("eth_getCode")?;
        if self.account.kind != AccountKind::Eip7702 {
            return Ok(!code.is_empty());
        }
        let hash = keccak256(&code);
        if self.cursor.code_hash.is_some_and(|h| h != hash) {
            let detail = match code.get(..3) {
                Some([0xef, 0x01, 0x00]) if code.len() == 23 => {
                    format!("the EOA is now delegated to {}", Address::from_slice(&code[3..23]))
                }
                _ if code.is_empty() => "the EOA's delegation was cleared".to_owned(),
                _ => format!("the EOA's code changed ({} bytes)", code.len()),
            };
            alerts.push(self.alert(
                Kind::DelegationChanged,
                now,
                None,
                detail,
                serde_json::json!({ "code": code }),
            ));
        }
        self.cursor.code_hash = Some(hash);
        Ok(!code.is_empty())
    }

    /// This account's decisions logged since the last round, and how many the log holds. Reads
    /// only the new ones, but the whole log once per process, to learn each key's last decision
    /// and the recent refusals ([`History`]).
    fn decisions(&mut self) -> Result<(Vec<Decision>, usize)> {
        let seen = self.cursor.decisions_seen;
        let Some(ledger) = crate::store::LedgerAt::of(&self.home.paths, &self.home.config)?.existing()?
        else {
            return Ok((Vec::new(), seen));
        };
        let from = if self.history.is_some() { seen } else { 0 };
        let read = ledger.decisions_after(from).wrap_err("reading the decision log")?;
        let logged = from + read.len();
        let (account, chain_id) = (self.account.address, self.chain.chain_id);
        let history = self.history.get_or_insert_with(History::default);
        let mut fresh = Vec::new();
        for (i, d) in read.into_iter().enumerate() {
            if d.account != account || d.chain_id != chain_id {
                continue;
            }
            history.absorb(&d, self.rules.refusal_rate.1);
            if from + i >= seen {
                fresh.push(d);
            }
        }
        Ok((fresh, logged))
    }

    /// `refusal` for each refused decision logged since the last round, and `refusal_rate` once
    /// a window when a session's refusals in the `--refusal-rate` window reach its count.
    fn refusals(&mut self, fresh: &[Decision], now: u64, alerts: &mut Vec<Alert>) {
        let refused: Vec<&Decision> = fresh.iter().filter(|d| !d.allowed).collect();
        for d in &refused {
            let id = session_of(d);
            alerts.push(self.alert(
                Kind::Refusal,
                now.max(d.at),
                Some(id),
                format!("an operation of session #{id} was refused: {}", d.reason),
                serde_json::json!({ "reason": d.reason, "key": d.key, "decided_at": d.at }),
            ));
        }
        let (count, window) = self.rules.refusal_rate;
        let ids: BTreeSet<u32> = refused.iter().map(|d| session_of(d)).collect();
        for id in ids {
            let times = self.history.as_ref().and_then(|h| h.refused.get(&id)).cloned().unwrap_or_default();
            let last = times.iter().copied().max().unwrap_or_default();
            let recent = times.iter().filter(|t| **t + window > last).count();
            if recent < count as usize
                || !self.cursor.raised.insert(format!("refusal_rate:{id}:{}", last / window))
            {
                continue;
            }
            alerts.push(self.alert(
                Kind::RefusalRate,
                now.max(last),
                Some(id),
                format!("session #{id} was refused {recent} times within {}", format_span(window)),
                serde_json::json!({ "refused": recent, "window_s": window, "threshold": count }),
            ));
        }
    }

    /// `expiring`, `rotation_due` and `stale`, each once per session (and key).
    async fn due(&mut self, now: u64, alerts: &mut Vec<Alert>) -> Result<()> {
        let state = self.home.state()?;
        let (account, chain_id) = (self.account.address, self.chain.chain_id);
        let records: Vec<_> = state
            .networks
            .get(&self.home.network_name)
            .map(|n| {
                n.sessions
                    .iter()
                    .filter(|r| r.account == account && r.chain_id == chain_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let host = crate::sessions::host_of(&self.account);
        for r in &records {
            let view = host.view(&self.chain.provider, r.id).await?;
            if !matches!(crate::sessions::status_of(&view, now), "active" | "not-started") {
                continue;
            }
            let until = view.validUntil.to::<u64>();
            let mut raise = |this: &mut Self, kind: Kind, key: String, detail: String| {
                if this.cursor.raised.insert(key) {
                    alerts.push(this.alert(
                        kind,
                        now,
                        Some(r.id),
                        detail,
                        serde_json::json!({ "key": r.key, "key_name": r.key_name }),
                    ));
                }
            };
            if until.saturating_sub(now) <= self.rules.expiring {
                raise(
                    self,
                    Kind::Expiring,
                    format!("expiring:{}:{until}", r.id),
                    format!("session #{} ends at {}", r.id, format_time_from(until, now)),
                );
            }
            if now.saturating_sub(r.key_since()) >= self.rules.rotate_after {
                raise(
                    self,
                    Kind::RotationDue,
                    format!("rotation_due:{}:{}", r.id, r.key),
                    format!(
                        "session #{} has had key `{}` since {}: `sak session rotate {}`",
                        r.id,
                        r.key_name,
                        format_time_from(r.key_since(), now),
                        r.id
                    ),
                );
            }
            let signed = self.history.as_ref().and_then(|h| h.last_decision.get(&r.key)).copied();
            let last = signed.unwrap_or(r.key_since());
            if now.saturating_sub(last) >= self.rules.stale {
                raise(
                    self,
                    Kind::Stale,
                    format!("stale:{}:{last}", r.key),
                    format!(
                        "key `{}` of session #{} has not signed since {}",
                        r.key_name,
                        r.id,
                        format_time_from(last, now)
                    ),
                );
            }
        }
        Ok(())
    }
}

/// What the watch keeps of this account's decision log between rounds of one process.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Each key's latest decision (unix seconds).
    last_decision: BTreeMap<Address, u64>,
    /// Each session's refusals within the `--refusal-rate` window of its latest.
    refused: BTreeMap<u32, Vec<u64>>,
}

impl History {
    fn absorb(&mut self, d: &Decision, window: u64) {
        let last = self.last_decision.entry(d.key).or_default();
        *last = (*last).max(d.at);
        if !d.allowed {
            let times = self.refused.entry(session_of(d)).or_default();
            times.push(d.at);
            let newest = times.iter().copied().max().unwrap_or_default();
            times.retain(|t| *t + window > newest);
        }
    }
}

fn session_of(d: &Decision) -> u32 {
    U256::from_be_bytes(d.session_id.0).saturating_to()
}
