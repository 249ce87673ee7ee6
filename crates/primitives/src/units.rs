//! Amounts, durations and times as policy files write them.

use alloy::primitives::{U256, utils::parse_units};

/// Parses an amount: base units (`"250000000"`, `1_000`), 0x hex, a value with a unit
/// (`"0.01 ether"`, `"20 gwei"`, `"5 wei"`), or, with `decimals`, whole units (`"250.5"`).
pub fn parse_amount(text: &str, decimals: Option<u8>) -> Option<U256> {
    let text = text.trim();
    for (unit, scale) in [("ether", 18u8), ("eth", 18), ("gwei", 9), ("wei", 0)] {
        if let Some(number) = text.strip_suffix(unit).map(str::trim_end)
            && !number.is_empty()
            && number.len() < text.len()
        {
            return scaled(number, scale);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return (!hex.is_empty() && hex.len() <= 64).then(|| U256::from_str_radix(hex, 16).ok()).flatten();
    }
    match decimals {
        Some(d) => scaled(text, d),
        None => integer(text),
    }
}

fn integer(text: &str) -> Option<U256> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

fn scaled(number: &str, decimals: u8) -> Option<U256> {
    let number: String = number.chars().filter(|c| *c != '_').collect();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    // alloy's parse_units drops surplus decimals silently: an amount is never rounded here.
    if number.split_once('.').is_some_and(|(_, fraction)| fraction.len() > usize::from(decimals)) {
        return None;
    }
    parse_units(&number, decimals).ok().map(Into::into)
}

/// Parses a duration: seconds (`"3600"`) or a number with `s`, `m`, `h`, `d` or `w`.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// Parses a time: unix seconds, or RFC 3339 (`2026-11-29T00:00:00Z`, `…+02:00`).
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Fractional seconds are dropped; then `Z` or `±HH:MM`.
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (rest[1..3].parse::<i64>().ok()? * 3_600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    u64::try_from(seconds).ok()
}

/// `raw` base units in whole tokens, without trailing zeros (`1.5`); with unknown decimals,
/// `N (base units)`. The inverse of [`parse_amount`].
pub fn format_amount(raw: U256, decimals: Option<u8>) -> String {
    match decimals {
        Some(d) => {
            let s = alloy::primitives::utils::format_units(raw, d).unwrap_or_else(|_| raw.to_string());
            if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
        }
        None => format!("{raw} (base units)"),
    }
}

/// A period in the largest unit that divides it (`1d`, `6h`, `90s`): what [`parse_duration`]
/// reads back.
pub fn format_period(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`, for display (the inverse of [`parse_time`] on
/// whole seconds).
pub fn format_time(unix: u64) -> String {
    let (days, rem) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

/// This machine's clock in unix seconds (0 before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// [`format_time`] and how far it is from `now`: `2026-12-05 19:06:29 UTC (in 3 h 12 min)`,
/// `… (2 d 4 h ago)`, `… (now)`.
pub fn format_time_from(unix: u64, now: u64) -> String {
    let relative = match unix.cmp(&now) {
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Greater => format!("in {}", format_span(unix - now)),
        std::cmp::Ordering::Less => format!("{} ago", format_span(now - unix)),
    };
    format!("{} ({relative})", format_time(unix))
}

/// A span of seconds in its two largest units: `3 d 4 h`, `5 h 12 min`, `42 min 5 s`, `17 s`
/// (a zero second unit is left out: `2 d`).
pub fn format_span(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    let Some(i) = units.iter().position(|(u, _)| secs >= *u) else { return "0 s".to_owned() };
    let (big, big_name) = units[i];
    let mut text = format!("{} {big_name}", secs / big);
    if let Some((small, small_name)) = units.get(i + 1)
        && secs % big / small > 0
    {
        text += &format!(" {} {small_name}", secs % big / small);
    }
    text
}

/// The proleptic Gregorian date of day `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_in_every_written_form() {
        assert_eq!(parse_amount("250000000", None), Some(U256::from(250_000_000u64)));
        assert_eq!(parse_amount("1_000", None), Some(U256::from(1_000)));
        assert_eq!(parse_amount("0x10", None), Some(U256::from(16)));
        assert_eq!(parse_amount("0.01 ether", None), Some(U256::from(10_000_000_000_000_000u64)));
        assert_eq!(parse_amount("20 gwei", None), Some(U256::from(20_000_000_000u64)));
        assert_eq!(parse_amount("250.5", Some(6)), Some(U256::from(250_500_000u64)));
        assert_eq!(parse_amount("250.5", None), None, "decimals are needed for whole units");
        assert_eq!(parse_amount("-1", None), None);
        assert_eq!(parse_amount("1.0000001", Some(6)), None, "more decimals than the token has");
        assert_eq!(parse_amount("ether", None), None);
    }

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("3600"), Some(3_600));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-11-22T04:47:07Z"), Some(1_795_322_827));
        assert_eq!(parse_time("2026-11-22T06:47:07+02:00"), Some(1_795_322_827));
        assert_eq!(parse_time("2026-11-22T04:47:07.123Z"), Some(1_795_322_827));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn times_format_and_read_back() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time_from(3 * 3_600 + 720, 0), "1970-01-01 03:12:00 UTC (in 3 h 12 min)");
        assert_eq!(format_time_from(0, 2 * 86_400 + 4 * 3_600 + 59), "1970-01-01 00:00:00 UTC (2 d 4 h ago)");
        assert_eq!(format_time_from(5, 5), "1970-01-01 00:00:05 UTC (now)");
        for (secs, words) in
            [(0, "0 s"), (17, "17 s"), (2_525, "42 min 5 s"), (86_400 * 2, "2 d"), (90_000, "1 d 1 h")]
        {
            assert_eq!(format_span(secs), words);
        }
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        for t in [0, 951_782_400, 1_700_000_000, 1_795_322_827, 4_102_444_799] {
            let text = format_time(t).replace(' ', "T").replace("TUTC", "Z");
            assert_eq!(parse_time(&text), Some(t), "{text}");
        }
    }
}
