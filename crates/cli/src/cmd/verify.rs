//! `sak session verify`: the sandbox proof on a fork.
//!
//! ```text
//!  real chain ──(reads only)──► session policy, status, key address, block N
//!       │
//!       └─► anvil --fork-url <chain> --fork-block-number N   (throwaway, stopped on every path)
//!              setup: ETH for gas, the token the allowed operation moves (anvil cheats)
//!              per case: evm_snapshot ─► session key signs (Preflight::SkipForProof)
//!                        ─► SelfBundler handleOps (fork dev key 0) ─► observe ─► evm_revert
//! ```
//!
//! The local policy never runs before signing: every outcome is the contracts' decision (the
//! EntryPoint's `handleOps` on the fork, simulated and, for the allowed operation, mined).
//! The ledger lives in a temporary directory: the fork is not the real chain, so nothing of it
//! belongs in the home's ledger.

use crate::{
    ctx::{Chain, Ctx, keystore_address},
    output::{self, Hinted},
    store::{AccountKind, AccountRecord},
};
use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        json_rpc::{RpcRecv, RpcSend},
        types::{Filter, TransactionRequest},
    },
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use clap::Args;
use eyre::{OptionExt, WrapErr};
use sak_contracts::{
    IEntryPoint, IUniswapV2Factory, IUniswapV2Router02, MockERC20, SakAccount, SakAddresses,
};
use sak_node::{AnvilNode, Profile, Toolchain};
use sak_policy::{
    Call, Context, Operation, Refusal, Session,
    calldata::{funded_call, through_adapter},
};
use sak_primitives::{ETH_SEND, NATIVE, Policy, TRANSFER};
use sak_signer::{
    guard::{Binding, GuardedSigner, Preflight},
    keystore::{self, LocalKey},
    ledger::SqliteLedger,
};
use sak_userop::{EIP7702_MARKER, FeeCaps, SelfBundler, eip7702};
use serde::Serialize;
use std::{path::Path, sync::Arc, time::Instant};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  sak session verify 1\n  sak session verify 1 --json | jq '.cases[] | [.case, .observed, .result]'\n  \
                  sak session verify 1 --key /run/agent/key.json\n  sak session verify 1 --throwaway-key\n\n\
Cases (each in its own snapshot of the fork): allowed (one operation the policy permits succeeds), \
over-cap (the same with what remains of the cap + 1: SpendCapExceeded), foreign-target (a fresh \
address: CallNotPermitted), wrong-selector (a permitted target, a function it does not permit: \
CallNotPermitted), after-expiry (clock moved past validUntil: ClockOutsideSession), after-revoke \
(the owner, impersonated on the fork, revokes: SessionNotActive), isolation (the account's other \
assets untouched by the allowed operation). A session already revoked or expired gets one case: \
its operation is refused (SessionNotActive or ClockOutsideSession).\n\n\
With --json, stdout is one document: ok, verdict, network, chain_id, account, account_kind, \
session, status, key, key_name, signed_with, fork_session, fork_block, operation, setup[], \
cases[] (case, title, expected, observed, detail, tx, user_op_hash, result, pass), isolation[] \
(asset, token, before, after, change, allowed, ok), wall_time_s. Amounts are decimal strings in \
base units.\n\n\
Nothing is sent to the real chain and nothing in this home changes: the fork's ledger lives in a \
temporary directory, and anvil stops on every path (Ctrl-C too).\n\n\
Exit codes: 0 every case behaved as expected, 1 at least one did not (its detail says how: the chain \
let through what the policy forbids, or refused what it permits), 2 the proof could not run \
(unknown session, no key, fork failed, interrupted)."
)]
pub(crate) struct VerifyArgs {
    /// The session id (from `sak session list`).
    pub(crate) id: u32,
    /// The session key: a keystore file (e.g. one exported to an agent) or a key name in this
    /// home [default: the key with the session's address in this home].
    #[arg(long, value_name = "FILE|NAME", conflicts_with = "throwaway_key")]
    pub(crate) key: Option<String>,
    /// Without the session key: on the fork, the owner (impersonated, no owner key needed)
    /// grants the session's policy to a fresh key, and that session is verified. Proves the
    /// policy, not the key.
    #[arg(long)]
    pub(crate) throwaway_key: bool,
}

// ---------------------------------------------------------------------------------------------
// The report: field names are the `--json` interface.
// ---------------------------------------------------------------------------------------------

/// What `sak session verify --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    /// Every case behaved as expected (exit 0); false when one did not (exit 1).
    ok: bool,
    /// One sentence: what the proof shows.
    verdict: String,
    network: String,
    chain_id: u64,
    account: Address,
    /// `smart` or `7702`.
    account_kind: &'static str,
    /// The session id on the real chain.
    session: u32,
    /// Its status on the real chain when verify started: `active`, `not-started`, `expired` or
    /// `revoked`.
    status: &'static str,
    /// The session key's address (on the real chain).
    key: Address,
    /// The key's name in this home, when known.
    key_name: Option<String>,
    /// Who signed on the fork: `session-key` (the session's own key) or `throwaway` (a fresh
    /// key granted the same policy on the fork).
    signed_with: &'static str,
    /// With `throwaway`: the id of the session granted on the fork.
    fork_session: Option<u32>,
    /// The real chain's block the fork started from.
    fork_block: u64,
    /// The allowed operation, in words; null when the policy permits nothing sak can build.
    operation: Option<String>,
    /// What was changed on the fork before the cases (funding, time moved).
    setup: Vec<String>,
    cases: Vec<CaseRow>,
    /// The account's assets before and after the allowed operation.
    isolation: Vec<AssetRow>,
    wall_time_s: f64,
}

/// One case of the proof.
#[derive(Debug, Clone, Serialize)]
struct CaseRow {
    /// `allowed`, `over-cap`, `foreign-target`, `wrong-selector`, `after-expiry`,
    /// `after-revoke`, `isolation`, or for an inactive session `revoked` / `expired`.
    case: &'static str,
    /// What the case does, in words.
    title: String,
    /// What must happen: `success`, the contracts' error name (`SpendCapExceeded`, ...), or for
    /// `isolation` `as the policy allows`.
    expected: String,
    /// What happened: `success`, the error name the contracts refused with, another error's
    /// text, or `skipped`.
    observed: String,
    /// The refusal or error in full, or why the case was skipped.
    detail: Option<String>,
    /// The fork's bundle transaction (the allowed operation).
    tx: Option<B256>,
    user_op_hash: Option<B256>,
    /// `pass`, `fail` or `skip`.
    result: &'static str,
    /// `result == "pass"`.
    pass: bool,
}

/// One asset of the account around the allowed operation.
#[derive(Debug, Clone, Serialize)]
struct AssetRow {
    /// `ETH` (balance plus EntryPoint deposit) or the token's name.
    asset: String,
    /// The token (null for ETH).
    token: Option<Address>,
    /// Base units.
    before: String,
    after: String,
    /// `after - before`, signed.
    change: String,
    /// What the policy lets the allowed operation do to it, in words.
    allowed: String,
    ok: bool,
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

/// What the real chain says about the session.
struct Subject {
    id: u32,
    signer: Address,
    policy: Policy,
    /// `active`, `not-started`, `expired`, `revoked`.
    status: &'static str,
    key_name: Option<String>,
}

/// Who signs on the fork.
enum Signer {
    Key(LocalKey),
    Throwaway,
}

pub(crate) async fn run(args: VerifyArgs, ctx: &Ctx) -> eyre::Result<()> {
    let started = Instant::now();
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let subject = subject(ctx, &chain, &account, args.id).await?;
    let signer = if args.throwaway_key {
        if subject.status == "expired" {
            return Err(Hinted::new(
                format!(
                    "session #{} ended at {}: the contracts refuse a grant of its window, so there is no policy left to verify",
                    subject.id,
                    sak_primitives::units::format_time(subject.policy.valid_until)
                ),
                format!("run `sak session verify {}` without --throwaway-key to see its operations refused", subject.id),
            )
            .into());
        }
        Signer::Throwaway
    } else {
        Signer::Key(session_key(ctx, &subject, args.key.as_deref())?)
    };

    // Listen before anything starts, so that no signal is missed while anvil comes up.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let block = chain.provider.get_block_number().await.wrap_err("eth_blockNumber")?;
    let interrupted = |name: &str| {
        eyre::Report::new(Hinted::new(
            format!("{name}: stopped the fork; nothing was verified"),
            format!("run `sak session verify {}` again", args.id),
        ))
    };
    // The fork lives inside this future: dropping it (an error, a signal) stops anvil.
    let mut report = tokio::select! {
        r = prove(ctx, &chain, &account, &subject, signer, block) => r.map_err(with_hint)?,
        _ = sigint.recv() => return Err(interrupted("interrupted")),
        _ = sigterm.recv() => return Err(interrupted("terminated")),
    };
    report.wall_time_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    output::emit(&ctx.global, &report, || human(&report, &chain))?;
    if !report.ok {
        let failed: Vec<&CaseRow> = report.cases.iter().filter(|c| c.result == "fail").collect();
        let let_through = failed.iter().any(|c| c.case != "allowed" && c.tx.is_some());
        let hint = if let_through {
            format!(
                "the chain let through what the policy forbids: revoke the session now (`sak session revoke {}`) \
                 and report this with the --json output",
                subject.id
            )
        } else if failed.iter().all(|c| c.case == "allowed") {
            "the contracts refuse even the operation the policy names (see its detail): grant a policy that fits \
             it, e.g. a larger --gas-budget"
                .to_owned()
        } else {
            "the contracts refused, but not for the reason the case tests: read each failed case's detail"
                .to_owned()
        };
        return Err(output::ReportedRefusal {
            message: format!(
                "session #{} does not behave as its policy claims on the fork: {}",
                subject.id,
                failed.iter().map(|c| format!("{} ({})", c.case, c.observed)).collect::<Vec<_>>().join(", ")
            ),
            hint,
        }
        .into());
    }
    Ok(())
}

/// A failure of the proof itself, with a hint if it has none.
fn with_hint(e: eyre::Report) -> eyre::Report {
    if crate::output::causes(e.as_ref()).any(|c| c.is::<Hinted>()) {
        return e;
    }
    let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
    Hinted::new(
        format!("the proof on the fork failed: {}", causes.join(": ")),
        "nothing was sent to the real chain; run it again with RUST_LOG=sak=debug,sak_signer=debug for \
         details, and report it if it persists",
    )
    .into()
}

/// The session as the real chain has it (read only): its granted policy and status.
async fn subject(ctx: &Ctx, chain: &Chain, account: &AccountRecord, id: u32) -> eyre::Result<Subject> {
    let record = ctx.session_record(account.address, id)?;
    let unknown = || {
        eyre::Report::new(Hinted::new(
            format!("no session #{id} on account {} (network `{}`)", account.address, ctx.network_name),
            "list the sessions with `sak session list`",
        ))
    };
    let filter = Filter::new()
        .address(account.address)
        .event_signature(SakAccount::SessionGranted::SIGNATURE_HASH)
        .topic1(U256::from(id))
        .from_block(record.as_ref().map_or(0, |r| r.block));
    let logs = chain.provider.get_logs(&filter).await.wrap_err("reading SessionGranted events")?;
    let log = logs.last().ok_or_else(unknown)?;
    let granted =
        log.log_decode::<SakAccount::SessionGranted>().wrap_err("the SessionGranted event")?.inner.data;
    let policy = Policy::from_session_config(&granted.config)
        .wrap_err_with(|| format!("session #{id}'s granted policy does not read back"))?;
    let view = SakAccount::new(account.address, &chain.provider)
        .getSession(id)
        .call()
        .await
        .wrap_err("getSession")?;
    let now = super::session::chain_time(chain).await?;
    let status = if view.signer == Address::ZERO {
        // The record is deleted on revocation, and unreachable after revoke-all.
        "revoked"
    } else if now > policy.valid_until {
        "expired"
    } else if now < policy.valid_after {
        "not-started"
    } else {
        "active"
    };
    Ok(Subject { id, signer: granted.signer, policy, status, key_name: record.map(|r| r.key_name) })
}

/// The session's key: `--key` (a keystore file or a name), else the home's key with the
/// session's address.
fn session_key(ctx: &Ctx, subject: &Subject, key: Option<&str>) -> eyre::Result<LocalKey> {
    let path = match key {
        Some(k) if Path::new(k).is_file() => Path::new(k).to_path_buf(),
        Some(k) => ctx.session_key_path(k)?.1,
        None => match ctx.session_key_path(&subject.signer.to_string()) {
            Ok((_, path)) => path,
            Err(_) => {
                return Err(Hinted::new(
                    format!(
                        "session #{}'s key {} is not in this home ({})",
                        subject.id,
                        subject.signer,
                        ctx.paths.session_keys_dir().display()
                    ),
                    format!(
                        "pass its keystore with --key FILE, or verify the policy without it: `sak session verify {} --throwaway-key`",
                        subject.id
                    ),
                )
                .into());
            }
        },
    };
    if let Some(found) = keystore_address(&path)?
        && found != subject.signer
    {
        return Err(Hinted::new(
            format!(
                "{} holds key {found}, but session #{} belongs to {}",
                path.display(),
                subject.id,
                subject.signer
            ),
            "pass the session's own key with --key (`sak session list` shows which)",
        )
        .into());
    }
    let key = keystore::load(&path, &ctx.key_password()?)
        .wrap_err_with(|| format!("loading {}", path.display()))?;
    eyre::ensure!(
        key.address() == subject.signer,
        "{} decrypts to another key than the session's",
        path.display()
    );
    Ok(key)
}

// ---------------------------------------------------------------------------------------------
// The fork
// ---------------------------------------------------------------------------------------------

/// A running fork. anvil stops when this is dropped.
struct Fork {
    node: AnvilNode,
    provider: DynProvider,
    relayer: PrivateKeySigner,
    chain_id: u64,
    entry_point: Address,
}

impl Fork {
    async fn start(ctx: &Ctx, chain: &Chain, block: u64) -> eyre::Result<Self> {
        let anvil = Toolchain::locate().and_then(|t| t.anvil()).wrap_err("finding anvil to fork with")?;
        let profile = Profile::test().with_fork(chain.rpc_url.clone(), Some(block));
        let origin = profile.fork_origin().unwrap_or_default();
        output::progress(
            &ctx.global,
            &format!(
                "forking {} (chain {}) at block {block} from {origin}{}…",
                ctx.network_name,
                chain.chain_id,
                if ctx.kind().is_anvil() { "" } else { " (fetching state may take a while)" }
            ),
        );
        let t = Instant::now();
        let node = tokio::task::spawn_blocking(move || AnvilNode::spawn(&anvil, &profile))
            .await
            .wrap_err("the anvil start task")?
            .map_err(|e| {
                Hinted::new(
                    format!("starting the fork: {e}"),
                    e.hint().unwrap_or_else(|| "check that anvil runs (`npm ci` installs it)".into()),
                )
            })?;
        let provider = ProviderBuilder::new().connect_http(node.endpoint().parse()?).erased();
        let chain_id = provider.get_chain_id().await.wrap_err("the fork's eth_chainId")?;
        eyre::ensure!(
            chain_id == chain.chain_id,
            "the fork reports chain {chain_id}, the session's chain is {}",
            chain.chain_id
        );
        let relayer = node.dev_signers().first().cloned().ok_or_eyre("the fork has no dev account")?;
        output::progress(
            &ctx.global,
            &format!(
                "fork ready at {} (anvil pid {}) in {:.1}s",
                node.endpoint(),
                node.pid(),
                t.elapsed().as_secs_f64()
            ),
        );
        let fork = Self { node, provider, relayer, chain_id, entry_point: chain.contracts.entry_point };
        // On a public chain anvil's well-known dev address may carry code (a 7702 delegation):
        // the bundle sender must be a plain EOA, and on the fork it can be made one.
        if !fork.provider.get_code_at(fork.relayer.address()).await?.is_empty() {
            fork.rpc::<serde_json::Value>("anvil_setCode", (fork.relayer.address(), Bytes::new())).await?;
        }
        Ok(fork)
    }

    async fn rpc<T: RpcRecv>(&self, method: &'static str, params: impl RpcSend) -> eyre::Result<T> {
        self.provider
            .raw_request(method.into(), params)
            .await
            .wrap_err_with(|| format!("{method} on the fork"))
    }

    async fn time(&self) -> eyre::Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::rpc::types::BlockNumberOrTag::Latest)
            .await?
            .ok_or_eyre("the fork has no latest block")?;
        Ok(block.header.timestamp)
    }

    /// Moves the fork's clock so that its latest block is at `at` or later.
    async fn warp_to(&self, at: u64) -> eyre::Result<()> {
        let now = self.time().await?;
        if at > now {
            self.rpc::<serde_json::Value>("evm_increaseTime", (at - now,)).await?;
            self.rpc::<serde_json::Value>("evm_mine", ()).await?;
        }
        Ok(())
    }

    async fn snapshot(&self) -> eyre::Result<serde_json::Value> {
        self.rpc("evm_snapshot", ()).await
    }

    async fn revert(&self, id: serde_json::Value) -> eyre::Result<()> {
        let done: bool = self.rpc("evm_revert", (id,)).await?;
        eyre::ensure!(done, "evm_revert refused the fork's snapshot");
        Ok(())
    }

    /// Sends `data` to `to` as `from` (impersonated: no key needed on a fork).
    async fn send_as(&self, from: Address, to: Address, data: Bytes) -> eyre::Result<B256> {
        self.rpc::<serde_json::Value>("anvil_impersonateAccount", (from,)).await?;
        let balance = self.provider.get_balance(from).await?;
        let gas_money = U256::from(10u128.pow(18));
        if balance < gas_money {
            self.rpc::<serde_json::Value>("anvil_setBalance", (from, balance + gas_money)).await?;
        }
        let tx = TransactionRequest::default().with_from(from).with_to(to).with_input(data);
        let receipt = self.provider.send_transaction(tx).await?.get_receipt().await;
        self.rpc::<serde_json::Value>("anvil_stopImpersonatingAccount", (from,)).await?;
        let receipt = receipt?;
        eyre::ensure!(receipt.status(), "the transaction from {from} reverted on the fork");
        Ok(receipt.transaction_hash)
    }

    async fn balance_of(&self, token: Address, holder: Address) -> eyre::Result<U256> {
        if token == NATIVE {
            let deposit = IEntryPoint::new(self.entry_point, &self.provider)
                .balanceOf(holder)
                .call()
                .await
                .unwrap_or_default();
            return Ok(self.provider.get_balance(holder).await? + deposit);
        }
        MockERC20::new(token, &self.provider).balanceOf(holder).call().await.wrap_err("balanceOf")
    }
}

/// The session under test on the fork, and how to sign for it.
struct OnFork<'a> {
    fork: &'a Fork,
    account: Address,
    id: u32,
    policy: &'a Policy,
    key: LocalKey,
    init_code: Bytes,
    delegate: Option<Address>,
    /// The ledgers' directory (deleted on drop).
    dir: tempfile::TempDir,
    cases_run: usize,
}

type Bot = GuardedSigner<SqliteLedger, SelfBundler>;

/// What one signed attempt ended in.
enum Outcome {
    Success {
        tx: B256,
        user_op_hash: B256,
        gas: U256,
    },
    /// The execution reverted after validation (the operation was included).
    ExecutionReverted {
        tx: B256,
        user_op_hash: B256,
        reason: String,
    },
    Refused(Refusal),
    Error(String),
}

impl OnFork<'_> {
    /// A fresh guarded signer for each case: after `evm_revert` the relayer's and the account's
    /// nonces go back, so nothing cached may survive a case.
    async fn bot(&mut self) -> eyre::Result<Bot> {
        self.cases_run += 1;
        let ledger =
            Arc::new(SqliteLedger::open(&self.dir.path().join(format!("case-{}.db", self.cases_run)))?);
        let session = Session::new(self.id, self.key.address(), self.policy.clone());
        let binding = Binding {
            chain_id: self.fork.chain_id,
            context: Context::account(self.account, self.fork.entry_point),
            session_id: self.id,
            lane_key: sak_userop::session_nonce_key(self.id, 0),
            init_code: self.init_code.clone(),
            delegate: self.delegate,
        };
        let bundler =
            SelfBundler::new(self.fork.node.endpoint(), self.fork.relayer.clone(), self.fork.entry_point)
                .await
                .wrap_err("the fork's bundler")?;
        Ok(GuardedSigner::new(
            LocalKey::from_signer(self.key.signer().clone()),
            session,
            binding,
            self.fork.provider.clone(),
            bundler,
            FeeCaps::UNLIMITED,
            ledger,
        )
        .await?)
    }

    /// Signs `calls` with the session key and lets the contracts decide.
    async fn attempt(&mut self, calls: &[Call]) -> eyre::Result<Outcome> {
        let bot = self.bot().await?;
        Ok(match bot.execute(calls, Preflight::SkipForProof).await {
            Ok(done) if done.receipt.success => Outcome::Success {
                tx: done.receipt.tx_hash,
                user_op_hash: done.user_op_hash,
                gas: done.receipt.actual_gas_cost,
            },
            Ok(done) => Outcome::ExecutionReverted {
                tx: done.receipt.tx_hash,
                user_op_hash: done.user_op_hash,
                reason: done.receipt.revert.map_or_else(|| "no reason".into(), |r| r.to_string()),
            },
            Err(e) => match e.refusal() {
                Some(r) => Outcome::Refused(r),
                None => Outcome::Error(e.to_string()),
            },
        })
    }

    /// What remains of `token`'s allowance in the period of the fork's clock.
    async fn remaining(&self, token: Address) -> eyre::Result<U256> {
        let limit = self.policy.spend_limit(token).ok_or_eyre("the operation's token has no cap")?;
        let s = SakAccount::new(self.account, &self.fork.provider)
            .getSpend(self.id, token)
            .call()
            .await
            .wrap_err("getSpend")?;
        let now = self.fork.time().await?;
        let current = now.saturating_sub(self.policy.valid_after) / u64::from(limit.period);
        let spent = if s.window.to::<u64>() == current { U256::from(s.spent) } else { U256::ZERO };
        Ok(limit.allowance.saturating_sub(spent))
    }
}

/// The allowed operation, built from the policy.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// transfer(adapter, amount) + the adapter's swapExactTokensForTokens(amount, .., [token,
    /// other], account, ..)
    Swap { router: Address, token: Address, other: Address },
    /// transfer(recipient, amount)
    Transfer { token: Address, recipient: Address },
    /// `amount` wei to a permitted recipient, through the adapter.
    Native { recipient: Address },
}

impl Plan {
    /// The token the operation spends (NATIVE for ETH): the cap it is charged to.
    const fn token(self) -> Address {
        match self {
            Self::Swap { token, .. } | Self::Transfer { token, .. } => token,
            Self::Native { .. } => NATIVE,
        }
    }

    /// The contract the operation calls (through the adapter for a swap or an ETH send).
    const fn target(self) -> Address {
        match self {
            Self::Swap { router, .. } => router,
            Self::Transfer { token, .. } => token,
            Self::Native { recipient } => recipient,
        }
    }

    /// How much the allowed operation moves: a little, so that it fits.
    fn small_amount(self, decimals: Option<u8>) -> U256 {
        match self {
            // A whole unit (or what remains): enough for the pool to pay something back.
            Self::Swap { .. } => U256::from(10u64).pow(U256::from(decimals.unwrap_or(0))),
            _ => U256::from(1),
        }
    }

    fn calls(self, account: Address, amount: U256, min_out: U256, deadline: u64) -> Vec<Call> {
        let adapter = SakAddresses::canonical().adapter_of(account);
        match self {
            Self::Swap { router, token, other } => {
                let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
                    amountIn: amount,
                    amountOutMin: min_out,
                    path: vec![token, other],
                    to: account,
                    deadline: U256::from(deadline),
                };
                funded_call(adapter, token, amount, &Call::contract(router, &swap))
            }
            Self::Transfer { token, recipient } => {
                vec![Call::contract(token, &MockERC20::transferCall { to: recipient, value: amount })]
            }
            Self::Native { recipient } => {
                vec![through_adapter(adapter, &Call::new(recipient, amount, Bytes::new()), &[])]
            }
        }
    }

    fn describe(self, amount: U256, chain: &Chain) -> String {
        let c = &chain.contracts;
        let show = |token: Address| super::session::show_amount(amount, c.decimals(token));
        match self {
            Self::Swap { router, token, other } => format!(
                "swap {} {} for {} through {} from the account's adapter (recipient: the account)",
                show(token),
                c.name(token),
                c.name(other),
                c.name(router)
            ),
            Self::Transfer { token, recipient } => {
                format!("transfer {} {} to {recipient}", show(token), c.name(token))
            }
            Self::Native { recipient } => format!("send {amount} wei to {}", c.name(recipient)),
        }
    }
}

/// A fresh address, the same for the same account, session and purpose.
fn fresh(account: Address, id: u32, purpose: &str) -> Address {
    Address::from_word(keccak256(format!("sak session verify {account} {id} {purpose}")))
}

/// Whether the policy permits `selector` on `target` (a call permission, or `transfer` on a
/// capped token).
fn permits(policy: &Policy, target: Address, selector: [u8; 4]) -> bool {
    let selector = alloy::primitives::FixedBytes::<4>::from(selector);
    policy.permission(target, selector).is_some()
        || policy.spend_limit(target).is_some_and(|l| selector == TRANSFER && l.token != NATIVE)
}

/// Functions to try as the wrong selector, by signature (the first the policy does not permit
/// on the target is used).
const WRONG_FUNCTIONS: [&str; 4] = [
    "transferFrom(address,address,uint256)",
    "removeLiquidity(address,address,uint256,uint256,uint256,address,uint256)",
    "setApprovalForAll(address,bool)",
    "mint(address,uint256)",
];

/// A call to a function `target` is not permitted, with plausible arguments (the account, a
/// fresh address, 1).
fn wrong_selector_call(
    policy: &Policy,
    target: Address,
    account: Address,
    other: Address,
) -> Option<(Call, String)> {
    // transferFrom for a token; for anything else a function such a target may really have.
    let token = policy.spend_limit(target).is_some();
    WRONG_FUNCTIONS.iter().skip(usize::from(!token)).find_map(|sig| {
        let selector: [u8; 4] = keccak256(sig.as_bytes())[..4].try_into().ok()?;
        if permits(policy, target, selector) {
            return None;
        }
        let arity = sig[sig.find('(')? + 1..sig.len() - 1].split(',').count();
        let mut data = selector.to_vec();
        for i in 0..arity {
            let word = match i {
                0 => B256::left_padding_from(account.as_slice()),
                1 => B256::left_padding_from(other.as_slice()),
                _ => B256::from(U256::from(1)),
            };
            data.extend_from_slice(word.as_slice());
        }
        Some((Call::new(target, U256::ZERO, data), sig[..sig.find('(')?].to_owned()))
    })
}

/// The candidates for the allowed operation, in order of preference: a swap through a
/// permitted router (with a pool for the capped token), a transfer, an approval, an ETH send.
async fn plans(fork: &Fork, chain: &Chain, policy: &Policy, account: Address, id: u32) -> Vec<Plan> {
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR;
    let mut out = Vec::new();
    let routers: Vec<Address> =
        policy.permissions.iter().filter(|p| p.selector.0 == swap).map(|p| p.target).collect();
    let capped: Vec<Address> =
        policy.spend_limits.iter().filter(|l| l.token != NATIVE).map(|l| l.token).collect();
    for router in &routers {
        let r = IUniswapV2Router02::new(*router, &fork.provider);
        let Ok(factory) = r.factory().call().await else { continue };
        let mut others: Vec<Address> = r.WETH().call().await.into_iter().collect();
        others.extend(chain.contracts.book.iter().filter(|(.., d)| d.is_some()).map(|(_, a, _)| *a));
        for token in &capped {
            for other in others.iter().filter(|o| *o != token) {
                let pair =
                    IUniswapV2Factory::new(factory, &fork.provider).getPair(*token, *other).call().await;
                if pair.is_ok_and(|p| p != Address::ZERO) {
                    out.push(Plan::Swap { router: *router, token: *token, other: *other });
                    break;
                }
            }
        }
    }
    for l in policy.spend_limits.iter().filter(|l| l.token != NATIVE && l.transfer) {
        out.push(Plan::Transfer { token: l.token, recipient: fresh(account, id, "recipient") });
    }
    if policy.spend_limit(NATIVE).is_some() {
        for p in policy.permissions.iter().filter(|p| p.selector == ETH_SEND && p.allow_value) {
            out.push(Plan::Native { recipient: p.target });
        }
    }
    out
}

/// The first candidate the policy admits (its argument conditions included) at `clock`.
fn admitted(plans: &[Plan], policy: &Policy, s: &OnForkStatic, clock: u64) -> Option<Plan> {
    let session = Session::new(s.id, s.signer, policy.clone());
    let ctx = Context::account(s.account, s.entry_point);
    plans.iter().copied().find(|plan| {
        let calls =
            plan.calls(s.account, plan.small_amount(None).max(U256::from(1)), U256::from(1), clock + 600);
        session.authorize(&Operation::unpaid(calls, clock), &ctx).is_ok()
    })
}

/// The few facts [`admitted`] needs.
struct OnForkStatic {
    id: u32,
    signer: Address,
    account: Address,
    entry_point: Address,
}

// ---------------------------------------------------------------------------------------------
// The proof
// ---------------------------------------------------------------------------------------------

async fn prove(
    ctx: &Ctx,
    chain: &Chain,
    account: &AccountRecord,
    subject: &Subject,
    signer: Signer,
    block: u64,
) -> eyre::Result<Report> {
    let fork = Fork::start(ctx, chain, block).await?;
    let mut setup = Vec::new();
    let say = |line: &str| output::progress(&ctx.global, &format!("  {line}"));

    let (init_code, delegate) = match account.kind {
        AccountKind::Smart => (Bytes::new(), None),
        AccountKind::Eip7702 => {
            let delegate = eip7702::delegate_of(&fork.provider, account.address)
                .await?
                .ok_or_eyre("the 7702 account has no delegation on the fork")?;
            (Bytes::from(EIP7702_MARKER.to_vec()), Some(delegate))
        }
    };

    // -- who signs: the session's key, or a throwaway key granted the same policy
    let (key, id, signed_with, fork_session) = match signer {
        Signer::Key(key) => (key, subject.id, "session-key", None),
        Signer::Throwaway => {
            let key = LocalKey::generate()?;
            let owner =
                SakAccount::new(account.address, &fork.provider).owner().call().await.wrap_err("owner()")?;
            let grant =
                SakAccount::grantSessionCall { config: subject.policy.to_session_config(key.address()) };
            let tx = fork
                .send_as(owner, account.address, grant.abi_encode().into())
                .await
                .wrap_err("grantSession on the fork")?;
            let receipt =
                fork.provider.get_transaction_receipt(tx).await?.ok_or_eyre("no receipt for the grant")?;
            let new_id = receipt
                .inner
                .logs()
                .iter()
                .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
                .ok_or_eyre("no SessionGranted event on the fork")?
                .inner
                .data
                .id;
            let line = format!(
                "the owner {owner} (impersonated) granted session #{}'s policy to throwaway key {} as session #{new_id}",
                subject.id,
                key.address()
            );
            say(&line);
            setup.push(line);
            (key, new_id, "throwaway", Some(new_id))
        }
    };
    // A throwaway grant is a new, active session whatever the original's status.
    let status =
        if fork_session.is_some() && subject.status == "revoked" { "active" } else { subject.status };
    let mut on = OnFork {
        fork: &fork,
        account: account.address,
        id,
        policy: &subject.policy,
        key,
        init_code,
        delegate,
        dir: tempfile::tempdir().wrap_err("creating a temporary directory for the fork's ledger")?,
        cases_run: 0,
    };

    if status == "not-started" {
        fork.warp_to(subject.policy.valid_after).await?;
        let line = format!(
            "moved the fork's clock to the session's start ({})",
            sak_primitives::units::format_time(subject.policy.valid_after)
        );
        say(&line);
        setup.push(line);
    }

    let candidates = plans(&fork, chain, &subject.policy, account.address, id).await;
    let facts = OnForkStatic {
        id,
        signer: on.key.address(),
        account: account.address,
        entry_point: fork.entry_point,
    };
    // An expired session's operation is the one it would have been allowed in its window.
    let clock = fork.time().await?.clamp(subject.policy.valid_after, subject.policy.valid_until);
    let plan = admitted(&candidates, &subject.policy, &facts, clock);

    let mut cases = Vec::new();
    let mut isolation = Vec::new();
    let mut operation = None;

    if matches!(status, "revoked" | "expired") {
        // Nothing may validate: one operation, refused for the session's state.
        let (name, expected) = if status == "revoked" {
            ("revoked", "SessionNotActive")
        } else {
            ("expired", "ClockOutsideSession")
        };
        let calls = match plan {
            Some(p) => {
                let amount = p.small_amount(chain.contracts.decimals(p.token()));
                operation = Some(p.describe(amount, chain));
                p.calls(account.address, amount, U256::from(1), fork.time().await? + 600)
            }
            None => vec![Call::contract(
                fresh(account.address, id, "target"),
                &MockERC20::transferCall {
                    to: fresh(account.address, id, "recipient"),
                    value: U256::from(1),
                },
            )],
        };
        say(&format!("case 1/1: the session is {status}: one operation, which the contracts must refuse…"));
        let outcome = on.attempt(&calls).await?;
        cases.push(expect_refusal(
            name,
            format!("the session is already {status} on the real chain: an operation it would sign"),
            expected,
            outcome,
        ));
    } else {
        let plan_amount = match plan {
            Some(p) => Some((p, prepare(&on, chain, p, &mut setup, &say).await?)),
            None => None,
        };
        let base = fork.snapshot().await?;
        let (rows, assets) = run_cases(&mut on, chain, plan_amount, base, &say).await?;
        cases = rows;
        isolation = assets;
        operation = plan_amount.map(|(p, amount)| p.describe(amount, chain));
    }

    let ok = cases.iter().all(|c| c.result != "fail");
    let passed = cases.iter().filter(|c| c.pass).count();
    let skipped = cases.iter().filter(|c| c.result == "skip").count();
    let subject_words = match fork_session {
        Some(n) => {
            format!("session #{}'s policy (granted on the fork to a throwaway key as #{n})", subject.id)
        }
        None => format!("session #{}", subject.id),
    };
    let verdict = match (ok, status) {
        (true, "revoked") => format!(
            "session #{} is revoked: the contracts refuse its operations (SessionNotActive)",
            subject.id
        ),
        (true, "expired") => format!(
            "session #{} has expired: the contracts refuse its operations (ClockOutsideSession)",
            subject.id
        ),
        (true, _) => format!(
            "the contracts enforce {subject_words}: {passed} of {} cases as expected{}",
            cases.len(),
            if skipped > 0 { format!(", {skipped} skipped") } else { String::new() }
        ),
        (false, _) => format!(
            "{} of {} cases did NOT behave as {subject_words}'s policy claims",
            cases.iter().filter(|c| c.result == "fail").count(),
            cases.len()
        ),
    };
    drop(on);
    drop(fork);
    Ok(Report {
        ok,
        verdict,
        network: ctx.network_name.clone(),
        chain_id: chain.chain_id,
        account: account.address,
        account_kind: account.kind.as_str(),
        session: subject.id,
        status: subject.status,
        key: subject.signer,
        key_name: subject.key_name.clone(),
        signed_with,
        fork_session,
        fork_block: block,
        operation,
        setup,
        cases,
        isolation,
        wall_time_s: 0.0,
    })
}

/// Funds the account on the fork for the allowed operation, moves the clock to a period with
/// allowance left if this one's is used up, and returns the operation's amount.
async fn prepare(
    on: &OnFork<'_>,
    chain: &Chain,
    plan: Plan,
    setup: &mut Vec<String>,
    say: &impl Fn(&str),
) -> eyre::Result<U256> {
    let (fork, account) = (on.fork, on.account);
    let token = plan.token();
    let limit = on.policy.spend_limit(token).ok_or_eyre("the allowed operation's token has no cap")?.clone();
    let mut remaining = on.remaining(token).await?;
    if remaining.is_zero() {
        let next = next_period(on.policy.valid_after, limit.period, fork.time().await?);
        if next <= on.policy.valid_until {
            fork.warp_to(next).await?;
            let line = format!(
                "this period's {} allowance is used up: moved the fork's clock to the next period ({})",
                chain.contracts.name(token),
                sak_primitives::units::format_time(next)
            );
            say(&line);
            setup.push(line);
            remaining = on.remaining(token).await?;
        }
    }
    let amount = plan.small_amount(chain.contracts.decimals(token)).min(remaining).max(U256::from(1));

    // Gas: the account pays its operations' prefund.
    let eth = fork.balance_of(NATIVE, account).await?;
    let gas_floor = U256::from(10u128.pow(17));
    if eth < gas_floor {
        let balance = fork.provider.get_balance(account).await?;
        let topped = balance + U256::from(10u128.pow(18));
        fork.rpc::<serde_json::Value>("anvil_setBalance", (account, topped)).await?;
        let line = "gave the account 1 ETH on the fork for gas (anvil_setBalance)".to_owned();
        say(&line);
        setup.push(line);
    }
    if token != NATIVE {
        let held = fork.balance_of(token, account).await?;
        if held < amount {
            let dealt = fork.rpc::<serde_json::Value>("anvil_dealERC20", (account, token, amount)).await;
            let method = match dealt {
                Ok(_) => "anvil_dealERC20",
                Err(_) => {
                    // A token anvil cannot deal: the local stack's mocks mint for anyone.
                    let mint = MockERC20::mintCall { to: account, amount: amount - held };
                    fork.send_as(fork.relayer.address(), token, mint.abi_encode().into())
                        .await
                        .wrap_err_with(|| {
                            format!("funding the account with {} on the fork", chain.contracts.name(token))
                        })?;
                    "mint"
                }
            };
            let line = format!(
                "gave the account {} {} on the fork for the allowed operation ({method})",
                super::session::show_amount(amount, chain.contracts.decimals(token)),
                chain.contracts.name(token)
            );
            say(&line);
            setup.push(line);
        }
    }
    Ok(amount)
}

/// The first second of the spend period after the one containing `now` (periods are aligned to
/// the session's start).
fn next_period(valid_after: u64, period: u32, now: u64) -> u64 {
    let period = u64::from(period);
    valid_after + (now.saturating_sub(valid_after) / period + 1) * period
}

/// Cases 1 to 7 on an active session, each from the snapshot `base`.
async fn run_cases(
    on: &mut OnFork<'_>,
    chain: &Chain,
    plan: Option<(Plan, U256)>,
    mut base: serde_json::Value,
    say: &impl Fn(&str),
) -> eyre::Result<(Vec<CaseRow>, Vec<AssetRow>)> {
    let fork = on.fork;
    let account = on.account;
    let (id, policy) = (on.id, on.policy);
    let deadline = |now: u64| now + 600;
    let skip_no_plan = "the policy permits no operation sak can build (no capped token, no ETH recipient)";
    let mut rows: Vec<CaseRow> = Vec::new();
    let mut assets = Vec::new();
    let mut step = 0;
    let mut next_case = |title: &str| {
        step += 1;
        say(&format!("case {step}/7: {title}…"));
    };
    let reset = async |base: &mut serde_json::Value| -> eyre::Result<()> {
        fork.revert(base.clone()).await?;
        *base = fork.snapshot().await?;
        Ok(())
    };

    // 1 + 7: the allowed operation, and what it did to the account's assets.
    next_case("the allowed operation must succeed");
    match plan {
        Some((p, amount)) => {
            let now = fork.time().await?;
            let min_out = swap_quote(fork, p, amount).await;
            let calls = p.calls(account, amount, min_out, deadline(now));
            let tracked = tracked_assets(fork, chain, policy).await;
            let before = holdings(fork, account, &tracked).await?;
            let outcome = on.attempt(&calls).await?;
            let after = holdings(fork, account, &tracked).await?;
            let (row, gas) = expect_success(p.describe(amount, chain), outcome);
            let succeeded = row.pass;
            rows.push(row);
            if succeeded {
                assets = isolation(chain, &tracked, &before, &after, p, amount, gas);
            }
            reset(&mut base).await?;
        }
        None => {
            rows.push(skipped("allowed", "an operation the policy permits".into(), "success", skip_no_plan))
        }
    }

    // 2: the same, over what remains of the cap.
    next_case("the same over the cap must be refused");
    match plan {
        Some((p, _)) => {
            let remaining = on.remaining(p.token()).await?;
            let over = remaining + U256::from(1);
            let calls = p.calls(account, over, U256::from(1), deadline(fork.time().await?));
            let title = format!("{} (what remains of the cap this period + 1)", p.describe(over, chain));
            let outcome = on.attempt(&calls).await?;
            rows.push(expect_refusal("over-cap", title, "SpendCapExceeded", outcome));
            reset(&mut base).await?;
        }
        None => rows.push(skipped(
            "over-cap",
            "the allowed operation over the cap".into(),
            "SpendCapExceeded",
            skip_no_plan,
        )),
    }

    // 3: a foreign target: the main call, sent to a fresh address.
    next_case("a foreign target must be refused");
    let main_call = plan.map(|(p, amount)| {
        p.calls(account, amount, U256::from(1), u64::MAX / 2).pop().expect("every plan has a call")
    });
    let foreign = fresh(account, id, "target");
    let foreign_call = match &main_call {
        Some(c) => Call { target: foreign, ..c.clone() },
        None => Call::contract(
            foreign,
            &MockERC20::transferCall { to: fresh(account, id, "recipient"), value: U256::from(1) },
        ),
    };
    let title = format!(
        "{} to {foreign}, a fresh address the policy does not name",
        if main_call.is_some() { "the allowed operation's call" } else { "transfer(..)" }
    );
    let outcome = on.attempt(std::slice::from_ref(&foreign_call)).await?;
    rows.push(expect_refusal("foreign-target", title, "CallNotPermitted", outcome));
    reset(&mut base).await?;

    // 4: a function the policy does not permit on a target it does (a token is called by the
    // account, anything else through the adapter).
    next_case("a wrong selector on a permitted target must be refused");
    let target = plan.map(|(p, _)| p.target()).or_else(|| {
        policy
            .permissions
            .first()
            .map(|p| p.target)
            .or_else(|| policy.spend_limits.iter().map(|l| l.token).find(|t| *t != NATIVE))
    });
    match target.and_then(|t| wrong_selector_call(policy, t, account, fresh(account, id, "recipient"))) {
        Some((call, function)) => {
            let title = format!(
                "{function}(..) on {}, which the policy does not permit there",
                chain.contracts.name(call.target)
            );
            let element = if policy.spend_limit(call.target).is_some() {
                call
            } else {
                through_adapter(SakAddresses::canonical().adapter_of(account), &call, &[])
            };
            let outcome = on.attempt(&[element]).await?;
            rows.push(expect_refusal("wrong-selector", title, "CallNotPermitted", outcome));
            reset(&mut base).await?;
        }
        None => rows.push(skipped(
            "wrong-selector",
            "a function the policy does not permit on a permitted target".into(),
            "CallNotPermitted",
            "the policy names no target",
        )),
    }

    // 5 and 6 need no permitted operation: the session's state is checked before its calls,
    // so without one any call shows it (the foreign call above).
    let probe = |now: u64| match plan {
        Some((p, amount)) => {
            (p.calls(account, amount, U256::from(1), deadline(now)), "the allowed operation")
        }
        None => (vec![foreign_call.clone()], "a call (the policy permits none)"),
    };

    // 5: past validUntil.
    next_case("after expiry the allowed operation must be refused");
    fork.warp_to(policy.valid_until + 1).await?;
    let (calls, what) = probe(fork.time().await?);
    let title = format!(
        "the fork's clock moved past validUntil ({}); then {what}",
        sak_primitives::units::format_time(policy.valid_until)
    );
    let outcome = on.attempt(&calls).await?;
    rows.push(expect_refusal("after-expiry", title, "ClockOutsideSession", outcome));
    reset(&mut base).await?;

    // 6: the owner revokes, then the allowed operation (evm_revert put the clock back).
    next_case("after revocation the allowed operation must be refused");
    let owner = SakAccount::new(account, &fork.provider).owner().call().await.wrap_err("owner()")?;
    let revoke = SakAccount::revokeSessionCall { id };
    fork.send_as(owner, account, revoke.abi_encode().into()).await.wrap_err("revokeSession on the fork")?;
    let (calls, what) = probe(fork.time().await?);
    let title = format!("the owner {owner} (impersonated on the fork) revokes #{id}; then {what}");
    let outcome = on.attempt(&calls).await?;
    rows.push(expect_refusal("after-revoke", title, "SessionNotActive", outcome));
    reset(&mut base).await?;

    // 7
    next_case("the account's other assets must be untouched");
    rows.push(if assets.is_empty() {
        skipped(
            "isolation",
            "the account's other assets around the allowed operation".into(),
            "as the policy allows",
            if plan.is_some() { "the allowed operation did not succeed" } else { skip_no_plan },
        )
    } else {
        let bad: Vec<&AssetRow> = assets.iter().filter(|a| !a.ok).collect();
        let observed = if bad.is_empty() {
            format!("{} assets as allowed", assets.len())
        } else {
            format!(
                "{} changed: {}",
                bad.len(),
                bad.iter().map(|a| a.asset.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        let detail = assets
            .iter()
            .map(|a| format!("{} {} ({})", a.asset, a.change, a.allowed))
            .collect::<Vec<_>>()
            .join("; ");
        row(
            "isolation",
            "ETH beyond gas, every book token the policy does not cap, and the router's WETH".into(),
            "as the policy allows",
            observed,
            Some(detail),
            bad.is_empty(),
        )
    });
    Ok((rows, assets))
}

/// The router's quote less 1% for a swap (1 otherwise, and if the quote fails).
async fn swap_quote(fork: &Fork, plan: Plan, amount: U256) -> U256 {
    let Plan::Swap { router, token, other } = plan else { return U256::from(1) };
    let quote = IUniswapV2Router02::new(router, &fork.provider)
        .getAmountsOut(amount, vec![token, other])
        .call()
        .await
        .ok()
        .and_then(|a| a.last().copied())
        .unwrap_or_default();
    (quote * U256::from(99) / U256::from(100)).max(U256::from(1))
}

/// ETH, every token of the address book, and the WETH of every permitted router.
async fn tracked_assets(fork: &Fork, chain: &Chain, policy: &Policy) -> Vec<(String, Address)> {
    let mut out = vec![("ETH".to_owned(), NATIVE)];
    let mut push = |name: String, token: Address| {
        if !out.iter().any(|(_, t)| *t == token) {
            out.push((name, token));
        }
    };
    for (_, token, decimals) in &chain.contracts.book {
        if decimals.is_some() {
            push(chain.contracts.name(*token), *token);
        }
    }
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR;
    for p in policy.permissions.iter().filter(|p| p.selector.0 == swap) {
        if let Ok(weth) = IUniswapV2Router02::new(p.target, &fork.provider).WETH().call().await {
            push(chain.contracts.name(weth), weth);
        }
    }
    for l in &policy.spend_limits {
        if l.token != NATIVE {
            push(chain.contracts.name(l.token), l.token);
        }
    }
    out
}

async fn holdings(fork: &Fork, account: Address, assets: &[(String, Address)]) -> eyre::Result<Vec<U256>> {
    let mut out = Vec::with_capacity(assets.len());
    for (name, token) in assets {
        out.push(fork.balance_of(*token, account).await.wrap_err_with(|| format!("the account's {name}"))?);
    }
    Ok(out)
}

/// Property 7: the allowed operation moved only what its policy lets it move.
fn isolation(
    chain: &Chain,
    assets: &[(String, Address)],
    before: &[U256],
    after: &[U256],
    plan: Plan,
    amount: U256,
    gas: U256,
) -> Vec<AssetRow> {
    let decimals = |token: Address| if token == NATIVE { Some(18) } else { chain.contracts.decimals(token) };
    assets
        .iter()
        .zip(before.iter().zip(after))
        .map(|((name, token), (b, a))| {
            let (b, a, token) = (*b, *a, *token);
            let show = |v: U256| super::session::show_amount(v, decimals(token));
            let change = if a == b {
                "0".into()
            } else if a > b {
                format!("+{}", a - b)
            } else {
                format!("-{}", b - a)
            };
            let spent = b.saturating_sub(a);
            let (allowed, ok) = if token == NATIVE {
                let native = if plan.token() == NATIVE { amount } else { U256::ZERO };
                (
                    format!(
                        "at most -{} ETH: the operation's gas{}",
                        show(gas + native),
                        if native.is_zero() { "" } else { " and value" }
                    ),
                    spent <= gas + native && a <= b,
                )
            } else if token == plan.token() {
                (
                    format!("at most -{} (the allowed operation, within the cap)", show(amount)),
                    spent <= amount && a <= b,
                )
            } else if matches!(plan, Plan::Swap { other, .. } if other == token) {
                ("none out; the swap's output comes in".to_owned(), a >= b)
            } else {
                ("unchanged (not in the session)".to_owned(), a == b)
            };
            AssetRow {
                asset: if token == NATIVE {
                    "ETH (balance + EntryPoint deposit)".into()
                } else {
                    name.clone()
                },
                token: (token != NATIVE).then_some(token),
                before: b.to_string(),
                after: a.to_string(),
                change,
                allowed,
                ok,
            }
        })
        .collect()
}

fn row(
    case: &'static str,
    title: String,
    expected: &str,
    observed: String,
    detail: Option<String>,
    pass: bool,
) -> CaseRow {
    CaseRow {
        case,
        title,
        expected: expected.into(),
        observed,
        detail,
        tx: None,
        user_op_hash: None,
        result: if pass { "pass" } else { "fail" },
        pass,
    }
}

fn skipped(case: &'static str, title: String, expected: &str, why: &str) -> CaseRow {
    CaseRow {
        result: "skip",
        pass: false,
        ..row(case, title, expected, "skipped".into(), Some(why.into()), false)
    }
}

/// A case that must succeed; returns the row and the gas the account paid.
fn expect_success(title: String, outcome: Outcome) -> (CaseRow, U256) {
    match outcome {
        Outcome::Success { tx, user_op_hash, gas } => {
            let detail = format!("included in fork tx {tx}; the account paid {gas} wei of gas");
            (
                CaseRow {
                    tx: Some(tx),
                    user_op_hash: Some(user_op_hash),
                    ..row("allowed", title, "success", "success".into(), Some(detail), true)
                },
                gas,
            )
        }
        Outcome::ExecutionReverted { tx, user_op_hash, reason } => (
            CaseRow {
                tx: Some(tx),
                user_op_hash: Some(user_op_hash),
                ..row("allowed", title, "success", "execution reverted".into(), Some(reason), false)
            },
            U256::ZERO,
        ),
        Outcome::Refused(r) => {
            (row("allowed", title, "success", r.name().into(), Some(r.to_string()), false), U256::ZERO)
        }
        Outcome::Error(e) => (row("allowed", title, "success", short(&e), Some(e), false), U256::ZERO),
    }
}

/// A case the contracts must refuse with `expected`.
fn expect_refusal(case: &'static str, title: String, expected: &str, outcome: Outcome) -> CaseRow {
    match outcome {
        Outcome::Refused(r) => {
            let pass = r.name() == expected;
            row(case, title, expected, r.name().into(), Some(format!("refused by the contracts: {r}")), pass)
        }
        Outcome::Success { tx, user_op_hash, .. } => CaseRow {
            tx: Some(tx),
            user_op_hash: Some(user_op_hash),
            ..row(
                case,
                title,
                expected,
                "success".into(),
                Some(format!("the chain ACCEPTED it (fork tx {tx})")),
                false,
            )
        },
        Outcome::ExecutionReverted { tx, user_op_hash, reason } => CaseRow {
            tx: Some(tx),
            user_op_hash: Some(user_op_hash),
            ..row(
                case,
                title,
                expected,
                "validated, then reverted".into(),
                Some(format!("the session's validation ACCEPTED it; its execution reverted: {reason}")),
                false,
            )
        },
        Outcome::Error(e) => row(case, title, expected, short(&e), Some(e), false),
    }
}

fn short(text: &str) -> String {
    let first = text.split(": ").next().unwrap_or(text);
    if first.chars().count() > 48 {
        format!("{}…", first.chars().take(47).collect::<String>())
    } else {
        first.to_owned()
    }
}

fn human(r: &Report, chain: &Chain) -> String {
    let key = match (&r.key_name, r.signed_with) {
        (_, "throwaway") => {
            format!("a throwaway key (session #{} on the fork)", r.fork_session.unwrap_or_default())
        }
        (Some(name), _) => format!("its key `{name}` ({})", r.key),
        (None, _) => format!("its key {}", r.key),
    };
    let mut s = format!(
        "session #{} of {} ({} account) on {} (chain {}), {}: verified on a fork of block {} with {key}\n",
        r.session, r.account, r.account_kind, r.network, r.chain_id, r.status, r.fork_block
    );
    if let Some(op) = &r.operation {
        s += &format!("allowed operation: {op}\n");
    }
    s += &format!("\n{:>2}  {:<15} {:<21} {:<34} {}\n", "#", "case", "expected", "observed", "result");
    for (i, c) in r.cases.iter().enumerate() {
        let observed = match c.tx {
            Some(tx) if c.observed == "success" => format!("success, tx {}…", &tx.to_string()[..10]),
            _ => c.observed.clone(),
        };
        s += &format!(
            "{:>2}  {:<15} {:<21} {:<34} {}\n",
            i + 1,
            c.case,
            c.expected,
            observed,
            c.result.to_uppercase()
        );
    }
    let others: Vec<&CaseRow> = r.cases.iter().filter(|c| c.result != "pass").collect();
    if !others.is_empty() {
        s += "\n";
    }
    for c in others {
        s += &format!("{} {}: {}\n  {}\n", c.result, c.case, c.title, c.detail.as_deref().unwrap_or(""));
    }
    if !r.isolation.is_empty() {
        s += &format!("\n{:<34} {:>22} {:>22} {:>22}  {}\n", "asset", "before", "after", "change", "allowed");
        for a in &r.isolation {
            let d = a.token.map_or(Some(18), |t| chain.contracts.decimals(t));
            let show = |v: &str| super::session::show_amount(v.parse().unwrap_or_default(), d);
            let change = match a.change.split_at(1) {
                (sign @ ("+" | "-"), v) => format!("{sign}{}", show(v)),
                _ => "0".to_owned(),
            };
            s += &format!(
                "{:<34} {:>22} {:>22} {:>22}  {}{}\n",
                a.asset,
                show(&a.before),
                show(&a.after),
                change,
                a.allowed,
                if a.ok { "" } else { "  <- NOT AS ALLOWED" }
            );
        }
    }
    s += &format!("\nverdict: {} (on a throwaway fork: the real chain is untouched)\n", r.verdict);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use sak_primitives::{Gas, Permission, SpendLimit};

    fn policy(limits: Vec<SpendLimit>, permissions: Vec<Permission>) -> Policy {
        Policy {
            valid_after: 1_000,
            valid_until: 100_000,
            permissions,
            spend_limits: limits,
            gas: Gas::Unlimited,
            max_fee_per_gas: 0,
            max_pre_verification_gas: 0,
            max_ops: 0,
            paymaster: None,
        }
    }

    fn limit(token: Address, transfer: bool) -> SpendLimit {
        SpendLimit { token, allowance: U256::from(1_000), period: 86_400, transfer }
    }

    #[test]
    fn the_wrong_selector_is_one_the_policy_does_not_permit_on_that_target() {
        let token = Address::repeat_byte(0x11);
        let account = Address::repeat_byte(0xaa);
        let other = Address::repeat_byte(0xbb);
        let p = policy(vec![limit(token, true)], vec![]);
        let (call, name) = wrong_selector_call(&p, token, account, other).unwrap();
        assert_eq!(name, "transferFrom");
        assert_eq!(call.data.len(), 4 + 3 * 32);
        assert!(!permits(&p, token, call.data[..4].try_into().unwrap()));
        // A policy that somehow permits transferFrom there gets the next function.
        let transfer_from: [u8; 4] =
            keccak256(b"transferFrom(address,address,uint256)")[..4].try_into().unwrap();
        let p = policy(
            vec![limit(token, true)],
            vec![Permission {
                target: token,
                selector: transfer_from.into(),
                allow_value: false,
                conditions: vec![],
            }],
        );
        let (call, name) = wrong_selector_call(&p, token, account, other).unwrap();
        assert_eq!(name, "removeLiquidity");
        assert_eq!(call.data.len(), 4 + 7 * 32);
    }

    #[test]
    fn permits_reads_the_spend_limits_token_functions() {
        let token = Address::repeat_byte(0x11);
        let p = policy(vec![limit(token, false)], vec![]);
        assert!(permits(&p, token, TRANSFER.0), "a capped token may always move into the adapter");
        assert!(!permits(&p, token, sak_primitives::APPROVE.0), "sessions never approve");
        assert!(!permits(&p, Address::repeat_byte(0x22), TRANSFER.0));
    }

    #[test]
    fn the_allowed_operation_is_one_the_policy_admits() {
        let (token, account) = (Address::repeat_byte(0x11), Address::repeat_byte(0xaa));
        let facts = OnForkStatic {
            id: 1,
            signer: Address::repeat_byte(0x55),
            account,
            entry_point: Address::repeat_byte(0xee),
        };
        let recipient = fresh(account, 1, "recipient");
        let candidates = [Plan::Transfer { token, recipient }];
        // A transfer to anyone is admitted; without `transfer` the token only funds adapter
        // calls, and with no call permitted there is no operation to build.
        let p = policy(vec![limit(token, true)], vec![]);
        assert!(matches!(admitted(&candidates, &p, &facts, 2_000), Some(Plan::Transfer { .. })));
        assert!(admitted(&candidates, &policy(vec![limit(token, false)], vec![]), &facts, 2_000).is_none());
        // Outside the window nothing is admitted.
        assert!(admitted(&candidates, &p, &facts, 200_000).is_none());
        // Nothing capped: nothing to do.
        assert!(admitted(&candidates, &policy(vec![], vec![]), &facts, 2_000).is_none());
    }

    #[test]
    fn the_next_period_starts_at_the_next_multiple_of_the_period_after_the_start() {
        assert_eq!(next_period(1_000, 60, 1_000), 1_060);
        assert_eq!(next_period(1_000, 60, 1_059), 1_060);
        assert_eq!(next_period(1_000, 60, 1_060), 1_120);
        assert_eq!(next_period(1_000, 86_400, 90_000), 1_000 + 2 * 86_400);
    }

    #[test]
    fn a_router_gets_a_router_function_as_its_wrong_selector() {
        let router = Address::repeat_byte(0x77);
        let p = policy(vec![], vec![]);
        let (_, name) = wrong_selector_call(&p, router, Address::ZERO, Address::ZERO).unwrap();
        assert_eq!(name, "removeLiquidity");
    }

    #[test]
    fn fresh_addresses_differ_by_purpose_and_are_stable() {
        let a = Address::repeat_byte(0xaa);
        assert_eq!(fresh(a, 1, "target"), fresh(a, 1, "target"));
        assert_ne!(fresh(a, 1, "target"), fresh(a, 1, "recipient"));
        assert_ne!(fresh(a, 1, "target"), fresh(a, 2, "target"));
    }
}
