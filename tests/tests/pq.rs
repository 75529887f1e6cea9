//! Post-quantum suites end to end: `ct keygen --suite CT-SIG-02|03` and the key commands show
//! the suite; packing with them is deterministic; a PQ signature is added to an Ed25519 bundle
//! with no digest changing; a policy that requires CT-SIG-02 refuses a CT-SIG-01-only bundle
//! with exit 4 and says which suite it found and which it needs; a hybrid with either half
//! tampered, its halves swapped or truncated is refused with exit 2 naming the half;
//! `--attach` takes a signature made elsewhere; `ct verify --explain` shows every step.

use base64::Engine as _;
use cerro_tests::{rawtar, sha256, TestEnv, TAG};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `ct keygen --id ID --suite SUITE` with `--json`; returns the report.
fn keygen(env: &TestEnv, id: &str, suite: &str) -> Value {
    env.ct(&["--json", "keygen", "--id", id, "--suite", suite])
        .ok()
        .json()
}

/// The grouped fingerprint of raw key bytes, computed here.
fn fingerprint(raw: &[u8]) -> String {
    let hex = &sha256(raw)["sha256:".len()..];
    let groups: Vec<&str> = (0..16).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    format!("SHA256:{}", groups.join(":"))
}

fn signature_file(bundle: &Path, key_id: &str) -> Value {
    let entries = rawtar::read(bundle);
    let i = rawtar::find(&entries, &format!("cerro/signatures/{key_id}.sig"));
    serde_json::from_slice(&entries[i].data).unwrap()
}

/// A copy of `bundle` at `out` whose signature file for `key_id` has its raw signature replaced
/// by `edit(raw)`.
fn with_signature(bundle: &Path, out: &Path, key_id: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut entries = rawtar::read(bundle);
    let i = rawtar::find(&entries, &format!("cerro/signatures/{key_id}.sig"));
    let mut sig: Value = serde_json::from_slice(&entries[i].data).unwrap();
    let mut raw = B64.decode(sig["signature"].as_str().unwrap()).unwrap();
    edit(&mut raw);
    sig["signature"] = B64.encode(&raw).into();
    entries[i].set_data(&serde_json::to_vec_pretty(&sig).unwrap());
    rawtar::write(out, &entries);
}

fn write_policy(env: &TestEnv, name: &str, v: &Value) -> String {
    let p = env.path(name);
    fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn keygen_per_suite_and_the_key_commands_show_the_suite() {
    let env = TestEnv::new();
    let mut fps = Vec::new();
    for (id, suite, algo, pk_len, seed_len) in [
        ("ed", "CT-SIG-01", "Ed25519", 32, 32),
        (
            "hybrid",
            "CT-SIG-02",
            "hybrid Ed25519 + ML-DSA-87",
            2624,
            64,
        ),
        ("mldsa", "ct-sig-03", "ML-DSA-87", 2592, 32),
    ] {
        let v = keygen(&env, id, suite);
        assert_eq!(v["suite"], suite.to_uppercase(), "{v}");
        assert_eq!(v["algorithm"], algo);
        let pubf: Value =
            serde_json::from_slice(&fs::read(env.config.join(format!("trust/{id}.pub"))).unwrap())
                .unwrap();
        let raw = B64.decode(pubf["public_key"].as_str().unwrap()).unwrap();
        assert_eq!(raw.len(), pk_len, "{id}: raw public key size");
        // The fingerprint is the SHA-256 of the raw public key (both halves for the hybrid).
        assert_eq!(v["fingerprint"], fingerprint(&raw), "{id}");
        let sk: Value =
            serde_json::from_slice(&fs::read(env.config.join(format!("keys/{id}.key"))).unwrap())
                .unwrap();
        assert_eq!(sk["suite"], suite.to_uppercase());
        // The sealed seed plus the 16-byte Poly1305 tag.
        let ct = B64.decode(sk["ciphertext"].as_str().unwrap()).unwrap();
        assert_eq!(ct.len(), seed_len + 16, "{id}: sealed seed size");
        assert_eq!(
            cerro_tests::mode_of(&env.config.join(format!("keys/{id}.key"))) & 0o777,
            0o600
        );
        fps.push(v["fingerprint"].as_str().unwrap().to_string());
    }
    let list = env.ct(&["--json", "key", "list"]).ok().json();
    let suites: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["suite"].as_str().unwrap())
        .collect();
    assert_eq!(suites, ["CT-SIG-01", "CT-SIG-02", "CT-SIG-03"]);
    env.ct(&["key", "list"])
        .ok()
        .stdout_has("CT-SIG-02 (hybrid Ed25519 + ML-DSA-87)")
        .stdout_has("CT-SIG-03 (ML-DSA-87)");

    // Export, import elsewhere: the suite and fingerprint travel.
    env.ct(&["key", "export", "hybrid", "--public", "-o", "hybrid.pub"])
        .ok()
        .stdout_has("CT-SIG-02");
    let other = TestEnv::new();
    let v = other
        .ct(&[
            "--json",
            "key",
            "import",
            env.path("hybrid.pub").to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(v["suite"], "CT-SIG-02");
    assert_eq!(v["fingerprint"], fps[1]);
    other
        .ct(&[
            "key",
            "import",
            env.path("hybrid.pub").to_str().unwrap(),
            "--id",
            "h2",
        ])
        .fails(64, &["already trusted"]);
    let v = env
        .ct(&["--json", "key", "export", "mldsa", "--public"])
        .ok()
        .json();
    assert_eq!(v["suite"], "CT-SIG-03");

    // Unknown suites are usage errors that list the real ones; nothing is written.
    env.ct(&["keygen", "--id", "x", "--suite", "CT-SIG-04"])
        .fails(64, &["CT-SIG-01", "CT-SIG-02", "CT-SIG-03"]);
    assert!(!env.config.join("keys/x.key").exists());
}

#[test]
fn pq_bundles_are_deterministic_and_verify() {
    let env = TestEnv::new();
    keygen(&env, "hybrid", "CT-SIG-02");
    keygen(&env, "mldsa", "CT-SIG-03");
    env.image(cerro_tests::Compression::Gzip, "img");
    let src = format!("oci:img:{TAG}");
    for key in ["hybrid", "mldsa"] {
        let a = env.pack(&src, &format!("{key}-a.ctp"), &["-k", key]);
        env.pack(&src, &format!("{key}-b.ctp"), &["-k", key]);
        assert_eq!(
            fs::read(env.path(&format!("{key}-a.ctp"))).unwrap(),
            fs::read(env.path(&format!("{key}-b.ctp"))).unwrap(),
            "{key}: packing twice gives the same bytes"
        );
        let rep = env
            .ct(&["--json", "verify", &format!("{key}-a.ctp")])
            .ok()
            .json();
        let s = &rep["report"]["signatures"][0];
        assert_eq!(s["suite"], a["signatures"][0]["suite"]);
        assert_eq!(
            (s["valid"].clone(), s["trusted"].clone()),
            (json!(true), json!(true))
        );
        env.ct(&["verify", &format!("{key}-a.ctp")])
            .ok()
            .stdout_has(a["signatures"][0]["suite"].as_str().unwrap());
    }
}

#[test]
fn a_pq_signature_is_added_without_changing_any_digest_and_satisfies_a_pq_policy() {
    let env = TestEnv::new();
    env.keygen("alice");
    keygen(&env, "hybrid", "CT-SIG-02");
    env.image(cerro_tests::Compression::Gzip, "img");
    let packed = env.pack(&format!("oci:img:{TAG}"), "b.ctp", &["-k", "alice"]);
    let requires_pq = write_policy(
        &env,
        "pq.json",
        &json!({"version": "1", "signers": {"allowed": [{"key_id": "*"}]},
                "suites": {"minimum": "CT-SIG-02"}}),
    );

    // The policy requires CT-SIG-02 (or better); an Ed25519-only bundle is refused, exit 4,
    // with the suite found and the suites accepted.
    env.ct(&["verify", "b.ctp", "--policy", &requires_pq])
        .fails(
            4,
            &[
                "policy rule suites.minimum rejected",
                "alice",
                "CT-SIG-01",
                "suites.minimum is CT-SIG-02",
                "CT-SIG-02 or CT-SIG-03",
            ],
        );
    let v = env
        .ct(&["--json", "verify", "b.ctp", "--policy", &requires_pq])
        .json_fails(4, &["CT-SIG-01"]);
    assert_eq!(v["report"]["policy"]["rule"], "suites.minimum");

    // Add the hybrid signature: no digest changes, both verify, the policy is met.
    fs::copy(env.path("b.ctp"), env.path("before.ctp")).unwrap();
    let v = env
        .ct(&[
            "--json",
            "re-sign",
            "b.ctp",
            "-k",
            "hybrid",
            "--add-signature",
        ])
        .ok()
        .json();
    assert_eq!(v["bundle_digest"], packed["bundle_digest"]);
    assert_eq!(v["image_digest"], packed["image_digest"]);
    let suites: Vec<&str> = v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["suite"].as_str().unwrap())
        .collect();
    assert_eq!(suites, ["CT-SIG-01", "CT-SIG-02"]);
    let after = rawtar::read(&env.path("b.ctp"));
    let before = rawtar::read(&env.path("before.ctp"));
    for name in [
        "cerro/manifest.toml",
        "index.json",
        "cerro/signatures/alice.sig",
    ] {
        assert_eq!(
            after[rawtar::find(&after, name)].data,
            before[rawtar::find(&before, name)].data,
            "{name} is unchanged"
        );
    }
    let rep = env
        .ct(&["--json", "verify", "b.ctp", "--policy", &requires_pq])
        .ok()
        .json();
    assert_eq!(rep["report"]["policy"]["verdict"], "accept");
    assert_eq!(rep["report"]["bundle_digest"], packed["bundle_digest"]);
    // Without the policy both signatures count.
    env.ct(&["verify", "b.ctp"]).ok().stdout_has("CT-SIG-02");
}

/// A change to a raw signature.
type Edit = Box<dyn Fn(&mut Vec<u8>)>;

#[test]
fn a_tampered_hybrid_is_signature_invalid_naming_the_half() {
    let env = TestEnv::new();
    keygen(&env, "hybrid", "CT-SIG-02");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack(&format!("oci:img:{TAG}"), "h.ctp", &["-k", "hybrid"]);
    let b = env.path("h.ctp");
    let cases: [(&str, Edit, &[&str]); 5] = [
        (
            "ed-half.ctp",
            Box::new(|r: &mut Vec<u8>| r[7] ^= 0x01),
            &[
                "hybrid",
                "the Ed25519 signature does not match",
                "ML-DSA-87 half verifies",
            ],
        ),
        (
            "mldsa-half.ctp",
            Box::new(|r: &mut Vec<u8>| r[64 + 2000] ^= 0x01),
            &[
                "hybrid",
                "the ML-DSA-87 signature does not match",
                "Ed25519 half verifies",
            ],
        ),
        (
            "swapped.ctp",
            Box::new(|r: &mut Vec<u8>| r.rotate_left(64)),
            &["hybrid"],
        ),
        (
            "truncated.ctp",
            Box::new(|r: &mut Vec<u8>| {
                r.pop();
            }),
            &[
                "hybrid",
                "4690 bytes",
                "CT-SIG-02 signatures are 4691 bytes",
            ],
        ),
        (
            "ed-only.ctp",
            Box::new(|r: &mut Vec<u8>| r.truncate(64)),
            &["hybrid", "CT-SIG-02 signatures are 4691 bytes"],
        ),
    ];
    for (name, edit, needles) in cases {
        with_signature(&b, &env.path(name), "hybrid", edit);
        env.ct(&["verify", name]).fails(2, needles);
    }
    // The untouched bundle still verifies.
    env.ct(&["verify", "h.ctp"]).ok();
}

#[test]
fn a_signature_made_elsewhere_is_attached_only_if_it_verifies() {
    // Bob signs the same bundle in his own configuration; his signature file is attached to
    // Alice's copy, and verifies once his key is trusted.
    let alice = TestEnv::new();
    alice.keygen("alice");
    alice.image(cerro_tests::Compression::Gzip, "img");
    let packed = alice.pack(&format!("oci:img:{TAG}"), "b.ctp", &["-k", "alice"]);
    let bob = TestEnv::new();
    keygen(&bob, "bob", "CT-SIG-03");
    bob.ct(&[
        "re-sign",
        alice.path("b.ctp").to_str().unwrap(),
        "-k",
        "bob",
        "-o",
        "bob.ctp",
    ])
    .ok();
    let sig = signature_file(&bob.path("bob.ctp"), "bob");
    fs::write(
        alice.path("bob.sig"),
        serde_json::to_vec_pretty(&sig).unwrap(),
    )
    .unwrap();
    bob.ct(&["key", "export", "bob", "--public", "-o", "bob.pub"])
        .ok();

    // A signature over another manifest is refused with exit 2, and the bundle is unchanged.
    let mut wrong = sig.clone();
    let mut raw = B64.decode(wrong["signature"].as_str().unwrap()).unwrap();
    raw[100] ^= 1;
    wrong["signature"] = B64.encode(&raw).into();
    fs::write(
        alice.path("bad.sig"),
        serde_json::to_vec_pretty(&wrong).unwrap(),
    )
    .unwrap();
    let before = fs::read(alice.path("b.ctp")).unwrap();
    alice
        .ct(&["re-sign", "b.ctp", "--attach", "bad.sig"])
        .fails(2, &["bad.sig", "does not match", "nothing was written"]);
    assert_eq!(fs::read(alice.path("b.ctp")).unwrap(), before);

    let v = alice
        .ct(&["--json", "re-sign", "b.ctp", "--attach", "bob.sig"])
        .ok()
        .json();
    assert_eq!(v["bundle_digest"], packed["bundle_digest"]);
    assert_eq!(v["signatures"].as_array().unwrap().len(), 2);
    // Not trusted yet: alice's signature carries it, bob's is reported as not trusted.
    let rep = alice.ct(&["--json", "verify", "b.ctp"]).ok().json();
    assert_eq!(rep["report"]["signatures"][1]["trusted"], false);
    alice.trust(&bob.path("bob.pub"));
    alice.ct(&["key", "remove", "alice"]).ok();
    let rep = alice.ct(&["--json", "verify", "b.ctp"]).ok().json();
    assert_eq!(rep["report"]["signatures"][1]["key_id"], "bob");
    assert_eq!(rep["report"]["signatures"][1]["trusted"], true);
}

#[test]
fn verify_explain_shows_each_signature_and_each_step() {
    let env = TestEnv::new();
    env.keygen("alice");
    keygen(&env, "hybrid", "CT-SIG-02");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack(
        &format!("oci:img:{TAG}"),
        "b.ctp",
        &["-k", "alice", "-k", "hybrid"],
    );
    let p = write_policy(
        &env,
        "p.json",
        &json!({"version": "1", "signers": {"allowed": [{"key_id": "hybrid", "required": true}],
                "threshold": 2}, "suites": {"minimum": "CT-SIG-02"}}),
    );
    let r = env.ct(&["verify", "b.ctp", "--policy", &p, "--explain"]);
    r.assert_code(4);
    for needle in [
        "alice",
        "with CT-SIG-01 (Ed25519): valid, trusted as alice",
        "with CT-SIG-02 (hybrid Ed25519 + ML-DSA-87): valid (both halves verify), trusted as hybrid",
        "1. suites — passed",
        "which is below suites.minimum CT-SIG-02 (suites.minimum): disregarded",
        "6. signers.allowed — passed",
        "signers.allowed[0] (key_id \"hybrid\", required): matched by key \"hybrid\"",
        "7. signers.threshold — REJECTED",
        "counted 1 distinct fingerprint(s)",
        "8. require_attestations — not reached",
        "verdict: reject by signers.threshold (exit 4)",
    ] {
        r.stdout_has(needle);
    }
    let v = env
        .ct(&["--json", "verify", "b.ctp", "--policy", &p, "--explain"])
        .json_fails(4, &["signers.threshold"]);
    let steps = v["explain"]["policy"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    assert_eq!(steps[6]["outcome"], "rejected");
    assert_eq!(steps[7]["outcome"], "not_reached");
    assert_eq!(v["explain"]["policy"]["verdict"], v["report"]["policy"]);
    // Without a policy it says what decides; a failed signature stops before the policy.
    env.ct(&["verify", "b.ctp", "--explain"])
        .ok()
        .stdout_has("no policy was given");
    with_signature(&env.path("b.ctp"), &env.path("bad.ctp"), "alice", |r| {
        r[0] ^= 1
    });
    env.ct(&["verify", "bad.ctp", "--policy", &p, "--explain"])
        .assert_code(2)
        .stdout_has("INVALID")
        .stdout_has("verification stopped before the policy");
}
