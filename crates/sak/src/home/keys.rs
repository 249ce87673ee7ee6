//! Key files read without decrypting them, and errors with their URLs redacted.

use super::*;

/// `err` and its causes, with `url` (whose path or query may hold an API key) reduced to its
/// scheme and host wherever it appears; reqwest names it as `for url (…)`, normalised.
pub fn redacted_error(err: &(dyn std::error::Error + 'static), url: &str) -> String {
    let shown = redact_url(url);
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        let mut text = c.to_string();
        let mut from = 0;
        while let Some(start) = text[from..].find("url (").map(|i| from + i) {
            let open = start + "url (".len();
            let end = text[open..].find(')').map_or(text.len(), |e| open + e);
            text.replace_range(open..end, &shown);
            from = open + shown.len();
        }
        text = text.replace(url, &shown);
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// What to do about a key file that does not parse.
pub const DAMAGED_KEY_HINT: &str = "the key file is damaged: restore it from your backup (`sak key export` \
     writes one); a lost session key is replaced by the owner with `sak session rotate ID`";

/// The address a v3 keystore declares (without decrypting it), or None if there is no file.
pub fn keystore_address(path: &std::path::Path) -> Result<Option<Address>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).wrap_err_with(|| format!("reading {}", path.display())),
    };
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        crate::Hinted::new(format!("{} is not a keystore: {e}", path.display()), DAMAGED_KEY_HINT)
    })?;
    let address = json
        .get("address")
        .and_then(|a| a.as_str())
        .ok_or_else(|| err!("{} has no address field", path.display()))?;
    let address = if address.starts_with("0x") { address.to_owned() } else { format!("0x{address}") };
    Ok(Some(address.parse().wrap_err_with(|| format!("{}: malformed address", path.display()))?))
}
