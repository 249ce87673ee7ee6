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
    Chain, Hinted, Home, Result,
    error::{OptionExt, WrapErr, ensure},
    keystore_address,
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

use sak_contracts::{
    IEntryPoint, IUniswapV2Factory, IUniswapV2Router02, MockERC20, SakAccount, SakAddresses,
};
use sak_node::{AnvilNode, Profile, Toolchain};
use sak_policy::{Call, Context, Operation, Refusal, Session, calldata::through_adapter};
use sak_primitives::{ETH_SEND, NATIVE, Policy, TRANSFER};
use sak_signer::{
    guard::{Binding, GuardedSigner, Preflight},
    keystore::{self, LocalKey, Password},
    ledger::SqliteLedger,
};
use sak_userop::{EIP7702_MARKER, FeeCaps, SelfBundler, eip7702};
use serde::Serialize;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

mod cases;
mod fork;
#[cfg(test)]
mod tests;

use cases::*;
use fork::*;

// ---------------------------------------------------------------------------------------------
// The report: field names are the `--json` interface.
// ---------------------------------------------------------------------------------------------

/// What `sak session verify --json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Every case behaved as expected (exit 0); false when one did not (exit 1).
    pub ok: bool,
    /// One sentence: what the proof shows.
    pub verdict: String,
    /// The network's name in the home.
    pub network: String,
    /// Its chain id.
    pub chain_id: u64,
    /// The account the session acts for.
    pub account: Address,
    /// `smart` or `7702`.
    pub account_kind: &'static str,
    /// The session id on the real chain.
    pub session: u32,
    /// Its status on the real chain when verify started: `active`, `not-started`, `expired` or
    /// `revoked`.
    pub status: &'static str,
    /// The session key's address (on the real chain).
    pub key: Address,
    /// The key's name in this home, when known.
    pub key_name: Option<String>,
    /// Who signed on the fork: `session-key` (the session's own key) or `throwaway` (a fresh
    /// key granted the same policy on the fork).
    pub signed_with: &'static str,
    /// With `throwaway`: the id of the session granted on the fork.
    pub fork_session: Option<u32>,
    /// The real chain's block the fork started from.
    pub fork_block: u64,
    /// The allowed operation, in words; null when the policy permits nothing sak can build.
    pub operation: Option<String>,
    /// What was changed on the fork before the cases (funding, time moved).
    pub setup: Vec<String>,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseRow>,
    /// The account's assets before and after the allowed operation.
    pub isolation: Vec<AssetRow>,
    /// Seconds the proof took, start to end (the caller sets it).
    pub wall_time_s: f64,
}

/// One case of the proof.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    /// `allowed`, `over-cap`, `foreign-target`, `wrong-selector`, `after-expiry`,
    /// `after-revoke`, `isolation`, or for an inactive session `revoked` / `expired`.
    pub case: &'static str,
    /// What the case does, in words.
    pub title: String,
    /// What must happen: `success`, the contracts' error name (`SpendCapExceeded`, ...), or for
    /// `isolation` `as the policy allows`.
    pub expected: String,
    /// What happened: `success`, the error name the contracts refused with, another error's
    /// text, or `skipped`.
    pub observed: String,
    /// The refusal or error in full, or why the case was skipped.
    pub detail: Option<String>,
    /// The fork's bundle transaction (the allowed operation).
    pub tx: Option<B256>,
    /// The allowed operation's user operation hash on the fork.
    pub user_op_hash: Option<B256>,
    /// `pass`, `fail` or `skip`.
    pub result: &'static str,
    /// `result == "pass"`.
    pub pass: bool,
}

/// One asset of the account around the allowed operation.
#[derive(Debug, Clone, Serialize)]
pub struct AssetRow {
    /// `ETH` (balance plus EntryPoint deposit) or the token's name.
    pub asset: String,
    /// The token (null for ETH).
    pub token: Option<Address>,
    /// Base units.
    pub before: String,
    /// Base units.
    pub after: String,
    /// `after - before`, signed.
    pub change: String,
    /// What the policy lets the allowed operation do to it, in words.
    pub allowed: String,
    /// The change is within what is allowed.
    pub ok: bool,
}

// ---------------------------------------------------------------------------------------------
// The subject
// ---------------------------------------------------------------------------------------------

/// What the real chain says about the session.
#[derive(Debug)]
pub struct Subject {
    /// The session id.
    pub id: u32,
    /// The session key's address.
    pub signer: Address,
    /// The policy granted (from its `SessionGranted` event).
    pub policy: Policy,
    /// `active`, `not-started`, `expired`, `revoked`.
    pub status: &'static str,
    /// The key's name in this home, when it was granted from here.
    pub key_name: Option<String>,
}

/// Who signs on the fork.
#[derive(Debug)]
pub enum Signer {
    /// The session's own key.
    Key(LocalKey),
    /// A fresh key the owner (impersonated on the fork) grants the session's policy: proves the
    /// policy, not the key.
    Throwaway,
}

/// The session as the real chain has it (read only): its granted policy and status.
pub async fn subject(home: &Home, chain: &Chain, account: &AccountRecord, id: u32) -> Result<Subject> {
    crate::sessions::require_sak_account(account, "`sak session verify`")?;
    let record = home.session_record(account.address, id)?;
    let unknown = || {
        crate::Error::from(Hinted::new(
            format!("no session #{id} on account {} (network `{}`)", account.address, home.network_name),
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
    let now = chain.time().await?;
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

/// The session's key file: `key` (a keystore file or a name), else the home's key with the
/// session's address; checked to hold the session's key (without decrypting it).
pub fn key_file(home: &Home, subject: &Subject, key: Option<&str>) -> Result<PathBuf> {
    let path = match key {
        Some(k) if Path::new(k).is_file() => Path::new(k).to_path_buf(),
        Some(k) => home.session_key_path(k)?.1,
        None => match home.session_key_path(&subject.signer.to_string()) {
            Ok((_, path)) => path,
            Err(_) => {
                return Err(Hinted::new(
                    format!(
                        "session #{}'s key {} is not in this home ({})",
                        subject.id,
                        subject.signer,
                        home.paths.session_keys_dir().display()
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
    Ok(path)
}

/// Decrypts the session's key from `path` ([`key_file`]) with session keys' `password`.
pub fn load_key(path: &Path, subject: &Subject, password: &Password) -> Result<LocalKey> {
    let key = keystore::load(path, password).wrap_err_with(|| format!("loading {}", path.display()))?;
    ensure!(key.address() == subject.signer, "{} decrypts to another key than the session's", path.display());
    Ok(key)
}

// ---------------------------------------------------------------------------------------------
// The proof
// ---------------------------------------------------------------------------------------------

/// Proves on a fork of `chain` at `block` that `subject`'s session behaves as its policy says:
/// every case in its own snapshot, each outcome the contracts' decision. Nothing is sent to the
/// real chain; anvil stops on every path (dropping the future stops it too). The home's
/// progress sink hears each step.
pub async fn prove(
    home: &Home,
    chain: &Chain,
    account: &AccountRecord,
    subject: &Subject,
    signer: Signer,
    block: u64,
) -> Result<Report> {
    let fork = Fork::start(home, chain, block).await?;
    let mut setup = Vec::new();
    let say = |line: &str| home.progress(&format!("  {line}"));

    let (init_code, delegate) = match account.kind {
        AccountKind::Smart => (Bytes::new(), None),
        AccountKind::Erc7579 => {
            return Err(crate::Error::msg(
                "`sak session verify` does not prove a modular (7579) account's sessions yet",
            ));
        }
        AccountKind::Eip7702 => {
            let delegate = eip7702::delegate_of(&fork.provider, account.address)
                .await?
                .ok_or_err("the 7702 account has no delegation on the fork")?;
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
                fork.provider.get_transaction_receipt(tx).await?.ok_or_err("no receipt for the grant")?;
            let new_id = receipt
                .inner
                .logs()
                .iter()
                .find_map(|l| l.log_decode::<SakAccount::SessionGranted>().ok())
                .ok_or_err("no SessionGranted event on the fork")?
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
        network: home.network_name.clone(),
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
) -> Result<U256> {
    let (fork, account) = (on.fork, on.account);
    let token = plan.token();
    let limit = on.policy.spend_limit(token).ok_or_err("the allowed operation's token has no cap")?.clone();
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
                sak_primitives::units::format_amount(amount, chain.contracts.decimals(token)),
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
