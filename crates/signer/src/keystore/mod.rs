//! Keys: session keys and local owner keys in scrypt-hardened Web3 Secret Storage v3 files,
//! passwords from the environment, a file descriptor or a private file, and owner signers.

mod files;
mod key;
mod owner;
mod password;
mod v3;

pub use files::{create_private_dir, load, save};
pub use key::LocalKey;
pub use owner::OwnerSigner;
pub use password::{Password, PasswordSource};
pub use v3::{ScryptParams, decrypt, encrypt, encrypt_with};
