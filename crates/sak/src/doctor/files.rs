//! The home's own files: its config, state, keys and ledger.

use super::*;

pub(super) fn hint(err: &crate::Error) -> Option<String> {
    err.hint().map(str::to_owned)
}

pub(super) fn check_config(r: &mut Report, options: &Options, paths: &Paths) -> Option<Home> {
    let file = paths.config_file.display();
    let config = match Config::load(&paths.config_file) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "config",
                format!("{e:#}"),
                format!("fix the line named above in {file}, or move the file aside and run `sak init`"),
            );
            return None;
        }
    };
    let (network_name, network) = match config.network(options.network.as_deref()) {
        Ok(n) => n,
        Err(e) => {
            r.fail(
                "config",
                format!("{e:#}"),
                hint(&e).unwrap_or_else(|| "pick a configured network".into()),
            );
            return None;
        }
    };
    let kind = format!("{:?}", network.kind).to_lowercase();
    if paths.config_file.exists() {
        r.ok("config", format!("{file} parses; network `{network_name}` ({kind})"));
    } else {
        r.warn(
            "config",
            format!("no {file}: using the defaults; network `{network_name}` ({kind})"),
            "run `sak init` to write it (and the key directories)",
        );
    }
    Some(Home { paths: paths.clone(), config, network_name, network, options: options.clone() })
}

pub(super) fn check_state(r: &mut Report, paths: &Paths) -> Option<State> {
    match State::load(&paths.state()) {
        Ok(state) => Some(state),
        Err(e) => {
            r.fail(
                "state",
                format!("{e:#}"),
                format!(
                    "move {} aside (it lists accounts and sessions made here; the chain keeps them)",
                    paths.state().display()
                ),
            );
            None
        }
    }
}

/// Group or other permission bits of `path` (None when missing).
pub(super) fn loose_mode(path: &Path) -> std::io::Result<Option<u32>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.mode() & 0o7777)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn check_keys(r: &mut Report, paths: &Paths) {
    let mut loose = Vec::new();
    let mut missing_dir = false;
    for dir in [paths.keys_dir(), paths.session_keys_dir()] {
        match loose_mode(&dir) {
            Ok(Some(mode)) if mode & 0o077 != 0 => loose.push(format!("{} is {mode:04o}", dir.display())),
            Ok(Some(_)) => {}
            Ok(None) => missing_dir = true,
            Err(e) => loose.push(format!("{}: {e}", dir.display())),
        }
    }
    if !loose.is_empty() {
        r.fail(
            "key_dir",
            format!("{}; others can list the keys", loose.join(", ")),
            format!("chmod 700 {} {}", paths.keys_dir().display(), paths.session_keys_dir().display()),
        );
    } else if missing_dir {
        r.warn("key_dir", format!("no key directory at {}", paths.keys_dir().display()), "run `sak init`");
    } else {
        r.ok("key_dir", format!("{} and its session/ are 0700", paths.keys_dir().display()));
    }

    let owner = paths.owner_key();
    match (loose_mode(&owner), keystore_address(&owner)) {
        (Ok(None), _) => r.warn(
            "owner_key",
            format!("no owner key at {}", owner.display()),
            "create one with `sak owner new` (or `sak owner import`); an agent's machine needs none",
        ),
        (Ok(Some(mode)), _) if mode & 0o077 != 0 => r.fail(
            "owner_key",
            format!("{} is mode {mode:04o}: others can read the owner's keystore", owner.display()),
            format!("chmod 600 {}", owner.display()),
        ),
        (Ok(Some(_)), Ok(Some(address))) => {
            r.ok("owner_key", format!("{address} in {} (0600)", owner.display()))
        }
        (Err(e), _) => {
            r.fail("owner_key", format!("{}: {e}", owner.display()), "check the file's owner and mode")
        }
        (Ok(Some(_)), Err(e)) => r.fail(
            "owner_key",
            format!("{e:#}"),
            "restore the owner keystore from your backup (`sak owner import`)",
        ),
        (Ok(Some(_)), Ok(None)) => r.warn("owner_key", "the owner key vanished while checking", "run again"),
    }

    let dir = paths.session_keys_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            r.fail(
                "session_key_files",
                format!("{}: {e}", dir.display()),
                "check the directory's owner and mode",
            );
            return;
        }
    };
    let (mut count, mut bad) = (0, Vec::new());
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        count += 1;
        match (loose_mode(&path), keystore_address(&path)) {
            (Ok(Some(mode)), _) if mode & 0o077 != 0 => bad.push(format!("{} is {mode:04o}", path.display())),
            (_, Err(e)) => bad.push(format!("{e:#}")),
            (Err(e), _) => bad.push(format!("{}: {e}", path.display())),
            _ => {}
        }
    }
    if bad.is_empty() {
        r.ok("session_key_files", format!("{count} in {} (0600)", dir.display()));
    } else {
        r.fail(
            "session_key_files",
            bad.join("; "),
            format!("chmod 600 {}/*.json (and move aside any file that is not a keystore)", dir.display()),
        );
    }
}

pub(super) fn check_ledger(r: &mut Report, paths: &Paths, config: Option<&Config>) {
    let at = match config.map(|c| LedgerAt::of(paths, c)).transpose() {
        Ok(at) => at.unwrap_or_else(|| LedgerAt::File(paths.ledger())),
        Err(e) => {
            let hint = e.hint().unwrap_or("fix config.toml's `ledger`").to_owned();
            r.fail("ledger", e.to_string(), hint);
            return;
        }
    };
    let shown = at.shown();
    let move_aside = match &at {
        LedgerAt::File(path) => format!(
            "restore {} from a backup; as a last resort move it aside (sak starts a new one, and forgets the \
             spends it was tracking as pending)",
            path.display()
        ),
        LedgerAt::Postgres(_) => {
            "restore the database from a backup; never edit its tables by hand".to_owned()
        }
    };
    let ledger = match at.existing() {
        Ok(Some(l)) => l,
        Ok(None) => {
            r.ok("ledger", format!("no ledger yet at {shown} (nothing signed here)"));
            return;
        }
        Err(e) => {
            let fix = match &at {
                LedgerAt::File(_) => move_aside,
                LedgerAt::Postgres(_) => e.hint().unwrap_or("check the server and the URL").to_owned(),
            };
            r.fail("ledger", format!("{shown} cannot be opened: {e}"), fix);
            return;
        }
    };
    let verdict = match &ledger {
        AnyLedger::Sqlite(l) => l
            .integrity_check()
            .map_err(|e| e.to_string())
            .and_then(|v| if v == "ok" { Ok(()) } else { Err(format!("integrity_check: {v}")) }),
        AnyLedger::Postgres(_) => Ok(()),
    };
    let consistent = ledger.check_consistency().map_err(|e| e.to_string()).and_then(|diffs| {
        if diffs.is_empty() { Ok(()) } else { Err(format!("pending totals differ: {}", diffs.join("; "))) }
    });
    match (verdict, consistent) {
        (Ok(()), Ok(())) => r.ok("ledger", format!("{shown}: integrity ok, pending totals consistent")),
        (Err(e), _) | (_, Err(e)) => r.fail("ledger", format!("{shown}: {e}"), move_aside.clone()),
    }
    match ledger.unresolved() {
        Ok(open) if open.is_empty() => r.ok("ledger_unresolved", "no operation in flight"),
        Ok(open) => {
            let oldest = open.iter().map(|o| o.intent.created_at).min().unwrap_or_default();
            r.warn(
                "ledger_unresolved",
                format!(
                    "{} operation{} reserved or signed but not settled (oldest from {}); their spend \
                     counts as pending",
                    open.len(),
                    if open.len() == 1 { "" } else { "s" },
                    format_time(oldest)
                ),
                "the next `sak send` or `sak swap` under the session settles them first (resubmits or \
                 resolves each)",
            );
        }
        Err(e) => r.fail("ledger_unresolved", e.to_string(), move_aside),
    }
}
