//! `sak audit --chain`: the account's session operations as the chain has them.
//!
//! Two kinds of event name a session operation: the EntryPoint's `UserOperationEvent` for the
//! account whose nonce carries the session tag (the key's top 32 bits, then the session id),
//! and the account's own `SessionExecuted` for the direct path. Each is marked `here` when this
//! home's ledger has its user operation hash or transaction, else `elsewhere`: signed by a key
//! used from another machine (an agent's), or by a home whose ledger was lost.

use crate::{ctx::Ctx, output, scan};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use eyre::WrapErr;
use sak_contracts::{IEntryPoint, SakAccount};
use sak_primitives::units::format_time;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One session operation found on the chain.
#[derive(Debug, Serialize)]
pub(super) struct ChainOp {
    /// The session it ran under.
    pub(super) session: u32,
    /// `user-op` (through the EntryPoint) or `direct` (`executeWithSession`).
    pub(super) path: &'static str,
    pub(super) block: u64,
    /// The block's time (unix seconds), and as `YYYY-MM-DD HH:MM:SS UTC`.
    pub(super) at: u64,
    pub(super) time: String,
    pub(super) tx_hash: B256,
    /// The user operation's hash (null on the direct path).
    pub(super) user_op_hash: Option<B256>,
    /// The EntryPoint nonce (user ops) or the session's direct-path nonce.
    pub(super) nonce: U256,
    /// Whether its calls succeeded (a direct call that reverts leaves no event: always true).
    pub(super) success: bool,
    /// What the account paid the EntryPoint for it, in wei (user ops; null on the direct path,
    /// where the relayer pays).
    pub(super) gas_cost_wei: Option<String>,
    /// `here` (this home's ledger has it) or `elsewhere`.
    pub(super) origin: &'static str,
}

/// What `--chain` adds to the audit.
#[derive(Debug, Serialize)]
pub(super) struct ChainAudit {
    pub(super) account: Address,
    pub(super) chain_id: u64,
    /// The blocks scanned, both ends included.
    pub(super) from_block: u64,
    pub(super) to_block: u64,
    pub(super) ops: Vec<ChainOp>,
    /// How many of `ops` were signed elsewhere.
    pub(super) elsewhere: usize,
}

/// The session operations of this network's account from `from_block` (default: the earliest
/// grant recorded here, else the genesis) to the head. `known` holds the user operation and
/// transaction hashes this home's ledger has.
pub(super) async fn session_ops(
    ctx: &Ctx,
    from_block: Option<u64>,
    known: &HashSet<B256>,
) -> eyre::Result<ChainAudit> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let head = chain.provider.get_block_number().await.wrap_err("eth_blockNumber")?;
    let from = match from_block {
        Some(b) => b,
        None => ctx
            .state()?
            .networks
            .get(&ctx.network_name)
            .and_then(|n| n.sessions.iter().filter(|s| s.account == account.address).map(|s| s.block).min())
            .unwrap_or(0),
    };
    if from > head {
        return Err(output::Hinted::new(
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
    for log in scan::logs(ctx, &chain.provider, &user_ops, range, "the account's user operations").await? {
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
    for log in scan::logs(ctx, &chain.provider, &direct, range, "the account's direct calls").await? {
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

    async fn get(&mut self, provider: &DynProvider, block: u64) -> eyre::Result<u64> {
        if let Some(t) = self.0.get(&block) {
            return Ok(*t);
        }
        let header = provider
            .get_block_by_number(block.into())
            .await
            .wrap_err_with(|| format!("eth_getBlockByNumber {block}"))?
            .ok_or_else(|| {
                eyre::eyre!("block {block} is not on the chain any more (a reorg?): run the audit again")
            })?;
        self.0.insert(block, header.header.timestamp);
        Ok(header.header.timestamp)
    }
}

/// The `--chain` part of the human report.
pub(super) fn human(c: &ChainAudit) -> String {
    let mut s = format!(
        "\non chain: {} session operation{} of account {} in blocks {}..={}{}\n",
        c.ops.len(),
        if c.ops.len() == 1 { "" } else { "s" },
        c.account,
        c.from_block,
        c.to_block,
        match c.elsewhere {
            0 => String::new(),
            n => format!(", {n} signed elsewhere (not in this home's ledger)"),
        }
    );
    if c.ops.is_empty() {
        return s;
    }
    s += &format!(
        "{:<23}  {:>4}  {:<8} {:<9} {:<7} {}\n",
        "time (UTC)", "sess", "path", "origin", "result", "operation"
    );
    for op in &c.ops {
        let id = op.user_op_hash.map_or_else(|| format!("tx {}", op.tx_hash), |h| format!("op {h}"));
        s += &format!(
            "{:<23}  {:>4}  {:<8} {:<9} {:<7} {id}\n",
            op.time,
            format!("#{}", op.session),
            op.path,
            op.origin,
            if op.success { "ok" } else { "reverted" }
        );
    }
    s
}
