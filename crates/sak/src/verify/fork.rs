//! The fork: a throwaway anvil at the real chain's block, and the session acting on it.

use super::*;

// ---------------------------------------------------------------------------------------------
// The fork
// ---------------------------------------------------------------------------------------------

/// A running fork. anvil stops when this is dropped.
pub(super) struct Fork {
    pub(super) node: AnvilNode,
    pub(super) provider: DynProvider,
    pub(super) relayer: PrivateKeySigner,
    pub(super) chain_id: u64,
    pub(super) entry_point: Address,
}

impl Fork {
    pub(super) async fn start(home: &Home, chain: &Chain, block: u64) -> Result<Self> {
        let anvil = Toolchain::locate().and_then(|t| t.anvil()).wrap_err("finding anvil to fork with")?;
        let profile = Profile::test().with_fork(chain.rpc_url.clone(), Some(block));
        let origin = profile.fork_origin().unwrap_or_default();
        home.progress(&format!(
            "forking {} (chain {}) at block {block} from {origin}{}…",
            home.network_name,
            chain.chain_id,
            if home.kind().is_anvil() { "" } else { " (fetching state may take a while)" }
        ));
        let t = Instant::now();
        let node = tokio::task::spawn_blocking(move || AnvilNode::spawn(&anvil, &profile))
            .await
            .wrap_err("the anvil start task")?
            .map_err(|e| {
                Hinted::new(
                    format!("starting the fork: {e}"),
                    e.hint().unwrap_or_else(|| "check that anvil runs (`npm ci` installs it)".into()),
                )
            })?;
        let provider =
            ProviderBuilder::new().connect_http(node.endpoint().parse().wrap_err("the fork's URL")?).erased();
        let chain_id = provider.get_chain_id().await.wrap_err("the fork's eth_chainId")?;
        ensure!(
            chain_id == chain.chain_id,
            "the fork reports chain {chain_id}, the session's chain is {}",
            chain.chain_id
        );
        let relayer = node.dev_signers().first().cloned().ok_or_err("the fork has no dev account")?;
        home.progress(&format!(
            "fork ready at {} (anvil pid {}) in {:.1}s",
            node.endpoint(),
            node.pid(),
            t.elapsed().as_secs_f64()
        ));
        let fork = Self { node, provider, relayer, chain_id, entry_point: chain.contracts.entry_point };
        // On a public chain anvil's well-known dev address may carry code (a 7702 delegation):
        // the bundle sender must be a plain EOA, and on the fork it can be made one.
        if !fork.provider.get_code_at(fork.relayer.address()).await?.is_empty() {
            fork.rpc::<serde_json::Value>("anvil_setCode", (fork.relayer.address(), Bytes::new())).await?;
        }
        Ok(fork)
    }

    pub(super) async fn rpc<T: RpcRecv>(&self, method: &'static str, params: impl RpcSend) -> Result<T> {
        self.provider
            .raw_request(method.into(), params)
            .await
            .wrap_err_with(|| format!("{method} on the fork"))
    }

    pub(super) async fn time(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::rpc::types::BlockNumberOrTag::Latest)
            .await?
            .ok_or_err("the fork has no latest block")?;
        Ok(block.header.timestamp)
    }

    /// Moves the fork's clock so that its latest block is at `at` or later.
    pub(super) async fn warp_to(&self, at: u64) -> Result<()> {
        let now = self.time().await?;
        if at > now {
            self.rpc::<serde_json::Value>("evm_increaseTime", (at - now,)).await?;
            self.rpc::<serde_json::Value>("evm_mine", ()).await?;
        }
        Ok(())
    }

    pub(super) async fn snapshot(&self) -> Result<serde_json::Value> {
        self.rpc("evm_snapshot", ()).await
    }

    pub(super) async fn revert(&self, id: serde_json::Value) -> Result<()> {
        let done: bool = self.rpc("evm_revert", (id,)).await?;
        ensure!(done, "evm_revert refused the fork's snapshot");
        Ok(())
    }

    /// Sends `data` to `to` as `from` (impersonated: no key needed on a fork).
    pub(super) async fn send_as(&self, from: Address, to: Address, data: Bytes) -> Result<B256> {
        self.rpc::<serde_json::Value>("anvil_impersonateAccount", (from,)).await?;
        let balance = self.provider.get_balance(from).await?;
        let gas_money = U256::from(10u128.pow(18));
        if balance < gas_money {
            self.rpc::<serde_json::Value>("anvil_setBalance", (from, balance + gas_money)).await?;
        }
        let tx = TransactionRequest::default().with_from(from).with_to(to).with_input(data);
        let receipt = self.provider.send_transaction(tx).await?.get_receipt().await;
        self.rpc::<serde_json::Value>("anvil_stopImpersonatingAccount", (from,)).await?;
        let receipt = receipt?;
        ensure!(receipt.status(), "the transaction from {from} reverted on the fork");
        Ok(receipt.transaction_hash)
    }

    pub(super) async fn balance_of(&self, token: Address, holder: Address) -> Result<U256> {
        if token == NATIVE {
            let deposit = IEntryPoint::new(self.entry_point, &self.provider)
                .balanceOf(holder)
                .call()
                .await
                .unwrap_or_default();
            return Ok(self.provider.get_balance(holder).await? + deposit);
        }
        MockERC20::new(token, &self.provider).balanceOf(holder).call().await.wrap_err("balanceOf")
    }
}

/// The session under test on the fork, and how to sign for it.
pub(super) struct OnFork<'a> {
    pub(super) fork: &'a Fork,
    pub(super) account: Address,
    pub(super) id: u32,
    pub(super) policy: &'a Policy,
    pub(super) key: LocalKey,
    pub(super) init_code: Bytes,
    pub(super) delegate: Option<Address>,
    /// The ledgers' directory (deleted on drop).
    pub(super) dir: tempfile::TempDir,
    pub(super) cases_run: usize,
}

type Bot = GuardedSigner<SqliteLedger, SelfBundler>;

/// What one signed attempt ended in.
pub(super) enum Outcome {
    Success {
        tx: B256,
        user_op_hash: B256,
        gas: U256,
    },
    /// The execution reverted after validation (the operation was included).
    ExecutionReverted {
        tx: B256,
        user_op_hash: B256,
        reason: String,
    },
    Refused(Refusal),
    Error(String),
}

impl OnFork<'_> {
    /// A fresh guarded signer for each case: after `evm_revert` the relayer's and the account's
    /// nonces go back, so nothing cached may survive a case.
    pub(super) async fn bot(&mut self) -> Result<Bot> {
        self.cases_run += 1;
        let ledger =
            Arc::new(SqliteLedger::open(&self.dir.path().join(format!("case-{}.db", self.cases_run)))?);
        let session = Session::new(self.id, self.key.address(), self.policy.clone());
        let binding = Binding {
            chain_id: self.fork.chain_id,
            context: Context::account(self.account, self.fork.entry_point),
            session_id: self.id,
            lane_key: sak_userop::session_nonce_key(self.id, 0),
            init_code: self.init_code.clone(),
            delegate: self.delegate,
        };
        let bundler =
            SelfBundler::new(self.fork.node.endpoint(), self.fork.relayer.clone(), self.fork.entry_point)
                .await
                .wrap_err("the fork's bundler")?;
        Ok(GuardedSigner::new(
            LocalKey::from_signer(self.key.signer().clone()),
            session,
            binding,
            self.fork.provider.clone(),
            bundler,
            FeeCaps::UNLIMITED,
            ledger,
        )
        .await?)
    }

    /// Signs `calls` with the session key and lets the contracts decide.
    pub(super) async fn attempt(&mut self, calls: &[Call]) -> Result<Outcome> {
        let bot = self.bot().await?;
        Ok(match bot.execute(calls, Preflight::SkipForProof).await {
            Ok(done) if done.receipt.success => Outcome::Success {
                tx: done.receipt.tx_hash,
                user_op_hash: done.user_op_hash,
                gas: done.receipt.actual_gas_cost,
            },
            Ok(done) => Outcome::ExecutionReverted {
                tx: done.receipt.tx_hash,
                user_op_hash: done.user_op_hash,
                reason: done.receipt.revert.map_or_else(|| "no reason".into(), |r| r.to_string()),
            },
            Err(e) => match e.refusal() {
                Some(r) => Outcome::Refused(r),
                None => Outcome::Error(e.to_string()),
            },
        })
    }

    /// What remains of `token`'s allowance in the period of the fork's clock.
    pub(super) async fn remaining(&self, token: Address) -> Result<U256> {
        let limit = self.policy.spend_limit(token).ok_or_err("the operation's token has no cap")?;
        let s = SakAccount::new(self.account, &self.fork.provider)
            .getSpend(self.id, token)
            .call()
            .await
            .wrap_err("getSpend")?;
        let now = self.fork.time().await?;
        let current = now.saturating_sub(self.policy.valid_after) / u64::from(limit.period);
        let spent = if s.window.to::<u64>() == current { U256::from(s.spent) } else { U256::ZERO };
        Ok(limit.allowance.saturating_sub(spent))
    }
}

/// The allowed operation, built from the policy.
#[derive(Debug, Clone, Copy)]
pub(super) enum Plan {
    /// transfer(adapter, amount) + the adapter's swapExactTokensForTokens(amount, .., [token,
    /// other], account, ..)
    Swap { router: Address, token: Address, other: Address },
    /// transfer(recipient, amount)
    Transfer { token: Address, recipient: Address },
    /// `amount` wei to a permitted recipient, through the adapter.
    Native { recipient: Address },
}

impl Plan {
    /// The token the operation spends (NATIVE for ETH): the cap it is charged to.
    pub(super) const fn token(self) -> Address {
        match self {
            Self::Swap { token, .. } | Self::Transfer { token, .. } => token,
            Self::Native { .. } => NATIVE,
        }
    }

    /// The contract the operation calls (through the adapter for a swap or an ETH send).
    pub(super) const fn target(self) -> Address {
        match self {
            Self::Swap { router, .. } => router,
            Self::Transfer { token, .. } => token,
            Self::Native { recipient } => recipient,
        }
    }

    /// How much the allowed operation moves: a little, so that it fits.
    pub(super) fn small_amount(self, decimals: Option<u8>) -> U256 {
        match self {
            // A whole unit (or what remains): enough for the pool to pay something back.
            Self::Swap { .. } => U256::from(10u64).pow(U256::from(decimals.unwrap_or(0))),
            _ => U256::from(1),
        }
    }

    pub(super) fn calls(self, account: Address, amount: U256, min_out: U256, deadline: u64) -> Vec<Call> {
        let adapter = SakAddresses::canonical().adapter_of(account);
        match self {
            Self::Swap { router, token, other } => crate::agent::v2_swap_calls(
                adapter,
                router,
                (token, other),
                (amount, min_out),
                account,
                deadline,
            ),
            Self::Transfer { token, recipient } => {
                vec![Call::contract(token, &MockERC20::transferCall { to: recipient, value: amount })]
            }
            Self::Native { recipient } => {
                vec![through_adapter(adapter, &Call::new(recipient, amount, Bytes::new()), &[])]
            }
        }
    }

    pub(super) fn describe(self, amount: U256, chain: &Chain) -> String {
        let c = &chain.contracts;
        let show = |token: Address| sak_primitives::units::format_amount(amount, c.decimals(token));
        match self {
            Self::Swap { router, token, other } => format!(
                "swap {} {} for {} through {} from the account's adapter (recipient: the account)",
                show(token),
                c.name(token),
                c.name(other),
                c.name(router)
            ),
            Self::Transfer { token, recipient } => {
                format!("transfer {} {} to {recipient}", show(token), c.name(token))
            }
            Self::Native { recipient } => format!("send {amount} wei to {}", c.name(recipient)),
        }
    }
}

/// A fresh address, the same for the same account, session and purpose.
pub(super) fn fresh(account: Address, id: u32, purpose: &str) -> Address {
    Address::from_word(keccak256(format!("sak session verify {account} {id} {purpose}")))
}

/// Whether the policy permits `selector` on `target` (a call permission, or `transfer` on a
/// capped token).
pub(super) fn permits(policy: &Policy, target: Address, selector: [u8; 4]) -> bool {
    let selector = alloy::primitives::FixedBytes::<4>::from(selector);
    policy.permission(target, selector).is_some()
        || policy.spend_limit(target).is_some_and(|l| selector == TRANSFER && l.token != NATIVE)
}

/// Functions to try as the wrong selector, by signature (the first the policy does not permit
/// on the target is used).
pub(super) const WRONG_FUNCTIONS: [&str; 4] = [
    "transferFrom(address,address,uint256)",
    "removeLiquidity(address,address,uint256,uint256,uint256,address,uint256)",
    "setApprovalForAll(address,bool)",
    "mint(address,uint256)",
];

/// A call to a function `target` is not permitted, with plausible arguments (the account, a
/// fresh address, 1).
pub(super) fn wrong_selector_call(
    policy: &Policy,
    target: Address,
    account: Address,
    other: Address,
) -> Option<(Call, String)> {
    // transferFrom for a token; for anything else a function such a target may really have.
    let token = policy.spend_limit(target).is_some();
    WRONG_FUNCTIONS.iter().skip(usize::from(!token)).find_map(|sig| {
        let selector: [u8; 4] = keccak256(sig.as_bytes())[..4].try_into().ok()?;
        if permits(policy, target, selector) {
            return None;
        }
        let arity = sig[sig.find('(')? + 1..sig.len() - 1].split(',').count();
        let mut data = selector.to_vec();
        for i in 0..arity {
            let word = match i {
                0 => B256::left_padding_from(account.as_slice()),
                1 => B256::left_padding_from(other.as_slice()),
                _ => B256::from(U256::from(1)),
            };
            data.extend_from_slice(word.as_slice());
        }
        Some((Call::new(target, U256::ZERO, data), sig[..sig.find('(')?].to_owned()))
    })
}

/// The candidates for the allowed operation, in order of preference: a swap through a
/// permitted router (with a pool for the capped token), a transfer, an approval, an ETH send.
pub(super) async fn plans(
    fork: &Fork,
    chain: &Chain,
    policy: &Policy,
    account: Address,
    id: u32,
) -> Vec<Plan> {
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR;
    let mut out = Vec::new();
    let routers: Vec<Address> =
        policy.permissions.iter().filter(|p| p.selector.0 == swap).map(|p| p.target).collect();
    let capped: Vec<Address> =
        policy.spend_limits.iter().filter(|l| l.token != NATIVE).map(|l| l.token).collect();
    for router in &routers {
        let r = IUniswapV2Router02::new(*router, &fork.provider);
        let Ok(factory) = r.factory().call().await else { continue };
        let mut others: Vec<Address> = r.WETH().call().await.into_iter().collect();
        others.extend(chain.contracts.book.iter().filter(|(.., d)| d.is_some()).map(|(_, a, _)| *a));
        for token in &capped {
            for other in others.iter().filter(|o| *o != token) {
                let pair =
                    IUniswapV2Factory::new(factory, &fork.provider).getPair(*token, *other).call().await;
                if pair.is_ok_and(|p| p != Address::ZERO) {
                    out.push(Plan::Swap { router: *router, token: *token, other: *other });
                    break;
                }
            }
        }
    }
    for l in policy.spend_limits.iter().filter(|l| l.token != NATIVE && l.transfer) {
        out.push(Plan::Transfer { token: l.token, recipient: fresh(account, id, "recipient") });
    }
    if policy.spend_limit(NATIVE).is_some() {
        for p in policy.permissions.iter().filter(|p| p.selector == ETH_SEND && p.allow_value) {
            out.push(Plan::Native { recipient: p.target });
        }
    }
    out
}

/// The first candidate the policy admits (its argument conditions included) at `clock`.
pub(super) fn admitted(plans: &[Plan], policy: &Policy, s: &OnForkStatic, clock: u64) -> Option<Plan> {
    let session = Session::new(s.id, s.signer, policy.clone());
    let ctx = Context::account(s.account, s.entry_point);
    plans.iter().copied().find(|plan| {
        let calls =
            plan.calls(s.account, plan.small_amount(None).max(U256::from(1)), U256::from(1), clock + 600);
        session.authorize(&Operation::unpaid(calls, clock), &ctx).is_ok()
    })
}

/// The few facts [`admitted`] needs.
pub(super) struct OnForkStatic {
    pub(super) id: u32,
    pub(super) signer: Address,
    pub(super) account: Address,
    pub(super) entry_point: Address,
}
