//! `sak init`: the config file and the key directories.

use crate::{
    config::{Config, NetworkConfig, NetworkKind, Paths, redact_url},
    global::GlobalArgs,
    output::{self, Hinted},
};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  sak init\n  sak init --network sepolia\n  \
                        sak init --network base-sepolia --rpc-url '${BASE_SEPOLIA_RPC_URL}' --chain-id 84532")]
pub(crate) struct InitArgs {
    /// Rewrite an existing config file (its networks are kept unless replaced here).
    #[arg(long)]
    force: bool,
    /// Add (or replace) a network of kind `remote` with this RPC URL; `${VAR}` is read from the
    /// environment when used.
    #[arg(long, value_name = "URL", requires = "chain_id")]
    rpc_url: Option<String>,
    /// The chain id the new network's endpoint must report.
    #[arg(long, value_name = "ID", requires = "rpc_url")]
    chain_id: Option<u64>,
    /// The new network's ERC-4337 bundler.
    #[arg(long, value_name = "URL", requires = "rpc_url")]
    bundler_url: Option<String>,
}

/// What `sak init` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
struct Initialised {
    config_file: String,
    data_dir: String,
    keys_dir: String,
    network: String,
    networks: BTreeMap<String, NetworkSummary>,
    created: bool,
}

#[derive(Debug, Serialize)]
struct NetworkSummary {
    kind: NetworkKind,
    rpc_url: Option<String>,
    chain_id: Option<u64>,
}

pub(crate) fn run(args: InitArgs, global: &GlobalArgs) -> eyre::Result<()> {
    let paths = Paths::discover()?;
    let exists = paths.config_file.exists();
    let mut config = match Config::load(&paths.config_file) {
        Ok(config) => config,
        // `--force` is the way out of a config that no longer parses: start from the defaults.
        Err(e) if args.force => {
            tracing::warn!("{e:#}: starting from the default networks");
            Config::default()
        }
        Err(e) => return Err(e.into()),
    };
    if exists && !args.force && (global.network.is_some() || args.rpc_url.is_some()) {
        return Err(Hinted::refused(
            format!("{} already exists", paths.config_file.display()),
            "pass --force to change it (its other networks are kept), or edit it",
        )
        .into());
    }
    if let (Some(url), Some(chain_id)) = (&args.rpc_url, args.chain_id) {
        let name = global.network.clone().ok_or_else(|| {
            Hinted::new(
                "--rpc-url needs --network NAME to name the network",
                "sak init --network NAME --rpc-url URL --chain-id ID",
            )
        })?;
        config.networks.insert(
            name,
            NetworkConfig {
                kind: NetworkKind::Remote,
                rpc_url: Some(url.clone()),
                bundler_url: args.bundler_url.clone(),
                chain_id: Some(chain_id),
                confirmations: None,
                book: BTreeMap::new(),
            },
        );
    }
    if let Some(name) = &global.network {
        config.network(Some(name))?;
        config.network.clone_from(name);
    }
    let created = !exists || args.force || global.network.is_some();
    if created {
        config.save(&paths.config_file)?;
    }
    for dir in [paths.keys_dir(), paths.session_keys_dir()] {
        sak_signer::keystore::create_private_dir(&dir)?;
    }
    let out = Initialised {
        config_file: paths.config_file.display().to_string(),
        data_dir: paths.data_dir.display().to_string(),
        keys_dir: paths.keys_dir().display().to_string(),
        network: config.network.clone(),
        networks: config
            .networks
            .iter()
            .map(|(n, c)| {
                let summary = NetworkSummary {
                    kind: c.kind,
                    rpc_url: c
                        .rpc_url
                        .as_deref()
                        .map(|u| if u.contains("${") { u.to_owned() } else { redact_url(u) }),
                    chain_id: c.chain_id,
                };
                (n.clone(), summary)
            })
            .collect(),
        created,
    };
    output::emit(global, &out, || {
        let mut s = format!(
            "{} {}\nkeys in    {} (0700)\nnetwork    {} (default)\n\nnetworks\n",
            if created { "wrote     " } else { "config in " },
            out.config_file,
            out.keys_dir,
            out.network
        );
        for (name, n) in &out.networks {
            s += &format!(
                "  {name:<10} {:<8} {}{}\n",
                format!("{:?}", n.kind).to_lowercase(),
                n.rpc_url.as_deref().unwrap_or("-"),
                n.chain_id.map(|c| format!("  (chain {c})")).unwrap_or_default()
            );
        }
        s += "\nnext: `sak node up` (local chain), then `sak owner new`";
        s
    })
}
