//! [`Kit`]: a started anvil with the stack deployed, ready for tests and `sak node up`.

use crate::{
    anvil::AnvilNode,
    config::Profile,
    deploy::{Deployment, deploy},
    error::{Error, Result},
    toolchain::Toolchain,
};
use alloy::{
    network::EthereumWallet,
    primitives::Address,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};

/// A local chain with EntryPoint v0.8, the canonical sample accounts and a seeded Uniswap V2
/// pool. anvil stops when the kit is dropped.
///
/// ```no_run
/// # async fn demo() -> sak_node::Result<()> {
/// use sak_node::{Kit, Profile};
/// let kit = Kit::start(Profile::test()).await?;
/// println!("EntryPoint v0.8 at {} on {}", kit.deployment().entry_point, kit.rpc_url());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Kit {
    node: AnvilNode,
    profile: Profile,
    chain_id: u64,
    provider: DynProvider,
    deployment: Deployment,
}

impl Kit {
    /// Starts anvil for `profile` (from the project's npm toolchain) and deploys the stack.
    pub async fn start(profile: Profile) -> Result<Self> {
        let toolchain = Toolchain::locate()?;
        Self::start_with(profile, &toolchain).await
    }

    /// Like [`Kit::start`] with an explicit toolchain.
    pub async fn start_with(profile: Profile, toolchain: &Toolchain) -> Result<Self> {
        tracing::info!(profile = %profile.name, "starting anvil");
        let node = AnvilNode::spawn(&toolchain.anvil()?, &profile)?;
        let signers = node.dev_signers();
        let Some(deployer) = signers.first() else {
            return Err(Error::AnvilStart { reason: "anvil reported no dev accounts".into() });
        };
        let mut wallet = EthereumWallet::from(deployer.clone());
        for signer in &signers[1..] {
            wallet.register_signer(signer.clone());
        }
        let url = node
            .endpoint()
            .parse()
            .map_err(|e| Error::AnvilStart { reason: format!("bad endpoint: {e}") })?;
        let provider = ProviderBuilder::new().wallet(wallet).connect_http(url).erased();
        let chain_id = provider.get_chain_id().await.map_err(Error::rpc("eth_chainId"))?;
        tracing::info!(endpoint = node.endpoint(), chain_id, "deploying the stack");
        let deployment = deploy(&provider, toolchain, deployer.address()).await?;
        Ok(Self { node, profile, chain_id, provider, deployment })
    }

    /// HTTP JSON-RPC URL.
    pub fn rpc_url(&self) -> &str {
        self.node.endpoint()
    }

    /// The chain id the node reports.
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The profile the node was started from.
    pub const fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Deployed addresses.
    pub const fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// A provider whose wallet holds every dev account (the first one is the default sender).
    pub const fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Funded dev accounts: anvil's public test keys, for local chains only.
    pub fn dev_signers(&self) -> &[PrivateKeySigner] {
        self.node.dev_signers()
    }

    /// Addresses of the funded dev accounts.
    pub fn dev_accounts(&self) -> Vec<Address> {
        self.dev_signers().iter().map(PrivateKeySigner::address).collect()
    }

    /// The underlying anvil process.
    pub const fn node(&self) -> &AnvilNode {
        &self.node
    }

    /// The underlying anvil process, mutably (to poll whether it is still alive).
    pub const fn node_mut(&mut self) -> &mut AnvilNode {
        &mut self.node
    }
}
