//! The signature encodings sak accounts accept. (Batch call data: `sak_policy::encode_execute`,
//! re-exported as [`crate::execute_batch`].)

use crate::error::{Error, Result};
use alloy::{
    primitives::{Address, B256, Bytes, Signature, U256, aliases::U192, b256, keccak256},
    signers::Signer,
    sol_types::SolValue,
};
use std::{fmt, sync::Arc};

// The wire format is written down in contracts/README ("Wire format") and pinned by the
// shared vectors in contracts/test/vectors/envelope.json.

/// Tag byte of a session signature (format 2).
pub const SESSION_TAG: u8 = 0x02;
/// Length of a session signature: tag, uint32 id, uint40 clock, uint40 deadline, r, s, v.
pub const SESSION_SIGNATURE_LEN: usize = 1 + 4 + 5 + 5 + 65;
/// The EIP-712 domain of session signatures: `EIP712Domain(string name,string version)` with
/// name "SakSession" and version "2" (the user operation hash inside binds chain and account).
pub const SESSION_DOMAIN_SEPARATOR: B256 =
    b256!("0xe4711062005f1517384a3f24ae19dcf4da5039fb5cd91d906d709b0f81614cb9");
/// `keccak256("SakSessionOp(bytes32 userOpHash,uint32 id,uint40 clock,uint40 deadline)")`.
pub const SESSION_OP_TYPEHASH: B256 =
    b256!("0xd14ff371924f6424330b8c10361671249837a6e0bc7b7ef95f4ef57682475033");
/// The top 32 bits of a session operation's EntryPoint nonce on sak's accounts ("sak" 0x01):
/// nonce = tag ‖ session id ‖ lane (128 bits) ‖ sequence (64 bits). Owner operations refuse it.
pub const SESSION_NONCE_TAG: u32 = 0x7361_6b01;
/// How long a session operation stays valid after its clock claim unless told otherwise: the
/// signed deadline, after which no EntryPoint includes it.
pub const DEFAULT_SESSION_TTL: u64 = 600;

/// What a session key signs: the EIP-712 digest of `SakSessionOp(userOpHash, id, clock,
/// deadline)` under [`SESSION_DOMAIN_SEPARATOR`].
pub fn session_digest(user_op_hash: B256, id: u32, clock: u64, deadline: u64) -> B256 {
    let struct_hash = keccak256(
        (SESSION_OP_TYPEHASH, user_op_hash, U256::from(id), U256::from(clock), U256::from(deadline))
            .abi_encode(),
    );
    let mut message = [0u8; 66];
    message[..2].copy_from_slice(&[0x19, 0x01]);
    message[2..34].copy_from_slice(SESSION_DOMAIN_SEPARATOR.as_slice());
    message[34..].copy_from_slice(struct_hash.as_slice());
    keccak256(message)
}

/// `0x02 ‖ uint32 id ‖ uint40 clock ‖ uint40 deadline ‖ r ‖ s ‖ v` (v = 27/28).
pub fn encode_session_signature(id: u32, clock: u64, deadline: u64, signature: &Signature) -> Bytes {
    let mut out = Vec::with_capacity(SESSION_SIGNATURE_LEN);
    out.push(SESSION_TAG);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&clock.to_be_bytes()[3..]);
    out.extend_from_slice(&deadline.to_be_bytes()[3..]);
    out.extend_from_slice(&signature.as_bytes());
    out.into()
}

/// The (id, clock, deadline) of a session signature; `None` for anything else (an owner's).
pub fn session_envelope(signature: &[u8]) -> Option<(u32, u64, u64)> {
    if signature.len() != SESSION_SIGNATURE_LEN || signature[0] != SESSION_TAG {
        return None;
    }
    let u40 = |b: &[u8]| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let id = u32::from_be_bytes(signature[1..5].try_into().expect("4 bytes"));
    Some((id, u40(&signature[5..10]), u40(&signature[10..15])))
}

/// Session `id`'s nonce key in `lane` on sak's own accounts (SakAccount, Sak7702Account):
/// `SESSION_NONCE_TAG ‖ id ‖ lane`. Each session has 2^128 lanes of its own.
pub fn session_nonce_key(id: u32, lane: u128) -> U192 {
    U192::from((U256::from(SESSION_NONCE_TAG) << 160) | (U256::from(id) << 128) | U256::from(lane))
}

/// The session whose lane a full EntryPoint `nonce` (key ‖ sequence) is in on sak's own
/// accounts ([`session_nonce_key`]); None for a key without the session tag (the owner's).
pub fn session_of_nonce(nonce: U256) -> Option<u32> {
    let id: U256 = (nonce >> 192) & U256::from(u32::MAX);
    (nonce >> 224 == U256::from(SESSION_NONCE_TAG)).then(|| id.to::<u32>())
}

/// Session `id`'s nonce key on a modular (ERC-7579) account through `validator`:
/// `validator ‖ id` (the account routes validation by the top 20 bytes).
pub fn module_nonce_key(validator: Address, id: u32) -> U192 {
    U192::from((U256::from_be_slice(validator.as_slice()) << 32) | U256::from(id))
}

/// Whether the contracts admit nonce `key` for session `id`: on sak's own accounts the tag and
/// the id ([`session_nonce_key`]); on a modular account (`modular`), the id in the key's low 32
/// bits ([`module_nonce_key`]; the account itself checks the validator part).
pub fn in_session_lanes(key: U192, id: u32, modular: bool) -> bool {
    let key = U256::from(key);
    if modular {
        key & U256::from(u32::MAX) == U256::from(id)
    } else {
        key >> 128 == (U256::from(SESSION_NONCE_TAG) << 32 | U256::from(id))
    }
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
    /// is the chain's time when signing, passed to [`OpSigner::sign`]; the signed deadline is
    /// [`DEFAULT_SESSION_TTL`] after it.
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
                let deadline = clock + DEFAULT_SESSION_TTL;
                let digest = session_digest(user_op_hash, *id, clock, deadline);
                let sig = key.sign_hash(&digest).await.map_err(Error::Signing)?;
                Ok(encode_session_signature(*id, clock, deadline, &sig))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    #[tokio::test]
    async fn session_signature_is_tag_id_clock_deadline_then_ecdsa_over_the_digest() {
        let key = PrivateKeySigner::random();
        let hash = B256::repeat_byte(7);
        let clock = 0x05_0607_0809;
        let sig = OpSigner::session(key.clone(), 0x0102_0304).sign(hash, clock).await.unwrap();
        assert_eq!(sig.len(), SESSION_SIGNATURE_LEN);
        assert_eq!(&sig[..10], &[2, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let deadline = clock + DEFAULT_SESSION_TTL;
        assert_eq!(session_envelope(&sig), Some((0x0102_0304, clock, deadline)));
        let ecdsa = Signature::from_raw(&sig[15..]).unwrap();
        let digest = session_digest(hash, 0x0102_0304, clock, deadline);
        assert_eq!(ecdsa.recover_address_from_prehash(&digest).unwrap(), key.address());
        assert!(matches!(sig[79], 27 | 28));
    }

    #[test]
    fn the_domain_and_typehash_are_what_their_strings_say() {
        let domain = keccak256(
            (keccak256("EIP712Domain(string name,string version)"), keccak256("SakSession"), keccak256("2"))
                .abi_encode(),
        );
        assert_eq!(domain, SESSION_DOMAIN_SEPARATOR);
        assert_eq!(
            keccak256("SakSessionOp(bytes32 userOpHash,uint32 id,uint40 clock,uint40 deadline)"),
            SESSION_OP_TYPEHASH
        );
    }

    #[test]
    fn session_nonce_keys_carry_the_tag_and_the_id() {
        let key = session_nonce_key(7, 3);
        let nonce = U256::from(key) << 64;
        assert_eq!(session_of_nonce(nonce | U256::from(u64::MAX)), Some(7));
        assert_eq!(
            session_of_nonce(U256::from(session_nonce_key(u32::MAX, u128::MAX)) << 64),
            Some(u32::MAX)
        );
        assert_eq!(session_of_nonce(U256::from(5)), None);
        assert_eq!(session_of_nonce(U256::from(7) << 192), None);
        assert_eq!(nonce >> 224, U256::from(SESSION_NONCE_TAG));
        assert_eq!((nonce >> 192) & U256::from(u32::MAX), U256::from(7));
        assert!(in_session_lanes(key, 7, false));
        assert!(!in_session_lanes(key, 8, false));
        assert!(!in_session_lanes(U192::ZERO, 0, false));
        assert!(!in_session_lanes(session_nonce_key(7, 3), 7, true));
        let validator = Address::repeat_byte(0xab);
        let m = U256::from(module_nonce_key(validator, 9)) << 64;
        assert_eq!(Address::from_word(B256::from(m >> 96)), validator);
        assert_eq!((m >> 64) & U256::from(u32::MAX), U256::from(9));
        assert!(in_session_lanes(module_nonce_key(validator, 9), 9, true));
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
