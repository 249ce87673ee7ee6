//! The agent's relayer: the key that pays for `handleOps` (self-bundled) and
//! `executeWithSession` (direct) and is refunded or not by the account. It is the agent's own,
//! never the owner's: `$SAK_RELAYER_KEY` (hex, from a secret store; never printed), else
//! `keys/relayer.json`, encrypted under the session keys' passphrase.

use super::*;

/// The environment variable that holds the relayer's key in hex.
pub const RELAYER_KEY_ENV: &str = "SAK_RELAYER_KEY";

/// `keys/relayer.json` in `home`.
pub fn relayer_path(home: &Home) -> std::path::PathBuf {
    home.paths.keys_dir().join("relayer.json")
}

/// The agent's relayer, if this home has one: `$SAK_RELAYER_KEY`, else `keys/relayer.json`.
pub fn relayer_key(home: &Home) -> Result<Option<PrivateKeySigner>> {
    let hint = "set it to the relayer's 32 bytes in hex, or unset it to use keys/relayer.json";
    if let Some(key) = key_from_env(RELAYER_KEY_ENV, hint)? {
        return Ok(Some(key));
    }
    let path = relayer_path(home);
    if !path.exists() {
        return Ok(None);
    }
    let key = keystore::load(&path, &home.key_password()?)
        .wrap_err("loading the relayer key (keys/relayer.json)")?;
    Ok(Some(key.into_signer()))
}

/// Makes `keys/relayer.json` (refused when there is one); returns its address, to be funded.
pub fn new_relayer(home: &Home) -> Result<Address> {
    let path = relayer_path(home);
    if path.exists() {
        return Err(Hinted::refused(
            format!("this home already has a relayer key ({})", path.display()),
            "`sak agent relayer show` prints its address and balance",
        )
        .into());
    }
    let key = LocalKey::generate()?;
    home.progress("encrypting the relayer key (scrypt, about a second)…");
    keystore::save(&path, &key, &home.new_key_password()?)?;
    Ok(key.address())
}
