//! `sak doctor --repair`: makes the home whole on a reset chain (a restarted node or fork, a
//! reset testnet).
//!
//! What can be made again is: each account this home created, under its name, at the same
//! address (a smart account's address follows from the owner and salt; a 7702 account is the
//! owner's EOA). What cannot is a session: granting authority again is the owner's decision,
//! so each one that ended with the old chain is named with the command that grants it anew.

use crate::{
    cmd::account::{AccountInfo, create_on},
    ctx::Ctx,
    store::{AccountKind, AccountRecord, State},
};
use alloy::primitives::Address;
use serde::Serialize;

/// What `sak doctor --repair` did (the `repair` check's detail in words; each item below).
#[derive(Debug, Default, Serialize)]
pub(super) struct Repair {
    /// Accounts made again on the new chain.
    pub(super) recreated: Vec<AccountInfo>,
    /// Accounts that cannot be made again from here, and why.
    pub(super) skipped: Vec<Skipped>,
    /// Sessions that ended with the old chain, each with the command that grants it anew.
    pub(super) sessions: Vec<Regrant>,
}

#[derive(Debug, Serialize)]
pub(super) struct Skipped {
    name: String,
    address: Address,
    reason: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Regrant {
    id: u32,
    account: Address,
    key_name: String,
    command: String,
}

/// Retires the old chain's records (as every command does on meeting a new chain), then makes
/// each retired account again under its name and restores the default.
pub(super) async fn repair(ctx: &Ctx) -> eyre::Result<Repair> {
    let chain = ctx.chain().await?;
    let identity = chain.identity;
    let state = ctx.state()?;
    let Some((old, names)) =
        state.retired_accounts(&ctx.network_name, identity).filter(|(_, n)| !n.is_empty())
    else {
        return Ok(Repair::default());
    };
    let (old, owner) = (old.state.clone(), ctx.owner_address()?);
    let mut out = Repair::default();
    for name in names {
        let record = &old.accounts[&name];
        let cannot = match record {
            AccountRecord { owner: o, .. } if *o != owner => {
                Some(format!("owned by {o} on the old chain, not by this home's owner {owner}"))
            }
            AccountRecord { kind: AccountKind::Smart, salt: None, .. } => {
                Some("adopted with accept-ownership: its factory salt is not known here".to_owned())
            }
            _ => None,
        };
        if let Some(reason) = cannot {
            out.skipped.push(Skipped { name, address: record.address, reason });
            continue;
        }
        let salt = record.salt.unwrap_or_default();
        let info = create_on(ctx, &chain, record.kind, salt, Some(name.clone())).await?;
        out.recreated.push(info);
    }
    if let Some(default) = old.default_account.filter(|d| out.recreated.iter().any(|i| i.name == *d)) {
        State::update(&ctx.paths.state(), |s| {
            s.networks.entry(ctx.network_name.clone()).or_default().default_account = Some(default);
        })?;
    }
    for s in &old.sessions {
        let account = old.accounts.iter().find(|(_, a)| a.address == s.account).map(|(n, _)| n.as_str());
        out.sessions.push(Regrant {
            id: s.id,
            account: s.account,
            key_name: s.key_name.clone(),
            command: format!(
                "sak {}session grant --key {} …",
                account.map(|n| format!("--account {n} ")).unwrap_or_default(),
                s.key_name
            ),
        });
    }
    Ok(out)
}

impl Repair {
    /// The `repair` check's detail.
    pub(super) fn words(&self) -> String {
        if self.recreated.is_empty() && self.skipped.is_empty() && self.sessions.is_empty() {
            return "nothing to repair: this home's records belong to this chain".to_owned();
        }
        let mut lines = Vec::new();
        for i in &self.recreated {
            lines.push(format!(
                "account `{}` ({} {}) {} on the new chain",
                i.name,
                i.kind.as_str(),
                i.address,
                if i.created { "made again" } else { "already there" }
            ));
        }
        for s in &self.skipped {
            lines.push(format!("account `{}` ({}) not made again: {}", s.name, s.address, s.reason));
        }
        for s in &self.sessions {
            lines.push(format!(
                "session #{} (key `{}`) ended with the old chain: `{}`",
                s.id, s.key_name, s.command
            ));
        }
        lines.join("\n")
    }
}
