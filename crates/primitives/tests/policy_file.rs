//! Policy files: every refusal names its field and gives a hint; roles expand to explicit
//! permissions; the on-chain encoding round-trips.

use alloy::primitives::{Address, I256, U256, address};
use sak_primitives::{
    AddressBook, ArgType, DISPATCHERS, Error, Gas, NATIVE, Op, Policy, PolicyFile, Problem, TRANSFER,
};

const USD: Address = address!("0x00000000000000000000000000000000000a11ce");
const ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
const NOW: u64 = 1_800_000_000;

fn book() -> AddressBook {
    AddressBook::new().with("tUSD", USD, Some(6)).with("router", ROUTER, None)
}

fn resolve(toml: &str) -> Result<Policy, Error> {
    PolicyFile::from_toml(toml)?.resolve(&book(), NOW)
}

/// The field path and problem of a refusal, and a non-empty hint.
fn refused(toml: &str) -> (String, Problem) {
    match resolve(toml) {
        Err(e @ Error::Invalid { .. }) => {
            assert!(!e.hint().is_empty());
            let Error::Invalid { path, problem } = e else { unreachable!() };
            (path, problem)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

const GAS: &str = "gas = { budget = \"0.01 ether\" }\nvalid_for = \"7d\"\n";

#[test]
fn trader_role_expands_to_router_swaps_with_the_account_as_recipient() {
    let policy = resolve(&format!(
        "role = \"trader\"\nrouter = \"router\"\n{GAS}[[spend]]\ntoken = \"tUSD\"\namount = \"500\"\n"
    ))
    .unwrap();
    assert_eq!(policy.valid_after, NOW);
    assert_eq!(policy.valid_until, NOW + 7 * 86_400);
    assert_eq!(policy.gas, Gas::Budget { wei: U256::from(10_000_000_000_000_000u64), period: 86_400 });
    let limit = &policy.spend_limits[0];
    assert_eq!((limit.token, limit.allowance, limit.period), (USD, U256::from(500_000_000u64), 86_400));
    assert!(!limit.transfer, "a trader funds its adapter; it transfers to no one else");
    // Token-to-token and token-to-ETH swaps; the ETH-in swaps need an ETH cap.
    assert_eq!(policy.permissions.len(), 3);
    for p in &policy.permissions {
        assert_eq!(p.target, ROUTER);
        assert!(!p.allow_value);
        assert_eq!(p.conditions.len(), 1);
        assert_eq!(p.conditions[0].op, Op::EqAccount);
        assert_eq!(p.conditions[0].arg, 3);
    }
}

#[test]
fn payer_and_viewer_roles() {
    let payer = resolve(&format!(
        "role = \"payer\"\nrecipients = [\"0x00000000000000000000000000000000000a1ec0\"]\n{GAS}\
         [[spend]]\ntoken = \"tUSD\"\nallowance = 1000\n[[spend]]\ntoken = \"ETH\"\namount = \"0.5\"\n"
    ))
    .unwrap();
    assert!(payer.spend_limits[0].transfer);
    assert_eq!(payer.spend_limits[1].token, NATIVE);
    assert_eq!(payer.spend_limits[1].allowance, U256::from(500_000_000_000_000_000u64));
    assert_eq!(payer.permissions.len(), 1);
    assert!(payer.permissions[0].allow_value);

    let viewer = resolve(&format!("role = \"viewer\"\n{GAS}")).unwrap();
    assert!(viewer.permissions.is_empty() && viewer.spend_limits.is_empty());
    let (path, problem) =
        refused(&format!("role = \"viewer\"\n{GAS}[[spend]]\ntoken = \"tUSD\"\nallowance = 1\n"));
    assert_eq!(path, "spend[0]");
    assert!(matches!(problem, Problem::Conflict { .. }));
}

#[test]
fn explicit_permissions_name_parameters_by_signature() {
    let policy = resolve(&format!(
        "{GAS}[[allow]]\ntarget = \"0x00000000000000000000000000000000000b0b00\"\n\
         function = \"deposit(bytes,uint256,address)\"\n\
         conditions = [{{ arg = 2, op = \"eq-account\" }}, {{ arg = 1, op = \"<=\", value = \"1000\" }}, \
         {{ arg = 1, op = \"one-of\", values = [\"tUSD\", 5] }}]\n"
    ))
    .unwrap();
    let p = &policy.permissions[0];
    assert_eq!(p.selector, alloy::primitives::keccak256("deposit(bytes,uint256,address)")[..4]);
    assert_eq!(p.conditions[0].arg, 2);
    assert_eq!(p.conditions[1].op, Op::Lte { value: U256::from(1000) });
    assert_eq!(p.conditions[2].op, Op::OneOf { values: vec![USD.into_word(), U256::from(5).into()] });

    let (path, problem) = refused(&format!(
        "{GAS}[[allow]]\ntarget = \"router\"\nfunction = \"deposit(bytes,uint256)\"\n\
         conditions = [{{ arg = 0, op = \"==\", value = 1 }}]\n"
    ));
    assert_eq!(path, "allow[0].conditions[0].arg");
    assert_eq!(problem, Problem::DynamicArgument { param: "bytes".into() });
}

#[test]
fn conditions_read_their_argument_as_its_abi_type() {
    // From the signature: int24 compares as signed (a negative bound is written as such),
    // bool takes true/false, and the type travels to the chain.
    let policy = resolve(&format!(
        "{GAS}[[allow]]\ntarget = \"router\"\nfunction = \"mint(int24,int24,bool,uint8)\"\n\
         conditions = [{{ arg = 0, op = \">=\", value = \"-887220\" }}, {{ arg = 1, op = \"<=\", value = 887220 }}, \
         {{ arg = 2, op = \"==\", value = \"true\" }}, {{ arg = 3, op = \"<=\", value = 255 }}]\n"
    ))
    .unwrap();
    let c = &policy.permissions[0].conditions;
    assert_eq!(c[0].ty, ArgType::Int(24));
    assert_eq!(c[0].op, Op::Gte { value: I256::try_from(-887_220).unwrap().into_raw() });
    assert_eq!((c[2].ty, &c[2].op), (ArgType::Bool, &Op::Eq { value: U256::from(1).into() }));
    assert_eq!(c[3].ty, ArgType::Uint(8));
    let config = policy.to_session_config(ROUTER);
    let codes: Vec<u8> = config.permissions[0].conditions.iter().map(|c| c.argType).collect();
    assert_eq!(codes, [0x43, 0x43, 0x81, 1]);
    assert_eq!(Policy::from_session_config(&config).unwrap().permissions, policy.permissions);

    // With a bare selector, <= and >= need the type; a declared type must match the signature.
    let lte = |rest: &str| {
        format!(
            "{GAS}[[allow]]\ntarget = \"router\"\n{rest}\nconditions = [{{ arg = 0, op = \"<=\", value = 5 }}]\n"
        )
    };
    let (path, problem) = refused(&lte("selector = \"0x12345678\""));
    assert_eq!(path, "allow[0].conditions[0].type");
    assert!(matches!(problem, Problem::Conflict { .. }));
    let typed = resolve(&format!(
        "{GAS}[[allow]]\ntarget = \"router\"\nselector = \"0x12345678\"\n\
         conditions = [{{ arg = 0, op = \"<=\", value = -5, type = \"int256\" }}]\n"
    ))
    .unwrap();
    assert_eq!(typed.permissions[0].conditions[0].ty, ArgType::Int(256));
    let (path, _) = refused(&format!(
        "{GAS}[[allow]]\ntarget = \"router\"\nfunction = \"f(uint8)\"\n\
         conditions = [{{ arg = 0, op = \"<=\", value = 5, type = \"int8\" }}]\n"
    ));
    assert_eq!(path, "allow[0].conditions[0].type");

    // Refused: a value outside the type, ordering on a non-number, eq-account on a number.
    for (function, op, value, path) in [
        ("f(uint8)", "<=", "256", "allow[0].conditions[0].value"),
        ("f(int8)", ">=", "-129", "allow[0].conditions[0].value"),
        ("f(bool)", "==", "2", "allow[0].conditions[0].value"),
        ("f(address)", "<=", "5", "allow[0].conditions[0].op"),
        ("f(bytes32)", ">=", "5", "allow[0].conditions[0].op"),
    ] {
        let (at, problem) = refused(&format!(
            "{GAS}[[allow]]\ntarget = \"router\"\nfunction = \"{function}\"\n\
             conditions = [{{ arg = 0, op = \"{op}\", value = \"{value}\" }}]\n"
        ));
        assert_eq!((at.as_str(), function), (path, function), "{problem:?}");
    }
    let (at, _) = refused(&format!(
        "{GAS}[[allow]]\ntarget = \"router\"\nfunction = \"f(uint256)\"\n\
         conditions = [{{ arg = 0, op = \"eq-account\" }}]\n"
    ));
    assert_eq!(at, "allow[0].conditions[0].op");
}

#[test]
fn generic_dispatchers_need_the_owners_explicit_word() {
    for (i, signature) in DISPATCHERS.iter().enumerate() {
        let entry = |how: &str| format!("{GAS}[[allow]]\ntarget = \"router\"\n{how}\n");
        let (path, problem) = refused(&entry(&format!("function = \"{signature}\"")));
        assert_eq!(
            (path.as_str(), &problem),
            ("allow[0]", &Problem::Dispatcher { function: (*signature).into() })
        );
        // By bare selector as well.
        let selector = alloy::json_abi::Function::parse(signature).unwrap().selector();
        let (_, problem) = refused(&entry(&format!("selector = \"{selector}\"")));
        assert!(matches!(problem, Problem::Dispatcher { .. }), "{i}: {problem:?}");
        let policy =
            resolve(&format!("dispatchers = true\n{}", entry(&format!("function = \"{signature}\""))))
                .unwrap();
        assert_eq!(policy.permissions[0].selector, selector);
    }
    // The ERC-4626 deposit and ordinary swaps are not dispatchers.
    for signature in
        ["deposit(uint256,address)", "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"]
    {
        resolve(&format!("{GAS}[[allow]]\ntarget = \"router\"\nfunction = \"{signature}\"\n")).unwrap();
    }
}

#[test]
fn every_refusal_names_its_field() {
    type Case = (&'static str, &'static str, fn(&Problem) -> bool);
    let cases: &[Case] = &[
        (
            "[[spend]]\ntoken = \"DAI\"\nallowance = 1\ntransfer = true",
            "spend[0].token",
            |p| matches!(p, Problem::UnknownName { known, .. } if known.contains(&"tUSD".to_string())),
        ),
        ("[[spend]]\ntoken = \"tUSD\"\nallowance = 0\ntransfer = true", "spend[0].allowance", |p| {
            *p == Problem::ZeroAllowance
        }),
        (
            "[[spend]]\ntoken = \"tUSD\"\nallowance = \"79228162514264337593543950336\"\ntransfer = true",
            "spend[0].allowance",
            |p| matches!(p, Problem::Overflow { .. }),
        ),
        (
            "[[spend]]\ntoken = \"tUSD\"\nallowance = 1\nperiod = \"30s\"\ntransfer = true",
            "spend[0].period",
            |p| *p == Problem::InvalidPeriod { seconds: 30 },
        ),
        (
            "[[spend]]\ntoken = \"tUSD\"\nallowance = 1\ntransfer = true\n[[spend]]\ntoken = \"0x00000000000000000000000000000000000a11ce\"\nallowance = 2\ntransfer = true",
            "spend[1]",
            |p| *p == Problem::Duplicate { first: "spend[0]".into() },
        ),
        ("[[spend]]\ntoken = \"ETH\"\nallowance = 1\ntransfer = true", "spend[0]", |p| {
            matches!(p, Problem::Conflict { .. })
        }),
        ("[[allow]]\ntarget = \"*\"\nselector = \"0x12345678\"", "allow[0].target", |p| {
            *p == Problem::Wildcard
        }),
        (
            "[[allow]]\ntarget = \"0x0000000000000000000000000000000000000000\"\nselector = \"0x12345678\"",
            "allow[0].target",
            |p| *p == Problem::Wildcard,
        ),
        (
            "[[allow]]\ntarget = \"router\"\nselector = \"0x12345678\"\n[[allow]]\ntarget = \"router\"\nselector = \"0x12345678\"",
            "allow[1]",
            |p| *p == Problem::Duplicate { first: "allow[0]".into() },
        ),
        (
            "[[allow]]\ntarget = \"tUSD\"\nfunction = \"transfer(address,uint256)\"",
            "allow[0].selector",
            |p| {
                *p == Problem::NeedsSpendLimit {
                    selector: sak_primitives::Selector::from(TRANSFER).to_string(),
                }
            },
        ),
        ("[[allow]]\ntarget = \"router\"\nselector = \"0x1234\"", "allow[0].selector", |p| {
            matches!(p, Problem::Malformed { .. })
        }),
        ("role = \"admin\"", "role", |p| *p == Problem::UnknownRole { role: "admin".into() }),
    ];
    for (body, field, check) in cases {
        let (path, problem) = refused(&format!("{GAS}{body}\n"));
        assert_eq!(&path, field, "{body}");
        assert!(check(&problem), "{body}: {problem:?}");
    }
}

#[test]
fn time_bounds_and_gas_are_explicit() {
    let (path, problem) = refused("gas = { budget = 1 }\nvalid_until = 1700000000\n");
    assert_eq!(path, "valid_until");
    assert_eq!(problem, Problem::Expired { valid_until: 1_700_000_000, now: NOW });
    let (path, _) = refused("gas = { budget = 1 }\n");
    assert_eq!(path, "valid_for", "a session without an end is refused");
    let (path, _) = refused("valid_for = \"1d\"\n");
    assert_eq!(path, "gas", "no silent gas default");
    let (path, _) = refused("valid_for = \"1d\"\ngas = { budget = 0 }\n");
    assert_eq!(path, "gas.budget", "sponsored-only needs a paymaster");
    let p =
        resolve("valid_for = \"1d\"\npaymaster = \"0x00000000000000000000000000000000000fee01\"\n").unwrap();
    assert_eq!(p.gas, Gas::SponsoredOnly);
    let p = resolve("valid_after = \"2027-02-01T00:00:00Z\"\nvalid_until = \"2027-02-02T00:00:00Z\"\ngas = { budget = \"unlimited\" }\n")
        .unwrap();
    assert_eq!((p.valid_after, p.valid_until), (1_801_440_000, 1_801_526_400));
    assert_eq!(p.gas, Gas::Unlimited);
}

#[test]
fn syntax_errors_name_the_line_and_unknown_fields() {
    let e = PolicyFile::from_toml("valid_for = \"1d\"\nallowence = 5\n").unwrap_err();
    assert!(matches!(e, Error::Syntax { .. }));
    let text = e.to_string();
    assert!(text.contains("allowence") && text.contains("line 2"), "{text}");
    let e = PolicyFile::from_json(r#"{"valid_for": "1d", "spend": [{"token": 5}]}"#).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn json_and_toml_give_the_same_policy_and_the_encoding_round_trips() {
    let toml = format!(
        "role = \"trader\"\nrouter = \"router\"\n{GAS}max_ops = 9\n[[spend]]\ntoken = \"tUSD\"\nallowance = 7\n\
         [[spend]]\ntoken = \"ETH\"\nallowance = \"1 gwei\"\nperiod = \"1h\"\n"
    );
    let file = PolicyFile::from_toml(&toml).unwrap();
    let json = serde_json::to_string(&file).unwrap();
    let from_json = PolicyFile::from_json(&json).unwrap().resolve(&book(), NOW).unwrap();
    let policy = file.resolve(&book(), NOW).unwrap();
    assert_eq!(policy, from_json);
    assert_eq!(policy.permissions.len(), 5, "ETH cap adds the ETH-in swaps");

    let signer = Address::repeat_byte(0x5e);
    let config = policy.to_session_config(signer);
    assert_eq!(config.signer, signer);
    assert_eq!(Policy::from_session_config(&config).unwrap(), policy);
    // The validated model also serialises (for `--json` output) and reads back.
    let again: Policy = serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
    assert_eq!(again, policy);
}

#[test]
fn an_old_file_with_approve_is_refused_with_the_reason() {
    let err = resolve(&format!(
        "role = \"trader\"\nrouter = \"router\"\n{GAS}[[spend]]\ntoken = \"tUSD\"\namount = \"5\"\napprove = true\n"
    ))
    .unwrap_err();
    assert!(err.to_string().starts_with("spend[0].approve: "), "{err}");
    assert!(err.to_string().contains("sessions no longer approve"), "{err}");
}

#[test]
fn fee_caps_are_read_checked_and_round_trip() {
    let p = resolve(
        "valid_for = \"1d\"\n[gas]\nbudget = \"0.01 ether\"\nmax_fee_per_gas = \"20 gwei\"\nmax_pre_verification_gas = 200000\n",
    )
    .unwrap();
    assert_eq!((p.max_fee_per_gas, p.max_pre_verification_gas), (20_000_000_000, 200_000));
    let config = p.to_session_config(Address::repeat_byte(0x5e));
    assert_eq!(config.maxFeePerGas.to::<u64>(), 20_000_000_000);
    assert_eq!(Policy::from_session_config(&config).unwrap(), p);
    // Absent: no cap (0), as the contracts read it.
    let p = resolve(GAS).unwrap();
    assert_eq!((p.max_fee_per_gas, p.max_pre_verification_gas), (0, 0));

    type Case = (&'static str, &'static str, fn(&Problem) -> bool);
    let cases: &[Case] = &[
        ("[gas]\nbudget = 1\nmax_fee_per_gas = \"1100 gwei\"", "gas.max_fee_per_gas", |p| {
            matches!(p, Problem::Overflow { .. })
        }),
        ("[gas]\nbudget = 1\nmax_fee_per_gas = \"fast\"", "gas.max_fee_per_gas", |p| {
            matches!(p, Problem::Malformed { .. })
        }),
        ("[gas]\nbudget = 1\nmax_fee_per_gas = 0", "gas.max_fee_per_gas", |p| *p == Problem::ZeroAllowance),
        ("[gas]\nbudget = 1\nmax_pre_verification_gas = 16777216", "gas.max_pre_verification_gas", |p| {
            matches!(p, Problem::Overflow { .. })
        }),
        (
            "paymaster = \"0x00000000000000000000000000000000000fee01\"\n[gas]\nbudget = 0\nmax_fee_per_gas = 5",
            "gas",
            |p| matches!(p, Problem::Conflict { .. }),
        ),
        // The contracts keep the budget in whole gwei.
        ("[gas]\nbudget = \"1000000001 wei\"", "gas.budget", |p| matches!(p, Problem::Malformed { .. })),
        ("[gas]\nbudget = \"300000 ether\"", "gas.budget", |p| matches!(p, Problem::Overflow { .. })),
    ];
    for (toml, path, expected) in cases {
        let (at, problem) = refused(&format!("valid_for = \"1d\"\n{toml}\n"));
        assert_eq!(&at, path, "{toml}");
        assert!(expected(&problem), "{toml}: {problem:?}");
    }
}
