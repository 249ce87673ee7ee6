//! A price-trigger bot on the sak facade: for ROUNDS rounds, while one TKN costs at most LIMIT
//! tUSD on the router, it buys with SIZE tUSD under session SESSION, until the policy refuses.
//!
//! ```text
//! sak node up &
//! sak account create --kind smart && sak key new --name bot
//! sak session grant --key bot --role trader --cap tUSD:1000/1d
//! cargo run -p sak --example price_bot -- 1 2500 300 10     # SESSION LIMIT SIZE ROUNDS
//! ```
//!
//! Every swap goes through the guarded signer: the session's policy decides before anything is
//! signed, the ledger records it, and the chain enforces the same caps.

use sak::{
    Home, Options, U256,
    agent::{self, Agent, SwapRequest},
    units::{format_amount, parse_amount},
};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> sak::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let session: u32 = arg(0, "1").parse().map_err(|_| sak::Error::msg("SESSION is a number"))?;
    let (limit, size) = (arg(1, "2500"), arg(2, "300"));
    let rounds: u32 = arg(3, "10").parse().map_err(|_| sak::Error::msg("ROUNDS is a number"))?;

    let home = Home::open(Options::default().progress(|line| eprintln!("{line}")))?;
    let chain = home.chain().await?;
    let account = home.account(chain.chain_id)?.address;
    let options = agent::Options::new(session);
    let limit = parse_amount(&limit, Some(6)).ok_or_else(|| sak::Error::msg("LIMIT is tUSD per TKN"))?;
    let size_raw = parse_amount(&size, Some(6)).ok_or_else(|| sak::Error::msg("SIZE is tUSD"))?;
    let one_tkn = U256::from(10u64).pow(U256::from(18u64));

    for _ in 0..rounds {
        let mut request = SwapRequest {
            router: None,
            token_in: "tUSD".into(),
            token_out: "TKN".into(),
            amount: size.clone(),
            min_out: "0".into(),
        };
        let tkn = agent::quote(&request, &chain).await?;
        let price = size_raw * one_tkn / tkn.max(U256::from(1u64));
        println!("1 TKN = {} tUSD", format_amount(price, Some(6)));
        if price <= limit {
            // At most 1% less than quoted, or the swap reverts.
            request.min_out = format_amount(tkn * U256::from(99u64) / U256::from(100u64), Some(18));
            let (calls, plan) = agent::swap_calls(&request, &chain, account).await?;
            match Agent::open(&options, &home, &chain).await?.run("swap", calls, Some(plan)).await {
                Ok(report) => println!("bought: {} (tx {:?})", report.state, report.transaction),
                Err(e) if e.hinted().is_some_and(|h| h.refused) => {
                    println!("the session refuses: {e}");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}
