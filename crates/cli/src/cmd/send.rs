//! `sak send` and `sak swap`: an agent acting under a session ([`sak::agent`]): the calls as
//! the user writes them, and what happened, printed.

use crate::{
    call_args::{encode_sig, parse_hex, parse_value, resolve},
    ctx::{Chain, Ctx},
    output::{self, AlreadyReported, Hinted},
};
use alloy::primitives::{Bytes, U256};
use clap::Args;
use sak::agent::{self, Agent, Report, SwapRequest, Via};
use sak_policy::Call;
use sak_primitives::units::format_time_from;
use std::path::PathBuf;

/// The part of `sak send --help` and `sak swap --help` about what they print.
macro_rules! agent_help {
    () => {
        "Before anything new is signed, operations an earlier run left in flight are settled from \
the chain (never resubmitted; `sak op list` shows them). One operation per session is in flight \
at a time: concurrent runs queue. Progress goes to stderr.\n\
With --json, stdout is one document: command, state (included, reverted, checked), network, chain_id, account, account_kind, session, \
key, key_name, via, dry_run, preflight, calls[] (to, value, data, description), recovered[], \
user_op_hash, transaction, block, gas_cost_wei, gas_paid_by, success, charges[] (token, name, \
decimals, amount, remaining, renews_at), allowances[] (token, name, decimals, cap, period_s, \
remaining, renews_at), gas_budget, and for swap: swap (router, token_in, token_out, amount_in, \
min_out, decimals_in, decimals_out, deadline, received). Amounts are decimal strings in base units; times unix seconds.\n\
Exit codes (the JSON error's state says the same): 0 included; 1 refused by the session's policy \
or by the contracts when simulated, nothing can move (the JSON error carries refusal.name, the contracts' \
error: SpendCapExceeded, CallNotPermitted, SessionNotActive, ClockOutsideSession, ...); 2 any other \
error, nothing can move; 3 signed, outcome unknown: it may still land (the JSON error carries intent \
and user_op_hash; `sak op status INTENT` settles it; do not repeat blindly); 4 included, its calls \
reverted (gas paid, nothing else moved)."
    };
}

/// Flags shared by `send` and `swap`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The session id (`sak session list`).
    #[arg(long)]
    pub(crate) session: u32,
    /// The session key (name or address) [default: the key the session was granted to here].
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// How to submit.
    #[arg(long, value_enum, default_value = "self")]
    pub(crate) via: Via,
    /// The bundler for --via bundler [default: the network's bundler_url].
    #[arg(long, value_name = "URL")]
    pub(crate) bundler_url: Option<String>,
    /// Decide with the local policy and print what would happen; sign and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Local and fork networks only: skip the off-chain policy and let the contracts refuse
    /// (to prove that the chain itself enforces the session).
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) no_preflight: bool,
    /// The session's nonce lane to sign in: operations of one lane go one at a time, so give
    /// each worker of a fleet a lane of its own (the caps hold across lanes).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) lane: u128,
    /// How long to wait for inclusion before reporting the outcome unknown (exit 3: it may
    /// still land; `sak op bump` replaces it with higher fees if it is stuck).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Args)]
#[command(
    after_help = concat!("Examples:\n  sak send --session 1 --to tUSD --sig 'transfer(address,uint256)' 0xabc…def 25000000\n  \
                        sak send --session 1 --to 0xRecipient --value 0.01ether\n  \
                        sak send --session 1 --batch calls.json --via bundler --dry-run\n\n", agent_help!())
)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    /// The contract or address called (0x address or a name from the network's book).
    #[arg(long, required_unless_present = "batch")]
    pub(crate) to: Option<String>,
    /// ETH sent with the call (`0.01ether`, `1gwei`, or wei).
    #[arg(long, default_value = "0", conflicts_with = "batch")]
    pub(crate) value: String,
    /// Raw call data (hex).
    #[arg(long, conflicts_with_all = ["sig", "batch"])]
    pub(crate) data: Option<String>,
    /// A function signature, with ARGS after it: 'transfer(address,uint256)' 0x… 100.
    #[arg(long, conflicts_with = "batch")]
    pub(crate) sig: Option<String>,
    /// The function's arguments (addresses may be names from the book).
    #[arg(requires = "sig", num_args = 0.., allow_negative_numbers = true)]
    pub(crate) args: Vec<String>,
    /// A JSON file of calls: [{"to": "...", "value": "0", "data": "0x..."}, ...].
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub(crate) batch: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = concat!("Examples:\n  sak swap --session 1 --in tUSD --out TKN --amount 300 --min-out 0.14\n  \
                        sak swap --session 1 --router 0x… --in tUSD --out TKN --amount 300 --min-out 0 --dry-run\n\n", agent_help!())
)]
pub(crate) struct SwapArgs {
    #[command(flatten)]
    pub(crate) agent: AgentArgs,
    /// The Uniswap V2 router [default: the book's `uniswap-v2-router` or `router`; local chains
    /// have one].
    #[arg(long, value_name = "ADDR|NAME")]
    pub(crate) router: Option<String>,
    /// The token sold (name or address).
    #[arg(long = "in", value_name = "TOKEN")]
    pub(crate) token_in: String,
    /// The token bought.
    #[arg(long = "out", value_name = "TOKEN")]
    pub(crate) token_out: String,
    /// Whole units of --in to sell (approved to the router in the same operation).
    #[arg(long)]
    pub(crate) amount: String,
    /// Whole units of --out to receive at least (slippage bound).
    #[arg(long)]
    pub(crate) min_out: String,
}

impl AgentArgs {
    fn options(&self) -> agent::Options {
        let mut o = agent::Options::new(self.session);
        o.key.clone_from(&self.key);
        o.via = self.via;
        o.bundler_url.clone_from(&self.bundler_url);
        o.dry_run = self.dry_run;
        o.no_preflight = self.no_preflight;
        o.receipt_timeout = Some(std::time::Duration::from_secs(self.timeout));
        o.lane = self.lane;
        o
    }
}

pub(crate) async fn send(args: SendArgs, ctx: &Ctx) -> eyre::Result<()> {
    let options = args.agent.options();
    agent::check(ctx, &options)?;
    let chain = ctx.chain().await?;
    // The calls first: bad input is refused before any key is decrypted.
    let calls = send_calls(&args, &chain)?;
    let report = Agent::open(&options, ctx, &chain).await?.run("send", calls, None).await?;
    print(ctx, &chain, &report)
}

pub(crate) async fn swap(args: SwapArgs, ctx: &Ctx) -> eyre::Result<()> {
    let options = args.agent.options();
    agent::check(ctx, &options)?;
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?.address;
    let request = SwapRequest {
        router: args.router,
        token_in: args.token_in,
        token_out: args.token_out,
        amount: args.amount,
        min_out: args.min_out,
    };
    let (calls, plan) = agent::swap_calls(&request, &chain, account).await?;
    let report = Agent::open(&options, ctx, &chain).await?.run("swap", calls, Some(plan)).await?;
    print(ctx, &chain, &report)
}

/// Prints the report; an operation included with its calls reverted exits 4.
fn print(ctx: &Ctx, chain: &Chain, report: &Report) -> eyre::Result<()> {
    output::emit(&ctx.global, report, || human(report, chain))?;
    if report.success == Some(false) {
        return Err(AlreadyReported {
            message: format!(
                "the operation was included but its calls reverted (tx {}): gas was paid, nothing else moved",
                report.transaction.unwrap_or_default()
            ),
            hint: "check the calls (amounts, balances, --min-out); `sak send --dry-run` shows what the policy allows",
            code: 4,
        }
        .into());
    }
    Ok(())
}

/// The calls `sak send` asks for: one (--to, --value, --data | --sig ARGS) or a --batch file.
fn send_calls(args: &SendArgs, chain: &Chain) -> eyre::Result<Vec<Call>> {
    if let Some(path) = &args.batch {
        return batch_calls(path, chain);
    }
    let to = args.to.as_deref().ok_or_else(|| {
        Hinted::new("nothing to send: no --to and no --batch", "pass --to ADDRESS (or --batch FILE)")
    })?;
    let target = resolve(chain, to, "--to")?;
    let value = parse_value(&args.value, "--value")?;
    let data = match (&args.data, &args.sig) {
        (Some(hex), _) => parse_hex(hex, "--data")?,
        (None, Some(sig)) => encode_sig(sig, &args.args, chain)?,
        (None, None) => Bytes::new(),
    };
    Ok(vec![Call::new(target, value, data)])
}

/// One entry of a `--batch` file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchEntry {
    to: String,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default)]
    data: Option<String>,
}

fn batch_calls(path: &std::path::Path, chain: &Chain) -> eyre::Result<Vec<Call>> {
    let hint = r#"write a JSON array of calls: [{"to": "tUSD", "value": "0", "data": "0xa9059cbb…"}, …]"#;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Hinted::new(format!("cannot read --batch {}: {e}", path.display()), hint))?;
    let entries: Vec<BatchEntry> = serde_json::from_str(&text)
        .map_err(|e| Hinted::new(format!("--batch {} is not a list of calls: {e}", path.display()), hint))?;
    if entries.is_empty() {
        return Err(Hinted::new(format!("--batch {} has no calls", path.display()), hint).into());
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let at = format!("--batch {} call {i}", path.display());
            let value = match &e.value {
                None => U256::ZERO,
                Some(serde_json::Value::String(s)) => parse_value(s, &format!("{at} value"))?,
                Some(serde_json::Value::Number(n)) => parse_value(&n.to_string(), &format!("{at} value"))?,
                Some(other) => {
                    return Err(Hinted::new(
                        format!("{at}: value {other} is neither a string nor a number"),
                        "write the value as \"0.01ether\", \"1gwei\" or wei",
                    )
                    .into());
                }
            };
            let data = e
                .data
                .as_deref()
                .map_or_else(|| Ok(Bytes::new()), |d| parse_hex(d, &format!("{at} data")))?;
            Ok(Call::new(resolve(chain, &e.to, &format!("{at} to"))?, value, data))
        })
        .collect()
}

/// The report in words.
fn human(report: &Report, chain: &Chain) -> String {
    use sak_primitives::units::format_amount as show_amount;
    let mut s = String::new();
    let head = if report.dry_run {
        format!(
            "dry run: session #{} would allow this {} (nothing signed or sent)\n",
            report.session, report.command
        )
    } else {
        format!(
            "{} done under session #{} on {} ({}{})\n",
            report.command,
            report.session,
            report.account,
            match report.via {
                "self" => "self-bundled",
                "bundler" => "through the bundler",
                _ => "direct: executeWithSession",
            },
            if report.preflight { "" } else { ", no local policy check" }
        )
    };
    s += &head;
    for c in &report.calls {
        s += &format!("  call      {}\n", c.description);
    }
    if let Some(h) = report.user_op_hash {
        s += &format!("  user op   {h}\n");
    }
    if let Some(tx) = report.transaction {
        s += &format!("  tx        {tx} (block {})\n", report.block.unwrap_or_default());
    }
    if let Some(gas) = &report.gas_cost_wei {
        s += &format!(
            "  gas       {} ETH, paid by the {}\n",
            show_amount(gas.parse().unwrap_or_default(), Some(18)),
            report.gas_paid_by.unwrap_or("account")
        );
    }
    for c in &report.charges {
        s += &format!(
            "  {:<9} {} {}; {} {} remains this period, renews at {}\n",
            if report.dry_run { "would charge" } else { "charged" },
            show_amount(c.amount.parse().unwrap_or_default(), c.decimals),
            c.name,
            show_amount(c.remaining.parse().unwrap_or_default(), c.decimals),
            c.name,
            format_time_from(c.renews_at, sak_primitives::units::unix_now())
        );
    }
    if report.charges.is_empty() {
        for a in &report.allowances {
            s += &format!("  allowance {}\n", a.sentence());
        }
    }
    if let Some(swap) = &report.swap
        && let Some(received) = &swap.received
    {
        s += &format!(
            "  received  {} {}\n",
            show_amount(received.parse().unwrap_or_default(), Some(swap.decimals_out)),
            chain.contracts.name(swap.token_out)
        );
    }
    for r in &report.recovered {
        s += &format!("  recovered intent #{}: {}\n", r.intent, r.outcome);
    }
    s
}
