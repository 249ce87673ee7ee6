//! A reset chain (a restarted node or fork, a reset testnet): the `chain_identity` check.
//! Making the home whole on the new chain is the owner's act (`sak doctor --repair`).

use super::{Probed, Report};
use crate::{
    Home,
    store::{NetworkState, State},
};
use sak_primitives::units::format_time;

const REPAIR: &str = "run `sak doctor --repair`: it creates this home's accounts again on the new chain, \
                      under their names and at their addresses (sessions are granted anew by you)";

/// `chain_identity`: whether the chain is the one this home's records belong to. Returns false
/// when it is not (the account checks would only repeat it).
pub(super) async fn check(r: &mut Report, home: &Home, chain: &Probed, state: &State) -> bool {
    let identity = match sak_signer::settle::chain_identity(&chain.provider).await {
        Ok(id) => id,
        Err(e) => {
            r.warn(
                "chain_identity",
                format!("cannot read the chain's genesis block: {e}"),
                "retry `sak doctor`",
            );
            return true;
        }
    };
    let net = state.networks.get(&home.network_name).cloned().unwrap_or_default();
    match net.genesis {
        Some(g) if g != identity => {
            r.fail(
                "chain_identity",
                format!(
                    "the endpoint is a new chain under chain id {} (its genesis block, or the fork's anvil \
                     instance, changed: the node was restarted or the network reset); {} belong to the old one",
                    chain.chain_id,
                    records(&net)
                ),
                REPAIR,
            );
            false
        }
        _ => {
            match state.retired_accounts(&home.network_name, identity) {
                Some((old, names)) if !names.is_empty() => r.warn(
                    "chain_identity",
                    format!(
                        "the chain was reset (noticed {}); the old chain's account{} {} not here",
                        format_time(old.retired_at),
                        if names.len() == 1 { " is" } else { "s are" },
                        names.join(", ")
                    ),
                    REPAIR,
                ),
                _ => r.ok("chain_identity", "the chain this home's records belong to"),
            }
            true
        }
    }
}

/// The accounts and sessions of `net`, in words.
fn records(net: &NetworkState) -> String {
    let accounts: Vec<String> =
        net.accounts.iter().map(|(n, a)| format!("`{n}` ({} {})", a.kind.as_str(), a.address)).collect();
    let sessions = net.sessions.len();
    format!(
        "this home's accounts {} and {sessions} session{}",
        if accounts.is_empty() { "(none)".to_owned() } else { accounts.join(", ") },
        if sessions == 1 { "" } else { "s" }
    )
}
