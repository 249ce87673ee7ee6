//! The signature encodings sak accounts accept. (Batch call data: `sak_policy::encode_execute`,
//! re-exported as [`crate::execute_batch`].)

use crate::error::{Error, Result};
use alloy::{
    primitives::{Address, B256, Bytes, Signature, U256, keccak256},
    signers::Signer,
    sol_types::SolValue,
};
use std::{fmt, sync::Arc};

/// Tag byte of a session signature.
pub const SESSION_TAG: u8 = 0x01;
/// Length of a session signature: tag, uint32 id, uint40 clock, r, s, v.
pub const SESSION_SIGNATURE_LEN: usize = 1 + 4 + 5 + 65;

/// What a session key signs: `keccak256(abi.encode(userOpHash, uint32 id, uint40 clock))`.
pub fn session_digest(user_op_hash: B256, id: u32, clock: u64) -> B256 {
    keccak256((user_op_hash, U256::from(id), U256::from(clock)).abi_encode())
}

/// `0x01 ‖ uint32 id ‖ uint40 clock ‖ r ‖ s ‖ v` (v = 27/28).
pub fn encode_session_signature(id: u32, clock: u64, signature: &Signature) -> Bytes {
    let mut out = Vec::with_capacity(SESSION_SIGNATURE_LEN);
    out.push(SESSION_TAG);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&clock.to_be_bytes()[3..]);
    out.extend_from_slice(&signature.as_bytes());
    out.into()
}

/// An owner signature: `r ‖ s ‖ v` (65 bytes, v = 27/28) over the user operation hash.
pub fn encode_owner_signature(signature: &Signature) -> Bytes {
    signature.as_bytes().to_vec().into()
}

/// Who signs an operation for a sak account. Any alloy [`Signer`] (a local key, a keystore, a
/// hardware or KMS signer, sak's guarded signer) fits.
#[derive(Clone)]
pub enum OpSigner {
    /// The owner: 65 bytes over the user operation hash.
    Owner(Arc<dyn Signer + Send + Sync>),
    /// A session key with the session id the account granted. The clock claim (unix seconds)
    /// is the chain's time when signing, passed to [`OpSigner::sign`].
    Session {
        /// The session key.
        key: Arc<dyn Signer + Send + Sync>,
        /// The session id.
        id: u32,
    },
}

impl fmt::Debug for OpSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses only: never anything about the key.
        match self {
            Self::Owner(k) => f.debug_tuple("Owner").field(&k.address()).finish(),
            Self::Session { key, id } => {
                f.debug_struct("Session").field("key", &key.address()).field("id", id).finish()
            }
        }
    }
}

impl OpSigner {
    /// The owner.
    pub fn owner(key: impl Signer + Send + Sync + 'static) -> Self {
        Self::Owner(Arc::new(key))
    }

    /// Session `id` with its key.
    pub fn session(key: impl Signer + Send + Sync + 'static, id: u32) -> Self {
        Self::Session { key: Arc::new(key), id }
    }

    /// The signing key's address.
    pub fn address(&self) -> Address {
        match self {
            Self::Owner(k) | Self::Session { key: k, .. } => k.address(),
        }
    }

    /// The signature for `user_op_hash`; `clock` (chain time, unix seconds) is used by
    /// session signatures only.
    pub async fn sign(&self, user_op_hash: B256, clock: u64) -> Result<Bytes> {
        match self {
            Self::Owner(key) => {
                Ok(encode_owner_signature(&key.sign_hash(&user_op_hash).await.map_err(Error::Signing)?))
            }
            Self::Session { key, id } => {
                let sig =
                    key.sign_hash(&session_digest(user_op_hash, *id, clock)).await.map_err(Error::Signing)?;
                Ok(encode_session_signature(*id, clock, &sig))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    #[tokio::test]
    async fn session_signature_is_tag_id_clock_then_ecdsa_over_the_digest() {
        let key = PrivateKeySigner::random();
        let hash = B256::repeat_byte(7);
        let sig = OpSigner::session(key.clone(), 0x0102_0304).sign(hash, 0x05_0607_0809).await.unwrap();
        assert_eq!(sig.len(), SESSION_SIGNATURE_LEN);
        assert_eq!(&sig[..10], &[1, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let ecdsa = Signature::from_raw(&sig[10..]).unwrap();
        let digest = session_digest(hash, 0x0102_0304, 0x05_0607_0809);
        assert_eq!(ecdsa.recover_address_from_prehash(&digest).unwrap(), key.address());
        assert!(matches!(sig[74], 27 | 28));
    }

    #[tokio::test]
    async fn owner_signature_is_65_bytes_over_the_hash() {
        let key = PrivateKeySigner::random();
        let hash = B256::repeat_byte(9);
        let sig = OpSigner::owner(key.clone()).sign(hash, 0).await.unwrap();
        assert_eq!(sig.len(), 65);
        assert_eq!(
            Signature::from_raw(&sig).unwrap().recover_address_from_prehash(&hash).unwrap(),
            key.address()
        );
    }
}
