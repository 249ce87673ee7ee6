//! The demo's set-up: the owner's accounts (smart and 7702), funded, and the bot's session granted.

use super::*;

impl Demo<'_> {
    /// Step 1: the owner's smart account (address before deployment), funded; the 7702 EOA.
    pub(super) async fn accounts(&mut self) -> eyre::Result<Accounts> {
        let (p, d) = (self.p, self.d);
        let owner = self.dev(OWNER)?.address();
        let relayer = self.dev(RELAYER)?;
        let whale = self.dev(WHALE)?.address();
        p.say(&format!("owner (dev key {OWNER})         {owner}"));

        // -- the smart account: address first, then deployment
        let factory = SakAccountFactory::new(d.sak_account_factory, self.provider());
        let counterfactual = factory.getAddress(owner, B256::ZERO).call().await.wrap_err("getAddress")?;
        let code_before = self.provider().get_code_at(counterfactual).await?;
        p.say(&format!(
            "smart account (counterfactual) {counterfactual}  code: {} bytes, not deployed yet",
            code_before.len()
        ));
        let tx = factory.createAccount(owner, B256::ZERO).into_transaction_request().with_from(owner);
        let r = self.send(tx).await.wrap_err("createAccount")?;
        let account = counterfactual;
        let code = self.provider().get_code_at(account).await?;
        eyre::ensure!(!code.is_empty(), "the factory deployed nothing at {account}");
        p.say(&format!("deployed by SakAccountFactory at the same address ({} bytes of code)", code.len()));
        self.push_tx("setup", "owner", format!("create smart account {}", short(account)), &[&r]);

        // -- funding: ETH, tUSD (5x the cap) and WETH, a token the session is never given
        let fund =
            TransactionRequest::default().with_from(owner).with_to(account).with_value(U256::from(FUND_ETH));
        let r1 = self.send(fund).await.wrap_err("funding ETH")?;
        let mint = MockERC20::new(d.usd, self.provider())
            .mint(account, U256::from(FUND_USD))
            .into_transaction_request()
            .with_from(owner);
        let r2 = self.send(mint).await.wrap_err("minting tUSD")?;
        let wrap = IWETH::new(d.weth, self.provider())
            .deposit()
            .value(U256::from(FUND_WETH))
            .into_transaction_request()
            .with_from(owner);
        let r3 = self.send(wrap).await.wrap_err("wrapping ETH")?;
        let give = IWETH::new(d.weth, self.provider())
            .transfer(account, U256::from(FUND_WETH))
            .into_transaction_request()
            .with_from(owner);
        let r4 = self.send(give).await.wrap_err("sending WETH")?;
        p.say("funded with 10 ETH, 5,000 tUSD and 2 WETH");
        self.push_tx(
            "setup",
            "owner",
            "fund account: 10 ETH, 5,000 tUSD, 2 WETH".into(),
            &[&r1, &r2, &r3, &r4],
        );

        // -- an EOA upgraded in place with EIP-7702
        let eoa = self.dev(EOA_7702)?;
        let hash = eip7702::delegate_self(self.provider(), &eoa, d.sak_7702_account)
            .await
            .wrap_err("delegating the EOA with EIP-7702")?;
        let r = self.receipt(hash).await?;
        let eoa_code = self.provider().get_code_at(eoa.address()).await?;
        eyre::ensure!(
            eip7702::delegate_of(self.provider(), eoa.address()).await? == Some(d.sak_7702_account),
            "the EOA's code is not a delegation to Sak7702Account"
        );
        p.say(&format!("EIP-7702 EOA (dev key {EOA_7702})   {}  code {eoa_code}", eoa.address()));
        p.say(&format!("  = 0xef0100 ‖ Sak7702Account {}: the EOA stays its own owner", d.sak_7702_account));
        self.push_tx(
            "setup",
            "eoa",
            format!("delegate EOA {} to Sak7702Account (EIP-7702)", short(eoa.address())),
            &[&r],
        );
        Ok(Accounts {
            owner,
            relayer,
            whale,
            account,
            deployed: code_before.is_empty() && !code.is_empty(),
            eoa: eoa.address(),
            eoa_code,
        })
    }

    /// Step 2: a fresh session key, the policy file resolved and granted by the owner, and the
    /// bot's guarded signer with its SQLite ledger.
    pub(super) async fn grant(&mut self, a: &Accounts) -> eyre::Result<Granted> {
        let (p, d, owner, account) = (self.p, self.d, a.owner, a.account);
        p.step(2, "Session key and session (policy file -> on-chain SessionConfig)");
        let key = LocalKey::generate()?;
        let key_address = key.address();
        p.say(&format!("session key generated: {key_address} (the secret stays in this process)"));
        p.say("policy (TOML):");
        p.block(POLICY_TOML);
        let book = AddressBook::new()
            .with("uniswap-v2-router", d.uniswap_v2_router, None)
            .with("tUSD", d.usd, Some(6))
            .with("TKN", d.tkn, Some(18))
            .with("WETH", d.weth, Some(18));
        let now = self.chain_time().await?;
        let policy = PolicyFile::from_toml(POLICY_TOML)
            .wrap_err("the demo's policy")?
            .resolve(&book, now)
            .wrap_err("resolving the demo's policy")?;
        let grant = SakAccount::new(account, self.provider())
            .grantSession(policy.to_session_config(key_address))
            .into_transaction_request()
            .with_from(owner);
        let r = self.send(grant).await.wrap_err("grantSession")?;
        let id = r
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
            .ok_or_eyre("no SessionGranted event")?
            .inner
            .data
            .id;
        let limit = policy.spend_limit(d.usd).ok_or_eyre("the policy has no tUSD cap")?.clone();
        let renews_at = policy.valid_after + u64::from(limit.period);
        p.say(&format!(
            "session #{id} granted by the owner: {} permissions (router swaps to the account, through its adapter), \
             cap {} tUSD per {}, valid until {}",
            policy.permissions.len(),
            amount(U256::from(limit.allowance), 6),
            duration(u64::from(limit.period)),
            time(policy.valid_until)
        ));
        self.push_tx("setup", "owner", format!("grant session #{id} to key {}", short(key_address)), &[&r]);

        let dir = tempfile::tempdir().wrap_err("creating a temporary directory for the ledger")?;
        let ledger = Arc::new(SqliteLedger::open(&dir.path().join("ledger.db"))?);
        let session = load_session(self.provider(), account, id).await?;
        let binding = Binding {
            chain_id: self.kit.chain_id(),
            context: Context::account(account, d.entry_point),
            session_id: id,
            lane_key: sak_userop::session_nonce_key(id, 0),
            init_code: Default::default(),
            delegate: None,
        };
        let bundler = SelfBundler::new(self.kit.rpc_url(), a.relayer.clone(), d.entry_point).await?;
        let bot = GuardedSigner::new(
            key,
            session,
            binding,
            self.provider().clone(),
            bundler,
            FeeCaps::UNLIMITED,
            ledger.clone(),
        )
        .await?;
        p.say(&format!(
            "bot's guarded signer ready: self-bundling through EntryPoint v0.8 (relayer {}), SQLite audit ledger",
            short(a.relayer.address())
        ));
        Ok(Granted { id, policy, limit, renews_at, key: key_address, bot, ledger, _dir: dir })
    }
}
