//! The cases, each in its own snapshot of the fork, and what they observed.

use super::*;

/// Cases 1 to 7 on an active session, each from the snapshot `base`.
pub(super) async fn run_cases(
    on: &mut OnFork<'_>,
    chain: &Chain,
    plan: Option<(Plan, U256)>,
    mut base: serde_json::Value,
    say: &impl Fn(&str),
) -> Result<(Vec<CaseRow>, Vec<AssetRow>)> {
    let fork = on.fork;
    let account = on.account;
    let (id, policy) = (on.id, on.policy);
    let deadline = |now: u64| now + 600;
    let skip_no_plan = "the policy permits no operation sak can build (no capped token, no ETH recipient)";
    let mut rows: Vec<CaseRow> = Vec::new();
    let mut assets = Vec::new();
    let mut step = 0;
    let mut next_case = |title: &str| {
        step += 1;
        say(&format!("case {step}/7: {title}…"));
    };
    let reset = async |base: &mut serde_json::Value| -> Result<()> {
        fork.revert(base.clone()).await?;
        *base = fork.snapshot().await?;
        Ok(())
    };

    // 1 + 7: the allowed operation, and what it did to the account's assets.
    next_case("the allowed operation must succeed");
    match plan {
        Some((p, amount)) => {
            let now = fork.time().await?;
            let min_out = swap_quote(fork, p, amount).await;
            let calls = p.calls(account, amount, min_out, deadline(now));
            let tracked = tracked_assets(fork, chain, policy).await;
            let before = holdings(fork, account, &tracked).await?;
            let outcome = on.attempt(&calls).await?;
            let after = holdings(fork, account, &tracked).await?;
            let (row, gas) = expect_success(p.describe(amount, chain), outcome);
            let succeeded = row.pass;
            rows.push(row);
            if succeeded {
                assets = isolation(chain, &tracked, &before, &after, p, amount, gas);
            }
            reset(&mut base).await?;
        }
        None => {
            rows.push(skipped("allowed", "an operation the policy permits".into(), "success", skip_no_plan))
        }
    }

    // 2: the same, over what remains of the cap.
    next_case("the same over the cap must be refused");
    match plan {
        Some((p, _)) => {
            let remaining = on.remaining(p.token()).await?;
            let over = remaining + U256::from(1);
            let calls = p.calls(account, over, U256::from(1), deadline(fork.time().await?));
            let title = format!("{} (what remains of the cap this period + 1)", p.describe(over, chain));
            let outcome = on.attempt(&calls).await?;
            rows.push(expect_refusal("over-cap", title, "SpendCapExceeded", outcome));
            reset(&mut base).await?;
        }
        None => rows.push(skipped(
            "over-cap",
            "the allowed operation over the cap".into(),
            "SpendCapExceeded",
            skip_no_plan,
        )),
    }

    // 3: a foreign target: the main call, sent to a fresh address.
    next_case("a foreign target must be refused");
    let main_call = plan.map(|(p, amount)| {
        p.calls(account, amount, U256::from(1), u64::MAX / 2).pop().expect("every plan has a call")
    });
    let foreign = fresh(account, id, "target");
    let foreign_call = match &main_call {
        Some(c) => Call { target: foreign, ..c.clone() },
        None => Call::contract(
            foreign,
            &MockERC20::transferCall { to: fresh(account, id, "recipient"), value: U256::from(1) },
        ),
    };
    let title = format!(
        "{} to {foreign}, a fresh address the policy does not name",
        if main_call.is_some() { "the allowed operation's call" } else { "transfer(..)" }
    );
    let outcome = on.attempt(std::slice::from_ref(&foreign_call)).await?;
    rows.push(expect_refusal("foreign-target", title, "CallNotPermitted", outcome));
    reset(&mut base).await?;

    // 4: a function the policy does not permit on a target it does (a token is called by the
    // account, anything else through the adapter).
    next_case("a wrong selector on a permitted target must be refused");
    let target = plan.map(|(p, _)| p.target()).or_else(|| {
        policy
            .permissions
            .first()
            .map(|p| p.target)
            .or_else(|| policy.spend_limits.iter().map(|l| l.token).find(|t| *t != NATIVE))
    });
    match target.and_then(|t| wrong_selector_call(policy, t, account, fresh(account, id, "recipient"))) {
        Some((call, function)) => {
            let title = format!(
                "{function}(..) on {}, which the policy does not permit there",
                chain.contracts.name(call.target)
            );
            let element = if policy.spend_limit(call.target).is_some() {
                call
            } else {
                through_adapter(SakAddresses::canonical().adapter_of(account), &call, &[])
            };
            let outcome = on.attempt(&[element]).await?;
            rows.push(expect_refusal("wrong-selector", title, "CallNotPermitted", outcome));
            reset(&mut base).await?;
        }
        None => rows.push(skipped(
            "wrong-selector",
            "a function the policy does not permit on a permitted target".into(),
            "CallNotPermitted",
            "the policy names no target",
        )),
    }

    // 5 and 6 need no permitted operation: the session's state is checked before its calls,
    // so without one any call shows it (the foreign call above).
    let probe = |now: u64| match plan {
        Some((p, amount)) => {
            (p.calls(account, amount, U256::from(1), deadline(now)), "the allowed operation")
        }
        None => (vec![foreign_call.clone()], "a call (the policy permits none)"),
    };

    // 5: past validUntil.
    next_case("after expiry the allowed operation must be refused");
    fork.warp_to(policy.valid_until + 1).await?;
    let (calls, what) = probe(fork.time().await?);
    let title = format!(
        "the fork's clock moved past validUntil ({}); then {what}",
        sak_primitives::units::format_time(policy.valid_until)
    );
    let outcome = on.attempt(&calls).await?;
    rows.push(expect_refusal("after-expiry", title, "ClockOutsideSession", outcome));
    reset(&mut base).await?;

    // 6: the owner revokes, then the allowed operation (evm_revert put the clock back).
    next_case("after revocation the allowed operation must be refused");
    let owner = SakAccount::new(account, &fork.provider).owner().call().await.wrap_err("owner()")?;
    let revoke = SakAccount::revokeSessionCall { id };
    fork.send_as(owner, account, revoke.abi_encode().into()).await.wrap_err("revokeSession on the fork")?;
    let (calls, what) = probe(fork.time().await?);
    let title = format!("the owner {owner} (impersonated on the fork) revokes #{id}; then {what}");
    let outcome = on.attempt(&calls).await?;
    rows.push(expect_refusal("after-revoke", title, "SessionNotActive", outcome));
    reset(&mut base).await?;

    // 7
    next_case("the account's other assets must be untouched");
    rows.push(if assets.is_empty() {
        skipped(
            "isolation",
            "the account's other assets around the allowed operation".into(),
            "as the policy allows",
            if plan.is_some() { "the allowed operation did not succeed" } else { skip_no_plan },
        )
    } else {
        let bad: Vec<&AssetRow> = assets.iter().filter(|a| !a.ok).collect();
        let observed = if bad.is_empty() {
            format!("{} assets as allowed", assets.len())
        } else {
            format!(
                "{} changed: {}",
                bad.len(),
                bad.iter().map(|a| a.asset.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        let detail = assets
            .iter()
            .map(|a| format!("{} {} ({})", a.asset, a.change, a.allowed))
            .collect::<Vec<_>>()
            .join("; ");
        row(
            "isolation",
            "ETH beyond gas, every book token the policy does not cap, and the router's WETH".into(),
            "as the policy allows",
            observed,
            Some(detail),
            bad.is_empty(),
        )
    });
    Ok((rows, assets))
}

/// The router's quote less 1% for a swap (1 otherwise, and if the quote fails).
pub(super) async fn swap_quote(fork: &Fork, plan: Plan, amount: U256) -> U256 {
    let Plan::Swap { router, token, other } = plan else { return U256::from(1) };
    let quote = IUniswapV2Router02::new(router, &fork.provider)
        .getAmountsOut(amount, vec![token, other])
        .call()
        .await
        .ok()
        .and_then(|a| a.last().copied())
        .unwrap_or_default();
    (quote * U256::from(99) / U256::from(100)).max(U256::from(1))
}

/// ETH, every token of the address book, and the WETH of every permitted router.
pub(super) async fn tracked_assets(fork: &Fork, chain: &Chain, policy: &Policy) -> Vec<(String, Address)> {
    let mut out = vec![("ETH".to_owned(), NATIVE)];
    let mut push = |name: String, token: Address| {
        if !out.iter().any(|(_, t)| *t == token) {
            out.push((name, token));
        }
    };
    for (_, token, decimals) in &chain.contracts.book {
        if decimals.is_some() {
            push(chain.contracts.name(*token), *token);
        }
    }
    let swap = IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR;
    for p in policy.permissions.iter().filter(|p| p.selector.0 == swap) {
        if let Ok(weth) = IUniswapV2Router02::new(p.target, &fork.provider).WETH().call().await {
            push(chain.contracts.name(weth), weth);
        }
    }
    for l in &policy.spend_limits {
        if l.token != NATIVE {
            push(chain.contracts.name(l.token), l.token);
        }
    }
    out
}

pub(super) async fn holdings(
    fork: &Fork,
    account: Address,
    assets: &[(String, Address)],
) -> Result<Vec<U256>> {
    let mut out = Vec::with_capacity(assets.len());
    for (name, token) in assets {
        out.push(fork.balance_of(*token, account).await.wrap_err_with(|| format!("the account's {name}"))?);
    }
    Ok(out)
}

/// Property 7: the allowed operation moved only what its policy lets it move.
pub(super) fn isolation(
    chain: &Chain,
    assets: &[(String, Address)],
    before: &[U256],
    after: &[U256],
    plan: Plan,
    amount: U256,
    gas: U256,
) -> Vec<AssetRow> {
    let decimals = |token: Address| if token == NATIVE { Some(18) } else { chain.contracts.decimals(token) };
    assets
        .iter()
        .zip(before.iter().zip(after))
        .map(|((name, token), (b, a))| {
            let (b, a, token) = (*b, *a, *token);
            let show = |v: U256| sak_primitives::units::format_amount(v, decimals(token));
            let change = if a == b {
                "0".into()
            } else if a > b {
                format!("+{}", a - b)
            } else {
                format!("-{}", b - a)
            };
            let spent = b.saturating_sub(a);
            let (allowed, ok) = if token == NATIVE {
                let native = if plan.token() == NATIVE { amount } else { U256::ZERO };
                (
                    format!(
                        "at most -{} ETH: the operation's gas{}",
                        show(gas + native),
                        if native.is_zero() { "" } else { " and value" }
                    ),
                    spent <= gas + native && a <= b,
                )
            } else if token == plan.token() {
                (
                    format!("at most -{} (the allowed operation, within the cap)", show(amount)),
                    spent <= amount && a <= b,
                )
            } else if matches!(plan, Plan::Swap { other, .. } if other == token) {
                ("none out; the swap's output comes in".to_owned(), a >= b)
            } else {
                ("unchanged (not in the session)".to_owned(), a == b)
            };
            AssetRow {
                asset: if token == NATIVE {
                    "ETH (balance + EntryPoint deposit)".into()
                } else {
                    name.clone()
                },
                token: (token != NATIVE).then_some(token),
                before: b.to_string(),
                after: a.to_string(),
                change,
                allowed,
                ok,
            }
        })
        .collect()
}

pub(super) fn row(
    case: &'static str,
    title: String,
    expected: &str,
    observed: String,
    detail: Option<String>,
    pass: bool,
) -> CaseRow {
    CaseRow {
        case,
        title,
        expected: expected.into(),
        observed,
        detail,
        tx: None,
        user_op_hash: None,
        result: if pass { "pass" } else { "fail" },
        pass,
    }
}

pub(super) fn skipped(case: &'static str, title: String, expected: &str, why: &str) -> CaseRow {
    CaseRow {
        result: "skip",
        pass: false,
        ..row(case, title, expected, "skipped".into(), Some(why.into()), false)
    }
}

/// A case that must succeed; returns the row and the gas the account paid.
pub(super) fn expect_success(title: String, outcome: Outcome) -> (CaseRow, U256) {
    match outcome {
        Outcome::Success { tx, user_op_hash, gas } => {
            let detail = format!("included in fork tx {tx}; the account paid {gas} wei of gas");
            (
                CaseRow {
                    tx: Some(tx),
                    user_op_hash: Some(user_op_hash),
                    ..row("allowed", title, "success", "success".into(), Some(detail), true)
                },
                gas,
            )
        }
        Outcome::ExecutionReverted { tx, user_op_hash, reason } => (
            CaseRow {
                tx: Some(tx),
                user_op_hash: Some(user_op_hash),
                ..row("allowed", title, "success", "execution reverted".into(), Some(reason), false)
            },
            U256::ZERO,
        ),
        Outcome::Refused(r) => {
            (row("allowed", title, "success", r.name().into(), Some(r.to_string()), false), U256::ZERO)
        }
        Outcome::Error(e) => (row("allowed", title, "success", short(&e), Some(e), false), U256::ZERO),
    }
}

/// A case the contracts must refuse with `expected`.
pub(super) fn expect_refusal(case: &'static str, title: String, expected: &str, outcome: Outcome) -> CaseRow {
    match outcome {
        Outcome::Refused(r) => {
            let pass = r.name() == expected;
            row(case, title, expected, r.name().into(), Some(format!("refused by the contracts: {r}")), pass)
        }
        Outcome::Success { tx, user_op_hash, .. } => CaseRow {
            tx: Some(tx),
            user_op_hash: Some(user_op_hash),
            ..row(
                case,
                title,
                expected,
                "success".into(),
                Some(format!("the chain ACCEPTED it (fork tx {tx})")),
                false,
            )
        },
        Outcome::ExecutionReverted { tx, user_op_hash, reason } => CaseRow {
            tx: Some(tx),
            user_op_hash: Some(user_op_hash),
            ..row(
                case,
                title,
                expected,
                "validated, then reverted".into(),
                Some(format!("the session's validation ACCEPTED it; its execution reverted: {reason}")),
                false,
            )
        },
        Outcome::Error(e) => row(case, title, expected, short(&e), Some(e), false),
    }
}

pub(super) fn short(text: &str) -> String {
    let first = text.split(": ").next().unwrap_or(text);
    if first.chars().count() > 48 {
        format!("{}…", first.chars().take(47).collect::<String>())
    } else {
        first.to_owned()
    }
}
