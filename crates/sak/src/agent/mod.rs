//! An agent acting under a session, through the guarded signer: what `sak send` and `sak swap`
//! do.
//!
//! ```text
//!  session ID ─► the network's account ─► the granted policy (SessionGranted) ─► its key
//!    ─► GuardedSigner { Binding, SqliteLedger at the data dir, submitter per Via }
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
    guard::{Binding, GuardedSigner, Preflight, load_session_from},
    keystore::{self, LocalKey},
    ledger::{Decision, Ledger, MemoryLedger, Spend, SqliteLedger},
};
use sak_userop::{
    BundlerClient, EIP7702_MARKER, FeeCaps, SelfBundler, Submitter,
    direct::{DirectCall, DirectRelayer},
    eip7702,
};
use std::sync::Arc;

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
        }
    }
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

/// A swap as the user writes it: tokens by name or address, amounts in whole units.
#[derive(Debug, Clone)]
pub struct SwapRequest {
    /// The Uniswap V2 router [default: the book's `uniswap-v2-router` or `router`].
    pub router: Option<String>,
    /// The token sold.
    pub token_in: String,
    /// The token bought.
    pub token_out: String,
    /// Whole units of `token_in` to sell.
    pub amount: String,
    /// Whole units of `token_out` to receive at least.
    pub min_out: String,
}

/// transfer(adapter, amountIn) on the token sold, then the adapter's
/// swapExactTokensForTokens(amountIn, minOut, [in, out], account, chain time + 10 min): one
/// batched operation, and the plan it carries out.
pub async fn swap_calls(
    args: &SwapRequest,
    chain: &Chain,
    account: Address,
) -> Result<(Vec<Call>, SwapPlan)> {
    let (router, token_in, token_out, decimals_in, decimals_out, amount_in) =
        resolve_swap(args, chain).await?;
    let min_out = parse_whole(&args.min_out, decimals_out, "--min-out")?;
    let deadline = chain.time().await? + DEADLINE_S;
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: min_out,
        path: vec![token_in, token_out],
        to: account,
        deadline: U256::from(deadline),
    };
    let adapter = chain.contracts.adapter_of(account);
    let calls = funded_call(adapter, token_in, amount_in, &Call::contract(router, &swap));
    let plan = SwapPlan {
        router,
        token_in,
        token_out,
        amount_in: amount_in.to_string(),
        min_out: min_out.to_string(),
        decimals_in,
        decimals_out,
        deadline,
        received: None,
    };
    Ok((calls, plan))
}

/// What `args.amount` of the token sold buys now, in base units of the token bought: the
/// router's `getAmountsOut` over the pair, a price for a bot to decide on before any key is
/// touched. `min_out` is not read.
pub async fn quote(args: &SwapRequest, chain: &Chain) -> Result<U256> {
    let (router, token_in, token_out, _, _, amount_in) = resolve_swap(args, chain).await?;
    let amounts = IUniswapV2Router02::new(router, &chain.provider)
        .getAmountsOut(amount_in, vec![token_in, token_out])
        .call()
        .await
        .wrap_err_with(|| format!("quoting on the router {router} (getAmountsOut)"))?;
    amounts.last().copied().ok_or_err("the router quoted no amount")
}

/// The router, the tokens (in, out), their decimals and the amount sold in base units.
async fn resolve_swap(
    args: &SwapRequest,
    chain: &Chain,
) -> Result<(Address, Address, Address, u8, u8, U256)> {
    let router = match &args.router {
        Some(r) => resolve(chain, r, "--router")?,
        None => ["uniswap-v2-router", "router"]
            .iter()
            .find_map(|name| chain.contracts.resolve(name).ok())
            .ok_or_else(|| {
                Hinted::new(
                    "no --router, and the network's book names no `uniswap-v2-router` or `router`",
                    "pass --router ADDRESS (a Uniswap V2 router the session may call), or add `router` \
                     to the network's [book]",
                )
            })?,
    };
    let token_in = resolve(chain, &args.token_in, "--in")?;
    let token_out = resolve(chain, &args.token_out, "--out")?;
    if token_in == token_out {
        return Err(
            Hinted::new("--in and --out are the same token", "swap between two different tokens").into()
        );
    }
    let decimals_in = decimals(chain, token_in).await?;
    let decimals_out = decimals(chain, token_out).await?;
    let amount_in = parse_whole(&args.amount, decimals_in, "--amount")?;
    if amount_in.is_zero() {
        return Err(Hinted::new("--amount is zero", "sell a positive amount").into());
    }
    Ok((router, token_in, token_out, decimals_in, decimals_out, amount_in))
}

/// A token's decimals: the book's, else its `decimals()`.
async fn decimals(chain: &Chain, token: Address) -> Result<u8> {
    if let Some(d) = chain.contracts.decimals(token) {
        return Ok(d);
    }
    MockERC20::new(token, &chain.provider).decimals().call().await.map_err(|e| {
        Hinted::new(
            format!("cannot read decimals() of {token}: {e}"),
            "is it an ERC-20 token on this chain? add it to the network's [book] with its decimals",
        )
        .into()
    })
}

/// Whole units (`300`, `0.14`) in base units, never rounded.
fn parse_whole(text: &str, decimals: u8, what: &str) -> Result<U256> {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_');
    plain.then(|| sak_primitives::units::parse_amount(text, Some(decimals))).flatten().ok_or_else(|| {
        Hinted::new(
            format!("{what} {text:?} is not an amount in whole units (at most {decimals} decimals)"),
            format!("write whole token units, e.g. {what} 300 or {what} 0.5"),
        )
        .into()
    })
}

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

/// The session's key and its name: `$SAK_SESSION_KEY` (a hex key from a CI secret store),
/// else the key file `--key` names or the one the session was granted to from here, decrypted
/// with the session keys' passphrase ([`Ctx::key_password`]). Either must be `signer`.
fn session_key(
    home: &Home,
    args: &Options,
    account: &AccountRecord,
    id: u32,
    signer: Address,
) -> Result<(String, LocalKey)> {
    let not_its = |name: &str, declared: Option<Address>| -> crate::Error {
        Hinted::new(
            format!(
                "key `{name}` ({}) is not session {id}'s key {signer}",
                declared.map_or_else(|| "no address".into(), |a| a.to_string())
            ),
            "pass --key with the key the session was granted to (`sak session list` shows it)",
        )
        .into()
    };
    if let Some(secret) = std::env::var_os(SESSION_KEY_ENV) {
        let text = zeroize::Zeroizing::new(secret.to_string_lossy().trim().to_owned());
        let key = text.parse::<PrivateKeySigner>().map_err(|_| {
            Hinted::new(
                format!("${SESSION_KEY_ENV} is not a hex private key"),
                "set it to the session key's 32 bytes in hex (`sak key export NAME --unencrypted --stdout`)",
            )
        })?;
        let name = format!("${SESSION_KEY_ENV}");
        if key.address() != signer {
            return Err(not_its(&name, Some(key.address())));
        }
        return Ok((name, LocalKey::from_signer(key)));
    }
    let (name, path) = match &args.key {
        Some(key) => home.session_key_path(key)?,
        None => match home.session_record(account.address, id)? {
            Some(record) => home.session_key_path(&record.key_name)?,
            None => {
                return Err(Hinted::new(
                    format!("session {id} was not granted from this home: which key signs for it?"),
                    format!("pass --key NAME (the key of {signer}; `sak key list` shows yours), or set ${SESSION_KEY_ENV}"),
                )
                .into());
            }
        },
    };
    let declared = keystore_address(&path)?;
    if declared != Some(signer) {
        return Err(not_its(&name, declared));
    }
    let key = keystore::load(&path, &home.key_password()?)
        .wrap_err_with(|| format!("loading session key `{name}`"))?;
    Ok((name, key))
}

/// A session key in hex, for CI secret stores: used instead of a key file, never printed.
const SESSION_KEY_ENV: &str = "SAK_SESSION_KEY";

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
        // Where its grant is: recorded here, else from the account's index of grants.
        let from = match home.session_record(account.address, id)?.filter(|r| r.chain_id == chain.chain_id) {
            Some(record) => record.block,
            None => crate::grants::grant_block(home, chain, account.address, id).await?.ok_or_else(never)?,
        };
        let session =
            load_session_from(&chain.provider, account.address, id, from).await.map_err(|e| match e {
                sak_signer::Error::UnknownSession { .. } => never(),
                other => crate::Error::from(other).wrap(format!("reading session {id}'s policy")),
            })?;
        let (key_name, key) = session_key(home, args, &account, id, session.signer)?;
        let (init_code, delegate) = match account.kind {
            AccountKind::Smart => (Bytes::new(), None),
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
        let binding = Binding {
            chain_id: chain.chain_id,
            context: Context::account(account.address, chain.contracts.entry_point),
            session_id: id,
            // The session's own nonce lanes (the contracts refuse any other); lane 0 of them.
            lane_key: sak_userop::session_nonce_key(id, 0),
            init_code,
            delegate,
        };
        Ok(Self { home, chain, args, account, session, key, key_name, binding })
    }

    /// Who pays for `handleOps` or `executeWithSession`: anvil's dev key 0 on the local or fork
    /// chain of `sak node up`, else the owner key. Never the account itself.
    fn relayer(&self) -> Result<PrivateKeySigner> {
        let relayer = match self.home.node()? {
            Some(node) => node.dev_key.parse::<PrivateKeySigner>().wrap_err("node.json's dev key")?,
            None => {
                let path = self.home.paths.owner_key();
                if !path.exists() {
                    return Err(Hinted::new(
                        format!(
                            "--via {} needs a relayer: the owner key pays, and there is none at {}",
                            self.via_name(),
                            path.display()
                        ),
                        "use --via bundler, or create the owner key here (`sak owner import`)",
                    )
                    .into());
                }
                keystore::load(&path, &self.home.password()?)
                    .wrap_err("loading the owner key (the relayer)")?
                    .into_signer()
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
        SelfBundler::new(&self.chain.rpc_url, relayer, self.chain.contracts.entry_point).await.map_err(|e| {
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
            .map_err(|e| Hinted::new(format!("bundler URL {shown}: {e}"), "pass a valid http(s) URL"))?;
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

    fn open_ledger(&self) -> Result<SqliteLedger> {
        let path = self.home.paths.ledger();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        }
        crate::store::open_ledger(&path)
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
        let guard = GuardedSigner::new(
            key,
            session,
            binding,
            chain.provider.clone(),
            submitter,
            FeeCaps::UNLIMITED,
            Arc::clone(&ledger),
        )
        .await?
        .with_confirmations(home.network.depth())
        .with_wait_notice(lane_wait_notice(home, args.session));
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

/// What to do.
struct Job {
    command: &'static str,
    calls: Vec<Call>,
    swap: Option<SwapPlan>,
}

/// Appends a decision to the audit log; a failure is reported, never hidden, and does not undo
/// what was done.
async fn record<L: Ledger + 'static>(ledger: &Arc<L>, decision: Decision) {
    let ledger = Arc::clone(ledger);
    let done =
        tokio::task::spawn_blocking(move || ledger.record_decision(&decision).map_err(|e| e.to_string()))
            .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not record the decision in the audit log"),
        Err(e) => tracing::error!(error = %e, "could not record the decision in the audit log"),
    }
}

/// A guard error as the user reads it: a refusal keeps the contracts' error name (exit 1, and
/// `refusal` in the JSON error) and says what remains and when it renews; other errors keep
/// their hint.
async fn refused<L: Ledger + 'static, S: Submitter>(
    e: sak_signer::Error,
    what: &str,
    guard: &GuardedSigner<L, S>,
    chain: &Chain,
    decimals: &[(Address, Option<u8>)],
) -> crate::Error {
    let Some(mut refusal) = e.refusal() else {
        if e.hint().is_some() {
            return crate::Error::from(e).wrap(format!("{what} failed"));
        }
        let hint = if matches!(&e, sak_signer::Error::UserOp(sak_userop::Error::Reverted(_))) {
            "the calls revert when simulated, so nothing was signed: check the amounts, the account's \
             balances and --min-out; `sak send --dry-run` shows what the policy allows"
        } else {
            "check the node and the account's ETH (`sak account show`); RUST_LOG=sak_signer=debug shows more"
        };
        return Hinted::new(format!("{what} failed: {e}"), hint).into();
    };
    let local = matches!(e, sak_signer::Error::Refused(_));
    let by = if local {
        "refused by the session's policy before signing (nothing signed, nothing sent)"
    } else {
        "refused by the contracts (the chain's check of the signed operation): nothing moved"
    };
    let mut context = format!("{what} {by}");
    // What remains, from the chain's counters now (a refusal from the contracts does not say
    // when the allowance renews).
    let now = guard.chain_time().await.unwrap_or_else(|_| sak_primitives::units::unix_now());
    if let Ok(session) = guard.refresh().await {
        let left = allowances(&session, now, chain, decimals);
        match &mut refusal {
            Refusal::SpendCapExceeded { token, resets_at, .. } => {
                if let Some(a) = left.iter().find(|a| a.token == *token) {
                    resets_at.get_or_insert(a.renews_at);
                    context += &format!("; {}", a.sentence());
                }
            }
            Refusal::GasBudgetExceeded { resets_at, .. } => {
                if let Some(g) = gas_budget(&session, now) {
                    resets_at.get_or_insert(g.renews_at);
                    context += &format!(
                        "; {} ETH of the gas budget remains until {}",
                        sak_primitives::units::format_amount(
                            g.remaining_wei.parse().unwrap_or_default(),
                            Some(18)
                        ),
                        format_time_from(g.renews_at, now)
                    );
                }
            }
            // A dead or used-up session has nothing left to spend: its allowances would mislead.
            Refusal::SessionNotActive { .. }
            | Refusal::ClockOutsideSession { .. }
            | Refusal::OperationLimitReached { .. } => {}
            _ => {
                let all: Vec<String> = left.iter().map(AllowanceOut::sentence).collect();
                if !all.is_empty() {
                    context += &format!("; {}", all.join("; "));
                }
            }
        }
    }
    if !local {
        tracing::debug!(error = %e, "the contracts' refusal");
    }
    let words = refusal_in_words(&refusal, now, |t| (token_name(chain, t), decimals_of(decimals, t)));
    let hint = sak_signer::Error::Refused(refusal.clone())
        .hint()
        .unwrap_or_else(|| "the session's policy refuses this operation".into());
    Hinted::refused(format!("{context}: {words}"), hint).with_refusal(refusal).into()
}

async fn balance(chain: &Chain, token: Address, holder: Address) -> Result<U256> {
    MockERC20::new(token, &chain.provider).balanceOf(holder).call().await.wrap_err("balanceOf")
}

/// The decimals of every capped token (book, else `decimals()`; unknown: None).
async fn token_decimals(chain: &Chain, session: &Session) -> Vec<(Address, Option<u8>)> {
    let mut out = Vec::new();
    for limit in &session.policy.spend_limits {
        let d = if limit.token == NATIVE { Some(18) } else { decimals(chain, limit.token).await.ok() };
        out.push((limit.token, d));
    }
    out
}

fn decimals_of(decimals: &[(Address, Option<u8>)], token: Address) -> Option<u8> {
    if token == NATIVE {
        return Some(18);
    }
    decimals.iter().find(|(t, _)| *t == token).and_then(|(_, d)| *d)
}

fn token_name(chain: &Chain, token: Address) -> String {
    if token == NATIVE { "ETH".into() } else { chain.contracts.name(token) }
}

fn allowances(
    session: &Session,
    now: u64,
    chain: &Chain,
    decimals: &[(Address, Option<u8>)],
) -> Vec<AllowanceOut> {
    session
        .policy
        .spend_limits
        .iter()
        .filter_map(|l| {
            let (remaining, renews_at) = session.remaining(l.token, now)?;
            Some(AllowanceOut {
                token: l.token,
                name: token_name(chain, l.token),
                decimals: decimals_of(decimals, l.token),
                cap: l.allowance.to_string(),
                period_s: l.period,
                remaining: remaining.to_string(),
                renews_at,
                now,
            })
        })
        .collect()
}

fn gas_budget(session: &Session, now: u64) -> Option<GasBudgetOut> {
    let Gas::Budget { wei, period } = session.policy.gas else { return None };
    let period = u64::from(period.max(1));
    let k = now.saturating_sub(session.policy.valid_after) / period;
    let used = if session.gas.window == k { session.gas.spent } else { U256::ZERO };
    Some(GasBudgetOut {
        budget_wei: wei.to_string(),
        remaining_wei: wei.saturating_sub(used).to_string(),
        renews_at: session.policy.valid_after + (k + 1) * period,
    })
}

/// A progress line while this run waits: for another operation on the session's lane (another
/// `sak` process, or the daemon, signing under the same session), or for the session's next
/// period when the current one ends too soon for an operation to land in it.
pub fn lane_wait_notice(home: &Home, session: u32) -> sak_signer::settle::WaitNotice {
    use sak_signer::settle::Wait;
    let home = home.clone();
    sak_signer::settle::WaitNotice(Arc::new(move |wait: Wait| {
        let line = match wait {
            Wait::Lane { waited } => format!(
                "waiting for another operation on session #{session} to settle ({} s of at most {} s; \
                 operations of one session go one at a time)…",
                waited.as_secs(),
                sak_signer::settle::LANE_WAIT.as_secs()
            ),
            Wait::PeriodEdge { edge, wait } => format!(
                "session #{session}'s period ends at {}, too soon for an operation to land in it: waiting {} s \
                 to sign in the next period (charged there)…",
                format_time(edge),
                wait.as_secs()
            ),
        };
        home.progress(&line);
    }))
}
