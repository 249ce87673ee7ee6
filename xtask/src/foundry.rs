//! The compiler settings of `foundry.toml`'s default profile, so that forge and the Rust build
//! compile with the same settings from one file.

use eyre::{Context, ContextCompat, Result, bail};
use foundry_compilers::{
    artifacts::{
        BytecodeHash, EvmVersion, Optimizer, Remapping, Settings, SettingsMetadata,
        output_selection::OutputSelection,
    },
    solc::{CliSettings, SolcSettings},
};
use std::{path::Path, str::FromStr};

/// What we read from `[profile.default]`.
#[derive(Debug)]
pub(crate) struct FoundryProfile {
    pub(crate) solc: std::path::PathBuf,
    pub(crate) src: std::path::PathBuf,
    pub(crate) libs: Vec<std::path::PathBuf>,
    pub(crate) remappings: Vec<Remapping>,
    pub(crate) settings: SolcSettings,
}

pub(crate) fn read_profile(root: &Path) -> Result<FoundryProfile> {
    let file = root.join("foundry.toml");
    let text = std::fs::read_to_string(&file).wrap_err_with(|| format!("reading {}", file.display()))?;
    let doc: toml::Table = toml::from_str(&text).wrap_err_with(|| format!("parsing {}", file.display()))?;
    let profile = doc
        .get("profile")
        .and_then(|p| p.get("default"))
        .and_then(toml::Value::as_table)
        .wrap_err("foundry.toml has no [profile.default]")?;
    let str_key = |key: &str| -> Result<&str> {
        profile
            .get(key)
            .and_then(toml::Value::as_str)
            .wrap_err_with(|| format!("foundry.toml: [profile.default] needs a string `{key}`"))
    };
    let bool_key = |key: &str| profile.get(key).and_then(toml::Value::as_bool);

    let remappings = profile
        .get("remappings")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let r = r.as_str().wrap_err("foundry.toml: remappings must be strings")?;
            let (from, to) =
                r.split_once('=').wrap_err_with(|| format!("foundry.toml: remapping `{r}` has no `=`"))?;
            // Absolute targets: the compiler's working directory is not the repo root.
            let mut target = root.join(to).to_string_lossy().into_owned();
            if to.ends_with('/') && !target.ends_with('/') {
                target.push('/');
            }
            Remapping::from_str(&format!("{from}={target}"))
                .map_err(|e| eyre::eyre!("foundry.toml: remapping `{r}`: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;

    let mut settings = Settings::new(OutputSelection::default_output_selection());
    settings.optimizer = Optimizer {
        enabled: bool_key("optimizer"),
        runs: profile.get("optimizer_runs").and_then(toml::Value::as_integer).map(|r| r as usize),
        details: None,
    };
    settings.via_ir = bool_key("via_ir");
    settings.evm_version = Some(
        EvmVersion::from_str(str_key("evm_version")?)
            .map_err(|e| eyre::eyre!("foundry.toml: evm_version: {e}"))?,
    );
    let bytecode_hash = match str_key("bytecode_hash")? {
        "none" => BytecodeHash::None,
        "ipfs" => BytecodeHash::Ipfs,
        "bzzr1" => BytecodeHash::Bzzr1,
        other => bail!("foundry.toml: unknown bytecode_hash `{other}`"),
    };
    settings.metadata = Some(SettingsMetadata::new(bytecode_hash, bool_key("cbor_metadata").unwrap_or(true)));
    settings.remappings = remappings.clone();

    let libs = profile
        .get("libs")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_str)
        .map(|l| root.join(l))
        .collect();

    Ok(FoundryProfile {
        solc: root.join(str_key("solc")?),
        src: root.join(str_key("src")?),
        libs,
        remappings,
        settings: SolcSettings { settings, cli_settings: CliSettings::default() },
    })
}
