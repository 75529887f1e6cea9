//! `ct explain` end to end: the human story names the package, source, every layer, every signer
//! with fingerprint and trust, and the verdict; `--json` and the section flags; untrusted signers.

use cerro_tests::{signed_bundle, skopeo_layers, TestEnv};

fn trusting() -> TestEnv {
    let env = TestEnv::new();
    env.trust(&signed_bundle().public_key);
    env
}

#[test]
fn explain_tells_the_whole_story() {
    let s = signed_bundle();
    let env = trusting();
    let r = env.ct(&["explain", s.bundle.to_str().unwrap()]);
    r.ok();
    r.stdout_has("Package busybox")
        .stdout_has(s.pack["version"].as_str().unwrap())
        .stdout_has("source      oci:img:busybox")
        .stdout_has(s.pack["image_digest"].as_str().unwrap())
        .stdout_has(s.pack["bundle_digest"].as_str().unwrap())
        .stdout_has("created     2024-01-01T00:00:00Z");
    let layers = skopeo_layers(&s.bundle);
    assert!(!layers.is_empty());
    for l in &layers {
        let line = r
            .stdout
            .lines()
            .find(|x| x.contains(l.as_str()))
            .unwrap_or_else(|| panic!("layer {l} not named:\n{}", r.stdout));
        assert!(
            line.contains("gzip tar") && line.contains("digest matches"),
            "{line}"
        );
    }
    let signer = r
        .stdout
        .lines()
        .find(|x| x.contains(&s.fingerprint) && !x.contains("DSSE"))
        .unwrap_or_else(|| panic!("fingerprint not shown:\n{}", r.stdout));
    // The provenance, its builder and its envelope's signature, checked with alice's key.
    r.stdout_has("provenance  SLSA v1, built by https://cerro-torre.invalid/builders/ct")
        .stdout_has(&format!(
            "DSSE envelope signatures: alice ({}): valid, trusted",
            s.fingerprint
        ));
    assert!(
        signer.contains("alice") && signer.contains("CT-SIG-01"),
        "{signer}"
    );
    r.stdout_has("valid and trusted")
        .stdout_has("Verdict: VERIFIED");
}

#[test]
fn explain_json_parses_and_matches_verify() {
    let s = signed_bundle();
    let env = trusting();
    let b = s.bundle.to_str().unwrap();
    let e = env.ct(&["--json", "explain", b]).ok().json();
    let v = env.ct(&["--json", "verify", b]).ok().json();
    assert_eq!(e["ok"], true);
    assert_eq!(
        e["report"], v["report"],
        "explain and verify report the same checks"
    );
    assert_eq!(e["report"]["manifest"]["package"]["name"], "busybox");
}

#[test]
fn section_flags_restrict_the_output() {
    let s = signed_bundle();
    let env = trusting();
    let b = s.bundle.to_str().unwrap();
    let layers = skopeo_layers(&s.bundle);
    let signers = env.ct(&["explain", b, "--signers"]);
    signers
        .ok()
        .stdout_has("Signatures (1)")
        .stdout_has(&s.fingerprint)
        .stdout_lacks("Layers (")
        .stdout_lacks(&layers[0])
        .stdout_has("Verdict: VERIFIED");
    let only_layers = env.ct(&["explain", b, "--layers"]);
    only_layers
        .ok()
        .stdout_has("Layers (1")
        .stdout_has(&layers[0])
        .stdout_lacks("Signatures (")
        .stdout_has("Verdict: VERIFIED");
    let both = env.ct(&["explain", b, "--layers", "--signers"]);
    both.ok()
        .stdout_has("Layers (1")
        .stdout_has("Signatures (1)");
}

#[test]
fn explain_an_untrusted_signer_says_so_and_exits_3() {
    let s = signed_bundle();
    let env = TestEnv::new();
    let r = env.ct(&["explain", s.bundle.to_str().unwrap()]);
    r.assert_code(3)
        .stdout_has("NOT trusted")
        .stdout_has(&s.fingerprint)
        .stdout_has("Verdict: REJECTED (exit 3)")
        .stdout_has("ct key import");
    let v = env
        .ct(&["--json", "explain", s.bundle.to_str().unwrap()])
        .json_fails(3, &["alice"]);
    assert_eq!(v["report"]["signatures"][0]["trusted"], false);
}

#[test]
fn explain_names_the_policy_rule_that_rejects() {
    let s = signed_bundle();
    let env = trusting();
    std::fs::write(
        env.path("p.json"),
        r#"{"version": "1", "default_action": "allow", "require_attestations": {"transparency_log": true}}"#,
    )
    .unwrap();
    env.ct(&["explain", s.bundle.to_str().unwrap(), "--policy", "p.json"])
        .assert_code(5)
        .stdout_has("rule require_attestations.transparency_log rejects it")
        .stdout_has("Verdict: REJECTED (exit 5)");
}

#[test]
fn explain_a_missing_bundle_is_an_io_error() {
    let env = TestEnv::new();
    env.ct(&["explain", "nope.ctp"]).fails(11, &["nope.ctp"]);
}
