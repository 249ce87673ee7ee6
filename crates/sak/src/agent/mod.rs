//! An agent acting under a session, through the guarded signer: what `sak send` and `sak swap`
//! do.
//!
//! ```text
//!  session ID ─► the network's account ─► the granted policy (SessionGranted) ─► its key
//!    ─► GuardedSigner { Binding, the home's ledger (SQLite, or PostgreSQL), submitter per Via }
//!    ─► recover(): an earlier run's unsettled operations first
//!    ─► dry run: check only | self, bundler: execute | direct: check, executeWithSession
//!    ─► charged, what remains this period and when it renews (refusals: the contracts' name)
//! ```

mod report;

pub use report::{AllowanceOut, CallOut, ChargeOut, GasBudgetOut, RecoveredOut, Report, SwapPlan};

use crate::{
    Chain, Hinted, Home, Result,
    calls::resolve,
    error::{OptionExt, WrapErr},
    keystore_address,
    store::{AccountKind, AccountRecord},
    words::refusal_in_words,
};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
};
use sak_contracts::{IUniswapV2Router02, MockERC20};
use sak_policy::{Call, Context, Refusal, Session, calldata::funded_call};
use sak_primitives::{
    Gas, NATIVE,
    units::{format_time, format_time_from},
};
use sak_signer::{
    guard::{Binding, GuardedSigner, Preflight, load_hosted_session},
    keystore::{self, LocalKey},
    ledger::{AnyLedger, Decision, Ledger, MemoryLedger, Spend},
};
use sak_userop::{
    BundlerClient, EIP7702_MARKER, FeeCaps, SelfBundler, Submitter,
    direct::{DirectCall, DirectRelayer},
    eip7702,
};
use std::sync::Arc;

mod bump;
mod key;
mod outcome;
mod relayer;
mod swap;

pub use key::HeldKey;
use key::*;
pub use outcome::lane_wait_notice;
use outcome::*;
pub use relayer::{RELAYER_KEY_ENV, new_relayer, relayer_key, relayer_path};
pub(crate) use swap::v2_swap_calls;
use swap::*;
pub use swap::{SwapRequest, quote, swap_calls};

/// How a signed user operation reaches the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Via {
    /// The network's ERC-4337 bundler (bundler_url in the config, or --bundler-url).
    Bundler,
    /// Our own `handleOps` transaction: anvil's dev key 0 pays while `sak node up` runs, else
    /// the owner key (refunded by the account either way).
    #[cfg_attr(feature = "clap", value(name = "self"))]
    SelfBundled,
    /// No user operation: a relayer calls the account's `executeWithSession` (EIP-712).
    Direct,
}

/// How long a direct call's signature stays valid (seconds of chain time), and the swap's
/// router deadline.
pub const DEADLINE_S: u64 = 600;

/// How an agent acts: under which session, with which key, how operations travel.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The session id.
    pub session: u32,
    /// The session key (name or address) [default: `$SAK_SESSION_KEY`, else the key the
    /// session was granted to from this home].
    pub key: Option<String>,
    /// How operations travel.
    pub via: Via,
    /// The bundler for [`Via::Bundler`] [default: the network's `bundler_url`].
    pub bundler_url: Option<String>,
    /// Decide with the local policy only: sign, send and record nothing.
    pub dry_run: bool,
    /// Local and fork networks only: skip the off-chain policy and let the contracts refuse.
    pub no_preflight: bool,
    /// A session key already decrypted (a daemon's, [`Agent::held_key`]): used instead of
    /// finding and decrypting one.
    pub held_key: Option<HeldKey>,
    /// How long to wait for inclusion before the outcome is reported unknown (it may still
    /// land) [default: 60 s].
    pub receipt_timeout: Option<std::time::Duration>,
    /// The session's nonce lane this worker signs in (each session has 2^128; 0 by default).
    /// Operations of one lane go one at a time; workers on lanes of their own sign in parallel,
    /// and the ledger still holds them within the caps together.
    pub lane: u128,
}

impl Options {
    /// Session `session`, its key found as [`Options::key`] says, self-bundled.
    pub fn new(session: u32) -> Self {
        Self {
            session,
            key: None,
            via: Via::SelfBundled,
            bundler_url: None,
            dry_run: false,
            no_preflight: false,
            held_key: None,
            receipt_timeout: None,
            lane: 0,
        }
    }
}

/// The guarded signer of `session` with `key`, as every agent path builds it: the network's
/// confirmation depth, and a progress line while the session's lane is busy.
async fn guarded<L: Ledger + 'static, S: Submitter>(
    home: &Home,
    chain: &Chain,
    args: &Options,
    (key, session, binding): (LocalKey, Session, Binding),
    submitter: S,
    ledger: Arc<L>,
) -> Result<GuardedSigner<L, S>> {
    Ok(GuardedSigner::new(
        key,
        session,
        binding,
        chain.provider.clone(),
        submitter,
        FeeCaps::UNLIMITED,
        ledger,
    )
    .await?
    .with_confirmations(home.network.depth())
    .with_wait_notice(lane_wait_notice(home, args.session)))
}

/// What can be refused before connecting to anything.
pub fn check(home: &Home, args: &Options) -> Result<()> {
    if args.no_preflight && !home.kind().is_anvil() {
        return Err(Hinted::refused(
            format!(
                "--no-preflight is for local and fork networks only; `{}` is a real network",
                home.network_name
            ),
            "drop --no-preflight (the policy check protects the account's funds); to see the contracts \
             refuse on their own, use a local chain or `sak session verify`",
        )
        .into());
    }
    if args.via == Via::Bundler && args.bundler_url.is_none() && home.bundler_url()?.is_none() {
        return Err(Hinted::new(
            format!("--via bundler, but network `{}` has no bundler_url", home.network_name),
            format!(
                "pass --bundler-url URL, set bundler_url in [networks.{}] of {}, or use --via self",
                home.network_name,
                home.paths.config_file.display()
            ),
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The agent: session, key, binding, guarded signer
// ---------------------------------------------------------------------------------------------

/// Everything about the session that does not depend on how operations travel.
///
/// ```no_run
/// # async fn demo() -> sak::Result<()> {
/// use sak::agent::{self, Agent};
/// let home = sak::Home::open(sak::Options::default())?;
/// let chain = home.chain().await?;
/// let account = home.account(chain.chain_id)?.address;
/// let options = agent::Options::new(1);
/// let request = agent::SwapRequest {
///     router: None,
///     token_in: "tUSD".into(),
///     token_out: "TKN".into(),
///     amount: "300".into(),
///     min_out: "0.1".into(),
/// };
/// let (calls, plan) = agent::swap_calls(&request, &chain, account).await?;
/// let report = Agent::open(&options, &home, &chain).await?.run("swap", calls, Some(plan)).await?;
/// println!("{}: tx {:?}", report.state, report.transaction);
/// # Ok(()) }
/// ```
#[allow(missing_debug_implementations)] // holds a decrypted key: never printed
pub struct Agent<'a> {
    home: &'a Home,
    chain: &'a Chain,
    args: &'a Options,
    account: AccountRecord,
    session: Session,
    key: LocalKey,
    key_name: String,
    binding: Binding,
}

impl<'a> Agent<'a> {
    /// The session as the chain has it, its key, and how its operations are bound.
    pub async fn open(args: &'a Options, home: &'a Home, chain: &'a Chain) -> Result<Self> {
        let account = home.account(chain.chain_id)?;
        let id = args.session;
        let never = || {
            crate::Error::from(Hinted::new(
                format!("no session {id} was ever granted on the account {}", account.address),
                "`sak session list` shows this account's sessions; grant one with `sak session grant`",
            ))
        };
        let host = crate::sessions::host_of(&account);
        // Where its grant is: recorded here, else from the account's index of grants.
        let from = match home.session_record(account.address, id)?.filter(|r| r.chain_id == chain.chain_id) {
            Some(record) => record.block,
            None => crate::grants::grant_block(home, chain, host, id).await?.ok_or_else(never)?,
        };
        let session = load_hosted_session(&chain.provider, host, id, from).await.map_err(|e| match e {
            sak_signer::Error::UnknownSession { .. } => never(),
            other => crate::Error::from(other).wrap(format!("reading session {id}'s policy")),
        })?;
        let (key_name, key) = session_key(home, args, &account, id, session.signer)?;
        let (init_code, delegate) = match account.kind {
            AccountKind::Smart | AccountKind::Erc7579 => (Bytes::new(), None),
            AccountKind::Eip7702 => {
                let delegate = eip7702::delegate_of(&chain.provider, account.address).await?;
                match delegate {
                    Some(d) if d == chain.contracts.sak_7702_account => {}
                    other => {
                        return Err(Hinted::new(
                            format!(
                                "the EIP-7702 account {} is {}, not delegated to Sak7702Account {}",
                                account.address,
                                other.map_or_else(|| "not delegated".into(), |d| format!("delegated to {d}")),
                                chain.contracts.sak_7702_account
                            ),
                            "delegate it again with `sak account create --kind 7702`",
                        )
                        .into());
                    }
                }
                (Bytes::from(EIP7702_MARKER.to_vec()), delegate)
            }
        };
        let (context, lane_key) = if account.kind.is_modular() {
            if args.lane != 0 {
                return Err(Hinted::new(
                    format!("a modular (7579) account's session has one nonce lane, not lane {}", args.lane),
                    "drop --lane: the account routes by the nonce key `module ‖ session id`, which leaves no lane bits",
                )
                .into());
            }
            if args.via == Via::Direct {
                return Err(Hinted::new(
                    "a modular (7579) account has no direct path (`executeWithSession` is sak's own accounts')",
                    "use --via self-bundled or --via bundler",
                )
                .into());
            }
            let context = Context::module(account.address, chain.contracts.entry_point, host.holder);
            (context, sak_userop::module_nonce_key(host.holder, id))
        } else {
            // One of the session's own nonce lanes (the contracts refuse any other).
            (
                Context::account(account.address, chain.contracts.entry_point),
                sak_userop::session_nonce_key(id, args.lane),
            )
        };
        let binding =
            Binding { chain_id: chain.chain_id, context, session_id: id, lane_key, init_code, delegate };
        Ok(Self { home, chain, args, account, session, key, key_name, binding })
    }

    /// Who pays for `handleOps` or `executeWithSession`: the agent's own relayer
    /// ([`relayer_key`]), else anvil's dev key 0 on the local or fork chain of `sak node up`.
    /// Never the owner key, and never the account itself.
    fn relayer(&self) -> Result<PrivateKeySigner> {
        let relayer = match (relayer_key(self.home)?, self.home.node()?) {
            (Some(key), _) => key,
            (None, Some(node)) => node.dev_key.parse::<PrivateKeySigner>().wrap_err("node.json's dev key")?,
            (None, None) => {
                return Err(Hinted::new(
                    format!("--via {} needs a relayer to pay for the operation, and this home has none", self.via_name()),
                    format!(
                        "set ${RELAYER_KEY_ENV} to a funded key of the agent's (or make one: `sak agent relayer new`), \
                         or use --via bundler"
                    ),
                )
                .into());
            }
        };
        if relayer.address() == self.account.address {
            return Err(Hinted::new(
                format!(
                    "the relayer would be the account itself ({}, an EIP-7702 owner): it cannot relay its own operations",
                    self.account.address
                ),
                "use --via bundler (a bundler pays and is refunded by the account)",
            )
            .into());
        }
        Ok(relayer)
    }

    fn via_name(&self) -> &'static str {
        match self.args.via {
            Via::SelfBundled => "self",
            Via::Bundler => "bundler",
            Via::Direct => "direct",
        }
    }

    async fn self_bundler(&self, relayer: PrivateKeySigner) -> Result<SelfBundler> {
        let bundler = SelfBundler::new(&self.chain.rpc_url, relayer, self.chain.contracts.entry_point).await;
        let timeout = self.args.receipt_timeout.unwrap_or(sak_userop::RECEIPT_TIMEOUT);
        bundler.map(|b| b.with_receipt_timeout(timeout)).map_err(|e| {
            let hint = e.hint().unwrap_or("check the RPC endpoint");
            Hinted::new(
                format!("the relayer cannot self-bundle: {e}"),
                format!("{hint}; or use --via bundler"),
            )
            .into()
        })
    }

    async fn bundler(&self) -> Result<BundlerClient> {
        let url = match &self.args.bundler_url {
            Some(url) => url.clone(),
            None => self.home.bundler_url()?.ok_or_err("no bundler URL (checked before)")?,
        };
        let shown = crate::config::redact_url(&url);
        let bundler = BundlerClient::new(&url, self.chain.contracts.entry_point)
            .map_err(|e| Hinted::new(format!("bundler URL {shown}: {e}"), "pass a valid http(s) URL"))?
            .with_receipt_timeout(self.args.receipt_timeout.unwrap_or(sak_userop::RECEIPT_TIMEOUT));
        let unreachable = |e: sak_userop::Error| {
            Hinted::new(
                format!("the bundler at {shown} does not answer: {e}"),
                "check --bundler-url or the network's bundler_url (`sak doctor` checks it)",
            )
        };
        let id = bundler.chain_id().await.map_err(unreachable)?;
        if id != self.chain.chain_id {
            return Err(Hinted::new(
                format!("the bundler at {shown} is on chain {id}, the RPC on chain {}", self.chain.chain_id),
                "point --bundler-url at a bundler for this network's chain",
            )
            .into());
        }
        let entry_points = bundler.supported_entry_points().await.map_err(unreachable)?;
        if !entry_points.contains(&self.chain.contracts.entry_point) {
            return Err(Hinted::new(
                format!(
                    "the bundler at {shown} does not serve EntryPoint v0.8 {} (it serves {entry_points:?})",
                    self.chain.contracts.entry_point
                ),
                "use a bundler that supports EntryPoint v0.8",
            )
            .into());
        }
        Ok(bundler)
    }

    /// Builds the guarded signer for the way operations travel and acts: `calls` as one
    /// operation (`command` names it in the report). An operation included with its calls
    /// reverted is a report with `success: Some(false)`, not an error.
    pub async fn run(
        self,
        command: &'static str,
        calls: Vec<Call>,
        swap: Option<SwapPlan>,
    ) -> Result<Report> {
        let job = Job { command, calls, swap };
        if self.args.dry_run {
            // A dry run signs nothing and records nothing: an in-memory ledger, never the durable one.
            let ledger = Arc::new(MemoryLedger::new());
            return match self.args.via {
                Via::Bundler => {
                    let submitter = self.bundler().await?;
                    self.drive(job, submitter, ledger, None).await
                }
                Via::SelfBundled | Via::Direct => {
                    let submitter = self.self_bundler(self.relayer()?).await?;
                    self.drive(job, submitter, ledger, None).await
                }
            };
        }
        let ledger = Arc::new(self.open_ledger()?);
        match self.args.via {
            Via::SelfBundled => {
                let submitter = self.self_bundler(self.relayer()?).await?;
                self.drive(job, submitter, ledger, None).await
            }
            Via::Bundler => {
                let submitter = self.bundler().await?;
                self.drive(job, submitter, ledger, None).await
            }
            Via::Direct => {
                let relayer = self.relayer()?;
                let direct = DirectRelayer::new(&self.chain.rpc_url, relayer.clone())?
                    .with_confirmations(self.home.network.depth());
                // The guard checks the policy against the chain's counters and settles earlier
                // user operations of this session; the batch itself goes to executeWithSession.
                let submitter = self.self_bundler(relayer).await?;
                self.drive(job, submitter, ledger, Some(direct)).await
            }
        }
    }

    fn open_ledger(&self) -> Result<AnyLedger> {
        crate::store::LedgerAt::of(&self.home.paths, &self.home.config)?.open()
    }

    async fn drive<L: Ledger + 'static, S: Submitter>(
        self,
        job: Job,
        submitter: S,
        ledger: Arc<L>,
        direct: Option<DirectRelayer>,
    ) -> Result<Report> {
        let Self { home, chain, args, account, session, key, key_name, binding } = self;
        let key_address = key.address();
        // The direct path signs an EIP-712 batch with the same key; the guard keeps its own copy.
        let direct_key = direct.as_ref().map(|_| key.signer().clone());
        let guard =
            guarded(home, chain, args, (key, session, binding), submitter, Arc::clone(&ledger)).await?;
        let via = match args.via {
            Via::SelfBundled => "self",
            Via::Bundler => "bundler",
            Via::Direct => "direct",
        };
        let mut out = Report {
            command: job.command,
            state: if args.dry_run { "checked" } else { "included" },
            network: home.network_name.clone(),
            chain_id: chain.chain_id,
            account: account.address,
            account_kind: account.kind.as_str(),
            session: args.session,
            key: key_address,
            key_name,
            via,
            dry_run: args.dry_run,
            preflight: !args.no_preflight,
            calls: job.calls.iter().map(|c| CallOut::new(c, chain, account.address)).collect(),
            recovered: Vec::new(),
            user_op_hash: None,
            transaction: None,
            block: None,
            gas_cost_wei: None,
            gas_paid_by: None,
            success: None,
            charges: Vec::new(),
            allowances: Vec::new(),
            gas_budget: None,
            swap: job.swap,
        };
        let decimals = token_decimals(chain, &guard.session().await).await;
        if let sak_signer::ledger::ChainBound::Reset { retired, .. } = guard.chain_bound() {
            home.progress(&format!(
                "ledger: chain {} was reset (a new chain under the same id): {} operation{} in flight from \
                     the old chain can never land and {} marked failed",
                chain.chain_id,
                retired.len(),
                if retired.len() == 1 { "" } else { "s" },
                if retired.len() == 1 { "was" } else { "were" }
            ));
        }

        if !args.dry_run {
            let recovered =
                guard.recover().await.wrap_err("settling operations left in flight by an earlier run")?;
            for r in &recovered {
                let line = RecoveredOut::from(r);
                home.progress(&format!(
                    "ledger: settled intent #{} from an earlier run: {}{}",
                    line.intent,
                    line.outcome,
                    line.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                out.recovered.push(line);
            }
        }
        let before_out = match &out.swap {
            Some(plan) if !args.dry_run => Some(balance(chain, plan.token_out, account.address).await?),
            _ => None,
        };

        let what = format!("{} under session #{}", job.command, args.session);
        if args.dry_run {
            match guard.check(&job.calls).await {
                Ok(auth) => {
                    out.charges = auth.charges.iter().map(|c| ChargeOut::new(c, chain, &decimals)).collect()
                }
                Err(e) => return Err(refused(e, &what, &guard, chain, &decimals).await),
            }
        } else if let (Some(direct), Some(direct_key)) = (&direct, &direct_key) {
            let preflight = !args.no_preflight;
            let clock = guard.chain_time().await?;
            let decide = |allowed: bool, reason: &str, spends: Vec<Spend>, tx_hash: Option<B256>| Decision {
                at: clock,
                chain_id: chain.chain_id,
                account: account.address,
                session_id: B256::from(U256::from(args.session)),
                key: key_address,
                allowed,
                reason: reason.to_owned(),
                spends,
                user_op_hash: None,
                tx_hash,
            };
            let mut spends = Vec::new();
            if preflight {
                match guard.check(&job.calls).await {
                    Ok(auth) => {
                        spends = auth
                            .charges
                            .iter()
                            .map(|c| Spend { token: c.token, window: c.window, amount: c.amount })
                            .collect();
                        out.charges =
                            auth.charges.iter().map(|c| ChargeOut::new(c, chain, &decimals)).collect();
                    }
                    Err(e) => {
                        let name = e.refusal().map_or("Error", |r| r.name());
                        record(&ledger, decide(false, name, Vec::new(), None)).await;
                        return Err(refused(e, &what, &guard, chain, &decimals).await);
                    }
                }
            }
            let call = DirectCall {
                account: account.address,
                session_id: args.session,
                calls: job.calls.clone(),
                nonce: direct.next_nonce(account.address, args.session).await?,
                deadline: clock + DEADLINE_S,
            };
            let signature = call.sign(direct_key, chain.chain_id)?;
            home.progress(&format!(
                "{what}: the relayer submits executeWithSession (simulated first), waiting for inclusion…"
            ));
            match direct.submit(&call, signature).await {
                Ok(receipt) => {
                    record(&ledger, decide(true, "ok", spends, Some(receipt.transaction_hash))).await;
                    out.transaction = Some(receipt.transaction_hash);
                    out.block = receipt.block_number;
                    out.gas_cost_wei = Some(
                        (U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)).to_string(),
                    );
                    out.gas_paid_by = Some("relayer");
                    out.success = Some(receipt.status());
                }
                Err(sak_userop::Error::Bundle { tx_hash, reason }) => {
                    record(&ledger, decide(true, "unknown", spends, Some(tx_hash))).await;
                    return Err(Hinted::unknown(
                        format!("{what}: executeWithSession was sent (tx {tx_hash}) and its outcome is not known yet: {reason}"),
                        format!(
                            "do not repeat it blindly: it may still be mined until its deadline ({}); look the \
                             transaction up, or wait for the deadline and check `sak session show {}`",
                            sak_primitives::units::format_time(call.deadline),
                            args.session
                        ),
                        tx_hash,
                    )
                    .into());
                }
                Err(e) => {
                    let e = sak_signer::Error::UserOp(e);
                    let name = e.refusal().map_or("Rejected", |r| r.name());
                    record(&ledger, decide(false, name, Vec::new(), None)).await;
                    return Err(refused(e, &what, &guard, chain, &decimals).await);
                }
            }
        } else {
            let preflight = if args.no_preflight { Preflight::SkipForProof } else { Preflight::Check };
            home.progress(&format!(
                "{what}: {}signing, submitting ({}) and waiting for inclusion…",
                if args.no_preflight {
                    "no local policy check (--no-preflight): "
                } else {
                    "checking the policy, "
                },
                if args.via == Via::Bundler { "to the bundler" } else { "self-bundled" }
            ));
            match guard.execute(&job.calls, preflight).await {
                Ok(done) => {
                    out.user_op_hash = Some(done.user_op_hash);
                    out.transaction = Some(done.receipt.tx_hash);
                    out.block = Some(done.receipt.block_number);
                    out.gas_cost_wei = Some(done.receipt.actual_gas_cost.to_string());
                    out.gas_paid_by = Some("account");
                    out.success = Some(done.receipt.success);
                    out.charges = done.charges.iter().map(|c| ChargeOut::new(c, chain, &decimals)).collect();
                    if !done.receipt.success {
                        tracing::warn!(revert = ?done.receipt.revert, "the operation's calls reverted");
                    }
                }
                Err(e) => return Err(refused(e, &what, &guard, chain, &decimals).await),
            }
        }

        if let (Some(plan), Some(before)) = (out.swap.as_mut(), before_out) {
            let after = balance(chain, plan.token_out, account.address).await?;
            plan.received = Some(after.saturating_sub(before).to_string());
        }
        let now = guard.chain_time().await?;
        let session = guard.refresh().await?;
        out.allowances = allowances(&session, now, chain, &decimals);
        out.gas_budget = gas_budget(&session, now);
        if out.success == Some(false) {
            out.state = "reverted";
        }
        Ok(out)
    }
}
