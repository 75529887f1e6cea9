//! Interoperability of the post-quantum suites with an independent implementation:
//! dilithium-py (pure-Python ML-DSA, FIPS 204), with the `cryptography` package for the Ed25519
//! half of a hybrid. The test installs both from PyPI into a virtual environment cached under
//! the target directory (`python3 -m venv`; needs python3 with venv and the network to PyPI).
//! `tests/interop/ml_dsa.py` builds the signed message from spec/signature.md §2 on its own.
//!
//! Both directions: dilithium-py verifies the signatures `ct` puts in bundles (CT-SIG-03, and
//! both halves of CT-SIG-02), and `ct` verifies signatures dilithium-py makes over the same
//! message (hedged, i.e. randomised, signing — not only the deterministic kind ct makes) once
//! attached to a bundle. And the spec vectors' keys and deterministic signatures come out of
//! dilithium-py byte for byte.

use base64::Engine as _;
use cerro_tests::fixtures::python_venv;
use cerro_tests::{rawtar, repo_root, run_command_timeout, sha256, Run, TestEnv, TAG};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// dilithium-py and, for the Ed25519 half, `cryptography`, in a cached virtual environment.
fn python() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| python_venv(&["dilithium-py==1.5.1", "cryptography>=41"]))
}

fn interop(args: &[&str]) -> Run {
    let mut c = Command::new(python());
    c.arg(repo_root().join("tests/interop/ml_dsa.py"))
        .args(args);
    run_command_timeout(c, Duration::from_secs(120))
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The manifest and a signature file of `bundle`, the manifest written to `dir/manifest.toml`.
fn parts(bundle: &Path, key_id: &str, dir: &Path) -> (PathBuf, Value) {
    let entries = rawtar::read(bundle);
    let m = &entries[rawtar::find(&entries, "cerro/manifest.toml")].data;
    let path = dir.join("manifest.toml");
    fs::write(&path, m).unwrap();
    let s = &entries[rawtar::find(&entries, &format!("cerro/signatures/{key_id}.sig"))].data;
    (path, serde_json::from_slice(s).unwrap())
}

fn grouped_fingerprint(raw: &[u8]) -> String {
    let hex = &sha256(raw)["sha256:".len()..];
    let groups: Vec<&str> = (0..16).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    format!("SHA256:{}", groups.join(":"))
}

#[test]
fn dilithium_py_verifies_what_ct_signs() {
    let env = TestEnv::new();
    for (id, suite) in [("ml", "CT-SIG-03"), ("hy", "CT-SIG-02")] {
        env.ct(&["keygen", "--id", id, "--suite", suite]).ok();
    }
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack(
        &format!("oci:img:{TAG}"),
        "b.ctp",
        &["-k", "ml", "-k", "hy"],
    );
    for (id, suite) in [("ml", "CT-SIG-03"), ("hy", "CT-SIG-02")] {
        let (manifest, sig) = parts(&env.path("b.ctp"), id, env.root());
        assert_eq!(sig["suite"], suite);
        let (pk, s) = (
            sig["public_key"].as_str().unwrap(),
            sig["signature"].as_str().unwrap(),
        );
        let r = interop(&["verify", suite, manifest.to_str().unwrap(), pk, s]);
        assert_eq!(
            r.code, 0,
            "dilithium-py refuses ct's {suite} signature\n{r:?}"
        );
        assert_eq!(r.stdout.trim(), "valid");
        // The same signature over a changed manifest, or under the other suite id, is refused.
        let mut changed = fs::read(&manifest).unwrap();
        changed[10] ^= 1;
        let other = env.path("changed.toml");
        fs::write(&other, changed).unwrap();
        let r = interop(&["verify", suite, other.to_str().unwrap(), pk, s]);
        assert_eq!((r.code, r.stdout.trim()), (1, "invalid"), "{r:?}");
        if suite == "CT-SIG-03" {
            // The suite id is part of what is signed: CT-SIG-03 bytes are not a CT-SIG-02 half.
            let r = interop(&["verify", "CT-SIG-02", manifest.to_str().unwrap(), pk, s]);
            assert_eq!(r.code, 1, "{r:?}");
        }
    }
}

#[test]
fn ct_verifies_what_dilithium_py_signs() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.image(cerro_tests::Compression::Gzip, "img");
    let packed = env.pack(&format!("oci:img:{TAG}"), "b.ctp", &["-k", "alice"]);
    let (manifest, _) = parts(&env.path("b.ctp"), "alice", env.root());
    for (id, suite) in [("py-mldsa", "CT-SIG-03"), ("py-hybrid", "CT-SIG-02")] {
        let r = interop(&["sign", suite, manifest.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{r:?}");
        let made: Value = serde_json::from_str(&r.stdout).unwrap();
        let pk = made["public_key"].as_str().unwrap();
        let fingerprint = grouped_fingerprint(&b64(pk));
        // The files a signer using another implementation writes (spec/signature.md §3, §4).
        let sig = json!({"format": "cerro-torre/signature/v1", "suite": suite, "key_id": id,
            "fingerprint": fingerprint, "public_key": pk, "signature": made["signature"]});
        let public = json!({"format": "cerro-torre/public-key/v1", "suite": suite, "key_id": id,
            "fingerprint": fingerprint, "public_key": pk});
        fs::write(
            env.path(&format!("{id}.sig")),
            serde_json::to_vec_pretty(&sig).unwrap(),
        )
        .unwrap();
        fs::write(
            env.path(&format!("{id}.pub")),
            serde_json::to_vec_pretty(&public).unwrap(),
        )
        .unwrap();
        let v = env
            .ct(&[
                "--json",
                "re-sign",
                "b.ctp",
                "--attach",
                &format!("{id}.sig"),
            ])
            .ok()
            .json();
        assert_eq!(v["bundle_digest"], packed["bundle_digest"]);
        env.ct(&["key", "import", &format!("{id}.pub")]).ok();
    }
    // Only the Python-made signatures are trusted now.
    env.ct(&["key", "remove", "alice"]).ok();
    let rep = env.ct(&["--json", "verify", "b.ctp"]).ok().json();
    let sigs = rep["report"]["signatures"].as_array().unwrap();
    let trusted: Vec<(&str, &str)> = sigs
        .iter()
        .filter(|s| s["trusted"] == true)
        .map(|s| (s["key_id"].as_str().unwrap(), s["suite"].as_str().unwrap()))
        .collect();
    assert_eq!(
        trusted,
        [("py-hybrid", "CT-SIG-02"), ("py-mldsa", "CT-SIG-03")]
    );
}

#[test]
fn the_spec_vectors_come_out_of_dilithium_py_byte_for_byte() {
    let root = repo_root();
    let manifest = root.join("spec/vectors/manifest/minimal.toml");
    for suite in ["ct-sig-02", "ct-sig-03"] {
        let vector = root.join(format!("spec/vectors/signature/suites/{suite}.json"));
        let v: Value = serde_json::from_slice(&fs::read(&vector).unwrap()).unwrap();
        let r = interop(&[
            "vector",
            vector.to_str().unwrap(),
            manifest.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let made: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            made["public_key"], v["public_key_b64"],
            "{suite}: key from seed"
        );
        assert_eq!(
            made["signature"], v["signature_b64"],
            "{suite}: deterministic signature"
        );
    }
}
