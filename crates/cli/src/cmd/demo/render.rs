//! The demo's report in words and tables: amounts in whole units, times in UTC, refusals
//! explained. A child module of the demo, so it reads the report's fields directly.

use super::*;

/// The refusal in words, amounts in whole units and times readable (the Display of
/// [`Refusal`] is in base units).
pub(super) fn describe_refusal(r: &Refusal) -> String {
    match r {
        Refusal::SpendCapExceeded { requested, remaining, resets_at, .. } => format!(
            "SpendCapExceeded: {} tUSD requested, {} tUSD remains in this period{}",
            amount(*requested, 6),
            amount(*remaining, 6),
            resets_at.map(|t| format!("; it renews at {}", time(t))).unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

pub(super) fn check(name: &str, ok: bool) -> Check {
    Check { name: name.to_owned(), ok }
}

pub(super) enum Delta {
    Plus(U256),
    Minus(U256),
}

pub(super) fn isolation(
    asset: &'static str,
    token: Option<Address>,
    before: U256,
    after: U256,
    allowed: Delta,
    allowed_change: String,
) -> Isolation {
    let (change, ok) = if after >= before {
        let up = after - before;
        (
            up.to_string(),
            match allowed {
                Delta::Plus(v) => up == v,
                Delta::Minus(v) => up.is_zero() && v.is_zero(),
            },
        )
    } else {
        let down = before - after;
        (format!("-{down}"), matches!(allowed, Delta::Minus(v) if v == down))
    };
    Isolation {
        asset,
        token,
        before: before.to_string(),
        after: after.to_string(),
        change,
        allowed_change,
        ok,
    }
}

impl Isolation {
    /// (decimals, places shown): ETH with enough places to see gas.
    fn units(&self) -> (u8, usize) {
        match self.asset {
            "tUSD" => (6, 4),
            a if a.starts_with("ETH") => (18, 6),
            _ => (18, 4),
        }
    }

    fn show(&self, v: U256) -> String {
        let (decimals, places) = self.units();
        amount_to(v, decimals, places)
    }

    pub(super) fn before_h(&self) -> String {
        self.show(self.before.parse().unwrap_or_default())
    }

    pub(super) fn after_h(&self) -> String {
        self.show(self.after.parse().unwrap_or_default())
    }

    pub(super) fn change_h(&self) -> String {
        let (sign, digits) = self.change.strip_prefix('-').map_or(("+", self.change.as_str()), |d| ("-", d));
        let v: U256 = digits.parse().unwrap_or_default();
        if v.is_zero() { "0".into() } else { format!("{sign}{}", self.show(v)) }
    }
}

// ---------------------------------------------------------------------------------------------
// Human output
// ---------------------------------------------------------------------------------------------

impl Report {
    pub(super) fn human(&self) -> String {
        let a = &self.addresses;
        let mut s = String::new();
        s +=
            &format!("sak demo: {}\n\n", if self.ok { "ran as expected" } else { "DID NOT run as expected" });
        for (k, v) in [
            ("owner", a.owner.to_string()),
            ("smart account", a.account.to_string()),
            ("7702 EOA", format!("{} (code {})", a.eoa_7702, a.eoa_7702_code)),
            ("session key", a.session_key.to_string()),
            (
                "session",
                format!(
                    "#{} trader via router {}, cap {} tUSD/day",
                    self.session.id,
                    short(self.session.router),
                    amount(self.session.cap_per_period.parse().unwrap_or_default(), 6)
                ),
            ),
        ] {
            s += &format!("  {k:<14} {v}\n");
        }
        s += "\n";
        let header = [
            "#",
            "who",
            "what was tried",
            "result",
            "decided by",
            "tUSD spent",
            "TKN received",
            "gas (ETH)",
            "paid by",
        ];
        let mut rows: Vec<[String; 9]> = vec![header.map(str::to_owned)];
        for st in &self.steps {
            let result = match st.error {
                Some(e) => format!("refused: {e}"),
                None => st.result.to_owned(),
            };
            rows.push([
                st.n.to_string(),
                st.actor.to_owned(),
                st.action.clone(),
                result,
                st.decided_by.unwrap_or("-").to_owned(),
                dash(amount(st.tusd_spent.parse().unwrap_or_default(), 6)),
                dash(amount(st.tkn_received.parse().unwrap_or_default(), 18)),
                dash(gas(st.gas_wei.parse().unwrap_or_default())),
                st.gas_paid_by.filter(|_| st.gas_wei != "0").unwrap_or("-").to_owned(),
            ]);
        }
        let t = &self.totals;
        rows.push([
            String::new(),
            String::new(),
            format!(
                "bot total: {} allowed, {} refused locally, {} by the chain",
                t.swaps_allowed, t.refused_local, t.refused_chain
            ),
            String::new(),
            String::new(),
            amount(t.tusd_spent.parse().unwrap_or_default(), 6),
            amount(t.tkn_received.parse().unwrap_or_default(), 18),
            gas(t.session_gas_wei.parse().unwrap_or_default()),
            "account".into(),
        ]);
        s += &table(&rows, &[false, false, false, false, false, true, true, true, false]);

        s += "\nThe account's assets (before the bot -> after)\n";
        let mut rows =
            vec![["asset", "before", "after", "change", "allowed by the policy", "check"].map(str::to_owned)];
        for i in &self.isolation {
            rows.push([
                i.asset.to_owned(),
                i.before_h(),
                i.after_h(),
                i.change_h(),
                i.allowed_change.clone(),
                if i.ok { "ok".into() } else { "UNEXPECTED".into() },
            ]);
        }
        s += &table(&rows, &[false, true, true, true, false, false]);
        s += &format!(
            "\nAudit log: {} decisions ({} allowed, {} refused). Gas budget used on chain: {} of {} ETH.\n",
            self.audit_log.decisions,
            self.audit_log.allowed,
            self.audit_log.refused,
            amount(t.gas_budget_used_wei.parse().unwrap_or_default(), 18),
            self.session
                .gas_budget_wei
                .as_deref()
                .map_or_else(|| "unlimited".into(), |w| amount(w.parse().unwrap_or_default(), 18)),
        );
        let passed = self.checks.iter().filter(|c| c.ok).count();
        s += &format!("Checks: {passed}/{} passed", self.checks.len());
        for c in self.checks.iter().filter(|c| !c.ok) {
            s += &format!("\n  FAILED: {}", c.name);
        }
        s
    }
}

pub(super) fn dash(s: String) -> String {
    if s == "0" { "-".into() } else { s }
}

pub(super) fn table<const N: usize>(rows: &[[String; N]], right: &[bool; N]) -> String {
    let widths: Vec<usize> =
        (0..N).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = (0..N)
            .map(|c| {
                if right[c] {
                    format!("{:>w$}", row[c], w = widths[c])
                } else {
                    format!("{:<w$}", row[c], w = widths[c])
                }
            })
            .collect();
        s += &format!("  {}\n", cells.join("  ").trim_end());
        if i == 0 {
            s += &format!("  {}\n", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
        }
    }
    s
}

/// `value` in whole units with thousands separators and at most 4 decimals (trailing zeros
/// trimmed).
pub(super) fn amount(value: U256, decimals: u8) -> String {
    amount_to(value, decimals, 4)
}

/// Wei as ETH with 6 decimals: enough to see what one operation costs.
pub(super) fn gas(wei: U256) -> String {
    amount_to(wei, 18, 6)
}

pub(super) fn amount_to(value: U256, decimals: u8, places: usize) -> String {
    let text = format_units(value, decimals).unwrap_or_else(|_| value.to_string());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let frac = frac.get(..places).unwrap_or(frac).trim_end_matches('0');
    if frac.is_empty() {
        if grouped == "0" && !value.is_zero() { format!("<0.{}1", "0".repeat(places - 1)) } else { grouped }
    } else {
        format!("{grouped}.{frac}")
    }
}

pub(super) fn short(a: Address) -> String {
    let s = a.to_string();
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

pub(super) fn duration(secs: u64) -> String {
    match secs {
        86_400 => "day".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn time(unix: u64) -> String {
    sak_primitives::units::format_time(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_times_read_well() {
        assert_eq!(amount(U256::from(1_234_567_890u64), 6), "1,234.5678");
        assert_eq!(amount(U256::from(300_000_000u64), 6), "300");
        assert_eq!(amount(U256::ZERO, 18), "0");
        assert_eq!(amount(U256::from(1u64), 18), "<0.0001");
        assert_eq!(gas(U256::from(718_387_994_991_000u64)), "0.000718");
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn isolation_accepts_only_the_allowed_change() {
        let (b, a) = (U256::from(10), U256::from(7));
        assert!(isolation("x", None, b, a, Delta::Minus(U256::from(3)), String::new()).ok);
        assert!(!isolation("x", None, b, a, Delta::Minus(U256::from(2)), String::new()).ok);
        assert!(!isolation("x", None, a, b, Delta::Minus(U256::from(3)), String::new()).ok);
        assert!(isolation("x", None, a, b, Delta::Plus(U256::from(3)), String::new()).ok);
        assert!(isolation("x", None, b, b, Delta::Minus(U256::ZERO), String::new()).ok);
    }
}
