//! `sak session verify`: the sandbox proof on a fork ([`sak::verify`]), printed.

use crate::{
    ctx::{Chain, Ctx},
    output::{self, Hinted},
};
use alloy::providers::Provider;
use clap::Args;
use eyre::WrapErr;
use sak::verify::{self, CaseRow, Report, Signer};
use std::time::Instant;
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

pub(crate) async fn run(args: VerifyArgs, ctx: &Ctx) -> eyre::Result<()> {
    let started = Instant::now();
    let chain = ctx.chain().await?;
    let account = ctx.account(chain.chain_id)?;
    let subject = verify::subject(ctx, &chain, &account, args.id).await?;
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
        let path = verify::key_file(ctx, &subject, args.key.as_deref())?;
        Signer::Key(verify::load_key(&path, &subject, &ctx.key_password()?)?)
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
        r = verify::prove(ctx, &chain, &account, &subject, signer, block) => r.map_err(|e| with_hint(e.into()))?,
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
            let show = |v: &str| sak_primitives::units::format_amount(v.parse().unwrap_or_default(), d);
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
