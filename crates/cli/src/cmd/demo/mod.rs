//! `sak demo`: the main job, end to end on a throwaway local chain.
//!
//! An owner with a smart account (and an EIP-7702 EOA) grants a price-trigger bot a session:
//! Uniswap V2 router only, 1,000 tUSD a day. A whale moves the price, the bot buys until its
//! guarded signer refuses locally, a forced over-cap operation is refused by the contracts, the
//! owner revokes and the bot is refused again; the account's other assets are compared before
//! and after. The story and the summary on stdout; with `--json`, one JSON document on stdout
//! and the story on stderr.

use crate::{cli::GlobalArgs, output};
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

mod render;

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

/// What `sak demo --json` prints. Amounts are decimal strings in base units (tUSD: 6 decimals,
/// TKN, WETH and ETH: 18); times are unix seconds (chain time).
#[derive(Debug, Serialize)]
struct Report {
    /// Every check passed (the exit code is 0 exactly then).
    ok: bool,
    wall_time_s: f64,
    chain: ChainInfo,
    addresses: Addresses,
    session: SessionInfo,
    bot: BotInfo,
    steps: Vec<Step>,
    totals: Totals,
    isolation: Vec<Isolation>,
    audit_log: AuditLog,
    checks: Vec<Check>,
    /// Every transaction hash printed (setup, bundles, owner actions).
    tx_hashes: Vec<B256>,
    /// Every user operation hash printed.
    user_op_hashes: Vec<B256>,
}

#[derive(Debug, Serialize)]
struct ChainInfo {
    rpc_url: String,
    chain_id: u64,
    profile: String,
}

#[derive(Debug, Serialize)]
struct Addresses {
    owner: Address,
    /// The smart account, as computed before deployment (= `account`).
    account_counterfactual: Address,
    account: Address,
    eoa_7702: Address,
    /// The 7702 EOA's code after delegation: `0xef0100 ‖ Sak7702Account`.
    eoa_7702_code: String,
    session_key: Address,
    relayer: Address,
    whale: Address,
    contracts: Deployment,
}

#[derive(Debug, Serialize)]
struct SessionInfo {
    id: u32,
    policy_toml: &'static str,
    role: &'static str,
    router: Address,
    cap_token: Address,
    cap_per_period: String,
    period_s: u32,
    valid_after: u64,
    valid_until: u64,
    /// When the first period's allowance renews.
    renews_at: u64,
    gas_budget_wei: Option<String>,
    revoked: bool,
}

#[derive(Debug, Serialize)]
struct BotInfo {
    /// Buy when 1 TKN costs less than this (tUSD base units).
    threshold_tusd_per_tkn: String,
    buy_tusd: String,
    /// The pool's mid price at each look (tUSD base units per TKN).
    price_ticks: Vec<PriceTick>,
}

#[derive(Debug, Serialize)]
struct PriceTick {
    tusd_per_tkn: String,
    triggered: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Step {
    n: usize,
    /// `setup`, `market`, `bot`, `forced`, `revoke`.
    phase: &'static str,
    /// `owner`, `eoa`, `whale`, `bot`.
    actor: &'static str,
    action: String,
    /// `ok` (an owner or whale transaction), `allowed` or `refused` (a session operation).
    result: &'static str,
    /// Who decided a session operation: `policy+chain` (allowed by both), `local-policy`
    /// (refused before signing), `chain` (refused by the contracts).
    decided_by: Option<&'static str>,
    /// The refusal's error name, as the contracts name it.
    error: Option<&'static str>,
    detail: Option<String>,
    /// For `SpendCapExceeded`: what remained of the allowance (base units)...
    remaining: Option<String>,
    /// ...and when it renews (unix seconds; known for local refusals).
    renews_at: Option<u64>,
    tusd_spent: String,
    tkn_received: String,
    gas_wei: String,
    /// Who paid `gas_wei`: `account` (a session operation), or the actor's own EOA.
    gas_paid_by: Option<&'static str>,
    tx_hashes: Vec<B256>,
    user_op_hash: Option<B256>,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    swaps_allowed: usize,
    refused_local: usize,
    refused_chain: usize,
    tusd_spent: String,
    tkn_received: String,
    /// Wei the account paid for the session's operations.
    session_gas_wei: String,
    /// Wei charged to the session's gas budget on chain (prefunds, at most the budget).
    gas_budget_used_wei: String,
}

#[derive(Debug, Serialize)]
struct Isolation {
    asset: &'static str,
    token: Option<Address>,
    before: String,
    after: String,
    /// `after - before`, signed.
    change: String,
    /// What the policy allowed to happen to it.
    allowed_change: String,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct AuditLog {
    backend: &'static str,
    decisions: usize,
    allowed: usize,
    refused: usize,
    reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
}

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

    /// Step 1: the owner's smart account (address before deployment), funded; the 7702 EOA.
    async fn accounts(&mut self) -> eyre::Result<Accounts> {
        let (p, d) = (self.p, self.d);
        let owner = self.dev(OWNER)?.address();
        let relayer = self.dev(RELAYER)?;
        let whale = self.dev(WHALE)?.address();
        p.say(&format!("owner (dev key {OWNER})         {owner}"));

        // -- the smart account: address first, then deployment
        let factory = SakAccountFactory::new(d.sak_account_factory, self.provider());
        let counterfactual = factory.getAddress(owner, B256::ZERO).call().await.wrap_err("getAddress")?;
        let code_before = self.provider().get_code_at(counterfactual).await?;
        p.say(&format!(
            "smart account (counterfactual) {counterfactual}  code: {} bytes, not deployed yet",
            code_before.len()
        ));
        let tx = factory.createAccount(owner, B256::ZERO).into_transaction_request().with_from(owner);
        let r = self.send(tx).await.wrap_err("createAccount")?;
        let account = counterfactual;
        let code = self.provider().get_code_at(account).await?;
        eyre::ensure!(!code.is_empty(), "the factory deployed nothing at {account}");
        p.say(&format!("deployed by SakAccountFactory at the same address ({} bytes of code)", code.len()));
        self.push_tx("setup", "owner", format!("create smart account {}", short(account)), &[&r]);

        // -- funding: ETH, tUSD (5x the cap) and WETH, a token the session is never given
        let fund =
            TransactionRequest::default().with_from(owner).with_to(account).with_value(U256::from(FUND_ETH));
        let r1 = self.send(fund).await.wrap_err("funding ETH")?;
        let mint = MockERC20::new(d.usd, self.provider())
            .mint(account, U256::from(FUND_USD))
            .into_transaction_request()
            .with_from(owner);
        let r2 = self.send(mint).await.wrap_err("minting tUSD")?;
        let wrap = IWETH::new(d.weth, self.provider())
            .deposit()
            .value(U256::from(FUND_WETH))
            .into_transaction_request()
            .with_from(owner);
        let r3 = self.send(wrap).await.wrap_err("wrapping ETH")?;
        let give = IWETH::new(d.weth, self.provider())
            .transfer(account, U256::from(FUND_WETH))
            .into_transaction_request()
            .with_from(owner);
        let r4 = self.send(give).await.wrap_err("sending WETH")?;
        p.say("funded with 10 ETH, 5,000 tUSD and 2 WETH");
        self.push_tx(
            "setup",
            "owner",
            "fund account: 10 ETH, 5,000 tUSD, 2 WETH".into(),
            &[&r1, &r2, &r3, &r4],
        );

        // -- an EOA upgraded in place with EIP-7702
        let eoa = self.dev(EOA_7702)?;
        let hash = eip7702::delegate_self(self.provider(), &eoa, d.sak_7702_account)
            .await
            .wrap_err("delegating the EOA with EIP-7702")?;
        let r = self.receipt(hash).await?;
        let eoa_code = self.provider().get_code_at(eoa.address()).await?;
        eyre::ensure!(
            eip7702::delegate_of(self.provider(), eoa.address()).await? == Some(d.sak_7702_account),
            "the EOA's code is not a delegation to Sak7702Account"
        );
        p.say(&format!("EIP-7702 EOA (dev key {EOA_7702})   {}  code {eoa_code}", eoa.address()));
        p.say(&format!("  = 0xef0100 ‖ Sak7702Account {}: the EOA stays its own owner", d.sak_7702_account));
        self.push_tx(
            "setup",
            "eoa",
            format!("delegate EOA {} to Sak7702Account (EIP-7702)", short(eoa.address())),
            &[&r],
        );
        Ok(Accounts {
            owner,
            relayer,
            whale,
            account,
            deployed: code_before.is_empty() && !code.is_empty(),
            eoa: eoa.address(),
            eoa_code,
        })
    }

    /// Step 2: a fresh session key, the policy file resolved and granted by the owner, and the
    /// bot's guarded signer with its SQLite ledger.
    async fn grant(&mut self, a: &Accounts) -> eyre::Result<Granted> {
        let (p, d, owner, account) = (self.p, self.d, a.owner, a.account);
        p.step(2, "Session key and session (policy file -> on-chain SessionConfig)");
        let key = LocalKey::generate()?;
        let key_address = key.address();
        p.say(&format!("session key generated: {key_address} (the secret stays in this process)"));
        p.say("policy (TOML):");
        p.block(POLICY_TOML);
        let book = AddressBook::new()
            .with("uniswap-v2-router", d.uniswap_v2_router, None)
            .with("tUSD", d.usd, Some(6))
            .with("TKN", d.tkn, Some(18))
            .with("WETH", d.weth, Some(18));
        let now = self.chain_time().await?;
        let policy = PolicyFile::from_toml(POLICY_TOML)
            .wrap_err("the demo's policy")?
            .resolve(&book, now)
            .wrap_err("resolving the demo's policy")?;
        let grant = SakAccount::new(account, self.provider())
            .grantSession(policy.to_session_config(key_address))
            .into_transaction_request()
            .with_from(owner);
        let r = self.send(grant).await.wrap_err("grantSession")?;
        let id = r
            .inner
            .logs()
            .iter()
            .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
            .ok_or_eyre("no SessionGranted event")?
            .inner
            .data
            .id;
        let limit = policy.spend_limit(d.usd).ok_or_eyre("the policy has no tUSD cap")?.clone();
        let renews_at = policy.valid_after + u64::from(limit.period);
        p.say(&format!(
            "session #{id} granted by the owner: {} permissions (router swaps to the account, through its adapter), \
             cap {} tUSD per {}, valid until {}",
            policy.permissions.len(),
            amount(U256::from(limit.allowance), 6),
            duration(u64::from(limit.period)),
            time(policy.valid_until)
        ));
        self.push_tx("setup", "owner", format!("grant session #{id} to key {}", short(key_address)), &[&r]);

        let dir = tempfile::tempdir().wrap_err("creating a temporary directory for the ledger")?;
        let ledger = Arc::new(SqliteLedger::open(&dir.path().join("ledger.db"))?);
        let session = load_session(self.provider(), account, id).await?;
        let binding = Binding {
            chain_id: self.kit.chain_id(),
            context: Context::account(account, d.entry_point),
            session_id: id,
            lane_key: sak_userop::session_nonce_key(id, 0),
            init_code: Default::default(),
            delegate: None,
        };
        let bundler = SelfBundler::new(self.kit.rpc_url(), a.relayer.clone(), d.entry_point).await?;
        let bot = GuardedSigner::new(
            key,
            session,
            binding,
            self.provider().clone(),
            bundler,
            FeeCaps::UNLIMITED,
            ledger.clone(),
        )
        .await?;
        p.say(&format!(
            "bot's guarded signer ready: self-bundling through EntryPoint v0.8 (relayer {}), SQLite audit ledger",
            short(a.relayer.address())
        ));
        Ok(Granted { id, policy, limit, renews_at, key: key_address, bot, ledger, _dir: dir })
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

    /// One session operation through the guard, with what it moved.
    async fn attempt(
        &mut self,
        bot: &Bot,
        account: Address,
        phase: &'static str,
        calls: &[Call],
        usd: u64,
        preflight: Preflight,
    ) -> eyre::Result<Step> {
        let (p, d) = (self.p, self.d);
        let before = self.holdings(account).await?;
        let t = Instant::now();
        let result = bot.execute(calls, preflight).await;
        let after = self.holdings(account).await?;
        let forced = if preflight == Preflight::SkipForProof { "forced " } else { "" };
        let mut step = Step {
            n: self.steps.len() + 1,
            phase,
            actor: "bot",
            action: format!("{forced}swap {} tUSD -> TKN", amount(U256::from(usd), 6)),
            result: "allowed",
            decided_by: Some("policy+chain"),
            error: None,
            detail: None,
            remaining: None,
            renews_at: None,
            tusd_spent: before.usd.saturating_sub(after.usd).to_string(),
            tkn_received: after.tkn.saturating_sub(before.tkn).to_string(),
            gas_wei: "0".into(),
            gas_paid_by: None,
            tx_hashes: Vec::new(),
            user_op_hash: None,
        };
        match result {
            Ok(done) => {
                eyre::ensure!(
                    done.receipt.success,
                    "the swap's execution reverted: {:?}",
                    done.receipt.revert
                );
                let remaining = done.charges.iter().find(|c| c.token == d.usd);
                step.gas_wei = done.receipt.actual_gas_cost.to_string();
                step.gas_paid_by = Some("account");
                step.tx_hashes.push(done.receipt.tx_hash);
                step.user_op_hash = Some(done.user_op_hash);
                self.tx_hashes.push(done.receipt.tx_hash);
                p.say(&format!(
                    "  allowed: -{} tUSD, +{} TKN, gas {} ETH (paid by the account); {} tUSD left today; {} ms",
                    amount(before.usd.saturating_sub(after.usd), 6),
                    amount(after.tkn.saturating_sub(before.tkn), 18),
                    gas(done.receipt.actual_gas_cost),
                    remaining.map_or_else(|| "?".into(), |c| amount(c.remaining, 6)),
                    t.elapsed().as_millis()
                ));
                p.say(&format!("  user op {}  tx {}", done.user_op_hash, done.receipt.tx_hash));
            }
            Err(e) => {
                let Some(refusal) = e.refusal() else {
                    return Err(eyre::Report::new(e)
                        .wrap_err("the bot's operation failed for another reason than the policy"));
                };
                let local = matches!(e, sak_signer::Error::Refused(_));
                step.result = "refused";
                step.decided_by = Some(if local { "local-policy" } else { "chain" });
                step.error = Some(refusal.name());
                step.detail = Some(describe_refusal(&refusal));
                if let Refusal::SpendCapExceeded { remaining, resets_at, .. } = &refusal {
                    step.remaining = Some(remaining.to_string());
                    step.renews_at = *resets_at;
                }
                let by = if local {
                    "refused locally, before signing (nothing sent, no gas)"
                } else {
                    "refused by the contracts (the EntryPoint's simulation of the signed operation): nothing sent, nothing moved"
                };
                p.say(&format!("  {by}:"));
                p.say(&format!("    {}", describe_refusal(&refusal)));
                if let Some(hint) = e.hint() {
                    p.say(&format!("    hint: {hint}"));
                }
            }
        }
        Ok(step)
    }

    async fn whale_sells(&mut self, whale: Address) -> eyre::Result<Vec<TransactionReceipt>> {
        let d = self.d;
        let tkn = MockERC20::new(d.tkn, self.provider());
        let router = IUniswapV2Router02::new(d.uniswap_v2_router, self.provider());
        let mint = tkn.mint(whale, U256::from(WHALE_SELL)).into_transaction_request().with_from(whale);
        let approve = tkn
            .approve(d.uniswap_v2_router, U256::from(WHALE_SELL))
            .into_transaction_request()
            .with_from(whale);
        let swap = router
            .swapExactTokensForTokens(
                U256::from(WHALE_SELL),
                U256::from(1),
                vec![d.tkn, d.usd],
                whale,
                U256::MAX,
            )
            .into_transaction_request()
            .with_from(whale);
        let mut out = Vec::new();
        for tx in [mint, approve, swap] {
            out.push(self.send(tx).await.wrap_err("the whale's swap")?);
        }
        Ok(out)
    }

    /// tUSD into the account's adapter + the adapter's swapExactTokensForTokens(tUSD -> TKN,
    /// recipient = the account), with 1% slippage on the router's quote.
    async fn buy(&self, account: Address, usd: u64) -> eyre::Result<(Vec<Call>, U256)> {
        let d = self.d;
        let router = IUniswapV2Router02::new(d.uniswap_v2_router, self.provider());
        let amounts = router
            .getAmountsOut(U256::from(usd), vec![d.usd, d.tkn])
            .call()
            .await
            .wrap_err("getAmountsOut")?;
        let quote = *amounts.last().ok_or_eyre("getAmountsOut returned nothing")?;
        let min_out = quote * U256::from(99) / U256::from(100);
        let deadline = U256::from(self.chain_time().await? + 600);
        let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
            amountIn: U256::from(usd),
            amountOutMin: min_out,
            path: vec![d.usd, d.tkn],
            to: account,
            deadline,
        };
        let adapter = sak_contracts::adapter_of(d.session_adapter, account);
        let calls = funded_call(adapter, d.usd, U256::from(usd), &Call::contract(d.uniswap_v2_router, &swap));
        Ok((calls, min_out))
    }

    /// The pool's mid price: tUSD base units per whole TKN (`getReserves`).
    async fn price(&self) -> eyre::Result<U256> {
        let pair = IUniswapV2Pair::new(self.d.usd_tkn_pair, self.provider());
        let token0 = pair.token0().call().await.wrap_err("token0")?;
        let r = pair.getReserves().call().await.wrap_err("getReserves")?;
        let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
        let (usd, tkn) = if token0 == self.d.usd { (r0, r1) } else { (r1, r0) };
        eyre::ensure!(!tkn.is_zero(), "the pool is empty");
        Ok(usd * U256::from(TKN) / tkn)
    }

    async fn holdings(&self, account: Address) -> eyre::Result<Holdings> {
        let d = self.d;
        let bal = |token| async move {
            MockERC20::new(token, self.provider()).balanceOf(account).call().await.wrap_err("balanceOf")
        };
        let deposit = IEntryPoint::new(d.entry_point, self.provider())
            .balanceOf(account)
            .call()
            .await
            .wrap_err("deposit")?;
        Ok(Holdings {
            eth: self.provider().get_balance(account).await? + deposit,
            usd: bal(d.usd).await?,
            tkn: bal(d.tkn).await?,
            weth: bal(d.weth).await?,
        })
    }

    async fn spent(&self, account: Address, id: u32) -> eyre::Result<U256> {
        let s = SakAccount::new(account, self.provider())
            .getSpend(id, self.d.usd)
            .call()
            .await
            .wrap_err("getSpend")?;
        Ok(U256::from(s.spent))
    }

    async fn chain_time(&self) -> eyre::Result<u64> {
        let block =
            self.provider().get_block_by_number(Default::default()).await?.ok_or_eyre("no latest block")?;
        Ok(block.header.timestamp)
    }

    async fn send(&self, tx: TransactionRequest) -> eyre::Result<TransactionReceipt> {
        let receipt = self.provider().send_transaction(tx).await?.get_receipt().await?;
        eyre::ensure!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
        Ok(receipt)
    }

    async fn receipt(&self, hash: B256) -> eyre::Result<TransactionReceipt> {
        self.provider().get_transaction_receipt(hash).await?.ok_or_eyre("no receipt")
    }

    fn push_tx(
        &mut self,
        phase: &'static str,
        actor: &'static str,
        action: String,
        receipts: &[&TransactionReceipt],
    ) {
        let gas: u128 = receipts.iter().map(|r| u128::from(r.gas_used) * r.effective_gas_price).sum();
        let hashes: Vec<B256> = receipts.iter().map(|r| r.transaction_hash).collect();
        self.tx_hashes.extend(&hashes);
        self.steps.push(Step {
            n: self.steps.len() + 1,
            phase,
            actor,
            action,
            result: "ok",
            decided_by: None,
            error: None,
            detail: None,
            remaining: None,
            renews_at: None,
            tusd_spent: "0".into(),
            tkn_received: "0".into(),
            gas_wei: gas.to_string(),
            gas_paid_by: Some(actor),
            tx_hashes: hashes,
            user_op_hash: None,
        });
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
