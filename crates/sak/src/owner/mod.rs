//! The owner's signer: the encrypted keystore, or a hardware wallet (Ledger or Trezor, with the
//! cargo feature `hardware`) that `sak owner use-device` named in `keys/owner-device.json`.
//!
//! A device signs the owner's transactions (grant, revoke, rotate, ownership, deployment, and
//! every act of a delegated EOA, which is one). It is not asked for what would need a bare hash
//! signed here (an EIP-7702 authorization, a smart account's owner user operation): those are
//! refused with what to do instead (see [`Owner::key`]).

mod accounts;
mod acts;
pub mod approvals;
mod exec;
mod grant;
mod revoke;
mod rotate;

pub use accounts::{
    AccountInfo, Balance, account_info, adopt, balances, create_account, free_name, require_code,
    require_gas_money,
};
pub use acts::{
    NOT_OWNER_HINT, granted_id, mined, owner_call_error, send_grant, send_revoke, send_revoke_all,
};
pub use exec::{execute, simulate};
pub use grant::{Granted, grant};
pub use revoke::{Ended, Revoked, RevokedAll, revoke, revoke_all};
pub use rotate::{Rotated, rotate, rotated_name};

use crate::{Hinted, Result};
use alloy::{network::EthereumWallet, primitives::Address, signers::local::PrivateKeySigner};
use sak_signer::keystore::LocalKey;
use serde::{Deserialize, Serialize};

/// A hardware wallet model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// A Ledger with its Ethereum app open (Ledger Live path m/44'/60'/INDEX'/0/0).
    Ledger,
    /// A Trezor (path m/44'/60'/0'/0/INDEX).
    Trezor,
}

impl Device {
    /// `ledger` or `trezor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ledger => "ledger",
            Self::Trezor => "trezor",
        }
    }
}

/// `keys/owner-device.json`: which device holds the owner key, and the address it showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFile {
    /// The model.
    pub device: Device,
    /// The account index on the device.
    pub index: u32,
    /// The address the device showed for it.
    pub address: Address,
}

/// The owner, ready to sign.
pub enum Owner {
    /// The keystore's key, decrypted.
    Key(LocalKey),
    /// A connected hardware wallet.
    Device {
        /// Which device, and the address it showed.
        file: DeviceFile,
        /// Signs on the device.
        wallet: EthereumWallet,
    },
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Owner({} {})", self.backend(), self.address())
    }
}

impl Owner {
    /// The owner's address.
    pub fn address(&self) -> Address {
        match self {
            Self::Key(k) => k.address(),
            Self::Device { file, .. } => file.address,
        }
    }

    /// `local`, `ledger` or `trezor`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Key(_) => "local",
            Self::Device { file, .. } => file.device.as_str(),
        }
    }

    /// Signs the owner's transactions.
    pub fn wallet(&self) -> EthereumWallet {
        match self {
            Self::Key(k) => EthereumWallet::from(k.signer().clone()),
            Self::Device { wallet, .. } => wallet.clone(),
        }
    }

    /// The keystore's key, for `what` (which signs a bare hash); a device is refused with what
    /// to do instead.
    pub fn key(&self, what: &str) -> Result<&PrivateKeySigner> {
        match self {
            Self::Key(k) => Ok(k.signer()),
            Self::Device { file, .. } => Err(Hinted::refused(
                format!(
                    "the owner is a {} and sak does not have it sign {what} (a bare hash, which the device \
                     will not sign blind)",
                    file.device.as_str()
                ),
                "do it with the device's own wallet app, or from a home whose owner is a keystore \
                 (`sak owner import`); transactions (grant, revoke, revoke-all, rotate) the device signs here",
            )
            .into()),
        }
    }
}

/// Connects to `device` and reads the address at `index`; the wallet signs for `chain_id`.
#[cfg(feature = "hardware")]
pub async fn connect(device: Device, index: u32, chain_id: Option<u64>) -> Result<(Address, EthereumWallet)> {
    use alloy::signers::Signer;
    let index = index as usize;
    let unreachable = |e: String| {
        crate::Error::from(Hinted::new(
            format!("cannot reach the {}: {e}", device.as_str()),
            match device {
                Device::Ledger => {
                    "plug it in, unlock it and open its Ethereum app, then run the command again"
                }
                Device::Trezor => "plug it in and unlock it, then run the command again",
            },
        ))
    };
    Ok(match device {
        Device::Ledger => {
            let s = alloy_signer_ledger::LedgerSigner::new(
                alloy_signer_ledger::HDPath::LedgerLive(index),
                chain_id,
            )
            .await
            .map_err(|e| unreachable(e.to_string()))?;
            (s.address(), EthereumWallet::from(s))
        }
        Device::Trezor => {
            let s = alloy_signer_trezor::TrezorSigner::new(
                alloy_signer_trezor::HDPath::TrezorLive(index),
                chain_id,
            )
            .await
            .map_err(|e| unreachable(e.to_string()))?;
            (s.address(), EthereumWallet::from(s))
        }
    })
}

/// Without the `hardware` feature there is no device to reach: an error that says how to get it.
#[cfg(not(feature = "hardware"))]
pub async fn connect(
    device: Device,
    _index: u32,
    _chain_id: Option<u64>,
) -> Result<(Address, EthereumWallet)> {
    Err(Hinted::new(
        format!(
            "this sak was built without hardware wallet support, so it cannot reach the {}",
            device.as_str()
        ),
        "build it with the `hardware` feature: `cargo install --path crates/cli --features hardware`",
    )
    .into())
}
