//! `sak deploy`: sak's contracts through the CREATE2 deployer (same addresses everywhere).
//!
//! sak deploys its own seven contracts (`SessionAdapter`, `SakAccount`, `SakAccountFactory`,
//! `Sak7702Account`, `SessionKeyValidator`, `Sak7579Account`, `Sak7579AccountFactory`:
//! `sak_contracts::sak_deployments`) with salt 0 through the
//! deterministic deployment proxy, so their addresses depend only on their bytecode, and
//! `script/Deploy.s.sol` (forge) puts them at the same addresses. EntryPoint v0.8 and the proxy
//! are prerequisites, not ours to deploy: every chain sak targets has them at their canonical
//! addresses, and a chain without them gets an error that says so. Running it again sends
//! nothing.

use crate::{
    ctx::{Chain, Ctx},
    output::{self, Hinted},
};
use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::{TransactionRequest, state::StateOverridesBuilder},
};
use clap::Args;
use eyre::WrapErr;
use sak_contracts::{CREATE2_DEPLOYER, ENTRY_POINT_V08, sak_deployments};
use serde::Serialize;

fn format_ether(wei: U256) -> String {
    sak_primitives::units::format_amount(wei, Some(18))
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  sak --network sepolia deploy --dry-run\n  sak --network sepolia deploy\n  \
                  sak --network sepolia deploy --dry-run --json\n\n\
                  The owner key pays. EntryPoint v0.8 and the CREATE2 deployer must already be on the chain.\n\
                  On local and fork networks `sak node up` has deployed everything: deploy only reports."
)]
pub(crate) struct DeployArgs {
    /// Show what is deployed and what would be, and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// One contract in `sak deploy --json`.
#[derive(Debug, Serialize)]
struct Row {
    /// `CREATE2 deployer`, `EntryPoint v0.8`, `SessionAdapter`, `SakAccount`, `SakAccountFactory`,
    /// `Sak7702Account`, `SessionKeyValidator`, `Sak7579Account`, `Sak7579AccountFactory`.
    name: &'static str,
    /// Where it is (or will be): the same on every chain.
    address: Address,
    /// `prerequisite` (must be there already) or `sak` (deployed by this command).
    role: &'static str,
    /// `present` (code already there), `deployed` (by this run) or `would-deploy` (dry run).
    status: &'static str,
    /// The deployment transaction (status `deployed`), else null.
    tx: Option<B256>,
    /// Gas: used (`deployed`) or estimated (`would-deploy`).
    gas: Option<u64>,
}

/// What `sak deploy` prints. Field names are part of the `--json` interface.
#[derive(Debug, Serialize)]
struct Deployed {
    /// The network's name in the config.
    network: String,
    /// The chain the endpoint reported.
    chain_id: u64,
    /// `--dry-run`: nothing was sent.
    dry_run: bool,
    /// The owner key's address, which pays (null when there is no owner key and nothing to do).
    payer: Option<Address>,
    /// Its balance before, in wei (hex quantity).
    payer_balance: Option<U256>,
    /// Estimated cost of what is missing, in wei (hex quantity: gas estimate × max fee per gas);
    /// null when nothing is missing.
    estimated_cost: Option<U256>,
    contracts: Vec<Row>,
    /// Transactions sent by this run (0: nothing was missing, or a dry run).
    sent: usize,
}

pub(crate) async fn run(args: DeployArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = ctx.chain().await?;
    let mut rows = Vec::new();
    for (name, address, fix) in [
        (
            "CREATE2 deployer",
            CREATE2_DEPLOYER,
            "sak deploys through the deterministic deployment proxy (same addresses on every chain); \
             this chain lacks it: use a chain that has it",
        ),
        (
            "EntryPoint v0.8",
            ENTRY_POINT_V08,
            "sak's accounts need the canonical EntryPoint v0.8: use a chain that has it, or deploy it there \
             first (its published initcode through the CREATE2 deployer, with its published salt)",
        ),
    ] {
        if chain.provider.get_code_at(address).await.wrap_err("eth_getCode")?.is_empty() {
            return Err(Hinted::new(
                format!(
                    "no {name} at {address} on chain {} (network `{}`)",
                    chain.chain_id, ctx.network_name
                ),
                fix,
            )
            .into());
        }
        rows.push(Row { name, address, role: "prerequisite", status: "present", tx: None, gas: None });
    }

    let payer = ctx.owner_address().ok();
    let mut missing = Vec::new();
    for contract in sak_deployments() {
        let address = contract.address;
        let present = !chain.provider.get_code_at(address).await.wrap_err("eth_getCode")?.is_empty();
        rows.push(Row {
            name: contract.name,
            address,
            role: "sak",
            status: if present { "present" } else { "would-deploy" },
            tx: None,
            gas: None,
        });
        if !present {
            let tx = TransactionRequest::default().with_to(CREATE2_DEPLOYER).with_input(contract.calldata());
            missing.push((rows.len() - 1, tx));
        }
    }

    let mut out = Deployed {
        network: ctx.network_name.clone(),
        chain_id: chain.chain_id,
        dry_run: args.dry_run,
        payer,
        payer_balance: None,
        estimated_cost: None,
        contracts: rows,
        sent: 0,
    };
    if let Some(payer) = payer {
        out.payer_balance = Some(chain.provider.get_balance(payer).await.wrap_err("eth_getBalance")?);
    }
    if !missing.is_empty() {
        let from = payer.unwrap_or(Address::ZERO);
        let mut total_gas = 0u64;
        // Each estimate sees the contracts before it as deployed (a placeholder byte of code):
        // the factory's constructor refuses an implementation address without code.
        let mut earlier = StateOverridesBuilder::default();
        for (row, tx) in &missing {
            let gas = chain
                .provider
                .estimate_gas(tx.clone().with_from(from))
                .overrides(earlier.clone().build())
                .await
                .wrap_err_with(|| format!("estimating the deployment of {}", out.contracts[*row].name))?;
            earlier = earlier.with_code(out.contracts[*row].address, [0x00]);
            out.contracts[*row].gas = Some(gas);
            total_gas += gas;
        }
        let fees = chain.provider.estimate_eip1559_fees().await.wrap_err("estimating fees")?;
        out.estimated_cost = Some(U256::from(total_gas) * U256::from(fees.max_fee_per_gas));
        if !args.dry_run {
            deploy_missing(ctx, &chain, &mut out, &missing).await?;
        }
    }

    output::emit(&ctx.global, &out, || human(&out))
}

async fn deploy_missing(
    ctx: &Ctx,
    chain: &Chain,
    out: &mut Deployed,
    missing: &[(usize, TransactionRequest)],
) -> eyre::Result<()> {
    let payer = ctx.owner_address()?;
    let balance = out.payer_balance.unwrap_or_default();
    let need = out.estimated_cost.unwrap_or_default();
    if balance < need {
        let fund = if ctx.kind().is_anvil() {
            "fund it with `sak node fund owner --eth 1`".to_owned()
        } else if ctx.kind() == crate::config::NetworkKind::Sepolia {
            format!(
                "send at least {} Sepolia ETH to {payer} (a Sepolia faucet), then run `sak deploy` again",
                format_ether(need - balance)
            )
        } else {
            format!(
                "send at least {} ETH on chain {} to {payer}, then run `sak deploy` again",
                format_ether(need - balance),
                chain.chain_id
            )
        };
        return Err(Hinted::new(
            format!(
                "the owner {payer} has {} ETH; deploying {} contract{} needs about {} ETH",
                format_ether(balance),
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                format_ether(need)
            ),
            fund,
        )
        .into());
    }
    let key = ctx.owner().await?;
    let wallet = ctx.owner_provider(chain, &key)?;
    for (row, tx) in missing {
        let (name, address) = (out.contracts[*row].name, out.contracts[*row].address);
        output::progress(&ctx.global, &format!("deploying {name} at {address}…"));
        let receipt = wallet
            .send_transaction(tx.clone())
            .await
            .wrap_err_with(|| format!("sending the deployment of {name}"))?
            .get_receipt()
            .await
            .wrap_err_with(|| format!("waiting for the deployment of {name}"))?;
        out.sent += 1;
        eyre::ensure!(
            receipt.status(),
            "the deployment of {name} reverted (tx {})",
            receipt.transaction_hash
        );
        if chain.provider.get_code_at(address).await?.is_empty() {
            eyre::bail!(
                "the CREATE2 deployer accepted {name} (tx {}) but {address} has no code",
                receipt.transaction_hash
            );
        }
        let r = &mut out.contracts[*row];
        r.status = "deployed";
        r.tx = Some(receipt.transaction_hash);
        r.gas = Some(receipt.gas_used);
    }
    Ok(())
}

fn human(out: &Deployed) -> String {
    let mut s = format!("network {}, chain {}\n", out.network, out.chain_id);
    for r in &out.contracts {
        let status = match (r.status, r.role) {
            ("present", "prerequisite") => "present (prerequisite)".to_owned(),
            ("deployed", _) => format!("deployed now, tx {}", r.tx.unwrap_or_default()),
            ("would-deploy", _) => format!("would deploy (~{} gas)", r.gas.unwrap_or_default()),
            (other, _) => other.to_owned(),
        };
        s += &format!("  {:<18} {}  {status}\n", r.name, r.address);
    }
    let todo = out.contracts.iter().filter(|r| r.status == "would-deploy").count();
    s += &if out.dry_run && todo > 0 {
        format!(
            "dry run: nothing sent; {todo} to deploy for about {} ETH, paid by {}",
            format_ether(out.estimated_cost.unwrap_or_default()),
            out.payer
                .map_or_else(|| "the owner key (none yet: `sak owner new`)".to_owned(), |p| p.to_string())
        )
    } else if out.sent > 0 {
        format!("sent {} transaction{}", out.sent, if out.sent == 1 { "" } else { "s" })
    } else {
        "nothing sent: everything is already deployed".to_owned()
    };
    s
}
