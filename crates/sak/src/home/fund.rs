//! Funding on a local or fork chain, from anvil's public dev account.

use super::Home;
use crate::{Chain, Hinted, Result, error::WrapErr};
use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};

impl Home {
    /// Local and fork chains: ETH from anvil's dev account 0 (a public test key) and freshly minted
    /// tUSD/TKN to `to`. Returns the transactions.
    pub async fn fund_from_dev(
        &self,
        chain: &Chain,
        to: Address,
        eth: U256,
        usd: U256,
        tkn: U256,
    ) -> Result<Vec<alloy::primitives::B256>> {
        use alloy::{network::TransactionBuilder, rpc::types::TransactionRequest};
        let node = self
            .node()?
            .ok_or_else(|| Hinted::new("`sak node up` is not running", "start it with `sak node up`"))?;
        let local = chain.contracts.local.ok_or_else(|| {
            Hinted::new("no local stack recorded for this chain", "start the chain with `sak node up`")
        })?;
        let dev: alloy::signers::local::PrivateKeySigner =
            node.dev_key.parse().wrap_err("node.json's dev key")?;
        let provider = self.wallet_provider(chain, &dev)?;
        let mut txs = Vec::new();
        if !eth.is_zero() {
            let tx = TransactionRequest::default().with_to(to).with_value(eth);
            txs.push(provider.send_transaction(tx).await?.get_receipt().await?.transaction_hash);
        }
        for (token, amount) in [(local.usd, usd), (local.tkn, tkn)] {
            if !amount.is_zero() {
                let token = sak_contracts::MockERC20::new(token, &provider);
                txs.push(token.mint(to, amount).send().await?.get_receipt().await?.transaction_hash);
            }
        }
        Ok(txs)
    }
}
