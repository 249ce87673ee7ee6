//! Finds the project's npm toolchain: the anvil binary and the published contract artifacts.

use crate::error::{Error, Result};
use alloy::primitives::Bytes;
use std::path::{Path, PathBuf};

/// Environment variable naming an anvil binary to use instead of the npm one.
pub const ANVIL_ENV: &str = "SAK_ANVIL";
/// Environment variable naming the directory that holds the project's `node_modules`.
pub const TOOLCHAIN_DIR_ENV: &str = "SAK_TOOLCHAIN_DIR";

/// The npm packages installed by `npm ci` at the repository root.
#[derive(Debug, Clone)]
pub struct Toolchain {
    node_modules: PathBuf,
}

impl Toolchain {
    /// Looks for `node_modules` in `$SAK_TOOLCHAIN_DIR`, then the current directory and its
    /// ancestors, then the repository this crate was built from.
    pub fn locate() -> Result<Self> {
        let mut candidates = Vec::new();
        if let Some(dir) = std::env::var_os(TOOLCHAIN_DIR_ENV) {
            candidates.push(PathBuf::from(dir));
        }
        if let Ok(cwd) = std::env::current_dir() {
            candidates.extend(cwd.ancestors().map(Path::to_path_buf));
        }
        candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        let looked: Vec<PathBuf> = candidates.iter().map(|d| d.join("node_modules")).collect();
        looked
            .iter()
            .find(|nm| nm.join("@account-abstraction/contracts").is_dir())
            .map(|nm| Self { node_modules: nm.clone() })
            .ok_or(Error::ToolchainMissing { what: "the npm toolchain (node_modules)".into(), looked })
    }

    /// The anvil binary: `$SAK_ANVIL`, else the platform package of `@foundry-rs/anvil`.
    /// The binary itself, not npm's node wrapper, so that its PID is anvil's.
    pub fn anvil(&self) -> Result<PathBuf> {
        if let Some(path) = std::env::var_os(ANVIL_ENV) {
            return Ok(path.into());
        }
        let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
            ("linux", "x86_64") => "linux-amd64",
            ("linux", "aarch64") => "linux-arm64",
            ("macos", "x86_64") => "darwin-amd64",
            ("macos", "aarch64") => "darwin-arm64",
            (os, arch) => {
                return Err(Error::ToolchainMissing {
                    what: format!("an anvil npm package for {os}/{arch}"),
                    looked: vec![],
                });
            }
        };
        let path = self.node_modules.join(format!("@foundry-rs/anvil-{platform}/bin/anvil"));
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::ToolchainMissing { what: "anvil".into(), looked: vec![path] })
        }
    }

    /// Creation bytecode of a published artifact, e.g.
    /// `("@account-abstraction/contracts/artifacts/EntryPoint.json", "bytecode")`. Accepts hardhat
    /// (`"0x…"`), waffle (`"…"`, no prefix) and `{ "object": … }` forms.
    pub fn bytecode(&self, artifact: &str) -> Result<Bytes> {
        let path = self.node_modules.join(artifact);
        let text = std::fs::read_to_string(&path).map_err(|_| Error::ToolchainMissing {
            what: artifact.to_string(),
            looked: vec![path.clone()],
        })?;
        let bad = |why: &str| Error::deploy(artifact, format!("{}: {why}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let code = json.get("bytecode").ok_or_else(|| bad("no `bytecode` field"))?;
        let hex =
            code.get("object").unwrap_or(code).as_str().ok_or_else(|| bad("`bytecode` is not a string"))?;
        let bytes: Bytes = hex.parse().map_err(|e| bad(&format!("bytecode is not hex: {e}")))?;
        if bytes.is_empty() {
            return Err(bad("empty bytecode"));
        }
        Ok(bytes)
    }
}
