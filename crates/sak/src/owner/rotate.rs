//! Rotating a session's key: one owner transaction, `rotateSessionKey(id, key)`. The session
//! keeps its id, policy and counters, so the new key inherits what the old one spent this period
//! (a rotation never doubles a cap), and the old key stops validating at once.

use crate::{
    Chain, Hinted, Home, Result,
    error::bail,
    sessions::{OnChain, find},
    store::{SessionRecord, State, valid_name},
};
use alloy::primitives::{Address, B256};
use sak_contracts::SakAccount;
use sak_primitives::Policy;
use sak_signer::keystore::{self, LocalKey};
use serde::Serialize;

/// A rotation, as `sak session rotate --json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    /// The network's name in the home.
    pub network: String,
    /// The chain.
    pub chain_id: u64,
    /// The account.
    pub account: Address,
    /// The session: the same id, policy, counters and end, with a new key.
    pub id: u32,
    /// The key replaced, which no longer validates anything.
    pub old_key: Address,
    /// The new session key's address.
    pub key: Address,
    /// Its name in the home.
    pub key_name: String,
    /// True when this rotation generated the key.
    pub key_created: bool,
    /// The owner's `rotateSessionKey` transaction.
    pub transaction: B256,
    /// The session's policy (unchanged).
    pub policy: Policy,
}

/// A name's base without a trailing `-rN` (so `bot-r2` rotates to `bot-r3`, not `bot-r2-r2`).
fn rotation_base(name: &str) -> &str {
    match name.rsplit_once("-r") {
        Some((base, n)) if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// The first `<base>-rN` (N >= 2) not among `taken`.
pub fn rotated_name(old: &str, taken: &[String]) -> String {
    let base = rotation_base(old);
    (2u32..).map(|n| format!("{base}-r{n}")).find(|n| !taken.contains(n)).unwrap_or_default()
}

/// Gives session `id` of this home's account a new key: `key` (an existing key of the home, or
/// a new one by that name), else a new `<old name>-rN`. A key made for it is deleted again when
/// the owner's transaction fails: the session then keeps its key.
pub async fn rotate(home: &Home, chain: &Chain, id: u32, key: Option<&str>) -> Result<Rotated> {
    let account = home.account(chain.chain_id)?;
    let now = chain.time().await?;
    let old = find(home, chain, &account, id, now).await?;
    if !old.live() {
        bail!(Hinted::new(
            format!("session #{} is {}: there is nothing to rotate", old.id, old.status),
            "grant a new session with `sak session grant --key NAME ...`",
        ));
    }
    // The owner key first: a wrong or missing password stops here, before any key is made.
    let owner = home.owner().await?;
    let old_name = match home.session_record(account.address, old.id)?.filter(|r| r.key == old.signer) {
        Some(r) => r.key_name,
        None => home
            .session_keys()?
            .into_iter()
            .find(|(.., a)| *a == Some(old.signer))
            .map_or_else(|| format!("session-{}", old.id), |(n, ..)| n),
    };
    let (key_name, key, created) = new_key(home, key, &old, &old_name)?;
    let wallet = home.owner_provider(chain, &owner)?;

    home.progress(&format!("the owner signs rotateSessionKey({}, `{key_name}`)…", old.id));
    let rotated = async {
        if account.kind.is_modular() {
            let rotate = SakAccount::rotateSessionKeyCall { id: old.id, signer: key };
            return super::acts::module_act(home, chain, &account, &rotate, "rotateSessionKey").await;
        }
        let pending = SakAccount::new(account.address, &wallet)
            .rotateSessionKey(old.id, key)
            .send()
            .await
            .map_err(|e| super::owner_call_error(e, "rotateSessionKey"))?;
        super::mined(home, pending, "rotateSessionKey").await
    }
    .await;
    let receipt = match rotated {
        Ok(r) => r,
        Err(e) => {
            // Nothing changed on-chain: the key made for it goes, the session keeps its key.
            if let Some(path) = &created {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.wrap(format!("rotating session #{}: its key is unchanged", old.id)));
        }
    };
    State::update(&home.paths.state(), |s| {
        let sessions = &mut s.networks.entry(home.network_name.clone()).or_default().sessions;
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
    Ok(Rotated {
        network: home.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        id: old.id,
        old_key: old.signer,
        key,
        key_name,
        key_created: created.is_some(),
        transaction: receipt.transaction_hash,
        policy: old.policy,
    })
}

/// The key the session goes to: `wanted` (an existing key, or a new one by that name), else a
/// new `<old>-rN`. Returns (name, address, the file made: deleted if the rotation fails).
fn new_key(
    home: &Home,
    wanted: Option<&str>,
    old: &OnChain,
    old_name: &str,
) -> Result<(String, Address, Option<std::path::PathBuf>)> {
    let existing = home.session_keys()?;
    let name = match wanted {
        Some(k) => {
            let found = existing
                .iter()
                .find(|(n, _, a)| n == k || k.parse::<Address>().ok().is_some_and(|k| Some(k) == *a));
            if let Some((n, path, _)) = found {
                let address = crate::keystore_address(path)?
                    .ok_or_else(|| crate::Error::msg(format!("the key file {} vanished", path.display())))?;
                if address == old.signer {
                    bail!(Hinted::new(
                        format!("`{n}` is session #{}'s own key: rotating needs another key", old.id),
                        "pass a different --key, or none for a new key",
                    ));
                }
                let held: Vec<u32> = home
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
            k.to_owned()
        }
        None => rotated_name(old_name, &existing.iter().map(|(n, ..)| n.clone()).collect::<Vec<_>>()),
    };
    if !valid_name(&name) {
        bail!(Hinted::new(
            format!("`{name}` is not a usable key name"),
            "use letters, digits, `-`, `_` and `.` (up to 64, not starting with `.` or `-`)",
        ));
    }
    let path = home.paths.session_keys_dir().join(format!("{name}.json"));
    let password = home.new_key_password()?;
    let key = LocalKey::generate()?;
    home.progress(&format!("creating the key `{name}` (scrypt, about a second)…"));
    keystore::save(&path, &key, &password)?;
    Ok((name, key.address(), Some(path)))
}

#[cfg(test)]
mod tests {
    use super::rotated_name;

    #[test]
    fn rotated_keys_count_up_from_r2() {
        let taken = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(rotated_name("bot", &taken(&["bot"])), "bot-r2");
        assert_eq!(rotated_name("bot", &taken(&["bot", "bot-r2"])), "bot-r3");
        assert_eq!(rotated_name("bot-r2", &taken(&["bot", "bot-r2"])), "bot-r3");
        assert_eq!(rotated_name("price-r-bot", &taken(&[])), "price-r-bot-r2");
        assert_eq!(rotated_name("bot-r", &taken(&[])), "bot-r-r2");
    }
}
