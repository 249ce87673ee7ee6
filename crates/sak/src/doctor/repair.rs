//! `sak doctor --repair` ([`super::Doctor::repair`]): makes the home whole on a reset chain (a
//! restarted node or fork, a reset testnet).
//!
//! What can be made again is: each account this home created, under its name, at the same
//! address (a smart account's address follows from the owner and salt; a 7702 account is the
//! owner's EOA). What cannot is a session: granting authority again is the owner's decision,
//! so each one that ended with the old chain is named with the command that grants it anew.

use crate::{
    Home, Result,
    owner::{AccountInfo, create_account},
    store::{AccountKind, AccountRecord, State},
};
use alloy::primitives::Address;
use serde::Serialize;

/// What `sak doctor --repair` did (the `repair` check's detail in words; each item below).
#[derive(Debug, Default, Serialize)]
pub struct Repair {
    /// Accounts made again on the new chain.
    pub recreated: Vec<AccountInfo>,
    /// Accounts that cannot be made again from here, and why.
    pub skipped: Vec<Skipped>,
    /// Sessions that ended with the old chain, each with the command that grants it anew.
    pub sessions: Vec<Regrant>,
}

/// An account that cannot be made again from here.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// Its name in the home.
    pub name: String,
    /// Its address.
    pub address: Address,
    /// Why it cannot be made again from here.
    pub reason: String,
}

/// A session that ended with the old chain.
#[derive(Debug, Serialize)]
pub struct Regrant {
    /// The session's id on the old chain.
    pub id: u32,
    /// The account it was granted on.
    pub account: Address,
    /// The session key's name in the home.
    pub key_name: String,
    /// The command that grants it anew (the policy left to the owner: `…`).
    pub command: String,
}

/// Retires the old chain's records (as every command does on meeting a new chain), then makes
/// each retired account again under its name and restores the default.
pub(super) async fn repair(home: &Home) -> Result<Repair> {
    let chain = home.chain().await?;
    let identity = chain.identity;
    let state = home.state()?;
    let Some((old, names)) =
        state.retired_accounts(&home.network_name, identity).filter(|(_, n)| !n.is_empty())
    else {
        return Ok(Repair::default());
    };
    let (old, owner) = (old.state.clone(), home.owner_address()?);
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
        let info = create_account(home, &chain, record.kind, salt, Some(name.clone())).await?;
        out.recreated.push(info);
    }
    if let Some(default) = old.default_account.filter(|d| out.recreated.iter().any(|i| i.name == *d)) {
        State::update(&home.paths.state(), |s| {
            s.networks.entry(home.network_name.clone()).or_default().default_account = Some(default);
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
    pub fn words(&self) -> String {
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
