//! A sak smart account on anvil with a session for an agent, and the pipelines to drive it.
#![allow(dead_code, unreachable_pub)]

use alloy::{
    network::TransactionBuilder,
    primitives::{
        Address, B256, U256,
        aliases::{U24, U40, U80, U96},
    },
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use sak_contracts::{ISakSessions, MockERC20};
use sak_testkit::{Alto, AltoError, Deployment, Kit, Profile};
use sak_userop::{BundlerClient, Call, FeeCaps, OpSigner, SelfBundler, UserOpClient, retrying_provider};

pub const DAY: u32 = 86_400;
pub const ALICE: Address = Address::repeat_byte(0xa1);
/// The session's tUSD allowance per day (6 decimals): 1,000 tUSD.
pub const USD_CAP: u64 = 1_000_000_000;

/// Dev accounts: 0 deploys (kit), 1 owner, 2 agent, 3 relayer, 4-7 EOAs for 7702 and
/// relayer checks; 8 and 9 belong to Alto.
pub struct Fixture {
    pub kit: Kit,
    pub d: Deployment,
    pub account: Address,
    pub owner: PrivateKeySigner,
    pub agent: PrivateKeySigner,
    pub relayer: PrivateKeySigner,
    pub session: u32,
}

impl Fixture {
    pub async fn new() -> Self {
        let kit = Kit::start(Profile::test()).await.expect("anvil starts");
        let d = *kit.deployment();
        let keys = kit.dev_signers().to_vec();
        let (owner, agent, relayer) = (keys[1].clone(), keys[2].clone(), keys[3].clone());
        let account = kit.sak_account(owner.address(), B256::ZERO).await.unwrap();
        let mut fx = Self { kit, d, account, owner, agent, relayer, session: 0 };
        fx.session = fx.grant(fx.account, fx.owner.address()).await;
        fx
    }

    pub fn provider(&self) -> &DynProvider {
        self.kit.provider()
    }

    /// Grants the agent a session on `account` (owned by `owner`, a dev account): tUSD
    /// transfers up to [`USD_CAP`] a day, unlimited gas.
    pub async fn grant(&self, account: Address, owner: Address) -> u32 {
        let now = self.kit.chain_time().await.unwrap();
        let config = ISakSessions::SessionConfig {
            signer: self.agent.address(),
            validAfter: U40::from(now),
            validUntil: U40::from(now + 30 * u64::from(DAY)),
            permissions: vec![],
            spendLimits: vec![ISakSessions::SpendLimit {
                token: self.d.usd,
                allowance: U96::from(USD_CAP),
                period: DAY,
                allowTransfer: true,
            }],
            gasBudget: U80::MAX,
            gasPeriod: 0,
            maxOps: U24::ZERO,
            paymaster: Address::ZERO,
            maxFeePerGas: Default::default(),
            maxPreVerificationGas: Default::default(),
        };
        self.kit.grant_session(account, owner, config).await.unwrap()
    }

    pub fn transfer(&self, amount: u64) -> Call {
        Call::contract(self.d.usd, &MockERC20::transferCall { to: ALICE, value: U256::from(amount) })
    }

    pub fn session_signer(&self) -> OpSigner {
        OpSigner::session(self.agent.clone(), self.session)
    }

    pub fn owner_signer(&self) -> OpSigner {
        OpSigner::owner(self.owner.clone())
    }

    pub async fn read_provider(&self) -> DynProvider {
        retrying_provider(self.kit.rpc_url(), Default::default()).unwrap()
    }

    pub async fn self_client(&self) -> UserOpClient<SelfBundler> {
        self.self_client_with(FeeCaps::UNLIMITED).await
    }

    pub async fn self_client_with(&self, caps: FeeCaps) -> UserOpClient<SelfBundler> {
        let bundler =
            SelfBundler::new(self.kit.rpc_url(), self.relayer.clone(), self.d.entry_point).await.unwrap();
        UserOpClient::new(self.read_provider().await, bundler, caps).await.unwrap()
    }

    pub async fn alto(&self) -> Alto {
        Self::started(Alto::start(&self.kit, &["--block-time", "100"]).await)
    }

    /// Alto in safe mode: every operation's validation traced and held to ERC-7562.
    pub async fn safe_alto(&self) -> Alto {
        Self::started(Alto::start_safe(&self.kit, &["--block-time", "100"]).await)
    }

    fn started(alto: Result<Alto, AltoError>) -> Alto {
        match alto {
            Ok(alto) => alto,
            Err(e) => panic!("{e}\nhint: {}", e.hint()),
        }
    }

    pub async fn alto_client(&self, alto: &Alto) -> UserOpClient<BundlerClient> {
        let bundler = BundlerClient::new(alto.url(), self.d.entry_point).unwrap();
        UserOpClient::new(self.read_provider().await, bundler, FeeCaps::UNLIMITED).await.unwrap()
    }

    pub async fn usd_balance(&self, who: Address) -> U256 {
        MockERC20::new(self.d.usd, self.provider()).balanceOf(who).call().await.unwrap()
    }
}

pub async fn fund(provider: &DynProvider, to: Address) {
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(10u64.pow(19)));
    provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
}
