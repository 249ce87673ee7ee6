//! Things in words: what a refusal says in the user's units, a function by its name.
//!
//! What a refusal says, in the user's units: amounts with their decimals and symbol, tokens by
//! their names, times in UTC and from now. The `--json` document keeps the raw values (`refusal.detail`).

use alloy::primitives::{Address, U256};
use sak_policy::Refusal;
use sak_primitives::units::format_time_from;

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
