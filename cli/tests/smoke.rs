//! Smoke test of the `ct` binary. Its real job: an integration test of the cli package makes
//! `cargo test --workspace` build `ct` before any test runs, so the end-to-end tests in `tests/`
//! always find a current binary.

use std::process::Command;

#[test]
fn ct_version_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_ct"))
        .arg("--version")
        .output()
        .expect("run ct --version");
    assert!(out.status.success(), "ct --version failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("ct ") && stdout.contains(env!("CARGO_PKG_VERSION")),
        "unexpected version line: {stdout:?}"
    );
}
