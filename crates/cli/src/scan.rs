//! Reading events over a range of blocks, in requests of at most [`CHUNK`] blocks (what public
//! endpoints serve), with progress on long scans.

use crate::{cli::GlobalArgs, output};
use alloy::{
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};

/// Blocks per `eth_getLogs` request.
pub(crate) const CHUNK: u64 = 10_000;

/// The logs `filter` matches in blocks `from..=to`, in block order. `what` names them in
/// progress lines and errors.
pub(crate) async fn logs(
    global: &GlobalArgs,
    provider: &DynProvider,
    filter: &Filter,
    (from, to): (u64, u64),
    what: &str,
) -> eyre::Result<Vec<Log>> {
    let chunks = to.saturating_sub(from) / CHUNK + 1;
    let mut out = Vec::new();
    for (n, start) in (from..=to).step_by(CHUNK as usize).enumerate() {
        let end = (start + CHUNK - 1).min(to);
        if chunks > 3 {
            output::progress(
                global,
                &format!("{what}: scanning blocks {start}..={end} ({}/{chunks})", n + 1),
            );
        }
        let chunk = provider.get_logs(&filter.clone().from_block(start).to_block(end)).await.map_err(|e| {
            output::Hinted::new(
                format!("reading {what} from the chain (eth_getLogs, blocks {start}..={end}): {e}"),
                "use an RPC endpoint that serves eth_getLogs (--rpc-url), or scan fewer blocks with --from-block",
            )
        })?;
        out.extend(chunk);
    }
    Ok(out)
}

/// Where a log sits: its block and transaction (a node that omits them served a pending log).
pub(crate) fn placed(log: &Log) -> eyre::Result<(u64, alloy::primitives::B256)> {
    match (log.block_number, log.transaction_hash) {
        (Some(block), Some(tx)) => Ok((block, tx)),
        _ => eyre::bail!("the node returned a log without its block or transaction (a pending log?)"),
    }
}
