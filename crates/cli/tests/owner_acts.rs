//! The owner's own acts on its account, as a user runs them: `sak account call`, `withdraw`,
//! `approvals` and `revoke-approval`, on a smart account (owner user operations) and on a
//! delegated EOA (its own transactions). Each is a dry run first, asks, and sends only when
//! told to (`--yes`, or an answer on a terminal): a script without `--yes` sends nothing.

mod common;

use alloy::{
    primitives::{Address, U256, address},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use common::{Home, block_on};
use sak_contracts::{MockERC20, MockPermit2};
use sak_primitives::PERMIT2;
use serde_json::{Value, json};

const DEAD: Address = address!("0x000000000000000000000000000000000000dEaD");
const BEEF: Address = address!("0x000000000000000000000000000000000000bEEF");

fn provider(home: &Home) -> DynProvider {
    ProviderBuilder::new().connect_http(home.rpc_url.as_deref().unwrap().parse().unwrap()).erased()
}

fn token(home: &Home, name: &str) -> Address {
    let show = home.json(&["account", "show"]);
    let b = show["balances"].as_array().unwrap().iter().find(|b| b["asset"] == name).unwrap();
    b["address"].as_str().unwrap().parse().unwrap()
}

fn allowances(home: &Home) -> Vec<(String, String, String, String)> {
    home.json(&["account", "approvals"])["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (s("kind"), s("token_name"), s("spender"), s("amount"))
        })
        .collect()
}

fn owner_acts_on(kind: &str) {
    let home = Home::with_node();
    let account: Address = home.owner_and_account(kind).parse().unwrap();
    let p = provider(&home);
    let usd = token(&home, "tUSD");
    let allowance = |spender: Address| {
        block_on(async { MockERC20::new(usd, &p).allowance(account, spender).call().await }).unwrap()
    };
    assert_eq!(home.json(&["account", "approvals"])["approvals"], json!([]));

    // A script without --yes: the dry run runs, nothing is sent (exit 1, the JSON error says so).
    let approve = [
        "account",
        "call",
        "--to",
        "tUSD",
        "--sig",
        "approve(address,uint256)",
        "0x000000000000000000000000000000000000dEaD",
        "1000000000",
    ];
    let refused = home.sak(&[&["--json"][..], &approve[..]].concat()).fails(1);
    assert_eq!(refused.json()["state"], "refused");
    assert!(refused.json()["error"]["hint"].as_str().unwrap().contains("--yes"), "{}", refused.stdout);
    let human = home.sak(&approve).fails(1);
    assert!(human.stderr.contains("not confirmed"), "{}", human.stderr);
    // --dry-run: exit 0, nothing sent.
    let dry = home.json(&[&approve[..], &["--dry-run"]].concat());
    assert_eq!((dry["dry_run"].as_bool(), dry["transaction"].is_null()), (Some(true), true));
    assert_eq!(allowance(DEAD), U256::ZERO, "nothing was sent");

    // --yes: the account approves; `approvals` finds it from the chain.
    let done = home.json(&[&approve[..], &["--yes"]].concat());
    assert_eq!(done["dry_run"], false);
    assert!(done["transaction"].as_str().unwrap().starts_with("0x"));
    assert_eq!(allowance(DEAD), U256::from(1_000_000_000u64));
    home.owner_call("tUSD", "approve(address,uint256)", &[&BEEF.to_string(), &U256::MAX.to_string()]);
    // JSON addresses are lowercase; the command line takes either.
    let (dead, beef) = (format!("{DEAD:#x}"), format!("{BEEF:#x}"));
    assert_eq!(
        allowances(&home),
        vec![
            ("erc20".into(), "tUSD".into(), beef.clone(), "unlimited".into()),
            ("erc20".into(), "tUSD".into(), dead.clone(), "1000".into()),
        ]
    );
    let listed = home.json(&["account", "approvals"]);
    assert_eq!(
        listed["approvals"][1]["fix"],
        format!("sak account revoke-approval --token tUSD --spender {DEAD}")
    );
    assert_eq!(listed["permit2_on_chain"], false);

    // Permit2 (its allowance part, etched at the canonical address): found and revoked too.
    let code = MockPermit2::DEPLOYED_BYTECODE.clone();
    let _: Value = block_on(p.raw_request("anvil_setCode".into(), (PERMIT2, code))).unwrap();
    let far = (u64::from(u32::MAX)).to_string();
    home.owner_call(
        &PERMIT2.to_string(),
        "approve(address,address,uint160,uint48)",
        &["tUSD", &dead, "500000000", &far],
    );
    assert!(allowances(&home).contains(&("permit2".into(), "tUSD".into(), dead.clone(), "500".into())));
    home.json(&["account", "revoke-approval", "--token", "tUSD", "--spender", &dead, "--permit2", "--yes"]);
    let permit2 =
        block_on(async { MockPermit2::new(PERMIT2, &p).allowance(account, usd, DEAD).call().await }).unwrap();
    assert_eq!(permit2.amount, alloy::primitives::aliases::U160::ZERO);
    assert!(!allowances(&home).iter().any(|a| a.0 == "permit2"));

    // revoke-approval: to 0, then there is nothing left to revoke (no transaction).
    let revoked = home.json(&["account", "revoke-approval", "--token", "tUSD", "--spender", &beef, "--yes"]);
    assert!(
        revoked["transaction"].is_string() && revoked["summary"].as_str().unwrap().contains("was unlimited"),
        "{revoked}"
    );
    assert_eq!(allowance(BEEF), U256::ZERO);
    let again = home.json(&["account", "revoke-approval", "--token", "tUSD", "--spender", &beef]);
    assert!(again["transaction"].is_null(), "{again}");
    assert!(again["summary"].as_str().unwrap().ends_with("to revoke: it is 0"), "{again}");
    assert_eq!(allowances(&home), vec![("erc20".into(), "tUSD".into(), dead.clone(), "1000".into())]);

    // withdraw: a token and ETH; more than the balance fails in the dry run, nothing sent.
    let before = block_on(async { MockERC20::new(usd, &p).balanceOf(account).call().await }).unwrap();
    home.json(&["account", "withdraw", "--to", &beef, "--token", "tUSD", "--amount", "12.5", "--yes"]);
    assert_eq!(
        block_on(async { MockERC20::new(usd, &p).balanceOf(BEEF).call().await }).unwrap(),
        U256::from(12_500_000u64)
    );
    assert_eq!(
        block_on(async { MockERC20::new(usd, &p).balanceOf(account).call().await }).unwrap(),
        before - U256::from(12_500_000u64)
    );
    home.json(&["account", "withdraw", "--to", &beef, "--amount", "0.25", "--yes"]);
    assert_eq!(
        block_on(async { p.get_balance(BEEF).await }).unwrap(),
        U256::from(250_000_000_000_000_000u64)
    );
    let too_much = home
        .sak(&["account", "withdraw", "--to", &beef, "--token", "tUSD", "--amount", "1000000", "--yes"])
        .fails(2);
    assert!(
        too_much.stderr.contains("dry run") && too_much.stderr.contains("nothing was sent"),
        "{}",
        too_much.stderr
    );
    home.sak(&["account", "withdraw", "--to", &beef, "--amount", "lots", "--yes"]).fails(2);
    // On a terminal it shows the dry run and asks: "n" sends nothing (exit 1), "y" sends.
    let token_balance =
        |who| block_on(async { MockERC20::new(usd, &p).balanceOf(who).call().await }).unwrap();
    let (sent, withdraw) =
        (token_balance(BEEF), ["account", "withdraw", "--to", &beef, "--token", "tUSD", "--amount", "1"]);
    let declined = home.on_terminal(&home.command(&withdraw), &[("[y/N]", "n")]);
    assert_eq!(declined.code, 1, "{}{}", declined.stdout, declined.stderr);
    assert!(
        declined.stdout.contains("[y/N]") && declined.stdout.contains("declined"),
        "{}{}",
        declined.stdout,
        declined.stderr
    );
    assert_eq!(token_balance(BEEF), sent);
    let accepted = home.on_terminal(&home.command(&withdraw), &[("[y/N]", "y")]);
    assert_eq!(accepted.code, 0, "{}", accepted.stdout);
    assert_eq!(token_balance(BEEF), sent + U256::from(1_000_000u64));

    // Panic: every session ended and every live allowance zeroed, in one owner transaction.
    let id = home.trader_session("bot").to_string();
    home.owner_call(
        &PERMIT2.to_string(),
        "approve(address,address,uint160,uint48)",
        &["tUSD", &dead, "7", &far],
    );
    home.sak(&["session", "panic"]).fails(1);
    assert_eq!(allowances(&home).len(), 2, "nothing sent without --yes");
    let dry = home.json(&["session", "panic", "--dry-run"]);
    assert!(dry["summary"].as_str().unwrap().contains("set 2 allowances to 0"), "{dry}");
    let done = home.json(&["session", "panic", "--yes"]);
    assert_eq!(done["calls"].as_array().unwrap().len(), 3, "{done}");
    assert!(done["transaction"].is_string());
    assert_eq!(allowances(&home), Vec::new());
    assert_eq!(home.json(&["session", "list"])["sessions"][0]["status"], "revoked");
    home.swap(&id, "1", &[]).fails(1);
}

#[test]
fn a_smart_accounts_owner_calls_withdraws_and_revokes_approvals() {
    owner_acts_on("smart");
}

#[test]
fn a_delegated_eoa_calls_withdraws_and_revokes_approvals() {
    owner_acts_on("7702");
}
