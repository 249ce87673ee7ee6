//! Where a session lives: in the account itself (sak's smart account and 7702 delegate) or in
//! the ERC-7579 module `SessionKeyValidator`, which holds the sessions of every account that
//! installed it. The reads differ in one argument (the module is asked for an account) and in
//! the events (the module's name the account they are about).

use crate::{Error, Result};
use alloy::{
    primitives::{Address, B256, Log, U256},
    providers::DynProvider,
    rpc::types::{BlockId, Filter},
    sol_types::{SolEvent, SolValue},
};
use sak_contracts::{ISakSessions, SakAccount, SessionKeyValidator};
use sak_policy::{Context, Usage};

/// The session state of one account: where it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// The account the sessions act for.
    pub account: Address,
    /// The contract that keeps them: the account, or the module.
    pub holder: Address,
}

/// A session's counters as the chain has them at one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    /// The session's key (zero: revoked or never granted).
    pub signer: Address,
    /// Gas spent in its gas window.
    pub gas: Usage,
    /// Operations used.
    pub ops_used: u32,
}

fn chain(what: &'static str) -> impl FnOnce(alloy::contract::Error) -> Error {
    move |e| Error::Chain(format!("{what}: {e}"))
}

impl Host {
    /// The sessions of a sak account, kept by the account.
    pub fn account(account: Address) -> Self {
        Self { account, holder: account }
    }

    /// The sessions of a modular account, kept by `module`.
    pub fn module(account: Address, module: Address) -> Self {
        Self { account, holder: module }
    }

    /// Where `ctx`'s sessions are.
    pub fn of(ctx: &Context) -> Self {
        Self { account: ctx.account, holder: ctx.holder }
    }

    fn is_module(&self) -> bool {
        self.holder != self.account
    }

    /// Session `id`'s key and gas and operation counters at `block`.
    pub async fn counters(&self, provider: &DynProvider, id: u32, block: BlockId) -> Result<Counters> {
        let (signer, gas_spent, gas_window, ops_used) = if self.is_module() {
            let module = SessionKeyValidator::new(self.holder, provider);
            let view =
                module.getSession(self.account, id).block(block).call().await.map_err(chain("getSession"))?;
            let usage =
                module.getUsage(self.account, id).block(block).call().await.map_err(chain("getUsage"))?;
            (view.signer, usage.gasSpent, usage.gasWindow.to::<u32>(), usage.opsUsed.to::<u32>())
        } else {
            let account = SakAccount::new(self.account, provider);
            let view = account.getSession(id).block(block).call().await.map_err(chain("getSession"))?;
            let usage = account.getUsage(id).block(block).call().await.map_err(chain("getUsage"))?;
            (view.signer, usage.gasSpent, usage.gasWindow.to::<u32>(), usage.opsUsed.to::<u32>())
        };
        Ok(Counters {
            signer,
            gas: Usage { spent: U256::from(gas_spent), window: u64::from(gas_window) },
            ops_used,
        })
    }

    /// What session `id` has spent of `token` at `block`.
    pub async fn spend(
        &self,
        provider: &DynProvider,
        id: u32,
        token: Address,
        block: BlockId,
    ) -> Result<Usage> {
        let (spent, window) = if self.is_module() {
            let s = SessionKeyValidator::new(self.holder, provider)
                .getSpend(self.account, id, token)
                .block(block)
                .call()
                .await
                .map_err(chain("getSpend"))?;
            (s.spent, s.window.to::<u32>())
        } else {
            let s = SakAccount::new(self.account, provider)
                .getSpend(id, token)
                .block(block)
                .call()
                .await
                .map_err(chain("getSpend"))?;
            (s.spent, s.window.to::<u32>())
        };
        Ok(Usage { spent: U256::from(spent), window: u64::from(window) })
    }

    /// Session `id` as `getSession` shows it now.
    pub async fn view(&self, provider: &DynProvider, id: u32) -> Result<ISakSessions::SessionView> {
        if self.is_module() {
            let v = SessionKeyValidator::new(self.holder, provider)
                .getSession(self.account, id)
                .call()
                .await
                .map_err(chain("getSession"))?;
            Ok(ISakSessions::SessionView {
                signer: v.signer,
                validAfter: v.validAfter,
                validUntil: v.validUntil,
                active: v.active,
            })
        } else {
            SakAccount::new(self.account, provider).getSession(id).call().await.map_err(chain("getSession"))
        }
    }

    /// The account's logs of one session event (`sak`: the account's own event, `module`: the
    /// module's account-scoped one), from `from_block` on; session `id`'s alone when given.
    fn events(&self, (sak, module): (B256, B256), id: Option<u32>, from_block: u64) -> Filter {
        let filter = Filter::new().address(self.holder).from_block(from_block);
        match (self.is_module(), id) {
            (true, Some(id)) => {
                filter.event_signature(module).topic1(self.account.into_word()).topic2(U256::from(id))
            }
            (true, None) => filter.event_signature(module).topic1(self.account.into_word()),
            (false, Some(id)) => filter.event_signature(sak).topic1(U256::from(id)),
            (false, None) => filter.event_signature(sak),
        }
    }

    /// The logs granting session `id` (every session with None), from `from_block` on.
    pub fn grants(&self, id: Option<u32>, from_block: u64) -> Filter {
        let events = (
            SakAccount::SessionGranted::SIGNATURE_HASH,
            SessionKeyValidator::AccountSessionGranted::SIGNATURE_HASH,
        );
        self.events(events, id, from_block)
    }

    /// The logs revoking session `id` alone, from `from_block` on.
    pub fn revocations(&self, id: u32, from_block: u64) -> Filter {
        let events = (
            SakAccount::SessionRevoked::SIGNATURE_HASH,
            SessionKeyValidator::AccountSessionRevoked::SIGNATURE_HASH,
        );
        self.events(events, Some(id), from_block)
    }

    /// The logs rotating session `id` to another key, from `from_block` on.
    pub fn rotations(&self, id: u32, from_block: u64) -> Filter {
        let events = (
            SakAccount::SessionKeyRotated::SIGNATURE_HASH,
            SessionKeyValidator::AccountSessionKeyRotated::SIGNATURE_HASH,
        );
        self.events(events, Some(id), from_block)
    }

    /// The session id of a log of [`grants`](Self::grants), [`revocations`](Self::revocations)
    /// or [`rotations`](Self::rotations).
    pub fn session_of(&self, log: &Log) -> Option<u32> {
        let topic = log.topics().get(if self.is_module() { 2 } else { 1 })?;
        Some(U256::from_be_bytes(topic.0).saturating_to())
    }

    /// A grant log of [`grants`](Self::grants): the key and the policy granted.
    pub fn granted(&self, log: &Log) -> Result<(Address, ISakSessions::SessionConfig)> {
        let bad = |e: alloy::sol_types::Error| Error::Chain(format!("the grant event: {e}"));
        if self.is_module() {
            let g = SessionKeyValidator::AccountSessionGranted::decode_log(log).map_err(bad)?.data;
            // The same Solidity struct, bound twice: one encoding.
            let config = ISakSessions::SessionConfig::abi_decode(&g.config.abi_encode()).map_err(bad)?;
            Ok((g.signer, config))
        } else {
            let g = SakAccount::SessionGranted::decode_log(log).map_err(bad)?.data;
            Ok((g.signer, g.config))
        }
    }

    /// The key a rotation log of [`rotations`](Self::rotations) set.
    pub(crate) fn rotated_to(&self, log: &Log) -> Result<Address> {
        let bad = |e: alloy::sol_types::Error| Error::Chain(format!("the rotation event: {e}"));
        Ok(if self.is_module() {
            SessionKeyValidator::AccountSessionKeyRotated::decode_log(log).map_err(bad)?.data.signer
        } else {
            SakAccount::SessionKeyRotated::decode_log(log).map_err(bad)?.data.signer
        })
    }
}
