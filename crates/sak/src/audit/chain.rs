//! `sak audit --chain`: the account's session operations as the chain has them.
//!
//! Two kinds of event name a session operation: the EntryPoint's `UserOperationEvent` for the
//! account whose nonce carries the session tag (the key's top 32 bits, then the session id),
//! and the account's own `SessionExecuted` for the direct path. Each is marked `here` when this
//! home's ledger has its user operation hash or transaction, else `elsewhere`: signed by a key
//! used from another machine (an agent's), or by a home whose ledger was lost.

use crate::{Chain, Hinted, Home, Result, error::WrapErr, scan};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use sak_contracts::{IEntryPoint, SakAccount};
use sak_primitives::units::format_time;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One session operation found on the chain.
#[derive(Debug, Serialize)]
pub struct ChainOp {
    /// The session it ran under.
    pub session: u32,
    /// `user-op` (through the EntryPoint) or `direct` (`executeWithSession`).
    pub path: &'static str,
    /// Its block.
    pub block: u64,
    /// The block's time (unix seconds), and as `YYYY-MM-DD HH:MM:SS UTC`.
    pub at: u64,
    /// The same, as text.
    pub time: String,
    /// The transaction that carried it.
    pub tx_hash: B256,
    /// The user operation's hash (null on the direct path).
    pub user_op_hash: Option<B256>,
    /// The EntryPoint nonce (user ops) or the session's direct-path nonce.
    pub nonce: U256,
    /// Whether its calls succeeded (a direct call that reverts leaves no event: always true).
    pub success: bool,
    /// What the account paid the EntryPoint for it, in wei (user ops; null on the direct path,
    /// where the relayer pays).
    pub gas_cost_wei: Option<String>,
    /// `here` (this home's ledger has it) or `elsewhere`.
    pub origin: &'static str,
}

/// What `--chain` adds to the audit.
#[derive(Debug, Serialize)]
pub struct ChainAudit {
    /// The account.
    pub account: Address,
    /// Its chain.
    pub chain_id: u64,
    /// The blocks scanned, both ends included.
    pub from_block: u64,
    /// The last block scanned.
    pub to_block: u64,
    /// The operations, oldest first.
    pub ops: Vec<ChainOp>,
    /// How many of `ops` were signed elsewhere.
    pub elsewhere: usize,
}

/// The session operations of this network's account from `from_block` (default: the earliest
/// grant recorded here, else the genesis) to the head. `known` holds the user operation and
/// transaction hashes this home's ledger has.
pub(super) async fn session_ops(
    home: &Home,
    chain: &Chain,
    from_block: Option<u64>,
    known: &HashSet<B256>,
) -> Result<ChainAudit> {
    let account = home.account(chain.chain_id)?;
    crate::sessions::require_sak_account(&account, "`sak audit --chain`")?;
    let head = chain.provider.get_block_number().await.wrap_err("eth_blockNumber")?;
    let from = match from_block {
        Some(b) => b,
        None => home
            .state()?
            .networks
            .get(&home.network_name)
            .and_then(|n| n.sessions.iter().filter(|s| s.account == account.address).map(|s| s.block).min())
            .unwrap_or(0),
    };
    if from > head {
        return Err(Hinted::new(
            format!("--from-block {from} is past the chain's head (block {head})"),
            "give a block at or before the head, or leave --from-block out to scan from the first grant",
        )
        .into());
    }
    let user_ops = Filter::new()
        .address(chain.contracts.entry_point)
        .event_signature(IEntryPoint::UserOperationEvent::SIGNATURE_HASH)
        .topic2(account.address.into_word());
    let direct =
        Filter::new().address(account.address).event_signature(SakAccount::SessionExecuted::SIGNATURE_HASH);

    let range = (from, head);
    let mut ops = Vec::new();
    let mut times = BlockTimes::default();
    for log in scan::logs(home, &chain.provider, &user_ops, range, "the account's user operations").await? {
        let e =
            log.log_decode::<IEntryPoint::UserOperationEvent>().wrap_err("decoding a UserOperationEvent")?;
        let e = &e.inner.data;
        let Some(session) = sak_userop::session_of_nonce(e.nonce) else { continue };
        let (block, tx_hash) = scan::placed(&log)?;
        ops.push(ChainOp {
            session,
            path: "user-op",
            block,
            at: 0,
            time: String::new(),
            tx_hash,
            user_op_hash: Some(e.userOpHash),
            nonce: e.nonce,
            success: e.success,
            gas_cost_wei: Some(e.actualGasCost.to_string()),
            origin: if known.contains(&e.userOpHash) { "here" } else { "elsewhere" },
        });
        times.note(&log);
    }
    for log in scan::logs(home, &chain.provider, &direct, range, "the account's direct calls").await? {
        let e =
            log.log_decode::<SakAccount::SessionExecuted>().wrap_err("decoding a SessionExecuted event")?;
        let (block, tx_hash) = scan::placed(&log)?;
        ops.push(ChainOp {
            session: e.inner.data.id,
            path: "direct",
            block,
            at: 0,
            time: String::new(),
            tx_hash,
            user_op_hash: None,
            nonce: e.inner.data.nonce,
            success: true,
            gas_cost_wei: None,
            origin: if known.contains(&tx_hash) { "here" } else { "elsewhere" },
        });
        times.note(&log);
    }
    ops.sort_by_key(|o| o.block);
    for op in &mut ops {
        op.at = times.get(&chain.provider, op.block).await?;
        op.time = format_time(op.at);
    }
    let elsewhere = ops.iter().filter(|o| o.origin == "elsewhere").count();
    Ok(ChainAudit {
        account: account.address,
        chain_id: chain.chain_id,
        from_block: from,
        to_block: head,
        ops,
        elsewhere,
    })
}

/// Block times: from the logs when the node includes them, else read once per block.
#[derive(Default)]
struct BlockTimes(BTreeMap<u64, u64>);

impl BlockTimes {
    fn note(&mut self, log: &Log) {
        if let (Some(block), Some(t)) = (log.block_number, log.block_timestamp) {
            self.0.insert(block, t);
        }
    }

    async fn get(&mut self, provider: &DynProvider, block: u64) -> Result<u64> {
        if let Some(t) = self.0.get(&block) {
            return Ok(*t);
        }
        let header = provider
            .get_block_by_number(block.into())
            .await
            .wrap_err_with(|| format!("eth_getBlockByNumber {block}"))?
            .ok_or_else(|| {
                crate::Error::msg(format!(
                    "block {block} is not on the chain any more (a reorg?): run the audit again"
                ))
            })?;
        self.0.insert(block, header.header.timestamp);
        Ok(header.header.timestamp)
    }
}
