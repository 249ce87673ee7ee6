use crate::{Error, Result};
use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use rand::{TryRngCore, rngs::OsRng};
use std::fmt;
use zeroize::Zeroizing;

/// A decrypted secp256k1 key held in memory: a session key, or a local owner key.
///
/// `Debug` shows the address only and there is no `Display`. The secret scalar lives inside
/// alloy's [`PrivateKeySigner`] (k256 `SigningKey`), which zeroizes it on drop.
pub struct LocalKey {
    signer: PrivateKeySigner,
}

impl LocalKey {
    /// A fresh key from the operating system's CSPRNG.
    ///
    /// ```
    /// let key = sak_signer::keystore::LocalKey::generate()?;
    /// assert_eq!(format!("{key:?}"), format!("LocalKey {{ address: {:?} }}", key.address()));
    /// # Ok::<(), sak_signer::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            OsRng.try_fill_bytes(bytes.as_mut()).map_err(|e| Error::Io {
                context: "reading randomness from",
                path: "the operating system".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
            // A 32-byte string is a valid scalar unless it is 0 or >= n (probability ~2^-128).
            if let Ok(signer) = PrivateKeySigner::from_slice(bytes.as_ref()) {
                tracing::debug!(address = %signer.address(), "generated a new key");
                return Ok(Self { signer });
            }
        }
    }

    /// Wraps an existing alloy signer (for example one of anvil's public dev keys in tests).
    pub fn from_signer(signer: PrivateKeySigner) -> Self {
        Self { signer }
    }

    /// The key's Ethereum address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The alloy signer, to sign hashes with.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// Unwraps into the alloy signer.
    pub fn into_signer(self) -> PrivateKeySigner {
        self.signer
    }

    /// The raw 32-byte secret, in a buffer zeroized on drop. Only for encryption.
    pub(crate) fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signer.to_bytes().0)
    }

    pub(crate) fn from_secret(bytes: &[u8]) -> Result<Self> {
        PrivateKeySigner::from_slice(bytes).map(Self::from_signer).map_err(|_| Error::InvalidKey)
    }
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").field("address", &self.address()).finish()
    }
}
