//! Web3 Secret Storage v3: scrypt + AES-128-CTR + keccak-256 MAC, as geth writes it.

use super::{LocalKey, Password};
use crate::{Error, Result};
use aes::cipher::{KeyIvInit, StreamCipher};
use alloy::primitives::Address;
use rand::{TryRngCore, rngs::OsRng};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use std::path::Path;
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Largest scrypt memory (128 · r · N bytes) accepted when decrypting: 1 GiB, so a hostile
/// file cannot make us allocate without bound.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// scrypt cost parameters. Files are always written with a derived key length of 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptParams {
    /// log2 of the CPU/memory cost N.
    pub log_n: u8,
    /// Block size r.
    pub r: u32,
    /// Parallelism p.
    pub p: u32,
}

impl ScryptParams {
    /// geth's `StandardScryptN` parameters: N = 2^18, r = 8, p = 1 (256 MiB, about a second).
    /// eth-keystore (and so alloy's `encrypt_keystore`) defaults to N = 2^13, 32 times cheaper
    /// to brute-force.
    pub const STANDARD: Self = Self { log_n: 18, r: 8, p: 1 };

    fn is_at_least_standard(&self) -> bool {
        self.log_n >= Self::STANDARD.log_n && self.r >= Self::STANDARD.r && self.p >= 1
    }

    fn memory(&self) -> u64 {
        128u64.saturating_mul(u64::from(self.r)).saturating_mul(1u64 << self.log_n.min(63))
    }

    fn to_scrypt(self) -> Result<scrypt::Params> {
        if self.log_n == 0
            || self.log_n > 24
            || self.p == 0
            || self.p > 16
            || self.memory() > MAX_SCRYPT_MEMORY
        {
            return Err(Error::UnsupportedKeystore {
                what: format!("scrypt parameters n=2^{} r={} p={}", self.log_n, self.r, self.p),
            });
        }
        scrypt::Params::new(self.log_n, self.r, self.p).map_err(|_| Error::UnsupportedKeystore {
            what: format!("scrypt parameters n=2^{} r={} p={}", self.log_n, self.r, self.p),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct KeystoreJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(alias = "Crypto")]
    crypto: CryptoJson,
    id: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct CryptoJson {
    cipher: String,
    cipherparams: CipherParamsJson,
    ciphertext: String,
    kdf: String,
    kdfparams: serde_json::Value,
    mac: String,
}

#[derive(Serialize, Deserialize)]
struct CipherParamsJson {
    iv: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptJson {
    dklen: u32,
    n: u64,
    p: u32,
    r: u32,
    salt: String,
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    OsRng.try_fill_bytes(buf).map_err(|e| Error::Io {
        context: "reading randomness from",
        path: "the operating system".into(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn derive(password: &Password, salt: &[u8], params: ScryptParams) -> Result<Zeroizing<[u8; 32]>> {
    let mut dk = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.expose(), salt, &params.to_scrypt()?, dk.as_mut())
        .map_err(|_| Error::UnsupportedKeystore { what: "scrypt output length".into() })?;
    Ok(dk)
}

fn mac(dk: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    Keccak256::new().chain_update(&dk[16..32]).chain_update(ciphertext).finalize().into()
}

fn uuid_v4() -> Result<String> {
    let mut b = [0u8; 16];
    fill_random(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Encrypts `key` as a v3 keystore JSON document with [`ScryptParams::STANDARD`].
pub fn encrypt(key: &LocalKey, password: &Password) -> Result<String> {
    encrypt_with(key, password, ScryptParams::STANDARD)
}

/// Encrypts `key` with the given scrypt parameters, which must be at least as strong as
/// [`ScryptParams::STANDARD`].
pub fn encrypt_with(key: &LocalKey, password: &Password, params: ScryptParams) -> Result<String> {
    if !params.is_at_least_standard() {
        return Err(Error::UnsupportedKeystore {
            what: format!(
                "scrypt parameters n=2^{} r={} p={} are weaker than n=2^18 r=8 p=1",
                params.log_n, params.r, params.p
            ),
        });
    }
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    fill_random(&mut salt)?;
    fill_random(&mut iv)?;
    let dk = derive(password, &salt, params)?;

    let mut ciphertext = key.secret_bytes();
    let enc_key: [u8; 16] = dk[..16].try_into().expect("16 bytes");
    let enc_key = Zeroizing::new(enc_key);
    Aes128Ctr::new(&(*enc_key).into(), &iv.into()).apply_keystream(ciphertext.as_mut());
    let mac = mac(&dk, ciphertext.as_ref());

    let doc = KeystoreJson {
        address: Some(hex::encode(key.address())),
        crypto: CryptoJson {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParamsJson { iv: hex::encode(iv) },
            ciphertext: hex::encode(ciphertext.as_ref()),
            kdf: "scrypt".into(),
            kdfparams: serde_json::to_value(ScryptJson {
                dklen: 32,
                n: 1u64 << params.log_n,
                p: params.p,
                r: params.r,
                salt: hex::encode(salt),
            })
            .expect("plain struct"),
            mac: hex::encode(mac),
        },
        id: uuid_v4()?,
        version: 3,
    };
    Ok(serde_json::to_string_pretty(&doc).expect("plain struct"))
}

/// Decrypts a v3 keystore JSON document (ours, geth's, or eth-keystore's with its default
/// N = 2^13; weaker-than-standard files load with a warning).
pub fn decrypt(json: &[u8], password: &Password) -> Result<LocalKey> {
    decrypt_at(json, password, None)
}

fn unhex(path: Option<&Path>, field: &str, s: &str) -> Result<Vec<u8>> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .map_err(|_| Error::malformed(path, format!("`{field}` is not hex")))
}

pub(crate) fn decrypt_at(json: &[u8], password: &Password, path: Option<&Path>) -> Result<LocalKey> {
    let doc: KeystoreJson =
        serde_json::from_slice(json).map_err(|e| Error::malformed(path, e.to_string()))?;
    if doc.version != 3 {
        return Err(Error::UnsupportedKeystore { what: format!("version {}", doc.version) });
    }
    let c = &doc.crypto;
    if c.cipher != "aes-128-ctr" {
        return Err(Error::UnsupportedKeystore { what: format!("cipher {}", c.cipher) });
    }
    if c.kdf != "scrypt" {
        return Err(Error::UnsupportedKeystore { what: format!("kdf {}", c.kdf) });
    }
    let kdf: ScryptJson = serde_json::from_value(c.kdfparams.clone())
        .map_err(|e| Error::malformed(path, format!("kdfparams: {e}")))?;
    if kdf.dklen != 32 {
        return Err(Error::UnsupportedKeystore { what: format!("dklen {}", kdf.dklen) });
    }
    if !kdf.n.is_power_of_two() || kdf.n < 2 {
        return Err(Error::malformed(path, format!("scrypt n = {} is not a power of two", kdf.n)));
    }
    let params = ScryptParams { log_n: kdf.n.trailing_zeros() as u8, r: kdf.r, p: kdf.p };
    if !params.is_at_least_standard() {
        tracing::warn!(
            path = ?path,
            n = kdf.n,
            r = kdf.r,
            p = kdf.p,
            "keystore uses scrypt parameters weaker than n=2^18 r=8 p=1; re-encrypt it"
        );
    }
    let salt = unhex(path, "salt", &kdf.salt)?;
    let iv: [u8; 16] = unhex(path, "iv", &c.cipherparams.iv)?
        .try_into()
        .map_err(|_| Error::malformed(path, "`iv` is not 16 bytes"))?;
    let ciphertext = unhex(path, "ciphertext", &c.ciphertext)?;
    if ciphertext.len() != 32 {
        return Err(Error::malformed(path, "`ciphertext` is not 32 bytes"));
    }
    let expected_mac = unhex(path, "mac", &c.mac)?;

    let dk = derive(password, &salt, params)?;
    let actual_mac = mac(&dk, &ciphertext);
    let differs = expected_mac.len() != 32
        || expected_mac.iter().zip(actual_mac.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
    if differs {
        return Err(Error::WrongPassword { path: path.map(Into::into) });
    }

    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&ciphertext);
    let dec_key: Zeroizing<[u8; 16]> = Zeroizing::new(dk[..16].try_into().expect("16 bytes"));
    Aes128Ctr::new(&(*dec_key).into(), &iv.into()).apply_keystream(secret.as_mut());
    let key = LocalKey::from_secret(secret.as_ref())?;

    if let Some(claimed) = doc.address.as_deref().filter(|a| !a.is_empty()) {
        let claimed: Address = unhex(path, "address", claimed)?
            .as_slice()
            .try_into()
            .map_err(|_| Error::malformed(path, "`address` is not 20 bytes"))?;
        if claimed != key.address() {
            return Err(Error::AddressMismatch { claimed, actual: key.address() });
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keystore_uses_standard_scrypt_params() {
        let key = LocalKey::generate().unwrap();
        let password = Password::new("correct horse").unwrap();
        let json: serde_json::Value = serde_json::from_str(&encrypt(&key, &password).unwrap()).unwrap();
        let c = &json["crypto"];
        assert_eq!(json["version"], 3);
        assert_eq!(c["kdf"], "scrypt");
        assert_eq!(c["cipher"], "aes-128-ctr");
        assert_eq!(c["kdfparams"]["n"], 262_144);
        assert_eq!(c["kdfparams"]["r"], 8);
        assert_eq!(c["kdfparams"]["p"], 1);
        assert_eq!(c["kdfparams"]["dklen"], 32);
        assert_eq!(c["kdfparams"]["salt"].as_str().unwrap().len(), 64);
        assert_eq!(c["cipherparams"]["iv"].as_str().unwrap().len(), 32);
        assert_eq!(json["address"], hex::encode(key.address()));
        assert_eq!(json["id"].as_str().unwrap().as_bytes()[14], b'4');
    }

    #[test]
    fn weaker_params_are_refused_for_writing() {
        let key = LocalKey::generate().unwrap();
        let password = Password::new("pw").unwrap();
        let err = encrypt_with(&key, &password, ScryptParams { log_n: 13, r: 8, p: 1 }).unwrap_err();
        assert!(matches!(err, Error::UnsupportedKeystore { .. }), "{err}");
    }

    #[test]
    fn hostile_kdf_params_are_refused_before_allocating() {
        let key = LocalKey::generate().unwrap();
        let password = Password::new("pw").unwrap();
        let json = encrypt(&key, &password).unwrap().replace("262144", &(1u64 << 30).to_string());
        let err = decrypt(json.as_bytes(), &password).unwrap_err();
        assert!(matches!(err, Error::UnsupportedKeystore { .. }), "{err}");
    }
}
