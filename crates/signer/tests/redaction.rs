//! SECURITY #54: no key material or password in Debug output, error messages or logs.

use sak_signer::keystore::{self, LocalKey, OwnerSigner, Password, PasswordSource};
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut out = format!("{err} | {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(&format!(" | {e} | {e:?}"));
        source = e.source();
    }
    out
}

#[test]
fn secrets_never_reach_debug_errors_or_tracing() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    const SECRET: &str = "hunter2-redaction-test-password";
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys/session.json");
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, format!("{SECRET}\n")).unwrap();

    let key = LocalKey::generate().unwrap();
    let secret_hex = hex_of(&key);
    let password = Password::new(SECRET).unwrap();
    let mut seen = Vec::new();

    keystore::save(&path, &key, &password).unwrap();
    let wrong = keystore::load(&path, &Password::new("not the password").unwrap()).unwrap_err();
    seen.push(chain(&wrong));
    let loaded = keystore::load(&path, &password).unwrap();
    // A readable-by-others password file gives an error too.
    std::fs::set_permissions(&pw_file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    seen.push(chain(&PasswordSource::File(pw_file).read().unwrap_err()));
    let json = keystore::encrypt(&key, &password).unwrap();
    seen.push(chain(&keystore::decrypt(json.as_bytes(), &Password::new("nope").unwrap()).unwrap_err()));
    seen.push(chain(&keystore::decrypt(&json.as_bytes()[..40], &password).unwrap_err()));

    let owner = OwnerSigner::local(loaded);
    seen.push(format!("{key:?} {key:#?}"));
    seen.push(format!("{password:?} {password:#?}"));
    seen.push(format!("{owner:?} {owner:#?}"));
    seen.push(format!("{:?}", owner.signer().address()));
    seen.push(format!("{:?}", key.signer()));
    tracing::info!(?key, ?password, ?owner, "debug-formatted into a tracing event");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("wrote keystore") && logs.contains("loaded keystore"), "capture works: {logs}");
    seen.push(logs);
    let all = seen.join("\n");
    assert!(all.contains(&format!("{}", key.address())), "the address is shown");
    let key_bytes = hex::decode(&secret_hex).unwrap();
    for needle in [
        secret_hex.clone(),
        format!("0x{secret_hex}"),
        secret_hex.to_uppercase(),
        SECRET.to_owned(),
        // What a derived Debug of the raw bytes would print.
        format!("{:?}", SECRET.as_bytes()).trim_end_matches(']').to_owned(),
        format!("{key_bytes:?}").trim_end_matches(']').to_owned(),
    ] {
        assert!(!all.contains(&needle), "found a secret in output: {all}");
    }
    // A 16-hex-digit window of the key appears nowhere either (no partial leak).
    for window in secret_hex.as_bytes().windows(16) {
        assert!(!all.contains(std::str::from_utf8(window).unwrap()), "partial key in output");
    }
}

fn hex_of(key: &LocalKey) -> String {
    key.signer().to_bytes().to_string().trim_start_matches("0x").to_owned()
}
