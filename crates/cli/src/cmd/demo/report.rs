//! What the demo reports: field names are the `--json` interface of `sak demo`.

use super::*;

/// What `sak demo --json` prints. Amounts are decimal strings in base units (tUSD: 6 decimals,
/// TKN, WETH and ETH: 18); times are unix seconds (chain time).
#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// Every check passed (the exit code is 0 exactly then).
    pub(super) ok: bool,
    pub(super) wall_time_s: f64,
    pub(super) chain: ChainInfo,
    pub(super) addresses: Addresses,
    pub(super) session: SessionInfo,
    pub(super) bot: BotInfo,
    pub(super) steps: Vec<Step>,
    pub(super) totals: Totals,
    pub(super) isolation: Vec<Isolation>,
    pub(super) audit_log: AuditLog,
    pub(super) checks: Vec<Check>,
    /// Every transaction hash printed (setup, bundles, owner actions).
    pub(super) tx_hashes: Vec<B256>,
    /// Every user operation hash printed.
    pub(super) user_op_hashes: Vec<B256>,
}

#[derive(Debug, Serialize)]
pub(super) struct ChainInfo {
    pub(super) rpc_url: String,
    pub(super) chain_id: u64,
    pub(super) profile: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Addresses {
    pub(super) owner: Address,
    /// The smart account, as computed before deployment (= `account`).
    pub(super) account_counterfactual: Address,
    pub(super) account: Address,
    pub(super) eoa_7702: Address,
    /// The 7702 EOA's code after delegation: `0xef0100 ‖ Sak7702Account`.
    pub(super) eoa_7702_code: String,
    pub(super) session_key: Address,
    pub(super) relayer: Address,
    pub(super) whale: Address,
    pub(super) contracts: Deployment,
}

#[derive(Debug, Serialize)]
pub(super) struct SessionInfo {
    pub(super) id: u32,
    pub(super) policy_toml: &'static str,
    pub(super) role: &'static str,
    pub(super) router: Address,
    pub(super) cap_token: Address,
    pub(super) cap_per_period: String,
    pub(super) period_s: u32,
    pub(super) valid_after: u64,
    pub(super) valid_until: u64,
    /// When the first period's allowance renews.
    pub(super) renews_at: u64,
    pub(super) gas_budget_wei: Option<String>,
    pub(super) revoked: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct BotInfo {
    /// Buy when 1 TKN costs less than this (tUSD base units).
    pub(super) threshold_tusd_per_tkn: String,
    pub(super) buy_tusd: String,
    /// The pool's mid price at each look (tUSD base units per TKN).
    pub(super) price_ticks: Vec<PriceTick>,
}

#[derive(Debug, Serialize)]
pub(super) struct PriceTick {
    pub(super) tusd_per_tkn: String,
    pub(super) triggered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Step {
    pub(super) n: usize,
    /// `setup`, `market`, `bot`, `forced`, `revoke`.
    pub(super) phase: &'static str,
    /// `owner`, `eoa`, `whale`, `bot`.
    pub(super) actor: &'static str,
    pub(super) action: String,
    /// `ok` (an owner or whale transaction), `allowed` or `refused` (a session operation).
    pub(super) result: &'static str,
    /// Who decided a session operation: `policy+chain` (allowed by both), `local-policy`
    /// (refused before signing), `chain` (refused by the contracts).
    pub(super) decided_by: Option<&'static str>,
    /// The refusal's error name, as the contracts name it.
    pub(super) error: Option<&'static str>,
    pub(super) detail: Option<String>,
    /// For `SpendCapExceeded`: what remained of the allowance (base units)...
    pub(super) remaining: Option<String>,
    /// ...and when it renews (unix seconds; known for local refusals).
    pub(super) renews_at: Option<u64>,
    pub(super) tusd_spent: String,
    pub(super) tkn_received: String,
    pub(super) gas_wei: String,
    /// Who paid `gas_wei`: `account` (a session operation), or the actor's own EOA.
    pub(super) gas_paid_by: Option<&'static str>,
    pub(super) tx_hashes: Vec<B256>,
    pub(super) user_op_hash: Option<B256>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Totals {
    pub(super) swaps_allowed: usize,
    pub(super) refused_local: usize,
    pub(super) refused_chain: usize,
    pub(super) tusd_spent: String,
    pub(super) tkn_received: String,
    /// Wei the account paid for the session's operations.
    pub(super) session_gas_wei: String,
    /// Wei charged to the session's gas budget on chain (prefunds, at most the budget).
    pub(super) gas_budget_used_wei: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Isolation {
    pub(super) asset: &'static str,
    pub(super) token: Option<Address>,
    pub(super) before: String,
    pub(super) after: String,
    /// `after - before`, signed.
    pub(super) change: String,
    /// What the policy allowed to happen to it.
    pub(super) allowed_change: String,
    pub(super) ok: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct AuditLog {
    pub(super) backend: &'static str,
    pub(super) decisions: usize,
    pub(super) allowed: usize,
    pub(super) refused: usize,
    pub(super) reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Check {
    pub(super) name: String,
    pub(super) ok: bool,
}
