//! Every product crate is ready to publish: it packages with its sak dependencies (versioned as
//! well as by path), and its library and binary sources read no file outside the crate, so a
//! packaged crate builds on its own.

use std::{
    fs,
    path::{Component, Path, PathBuf},
    process::Command,
};

/// The crates that are never published: the end-to-end tests and the repository tasks.
const UNPUBLISHED: [&str; 2] = ["sak-e2e", "xtask"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_product_crate_packages() {
    let target = tempfile::tempdir().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root()).args(["package", "--workspace", "--no-verify", "--offline", "--allow-dirty"]);
    for name in UNPUBLISHED {
        command.args(["--exclude", name]);
    }
    let out = command.arg("--target-dir").arg(target.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo package failed:\n{stderr}");
    for dir in crate_dirs() {
        let manifest: toml::Table = fs::read_to_string(dir.join("Cargo.toml")).unwrap().parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap();
        assert!(stderr.contains(&format!("Packaging {name} v")), "{name} was not packaged:\n{stderr}");
        assert!(dir.join("README.md").is_file(), "{name} has no README.md");
    }
}

/// `include_str!`/`include_bytes!` in a crate's non-test code must name a file inside the crate:
/// a path that climbs out of it builds here and fails once packaged. Code after the file's first
/// `#[cfg(test)]` is test code, which a package does not build.
#[test]
fn product_sources_include_no_file_outside_their_crate() {
    let mut outside = Vec::new();
    for dir in crate_dirs() {
        for file in rust_files(&dir.join("src")) {
            let text = fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for (i, _) in code.match_indices("include_") {
                let rest = &code[i..];
                let Some(args) =
                    ["include_str!(\"", "include_bytes!(\""].iter().find_map(|m| rest.strip_prefix(m))
                else {
                    continue;
                };
                let path = &args[..args.find('"').unwrap()];
                // Lexically: a link out of the crate (the root's anvil.toml) is not packaged as
                // what it points to.
                if !lexical(&file.parent().unwrap().join(path)).starts_with(&dir) {
                    outside.push(format!("{}: {path}", file.display()));
                }
            }
        }
    }
    assert!(outside.is_empty(), "files outside their crate:\n  {}", outside.join("\n  "));
}

/// `path` with its `.` and `..` components folded, without following links.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
