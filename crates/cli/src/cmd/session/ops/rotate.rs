//! `sak session rotate`: a new key for the same session, its counters kept.

use super::*;

/// What `sak session rotate --json` prints.
#[derive(Debug, Serialize)]
pub(super) struct Rotated {
    network: String,
    chain_id: u64,
    account: Address,
    /// The session: the same id, policy, counters and end, with a new key.
    id: u32,
    /// The key replaced, which no longer validates anything.
    old_key: Address,
    /// The new session key's address and name.
    key: Address,
    key_name: String,
    /// True when this command generated the key.
    key_created: bool,
    /// The owner's `rotateSessionKey` transaction.
    transaction: B256,
    policy: Policy,
}

/// A name's base without a trailing `-rN` (so `bot-r2` rotates to `bot-r3`, not `bot-r2-r2`).
pub(super) fn rotation_base(name: &str) -> &str {
    match name.rsplit_once("-r") {
        Some((base, n)) if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// The first `<base>-rN` (N >= 2) not among `taken`.
pub(crate) fn rotated_name(old: &str, taken: &[String]) -> String {
    let base = rotation_base(old);
    (2u32..).map(|n| format!("{base}-r{n}")).find(|n| !taken.contains(n)).unwrap_or_default()
}

pub(super) fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The key the new session goes to: `--key` (an existing key, or a new one by that name),
/// else a new `<old>-rN`. Returns (name, address, created: the key to delete if the grant
/// fails).
pub(super) fn new_key(
    ctx: &Ctx,
    args: &RotateArgs,
    old: &OnChain,
    old_name: &str,
) -> eyre::Result<(String, Address, Option<std::path::PathBuf>)> {
    let existing = ctx.session_keys()?;
    let name = match &args.key {
        Some(k) => {
            let found = existing
                .iter()
                .find(|(n, _, a)| n == k || k.parse::<Address>().ok().is_some_and(|k| Some(k) == *a));
            if let Some((n, path, _)) = found {
                let address = keystore_address(path)?.ok_or_eyre("the key file vanished")?;
                if address == old.signer {
                    return Err(Hinted::new(
                        format!("`{n}` is session #{}'s own key: rotating needs another key", old.id),
                        "pass a different --key, or none for a new key",
                    )
                    .into());
                }
                let held: Vec<u32> = ctx
                    .state()?
                    .networks
                    .values()
                    .flat_map(|n| &n.sessions)
                    .filter(|r| r.key == address)
                    .map(|r| r.id)
                    .collect();
                if !held.is_empty() {
                    tracing::warn!(
                        "the key `{n}` already held session(s) {held:?}: if the old key may be \
                         compromised, rotate to a fresh key instead (omit --key)"
                    );
                }
                return Ok((n.clone(), address, None));
            }
            k.clone()
        }
        None => rotated_name(old_name, &existing.iter().map(|(n, ..)| n.clone()).collect::<Vec<_>>()),
    };
    if !valid_key_name(&name) {
        return Err(Hinted::new(
            format!("`{name}` is not a usable key name"),
            "use letters, digits, `-`, `_` and `.` (up to 64, not starting with `.` or `-`)",
        )
        .into());
    }
    let path = ctx.paths.session_keys_dir().join(format!("{name}.json"));
    let password = ctx.new_key_password()?;
    let key = LocalKey::generate()?;
    output::progress(&ctx.global, &format!("creating the key `{name}` (scrypt, about a second)…"));
    keystore::save(&path, &key, &password)?;
    Ok((name, key.address(), Some(path)))
}

/// One owner transaction, `rotateSessionKey(id, key)`: the session keeps its id, policy and
/// counters, so the new key inherits what the old one spent this period (a rotation never
/// doubles a cap), and the old key stops validating at once.
pub(crate) async fn rotate(args: RotateArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let now = chain.time().await?;
    let old = find(ctx, &chain, account.address, args.id, now).await?;
    if !old.live() {
        return Err(Hinted::new(
            format!("session #{} is {}: there is nothing to rotate", old.id, old.status),
            "grant a new session with `sak session grant --key NAME ...`",
        )
        .into());
    }
    // The owner key first: a wrong or missing password stops here, before any key is made.
    let owner = ctx.owner().await?;
    let old_name = match ctx.session_record(account.address, old.id)?.filter(|r| r.key == old.signer) {
        Some(r) => r.key_name,
        None => ctx
            .session_keys()?
            .into_iter()
            .find(|(.., a)| *a == Some(old.signer))
            .map_or_else(|| format!("session-{}", old.id), |(n, ..)| n),
    };
    let (key_name, key, created) = new_key(ctx, &args, &old, &old_name)?;
    let wallet = ctx.owner_provider(&chain, &owner)?;

    output::progress(&ctx.global, &format!("the owner signs rotateSessionKey({}, `{key_name}`)…", old.id));
    let rotated = async {
        let pending = SakAccount::new(account.address, &wallet)
            .rotateSessionKey(old.id, key)
            .send()
            .await
            .map_err(|e| sak::owner::owner_call_error(e, "rotateSessionKey"))?;
        mined(ctx, pending, "rotateSessionKey").await
    }
    .await;
    let receipt = match rotated {
        Ok(r) => r,
        Err(e) => {
            // Nothing changed on-chain: the key made for it goes, the session keeps its key.
            if let Some(path) = &created {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.wrap(format!("rotating session #{}: its key is unchanged", old.id)).into());
        }
    };
    State::update(&ctx.paths.state(), |s| {
        let sessions = &mut s.networks.entry(ctx.network_name.clone()).or_default().sessions;
        match sessions.iter_mut().find(|r| r.account == account.address && r.id == old.id) {
            Some(r) => {
                r.key = key;
                r.key_name.clone_from(&key_name);
                r.rotated_at = Some(now);
            }
            None => sessions.push(SessionRecord {
                id: old.id,
                account: account.address,
                chain_id: chain.chain_id,
                key,
                key_name: key_name.clone(),
                tx: old.grant_tx,
                block: old.grant_block,
                granted_at: old.policy.valid_after,
                rotated_at: Some(now),
            }),
        }
    })?;
    let out = Rotated {
        network: ctx.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id: old.id,
        old_key: old.signer,
        key,
        key_name,
        key_created: created.is_some(),
        transaction: receipt.transaction_hash,
        policy: old.policy,
    };
    output::emit(&ctx.global, &out, || {
        format!(
            "session #{} now signs with `{}` ({}){}; the old key {} no longer validates\n{}\
             note: same session, same counters: what the old key spent this period counts\n\
             next: hand the agent the new key (`sak key export {} --out FILE`)",
            out.id,
            out.key_name,
            out.key,
            if out.key_created { ", a new key" } else { "" },
            out.old_key,
            describe_policy(&out.policy, &chain, sak_primitives::units::unix_now()),
            out.key_name
        )
    })
}
