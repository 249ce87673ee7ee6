//! Reading events over a range of blocks, in requests of at most [`CHUNK`] blocks, fewer when
//! the endpoint refuses a range (adaptive: what public endpoints serve), with progress on long
//! scans.

use crate::{Hinted, Home, Result, error::bail};
use alloy::{
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};
use std::sync::atomic::{AtomicU64, Ordering};

/// Blocks per `eth_getLogs` request at most.
pub const CHUNK: u64 = 10_000;

/// Blocks per request now: halved each time the endpoint refuses a range (public providers
/// cap ranges, and results per answer), kept for the rest of the process (a long `sak watch`).
static SPAN: AtomicU64 = AtomicU64::new(CHUNK);

/// The logs `filter` matches in blocks `from..=to`, in block order. `what` names them in
/// progress lines and errors.
pub async fn logs(
    home: &Home,
    provider: &DynProvider,
    filter: &Filter,
    (from, to): (u64, u64),
    what: &str,
) -> Result<Vec<Log>> {
    let mut out = Vec::new();
    let mut start = from;
    let started = std::time::Instant::now();
    while start <= to {
        let span = SPAN.load(Ordering::Relaxed);
        let end = start.saturating_add(span - 1).min(to);
        if started.elapsed() > std::time::Duration::from_secs(2) {
            home.progress(&format!("{what}: scanning blocks {start}..={end} of {from}..={to}"));
        }
        match provider.get_logs(&filter.clone().from_block(start).to_block(end)).await {
            Ok(chunk) => {
                out.extend(chunk);
                start = end + 1;
            }
            // The endpoint answered, refusing: a range or result cap. Smaller requests.
            Err(e) if e.as_error_resp().is_some() && span > 1 => {
                tracing::debug!("eth_getLogs over {span} blocks refused ({e}): halving the range");
                SPAN.store(span / 2, Ordering::Relaxed);
            }
            Err(e) => {
                return Err(Hinted::new(
                    format!("reading {what} from the chain (eth_getLogs, blocks {start}..={end}): {e}"),
                    "use an RPC endpoint that serves eth_getLogs (--rpc-url), or scan fewer blocks with --from-block",
                )
                .into());
            }
        }
    }
    Ok(out)
}

/// Where a log sits: its block and transaction (a node that omits them served a pending log).
pub fn placed(log: &Log) -> Result<(u64, alloy::primitives::B256)> {
    match (log.block_number, log.transaction_hash) {
        (Some(block), Some(tx)) => Ok((block, tx)),
        _ => bail!("the node returned a log without its block or transaction (a pending log?)"),
    }
}
