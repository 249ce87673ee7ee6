use super::files::check_private;
use crate::{Error, Result};
use std::{fmt, fs::File, io::Read, os::unix::ffi::OsStringExt, path::PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// Longest password accepted from a descriptor or a file, in bytes.
const MAX_PASSWORD_LEN: usize = 4096;

/// A keystore password. `Debug` prints `[redacted]`; the bytes are zeroized on drop.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password from bytes the caller already holds (a secret manager, a test). Refuses an
    /// empty password. Command-line tools use [`PasswordSource`] instead: never an argument.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        Self::checked(Zeroizing::new(bytes.into()), "the caller")
    }

    fn checked(bytes: Zeroizing<Vec<u8>>, source_name: &str) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::EmptyPassword { source_name: source_name.to_owned() });
        }
        Ok(Self(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Where a password comes from. Deliberately no variant for a literal value: a password in
/// argv is visible to every user through `ps` and `/proc/<pid>/cmdline`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordSource {
    /// The named environment variable (for example `SAK_PASSWORD`), used whole.
    Env(String),
    /// An inherited file descriptor (`--password-fd 3`), read up to the first newline or EOF.
    /// Opened through `/dev/fd/N`, so it must be a pipe or a file, not a socket.
    Fd(u32),
    /// A file readable by its owner only (mode 0600), read up to the first newline or EOF.
    File(PathBuf),
}

impl PasswordSource {
    /// Reads the password. Refuses an empty one, and a file that group or others can access.
    ///
    /// ```no_run
    /// use sak_signer::keystore::PasswordSource;
    /// let password = PasswordSource::Env("SAK_PASSWORD".into()).read()?;
    /// # Ok::<(), sak_signer::Error>(())
    /// ```
    pub fn read(&self) -> Result<Password> {
        match self {
            Self::Env(var) => {
                let value =
                    std::env::var_os(var).ok_or_else(|| Error::PasswordEnvMissing { var: var.clone() })?;
                Password::checked(Zeroizing::new(value.into_vec()), &format!("env {var}"))
            }
            Self::Fd(fd) => {
                let path = PathBuf::from(format!("/dev/fd/{fd}"));
                let file =
                    File::open(&path).map_err(|e| Error::io("opening password descriptor", &path, e))?;
                let bytes = first_line(file, &path)?;
                Password::checked(bytes, &format!("fd {fd}"))
            }
            Self::File(path) => {
                let file = File::open(path).map_err(|e| Error::io("opening password file", path, e))?;
                let meta = file.metadata().map_err(|e| Error::io("reading metadata of", path, e))?;
                check_private(path, &meta, 0o600)?;
                let bytes = first_line(file, path)?;
                Password::checked(bytes, &path.display().to_string())
            }
        }
    }
}

/// Reads up to the first `\n` (dropping a `\r` before it) or EOF, byte by byte so that nothing
/// past the newline is consumed from a shared pipe.
fn first_line(mut file: File, path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_PASSWORD_LEN));
    let mut byte = [0u8; 1];
    loop {
        match file.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                if out.len() == MAX_PASSWORD_LEN {
                    byte.zeroize();
                    return Err(Error::io(
                        "reading password from",
                        path,
                        std::io::Error::other(format!("longer than {MAX_PASSWORD_LEN} bytes")),
                    ));
                }
                out.push(byte[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading password from", path, e)),
        }
    }
    byte.zeroize();
    if out.last() == Some(&b'\r') {
        out.pop();
    }
    Ok(out)
}
