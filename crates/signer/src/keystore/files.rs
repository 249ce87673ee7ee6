use super::{LocalKey, Password, v3};
use crate::{Error, Result};
use std::{
    fs::{self, DirBuilder, File, Metadata, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Largest keystore file read, in bytes (a v3 file is about 500).
const MAX_KEYSTORE_LEN: u64 = 64 * 1024;

/// Refuses `meta` if group or others have any permission on it.
pub(crate) fn check_private(path: &Path, meta: &Metadata, fix: u32) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions { path: path.to_owned(), mode, fix });
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` (and missing parents) with mode 0700, or checks that an existing one is not
/// accessible by group or others.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(Error::io("creating key directory", dir, e)),
    }
    let meta = fs::metadata(dir).map_err(|e| Error::io("reading metadata of", dir, e))?;
    check_private(dir, &meta, 0o700)
}

/// Encrypts `key` with scrypt N = 2^18 and writes it to `path` as a v3 keystore, atomically
/// and without replacing an existing file: a temporary file (mode 0600 from creation) in the
/// same directory, fsync, hard link to `path` (fails if `path` exists), fsync the directory.
/// The directory is created with mode 0700 if missing and refused if group or others can
/// access it.
///
/// ```no_run
/// use sak_signer::keystore::{self, LocalKey, PasswordSource};
/// let password = PasswordSource::Env("SAK_PASSWORD".into()).read()?;
/// let key = LocalKey::generate()?;
/// keystore::save("keys/session.json".as_ref(), &key, &password)?;
/// let again = keystore::load("keys/session.json".as_ref(), &password)?;
/// assert_eq!(again.address(), key.address());
/// # Ok::<(), sak_signer::Error>(())
/// ```
pub fn save(path: &Path, key: &LocalKey, password: &Password) -> Result<()> {
    let json = v3::encrypt(key, password)?;
    let dir = parent_of(path);
    create_private_dir(&dir)?;
    let name = path.file_name().ok_or_else(|| {
        Error::io("saving keystore to", path, std::io::Error::other("the path has no file name"))
    })?;
    let mut suffix = [0u8; 8];
    v3::fill_random(&mut suffix)?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), hex::encode(suffix)));

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        file.write_all(json.as_bytes()).map_err(|e| Error::io("writing", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        drop(file);
        fs::hard_link(&tmp, path).map_err(|e| {
            let context = if e.kind() == ErrorKind::AlreadyExists {
                "refusing to overwrite existing keystore"
            } else {
                "linking keystore into place at"
            };
            Error::io(context, path, e)
        })
    })();
    // The temporary name goes whether or not the link succeeded.
    let _ = fs::remove_file(&tmp);
    result?;
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("syncing directory", &dir, e))?;
    tracing::info!(address = %key.address(), path = %path.display(), "wrote keystore");
    Ok(())
}

/// Reads and decrypts the keystore at `path`. Refuses a file, or a directory holding it, that
/// group or others can access, naming the path and the `chmod` that fixes it.
pub fn load(path: &Path, password: &Password) -> Result<LocalKey> {
    let dir = parent_of(path);
    let dir_meta = fs::metadata(&dir).map_err(|e| Error::io("reading metadata of", &dir, e))?;
    check_private(&dir, &dir_meta, 0o700)?;
    let file = File::open(path).map_err(|e| Error::io("opening keystore", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("reading metadata of", path, e))?;
    check_private(path, &meta, 0o600)?;
    let mut json = Vec::new();
    file.take(MAX_KEYSTORE_LEN + 1)
        .read_to_end(&mut json)
        .map_err(|e| Error::io("reading keystore", path, e))?;
    if json.len() as u64 > MAX_KEYSTORE_LEN {
        return Err(Error::malformed(Some(path), "larger than 64 KiB"));
    }
    let key = v3::decrypt_at(&json, password, Some(path))?;
    tracing::info!(address = %key.address(), path = %path.display(), "loaded keystore");
    Ok(key)
}
