//! Keystore files: format interop with alloy, permissions, atomic writes, password sources.

use alloy::signers::local::PrivateKeySigner;
use sak_signer::{
    Error,
    keystore::{self, LocalKey, Password, PasswordSource},
};
use std::{fs, io::Write, os::unix::fs::PermissionsExt, path::Path, time::Instant};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn saved_keystore_is_private_and_decrypts_here_and_in_alloy() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys/nested/session.json");
    let password = Password::new("interop password").unwrap();
    let key = LocalKey::generate().unwrap();

    let t = Instant::now();
    keystore::save(&path, &key, &password).unwrap();
    let encrypt = t.elapsed();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&tmp.path().join("keys")), 0o700);
    // Only the keystore is left in the directory: the temporary file is gone.
    let names: Vec<_> =
        fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("session.json")]);

    let t = Instant::now();
    let loaded = keystore::load(&path, &password).unwrap();
    let decrypt = t.elapsed();
    assert_eq!(loaded.address(), key.address());
    eprintln!("scrypt 2^18 keystore: encrypt+write {encrypt:?}, read+decrypt {decrypt:?}");

    let by_alloy = PrivateKeySigner::decrypt_keystore(&path, "interop password").unwrap();
    assert_eq!(by_alloy.address(), key.address());
}

#[test]
fn reads_keystore_written_by_alloy_after_chmod() {
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o700);
    let signer = PrivateKeySigner::random();
    let (_, _) = PrivateKeySigner::encrypt_keystore(
        tmp.path(),
        &mut rand08::thread_rng(),
        signer.to_bytes(),
        "alloy password",
        Some("alloy.json"),
    )
    .unwrap();
    let path = tmp.path().join("alloy.json");
    let password = Password::new("alloy password").unwrap();
    // alloy (eth-keystore) creates the file with the umask's mode.
    set_mode(&path, 0o644);
    let err = keystore::load(&path, &password).unwrap_err();
    assert!(matches!(err, Error::InsecurePermissions { .. }), "{err}");
    assert!(err.to_string().contains(&format!("chmod 600 {}", path.display())), "{err}");

    set_mode(&path, 0o600);
    assert_eq!(keystore::load(&path, &password).unwrap().address(), signer.address());
    let json = fs::read(&path).unwrap();
    assert_eq!(keystore::decrypt(&json, &password).unwrap().address(), signer.address());
}

#[test]
fn load_refuses_group_or_world_access_to_file_or_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let path = dir.join("k.json");
    let password = Password::new("pw").unwrap();
    keystore::save(&path, &LocalKey::generate().unwrap(), &password).unwrap();

    for bad in [0o640, 0o604, 0o660, 0o601] {
        set_mode(&path, bad);
        let err = keystore::load(&path, &password).unwrap_err();
        match &err {
            Error::InsecurePermissions { path: p, mode, fix } => {
                assert_eq!((p.as_path(), *mode, *fix), (path.as_path(), bad, 0o600));
            }
            other => panic!("expected InsecurePermissions, got {other}"),
        }
        assert!(err.to_string().contains(&format!("run `chmod 600 {}`", path.display())), "{err}");
    }
    set_mode(&path, 0o600);

    set_mode(&dir, 0o755);
    let err = keystore::load(&path, &password).unwrap_err();
    assert!(err.to_string().contains(&format!("chmod 700 {}", dir.display())), "{err}");
    // Saving into it is refused as well.
    let err = keystore::save(&dir.join("other.json"), &LocalKey::generate().unwrap(), &password).unwrap_err();
    assert!(matches!(err, Error::InsecurePermissions { .. }), "{err}");
    set_mode(&dir, 0o700);
    keystore::load(&path, &password).unwrap();
}

#[test]
fn save_never_overwrites_and_wrong_password_is_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys/k.json");
    let password = Password::new("right").unwrap();
    let key = LocalKey::generate().unwrap();
    keystore::save(&path, &key, &password).unwrap();
    let before = fs::read(&path).unwrap();

    let err = keystore::save(&path, &LocalKey::generate().unwrap(), &password).unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left behind");

    let err = keystore::load(&path, &Password::new("wrong").unwrap()).unwrap_err();
    assert!(matches!(&err, Error::WrongPassword { path: Some(p) } if *p == path), "{err}");
}

#[test]
fn password_from_file_descriptor_stops_at_newline() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(b"fd secret\r\nnot this line\n").unwrap();
    drop(writer);
    use std::os::fd::AsRawFd;
    let fd = u32::try_from(reader.as_raw_fd()).unwrap();
    let password = PasswordSource::Fd(fd).read().unwrap();
    assert_eq!(format!("{password:?}"), "Password([redacted])");
    // Same bytes as a password built directly: encrypt with one, decrypt with the other.
    let key = LocalKey::generate().unwrap();
    let json = keystore::encrypt(&key, &password).unwrap();
    let again = keystore::decrypt(json.as_bytes(), &Password::new("fd secret").unwrap()).unwrap();
    assert_eq!(again.address(), key.address());
}

#[test]
fn password_file_must_be_private_and_non_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pw");
    fs::write(&path, "file secret\n").unwrap();
    set_mode(&path, 0o644);
    let err = PasswordSource::File(path.clone()).read().unwrap_err();
    assert!(err.to_string().contains(&format!("chmod 600 {}", path.display())), "{err}");
    set_mode(&path, 0o600);
    PasswordSource::File(path.clone()).read().unwrap();

    fs::write(&path, "\n").unwrap();
    let err = PasswordSource::File(path).read().unwrap_err();
    assert!(matches!(err, Error::EmptyPassword { .. }), "{err}");
    assert!(matches!(Password::new(""), Err(Error::EmptyPassword { .. })));
}

#[test]
#[allow(unsafe_code)]
fn password_from_environment() {
    let var = format!("SAK_TEST_PASSWORD_{}", std::process::id());
    let err = PasswordSource::Env(var.clone()).read().unwrap_err();
    assert!(matches!(err, Error::PasswordEnvMissing { .. }), "{err}");
    // SAFETY: nextest runs each test in its own process; nothing else reads this variable.
    unsafe { std::env::set_var(&var, "") };
    assert!(matches!(PasswordSource::Env(var.clone()).read(), Err(Error::EmptyPassword { .. })));
    // SAFETY: as above.
    unsafe { std::env::set_var(&var, "env secret") };
    let password = PasswordSource::Env(var).read().unwrap();
    assert_eq!(format!("{password:?}"), "Password([redacted])");
}
