//! The facade's main flows, run for real on a local anvil with only the library: a home, the
//! owner's account, a granted session, a guarded swap, a refusal, the doctor, the audit, a
//! revoke; then the example price bot against the same home.

use alloy::{primitives::B256, providers::Provider};
use sak::{
    Home, Options, PolicyFile, U256,
    agent::{self, Agent, SwapRequest},
    audit,
    config::{Config, Paths},
    doctor::Doctor,
    node::{Kit, Profile},
    owner,
    store::{AccountKind, NodeFile},
};
use sak_contracts::MockERC20;
use sak_signer::keystore::{self, LocalKey, Password, PasswordSource};
use std::{os::unix::fs::PermissionsExt, path::Path};

const OWNER_PASSWORD: &str = "owner password of the flows test";
const POLICY: &str = r#"
role = "trader"
router = "uniswap-v2-router"
valid_for = "7d"

[gas]
budget = "0.1 ether"
period = "1d"

[[spend]]
token = "tUSD"
amount = "1000"
period = "1d"
"#;

/// The session keys' passphrase: `$SAK_KEY_PASSWORD` when set (the home reads it first), else
/// the answer the home's `ask` gives.
fn key_passphrase() -> String {
    std::env::var("SAK_KEY_PASSWORD").unwrap_or_else(|_| "session keys of the flows test".into())
}

/// A home in `dir` on `kit`'s chain (recorded as this process's node), with an owner keystore
/// and one session key `bot`.
fn home_on(kit: &Kit, dir: &Path) -> (Paths, Options) {
    let paths = Paths { config_file: dir.join("config.toml"), data_dir: dir.join("data") };
    std::fs::create_dir_all(&paths.data_dir).unwrap();
    Config::default().save(&paths.config_file).unwrap();
    NodeFile::of(kit, std::process::id()).save(&paths.node_file()).unwrap();

    let owner_password = dir.join("owner-password");
    std::fs::write(&owner_password, OWNER_PASSWORD).unwrap();
    std::fs::set_permissions(&owner_password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let password = Password::new(OWNER_PASSWORD.as_bytes().to_vec()).unwrap();
    keystore::save(&paths.owner_key(), &LocalKey::generate().unwrap(), &password).unwrap();
    let passphrase = Password::new(key_passphrase().into_bytes()).unwrap();
    keystore::save(&paths.session_keys_dir().join("bot.json"), &LocalKey::generate().unwrap(), &passphrase)
        .unwrap();

    let answer = key_passphrase();
    let options =
        Options::default().password(PasswordSource::File(owner_password)).ask(move |_| Ok(answer.clone()));
    (paths, options)
}

fn swap(amount: &str) -> SwapRequest {
    SwapRequest {
        router: None,
        token_in: "tUSD".into(),
        token_out: "TKN".into(),
        amount: amount.into(),
        min_out: "0".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_grants_a_bot_swaps_within_its_cap_and_is_stopped_by_the_chain() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (paths, options) = home_on(&kit, dir.path());
    let home = Home::at(paths.clone(), options.clone()).unwrap();
    let chain = home.chain().await.unwrap();

    // The owner's account: made once, named `main`; made again, nothing changes.
    let info = owner::create_account(&home, &chain, AccountKind::Smart, B256::ZERO, None).await.unwrap();
    assert!(info.created && info.name == "main" && info.default && info.home_is_owner, "{info:?}");
    let again = owner::create_account(&home, &chain, AccountKind::Smart, B256::ZERO, None).await.unwrap();
    assert!(!again.created && again.address == info.address);
    let account = info.address;
    let usd = 10u64.pow(6);
    home.fund_from_dev(
        &chain,
        account,
        U256::from(10u64).pow(U256::from(18u64)),
        U256::from(5_000 * usd),
        U256::ZERO,
    )
    .await
    .unwrap();

    // A dry run resolves the policy and sends nothing; the grant records session 1.
    let file = PolicyFile::from_toml(POLICY).unwrap();
    let dry = owner::grant(&home, &chain, "bot", &file, true).await.unwrap();
    assert_eq!((dry.id, dry.transaction), (None, None));
    let granted = owner::grant(&home, &chain, "bot", &file, false).await.unwrap();
    assert_eq!(granted.id, Some(1));
    assert_eq!(home.session_record(account, 1).unwrap().unwrap().key_name, "bot");

    // A swap within the cap lands and moves the account's tUSD.
    let tusd = MockERC20::new(chain.contracts.local.unwrap().usd, &chain.provider);
    let before = tusd.balanceOf(account).call().await.unwrap();
    let session = agent::Options::new(1);
    let (calls, plan) = agent::swap_calls(&swap("300"), &chain, account).await.unwrap();
    let report =
        Agent::open(&session, &home, &chain).await.unwrap().run("swap", calls, Some(plan)).await.unwrap();
    assert_eq!(report.state, "included", "{report:?}");
    let tx = report.transaction.expect("an included swap has a transaction");
    assert!(chain.provider.get_transaction_receipt(tx).await.unwrap().unwrap().status());
    assert_eq!(before - tusd.balanceOf(account).call().await.unwrap(), U256::from(300 * usd));

    // Over what is left of the day's cap (700): refused before anything is signed.
    let (calls, plan) = agent::swap_calls(&swap("800"), &chain, account).await.unwrap();
    let err =
        Agent::open(&session, &home, &chain).await.unwrap().run("swap", calls, Some(plan)).await.unwrap_err();
    assert!(err.hinted().is_some_and(|h| h.refused && h.refusal.is_some()), "{err:#}");
    assert_eq!(before - tusd.balanceOf(account).call().await.unwrap(), U256::from(300 * usd));

    // The doctor finds nothing wrong; the audit has both decisions.
    let report = Doctor::begin(paths.clone(), options.clone()).await.finish(Some(1)).await;
    assert_eq!(report.failed(), 0, "{:#?}", report.checks);
    let audited =
        audit::audit(&home, &audit::Options::new(sak::units::unix_now()), Some(&chain)).await.unwrap();
    assert_eq!((audited.allowed, audited.refused), (1, 1), "{audited:?}");

    // The price bot (examples/price_bot.rs) trades on the same home and stops at the cap: two
    // rounds buy 300 each, the third is refused (1,200 > 1,000 a day).
    price_bot(dir.path());
    assert_eq!(before - tusd.balanceOf(account).call().await.unwrap(), U256::from(900 * usd));

    // Revoked: the chain ends the session; a swap is refused.
    let owner_key = home.owner().await.unwrap();
    let wallet = home.owner_provider(&chain, &owner_key).unwrap();
    owner::send_revoke(&home, &wallet, account, 1).await.unwrap();
    let (calls, plan) = agent::swap_calls(&swap("10"), &chain, account).await.unwrap();
    let refused = match Agent::open(&session, &home, &chain).await {
        Ok(agent) => agent.run("swap", calls, Some(plan)).await.unwrap_err(),
        Err(e) => e,
    };
    assert!(refused.hinted().is_some_and(|h| h.refused), "{refused:#}");
}

/// Runs the example bot built beside this test (session 1, any price, 300 tUSD a round, three
/// rounds) on the home in `dir`; it must end on the session's refusal, with exit status 0.
fn price_bot(dir: &Path) {
    let test = std::env::current_exe().unwrap();
    let bot = test.parent().and_then(Path::parent).unwrap().join("examples").join("price_bot");
    assert!(bot.exists(), "{} is missing: `cargo build -p sak --examples` builds it", bot.display());
    let out = std::process::Command::new(&bot)
        .args(["1", "1000000", "300", "3"])
        .env("SAK_HOME", dir)
        .env("SAK_KEY_PASSWORD", key_passphrase())
        .env_remove("SAK_NETWORK")
        .env_remove("SAK_ACCOUNT")
        .env_remove("SAK_RPC_URL")
        .env_remove("SAK_SESSION_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the bot failed ({}):\n{stdout}\n{stderr}", out.status);
    assert_eq!(stdout.matches("bought: included").count(), 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("the session refuses"), "{stdout}\n{stderr}");
}
