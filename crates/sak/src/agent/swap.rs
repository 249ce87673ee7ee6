//! A swap as the user writes it, its calls through the account's adapter, and the router's quote.

use super::*;

/// A swap as the user writes it: tokens by name or address, amounts in whole units.
#[derive(Debug, Clone)]
pub struct SwapRequest {
    /// The Uniswap V2 router [default: the book's `uniswap-v2-router` or `router`].
    pub router: Option<String>,
    /// The token sold.
    pub token_in: String,
    /// The token bought.
    pub token_out: String,
    /// Whole units of `token_in` to sell.
    pub amount: String,
    /// Whole units of `token_out` to receive at least.
    pub min_out: String,
}

/// transfer(adapter, amountIn) on the token sold, then the adapter's
/// swapExactTokensForTokens(amountIn, minOut, [in, out], account, chain time + 10 min): one
/// batched operation, and the plan it carries out.
pub async fn swap_calls(
    args: &SwapRequest,
    chain: &Chain,
    account: Address,
) -> Result<(Vec<Call>, SwapPlan)> {
    let (router, token_in, token_out, decimals_in, decimals_out, amount_in) =
        resolve_swap(args, chain).await?;
    let min_out = parse_whole(&args.min_out, decimals_out, "--min-out")?;
    let deadline = chain.time().await? + DEADLINE_S;
    let adapter = chain.contracts.adapter_of(account);
    let calls =
        v2_swap_calls(adapter, router, (token_in, token_out), (amount_in, min_out), account, deadline);
    let plan = SwapPlan {
        router,
        token_in,
        token_out,
        amount_in: amount_in.to_string(),
        min_out: min_out.to_string(),
        decimals_in,
        decimals_out,
        deadline,
        received: None,
    };
    Ok((calls, plan))
}

/// What `args.amount` of the token sold buys now, in base units of the token bought: the
/// router's `getAmountsOut` over the pair, a price for a bot to decide on before any key is
/// touched. `min_out` is not read.
pub async fn quote(args: &SwapRequest, chain: &Chain) -> Result<U256> {
    let (router, token_in, token_out, _, _, amount_in) = resolve_swap(args, chain).await?;
    let amounts = IUniswapV2Router02::new(router, &chain.provider)
        .getAmountsOut(amount_in, vec![token_in, token_out])
        .call()
        .await
        .wrap_err_with(|| format!("quoting on the router {router} (getAmountsOut)"))?;
    amounts.last().copied().ok_or_err("the router quoted no amount")
}

/// The router, the tokens (in, out), their decimals and the amount sold in base units.
pub(super) async fn resolve_swap(
    args: &SwapRequest,
    chain: &Chain,
) -> Result<(Address, Address, Address, u8, u8, U256)> {
    let router = match &args.router {
        Some(r) => resolve(chain, r, "--router")?,
        None => ["uniswap-v2-router", "router"]
            .iter()
            .find_map(|name| chain.contracts.resolve(name).ok())
            .ok_or_else(|| {
                Hinted::new(
                    "no --router, and the network's book names no `uniswap-v2-router` or `router`",
                    "pass --router ADDRESS (a Uniswap V2 router the session may call), or add `router` \
                     to the network's [book]",
                )
            })?,
    };
    let token_in = resolve(chain, &args.token_in, "--in")?;
    let token_out = resolve(chain, &args.token_out, "--out")?;
    if token_in == token_out {
        return Err(
            Hinted::new("--in and --out are the same token", "swap between two different tokens").into()
        );
    }
    let decimals_in = decimals(chain, token_in).await?;
    let decimals_out = decimals(chain, token_out).await?;
    let amount_in = parse_whole(&args.amount, decimals_in, "--amount")?;
    if amount_in.is_zero() {
        return Err(Hinted::new("--amount is zero", "sell a positive amount").into());
    }
    Ok((router, token_in, token_out, decimals_in, decimals_out, amount_in))
}

/// A token's decimals: the book's, else its `decimals()`.
pub(super) async fn decimals(chain: &Chain, token: Address) -> Result<u8> {
    if let Some(d) = chain.contracts.decimals(token) {
        return Ok(d);
    }
    MockERC20::new(token, &chain.provider).decimals().call().await.map_err(|e| {
        Hinted::new(
            format!("cannot read decimals() of {token}: {e}"),
            "is it an ERC-20 token on this chain? add it to the network's [book] with its decimals",
        )
        .into()
    })
}

/// Whole units (`300`, `0.14`) in base units, never rounded.
pub(super) fn parse_whole(text: &str, decimals: u8, what: &str) -> Result<U256> {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_');
    plain.then(|| sak_primitives::units::parse_amount(text, Some(decimals))).flatten().ok_or_else(|| {
        Hinted::new(
            format!("{what} {text:?} is not an amount in whole units (at most {decimals} decimals)"),
            format!("write whole token units, e.g. {what} 300 or {what} 0.5"),
        )
        .into()
    })
}

/// transfer(adapter, amount_in) on `path.0`, then the adapter's
/// swapExactTokensForTokens(amount_in, min_out, [path.0, path.1], to, deadline) on `router`.
pub(crate) fn v2_swap_calls(
    adapter: Address,
    router: Address,
    path: (Address, Address),
    (amount_in, min_out): (U256, U256),
    to: Address,
    deadline: u64,
) -> Vec<Call> {
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: min_out,
        path: vec![path.0, path.1],
        to,
        deadline: U256::from(deadline),
    };
    funded_call(adapter, path.0, amount_in, &Call::contract(router, &swap))
}
