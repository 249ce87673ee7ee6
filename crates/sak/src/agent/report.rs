//! What an agent's act reports: field names are the `--json` interface of `sak send` and
//! `sak swap`.

use super::{decimals_of, token_name};
use crate::Chain;
use alloy::primitives::{Address, B256, Bytes, U256};
use sak_policy::{Action, Call};
use sak_primitives::units::{format_amount, format_period, format_time_from};
use sak_signer::guard::Recovered;
use serde::Serialize;

/// A swap as asked, in base units.
#[derive(Debug, Clone, Serialize)]
pub struct SwapPlan {
    /// The router.
    pub router: Address,
    /// The token sold.
    pub token_in: Address,
    /// The token bought.
    pub token_out: Address,
    /// Base units of `token_in` sold (moved into the account's adapter, which sells them).
    pub amount_in: String,
    /// Base units of `token_out` at least received.
    pub min_out: String,
    /// The sold token's decimals.
    pub decimals_in: u8,
    /// The bought token's decimals.
    pub decimals_out: u8,
    /// The router's deadline (unix seconds, chain time + 10 minutes).
    pub deadline: u64,
    /// What the account received: its `token_out` balance after minus before.
    pub received: Option<String>,
}

/// What `sak send` and `sak swap` print. Amounts are decimal strings in base units (with the
/// token's `decimals` beside them when known); times are unix seconds of chain time.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `send` or `swap`.
    pub command: &'static str,
    /// The outcome contract (README, "Exit codes"): `included` (exit 0), `reverted` (included,
    /// its calls reverted: exit 4) or `checked` (a dry run: nothing signed). Errors say
    /// `refused`, `failed` or `unknown` in their own document.
    pub state: &'static str,
    /// The network's name in the home.
    pub network: String,
    /// Its chain id.
    pub chain_id: u64,
    /// The account that acted (a smart account, or an EIP-7702 delegated EOA).
    pub account: Address,
    /// `smart` or `7702`.
    pub account_kind: &'static str,
    /// The session id.
    pub session: u32,
    /// The session key's address and name in the key directory.
    pub key: Address,
    /// The key's name (or `$SAK_SESSION_KEY`).
    pub key_name: String,
    /// How it travelled: `self` (our own handleOps), `bundler`, or `direct` (executeWithSession).
    pub via: &'static str,
    /// True: only the policy was asked; nothing was signed, sent or recorded.
    pub dry_run: bool,
    /// False with --no-preflight: the contracts alone decided.
    pub preflight: bool,
    /// The batch, in order.
    pub calls: Vec<CallOut>,
    /// Operations of this session an earlier run left in flight, settled before this one.
    pub recovered: Vec<RecoveredOut>,
    /// The ERC-4337 user operation hash (none on the direct path or in a dry run).
    pub user_op_hash: Option<B256>,
    /// The transaction that included it, and its block.
    pub transaction: Option<B256>,
    /// That transaction's block.
    pub block: Option<u64>,
    /// Wei paid for gas...
    pub gas_cost_wei: Option<String>,
    /// ...by `account` (user operations) or `relayer` (direct).
    pub gas_paid_by: Option<&'static str>,
    /// Whether the calls executed (false: included, but they reverted; gas was paid).
    pub success: Option<bool>,
    /// What the policy charged (in a dry run: would charge), per token, with what remains of
    /// the period's allowance after it and when that renews. Empty with --no-preflight.
    pub charges: Vec<ChargeOut>,
    /// Every capped token of the session after this operation (a dry run: now): what remains
    /// this period and when it renews.
    pub allowances: Vec<AllowanceOut>,
    /// The session's gas budget, if it has one: what remains this period.
    pub gas_budget: Option<GasBudgetOut>,
    /// `sak swap` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapPlan>,
}

/// One call of the batch.
#[derive(Debug, Serialize)]
pub struct CallOut {
    /// The contract or address called.
    pub to: Address,
    /// Wei sent with it.
    pub value: String,
    /// The call data (hex).
    pub data: Bytes,
    /// What it does, in words (`approve 300 tUSD to router`).
    pub description: String,
}

impl CallOut {
    pub(crate) fn new(call: &Call, chain: &Chain, account: Address) -> Self {
        Self {
            to: call.target,
            value: call.value.to_string(),
            data: call.data.clone(),
            description: describe_call(call, chain, account),
        }
    }
}

/// One token charge of the operation.
#[derive(Debug, Serialize)]
pub struct ChargeOut {
    /// The token (`NATIVE` for ETH).
    pub token: Address,
    /// The book's name (`ETH` for native ETH), else the address.
    pub name: String,
    /// Its decimals, when known.
    pub decimals: Option<u8>,
    /// Base units charged.
    pub amount: String,
    /// What remains of the period's allowance after this charge.
    pub remaining: String,
    /// When the period ends and the allowance renews.
    pub renews_at: u64,
}

impl ChargeOut {
    pub(crate) fn new(c: &sak_policy::Charge, chain: &Chain, decimals: &[(Address, Option<u8>)]) -> Self {
        Self {
            token: c.token,
            name: token_name(chain, c.token),
            decimals: decimals_of(decimals, c.token),
            amount: c.amount.to_string(),
            remaining: c.remaining.to_string(),
            renews_at: c.resets_at,
        }
    }
}

/// One capped token of the session.
#[derive(Debug, Serialize)]
pub struct AllowanceOut {
    /// The token.
    pub token: Address,
    /// The book's name, else the address.
    pub name: String,
    /// Its decimals, when known.
    pub decimals: Option<u8>,
    /// The allowance per period.
    pub cap: String,
    /// The period, in seconds.
    pub period_s: u32,
    /// What remains this period.
    pub remaining: String,
    /// When the period ends and the allowance renews.
    pub renews_at: u64,
    /// The chain time it was read at.
    #[serde(skip)]
    pub now: u64,
}

impl AllowanceOut {
    /// In words: what remains, of what, when it renews.
    pub fn sentence(&self) -> String {
        format!(
            "{} {} remains this period (of {} per {}), renews at {}",
            sak_primitives::units::format_amount(self.remaining.parse().unwrap_or_default(), self.decimals),
            self.name,
            sak_primitives::units::format_amount(self.cap.parse().unwrap_or_default(), self.decimals),
            format_period(u64::from(self.period_s)),
            format_time_from(self.renews_at, self.now)
        )
    }
}

/// The session's gas budget this period.
#[derive(Debug, Serialize)]
pub struct GasBudgetOut {
    /// The budget per period, in wei.
    pub budget_wei: String,
    /// What remains this period.
    pub remaining_wei: String,
    /// When the period ends.
    pub renews_at: u64,
}

/// An intent an earlier run left unsettled, and how it ended now.
#[derive(Debug, Serialize)]
pub struct RecoveredOut {
    /// The ledger's intent id.
    pub intent: i64,
    /// `released` (never signed), `included` (it had landed), `failed` (it can never land) or
    /// `pending` (signed, not on chain yet: this run's operation takes its nonce). Nothing is
    /// ever resubmitted.
    pub outcome: &'static str,
    /// Why, in words.
    pub reason: Option<String>,
    /// The operation's hash, when it was signed.
    pub user_op_hash: Option<B256>,
}

impl From<&Recovered> for RecoveredOut {
    fn from(r: &Recovered) -> Self {
        let (intent, outcome, reason, user_op_hash) = match r {
            Recovered::Released(id) => (id.0, "released", None, None),
            Recovered::Included(id, hash) => (id.0, "included", None, Some(*hash)),
            Recovered::Failed(id, reason) => (id.0, "failed", Some(reason.clone()), None),
            Recovered::Pending(id, hash) => (
                id.0,
                "pending",
                Some("signed, not on chain yet; the next operation on this session takes its nonce".into()),
                Some(*hash),
            ),
        };
        Self { intent, outcome, reason, user_op_hash }
    }
}

/// A call in words, with the book's names and the tokens' units where known.
pub(crate) fn describe_call(call: &Call, chain: &Chain, account: Address) -> String {
    let c = &chain.contracts;
    let adapter = c.adapter_of(account);
    let who = |a: Address| match a {
        a if a == account => "the account".to_owned(),
        a if a == adapter => "the account's adapter".to_owned(),
        a => c.name(a),
    };
    let amount =
        |raw: U256, token: Address| format!("{} {}", format_amount(raw, c.decimals(token)), c.name(token));
    match sak_policy::describe(call) {
        Action::EthSend { to, value } => {
            format!("send {} ETH to {}", format_amount(value, Some(18)), who(to))
        }
        Action::Transfer { token, to, amount: a } => format!("transfer {} to {}", amount(a, token), who(to)),
        Action::Approve { token, spender, amount: a } => {
            format!("approve {} to {}", amount(a, token), who(spender))
        }
        Action::Swap { function, amount_in, amount_out, path, recipient, .. } => {
            let (first, last) =
                (path.first().copied().unwrap_or_default(), path.last().copied().unwrap_or_default());
            format!(
                "{function} {} -> {} {}, to {}",
                amount_in.map_or_else(|| "ETH".to_owned(), |a| amount(a, first)),
                if function.contains("ExactTokensFor") || function.contains("ExactETHFor") {
                    "at least"
                } else {
                    "exactly"
                },
                amount(amount_out, last),
                who(recipient)
            )
        }
        Action::Other { target, selector } => {
            let name = selector.and_then(crate::words::selector_name).map_or_else(
                || selector.map_or_else(|| "(malformed call data)".into(), |s| s.to_string()),
                |(n, _)| n.to_owned(),
            );
            let value = if call.value.is_zero() {
                String::new()
            } else {
                format!(" with {} ETH", format_amount(call.value, Some(18)))
            };
            format!("call {} {name}{value}", who(target))
        }
        _ => format!("call {}", who(call.target)),
    }
}
