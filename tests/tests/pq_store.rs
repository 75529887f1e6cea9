//! The post-quantum suites and key validity windows on the store's path: a record re-verified
//! from the store (`ct unpack NAME`, `ct store tree NAME` — every command that serves stored
//! content goes through the same checks) is judged exactly as its bundle file is. A hybrid
//! (CT-SIG-02) record verifies; a record whose hybrid signature has either half altered is
//! refused with exit 2 naming the half; a record whose signer's trust-store window does not hold
//! its creation time is refused with exit 3 naming the window; a policy that requires CT-SIG-02
//! refuses an Ed25519-only record with exit 4.

use base64::Engine as _;
use cerro_tests::hostile_store::RawStore;
use cerro_tests::{Run, TestEnv, TAG};
use serde_json::{json, Value};
use std::fs;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Bytes of the Ed25519 half that starts a CT-SIG-02 signature (spec/signature.md §5.1).
const ED25519_HALF: usize = 64;

/// `ct --store STORE unpack NAME -o OUT --format rootfs EXTRA…`.
fn unpack(env: &TestEnv, st: &str, name: &str, out: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--store", st, "unpack", name, "-o", out, "--format", "rootfs",
    ];
    args.extend_from_slice(extra);
    env.ct(&args)
}

/// The store record under `digest` with one bit of signature `key_id`'s raw signature flipped
/// at byte `at`.
fn with_flipped_signature(record: &[u8], key_id: &str, at: usize) -> Vec<u8> {
    let mut rec: Value = serde_json::from_slice(record).unwrap();
    let mut sig: Value = serde_json::from_str(rec["signatures"][key_id].as_str().unwrap()).unwrap();
    let mut raw = B64.decode(sig["signature"].as_str().unwrap()).unwrap();
    raw[at] ^= 0x01;
    sig["signature"] = B64.encode(&raw).into();
    let mut text = serde_json::to_string_pretty(&sig).unwrap();
    text.push('\n');
    rec["signatures"][key_id] = text.into();
    serde_json::to_vec(&rec).unwrap()
}

#[test]
fn a_stored_record_is_held_to_suites_windows_and_pq_policies_like_its_file() {
    let env = TestEnv::new();
    env.ct(&["keygen", "--id", "hybrid", "--suite", "CT-SIG-02"])
        .ok();
    env.keygen("alice");
    env.image(cerro_tests::Compression::Gzip, "img");
    let h = env.pack(&format!("oci:img:{TAG}"), "h.ctp", &["-k", "hybrid"]);
    // Another version, so its manifest (and bundle digest) differs from the hybrid one's.
    env.pack(
        &format!("oci:img:{TAG}"),
        "e.ctp",
        &["-k", "alice", "--version", "ed"],
    );
    let store = env.path("store");
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "h.ctp", "--name", "h"])
        .ok();
    env.ct(&["--store", st, "import", "e.ctp", "--name", "e"])
        .ok();
    unpack(&env, st, "h", "out-h", &[]).ok();
    assert!(env.path("out-h").is_dir());
    env.ct(&["--store", st, "store", "tree", "h"]).ok();

    // A policy that requires CT-SIG-02: the hybrid record meets it; the Ed25519 one is refused,
    // exit 4, naming the suite it has.
    let pq = env.path("pq.json");
    fs::write(
        &pq,
        serde_json::to_vec_pretty(&json!({"version": "1",
            "signers": {"allowed": [{"key_id": "*"}]},
            "suites": {"minimum": "CT-SIG-02"}}))
        .unwrap(),
    )
    .unwrap();
    let pq = pq.to_str().unwrap();
    unpack(&env, st, "h", "out-h-pq", &["--policy", pq]).ok();
    unpack(&env, st, "e", "out-e-pq", &["--policy", pq]).fails(4, &["suites.minimum", "CT-SIG-01"]);
    assert!(!env.path("out-e-pq").exists(), "nothing is written");
    env.ct(&["--store", st, "store", "tree", "e", "--policy", pq])
        .fails(4, &["suites.minimum", "CT-SIG-01"]);

    // Either half of the stored hybrid signature altered: refused, exit 2, naming the half.
    let digest = h["bundle_digest"].as_str().unwrap();
    let raw = RawStore::new(&store);
    let good = raw.record(digest);
    for (at, half) in [
        (10, "the Ed25519 signature"),
        (ED25519_HALF + 10, "ML-DSA-87"),
    ] {
        raw.put_record(digest, &with_flipped_signature(&good, "hybrid", at));
        let out = format!("out-bad-{at}");
        unpack(&env, st, "h", &out, &[]).fails(
            2,
            &[&format!("store record {digest}"), half, "does not match"],
        );
        assert!(!env.path(&out).exists(), "nothing is written");
        env.ct(&["--store", st, "store", "tree", "h"])
            .fails(2, &[half]);
    }
    raw.put_record(digest, &good);
    unpack(&env, st, "h", "out-h-again", &[]).ok();

    // The trust store now counts the hybrid key only for bundles created before the example
    // image's creation time (2024-01-01): the record is refused like the file, exit 3, with the
    // window and the creation time in the message.
    let trust = env.config.join("trust/hybrid.pub");
    let mut pk: Value = serde_json::from_slice(&fs::read(&trust).unwrap()).unwrap();
    pk["expires"] = "2023-06-01T00:00:00Z".into();
    fs::write(&trust, serde_json::to_vec_pretty(&pk).unwrap()).unwrap();
    let needles = [
        "hybrid",
        "trusted only for bundles created before 2023-06-01T00:00:00Z",
        "created 2024-01-01T00:00:00Z",
    ];
    env.ct(&["verify", "h.ctp"]).fails(3, &needles);
    unpack(&env, st, "h", "out-h-expired", &[]).fails(3, &needles);
    assert!(!env.path("out-h-expired").exists(), "nothing is written");
    env.ct(&["--store", st, "store", "tree", "h"])
        .fails(3, &needles);
    // The Ed25519 record, signed by a key with no window, is untouched by it.
    unpack(&env, st, "e", "out-e", &[]).ok();
}
