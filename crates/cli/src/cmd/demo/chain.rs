//! The demo's moves on the chain: the bot's attempts, the whale, prices and holdings.

use super::*;

impl Demo<'_> {
    /// One session operation through the guard, with what it moved.
    pub(super) async fn attempt(
        &mut self,
        bot: &Bot,
        account: Address,
        phase: &'static str,
        calls: &[Call],
        usd: u64,
        preflight: Preflight,
    ) -> eyre::Result<Step> {
        let (p, d) = (self.p, self.d);
        let before = self.holdings(account).await?;
        let t = Instant::now();
        let result = bot.execute(calls, preflight).await;
        let after = self.holdings(account).await?;
        let forced = if preflight == Preflight::SkipForProof { "forced " } else { "" };
        let mut step = Step {
            n: self.steps.len() + 1,
            phase,
            actor: "bot",
            action: format!("{forced}swap {} tUSD -> TKN", amount(U256::from(usd), 6)),
            result: "allowed",
            decided_by: Some("policy+chain"),
            error: None,
            detail: None,
            remaining: None,
            renews_at: None,
            tusd_spent: before.usd.saturating_sub(after.usd).to_string(),
            tkn_received: after.tkn.saturating_sub(before.tkn).to_string(),
            gas_wei: "0".into(),
            gas_paid_by: None,
            tx_hashes: Vec::new(),
            user_op_hash: None,
        };
        match result {
            Ok(done) => {
                eyre::ensure!(
                    done.receipt.success,
                    "the swap's execution reverted: {:?}",
                    done.receipt.revert
                );
                let remaining = done.charges.iter().find(|c| c.token == d.usd);
                step.gas_wei = done.receipt.actual_gas_cost.to_string();
                step.gas_paid_by = Some("account");
                step.tx_hashes.push(done.receipt.tx_hash);
                step.user_op_hash = Some(done.user_op_hash);
                self.tx_hashes.push(done.receipt.tx_hash);
                p.say(&format!(
                    "  allowed: -{} tUSD, +{} TKN, gas {} ETH (paid by the account); {} tUSD left today; {} ms",
                    amount(before.usd.saturating_sub(after.usd), 6),
                    amount(after.tkn.saturating_sub(before.tkn), 18),
                    gas(done.receipt.actual_gas_cost),
                    remaining.map_or_else(|| "?".into(), |c| amount(c.remaining, 6)),
                    t.elapsed().as_millis()
                ));
                p.say(&format!("  user op {}  tx {}", done.user_op_hash, done.receipt.tx_hash));
            }
            Err(e) => {
                let Some(refusal) = e.refusal() else {
                    return Err(eyre::Report::new(e)
                        .wrap_err("the bot's operation failed for another reason than the policy"));
                };
                let local = matches!(e, sak_signer::Error::Refused(_));
                step.result = "refused";
                step.decided_by = Some(if local { "local-policy" } else { "chain" });
                step.error = Some(refusal.name());
                step.detail = Some(describe_refusal(&refusal));
                if let Refusal::SpendCapExceeded { remaining, resets_at, .. } = &refusal {
                    step.remaining = Some(remaining.to_string());
                    step.renews_at = *resets_at;
                }
                let by = if local {
                    "refused locally, before signing (nothing sent, no gas)"
                } else {
                    "refused by the contracts (the EntryPoint's simulation of the signed operation): nothing sent, nothing moved"
                };
                p.say(&format!("  {by}:"));
                p.say(&format!("    {}", describe_refusal(&refusal)));
                if let Some(hint) = e.hint() {
                    p.say(&format!("    hint: {hint}"));
                }
            }
        }
        Ok(step)
    }

    pub(super) async fn whale_sells(&mut self, whale: Address) -> eyre::Result<Vec<TransactionReceipt>> {
        let d = self.d;
        let tkn = MockERC20::new(d.tkn, self.provider());
        let router = IUniswapV2Router02::new(d.uniswap_v2_router, self.provider());
        let mint = tkn.mint(whale, U256::from(WHALE_SELL)).into_transaction_request().with_from(whale);
        let approve = tkn
            .approve(d.uniswap_v2_router, U256::from(WHALE_SELL))
            .into_transaction_request()
            .with_from(whale);
        let swap = router
            .swapExactTokensForTokens(
                U256::from(WHALE_SELL),
                U256::from(1),
                vec![d.tkn, d.usd],
                whale,
                U256::MAX,
            )
            .into_transaction_request()
            .with_from(whale)
            // Not estimated: the pair writes its cumulative prices only in a block with a new
            // timestamp, so an estimate made within the last block's second can fall short of
            // what the swap costs once mined a second later (an out-of-gas revert, seen in CI).
            .with_gas_limit(WHALE_SWAP_GAS);
        let mut out = Vec::new();
        for tx in [mint, approve, swap] {
            out.push(self.send(tx).await.wrap_err("the whale's swap")?);
        }
        Ok(out)
    }

    /// tUSD into the account's adapter + the adapter's swapExactTokensForTokens(tUSD -> TKN,
    /// recipient = the account), with 1% slippage on the router's quote.
    pub(super) async fn buy(&self, account: Address, usd: u64) -> eyre::Result<(Vec<Call>, U256)> {
        let d = self.d;
        let router = IUniswapV2Router02::new(d.uniswap_v2_router, self.provider());
        let amounts = router
            .getAmountsOut(U256::from(usd), vec![d.usd, d.tkn])
            .call()
            .await
            .wrap_err("getAmountsOut")?;
        let quote = *amounts.last().ok_or_eyre("getAmountsOut returned nothing")?;
        let min_out = quote * U256::from(99) / U256::from(100);
        let deadline = U256::from(self.chain_time().await? + 600);
        let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
            amountIn: U256::from(usd),
            amountOutMin: min_out,
            path: vec![d.usd, d.tkn],
            to: account,
            deadline,
        };
        let adapter = sak_contracts::adapter_of(d.session_adapter, account);
        let calls = funded_call(adapter, d.usd, U256::from(usd), &Call::contract(d.uniswap_v2_router, &swap));
        Ok((calls, min_out))
    }

    /// The pool's mid price: tUSD base units per whole TKN (`getReserves`).
    pub(super) async fn price(&self) -> eyre::Result<U256> {
        let pair = IUniswapV2Pair::new(self.d.usd_tkn_pair, self.provider());
        let token0 = pair.token0().call().await.wrap_err("token0")?;
        let r = pair.getReserves().call().await.wrap_err("getReserves")?;
        let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
        let (usd, tkn) = if token0 == self.d.usd { (r0, r1) } else { (r1, r0) };
        eyre::ensure!(!tkn.is_zero(), "the pool is empty");
        Ok(usd * U256::from(TKN) / tkn)
    }

    pub(super) async fn holdings(&self, account: Address) -> eyre::Result<Holdings> {
        let d = self.d;
        let bal = |token| async move {
            MockERC20::new(token, self.provider()).balanceOf(account).call().await.wrap_err("balanceOf")
        };
        let deposit = IEntryPoint::new(d.entry_point, self.provider())
            .balanceOf(account)
            .call()
            .await
            .wrap_err("deposit")?;
        Ok(Holdings {
            eth: self.provider().get_balance(account).await? + deposit,
            usd: bal(d.usd).await?,
            tkn: bal(d.tkn).await?,
            weth: bal(d.weth).await?,
        })
    }

    pub(super) async fn spent(&self, account: Address, id: u32) -> eyre::Result<U256> {
        let s = SakAccount::new(account, self.provider())
            .getSpend(id, self.d.usd)
            .call()
            .await
            .wrap_err("getSpend")?;
        Ok(U256::from(s.spent))
    }

    pub(super) async fn chain_time(&self) -> eyre::Result<u64> {
        let block =
            self.provider().get_block_by_number(Default::default()).await?.ok_or_eyre("no latest block")?;
        Ok(block.header.timestamp)
    }

    pub(super) async fn send(&self, tx: TransactionRequest) -> eyre::Result<TransactionReceipt> {
        let receipt = self.provider().send_transaction(tx).await?.get_receipt().await?;
        eyre::ensure!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
        Ok(receipt)
    }

    pub(super) async fn receipt(&self, hash: B256) -> eyre::Result<TransactionReceipt> {
        self.provider().get_transaction_receipt(hash).await?.ok_or_eyre("no receipt")
    }

    pub(super) fn push_tx(
        &mut self,
        phase: &'static str,
        actor: &'static str,
        action: String,
        receipts: &[&TransactionReceipt],
    ) {
        let gas: u128 = receipts.iter().map(|r| u128::from(r.gas_used) * r.effective_gas_price).sum();
        let hashes: Vec<B256> = receipts.iter().map(|r| r.transaction_hash).collect();
        self.tx_hashes.extend(&hashes);
        self.steps.push(Step {
            n: self.steps.len() + 1,
            phase,
            actor,
            action,
            result: "ok",
            decided_by: None,
            error: None,
            detail: None,
            remaining: None,
            renews_at: None,
            tusd_spent: "0".into(),
            tkn_received: "0".into(),
            gas_wei: gas.to_string(),
            gas_paid_by: Some(actor),
            tx_hashes: hashes,
            user_op_hash: None,
        });
    }
}
