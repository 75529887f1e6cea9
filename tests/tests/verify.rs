//! `ct verify` end to end: a good bundle, and each failure past the structure check with its
//! exact exit code — a changed blob (1), a manifest changed after signing, a forged or missing
//! signature (2), an untrusted or impostor key (3) — plus I/O and usage errors.

use cerro_tests::rawtar::{self, Entry};
use cerro_tests::{blob_entry, flip_byte, signed_bundle, skopeo_layers, Compression, TestEnv, TAG};
use std::fs;

/// A fresh env that trusts the shared bundle's key.
fn trusting() -> TestEnv {
    let env = TestEnv::new();
    env.trust(&signed_bundle().public_key);
    env
}

fn copy_bundle(env: &TestEnv, name: &str) -> String {
    let p = env.path(name);
    fs::copy(&signed_bundle().bundle, &p).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn a_good_bundle_verifies() {
    let s = signed_bundle();
    let env = trusting();
    let b = s.bundle.to_str().unwrap();
    env.ct(&["verify", b]).ok().stdout_has("VERIFIED");
    let v = env.ct(&["--json", "verify", b]).ok().json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    let rep = &v["report"];
    assert_eq!(rep["failure"], serde_json::Value::Null);
    assert_eq!(rep["bundle_digest"], s.pack["bundle_digest"]);
    assert_eq!(rep["manifest"]["image"]["digest"], s.pack["image_digest"]);
    let sig = &rep["signatures"][0];
    assert_eq!(sig["key_id"], "alice");
    assert_eq!(sig["fingerprint"], s.fingerprint.as_str());
    assert_eq!(
        (sig["valid"].clone(), sig["trusted"].clone()),
        (true.into(), true.into())
    );
    let blobs = rep["blobs"].as_array().unwrap();
    assert_eq!(
        blobs.len(),
        5,
        "manifest, config, one layer, the SBOM, the provenance"
    );
    let prov = blobs
        .iter()
        .find(|b| b["role"] == "attestation provenance")
        .unwrap_or_else(|| panic!("{rep}"));
    assert_eq!(
        prov["note"],
        format!("DSSE signatures: alice ({}): valid, trusted", s.fingerprint),
        "{rep}"
    );
    assert!(
        blobs.iter().any(|b| b["role"] == "attestation sbom"),
        "{rep}"
    );
    assert!(blobs.iter().all(|b| b["ok"] == true), "{rep}");
    // The layer digest ct checked is the one skopeo reads from the same file.
    let layers = skopeo_layers(&s.bundle);
    assert!(blobs.iter().any(|b| b["digest"] == layers[0].as_str()));
    // -q prints nothing on success.
    let q = env.ct(&["-q", "verify", b]);
    q.ok();
    assert_eq!(q.stdout, "");
}

#[test]
fn a_changed_byte_in_a_layer_is_a_hash_mismatch_naming_the_digest() {
    let env = trusting();
    let b = copy_bundle(&env, "b.ctp");
    let layer = &skopeo_layers(&signed_bundle().bundle)[0];
    let at = rawtar::data_offset(env.path("b.ctp").as_path(), &blob_entry(layer));
    flip_byte(&env.path("b.ctp"), at + 4096);
    env.ct(&["verify", &b]).fails(1, &[layer, "layer 1"]);
    let v = env.ct(&["--json", "verify", &b]).json_fails(1, &[layer]);
    assert_eq!(v["report"]["failure"]["kind"], "hash_mismatch");
    // The signature is still good: only the content is wrong.
    assert_eq!(v["report"]["signatures"][0]["valid"], true);
}

#[test]
fn a_changed_config_is_a_hash_mismatch_too() {
    let env = trusting();
    let b = copy_bundle(&env, "b.ctp");
    let m = rawtar::read(&signed_bundle().bundle);
    let manifest =
        String::from_utf8(m[rawtar::find(&m, "cerro/manifest.toml")].data.clone()).unwrap();
    let config = manifest
        .split("[config]")
        .nth(1)
        .and_then(|s| s.lines().find(|l| l.starts_with("digest = ")))
        .map(|l| {
            l.trim_start_matches("digest = ")
                .trim_matches('"')
                .to_string()
        })
        .unwrap();
    let at = rawtar::data_offset(env.path("b.ctp").as_path(), &blob_entry(&config));
    flip_byte(&env.path("b.ctp"), at + 10);
    env.ct(&["verify", &b]).fails(1, &[&config, "image config"]);
}

/// The shared bundle's entries with the manifest's version changed to `new`, and summary.json
/// made to match it, but the old signature kept.
fn edited_after_signing(new: &str) -> Vec<Entry> {
    let mut entries = rawtar::read(&signed_bundle().bundle);
    let i = rawtar::find(&entries, "cerro/manifest.toml");
    let old_bytes = entries[i].data.clone();
    let old = String::from_utf8(old_bytes.clone()).unwrap();
    let old_version = old
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let new_text = old.replace(
        &format!("version = \"{old_version}\""),
        &format!("version = \"{new}\""),
    );
    entries[i].set_data(new_text.as_bytes());
    let j = rawtar::find(&entries, "cerro/summary.json");
    let summary = String::from_utf8(entries[j].data.clone()).unwrap();
    let summary = summary
        .replace(
            &format!("\"version\": \"{old_version}\""),
            &format!("\"version\": \"{new}\""),
        )
        .replace(
            &cerro_tests::sha256(&old_bytes),
            &cerro_tests::sha256(new_text.as_bytes()),
        );
    entries[j].set_data(summary.as_bytes());
    entries
}

#[test]
fn a_manifest_edited_after_signing_is_signature_invalid() {
    let env = trusting();
    let p = env.path("edited.ctp");
    rawtar::write(&p, &edited_after_signing("6.6.6-evil"));
    let b = p.to_str().unwrap();
    env.ct(&["verify", b])
        .fails(2, &["alice", "does not match the manifest"]);
    let v = env
        .ct(&["--json", "verify", b])
        .json_fails(2, &["does not match the manifest"]);
    assert_eq!(v["report"]["failure"]["kind"], "signature_invalid");
    assert_eq!(v["report"]["signatures"][0]["valid"], false);
    // The control: the same re-assembly with the version unchanged verifies, so it is the edit
    // (and nothing the harness did) that breaks the signature.
    let old = String::from_utf8(
        rawtar::read(&signed_bundle().bundle)
            .into_iter()
            .find(|e| e.name() == "cerro/manifest.toml")
            .unwrap()
            .data,
    )
    .unwrap();
    let v0 = old
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let same = env.path("same.ctp");
    rawtar::write(&same, &edited_after_signing(&v0));
    env.ct(&["verify", same.to_str().unwrap()]).ok();
}

#[test]
fn an_unsigned_bundle_is_signature_invalid() {
    let env = trusting();
    let mut entries = rawtar::read(&signed_bundle().bundle);
    entries.retain(|e| !e.name().ends_with(".sig"));
    let p = env.path("unsigned.ctp");
    rawtar::write(&p, &entries);
    env.ct(&["verify", p.to_str().unwrap()])
        .fails(2, &["not signed"]);
}

#[test]
fn forged_signatures_are_signature_invalid() {
    let env = trusting();
    let s = signed_bundle();
    // A signature file that claims alice's fingerprint but carries another public key.
    let mallory = TestEnv::new();
    mallory.keygen("alice");
    let fake_pub: serde_json::Value =
        serde_json::from_slice(&fs::read(mallory.config.join("trust/alice.pub")).unwrap()).unwrap();
    let mut entries = rawtar::read(&s.bundle);
    let i = rawtar::find(&entries, "cerro/signatures/alice.sig");
    let mut sig: serde_json::Value = serde_json::from_slice(&entries[i].data).unwrap();
    sig["public_key"] = fake_pub["public_key"].clone();
    entries[i].set_data(&serde_json::to_vec_pretty(&sig).unwrap());
    let p = env.path("swapped-key.ctp");
    rawtar::write(&p, &entries);
    env.ct(&["verify", p.to_str().unwrap()])
        .fails(2, &["alice", "claims fingerprint", &s.fingerprint]);

    // A signature made under a suite this ct does not verify.
    let mut entries = rawtar::read(&s.bundle);
    let mut sig: serde_json::Value = serde_json::from_slice(&entries[i].data).unwrap();
    sig["suite"] = "CT-SIG-99".into();
    entries[i].set_data(&serde_json::to_vec_pretty(&sig).unwrap());
    let p = env.path("suite.ctp");
    rawtar::write(&p, &entries);
    env.ct(&["verify", p.to_str().unwrap()])
        .fails(2, &["unsupported suite", "CT-SIG-99"]);
    // An Ed25519 signature relabelled as ML-DSA-87 (CT-SIG-03): its sizes give it away.
    let mut entries = rawtar::read(&s.bundle);
    let mut sig: serde_json::Value = serde_json::from_slice(&entries[i].data).unwrap();
    sig["suite"] = "CT-SIG-03".into();
    entries[i].set_data(&serde_json::to_vec_pretty(&sig).unwrap());
    let p = env.path("suite3.ctp");
    rawtar::write(&p, &entries);
    env.ct(&["verify", p.to_str().unwrap()]).fails(
        2,
        &["alice", "32 bytes", "CT-SIG-03 public keys are 2592 bytes"],
    );

    // One flipped bit in the signature itself.
    let mut entries = rawtar::read(&s.bundle);
    let mut sig: serde_json::Value = serde_json::from_slice(&entries[i].data).unwrap();
    let mut raw = sig["signature"].as_str().unwrap().to_string().into_bytes();
    raw[3] = if raw[3] == b'A' { b'B' } else { b'A' };
    sig["signature"] = String::from_utf8(raw).unwrap().into();
    entries[i].set_data(&serde_json::to_vec_pretty(&sig).unwrap());
    let p = env.path("bitflip.ctp");
    rawtar::write(&p, &entries);
    env.ct(&["verify", p.to_str().unwrap()])
        .fails(2, &["alice", "does not match"]);
}

#[test]
fn a_signer_missing_from_the_trust_store_is_key_not_trusted() {
    let s = signed_bundle();
    let env = TestEnv::new(); // trusts nobody
    let b = s.bundle.to_str().unwrap();
    env.ct(&["verify", b]).fails(3, &["alice", &s.fingerprint]);
    let v = env
        .ct(&["--json", "verify", b])
        .json_fails(3, &["alice", &s.fingerprint]);
    assert_eq!(v["report"]["failure"]["kind"], "key_not_trusted");
    assert_eq!(v["report"]["signatures"][0]["valid"], true);
    assert_eq!(v["report"]["signatures"][0]["trusted"], false);
    // Trusting some other key does not help.
    env.keygen("bob");
    env.ct(&["verify", b]).fails(3, &["alice", &s.fingerprint]);
    assert!(env.config.join("trust/bob.pub").exists());
    assert!(
        !env.config.join("trust/alice.pub").exists(),
        "verify never adds trust"
    );
}

#[test]
fn an_impostor_key_with_a_trusted_name_is_not_trusted() {
    // Mallory names her key "alice" and packs the same image: the key id is a label, trust is
    // decided by the fingerprint.
    let mallory = TestEnv::new();
    let fp = mallory.keygen("alice");
    mallory.image(Compression::Gzip, "img");
    mallory.pack(&format!("oci:img:{TAG}"), "b.ctp", &[]);
    let env = trusting();
    assert_ne!(fp, signed_bundle().fingerprint);
    env.ct(&["verify", mallory.path("b.ctp").to_str().unwrap()])
        .fails(3, &["alice", &fp]);
}

#[test]
fn two_signers_one_trusted_verifies() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.keygen("bob");
    env.image(Compression::Gzip, "img");
    let p = env.pack("oci:img:busybox", "b.ctp", &["-k", "alice", "-k", "bob"]);
    assert_eq!(p["signatures"].as_array().unwrap().len(), 2);
    env.ct(&["key", "remove", "bob"]).ok();
    let v = env.ct(&["--json", "verify", "b.ctp"]).ok().json();
    let sigs = v["report"]["signatures"].as_array().unwrap();
    let trusted: Vec<bool> = sigs.iter().map(|s| s["trusted"] == true).collect();
    assert_eq!(trusted, vec![true, false], "{v}");
}

#[test]
fn a_missing_bundle_is_an_io_error() {
    let env = trusting();
    env.ct(&["verify", "nope.ctp"]).fails(11, &["nope.ctp"]);
    env.ct(&["--json", "verify", "nope.ctp"])
        .json_fails(11, &["nope.ctp"]);
    // A directory is not a bundle either.
    fs::create_dir(env.path("dir.ctp")).unwrap();
    let r = env.ct(&["verify", "dir.ctp"]);
    assert!(r.code == 11 || r.code == 10, "{r:#?}");
    assert!(r.stderr.contains("dir.ctp"), "{r:#?}");
}

#[test]
fn usage_errors_are_64() {
    let env = TestEnv::new();
    env.ct(&[]).fails(64, &["requires a subcommand"]);
    env.ct(&["verify"]).fails(64, &["<BUNDLE>"]);
    env.ct(&["verify", "--bogus", "b.ctp"])
        .fails(64, &["--bogus"]);
    env.ct(&["frobnicate"]).fails(64, &["frobnicate"]);
    env.ct(&["--color", "purple", "key", "list"])
        .fails(64, &["purple"]);
    env.ct(&["pack", "oci:x"]).fails(64, &["--output"]);
}

#[test]
fn a_broken_trust_store_or_config_is_reported_not_ignored() {
    let s = signed_bundle();
    let env = trusting();
    let b = s.bundle.to_str().unwrap();
    fs::write(env.config.join("trust/broken.pub"), "not json").unwrap();
    env.ct(&["verify", b]).fails(10, &["broken.pub"]);
    fs::remove_file(env.config.join("trust/broken.pub")).unwrap();
    env.ct(&["verify", b]).ok();
    fs::write(env.config.join("config.toml"), "defualt_key = \"alice\"\n").unwrap();
    env.ct(&["verify", b])
        .fails(10, &["config.toml", "defualt_key"]);
}
