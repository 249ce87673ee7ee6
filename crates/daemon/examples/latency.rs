//! What the daemon adds per operation: ROUNDS dry-run swaps of session SESSION through the
//! in-process guard (the facade, key held in memory) and through a running `sak agent serve`
//! of the same home, alternated in one run, with the mean and median of each.
//!
//! ```text
//! sak agent serve --session 1 &
//! cargo run --release -p sak-daemon --example latency -- 1 http://127.0.0.1:8645 40
//! ```

use sak::{
    Home, Options,
    agent::{self, Agent, SwapRequest},
};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> sak::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let session: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
    let url = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8645".into());
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(40);

    let home = Home::open(Options::default())?;
    let chain = home.chain().await?;
    let account = home.account(chain.chain_id)?.address;
    let token = std::fs::read_to_string(sak_daemon::token_path(&home))?;
    let mut options = agent::Options::new(session);
    options.held_key = Some(Agent::open(&options, &home, &chain).await?.held_key());
    options.dry_run = true;
    let request = SwapRequest {
        router: None,
        token_in: "tUSD".into(),
        token_out: "TKN".into(),
        amount: "1".into(),
        min_out: "0".into(),
    };
    let http = alloy::transports::http::reqwest::Client::new();
    let body = serde_json::json!({ "token_in": "tUSD", "token_out": "TKN", "amount": "1", "min_out": "0", "dry_run": true });

    let (mut local, mut daemon) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let (calls, plan) = agent::swap_calls(&request, &chain, account).await?;
        Agent::open(&options, &home, &chain).await?.run("swap", calls, Some(plan)).await?;
        local.push(started.elapsed());

        let started = Instant::now();
        let answer = http
            .post(format!("{url}/v1/swap"))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
            .await
            .map_err(|e| sak::Error::msg(format!("the daemon at {url}: {e}")))?;
        if !answer.status().is_success() {
            return Err(sak::Error::msg(format!("the daemon answered {}", answer.status())));
        }
        daemon.push(started.elapsed());
    }
    let (l, d) = (summary(&mut local), summary(&mut daemon));
    println!("{rounds} dry-run swaps each, alternated, session #{session}");
    println!("in-process guard  mean {:>7.2} ms  median {:>7.2} ms", l.0, l.1);
    println!("through the daemon mean {:>7.2} ms  median {:>7.2} ms", d.0, d.1);
    println!("added per operation: {:.2} ms mean ({:.2}x)", d.0 - l.0, d.0 / l.0);
    Ok(())
}

/// (mean, median) in milliseconds.
fn summary(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (times.iter().copied().map(ms).sum::<f64>() / times.len() as f64, ms(times[times.len() / 2]))
}
