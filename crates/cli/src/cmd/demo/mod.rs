//! `sak demo`: the main job, end to end on a throwaway local chain.
//!
//! An owner with a smart account (and an EIP-7702 EOA) grants a price-trigger bot a session:
//! Uniswap V2 router only, 1,000 tUSD a day. A whale moves the price, the bot buys until its
//! guarded signer refuses locally, a forced over-cap operation is refused by the contracts, the
//! owner revokes and the bot is refused again; the account's other assets are compared before
//! and after. The story and the summary on stdout; with `--json`, one JSON document on stdout
//! and the story on stderr.

use crate::{global::GlobalArgs, output};
use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256, utils::format_units},
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};
use clap::Args;
use eyre::{OptionExt, WrapErr};
use sak_contracts::{
    IEntryPoint, IUniswapV2Pair, IUniswapV2Router02, IWETH, MockERC20, SakAccount, SakAccountFactory,
};
use sak_node::{Deployment, Kit, Profile};
use sak_policy::{Call, Context, Refusal, calldata::funded_call};
use sak_primitives::{AddressBook, PolicyFile};
use sak_signer::{
    guard::{Binding, GuardedSigner, Preflight, load_session},
    keystore::LocalKey,
    ledger::{Ledger, SqliteLedger},
};
use sak_userop::{FeeCaps, SelfBundler, eip7702};
use serde::Serialize;
use std::{io::Write, sync::Arc, time::Instant};

mod chain;
mod render;
mod report;
mod setup;

use report::*;

use render::{Delta, amount, check, describe_refusal, duration, gas, isolation, short, time};

/// The bot's session, as an owner would write it (names resolve through the deployment's
/// address book).
pub(crate) const POLICY_TOML: &str = r#"# The price-trigger bot: swaps through the Uniswap V2 router only (recipient = the account),
# at most 1,000 tUSD a day, for one day.
role = "trader"
router = "uniswap-v2-router"
valid_for = "1d"

[gas]
budget = "0.5 ether"    # of the account's ETH, per period
period = "1d"

[[spend]]
token = "tUSD"
amount = "1000"         # whole tUSD, moved into the account's adapter for each swap
period = "1d"
"#;

const USD: u64 = 1_000_000; // 1 tUSD (6 decimals)
const TKN: u128 = 1_000_000_000_000_000_000; // 1 TKN (18 decimals)
const ETHER: u128 = 1_000_000_000_000_000_000;
/// What the policy above allows a day, in base units.
const CAP: u64 = 1_000 * USD;
/// The bot buys when 1 TKN costs less than this many tUSD.
const THRESHOLD: u64 = 1_900 * USD;
/// Each buy.
const BUY: u64 = 300 * USD;
/// The attempt after revocation: small enough to fit what remains, so revocation is the only
/// reason to refuse it.
const AFTER_REVOKE: u64 = 50 * USD;
/// What the whale sells into the pool (1,000 TKN seeded: the price drops by about a third).
const WHALE_SELL: u128 = 250 * TKN;
/// The account's funding.
/// Gas for the whale's swap: a Uniswap V2 swap with its cumulative-price writes costs about
/// 110k; set, not estimated (see `whale_sells`).
const WHALE_SWAP_GAS: u64 = 300_000;
const FUND_ETH: u128 = 10 * ETHER;
const FUND_USD: u64 = 5_000 * USD;
const FUND_WETH: u128 = 2 * ETHER;

/// Dev accounts by role (0 deploys the stack).
const OWNER: usize = 1;
const EOA_7702: usize = 2;
const RELAYER: usize = 3;
const WHALE: usize = 4;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak demo\n  sak demo --json | jq .totals\n  make demo\n\n\
With --json, stdout is one JSON document: ok, wall_time_s, chain, addresses, session, bot, steps[] \
(n, phase, actor, action, result, decided_by, error, detail, remaining, renews_at, tusd_spent, \
tkn_received, gas_wei, gas_paid_by, tx_hashes, user_op_hash), totals, isolation[], audit_log, \
checks[], tx_hashes, user_op_hashes. Amounts are decimal strings in base units. Exit code 0 when \
every check passed, 2 otherwise.")]
pub(crate) struct DemoArgs {}

pub(crate) async fn run(_args: DemoArgs, global: &GlobalArgs) -> eyre::Result<()> {
    let started = Instant::now();
    let p = Progress { quiet: global.quiet, json: global.json };
    let mut report = Demo::run(&p).await?;
    report.wall_time_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
    let failed = failed.join("; ");
    p.line("");
    output::data(&if global.json { serde_json::to_string_pretty(&report)? } else { report.human() })?;
    if !report.ok {
        return Err(output::AlreadyReported {
            message: format!("the demo did not run as expected: {failed}"),
            hint: "rerun with -vv (or RUST_LOG=sak=debug,sak_signer=debug) for details, and report it",
            code: 2,
        }
        .into());
    }
    p.say(&format!("done in {:.1}s", report.wall_time_s));
    Ok(())
}

/// The demo's story, step by step: part of the report on stdout, or progress on stderr under
/// `--json` (stdout then holds the JSON document only); nothing under `--quiet`.
struct Progress {
    quiet: bool,
    json: bool,
}

impl Progress {
    fn line(&self, text: &str) {
        if self.quiet {
        } else if self.json {
            // Never `eprintln!`: it panics on a closed stderr.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = output::data(text);
        }
    }

    fn step(&self, n: u8, title: &str) {
        self.line(&format!("{}[{n}/6] {title}", if n > 1 { "\n" } else { "" }));
    }

    fn say(&self, line: &str) {
        self.line(&format!("  {line}"));
    }

    fn block(&self, text: &str) {
        for line in text.lines() {
            self.line(&format!("    {line}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report: field names are the `--json` interface.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

struct Demo<'a> {
    p: &'a Progress,
    kit: Kit,
    d: Deployment,
    steps: Vec<Step>,
    tx_hashes: Vec<B256>,
}

type Bot = GuardedSigner<SqliteLedger, SelfBundler>;

/// Who is who after step 1.
struct Accounts {
    owner: Address,
    relayer: PrivateKeySigner,
    whale: Address,
    /// The smart account (deployed at its counterfactual address).
    account: Address,
    /// No code before `createAccount`, code after.
    deployed: bool,
    eoa: Address,
    eoa_code: alloy::primitives::Bytes,
}

/// The session after step 2, and the bot holding its key.
struct Granted {
    id: u32,
    policy: sak_primitives::Policy,
    limit: sak_primitives::SpendLimit,
    renews_at: u64,
    key: Address,
    bot: Bot,
    ledger: Arc<SqliteLedger>,
    /// The ledger's directory, deleted on drop.
    _dir: tempfile::TempDir,
}

/// The account's holdings, for the isolation table.
#[derive(Debug, Clone, Copy)]
struct Holdings {
    /// Balance plus EntryPoint deposit: the account pays gas through both.
    eth: U256,
    usd: U256,
    tkn: U256,
    weth: U256,
}

impl Demo<'_> {
    async fn run(p: &Progress) -> eyre::Result<Report> {
        p.step(1, "Local chain, owner, smart account, EIP-7702 EOA");
        p.say("starting anvil on a free port and deploying EntryPoint v0.8, Uniswap V2, tUSD/TKN, sak…");
        let t = Instant::now();
        let kit = Kit::start(Profile::test()).await.wrap_err("starting the local chain")?;
        p.say(&format!(
            "chain {} at {} ready in {:.1}s",
            kit.chain_id(),
            kit.rpc_url(),
            t.elapsed().as_secs_f64()
        ));
        let d = *kit.deployment();
        let mut demo = Demo { p, kit, d, steps: Vec::new(), tx_hashes: Vec::new() };
        demo.main().await
    }

    fn provider(&self) -> &DynProvider {
        self.kit.provider()
    }

    fn dev(&self, i: usize) -> eyre::Result<PrivateKeySigner> {
        self.kit.dev_signers().get(i).cloned().ok_or_eyre("anvil has too few dev accounts (needs 5)")
    }

    async fn main(&mut self) -> eyre::Result<Report> {
        let (p, d) = (self.p, self.d);
        let a = self.accounts().await?;
        let g = self.grant(&a).await?;
        let (owner, whale, account, id, bot, ledger) = (a.owner, a.whale, a.account, g.id, &g.bot, &g.ledger);
        let (policy, limit) = (&g.policy, &g.limit);

        let before = self.holdings(account).await?;

        // -- the price trigger
        p.step(3, "Price-trigger bot: the price moves, the bot buys until its cap refuses it");
        let mut ticks = Vec::new();
        let price = self.price().await?;
        ticks.push(PriceTick { tusd_per_tkn: price.to_string(), triggered: price < U256::from(THRESHOLD) });
        p.say(&format!(
            "bot: 1 TKN = {} tUSD (pool mid price); threshold {} tUSD -> hold",
            amount(price, 6),
            amount(U256::from(THRESHOLD), 6)
        ));
        let r = self.whale_sells(whale).await?;
        self.push_tx(
            "market",
            "whale",
            format!("sell {} TKN into the pool", amount(U256::from(WHALE_SELL), 18)),
            &r.iter().collect::<Vec<_>>(),
        );
        p.say(&format!(
            "whale (dev key {WHALE}) sold {} TKN into the tUSD/TKN pool",
            amount(U256::from(WHALE_SELL), 18)
        ));

        let mut local_cap_refusal = None;
        for _ in 0..10 {
            let price = self.price().await?;
            let triggered = price < U256::from(THRESHOLD);
            ticks.push(PriceTick { tusd_per_tkn: price.to_string(), triggered });
            if !triggered {
                p.say(&format!("bot: 1 TKN = {} tUSD -> hold", amount(price, 6)));
                break;
            }
            let (calls, quote) = self.buy(account, BUY).await?;
            p.say(&format!(
                "bot: 1 TKN = {} tUSD < {} -> trigger: fund the adapter + swap {} tUSD for >= {} TKN (signing, submitting…)",
                amount(price, 6),
                amount(U256::from(THRESHOLD), 6),
                amount(U256::from(BUY), 6),
                amount(quote, 18)
            ));
            let step = self.attempt(bot, account, "bot", &calls, BUY, Preflight::Check).await?;
            let refused = step.error;
            self.steps.push(step);
            if let Some(name) = refused {
                local_cap_refusal = Some(name);
                break;
            }
        }

        // -- forced past the local check
        p.step(4, "Forced over-cap attempt (local check skipped): the contracts refuse it");
        let spent_before = self.spent(account, id).await?;
        let (calls, _) = self.buy(account, BUY).await?;
        p.say(&format!(
            "bot: the same {} tUSD swap with Preflight::SkipForProof…",
            amount(U256::from(BUY), 6)
        ));
        let step = self.attempt(bot, account, "forced", &calls, BUY, Preflight::SkipForProof).await?;
        self.steps.push(step);
        let spent_after = self.spent(account, id).await?;
        p.say(&format!(
            "on-chain spend counter {}: {} tUSD before, {} after",
            if spent_before == spent_after { "unchanged" } else { "CHANGED" },
            amount(spent_before, 6),
            amount(spent_after, 6)
        ));

        // -- revocation
        p.step(5, "The owner revokes the session; the bot is refused");
        let revoke = SakAccount::new(account, self.provider())
            .revokeSession(id)
            .into_transaction_request()
            .with_from(owner);
        let r = self.send(revoke).await.wrap_err("revokeSession")?;
        p.say(&format!("owner revoked session #{id} (tx {})", r.transaction_hash));
        self.push_tx("revoke", "owner", format!("revoke session #{id}"), &[&r]);
        let (calls, _) = self.buy(account, AFTER_REVOKE).await?;
        let price = self.price().await?;
        p.say(&format!(
            "bot: 1 TKN = {} tUSD, still below {}: tries {} tUSD (it fits what remained)…",
            amount(price, 6),
            amount(U256::from(THRESHOLD), 6),
            amount(U256::from(AFTER_REVOKE), 6)
        ));
        let step = self.attempt(bot, account, "bot", &calls, AFTER_REVOKE, Preflight::Check).await?;
        self.steps.push(step);
        p.say("bot: the same, forced past the local check…");
        let step =
            self.attempt(bot, account, "forced", &calls, AFTER_REVOKE, Preflight::SkipForProof).await?;
        self.steps.push(step);

        // -- isolation
        p.step(6, "Isolation: the account's other assets");
        let after = self.holdings(account).await?;
        let usage =
            SakAccount::new(account, self.provider()).getUsage(id).call().await.wrap_err("getUsage")?;
        let gas_budget_used = U256::from(usage.gasSpent);
        let revoked = SakAccount::new(account, self.provider())
            .getSession(id)
            .call()
            .await
            .wrap_err("getSession")?
            .signer
            .is_zero();
        let decisions = ledger.decisions(0)?;

        let session_steps: Vec<&Step> = self.steps.iter().filter(|s| s.actor == "bot").collect();
        let sum = |f: fn(&Step) -> &String| -> U256 {
            session_steps.iter().map(|s| f(s).parse::<U256>().unwrap_or_default()).sum()
        };
        let usd_spent = sum(|s| &s.tusd_spent);
        let tkn_received = sum(|s| &s.tkn_received);
        let session_gas = sum(|s| &s.gas_wei);
        let count = |phase: &str, result: &str| {
            self.steps
                .iter()
                .filter(|s| {
                    s.actor == "bot"
                        && s.result == result
                        && (phase.is_empty() || s.decided_by == Some(phase))
                })
                .count()
        };
        let totals = Totals {
            swaps_allowed: count("", "allowed"),
            refused_local: count("local-policy", "refused"),
            refused_chain: count("chain", "refused"),
            tusd_spent: usd_spent.to_string(),
            tkn_received: tkn_received.to_string(),
            session_gas_wei: session_gas.to_string(),
            gas_budget_used_wei: gas_budget_used.to_string(),
        };

        let isolation = vec![
            isolation(
                "ETH (balance + EntryPoint deposit)",
                None,
                before.eth,
                after.eth,
                Delta::Minus(session_gas),
                format!("-{} (the session's gas, within its budget)", gas(session_gas)),
            ),
            isolation(
                "tUSD",
                Some(d.usd),
                before.usd,
                after.usd,
                Delta::Minus(usd_spent),
                format!("-{} (swaps, at most {} a day)", amount(usd_spent, 6), amount(U256::from(CAP), 6)),
            ),
            isolation(
                "TKN",
                Some(d.tkn),
                before.tkn,
                after.tkn,
                Delta::Plus(tkn_received),
                format!("+{} (bought, paid to the account)", amount(tkn_received, 18)),
            ),
            isolation(
                "WETH (never in the session)",
                Some(d.weth),
                before.weth,
                after.weth,
                Delta::Minus(U256::ZERO),
                "none".into(),
            ),
        ];
        for i in &isolation {
            p.say(&format!(
                "{:<35} {:>9} -> {:<9} {:>9}  {}",
                i.asset,
                i.before_h(),
                i.after_h(),
                i.change_h(),
                if i.ok { "as the policy allows" } else { "UNEXPECTED" }
            ));
        }
        let untouched = before.usd.saturating_sub(U256::from(CAP));
        p.say(&format!(
            "tUSD beyond the cap ({} of the {}) was never reachable: {} still there",
            amount(untouched, 6),
            amount(before.usd, 6),
            amount(after.usd, 6)
        ));
        let audit = AuditLog {
            backend: "sqlite (temporary directory, deleted at exit)",
            decisions: decisions.len(),
            allowed: decisions.iter().filter(|d| d.allowed).count(),
            refused: decisions.iter().filter(|d| !d.allowed).count(),
            reasons: decisions.iter().map(|d| d.reason.clone()).collect(),
        };
        p.say(&format!(
            "audit log: {} signing decisions ({} allowed, {} refused): {}",
            audit.decisions,
            audit.allowed,
            audit.refused,
            audit.reasons.join(", ")
        ));

        // -- checks: the exit code says whether the demo showed what it should
        let bot_steps = |phase: &str, error: &str, by: &str| {
            self.steps.iter().any(|s| s.phase == phase && s.error == Some(error) && s.decided_by == Some(by))
        };
        let revoke_at = self.steps.iter().position(|s| s.phase == "revoke").unwrap_or(usize::MAX);
        let after_revoke = |by: &str| {
            self.steps[revoke_at.min(self.steps.len())..]
                .iter()
                .any(|s| s.error == Some("SessionNotActive") && s.decided_by == Some(by))
        };
        let checks = vec![
            check("the factory deployed the account at its counterfactual address", a.deployed),
            check(
                "the EIP-7702 EOA's code is 0xef0100 ‖ Sak7702Account",
                a.eoa_code.as_ref() == eip7702::delegation_code(d.sak_7702_account).as_slice(),
            ),
            check(
                "at least one swap was allowed and paid TKN to the account",
                totals.swaps_allowed > 0 && !tkn_received.is_zero(),
            ),
            check(
                "the cap was refused locally (SpendCapExceeded)",
                local_cap_refusal == Some("SpendCapExceeded")
                    && bot_steps("bot", "SpendCapExceeded", "local-policy"),
            ),
            check(
                "the forced over-cap operation was refused by the chain (SpendCapExceeded)",
                bot_steps("forced", "SpendCapExceeded", "chain"),
            ),
            check(
                "the on-chain spend counter did not move on the forced attempt",
                spent_before == spent_after,
            ),
            check(
                "after revocation the bot was refused locally (SessionNotActive)",
                after_revoke("local-policy"),
            ),
            check("after revocation the chain refused it too (SessionNotActive)", after_revoke("chain")),
            check("the account reports the session revoked", revoked),
            check("tUSD spent is within the cap", usd_spent <= U256::from(CAP)),
            check("the account's assets changed only as the policy allowed", isolation.iter().all(|i| i.ok)),
            check("the audit log recorded every decision", audit.decisions == session_steps.len()),
        ];
        for c in checks.iter().filter(|c| !c.ok) {
            p.say(&format!("CHECK FAILED: {}", c.name));
        }

        let user_op_hashes = self.steps.iter().filter_map(|s| s.user_op_hash).collect();
        Ok(Report {
            ok: checks.iter().all(|c| c.ok),
            wall_time_s: 0.0,
            chain: ChainInfo {
                rpc_url: self.kit.rpc_url().to_owned(),
                chain_id: self.kit.chain_id(),
                profile: self.kit.profile().name.clone(),
            },
            addresses: Addresses {
                owner,
                account_counterfactual: a.account,
                account,
                eoa_7702: a.eoa,
                eoa_7702_code: a.eoa_code.to_string(),
                session_key: g.key,
                relayer: a.relayer.address(),
                whale,
                contracts: d,
            },
            session: SessionInfo {
                id,
                policy_toml: POLICY_TOML,
                role: "trader",
                router: d.uniswap_v2_router,
                cap_token: d.usd,
                cap_per_period: limit.allowance.to_string(),
                period_s: limit.period,
                valid_after: policy.valid_after,
                valid_until: policy.valid_until,
                renews_at: g.renews_at,
                gas_budget_wei: match policy.gas {
                    sak_primitives::Gas::Budget { wei, .. } => Some(wei.to_string()),
                    _ => None,
                },
                revoked,
            },
            bot: BotInfo {
                threshold_tusd_per_tkn: THRESHOLD.to_string(),
                buy_tusd: BUY.to_string(),
                price_ticks: ticks,
            },
            steps: self.steps.clone(),
            totals,
            isolation,
            audit_log: audit,
            checks,
            tx_hashes: self.tx_hashes.clone(),
            user_op_hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_policy_resolves_to_a_trader_with_a_daily_tusd_cap() {
        let (router, usd) = (Address::repeat_byte(0x11), Address::repeat_byte(0x22));
        let book = AddressBook::new().with("uniswap-v2-router", router, None).with("tUSD", usd, Some(6));
        let policy = PolicyFile::from_toml(POLICY_TOML).unwrap().resolve(&book, 1_800_000_000).unwrap();
        let limit = policy.spend_limit(usd).unwrap();
        assert_eq!((limit.allowance, limit.period), (U256::from(CAP), 86_400));
        assert!(policy.permissions.iter().all(|p| p.target == router || p.target == usd));
        assert_eq!(policy.valid_until - policy.valid_after, 86_400);
    }
}
