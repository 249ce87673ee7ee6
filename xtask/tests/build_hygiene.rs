//! The build installs from committed locks alone and never edits the checkout:
//! - each npm lock is complete, so `npm ci` resolves it without asking the registry anything
//!   (what the registry lists for other platforms cannot break or change an install);
//! - `tools/tree-guard`, which wraps `make test`, fails when a step changes the checkout.

use serde_json::Value;
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The folders with a package.json and a committed package-lock.json.
const NPM_TREES: [&str; 2] = [".", "tools/node"];

/// Every optional dependency a locked package declares (a platform build such as
/// `@msgpackr-extract/msgpackr-extract-darwin-arm64`) has an entry of its own in the lock.
/// `npm ci` refuses a lock without them; a lock written where the registry did not list them
/// would pass locally and then fail on every machine the day the registry starts listing them.
#[test]
fn every_lock_lists_every_optional_platform_build() {
    for tree in NPM_TREES {
        let path = root().join(tree).join("package-lock.json");
        let lock: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let packages = lock["packages"].as_object().unwrap();
        for (at, package) in packages {
            let Some(optional) = package["optionalDependencies"].as_object() else { continue };
            for name in optional.keys() {
                // Node's lookup: node_modules beside the package, then each ancestor's.
                let mut base = at.as_str();
                let found = loop {
                    let candidate = if base.is_empty() {
                        format!("node_modules/{name}")
                    } else {
                        format!("{base}/node_modules/{name}")
                    };
                    if packages.contains_key(&candidate) {
                        break true;
                    }
                    if base.is_empty() {
                        break false;
                    }
                    base = base.rfind("/node_modules/").map_or("", |i| &base[..i]);
                };
                assert!(
                    found,
                    "{}: `{at}` declares the optional `{name}`, which the lock does not list; \
                     regenerate it with `npm install --package-lock-only` in {tree} and commit it",
                    path.display()
                );
            }
        }
    }
}

/// `npm ci --dry-run --offline` with an empty cache: it succeeds only if the lock alone decides
/// the whole tree, with no registry metadata at all.
#[test]
fn npm_ci_resolves_each_lock_offline_with_an_empty_cache() {
    for tree in NPM_TREES {
        let dir = tempfile::tempdir().unwrap();
        for file in ["package.json", "package-lock.json"] {
            fs::copy(root().join(tree).join(file), dir.path().join(file)).unwrap();
        }
        let out = Command::new("npm")
            .current_dir(dir.path())
            .args(["ci", "--dry-run", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"])
            .arg("--cache")
            .arg(dir.path().join("empty-cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm ci needs more than {tree}/package-lock.json:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lock = fs::read(root().join(tree).join("package-lock.json")).unwrap();
        assert_eq!(fs::read(dir.path().join("package-lock.json")).unwrap(), lock, "npm ci rewrote the lock");
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A scratch checkout: `tracked.txt` committed, `ignored/` in .gitignore, and `dirty.txt` an
/// uncommitted edit of the developer's that was there before the guarded command.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    fs::write(dir.path().join(".gitignore"), "/ignored/\n").unwrap();
    fs::write(dir.path().join("tracked.txt"), "one\n").unwrap();
    fs::write(dir.path().join("dirty.txt"), "committed\n").unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    fs::write(dir.path().join("dirty.txt"), "edited by the developer\n").unwrap();
    dir
}

fn guard(dir: &Path, script: &str) -> Output {
    Command::new(root().join("tools/tree-guard"))
        .current_dir(dir)
        .args(["sh", "-c", script])
        .output()
        .unwrap()
}

#[test]
fn tree_guard_fails_when_the_command_changes_the_checkout() {
    for (script, changed) in [
        ("echo two >> tracked.txt", "M\ttracked.txt"),
        ("rm tracked.txt", "D\ttracked.txt"),
        ("echo new > stray.txt", "A\tstray.txt"),
        ("echo again >> dirty.txt", "M\tdirty.txt"),
    ] {
        let dir = checkout();
        let out = guard(dir.path(), script);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "`{script}` passed the guard: {stderr}");
        assert!(stderr.contains(changed) && stderr.contains("hint:"), "`{script}`: {stderr}");
    }
}

#[test]
fn tree_guard_passes_ignored_output_and_earlier_edits_and_keeps_the_exit_status() {
    let dir = checkout();
    let out = guard(dir.path(), "mkdir -p ignored && echo built > ignored/out && cat dirty.txt");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "edited by the developer\n");
    assert_eq!(guard(dir.path(), "exit 7").status.code(), Some(7));

    // A tarball of the repo (no .git): the command runs, nothing to compare.
    let bare = tempfile::tempdir().unwrap();
    let out = guard(bare.path(), "echo made > new.txt");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn make_test_runs_under_the_guard() {
    let makefile = fs::read_to_string(root().join("Makefile")).unwrap();
    let recipe = makefile.split("\ntest:\n").nth(1).expect("a `test:` target without prerequisites");
    let first = recipe.lines().next().unwrap();
    assert!(first.contains("tools/tree-guard") && first.contains("test-steps"), "`make test` runs `{first}`");
}
