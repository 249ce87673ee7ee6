//! Where each session of an account was granted: its `SessionGranted` events, indexed
//! incrementally from the account's first block with code, in chunks ([`scan::logs`]), into
//! `data/index/grants-<network>-<account>.json`.
//!
//! A cache only. It holds blocks behind the network's confirmation depth (the newest blocks
//! are read afresh each time); a file from another chain (another genesis) or that does not
//! parse is rebuilt; deleting it loses nothing. What it answers is a block to start reading
//! the chain from, never a policy.

use crate::{Chain, Home, Result, scan};
use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use sak_signer::guard::Host;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// The chain's identity ([`sak_signer::settle::chain_identity`]).
    identity: B256,
    account: Address,
    /// The first block not indexed yet.
    next_block: u64,
    /// Session id → the block of its last grant.
    grants: BTreeMap<u32, u64>,
}

/// The block of session `id`'s last grant on `host`'s account, from the index brought up to the
/// head; None when the chain has no grant of it.
pub async fn grant_block(home: &Home, chain: &Chain, host: Host, id: u32) -> Result<Option<u64>> {
    let account = host.account;
    let identity = chain.identity;
    let path = home.paths.index_dir().join(format!("grants-{}-{account:#x}.json", home.network_name));
    let mut index = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Index>(&bytes).ok())
        .filter(|i| i.identity == identity && i.account == account)
        .unwrap_or_default();
    let latest = chain.provider.get_block_number().await?;
    let confirmed = latest.saturating_sub(home.network.depth() - 1);
    if index.account.is_zero() {
        index = Index {
            identity,
            account,
            next_block: first_block(chain, account, latest).await,
            ..Index::default()
        };
    }
    let filter = host.grants(None, 0);
    let what = "the account's session grants";
    if index.next_block <= confirmed {
        let logs = scan::logs(home, &chain.provider, &filter, (index.next_block, confirmed), what).await?;
        record(host, &mut index.grants, &logs)?;
        index.next_block = confirmed + 1;
        crate::store::write_atomic(&path, &serde_json::to_vec(&index)?, 0o600)?;
    }
    if let Some(block) = index.grants.get(&id) {
        return Ok(Some(*block));
    }
    let mut fresh = BTreeMap::new();
    if index.next_block <= latest {
        record(
            host,
            &mut fresh,
            &scan::logs(home, &chain.provider, &filter, (index.next_block, latest), what).await?,
        )?;
    }
    Ok(fresh.get(&id).copied())
}

fn record(host: Host, grants: &mut BTreeMap<u32, u64>, logs: &[alloy::rpc::types::Log]) -> Result<()> {
    for log in logs {
        let (block, _) = scan::placed(log)?;
        if let Some(id) = host.session_of(&log.inner) {
            grants.insert(id, block);
        }
    }
    Ok(())
}

/// The first block at which `account` has code (a binary search; code comes with deployment or
/// delegation, and nothing is granted before it). 0 when the node cannot say (no archive state).
async fn first_block(chain: &Chain, account: Address, latest: u64) -> u64 {
    let has_code = |block: u64| async move {
        chain.provider.get_code_at(account).block_id(block.into()).await.map(|c| !c.is_empty())
    };
    let (mut low, mut high) = (0, latest);
    while low < high {
        let mid = low + (high - low) / 2;
        match has_code(mid).await {
            Ok(true) => high = mid,
            Ok(false) => low = mid + 1,
            Err(e) => {
                tracing::debug!("eth_getCode at block {mid}: {e}; indexing grants from block 0");
                return 0;
            }
        }
    }
    low
}
