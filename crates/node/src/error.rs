use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or preparing a local chain. [`Error::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `anvil.toml` is malformed or holds an invalid value.
    #[error("{path}:{line}:{column}: {message}")]
    Config {
        /// The file (or `<built-in anvil.toml>`).
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// No such profile in `anvil.toml`.
    #[error("{path}: no profile named `{name}`")]
    UnknownProfile {
        /// The file.
        path: String,
        /// The name asked for.
        name: String,
        /// The profiles the file defines.
        available: Vec<String>,
    },
    /// A file or process operation failed.
    #[error("{context}")]
    Io {
        /// What we were doing.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A tool or package from the project's npm toolchain is not installed.
    #[error("{what} not found (looked in: {})", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    ToolchainMissing {
        /// What was looked for.
        what: String,
        /// Where.
        looked: Vec<PathBuf>,
    },
    /// The requested port is taken.
    #[error("cannot listen on {host}:{port}: the port is already in use")]
    PortInUse {
        /// Listen address.
        host: String,
        /// Port.
        port: u16,
    },
    /// anvil exited or failed before it was ready.
    #[error("anvil did not start: {reason}")]
    AnvilStart {
        /// anvil's own last words (stderr), or what we observed.
        reason: String,
    },
    /// A JSON-RPC call to the node failed.
    #[error("RPC {method} failed")]
    Rpc {
        /// The call.
        method: String,
        /// The cause.
        #[source]
        source: alloy::transports::TransportError,
    },
    /// A deployment step failed.
    #[error("deploying {what}: {reason}")]
    Deploy {
        /// The contract or step.
        what: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Config { hint, .. } => hint.clone(),
            Self::UnknownProfile { available, .. } => {
                format!("use one of the defined profiles: {}", available.join(", "))
            }
            Self::ToolchainMissing { .. } => {
                "run `npm ci` in the sak repository root (`make` does it for you), or set SAK_ANVIL to an anvil binary".into()
            }
            Self::PortInUse { port, .. } => format!(
                "another node (perhaps an earlier `sak node up`) is listening on port {port}: stop it, or pick another port (--port 0 takes any free one)"
            ),
            Self::AnvilStart { .. } => "check the profile's flags; the fork URL, if any, must be reachable".into(),
            Self::Rpc { .. } => "is the node still running? `sak node up` restarts a local one".into(),
            Self::Io { .. } | Self::Deploy { .. } => return None,
        })
    }

    pub(crate) fn rpc(method: &str) -> impl FnOnce(alloy::transports::TransportError) -> Self + '_ {
        move |source| Self::Rpc { method: method.to_string(), source }
    }

    pub(crate) fn deploy(what: &str, reason: impl std::fmt::Display) -> Self {
        Self::Deploy { what: what.to_string(), reason: reason.to_string() }
    }
}
