//! `script/Deploy.s.sol` (forge) and `sak deploy` put the same contracts at the same addresses:
//! each deploys onto a fresh anvil, and the other then finds everything already there.

mod common;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use common::{Home, Run, block_on};
use sak_contracts::{ENTRY_POINT_V08, sak_deployments};
use sak_testkit::{AnvilNode, Profile, Toolchain, deploy_entry_point};
use std::{path::Path, process::Command};

const SEPOLIA: u64 = 11_155_111;

/// A bare anvil (only what anvil preinstalls, the CREATE2 deployer among it) for `chain_id`.
fn bare_anvil(toolchain: &Toolchain, chain_id: u64) -> (AnvilNode, DynProvider) {
    let mut profile = Profile::test();
    profile.chain_id = chain_id;
    let anvil = AnvilNode::spawn(&toolchain.anvil().unwrap(), &profile).unwrap();
    let wallet = EthereumWallet::from(anvil.dev_signers()[0].clone());
    let provider =
        ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint().parse().unwrap()).erased();
    (anvil, provider)
}

/// `forge script script/Deploy.s.sol --broadcast` against `rpc_url`, sent from anvil's unlocked
/// first dev account (no key on the command line). Returns the run and the (name, address,
/// status) rows the script logged.
fn forge_script(rpc_url: &str) -> (Run, Vec<(String, Address, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let broadcast = tempfile::tempdir().unwrap();
    let out = Command::new(root.join("node_modules/.bin/forge"))
        .current_dir(&root)
        .args(["script", "script/Deploy.s.sol", "--rpc-url", rpc_url, "--broadcast", "--unlocked"])
        .args(["--sender", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"])
        // The script needs contracts/src only: compiling the test suite too (the default) took
        // minutes on a loaded 2-core machine.
        .args(["--skip", "test"])
        // Broadcast records go to a throwaway folder, not into the checkout.
        .env("FOUNDRY_BROADCAST", broadcast.path())
        .env_remove("FOUNDRY_PROFILE")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    let names: Vec<&str> = sak_deployments().iter().map(|c| c.name).collect();
    let rows = run
        .stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            if !names.contains(&name) {
                return None;
            }
            Some((name.to_owned(), words.next()?.parse().ok()?, words.next()?.to_owned()))
        })
        .collect();
    (run, rows)
}

fn code_at(provider: &DynProvider, address: Address) -> Vec<u8> {
    block_on(async { provider.get_code_at(address).await }).unwrap().to_vec()
}

#[test]
fn forge_script_and_sak_deploy_agree_on_every_address() {
    let toolchain = Toolchain::locate().unwrap();
    let expected: Vec<(String, Address)> = sak_deployments().map(|c| (c.name.to_owned(), c.address)).to_vec();

    // Chain A (31337): the script refuses a chain without EntryPoint v0.8, then sak deploys.
    let (a, a_rpc) = bare_anvil(&toolchain, 31_337);
    let (run, rows) = forge_script(a.endpoint());
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(format!("{}{}", run.stdout, run.stderr).contains("no EntryPoint v0.8 at"), "{run:?}");
    assert!(rows.is_empty());
    block_on(deploy_entry_point(&a_rpc, &toolchain)).unwrap();
    let home = Home::new();
    home.sak(&["init", "--network", "a", "--rpc-url", a.endpoint(), "--chain-id", "31337"]).ok();
    let owner = home.json(&["owner", "new"])["owner"]["address"].as_str().unwrap().to_owned();
    let _: () =
        block_on(a_rpc.raw_request("anvil_setBalance".into(), (owner, U256::from(10u128.pow(19))))).unwrap();
    let by_sak = home.json(&["--network", "a", "deploy"]);
    assert_eq!(by_sak["sent"], 7, "{by_sak}");
    let sak_rows: Vec<(String, Address)> = by_sak["contracts"].as_array().unwrap()[2..]
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["address"].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(sak_rows, expected);

    // Chain B (the Sepolia chain id): the script deploys at the same addresses. A CREATE2
    // address commits to the initcode, so this is the same bytecode, compiled by forge here and
    // by `cargo xtask artifacts` there. (Runtime code differs per chain: EIP-712 immutables.)
    let (b, b_rpc) = bare_anvil(&toolchain, SEPOLIA);
    block_on(deploy_entry_point(&b_rpc, &toolchain)).unwrap();
    let (run, rows) = forge_script(b.endpoint());
    assert_eq!(run.code, 0, "{run:?}");
    let by_script: Vec<(String, Address)> = rows.iter().map(|(n, a, _)| (n.clone(), *a)).collect();
    assert_eq!(by_script, expected, "{}", run.stdout);
    assert!(rows.iter().all(|(.., status)| status == "deploying"), "{}", run.stdout);
    for (name, address) in &expected {
        assert!(!code_at(&b_rpc, *address).is_empty(), "no {name} on chain B");
    }
    assert!(
        run.stdout.contains(&format!("{:<24}  {ENTRY_POINT_V08}  present", "EntryPoint v0.8")),
        "{}",
        run.stdout
    );

    // Each finds the other's deployment complete and sends nothing.
    let (run, rows) = forge_script(a.endpoint());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(rows.len(), 7, "{}", run.stdout);
    assert!(rows.iter().all(|(.., status)| status == "present"), "{}", run.stdout);
    let sepolia = SEPOLIA.to_string();
    home.sak(&["init", "--force", "--network", "b", "--rpc-url", b.endpoint(), "--chain-id", &sepolia]).ok();
    let again = home.json(&["--network", "b", "deploy"]);
    assert_eq!(again["sent"], 0, "{again}");
    assert!(again["contracts"].as_array().unwrap().iter().all(|c| c["status"] == "present"), "{again}");

    // `sak node up`'s chain has them already; the script checks and agrees.
    let node = Home::with_node();
    let (run, rows) = forge_script(node.rpc_url.as_deref().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    let on_node: Vec<(String, Address)> = rows.iter().map(|(n, a, _)| (n.clone(), *a)).collect();
    assert_eq!(on_node, expected);
    assert!(rows.iter().all(|(.., status)| status == "present"), "{}", run.stdout);
}
