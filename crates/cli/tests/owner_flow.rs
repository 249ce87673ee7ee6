//! `sak init`, `node status|down|fund`, `owner`, `account`, `key`, `session grant|list` as a user
//! runs them, with their JSON and exit codes, and bad input for each.

mod common;

use common::Home;

#[test]
fn an_owner_goes_from_nothing_to_a_granted_session() {
    let home = Home::with_node();
    let init = home.json(&["init"]);
    assert_eq!(init["network"], "local");
    assert!(home.path().join("config.toml").exists());

    let status = home.json(&["node", "status"]);
    assert_eq!(status["running"], true);
    assert_eq!(status["chain_id"], 31337);

    let owner = home.json(&["owner", "new"]);
    let owner_address = owner["owner"]["address"].as_str().unwrap().to_owned();
    assert_eq!(owner["owner"]["mode"], "600");
    // A second `owner new` never overwrites the key: refused, exit 1.
    home.sak(&["owner", "new"]).fails(1);

    // The owner has no ETH yet: on a local chain `account create` funds it from a dev account.
    let shown = home.json(&["owner", "show"]);
    assert_eq!(shown["address"].as_str().unwrap(), owner_address);
    assert_eq!(shown["balance_wei"], "0x0");

    let created = home.json(&["account", "create", "--kind", "smart"]);
    assert_eq!(created["created"], true);
    assert_ne!(home.json(&["owner", "show"])["balance_wei"], "0x0", "funded from the dev account");
    assert!(created["code_size"].as_u64().unwrap() > 0);
    let again = home.json(&["account", "create", "--kind", "smart"]);
    assert_eq!(again["created"], false, "idempotent");
    assert_eq!(again["address"], created["address"]);

    let key = home.json(&["key", "new", "--name", "bot"]);
    home.sak(&["key", "new", "--name", "bot"]).fails(1);
    home.sak(&["key", "new", "--name", "../evil"]).fails(2);
    let granted = home.json(&[
        "session",
        "grant",
        "--key",
        "bot",
        "--role",
        "trader",
        "--cap",
        "tUSD:1000/1d",
        "--expires",
        "7d",
    ]);
    assert_eq!(granted["id"], 1);
    assert_eq!(granted["key"], key["address"]);
    let cap = &granted["policy"]["spend_limits"][0];
    assert_eq!(cap["allowance"], "0x3b9aca00", "1,000 tUSD in base units");

    let list = home.json(&["session", "list"]);
    assert_eq!(list["sessions"][0]["status"], "active");
    assert_eq!(list["sessions"][0]["key_name"], "bot");
    let keys = home.json(&["key", "list"]);
    assert_eq!(keys["keys"][0]["sessions"][0]["id"], 1);

    // A second account needs a name: nothing is sent and the default stays.
    let unnamed = home.sak(&["account", "create", "--kind", "7702"]).fails(2);
    assert!(unnamed.stderr.contains("--name"), "{}", unnamed.stderr);
    assert_eq!(home.json(&["account", "show"])["address"], created["address"]);
    // The 7702 account: the owner EOA itself, idempotent too.
    let eoa = home.json(&["account", "create", "--kind", "7702", "--name", "eoa"]);
    assert_eq!(eoa["address"].as_str().unwrap().to_lowercase(), owner_address.to_lowercase());
    assert_eq!(eoa["code_size"], 23);
    assert_eq!((&eoa["name"], &eoa["default"]), (&"eoa".into(), &false.into()));
    assert_eq!(
        home.json(&["account", "create", "--kind", "7702"])["created"],
        false,
        "known: its name is found"
    );
    // A name is one account's: another salt under `main` is refused.
    let taken =
        home.sak(&["account", "create", "--salt", &format!("0x{}", "1".repeat(64)), "--name", "main"]);
    assert!(taken.fails(2).stderr.contains("taken"));

    // Commands act on the default unless --account names another.
    let main = home.json(&["account", "show"]);
    assert_eq!(
        (&main["name"], &main["default"], &main["kind"]),
        (&"main".into(), &true.into(), &"smart".into())
    );
    assert_eq!(home.json(&["--account", "eoa", "account", "show"])["address"], eoa["address"]);
    assert_eq!(home.json(&["account", "show", "--account", &owner_address])["name"], "eoa", "by address too");
    let unknown = home.sak(&["account", "show", "--account", "nope"]).fails(2);
    assert!(
        unknown.stderr.contains("main, eoa") || unknown.stderr.contains("eoa, main"),
        "{}",
        unknown.stderr
    );
    // A grant under --account goes to that account, its ids its own.
    home.sak(&["key", "new", "--name", "eoa-bot"]).ok();
    let on_eoa = home.json(&[
        "--account",
        "eoa",
        "session",
        "grant",
        "--key",
        "eoa-bot",
        "--role",
        "viewer",
        "--expires",
        "1d",
    ]);
    assert_eq!((&on_eoa["id"], &on_eoa["account"]), (&1.into(), &eoa["address"]));
    assert_eq!(home.json(&["session", "list"])["sessions"][0]["key_name"], "bot", "the default's session 1");
    let listed = home.json(&["account", "list"]);
    let names: Vec<(&str, bool)> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["default"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, [("eoa", false), ("main", true)]);
    // Only `account use` moves the default.
    assert_eq!(home.json(&["account", "use", "eoa"])["previous"], "main");
    assert_eq!(home.json(&["account", "show"])["name"], "eoa");
    home.sak(&["account", "use", "main"]).ok();

    let down = home.json(&["node", "down"]);
    assert_eq!(down["stopped"], true);
    assert_eq!(home.json(&["node", "status"])["running"], false);
    // Chain gone: a clear error naming `sak node up`.
    let gone = home.sak(&["session", "list"]).fails(2);
    assert!(gone.stderr.contains("sak node up"), "{}", gone.stderr);
}

#[test]
fn grant_refuses_bad_policies_with_the_field_and_a_hint() {
    let home = Home::with_node();
    home.owner_and_account("smart");
    home.sak(&["key", "new", "--name", "bot"]).ok();

    let bad_cap =
        home.sak(&["session", "grant", "--key", "bot", "--role", "trader", "--cap", "tUSD:1000"]).fails(2);
    assert!(bad_cap.stderr.contains("TOKEN:AMOUNT/PERIOD"), "{}", bad_cap.stderr);
    let unknown_token =
        home.sak(&["session", "grant", "--key", "bot", "--role", "trader", "--cap", "DOGE:1/1d"]).fails(2);
    assert!(unknown_token.stderr.contains("DOGE"), "{}", unknown_token.stderr);
    let unknown_key = home.sak(&["session", "grant", "--key", "nobody", "--role", "trader"]).fails(2);
    assert!(unknown_key.stderr.contains("sak key new"), "{}", unknown_key.stderr);

    let file = home.path().join("policy.toml");
    std::fs::write(
        &file,
        "role = \"trader\"\nvalid_for = \"1d\"\n[[spend]]\ntoken = \"tUSD\"\namount = \"0\"\n",
    )
    .unwrap();
    let zero = home.sak(&["session", "grant", "--key", "bot", "--policy", file.to_str().unwrap()]).fails(2);
    assert!(zero.stderr.contains("spend[0]"), "{}", zero.stderr);
    std::fs::write(&file, "role = \"trader\"\nvalid_fro = \"1d\"\n").unwrap();
    let typo = home.sak(&["session", "grant", "--key", "bot", "--policy", file.to_str().unwrap()]).fails(2);
    assert!(typo.stderr.contains("valid_fro"), "{}", typo.stderr);

    // Dry run: the resolved policy, nothing sent.
    let dry = home.json(&[
        "session",
        "grant",
        "--key",
        "bot",
        "--role",
        "trader",
        "--cap",
        "tUSD:10/1h",
        "--dry-run",
    ]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["id"].is_null());
    assert!(dry.get("warnings").is_none());

    // A generic dispatcher is refused unless the owner says so, and then warned about loudly.
    let multicall = ["session", "grant", "--key", "bot", "--allow", "uniswap-v2-router:multicall(bytes[])"];
    let refused = home.sak(&[&multicall[..], &["--expires", "1d", "--dry-run"]].concat()).fails(2);
    assert!(refused.stderr.contains("multicall(bytes[]) is a generic dispatcher"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--allow-dispatchers"), "{}", refused.stderr);
    let allowed = home
        .sak(&[&multicall[..], &["--expires", "1d", "--dry-run", "--allow-dispatchers", "--json"]].concat())
        .ok();
    assert!(
        allowed.stderr.contains("warning: the session may call the generic dispatcher"),
        "{}",
        allowed.stderr
    );
    let warnings = allowed.json()["warnings"].as_array().unwrap().len();
    assert_eq!(warnings, 1);
    assert!(home.json(&["session", "list"])["sessions"].as_array().unwrap().is_empty());
}

#[test]
fn commands_without_set_up_say_what_to_run_first() {
    let home = Home::new();
    // No chain running for the local network.
    let no_chain = home.sak(&["account", "show"]).fails(2);
    assert!(no_chain.stderr.contains("sak node up"), "{}", no_chain.stderr);
    // No owner key.
    let no_owner = home.sak(&["owner", "show"]).fails(2);
    assert!(no_owner.stderr.contains("sak owner new"), "{}", no_owner.stderr);
    // No password in the environment.
    let run = common::Run::from_output(
        home.command(&["owner", "new"]).env_remove("SAK_PASSWORD").output().unwrap(),
    );
    let no_password = run.fails(2);
    assert!(no_password.stderr.contains("SAK_PASSWORD"), "{}", no_password.stderr);
    // A config that no longer parses: named, and `sak init --force` rewrites it.
    std::fs::write(home.path().join("config.toml"), "network = \"local\"\nnetworkz = 1\n").unwrap();
    let broken = home.sak(&["account", "show"]).fails(2);
    assert!(
        broken.stderr.contains("networkz") && broken.stderr.contains("sak init --force"),
        "{}",
        broken.stderr
    );
    home.sak(&["init", "--force"]).ok();
    assert!(home.sak(&["account", "show"]).stderr.contains("sak node up"), "the config reads again");
    // Unknown network.
    let unknown = home.sak(&["--network", "mainnet", "account", "show"]).fails(2);
    assert!(unknown.stderr.contains("sak init --network mainnet"), "{}", unknown.stderr);
    // Sepolia without its URL variable.
    let run = common::Run::from_output(
        home.command(&["--network", "sepolia", "account", "show"])
            .env_remove("SEPOLIA_RPC_URL")
            .output()
            .unwrap(),
    );
    assert!(run.stderr.contains("SEPOLIA_RPC_URL"), "{}", run.stderr);
    // A keystore others can read is refused, with the chmod that fixes it.
    home.sak(&["key", "new", "--name", "a"]).ok();
    let key_file = home.data().join("keys/session/a.json");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = home.sak(&["key", "export", "a", "--stdout"]).fails(2);
    assert!(loose.stderr.contains("chmod"), "{}", loose.stderr);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A wrong passphrase.
    let run = common::Run::from_output(
        home.command(&["key", "export", "a", "--stdout"]).env("SAK_KEY_PASSWORD", "wrong").output().unwrap(),
    );
    let wrong = run.fails(2);
    assert!(
        wrong.stderr.contains("wrong password") && wrong.stderr.contains("SAK_KEY_PASSWORD"),
        "{}",
        wrong.stderr
    );
    // Session keys are never under the owner's password: it neither opens them nor is needed.
    let key = std::fs::read(&key_file).unwrap();
    assert!(
        sak_signer::keystore::decrypt(&key, &sak_signer::keystore::Password::new(common::PASSWORD).unwrap())
            .is_err()
    );
    assert!(
        sak_signer::keystore::decrypt(
            &key,
            &sak_signer::keystore::Password::new(common::KEY_PASSWORD).unwrap()
        )
        .is_ok()
    );
    let run = common::Run::from_output(
        home.command(&["key", "export", "a", "--stdout"]).env_remove("SAK_PASSWORD").output().unwrap(),
    );
    run.ok();
    let run = common::Run::from_output(
        home.command(&["key", "new", "--name", "b"]).env_remove("SAK_KEY_PASSWORD").output().unwrap(),
    );
    let no_passphrase = run.fails(2);
    assert!(no_passphrase.stderr.contains("SAK_KEY_PASSWORD"), "{}", no_passphrase.stderr);
    // A key an older sak made under the owner's password: named in the hint, and rekeyed.
    let old_key = sak_signer::keystore::LocalKey::generate().unwrap();
    let old_pass = sak_signer::keystore::Password::new(common::PASSWORD).unwrap();
    sak_signer::keystore::save(&home.data().join("keys/session/old.json"), &old_key, &old_pass).unwrap();
    let wrong = home.sak(&["key", "export", "old", "--stdout"]).fails(2);
    assert!(wrong.stderr.contains("sak key rekey"), "{}", wrong.stderr);
    let rekeyed = home.json(&["key", "rekey", "old"]);
    assert_eq!(
        (&rekeyed["rekeyed"], &rekeyed["address"]),
        (&true.into(), &format!("{:#x}", old_key.address()).into())
    );
    home.sak(&["key", "export", "old", "--stdout"]).ok();
    assert_eq!(home.json(&["key", "rekey", "old"])["rekeyed"], false);
    assert!(!home.data().join("keys/session/.old.rekeyed.json").exists());
    // On a terminal it asks instead, without echo, and twice for a new key: a mismatch makes none.
    let typed = |name: &str, answers: &[(&str, &str)]| {
        let mut cmd = home.command(&["key", "new", "--name", name]);
        cmd.env_remove("SAK_KEY_PASSWORD");
        home.on_terminal(&cmd, answers)
    };
    let mismatch = typed("t", &[("passphrase: ", "one"), ("confirm: ", "two")]);
    assert_eq!(mismatch.code, 2, "{}", mismatch.stdout);
    assert!(mismatch.stdout.contains("differ") && !mismatch.stdout.contains("one"), "{}", mismatch.stdout);
    assert!(!home.data().join("keys/session/t.json").exists());
    let made = typed("t", &[("passphrase: ", "typed secret"), ("confirm: ", "typed secret")]);
    assert_eq!(made.code, 0, "{}", made.stdout);
    assert!(!made.stdout.contains("typed secret"), "no echo: {}", made.stdout);
    let file = std::fs::read(home.data().join("keys/session/t.json")).unwrap();
    assert!(
        sak_signer::keystore::decrypt(&file, &sak_signer::keystore::Password::new("typed secret").unwrap())
            .is_ok()
    );
    // Export needs an explicit destination.
    home.sak(&["key", "export", "a"]).fails(1);
    let exported = home.sak(&["key", "export", "a", "--stdout"]).ok();
    assert!(exported.stdout.contains("\"crypto\""), "an encrypted keystore");
    // JSON errors carry the exit code and hint.
    let err = home.sak(&["--json", "key", "export", "a"]);
    let doc: serde_json::Value = serde_json::from_str(err.stdout.trim()).unwrap();
    assert_eq!(doc["error"]["exit_code"], 1);
    assert!(doc["error"]["hint"].as_str().unwrap().contains("--out"));
}

#[test]
fn shell_completions_cover_the_command_tree() {
    let home = Home::new();
    let bash = home.sak(&["completions", "bash"]).ok();
    for word in ["session", "grant", "revoke-all", "verify", "--no-preflight", "doctor", "audit"] {
        assert!(bash.stdout.contains(word), "bash completion lacks {word}");
    }
    let zsh = home.sak(&["completions", "zsh"]).ok();
    assert!(zsh.stdout.starts_with("#compdef sak"), "{}", &zsh.stdout[..40.min(zsh.stdout.len())]);
    home.sak(&["completions", "tcsh"]).fails_without_hint(2);
}

#[test]
fn argument_errors_are_json_under_json() {
    let home = Home::new();
    // An unknown flag, a missing value and a bad value: each the JSON error document, exit 2.
    for args in [
        &["--json", "swap", "--no-such-flag"][..],
        &["session", "show", "--json"][..],
        &["--json", "swap", "--session", "1", "--amount", "ten", "--min-out", "x"][..],
    ] {
        let run = home.sak(args).fails_without_hint(2);
        let doc = run.json();
        assert_eq!(doc["state"], "failed", "{args:?}");
        assert_eq!(doc["error"]["exit_code"], 2, "{args:?}");
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty(), "{args:?}");
        assert!(doc["error"]["hint"].as_str().unwrap().contains("--help"), "{args:?}");
        // stderr keeps clap's own message and usage for a human.
        assert!(run.stderr.contains("error: "), "{}", run.stderr);
    }
    // Without --json: clap's text only, nothing on stdout.
    let plain = home.sak(&["swap", "--no-such-flag"]).fails_without_hint(2);
    assert!(plain.stdout.is_empty(), "{}", plain.stdout);
    // --help stays help (exit 0), whatever --json.
    let help = home.sak(&["--json", "swap", "--help"]).ok();
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);
    let top = home.sak(&["--help"]).ok();
    assert!(top.stdout.contains("3 signed") && top.stdout.contains("4 included"), "{}", top.stdout);
}

/// A home whose owner is on a hardware wallet. This build has no `hardware` feature (CI builds
/// that one with clippy; no device is attached here): naming a device says how to get support,
/// and a home that names one shows its address without reaching it, refuses a second owner, and
/// stops at the device, with the same hint, when it must sign.
#[test]
fn an_owner_on_a_device_is_named_shown_and_reached_only_to_sign() {
    let home = Home::with_node();
    home.sak(&["init"]).ok();
    let no_support = home.sak(&["owner", "use-device", "ledger"]).fails(2);
    assert!(no_support.stderr.contains("--features hardware"), "{}", no_support.stderr);
    assert!(!home.data().join("keys/owner-device.json").exists());

    let device_address = "0x00000000000000000000000000000000000d0E1c";
    std::fs::create_dir_all(home.data().join("keys")).unwrap();
    std::fs::write(
        home.data().join("keys/owner-device.json"),
        format!(r#"{{"device":"ledger","index":0,"address":"{device_address}"}}"#),
    )
    .unwrap();
    let shown = home.json(&["owner", "show"]);
    assert_eq!(
        (&shown["backend"], &shown["address"]),
        (&"ledger".into(), &device_address.to_lowercase().into())
    );
    home.sak(&["owner", "new"]).fails(1);
    let sign = home.sak(&["account", "create", "--kind", "smart"]).fails(2);
    assert!(
        sign.stderr.contains("cannot reach the ledger") && sign.stderr.contains("--features hardware"),
        "{}",
        sign.stderr
    );
}
