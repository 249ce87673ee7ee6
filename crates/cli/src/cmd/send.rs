//! `sak send` and `sak swap`: an agent acting under a session, through the guarded signer.
//!
//! ```text
//!  --session ID ─► the network's account ─► the granted policy (SessionGranted) ─► its key
//!    ─► GuardedSigner { Binding, SqliteLedger at the data dir, submitter per --via }
//!    ─► recover(): an earlier run's unsettled operations first
//!    ─► --dry-run: check only | self, bundler: execute | direct: check, executeWithSession
//!    ─► charged, what remains this period and when it renews (refusals: the contracts' name)
//! ```

use crate::{
    call_args::{encode_sig, parse_hex, parse_value, resolve},
    ctx::{Chain, Ctx, keystore_address},
    output::{self, AlreadyReported, Hinted},
    store::{AccountKind, AccountRecord},
};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
};
use clap::{Args, ValueEnum};
use eyre::WrapErr;
use sak_contracts::{IUniswapV2Router02, MockERC20};
use sak_policy::{Action, Call, Context, Refusal, Session, calldata::funded_call};
use sak_primitives::{
    Gas, NATIVE,
    units::{format_time, format_time_from},
};
use sak_signer::{
    guard::{Binding, GuardedSigner, Preflight, Recovered, load_session_from},
    keystore::{self, LocalKey},
    ledger::{Decision, Ledger, MemoryLedger, Spend, SqliteLedger},
};
use sak_userop::{
    BundlerClient, EIP7702_MARKER, FeeCaps, SelfBundler, Submitter,
    direct::{DirectCall, DirectRelayer},
    eip7702,
};
use serde::Serialize;
use std::{path::PathBuf, sync::Arc};

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

/// How a signed user operation reaches the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Via {
    /// The network's ERC-4337 bundler (bundler_url in the config, or --bundler-url).
    Bundler,
    /// Our own `handleOps` transaction: anvil's dev key 0 pays while `sak node up` runs, else
    /// the owner key (refunded by the account either way).
    #[value(name = "self")]
    SelfBundled,
    /// No user operation: a relayer calls the account's `executeWithSession` (EIP-712).
    Direct,
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

/// How long a direct call's signature stays valid (seconds of chain time), and the swap's
/// router deadline.
const DEADLINE_S: u64 = 600;

pub(crate) async fn send(args: SendArgs, ctx: &Ctx) -> eyre::Result<()> {
    check_flags(&args.agent, ctx)?;
    let chain = ctx.chain().await?;
    // The calls first: bad input is refused before any key is decrypted.
    let calls = send_calls(&args, &chain)?;
    let agent = Agent::open(&args.agent, ctx, &chain).await?;
    agent.run("send", calls, None).await
}

pub(crate) async fn swap(args: SwapArgs, ctx: &Ctx) -> eyre::Result<()> {
    check_flags(&args.agent, ctx)?;
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?.address;
    let (calls, plan) = swap_calls(&args, &chain, account).await?;
    let agent = Agent::open(&args.agent, ctx, &chain).await?;
    agent.run("swap", calls, Some(plan)).await
}

/// What can be refused before connecting to anything.
fn check_flags(args: &AgentArgs, ctx: &Ctx) -> eyre::Result<()> {
    if args.no_preflight && !ctx.kind().is_anvil() {
        return Err(Hinted::refused(
            format!(
                "--no-preflight is for local and fork networks only; `{}` is a real network",
                ctx.network_name
            ),
            "drop --no-preflight (the policy check protects the account's funds); to see the contracts \
             refuse on their own, use a local chain or `sak session verify`",
        )
        .into());
    }
    if args.via == Via::Bundler && args.bundler_url.is_none() && ctx.bundler_url()?.is_none() {
        return Err(Hinted::new(
            format!("--via bundler, but network `{}` has no bundler_url", ctx.network_name),
            format!(
                "pass --bundler-url URL, set bundler_url in [networks.{}] of {}, or use --via self",
                ctx.network_name,
                ctx.paths.config_file.display()
            ),
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

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

/// A swap as asked, in base units.
#[derive(Debug, Clone, Serialize)]
struct SwapPlan {
    router: Address,
    token_in: Address,
    token_out: Address,
    /// Base units of `token_in` sold (moved into the account's adapter, which sells them).
    amount_in: String,
    /// Base units of `token_out` at least received.
    min_out: String,
    decimals_in: u8,
    decimals_out: u8,
    /// The router's deadline (unix seconds, chain time + 10 minutes).
    deadline: u64,
    /// What the account received: its `token_out` balance after minus before.
    received: Option<String>,
}

/// transfer(adapter, amountIn) on --in, then the adapter's swapExactTokensForTokens(amountIn,
/// minOut, [in, out], account, chain time + 10 min): one batched operation.
async fn swap_calls(args: &SwapArgs, chain: &Chain, account: Address) -> eyre::Result<(Vec<Call>, SwapPlan)> {
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

/// A token's decimals: the book's, else its `decimals()`.
async fn decimals(chain: &Chain, token: Address) -> eyre::Result<u8> {
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
fn parse_whole(text: &str, decimals: u8, what: &str) -> eyre::Result<U256> {
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
struct Agent<'a> {
    ctx: &'a Ctx,
    chain: &'a Chain,
    args: &'a AgentArgs,
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
    ctx: &Ctx,
    args: &AgentArgs,
    account: &AccountRecord,
    id: u32,
    signer: Address,
) -> eyre::Result<(String, LocalKey)> {
    let not_its = |name: &str, declared: Option<Address>| -> eyre::Report {
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
        Some(key) => ctx.session_key_path(key)?,
        None => match ctx.session_record(account.address, id)? {
            Some(record) => ctx.session_key_path(&record.key_name)?,
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
    let key = keystore::load(&path, &ctx.key_password()?)
        .wrap_err_with(|| format!("loading session key `{name}`"))?;
    Ok((name, key))
}

/// A session key in hex, for CI secret stores: used instead of a key file, never printed.
const SESSION_KEY_ENV: &str = "SAK_SESSION_KEY";

impl<'a> Agent<'a> {
    async fn open(args: &'a AgentArgs, ctx: &'a Ctx, chain: &'a Chain) -> eyre::Result<Self> {
        let account = ctx.account(chain.chain_id)?;
        let id = args.session;
        let never = || {
            eyre::Report::new(Hinted::new(
                format!("no session {id} was ever granted on the account {}", account.address),
                "`sak session list` shows this account's sessions; grant one with `sak session grant`",
            ))
        };
        // Where its grant is: recorded here, else from the account's index of grants.
        let from = match ctx.session_record(account.address, id)?.filter(|r| r.chain_id == chain.chain_id) {
            Some(record) => record.block,
            None => crate::grants::grant_block(ctx, chain, account.address, id).await?.ok_or_else(never)?,
        };
        let session =
            load_session_from(&chain.provider, account.address, id, from).await.map_err(|e| match e {
                sak_signer::Error::UnknownSession { .. } => never(),
                other => eyre::Report::new(other).wrap_err(format!("reading session {id}'s policy")),
            })?;
        let (key_name, key) = session_key(ctx, args, &account, id, session.signer)?;
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
        Ok(Self { ctx, chain, args, account, session, key, key_name, binding })
    }

    /// Who pays for `handleOps` or `executeWithSession`: anvil's dev key 0 on the local or fork
    /// chain of `sak node up`, else the owner key. Never the account itself.
    fn relayer(&self) -> eyre::Result<PrivateKeySigner> {
        let relayer = match self.ctx.node()? {
            Some(node) => node.dev_key.parse::<PrivateKeySigner>().wrap_err("node.json's dev key")?,
            None => {
                let path = self.ctx.paths.owner_key();
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
                keystore::load(&path, &self.ctx.password()?)
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

    async fn self_bundler(&self, relayer: PrivateKeySigner) -> eyre::Result<SelfBundler> {
        SelfBundler::new(&self.chain.rpc_url, relayer, self.chain.contracts.entry_point).await.map_err(|e| {
            let hint = e.hint().unwrap_or("check the RPC endpoint");
            Hinted::new(
                format!("the relayer cannot self-bundle: {e}"),
                format!("{hint}; or use --via bundler"),
            )
            .into()
        })
    }

    async fn bundler(&self) -> eyre::Result<BundlerClient> {
        let url = match &self.args.bundler_url {
            Some(url) => url.clone(),
            None => self.ctx.bundler_url()?.ok_or_else(|| eyre::eyre!("no bundler URL (checked before)"))?,
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

    /// Builds the guarded signer for --via and acts.
    async fn run(self, command: &'static str, calls: Vec<Call>, swap: Option<SwapPlan>) -> eyre::Result<()> {
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
                    .with_confirmations(self.ctx.network.depth());
                // The guard checks the policy against the chain's counters and settles earlier
                // user operations of this session; the batch itself goes to executeWithSession.
                let submitter = self.self_bundler(relayer).await?;
                self.drive(job, submitter, ledger, Some(direct)).await
            }
        }
    }

    fn open_ledger(&self) -> eyre::Result<SqliteLedger> {
        let path = self.ctx.paths.ledger();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        }
        Ok(crate::store::open_ledger(&path)?)
    }

    async fn drive<L: Ledger + 'static, S: Submitter>(
        self,
        job: Job,
        submitter: S,
        ledger: Arc<L>,
        direct: Option<DirectRelayer>,
    ) -> eyre::Result<()> {
        let Self { ctx, chain, args, account, session, key, key_name, binding } = self;
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
        .with_confirmations(ctx.network.depth())
        .with_wait_notice(lane_wait_notice(&ctx.global, args.session));
        let via = match args.via {
            Via::SelfBundled => "self",
            Via::Bundler => "bundler",
            Via::Direct => "direct",
        };
        let mut out = Report {
            command: job.command,
            state: if args.dry_run { "checked" } else { "included" },
            network: ctx.network_name.clone(),
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
            output::progress(
                &ctx.global,
                &format!(
                    "ledger: chain {} was reset (a new chain under the same id): {} operation{} in flight from \
                     the old chain can never land and {} marked failed",
                    chain.chain_id,
                    retired.len(),
                    if retired.len() == 1 { "" } else { "s" },
                    if retired.len() == 1 { "was" } else { "were" }
                ),
            );
        }

        if !args.dry_run {
            let recovered =
                guard.recover().await.wrap_err("settling operations left in flight by an earlier run")?;
            for r in &recovered {
                let line = RecoveredOut::from(r);
                output::progress(
                    &ctx.global,
                    &format!(
                        "ledger: settled intent #{} from an earlier run: {}{}",
                        line.intent,
                        line.outcome,
                        line.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                );
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
            output::progress(
                &ctx.global,
                &format!(
                    "{what}: the relayer submits executeWithSession (simulated first), waiting for inclusion…"
                ),
            );
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
            output::progress(
                &ctx.global,
                &format!(
                    "{what}: {}signing, submitting ({}) and waiting for inclusion…",
                    if args.no_preflight {
                        "no local policy check (--no-preflight): "
                    } else {
                        "checking the policy, "
                    },
                    if args.via == Via::Bundler { "to the bundler" } else { "self-bundled" }
                ),
            );
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
        output::emit(&ctx.global, &out, || out.human(chain))?;
        if out.success == Some(false) {
            return Err(AlreadyReported {
                message: format!(
                    "the operation was included but its calls reverted (tx {}): gas was paid, nothing else moved",
                    out.transaction.unwrap_or_default()
                ),
                hint: "check the calls (amounts, balances, --min-out); `sak send --dry-run` shows what the policy allows",
                code: 4,
            }
            .into());
        }
        Ok(())
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
) -> eyre::Report {
    let Some(mut refusal) = e.refusal() else {
        if e.hint().is_some() {
            return eyre::Report::new(e).wrap_err(format!("{what} failed"));
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
                        crate::cmd::session::show_amount(
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
    let words =
        crate::render::refusal_in_words(&refusal, now, |t| (token_name(chain, t), decimals_of(decimals, t)));
    let hint = sak_signer::Error::Refused(refusal.clone())
        .hint()
        .unwrap_or_else(|| "the session's policy refuses this operation".into());
    Hinted::refused(format!("{context}: {words}"), hint).with_refusal(refusal).into()
}

async fn balance(chain: &Chain, token: Address, holder: Address) -> eyre::Result<U256> {
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

// ---------------------------------------------------------------------------------------------
// Output: field names are the `--json` interface
// ---------------------------------------------------------------------------------------------

/// What `sak send` and `sak swap` print. Amounts are decimal strings in base units (with the
/// token's `decimals` beside them when known); times are unix seconds of chain time.
#[derive(Debug, Serialize)]
struct Report {
    /// `send` or `swap`.
    command: &'static str,
    /// The outcome contract (README, "Exit codes"): `included` (exit 0), `reverted` (included,
    /// its calls reverted: exit 4) or `checked` (a dry run: nothing signed). Errors say
    /// `refused`, `failed` or `unknown` in their own document.
    state: &'static str,
    network: String,
    chain_id: u64,
    /// The account that acted (a smart account, or an EIP-7702 delegated EOA).
    account: Address,
    /// `smart` or `7702`.
    account_kind: &'static str,
    /// The session id.
    session: u32,
    /// The session key's address and name in the key directory.
    key: Address,
    key_name: String,
    /// How it travelled: `self` (our own handleOps), `bundler`, or `direct` (executeWithSession).
    via: &'static str,
    /// True: only the policy was asked; nothing was signed, sent or recorded.
    dry_run: bool,
    /// False with --no-preflight: the contracts alone decided.
    preflight: bool,
    /// The batch, in order.
    calls: Vec<CallOut>,
    /// Operations of this session an earlier run left in flight, settled before this one.
    recovered: Vec<RecoveredOut>,
    /// The ERC-4337 user operation hash (none on the direct path or in a dry run).
    user_op_hash: Option<B256>,
    /// The transaction that included it, and its block.
    transaction: Option<B256>,
    block: Option<u64>,
    /// Wei paid for gas...
    gas_cost_wei: Option<String>,
    /// ...by `account` (user operations) or `relayer` (direct).
    gas_paid_by: Option<&'static str>,
    /// Whether the calls executed (false: included, but they reverted; gas was paid).
    success: Option<bool>,
    /// What the policy charged (in a dry run: would charge), per token, with what remains of
    /// the period's allowance after it and when that renews. Empty with --no-preflight.
    charges: Vec<ChargeOut>,
    /// Every capped token of the session after this operation (a dry run: now): what remains
    /// this period and when it renews.
    allowances: Vec<AllowanceOut>,
    /// The session's gas budget, if it has one: what remains this period.
    gas_budget: Option<GasBudgetOut>,
    /// `sak swap` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    swap: Option<SwapPlan>,
}

/// One call of the batch.
#[derive(Debug, Serialize)]
struct CallOut {
    to: Address,
    /// Wei sent with it.
    value: String,
    /// The call data (hex).
    data: Bytes,
    /// What it does, in words (`approve 300 tUSD to router`).
    description: String,
}

impl CallOut {
    fn new(call: &Call, chain: &Chain, account: Address) -> Self {
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
struct ChargeOut {
    token: Address,
    /// The book's name (`ETH` for native ETH), else the address.
    name: String,
    decimals: Option<u8>,
    amount: String,
    /// What remains of the period's allowance after this charge.
    remaining: String,
    /// When the period ends and the allowance renews.
    renews_at: u64,
}

impl ChargeOut {
    fn new(c: &sak_policy::Charge, chain: &Chain, decimals: &[(Address, Option<u8>)]) -> Self {
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
struct AllowanceOut {
    token: Address,
    name: String,
    decimals: Option<u8>,
    /// The allowance per period.
    cap: String,
    period_s: u32,
    /// What remains this period.
    remaining: String,
    /// When the period ends and the allowance renews.
    renews_at: u64,
    /// The chain time it was read at.
    #[serde(skip)]
    now: u64,
}

impl AllowanceOut {
    fn sentence(&self) -> String {
        format!(
            "{} {} remains this period (of {} per {}), renews at {}",
            crate::cmd::session::show_amount(self.remaining.parse().unwrap_or_default(), self.decimals),
            self.name,
            crate::cmd::session::show_amount(self.cap.parse().unwrap_or_default(), self.decimals),
            crate::cmd::session::show_period(u64::from(self.period_s)),
            format_time_from(self.renews_at, self.now)
        )
    }
}

/// The session's gas budget this period.
#[derive(Debug, Serialize)]
struct GasBudgetOut {
    budget_wei: String,
    remaining_wei: String,
    renews_at: u64,
}

/// An intent an earlier run left unsettled, and how it ended now.
#[derive(Debug, Serialize)]
struct RecoveredOut {
    /// The ledger's intent id.
    intent: i64,
    /// `released` (never signed), `included` (it had landed), `failed` (it can never land) or
    /// `pending` (signed, not on chain yet: this run's operation takes its nonce). Nothing is
    /// ever resubmitted.
    outcome: &'static str,
    reason: Option<String>,
    user_op_hash: Option<B256>,
}

impl From<&Recovered> for RecoveredOut {
    fn from(r: &Recovered) -> Self {
        let (intent, outcome, reason, user_op_hash) = match r {
            Recovered::Released(id) => (id.0, "released", None, None),
            Recovered::Included(id) => (id.0, "included", None, None),
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
fn describe_call(call: &Call, chain: &Chain, account: Address) -> String {
    use crate::cmd::session::show_amount;
    let c = &chain.contracts;
    let adapter = c.adapter_of(account);
    let who = |a: Address| match a {
        a if a == account => "the account".to_owned(),
        a if a == adapter => "the account's adapter".to_owned(),
        a => c.name(a),
    };
    let amount =
        |raw: U256, token: Address| format!("{} {}", show_amount(raw, c.decimals(token)), c.name(token));
    match sak_policy::describe(call) {
        Action::EthSend { to, value } => format!("send {} ETH to {}", show_amount(value, Some(18)), who(to)),
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
            let name = selector.and_then(crate::cmd::session::selector_name).map_or_else(
                || selector.map_or_else(|| "(malformed call data)".into(), |s| s.to_string()),
                |(n, _)| n.to_owned(),
            );
            let value = if call.value.is_zero() {
                String::new()
            } else {
                format!(" with {} ETH", show_amount(call.value, Some(18)))
            };
            format!("call {} {name}{value}", who(target))
        }
        _ => format!("call {}", who(call.target)),
    }
}

impl Report {
    fn human(&self, chain: &Chain) -> String {
        use crate::cmd::session::show_amount;
        let mut s = String::new();
        let head = if self.dry_run {
            format!(
                "dry run: session #{} would allow this {} (nothing signed or sent)\n",
                self.session, self.command
            )
        } else {
            format!(
                "{} done under session #{} on {} ({}{})\n",
                self.command,
                self.session,
                self.account,
                match self.via {
                    "self" => "self-bundled",
                    "bundler" => "through the bundler",
                    _ => "direct: executeWithSession",
                },
                if self.preflight { "" } else { ", no local policy check" }
            )
        };
        s += &head;
        for c in &self.calls {
            s += &format!("  call      {}\n", c.description);
        }
        if let Some(h) = self.user_op_hash {
            s += &format!("  user op   {h}\n");
        }
        if let Some(tx) = self.transaction {
            s += &format!("  tx        {tx} (block {})\n", self.block.unwrap_or_default());
        }
        if let Some(gas) = &self.gas_cost_wei {
            s += &format!(
                "  gas       {} ETH, paid by the {}\n",
                show_amount(gas.parse().unwrap_or_default(), Some(18)),
                self.gas_paid_by.unwrap_or("account")
            );
        }
        for c in &self.charges {
            s += &format!(
                "  {:<9} {} {}; {} {} remains this period, renews at {}\n",
                if self.dry_run { "would charge" } else { "charged" },
                show_amount(c.amount.parse().unwrap_or_default(), c.decimals),
                c.name,
                show_amount(c.remaining.parse().unwrap_or_default(), c.decimals),
                c.name,
                format_time_from(c.renews_at, sak_primitives::units::unix_now())
            );
        }
        if self.charges.is_empty() {
            for a in &self.allowances {
                s += &format!("  allowance {}\n", a.sentence());
            }
        }
        if let Some(swap) = &self.swap
            && let Some(received) = &swap.received
        {
            s += &format!(
                "  received  {} {}\n",
                show_amount(received.parse().unwrap_or_default(), Some(swap.decimals_out)),
                chain.contracts.name(swap.token_out)
            );
        }
        for r in &self.recovered {
            s += &format!("  recovered intent #{}: {}\n", r.intent, r.outcome);
        }
        s
    }
}

/// A progress line while this run waits: for another operation on the session's lane (another
/// `sak` process, or the daemon, signing under the same session), or for the session's next
/// period when the current one ends too soon for an operation to land in it.
pub(crate) fn lane_wait_notice(
    global: &crate::cli::GlobalArgs,
    session: u32,
) -> sak_signer::settle::WaitNotice {
    use sak_signer::settle::Wait;
    let global = global.clone();
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
        output::progress(&global, &line);
    }))
}
