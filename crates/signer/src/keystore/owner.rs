use super::{LocalKey, Password};
use crate::Result;
use alloy::{primitives::Address, signers::Signer};
use std::{fmt, path::Path, sync::Arc};

/// The wallet owner's signer: a local keystore key, or (behind the `ledger` and `aws` cargo
/// features) a Ledger device or an AWS KMS key, which never leave their hardware.
///
/// `Debug` shows the backend and the address only.
#[derive(Clone)]
pub struct OwnerSigner {
    backend: &'static str,
    address: Address,
    inner: Arc<dyn Signer + Send + Sync>,
}

impl OwnerSigner {
    /// An owner key held in memory.
    pub fn local(key: LocalKey) -> Self {
        let address = key.address();
        Self { backend: "local", address, inner: Arc::new(key.into_signer()) }
    }

    /// An owner key from a v3 keystore file (same format and checks as session keys).
    ///
    /// ```no_run
    /// use sak_signer::keystore::{OwnerSigner, PasswordSource};
    /// let password = PasswordSource::Fd(3).read()?;
    /// let owner = OwnerSigner::from_keystore("owner.json".as_ref(), &password)?;
    /// println!("owner {}", owner.address());
    /// # Ok::<(), sak_signer::Error>(())
    /// ```
    pub fn from_keystore(path: &Path, password: &Password) -> Result<Self> {
        super::load(path, password).map(Self::local)
    }

    /// The first account on a connected Ledger at `path` (Ethereum app open).
    #[cfg(feature = "ledger")]
    pub async fn ledger(
        path: alloy::signers::ledger::HDPath,
        chain_id: Option<alloy::primitives::ChainId>,
    ) -> Result<Self> {
        let signer = alloy::signers::ledger::LedgerSigner::new(path, chain_id)
            .await
            .map_err(|e| crate::Error::OwnerSigner { backend: "ledger", message: e.to_string() })?;
        let address = signer.address();
        Ok(Self { backend: "ledger", address, inner: Arc::new(signer) })
    }

    /// An AWS KMS key (key spec `ECC_SECG_P256K1`), with credentials and region from the
    /// standard AWS environment (variables, profile, SSO, instance role). The identity needs
    /// `kms:GetPublicKey` and `kms:Sign` only.
    #[cfg(feature = "aws")]
    pub async fn aws_kms(key_id: String, chain_id: Option<alloy::primitives::ChainId>) -> Result<Self> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = alloy::signers::aws::aws_sdk_kms::Client::new(&config);
        Self::aws_kms_with_client(client, key_id, chain_id).await
    }

    /// An AWS KMS key through a client the caller configured.
    #[cfg(feature = "aws")]
    pub async fn aws_kms_with_client(
        client: alloy::signers::aws::aws_sdk_kms::Client,
        key_id: String,
        chain_id: Option<alloy::primitives::ChainId>,
    ) -> Result<Self> {
        let signer = alloy::signers::aws::AwsSigner::new(client, key_id, chain_id)
            .await
            .map_err(|e| crate::Error::OwnerSigner { backend: "aws-kms", message: e.to_string() })?;
        let address = signer.address();
        Ok(Self { backend: "aws-kms", address, inner: Arc::new(signer) })
    }

    /// The owner's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// `local`, `ledger` or `aws-kms`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The alloy signer, to sign hashes, messages and typed data with.
    pub fn signer(&self) -> &(dyn Signer + Send + Sync) {
        &*self.inner
    }
}

impl fmt::Debug for OwnerSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerSigner").field("backend", &self.backend).field("address", &self.address).finish()
    }
}
