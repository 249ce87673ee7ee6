//! Things in words: what a refusal says in the user's units, a policy line by line, a
//! function by its name.
//!
//! What a refusal says, in the user's units: amounts with their decimals and symbol, tokens by
//! their names, times in UTC and from now. The `--json` document keeps the raw values (`refusal.detail`).

use crate::Chain;
use alloy::primitives::{Address, U256};
use sak_policy::Refusal;
use sak_primitives::{
    Policy,
    units::{format_amount, format_period, format_time_from},
};

/// `refusal` in words at chain time `now`. `token` names a token and gives its decimals (None:
/// base units).
pub fn refusal_in_words(
    refusal: &Refusal,
    now: u64,
    token: impl Fn(Address) -> (String, Option<u8>),
) -> String {
    let amount = |raw: U256, t: Address| {
        let (name, decimals) = token(t);
        format!("{} {name}", sak_primitives::units::format_amount(raw, decimals))
    };
    let eth = |wei: U256| format!("{} ETH", sak_primitives::units::format_amount(wei, Some(18)));
    let renews = |at: Option<u64>| {
        at.map(|t| format!("; it renews at {}", format_time_from(t, now))).unwrap_or_default()
    };
    match refusal {
        Refusal::SpendCapExceeded { token, requested, remaining, resets_at } => format!(
            "SpendCapExceeded: {} requested, {} remains in this period{}",
            amount(*requested, *token),
            amount(*remaining, *token),
            renews(*resets_at)
        ),
        Refusal::GasBudgetExceeded { requested, remaining, resets_at } => format!(
            "GasBudgetExceeded: up to {} of gas requested, {} remains{}",
            eth(*requested),
            eth(*remaining),
            renews(*resets_at)
        ),
        Refusal::ValueNotPermitted { target, selector, value } => format!(
            "ValueNotPermitted: {} {selector} may not carry value ({})",
            token(*target).0,
            eth(*value)
        ),
        Refusal::CallNotPermitted { target, selector } => {
            format!("CallNotPermitted: {} {selector} is not permitted by the session", token(*target).0)
        }
        other => other.to_string(),
    }
}

/// Functions sak's roles permit, by selector: (name, signature).
pub fn selector_name(selector: alloy::primitives::Selector) -> Option<(&'static str, &'static str)> {
    const KNOWN: [&str; 8] = [
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
        "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
        "swapExactETHForTokens(uint256,address[],address,uint256)",
        "swapETHForExactTokens(uint256,address[],address,uint256)",
        "transfer(address,uint256)",
        "approve(address,uint256)",
        "transferFrom(address,address,uint256)",
    ];
    if selector == sak_primitives::ETH_SEND {
        return Some(("(plain ETH send)", ""));
    }
    KNOWN.iter().find(|sig| alloy::primitives::keccak256(sig.as_bytes())[..4] == selector[..]).map(|sig| {
        let name = &sig[..sig.find('(').unwrap_or(sig.len())];
        (name, *sig)
    })
}

/// A policy in words, one line per grant; times also relative to `now`.
pub fn describe_policy(policy: &Policy, chain: &Chain, now: u64) -> String {
    let c = &chain.contracts;
    let mut s = format!(
        "  valid      {} .. {}\n",
        format_time_from(policy.valid_after, now),
        format_time_from(policy.valid_until, now)
    );
    for p in &policy.permissions {
        s += &format!(
            "  allow      {} {}{}{}\n",
            c.name(p.target),
            selector_name(p.selector).map_or_else(|| p.selector.to_string(), |(name, _)| name.to_owned()),
            if p.allow_value { " (with ETH)" } else { "" },
            p.conditions.iter().map(|c| format!(", {}", describe_condition(c))).collect::<String>()
        );
    }
    for l in &policy.spend_limits {
        let decimals = if l.token == sak_primitives::NATIVE { Some(18) } else { c.decimals(l.token) };
        s += &format!(
            "  cap        {} {} per {}{}\n",
            format_amount(l.allowance, decimals),
            if l.token == sak_primitives::NATIVE { "ETH".into() } else { c.name(l.token) },
            format_period(u64::from(l.period)),
            if l.transfer { ", transfer to anyone" } else { "" },
        );
    }
    s += &match policy.gas {
        sak_primitives::Gas::SponsoredOnly => "  gas        sponsored only\n".to_owned(),
        sak_primitives::Gas::Unlimited => "  gas        unlimited\n".to_owned(),
        sak_primitives::Gas::Budget { wei, period } => {
            format!(
                "  gas        {} ETH per {}\n",
                format_amount(wei, Some(18)),
                format_period(u64::from(period))
            )
        }
    };
    s += &fee_caps_line(policy).unwrap_or_default();
    if policy.max_ops > 0 {
        s += &format!("  operations at most {}\n", policy.max_ops);
    }
    s
}

/// The session's fee caps as one line of a description, if it has any.
pub fn fee_caps_line(policy: &Policy) -> Option<String> {
    let fee = (policy.max_fee_per_gas > 0).then(|| {
        format!("at most {} gwei per gas", format_amount(U256::from(policy.max_fee_per_gas), Some(9)))
    });
    let pvg = (policy.max_pre_verification_gas > 0)
        .then(|| format!("preVerificationGas at most {}", policy.max_pre_verification_gas));
    let parts: Vec<String> = [fee, pvg].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| format!("  {:<10} {}\n", "fees", parts.join(", ")))
}

fn describe_condition(c: &sak_primitives::Condition) -> String {
    use sak_primitives::Op;
    let (arg, ty) = (c.arg, c.ty);
    let show = |v: &alloy::primitives::B256| if ty.is_word() { v.to_string() } else { ty.show((*v).into()) };
    match &c.op {
        Op::EqAccount => format!("arg {arg} = the account"),
        Op::Eq { value } => format!("arg {arg} ({ty}) = {}", show(value)),
        Op::Lte { value } => format!("arg {arg} ({ty}) <= {}", ty.show(*value)),
        Op::Gte { value } => format!("arg {arg} ({ty}) >= {}", ty.show(*value)),
        Op::OneOf { values } => format!("arg {arg} ({ty}) one of {} values", values.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    #[test]
    fn amounts_and_times_read_as_the_user_writes_them() {
        let usd = address!("0x00000000000000000000000000000000000A11cE");
        let book = |t: Address| if t == usd { ("tUSD".to_owned(), Some(6)) } else { (t.to_string(), None) };
        let r = Refusal::SpendCapExceeded {
            token: usd,
            requested: U256::from(300_000_000u64),
            remaining: U256::from(100_500_000u64),
            resets_at: Some(1_796_497_589),
        };
        assert_eq!(
            refusal_in_words(&r, 1_796_497_589 - 3 * 3_600, book),
            "SpendCapExceeded: 300 tUSD requested, 100.5 tUSD remains in this period; it renews at 2026-12-05 19:06:29 UTC (in 3 h)"
        );
        let unknown = Refusal::SpendCapExceeded {
            token: Address::ZERO,
            requested: U256::from(7),
            remaining: U256::ZERO,
            resets_at: None,
        };
        assert!(
            refusal_in_words(&unknown, 0, book).starts_with("SpendCapExceeded: 7 (base units) 0x0000"),
            "base units without decimals"
        );
        assert_eq!(refusal_in_words(&Refusal::EmptyBatch, 0, book), Refusal::EmptyBatch.to_string());
    }
}
