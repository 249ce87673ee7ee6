//! The solc shim (`tools/solc`) behaves like native solc where forge and foundry-compilers
//! depend on it: the version line, outputs beyond a pipe buffer, inputs beyond a pipe buffer.

use foundry_compilers::solc::Solc;
use serde_json::{Value, json};
use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

/// Linux pipe buffers hold 64 KiB; solcjs's own CLI truncates or fails past it.
const PIPE_BUFFER: usize = 64 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn shim() -> PathBuf {
    root().join("tools/solc")
}

/// Runs the shim with `args`, writing `stdin` through a pipe; returns (status, stdout, stderr).
fn run(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(shim())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    (out.status.code().unwrap(), out.stdout, String::from_utf8(out.stderr).unwrap())
}

fn input(sources: Value, outputs: Value) -> Value {
    json!({
        "language": "Solidity",
        "sources": sources,
        "settings": { "optimizer": { "enabled": false }, "outputSelection": { "*": { "*": outputs } } }
    })
}

fn errors(output: &Value) -> Vec<String> {
    output["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["severity"] == "error")
        .map(|e| e["formattedMessage"].to_string())
        .collect()
}

#[test]
fn version_line_is_parsed_by_foundry_compilers() {
    let (code, out, _) = run(&["--version"], b"");
    assert_eq!(code, 0);
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("Version: 0.8.30+commit.") && last.ends_with(".Linux.g++"), "{last}");

    let solc = Solc::new(shim()).unwrap();
    let v = &solc.version;
    assert_eq!((v.major, v.minor, v.patch), (0, 8, 30), "{v}");
}

#[test]
fn output_larger_than_a_pipe_buffer_arrives_whole() {
    // Many contracts with every output requested: several hundred KiB of JSON.
    let source: String = (0..40)
        .map(|i| {
            format!(
                "contract C{i} {{ function f(uint x) external pure returns (uint) {{ return x * {i}; }} }}\n"
            )
        })
        .collect();
    let request = input(
        json!({ "Many.sol": { "content": format!("pragma solidity ^0.8.0;\n{source}") } }),
        json!(["*"]),
    );
    let (code, out, err) = run(&["--standard-json"], request.to_string().as_bytes());
    assert_eq!(code, 0, "{err}");
    assert!(out.len() > 4 * PIPE_BUFFER, "only {} bytes: the test must exceed a pipe buffer", out.len());
    assert_eq!(out[0], b'{', "nothing may precede the JSON (solcjs prints '>>> Cannot retry ...' lines)");
    let output: Value = serde_json::from_slice(&out).expect("complete JSON");
    assert!(errors(&output).is_empty(), "{:?}", errors(&output));
    assert_eq!(output["contracts"]["Many.sol"].as_object().unwrap().len(), 40);

    // The same through foundry-compilers, which reads the compiler through a pipe too.
    let solc = Solc::new(shim()).unwrap();
    let raw = solc.compile_output(&request).unwrap();
    assert_eq!(raw.len(), out.len());
}

#[test]
fn input_larger_than_a_pipe_buffer_is_read_whole() {
    // 1 MiB of comment: the pipe fills many times before the shim has read it all.
    let padding =
        "// padding padding padding padding padding padding padding padding padding\n".repeat(14_000);
    assert!(padding.len() > 16 * PIPE_BUFFER);
    let content = format!("pragma solidity ^0.8.0;\n{padding}contract Tail {{ uint256 public x = 42; }}\n");
    let request = input(json!({ "Big.sol": { "content": content } }), json!(["abi"]));
    let (code, out, err) = run(&["--standard-json"], request.to_string().as_bytes());
    assert_eq!(code, 0, "{err}");
    let output: Value = serde_json::from_slice(&out).unwrap();
    assert!(errors(&output).is_empty(), "{:?}", errors(&output));
    // The contract after the padding was compiled: the whole input arrived.
    assert_eq!(output["contracts"]["Big.sol"]["Tail"]["abi"][0]["name"], "x");
}

#[test]
fn imports_resolve_from_base_and_include_paths_and_allow_paths_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lib/dep")).unwrap();
    std::fs::write(dir.path().join("lib/dep/Dep.sol"), "pragma solidity ^0.8.0;\nlibrary Dep { function one() internal pure returns (uint) { return 1; } }\n").unwrap();
    let main = "pragma solidity ^0.8.0;\nimport \"dep/Dep.sol\";\ncontract Main { function f() external pure returns (uint) { return Dep.one(); } }\n";
    let request = input(json!({ "Main.sol": { "content": main } }), json!(["abi"]));
    let base = dir.path().to_str().unwrap();
    let include = dir.path().join("lib");
    let args = [
        "--base-path",
        base,
        "--include-path",
        include.to_str().unwrap(),
        "--allow-paths",
        base,
        "--standard-json",
    ];
    let (code, out, err) = run(&args, request.to_string().as_bytes());
    assert_eq!(code, 0, "{err}");
    let output: Value = serde_json::from_slice(&out).unwrap();
    assert!(errors(&output).is_empty(), "{:?}", errors(&output));
    assert!(output["contracts"]["Main.sol"]["Main"]["abi"].is_array());
}

#[test]
fn unsupported_options_are_refused_not_ignored() {
    let (code, _, err) = run(&["--bin", "x.sol"], b"");
    assert_ne!(code, 0);
    assert!(err.contains("unsupported option --bin"), "{err}");
}
