//! `sak doctor`: the facade's checks ([`sak::doctor`]) printed, and `--repair`
//! ([`Doctor::repair`]), which makes the home whole on a reset chain.

use crate::{
    config::Paths,
    ctx::Ctx,
    global::GlobalArgs,
    output::{self, AlreadyReported},
};
use clap::Args;
use sak::doctor::{Doctor, Repair, Report, Status};
use serde::Serialize;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  sak doctor\n  sak doctor --session 1 --json\n  sak --network sepolia doctor\n  \
                  sak doctor --repair\n\n\
                  Exit codes: 0 when no check fails (warnings allowed), 2 when one does.\n\
                  --json prints {network, checks: [{name, status: ok|warn|fail, detail, fix}]}."
)]
pub(crate) struct DoctorArgs {
    /// Also check this session: active, in its time window, scoped, its key present.
    #[arg(long)]
    pub(crate) session: Option<u32>,
    /// After a chain reset (a restarted node or fork, a reset testnet): create this home's
    /// accounts again on the new chain, under their names and at their addresses, and list the
    /// sessions to grant anew. Uses the owner key.
    #[arg(long)]
    pub(crate) repair: bool,
}

/// `sak doctor --json`: the checks, and what `--repair` did.
#[derive(Debug, Serialize)]
struct Printed {
    #[serde(flatten)]
    report: Report,
    /// What `--repair` did.
    #[serde(skip_serializing_if = "Option::is_none")]
    repair: Option<Repair>,
}

pub(crate) async fn run(args: DoctorArgs, global: &GlobalArgs) -> eyre::Result<()> {
    let mut doctor = Doctor::begin(Paths::discover()?, Ctx::options(global)).await;
    let repaired = if args.repair { doctor.repair().await } else { None };
    let printed = Printed { report: doctor.finish(args.session).await, repair: repaired };
    output::emit(global, &printed, || human(&printed.report))?;
    let failed = printed.report.failed();
    if failed > 0 {
        return Err(AlreadyReported {
            message: format!("{failed} check{} failed", if failed == 1 { "" } else { "s" }),
            hint: "apply each `fix:` above, then run `sak doctor` again",
            code: 2,
        }
        .into());
    }
    Ok(())
}

fn human(r: &Report) -> String {
    let mut s = match (&r.network, r.chain_id) {
        (Some(n), Some(id)) => format!("network {n}, chain {id}\n"),
        (Some(n), None) => format!("network {n}\n"),
        _ => String::new(),
    };
    for c in &r.checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        s += &format!(
            "{status:<5} {:<20} {}\n",
            c.name,
            c.detail.replace('\n', "\n                           ")
        );
        if let Some(fix) = &c.fix {
            s += &format!("{:<26} fix: {fix}\n", "");
        }
    }
    let (w, f) = (
        r.checks.iter().filter(|c| c.status == Status::Warn).count(),
        r.checks.iter().filter(|c| c.status == Status::Fail).count(),
    );
    s += &format!("\n{} checks: {} ok, {w} warnings, {f} failed", r.checks.len(), r.checks.len() - w - f);
    s
}
