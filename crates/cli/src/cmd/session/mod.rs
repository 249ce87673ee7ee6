//! `sak session grant|list|show|revoke|revoke-all|panic|rotate|verify`: what an agent may do.

mod export;
mod ops;
mod panic;
mod verify;

use crate::{
    ctx::{Chain, Ctx},
    output::{self, Hinted},
    store::SessionRecord,
};
use alloy::{primitives::Address, providers::Provider};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use sak::{sessions::status_of, words::describe_policy};
use sak_primitives::{AllowFile, GasFile, Number, PolicyFile, SpendFile};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per run; boxing would only obscure clap's derive")]
pub(crate) enum SessionCommand {
    /// Grant a session key a policy: a role or a policy file, plus flags. The owner signs.
    #[command(
        after_help = "Examples:\n  sak session grant --key price-bot --role trader --cap tUSD:1000/1d --expires 7d\n  \
                            sak session grant --key payer --policy payer.toml\n  \
                            sak session grant --key bot --allow router:'swapExactTokensForTokens(uint256,uint256,address[],address,uint256)' \\\n      \
                            --cap tUSD:250/1h --gas-budget 0.05ether/1d --expires 2026-12-31T00:00:00Z"
    )]
    Grant(GrantArgs),
    /// The sessions granted from this home on the network, with their on-chain status.
    #[command(after_help = "Examples:\n  sak session list\n  sak session list --json")]
    List,
    /// One session: its policy, what remains of each allowance this period, when it renews.
    #[command(after_help = "Examples:\n  sak session show 1\n  sak session show 1 --json")]
    Show(IdArgs),
    /// Revoke one session (effective at once, also for operations already signed).
    #[command(after_help = "Examples:\n  sak session revoke 1")]
    Revoke(IdArgs),
    /// Revoke every session of the account in one transaction.
    #[command(after_help = "Examples:\n  sak session revoke-all")]
    RevokeAll,
    /// End every session and set every live allowance of the account to 0, in one owner
    /// transaction: a dry run first, then it asks (`--yes` for scripts).
    #[command(after_help = "Examples:\n  sak session panic\n  sak session panic --yes\n  \
                            sak session panic --keep-approvals --yes   # sessions only")]
    Panic(panic::PanicArgs),
    /// Hand the session to an agent on another machine: one bundle file (mode 0600) with the
    /// session key under its own passphrase (or none: $SAK_SESSION_KEY), the account, chain,
    /// contracts, names and policy. `sak agent import FILE` reads it there.
    #[command(after_help = "Examples:\n  sak session export 1 --out bot-session.json\n  \
                            sak session export 1 --out ci-session.json --no-key")]
    Export(export::ExportArgs),
    /// Give the session a new key in one transaction: same id, policy and counters; the old
    /// key stops working at once.
    #[command(after_help = "Examples:\n  sak session rotate 1\n  sak session rotate 1 --key price-bot-2")]
    Rotate(RotateArgs),
    /// Prove on a throwaway fork of the session's chain that the contracts enforce it: one
    /// allowed operation succeeds; over-cap, foreign target, wrong selector, after expiry and
    /// after revoke are refused on-chain; the account's other assets are untouched.
    Verify(verify::VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The session id (from `sak session list`).
    pub(crate) id: u32,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The session whose key to replace (same id, policy and counters).
    pub(crate) id: u32,
    /// The new key's name [default: a new key, `<old name>-rN`].
    #[arg(long)]
    pub(crate) key: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// The session key (name or address; `sak key new` makes one).
    #[arg(long)]
    pub(crate) key: String,
    /// A preset: trader (swaps through --router to the account), payer (transfers), viewer.
    #[arg(long, value_parser = ["trader", "payer", "viewer"], conflicts_with = "policy")]
    pub(crate) role: Option<String>,
    /// A policy file (TOML, or JSON by extension); flags below add to it.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// trader: the Uniswap V2 router [default on local chains: the local router].
    #[arg(long, value_name = "ADDR|NAME")]
    pub(crate) router: Option<String>,
    /// payer: an address the session may send ETH to (repeatable).
    #[arg(long, value_name = "ADDR|NAME")]
    pub(crate) recipient: Vec<String>,
    /// Permit a call: TARGET:SIGNATURE, e.g. router:'swapExactTokensForTokens(uint256,uint256,address[],address,uint256)'.
    #[arg(long, value_name = "TARGET:SIGNATURE")]
    pub(crate) allow: Vec<String>,
    /// A spend cap: TOKEN:AMOUNT/PERIOD in whole units, e.g. tUSD:1000/1d.
    #[arg(long, value_name = "TOKEN:AMOUNT/PERIOD")]
    pub(crate) cap: Vec<String>,
    /// A cap on native ETH the session's calls may carry: AMOUNT/PERIOD, e.g. 0.5/1d.
    #[arg(long, value_name = "AMOUNT/PERIOD")]
    pub(crate) native_cap: Option<String>,
    /// The account's ETH the session may spend on gas: AMOUNT/PERIOD (e.g. 0.05ether/1d), or
    /// `unlimited` [default: 0.1ether/1d].
    #[arg(long, value_name = "AMOUNT/PERIOD")]
    pub(crate) gas_budget: Option<String>,
    /// The highest fee per gas the account pays for a session operation (e.g. 50gwei, or wei):
    /// a key that bundles its own operations cannot turn the gas budget into fees it collects.
    #[arg(long, value_name = "FEE")]
    pub(crate) max_fee_per_gas: Option<String>,
    /// The highest preVerificationGas the account pays for (gas charged whatever is used).
    #[arg(long, value_name = "GAS")]
    pub(crate) max_pre_verification_gas: Option<u32>,
    /// When it ends: a duration from now (7d, 12h) or a time (RFC 3339 or unix seconds)
    /// [default: 1d, unless the policy file sets it].
    #[arg(long, value_name = "DURATION|TIME")]
    pub(crate) expires: Option<String>,
    /// Operations allowed in total.
    #[arg(long, value_name = "N")]
    pub(crate) max_ops: Option<u32>,
    /// Print the resolved policy and stop: nothing is sent.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Permit generic dispatchers (multicall, Universal Router execute, aggregate, ERC-4626
    /// withdraw/redeem) in --allow or the policy file: every route behind one is permitted.
    #[arg(long)]
    pub(crate) allow_dispatchers: bool,
}

pub(crate) async fn run(command: SessionCommand, ctx: &Ctx) -> eyre::Result<()> {
    match command {
        SessionCommand::Grant(args) => grant(args, ctx).await,
        SessionCommand::List => list(ctx).await,
        SessionCommand::Show(args) => ops::show(args, ctx).await,
        SessionCommand::Revoke(args) => ops::revoke(args, ctx).await,
        SessionCommand::RevokeAll => ops::revoke_all(ctx).await,
        SessionCommand::Panic(args) => panic::panic(args, ctx).await,
        SessionCommand::Export(args) => export::export(args, ctx).await,
        SessionCommand::Rotate(args) => ops::rotate(args, ctx).await,
        SessionCommand::Verify(args) => verify::run(args, ctx).await,
    }
}

/// The policy file the flags describe (added to `--policy FILE` when given).
pub(crate) fn policy_file(args: &GrantArgs, chain: &Chain) -> eyre::Result<PolicyFile> {
    let mut file = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                crate::output::Hinted::new(
                    format!("cannot read the policy file {}: {e}", path.display()),
                    "check the path given to --policy (a TOML or JSON policy file: \
                     crates/primitives/README.md shows the format)",
                )
            })?;
            let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let parsed = if is_json { PolicyFile::from_json(&text) } else { PolicyFile::from_toml(&text) };
            parsed.wrap_err_with(|| format!("policy file {}", path.display()))?
        }
        None => PolicyFile::default(),
    };
    if let Some(role) = &args.role {
        file.role = Some(role.clone());
    }
    if let Some(router) = &args.router {
        file.router = Some(router.clone());
    } else if file.role.as_deref() == Some("trader") && file.router.is_none() {
        if chain.contracts.local.is_some() {
            file.router = Some("uniswap-v2-router".into());
        } else {
            return Err(Hinted::new(
                "a trader needs a router",
                "pass --router ADDRESS (a Uniswap V2 router)",
            )
            .into());
        }
    }
    file.dispatchers |= args.allow_dispatchers;
    file.recipients.extend(args.recipient.iter().cloned());
    for allow in &args.allow {
        let (target, function) = allow.split_once(':').ok_or_else(|| {
            Hinted::new(
                format!("--allow {allow:?} is not TARGET:SIGNATURE"),
                "e.g. --allow router:'swapExactTokensForTokens(uint256,uint256,address[],address,uint256)'",
            )
        })?;
        let (selector, function) = if function.starts_with("0x") && !function.contains('(') {
            (Some(function.to_owned()), None)
        } else {
            (None, Some(function.to_owned()))
        };
        file.allow.push(AllowFile {
            target: target.into(),
            function,
            selector,
            value: None,
            conditions: vec![],
        });
    }
    for cap in &args.cap {
        let (token, rest) = cap.split_once(':').ok_or_else(|| cap_error("--cap", cap))?;
        let (amount, period) = split_period(rest).ok_or_else(|| cap_error("--cap", cap))?;
        file.spend.push(spend(token, amount, period));
    }
    if let Some(native) = &args.native_cap {
        let (amount, period) = split_period(native).ok_or_else(|| cap_error("--native-cap", native))?;
        file.spend.push(spend("ETH", amount.trim_end_matches("ether").trim_end_matches("eth"), period));
    }
    // The fee caps of the file survive a --gas-budget that replaces its budget.
    let caps = file.gas.as_ref().map(|g| (g.max_fee_per_gas.clone(), g.max_pre_verification_gas.clone()));
    let gas_file = |budget: &str, period: Option<&str>| GasFile {
        budget: Number::Text(budget.into()),
        period: period.map(|p| Number::Text(p.into())),
        max_fee_per_gas: None,
        max_pre_verification_gas: None,
    };
    match &args.gas_budget {
        Some(b) if b == "unlimited" => file.gas = Some(gas_file("unlimited", None)),
        Some(b) => {
            let (amount, period) = split_period(b).ok_or_else(|| cap_error("--gas-budget", b))?;
            let amount = if amount.chars().all(|c| c.is_ascii_digit() || c == '.') {
                format!("{amount} ether")
            } else {
                amount.replace("ether", " ether").replace("gwei", " gwei")
            };
            file.gas = Some(gas_file(&amount, Some(period)));
        }
        None if file.gas.is_none() && file.paymaster.is_none() => {
            file.gas = Some(gas_file("0.1 ether", Some("1d")))
        }
        None => {}
    }
    if let (Some(g), Some((fee, pvg))) = (&mut file.gas, caps) {
        (g.max_fee_per_gas, g.max_pre_verification_gas) = (fee, pvg);
    }
    if args.max_fee_per_gas.is_some() || args.max_pre_verification_gas.is_some() {
        let Some(g) = &mut file.gas else {
            return Err(Hinted::new(
                "a fee cap bounds what the account pays for gas, and this session is sponsored only",
                "give it a gas budget too (--gas-budget 0.05ether/1d), or leave the fee caps out",
            )
            .into());
        };
        if let Some(fee) = &args.max_fee_per_gas {
            // "50gwei" as the policy file writes it: "50 gwei".
            let unit = fee.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(fee.len());
            g.max_fee_per_gas =
                Some(Number::Text(format!("{} {}", &fee[..unit], &fee[unit..]).trim().into()));
        }
        if let Some(pvg) = args.max_pre_verification_gas {
            g.max_pre_verification_gas = Some(Number::Int(pvg.into()));
        }
    }
    match &args.expires {
        Some(e) if sak_primitives::units::parse_duration(e).is_some() => {
            file.valid_for = Some(e.clone());
            file.valid_until = None;
        }
        Some(e) => {
            file.valid_until = Some(Number::Text(e.clone()));
            file.valid_for = None;
        }
        None if file.valid_for.is_none() && file.valid_until.is_none() => file.valid_for = Some("1d".into()),
        None => {}
    }
    if let Some(n) = args.max_ops {
        file.max_ops = Some(n);
    }
    Ok(file)
}

fn spend(token: &str, amount: &str, period: &str) -> SpendFile {
    SpendFile {
        token: token.into(),
        allowance: None,
        amount: Some(amount.into()),
        decimals: None,
        period: Some(Number::Text(period.into())),
        transfer: None,
        approve: None,
    }
}

fn split_period(text: &str) -> Option<(&str, &str)> {
    let (amount, period) = text.rsplit_once('/')?;
    (!amount.is_empty() && !period.is_empty()).then_some((amount.trim(), period.trim()))
}

fn cap_error(flag: &str, value: &str) -> Hinted {
    Hinted::new(
        format!("{flag} {value:?} is malformed"),
        "write TOKEN:AMOUNT/PERIOD for --cap (tUSD:1000/1d), AMOUNT/PERIOD for --native-cap and --gas-budget (0.05ether/1d)",
    )
}

async fn grant(args: GrantArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let file = policy_file(&args, &chain)?;
    let out = sak::owner::grant(ctx, &chain, &args.key, &file, args.dry_run).await?;
    for w in &out.warnings {
        output::warn(w);
    }
    output::emit(&ctx.global, &out, || {
        let head = match out.id {
            Some(id) => {
                format!("granted session #{id} to `{}` ({}) on {}", out.key_name, out.key, out.account)
            }
            None => format!("dry run: nothing sent; the session `{}` would get:", out.key_name),
        };
        format!("{head}\n{}", describe_policy(&out.policy, &chain, sak_primitives::units::unix_now()))
    })
}

/// One session in `sak session list --json`.
#[derive(Debug, Serialize)]
pub(crate) struct Listed {
    id: u32,
    account: Address,
    /// The session key's address (null for a session granted elsewhere and since revoked: the
    /// chain no longer holds it).
    key: Option<Address>,
    /// The key's name in this home (null for a session granted elsewhere).
    key_name: Option<String>,
    /// `active`, `revoked`, `expired`, `not-started`, or `unknown` (not on this chain).
    status: &'static str,
    /// `here` (granted from this home), `elsewhere` (on chain, granted from another home or by
    /// other code) or `local-only` (recorded here, but the chain never issued its id: a record
    /// of another chain, or of a grant that did not land).
    origin: &'static str,
    valid_after: u64,
    /// None once the chain no longer holds the session (revoked).
    valid_until: Option<u64>,
    /// Chain time of the grant (null for a session granted elsewhere).
    granted_at: Option<u64>,
    /// When the current key took over (`sak session rotate`), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_at: Option<u64>,
}

/// Every session the account issued (ids 1 up to its on-chain counter), joined to this home's
/// records; then the records whose id the chain never issued.
async fn list(ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let now = chain.time().await?;
    let state = ctx.state()?;
    let records: Vec<&SessionRecord> = state
        .networks
        .get(&ctx.network_name)
        .map(|n| {
            n.sessions
                .iter()
                .filter(|r| r.account == account.address && r.chain_id == chain.chain_id)
                .collect()
        })
        .unwrap_or_default();
    // The counter is the account's record in the sessions' holder (the account, or the module).
    let host = sak::sessions::host_of(&account);
    let word = chain
        .provider
        .get_storage_at(host.holder, sak_contracts::AccountState::slot(account.address).into())
        .await
        .wrap_err("reading the account's session counter (eth_getStorageAt)")?;
    let issued = sak_contracts::AccountState::from_word(word).next_id;
    if issued > crate::leftover::MAX_IDS {
        output::warn(&format!(
            "the account's session counter is {issued}: listing the first {} ids (`sak doctor` checks the account's storage)",
            crate::leftover::MAX_IDS
        ));
    }
    let mut sessions = Vec::new();
    for id in 1..=issued.min(crate::leftover::MAX_IDS) {
        let view = host.view(&chain.provider, id).await?;
        let record = records.iter().rev().find(|r| r.id == id);
        let status = match record {
            Some(r) => ops::chain_status(&chain.provider, host, id, r.block, &view, now).await?,
            // An issued id the current salt holds no record of: revoked, alone or by revoke-all.
            None => match status_of(&view, now) {
                "unknown" => "revoked",
                status => status,
            },
        };
        sessions.push(Listed {
            id,
            account: account.address,
            key: record.map(|r| r.key).or(Some(view.signer).filter(|k| !k.is_zero())),
            key_name: record.map(|r| r.key_name.clone()),
            status,
            origin: if record.is_some() { "here" } else { "elsewhere" },
            valid_after: view.validAfter.to(),
            valid_until: Some(view.validUntil.to::<u64>()).filter(|t| *t != 0),
            granted_at: record.map(|r| r.granted_at),
            rotated_at: record.and_then(|r| r.rotated_at),
        });
    }
    for r in records.iter().filter(|r| r.id > issued) {
        sessions.push(Listed {
            id: r.id,
            account: r.account,
            key: Some(r.key),
            key_name: Some(r.key_name.clone()),
            status: "unknown",
            origin: "local-only",
            valid_after: 0,
            valid_until: None,
            granted_at: Some(r.granted_at),
            rotated_at: r.rotated_at,
        });
    }
    output::emit(
        &ctx.global,
        &serde_json::json!({ "account": account.address, "chain_time": now, "sessions": sessions }),
        || {
            if sessions.is_empty() {
                return format!(
                    "no sessions on {} yet: `sak session grant --key NAME --role trader`",
                    account.address
                );
            }
            let mut s = format!(
                "{:>4}  {:<12} {:<10} {:<16} {:<42} until (UTC)\n",
                "id", "status", "origin", "key", "key address"
            );
            for l in &sessions {
                s += &format!(
                    "{:>4}  {:<12} {:<10} {:<16} {:<42} {}\n",
                    l.id,
                    l.status,
                    l.origin,
                    l.key_name.as_deref().unwrap_or("-"),
                    l.key.map_or_else(|| "-".into(), |k| k.to_string()),
                    l.valid_until.map_or_else(|| "-".into(), sak_primitives::units::format_time)
                );
            }
            if sessions.iter().any(|l| l.origin == "local-only") {
                s += "local-only: recorded here, but this chain never issued the id (a reset chain, or a grant that did not land)\n";
            }
            s
        },
    )
}
