//! The account on chain, its leftover sessions, and a session's state and caps.

use super::*;

/// `leftover_sessions`: a 7702 account's live sessions that predate its last delegation change
/// (made outside sak), or that another delegate wrote into its storage.
pub(super) async fn check_leftovers(r: &mut Report, home: &Home, chain: &Probed, eoa: Address) {
    let fix = "run `sak account create --kind 7702` (it ends them), or `sak session revoke-all`";
    match crate::leftover::find(&chain.provider, eoa).await {
        Err(e) => r.warn(
            "leftover_sessions",
            format!(
                "could not read the account's sessions and delegation history: {}",
                redacted_error(&e, &home.rpc_url().unwrap_or_default())
            ),
            "retry `sak doctor`, with an endpoint that serves eth_getLogs and full blocks",
        ),
        Ok(found) => match (found.summary(), &found.unchecked) {
            (Some(what), _) => {
                r.fail("leftover_sessions", format!("live from before the last delegation: {what}"), fix)
            }
            (None, Some(why)) => r.warn(
                "leftover_sessions",
                format!("{} live session(s); {why}", found.live.len()),
                "if the EOA was delegated elsewhere since they were granted, run `sak session revoke-all`",
            ),
            (None, None) => r.ok(
                "leftover_sessions",
                format!("{} live session(s), none from before the EOA's last delegation", found.live.len()),
            ),
        },
    }
}

pub(super) async fn check_account(
    r: &mut Report,
    home: &Home,
    chain: &Probed,
    state: &State,
) -> Option<AccountRecord> {
    let net = state.networks.get(&home.network_name).cloned().unwrap_or_default();
    let account = match net.pick(home.options.account.as_deref(), &home.network_name) {
        Ok((_, account)) => account,
        Err(e) => {
            r.warn("account", e.message, e.hint);
            return None;
        }
    };
    if account.chain_id != chain.chain_id {
        r.fail(
            "account",
            format!(
                "the account {} was recorded on chain {}; the endpoint is chain {}",
                account.address, account.chain_id, chain.chain_id
            ),
            "run `sak account create` on this chain, or point the network at the chain it lives on",
        );
        return None;
    }
    let code = match code_at(&chain.provider, account.address).await {
        Ok(code) => code,
        Err(e) => {
            r.fail("account", format!("eth_getCode at {}: {e}", account.address), "retry `sak doctor`");
            return None;
        }
    };
    let kind = account.kind.as_str();
    let sak_7702 = Contracts::canonical().sak_7702_account;
    match account.kind {
        _ if code.is_empty() => r.fail(
            "account",
            format!("the {kind} account {} has no code on chain {}", account.address, chain.chain_id),
            format!("run `sak account create --kind {kind}` (it deploys or delegates it again)"),
        ),
        AccountKind::Eip7702 if code[..] != sak_userop::eip7702::delegation_code(sak_7702)[..] => r.fail(
            "account",
            format!(
                "{} is not delegated to Sak7702Account {sak_7702} (code 0x{})",
                account.address,
                hex(&code)
            ),
            "run `sak account create --kind 7702` to delegate it again",
        ),
        AccountKind::Eip7702 => {
            r.ok("account", format!("7702 account {} delegates to Sak7702Account", account.address));
            check_leftovers(r, home, chain, account.address).await;
        }
        AccountKind::Smart | AccountKind::Erc7579 => {
            // `owner()` is the same function on both.
            let owner = SakAccount::new(account.address, &chain.provider).owner().call().await;
            match owner {
                Ok(o) if o == account.owner => r.ok(
                    "account",
                    format!("{kind} account {} ({} bytes of code), owner {o}", account.address, code.len()),
                ),
                Ok(o) => r.fail(
                    "account",
                    format!(
                        "the account {}'s owner is {o}; this home recorded {}",
                        account.address, account.owner
                    ),
                    "use the home (or owner key) the account belongs to",
                ),
                Err(e) => r.fail(
                    "account",
                    format!("{} does not answer owner(): {e}", account.address),
                    "is it a sak account? run `sak account create` again",
                ),
            }
        }
    }
    Some(account)
}

/// `3d 4h`, `5h 12m`, `42m`, `17s`.
pub(super) fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
        s if s >= 3_600 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn check_session(
    r: &mut Report,
    home: &Home,
    chain: &Probed,
    account: &AccountRecord,
    state: Option<&State>,
    id: u32,
) {
    let record: Option<SessionRecord> = state.and_then(|s| {
        s.networks
            .get(&home.network_name)
            .and_then(|n| n.sessions.iter().find(|x| x.account == account.address && x.id == id).cloned())
    });
    let host = crate::sessions::host_of(account);
    let view = match host.view(&chain.provider, id).await {
        Ok(v) => v,
        Err(e) => {
            r.fail("session", format!("getSession({id}) on {}: {e}", account.address), "retry `sak doctor`");
            return;
        }
    };
    let now = match chain.provider.get_block_by_number(alloy::rpc::types::BlockNumberOrTag::Latest).await {
        Ok(Some(b)) => b.header.timestamp,
        _ => {
            r.fail("session", "cannot read the chain's latest block", "retry `sak doctor`");
            return;
        }
    };
    let from = record.as_ref().map_or(0, |rec| rec.block);
    let status = match crate::sessions::chain_status(&chain.provider, host, id, from, &view, now).await {
        Ok(status) => status,
        Err(e) => {
            r.fail(
                "session",
                format!("session #{id}: {e}"),
                "retry `sak doctor` with an endpoint that serves eth_getLogs",
            );
            return;
        }
    };
    let (after, until) = (view.validAfter.to::<u64>(), view.validUntil.to::<u64>());
    let window = format!("{} .. {}", format_time_from(after, now), format_time_from(until, now));
    let local = if record.is_some() { "" } else { " (not granted from this home)" };
    match status {
        "unknown" => {
            r.fail(
                "session",
                format!("session #{id} does not exist on account {}", account.address),
                "list the account's sessions with `sak session list`",
            );
            return;
        }
        "revoked" => {
            r.fail(
                "session",
                format!("session #{id} is revoked{local}"),
                "grant a new one with `sak session grant --key NAME …`",
            );
            return;
        }
        "expired" => r.fail(
            "session",
            format!("session #{id} expired at {}{local}", format_time_from(until, now)),
            "grant a new one with a later --expires (`sak session grant`)",
        ),
        "not-started" => r.warn(
            "session",
            format!("session #{id} starts at {}{local}", format_time_from(after, now)),
            "wait until then: the contracts refuse it before",
        ),
        _ => {
            let left = until.saturating_sub(now);
            r.ok(
                "session",
                format!("session #{id} active, valid {window} ({} left){local}", human_duration(left)),
            );
        }
    }

    let keys: Vec<(String, Option<Address>)> =
        home.session_keys().unwrap_or_default().into_iter().map(|(n, _, a)| (n, a)).collect();
    match keys.iter().find(|(_, a)| *a == Some(view.signer)) {
        Some((name, _)) if record.as_ref().is_none_or(|rec| rec.key == view.signer) => r.ok(
            "session_key",
            format!("`{name}` ({}) in this home is the session's on-chain signer", view.signer),
        ),
        Some((name, _)) => r.fail(
            "session_key",
            format!(
                "this home recorded key {} for session #{id}, but the chain's signer is {} (`{name}`)",
                record.as_ref().map(|x| x.key).unwrap_or_default(),
                view.signer
            ),
            "use the key the chain names; `sak session list` shows each session's key",
        ),
        None => r.fail(
            "session_key",
            format!(
                "the session's signer {} has no key file in {}",
                view.signer,
                home.paths.session_keys_dir().display()
            ),
            "run the agent where its key is, or grant a session to a key made here (`sak key new`)",
        ),
    }

    match caps(home, chain, crate::sessions::host_of(account), id, record.as_ref(), now).await {
        Ok((lines, exhausted)) if exhausted => r.warn(
            "session_caps",
            lines.join("\n"),
            "a used-up allowance renews at the time shown; grant a larger cap if the agent needs more",
        ),
        Ok((lines, _)) => r.ok("session_caps", lines.join("\n")),
        Err(e) => r.fail("session_caps", format!("{e:#}"), "retry `sak doctor`"),
    }
}

/// What remains of each allowance of the session at chain time `now`: lines, and whether
/// any is used up.
pub(super) async fn caps(
    home: &Home,
    chain: &Probed,
    host: crate::sessions::Host,
    id: u32,
    record: Option<&SessionRecord>,
    now: u64,
) -> crate::Result<(Vec<String>, bool)> {
    let policy = crate::sessions::granted_policy(&chain.provider, host, id, record).await?;
    let latest = alloy::eips::BlockId::latest();
    let counters = host.counters(&chain.provider, id, latest).await?;
    let mut session = sak_policy::Session::new(id, counters.signer, policy);
    session.ops_used = counters.ops_used;
    let book = home.offline_contracts()?;
    let (mut lines, mut exhausted) = (Vec::new(), false);
    for limit in session.policy.spend_limits.clone() {
        session.spent.insert(limit.token, host.spend(&chain.provider, id, limit.token, latest).await?);
        let Some((left, renews)) = session.remaining(limit.token, now) else { continue };
        let (name, decimals) = if limit.token == NATIVE {
            ("ETH".to_owned(), Some(18))
        } else {
            (book.name(limit.token), book.decimals(limit.token))
        };
        exhausted |= left.is_zero();
        lines.push(format!(
            "{name}: {} of {} left this {}, renews {}",
            sak_primitives::units::format_amount(left, decimals),
            sak_primitives::units::format_amount(limit.allowance, decimals),
            sak_primitives::units::format_period(u64::from(limit.period)),
            format_time_from(renews, now)
        ));
    }
    if session.policy.max_ops > 0 {
        let left = session.policy.max_ops.saturating_sub(session.ops_used);
        exhausted |= left == 0;
        lines.push(format!("operations: {left} of {} left", session.policy.max_ops));
    }
    if lines.is_empty() {
        lines.push("no spend caps (calls only)".into());
    }
    Ok((lines, exhausted))
}
