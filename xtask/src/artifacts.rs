//! Compile `contracts/src` through `foundry-compilers` with the solc shim and write (or check)
//! `crates/contracts/artifacts/<Contract>.json`.
//!
//! Our contracts are written whole (ABI + creation and runtime bytecode). Third-party contracts
//! that the Rust code talks to are written as ABI only: their bytecode is taken from the npm
//! packages at run time, because canonical addresses depend on the exact published bytes.

use crate::foundry::read_profile;
use eyre::{Context, Result, bail, ensure};
use foundry_compilers::{
    ConfigurableArtifacts, ProjectBuilder, ProjectPathsConfig,
    artifacts::ConfigurableContractArtifact,
    solc::{Solc, SolcCompiler},
};
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// Where the committed artifacts live, relative to the repo root.
pub(crate) const ARTIFACTS_DIR: &str = "crates/contracts/artifacts";

/// Third-party interfaces and contracts bound in Rust: (source under node_modules, contract name).
const EXTERNAL: &[(&str, &str)] = &[
    ("@account-abstraction/contracts/interfaces/IEntryPoint.sol", "IEntryPoint"),
    ("@account-abstraction/contracts/accounts/SimpleAccountFactory.sol", "SimpleAccountFactory"),
    ("@account-abstraction/contracts/accounts/SimpleAccount.sol", "SimpleAccount"),
    ("@uniswap/v2-periphery/contracts/interfaces/IUniswapV2Router02.sol", "IUniswapV2Router02"),
    ("@uniswap/v2-periphery/contracts/interfaces/IWETH.sol", "IWETH"),
    ("@uniswap/v2-core/contracts/interfaces/IUniswapV2Factory.sol", "IUniswapV2Factory"),
    ("@uniswap/v2-core/contracts/interfaces/IUniswapV2Pair.sol", "IUniswapV2Pair"),
];

/// Compile and write the artifacts, removing stale ones.
pub(crate) fn write(root: &Path) -> Result<()> {
    let fresh = compile(root)?;
    let dir = root.join(ARTIFACTS_DIR);
    std::fs::create_dir_all(&dir)?;
    for stale in committed(&dir)?.keys().filter(|name| !fresh.contains_key(*name)) {
        std::fs::remove_file(dir.join(stale))?;
        eprintln!("removed {ARTIFACTS_DIR}/{stale}");
    }
    for (name, text) in &fresh {
        std::fs::write(dir.join(name), text)?;
    }
    eprintln!("wrote {} artifacts to {ARTIFACTS_DIR}", fresh.len());
    Ok(())
}

/// Compile and compare with the committed artifacts; an error lists every difference.
pub(crate) fn check(root: &Path) -> Result<()> {
    let fresh = compile(root)?;
    let dir = root.join(ARTIFACTS_DIR);
    let old = committed(&dir)?;
    let mut drift = Vec::new();
    for (name, text) in &fresh {
        match old.get(name) {
            None => drift.push(format!("{name}: missing (new contract)")),
            Some(committed) if committed != text => {
                drift.push(format!("{name}: differs from a fresh compile"))
            }
            Some(_) => {}
        }
    }
    drift.extend(
        old.keys().filter(|n| !fresh.contains_key(*n)).map(|n| format!("{n}: stale (no such contract)")),
    );
    if !drift.is_empty() {
        bail!(
            "committed artifacts in {ARTIFACTS_DIR} drifted from contracts/src:\n  {}\nhint: run `cargo xtask artifacts` and commit the result",
            drift.join("\n  ")
        );
    }
    eprintln!("artifacts up to date: {} files in {ARTIFACTS_DIR} match a fresh compile", fresh.len());
    Ok(())
}

fn committed(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read_to_string(&path)?);
        }
    }
    Ok(out)
}

/// Compile everything and render each artifact file: file name -> JSON text.
pub(crate) fn compile(root: &Path) -> Result<BTreeMap<String, String>> {
    let profile = read_profile(root)?;
    let solc = Solc::new(&profile.solc).wrap_err_with(|| {
        format!(
            "running the solc shim {}\nhint: run `npm ci` in the repo root (make does this)",
            profile.solc.display()
        )
    })?;
    let paths = ProjectPathsConfig::builder()
        .root(root)
        .sources(&profile.src)
        .libs(profile.libs.clone())
        .remappings(profile.remappings.clone())
        .build()?;
    let project = ProjectBuilder::<SolcCompiler, ConfigurableArtifacts>::default()
        .paths(paths)
        .settings(profile.settings)
        .ephemeral()
        .no_artifacts()
        .offline()
        .build(SolcCompiler::Specific(solc))?;

    let node_modules = root.join("node_modules");
    let mut files = sol_files(&profile.src)?;
    for (source, _) in EXTERNAL {
        let file = node_modules.join(source);
        ensure!(file.exists(), "{} is missing\nhint: run `npm ci` in the repo root", file.display());
        files.push(file);
    }
    let output = project.compile_files(files)?;
    ensure!(!output.has_compiler_errors(), "compilation failed:\n{output}");

    let src_prefix = profile.src.strip_prefix(root).unwrap_or(&profile.src).to_path_buf();
    let mut rendered = BTreeMap::new();
    for (file, name, artifact) in output.artifacts_with_files() {
        let file = Path::new(file).strip_prefix(root).unwrap_or(Path::new(file)).to_path_buf();
        let ours = file.starts_with(&src_prefix);
        let external = EXTERNAL.iter().any(|(source, n)| *n == name && file.ends_with(source));
        if !ours && !external {
            continue;
        }
        let text = render(&file, artifact, ours)?;
        let key = format!("{name}.json");
        ensure!(
            rendered.insert(key.clone(), text).is_none(),
            "two contracts are named {name}: artifact names must be unique"
        );
    }
    Ok(rendered)
}

fn render(file: &Path, artifact: &ConfigurableContractArtifact, with_bytecode: bool) -> Result<String> {
    let full = serde_json::to_value(artifact)?;
    let object = |key: &str| full.get(key).and_then(|b| b.get("object")).cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "sourceName": file.to_string_lossy().replace('\\', "/"),
        "abi": full.get("abi").cloned().unwrap_or(Value::Array(vec![])),
    });
    if with_bytecode {
        out["bytecode"] = object("bytecode");
        out["deployedBytecode"] = object("deployedBytecode");
    }
    Ok(serde_json::to_string_pretty(&out)? + "\n")
}

fn sol_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).wrap_err_with(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(sol_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "sol") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
