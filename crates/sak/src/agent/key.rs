//! The session key an agent signs with.

use super::*;

/// The session's key and its name: `$SAK_SESSION_KEY` (a hex key from a CI secret store),
/// else the key file `--key` names or the one the session was granted to from here, decrypted
/// with the session keys' passphrase ([`Ctx::key_password`]). Either must be `signer`.
pub(super) fn session_key(
    home: &Home,
    args: &Options,
    account: &AccountRecord,
    id: u32,
    signer: Address,
) -> Result<(String, LocalKey)> {
    let not_its = |name: &str, declared: Option<Address>| -> crate::Error {
        Hinted::new(
            format!(
                "key `{name}` ({}) is not session {id}'s key {signer}",
                declared.map_or_else(|| "no address".into(), |a| a.to_string())
            ),
            "pass --key with the key the session was granted to (`sak session list` shows it)",
        )
        .into()
    };
    if let Some(held) = &args.held_key {
        if held.key.address() != signer {
            return Err(not_its(&held.name, Some(held.key.address())));
        }
        return Ok((held.name.clone(), LocalKey::from_signer((*held.key).clone())));
    }
    let from_env = key_from_env(
        SESSION_KEY_ENV,
        "set it to the session key's 32 bytes in hex (`sak key export NAME --unencrypted --stdout`)",
    )?;
    if let Some(key) = from_env {
        let name = format!("${SESSION_KEY_ENV}");
        if key.address() != signer {
            return Err(not_its(&name, Some(key.address())));
        }
        return Ok((name, LocalKey::from_signer(key)));
    }
    let (name, path) = match &args.key {
        Some(key) => home.session_key_path(key)?,
        None => match home.session_record(account.address, id)? {
            Some(record) => home.session_key_path(&record.key_name)?,
            None => {
                return Err(Hinted::new(
                    format!("session {id} was not granted from this home: which key signs for it?"),
                    format!("pass --key NAME (the key of {signer}; `sak key list` shows yours), or set ${SESSION_KEY_ENV}"),
                )
                .into());
            }
        },
    };
    let declared = keystore_address(&path)?;
    if declared != Some(signer) {
        return Err(not_its(&name, declared));
    }
    let key = keystore::load(&path, &home.key_password()?)
        .wrap_err_with(|| format!("loading session key `{name}`"))?;
    Ok((name, key))
}

/// The key in hex that the environment variable `var` holds (a CI secret store's), if set;
/// never printed, not even in the error when it does not parse (`hint` says what it must be).
pub(super) fn key_from_env(var: &str, hint: &str) -> Result<Option<PrivateKeySigner>> {
    let Some(secret) = std::env::var_os(var) else { return Ok(None) };
    let text = zeroize::Zeroizing::new(secret.to_string_lossy().trim().to_owned());
    let key = text
        .parse::<PrivateKeySigner>()
        .map_err(|_| Hinted::new(format!("${var} is not a hex private key"), hint))?;
    Ok(Some(key))
}

/// A session key in hex, for CI secret stores: used instead of a key file, never printed.
pub(super) const SESSION_KEY_ENV: &str = "SAK_SESSION_KEY";

/// A session key decrypted once and held in memory (a daemon's), with its name. `Debug` shows
/// the address only.
#[derive(Clone)]
pub struct HeldKey {
    name: String,
    key: Arc<PrivateKeySigner>,
}

impl HeldKey {
    /// The key's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }
}

impl std::fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldKey({} {})", self.name, self.key.address())
    }
}

impl Agent<'_> {
    /// The session key this agent opened, to hold for later operations ([`Options::held_key`]).
    pub fn held_key(&self) -> HeldKey {
        HeldKey { name: self.key_name.clone(), key: Arc::new(self.key.signer().clone()) }
    }
}
