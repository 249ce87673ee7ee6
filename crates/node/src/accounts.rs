//! Accounts and sessions in a few lines: a funded sak smart account, and a granted session.

use crate::{
    Kit,
    error::{Error, Result},
};
use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use sak_contracts::{ISakSessions, MockERC20, SakAccount, SakAccountFactory};

/// ETH a new account gets (10 ETH), for gas prefunds.
pub const ACCOUNT_ETH: u128 = 10_000_000_000_000_000_000;
/// tUSD a new account gets (10,000,000 tUSD, 6 decimals).
pub const ACCOUNT_USD: u64 = 10_000_000_000_000;

impl Kit {
    /// Creates `owner`'s sak smart account (factory salt `salt`) and funds it with
    /// [`ACCOUNT_ETH`] and [`ACCOUNT_USD`]. `owner` must be a dev account (the kit's wallet
    /// signs for it later). Returns the account's address.
    pub async fn sak_account(&self, owner: Address, salt: B256) -> Result<Address> {
        self.account_from(self.deployment().sak_account_factory, owner, salt).await
    }

    /// [`Kit::sak_account`] for the modular form: `owner`'s `Sak7579Account`, with sak's
    /// `SessionKeyValidator` installed. Its owner acts through owner operations only.
    pub async fn sak_7579_account(&self, owner: Address, salt: B256) -> Result<Address> {
        self.account_from(self.deployment().sak_7579_account_factory, owner, salt).await
    }

    /// An account from `factory` (either factory: one interface), funded.
    async fn account_from(&self, factory: Address, owner: Address, salt: B256) -> Result<Address> {
        let d = self.deployment();
        let provider = self.provider();
        let factory = SakAccountFactory::new(factory, provider);
        let step = |what: &'static str| move |e: alloy::contract::Error| Error::deploy(what, e);
        let account = factory.getAddress(owner, salt).call().await.map_err(step("account address"))?;
        let created = factory.createAccount(owner, salt).send().await.map_err(step("account"))?;
        created.get_receipt().await.map_err(|e| Error::deploy("account", e))?;
        let fund = TransactionRequest::default().with_to(account).with_value(U256::from(ACCOUNT_ETH));
        let sent = provider.send_transaction(fund).await.map_err(Error::rpc("eth_sendTransaction"))?;
        sent.get_receipt().await.map_err(|e| Error::deploy("account funding", e))?;
        let usd = MockERC20::new(d.usd, provider);
        let minted = usd.mint(account, U256::from(ACCOUNT_USD)).send().await.map_err(step("tUSD"))?;
        minted.get_receipt().await.map_err(|e| Error::deploy("tUSD", e))?;
        Ok(account)
    }

    /// Grants `config` on `account` as its `owner` (a dev account); returns the session id.
    pub async fn grant_session(
        &self,
        account: Address,
        owner: Address,
        config: ISakSessions::SessionConfig,
    ) -> Result<u32> {
        let grant = |e: alloy::contract::Error| Error::deploy("session", e);
        let sent = SakAccount::new(account, self.provider()).grantSession(config).from(owner).send().await;
        let receipt = sent.map_err(grant)?.get_receipt().await.map_err(|e| Error::deploy("session", e))?;
        receipt
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
            .map(|l| l.inner.data.id)
            .ok_or_else(|| Error::deploy("session", "no SessionGranted event (the grant reverted)"))
    }

    /// The chain's latest block time (unix seconds).
    pub async fn chain_time(&self) -> Result<u64> {
        let block = self.provider().get_block_by_number(Default::default()).await;
        let block = block.map_err(Error::rpc("eth_getBlockByNumber"))?;
        block.map(|b| b.header.timestamp).ok_or_else(|| Error::deploy("chain time", "no latest block"))
    }
}
