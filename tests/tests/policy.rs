//! Policies end to end: `ct policy init|check`, and `ct verify --policy` refusing intact, trusted
//! bundles by rule (exit 4, or 5 for a missing attestation), each beside a control that the same
//! bundle passes, plus `default_policy` from config.toml.

use cerro_tests::{signed_bundle, Compression, TestEnv, TAG};
use serde_json::{json, Value};
use std::fs;

/// A fresh env trusting the shared bundle's key.
fn trusting() -> TestEnv {
    let env = TestEnv::new();
    env.trust(&signed_bundle().public_key);
    env
}

fn write_policy(env: &TestEnv, name: &str, v: &Value) -> String {
    let p = env.path(name);
    fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

fn bundle() -> &'static str {
    signed_bundle().bundle.to_str().unwrap()
}

/// Verify the shared bundle under `policy`: exit `code`, naming `rule` on stderr and in JSON.
fn verify_under(env: &TestEnv, policy: &Value, code: i32, rule: &str) {
    let p = write_policy(env, "p.json", policy);
    if code == 0 {
        let v = env
            .ct(&["--json", "verify", bundle(), "--policy", &p])
            .ok()
            .json();
        assert_eq!(v["report"]["policy"]["verdict"], "accept", "{v}");
        return;
    }
    env.ct(&["verify", bundle(), "--policy", &p])
        .fails(code, &[&format!("policy rule {rule} rejected")]);
    let v = env
        .ct(&["--json", "verify", bundle(), "--policy", &p])
        .json_fails(code, &[rule]);
    assert_eq!(v["report"]["policy"]["verdict"], "reject");
    assert_eq!(v["report"]["policy"]["rule"], rule);
}

#[test]
fn init_then_check_then_verify_with_the_starter_policy() {
    let env = trusting();
    env.ct(&["policy", "init", "-o", "p.json"]).ok();
    let r = env.ct(&["--json", "policy", "check", "p.json"]);
    let v = r.ok().json();
    assert_eq!(v["ok"], true);
    assert!(v["rules"].as_array().is_some_and(|r| !r.is_empty()), "{v}");
    env.ct(&["policy", "check", "p.json"])
        .ok()
        .stdout_has("valid policy");
    env.ct(&["verify", bundle(), "--policy", "p.json"])
        .ok()
        .stdout_has("accepts it");
    // init refuses to overwrite, unless forced.
    fs::write(env.path("p.json"), "{}").unwrap();
    env.ct(&["policy", "init", "-o", "p.json"])
        .fails(64, &["already exists"]);
    assert_eq!(fs::read_to_string(env.path("p.json")).unwrap(), "{}");
    env.ct(&["policy", "init", "-o", "p.json", "--force"]).ok();
    env.ct(&["policy", "check", "p.json"]).ok();
    // The starter policy still refuses bundles by keys outside the trust store.
    let stranger = TestEnv::new();
    stranger.ct(&["policy", "init", "-o", "p.json"]).ok();
    stranger
        .ct(&["verify", bundle(), "--policy", "p.json"])
        .fails(3, &["alice"]);
}

#[test]
fn a_policy_with_an_unknown_field_is_malformed_naming_the_field() {
    let env = trusting();
    let p = write_policy(
        &env,
        "typo.json",
        &json!({"version": "1", "signers": {"allowed": [{"key_id": "*"}], "treshold": 2}}),
    );
    env.ct(&["policy", "check", &p])
        .fails(10, &["signers.treshold", "unknown field"]);
    // verify refuses to run under it (it never falls back to no policy).
    env.ct(&["verify", bundle(), "--policy", &p])
        .fails(10, &["signers.treshold"]);
    env.ct(&["--json", "verify", bundle(), "--policy", &p])
        .json_fails(10, &["signers.treshold"]);
    // Other broken policies.
    let bad = write_policy(&env, "v2.json", &json!({"version": "2"}));
    env.ct(&["policy", "check", &bad])
        .fails(10, &["version", "unsupported policy version"]);
    fs::write(env.path("dup.json"), r#"{"version": "1", "version": "1"}"#).unwrap();
    env.ct(&["policy", "check", "dup.json"])
        .fails(10, &["not valid JSON"]);
    env.ct(&["policy", "check", "missing.json"])
        .fails(11, &["missing.json"]);
    env.ct(&["verify", bundle(), "--policy", "missing.json"])
        .fails(11, &["missing.json"]);
}

#[test]
fn a_blocked_registry_rejects() {
    let env = trusting();
    let allow = json!({"version": "1", "default_action": "allow"});
    verify_under(&env, &allow, 0, "");
    let mut blocked = allow.clone();
    blocked["registries"] = json!({"blocked": ["docker.io/*", "oci:*"]});
    verify_under(&env, &blocked, 4, "registries.blocked[1]");
    let mut allowed_only = allow.clone();
    allowed_only["registries"] = json!({"allowed": ["registry.example.com/*"]});
    verify_under(&env, &allowed_only, 4, "registries.allowed");
    allowed_only["registries"] = json!({"allowed": ["oci:img:*"]});
    verify_under(&env, &allowed_only, 0, "");
}

#[test]
fn a_denied_signer_rejects_by_key_id_or_fingerprint() {
    let env = trusting();
    let s = signed_bundle();
    let base = json!({"version": "1", "signers": {"allowed": [{"key_id": "*"}]}});
    verify_under(&env, &base, 0, "");
    let mut by_id = base.clone();
    by_id["signers"]["denied"] = json!([{"key_id": "bob"}, {"key_id": "ali*", "reason": "left"}]);
    verify_under(&env, &by_id, 4, "signers.denied[1]");
    let mut by_fp = base.clone();
    by_fp["signers"]["denied"] = json!([{"fingerprint": s.fingerprint}]);
    verify_under(&env, &by_fp, 4, "signers.denied[0]");
    // A deny window that ends before the bundle was created (2024-01-01) does not apply.
    let mut old = base.clone();
    old["signers"]["denied"] = json!([{"key_id": "alice", "before": "2023-06-01"}]);
    verify_under(&env, &old, 0, "");
}

#[test]
fn a_required_attestation_that_is_missing_is_5() {
    let env = trusting();
    let base = json!({"version": "1", "signers": {"allowed": [{"key_id": "*"}]}});
    // `ct pack` adds an SBOM and provenance, but no transparency-log entry: that one is missing.
    let mut tlog = base.clone();
    tlog["require_attestations"] = json!({"transparency_log": true});
    verify_under(&env, &tlog, 5, "require_attestations.transparency_log");
    let v = env
        .ct(&["--json", "verify", bundle(), "--policy", "p.json"])
        .json();
    assert_eq!(v["report"]["failure"]["kind"], "attestation_missing");
    for kind in ["sbom", "provenance"] {
        let mut required = base.clone();
        required["require_attestations"] = json!({ kind: true });
        verify_under(&env, &required, 0, "");
    }
    let mut off = base.clone();
    off["require_attestations"] = json!({"sbom": false, "provenance": false});
    verify_under(&env, &off, 0, "");
    // Packed without provenance: required, it is missing (5, naming it); present, 0.
    let s = signed_bundle();
    s.env.pack(
        &format!("oci:img:{TAG}"),
        "no-provenance.ctp",
        &["--no-provenance"],
    );
    let p = write_policy(
        &env,
        "prov.json",
        &json!({"version": "1", "default_action": "allow", "require_attestations": {"provenance": true}}),
    );
    let bare = s.env.path("no-provenance.ctp");
    env.ct(&["verify", bare.to_str().unwrap(), "--policy", &p])
        .fails(5, &["require_attestations.provenance"]);
    env.ct(&["verify", bundle(), "--policy", &p]).ok();
}

#[test]
fn a_pin_with_another_digest_rejects() {
    let env = trusting();
    let s = signed_bundle();
    let wrong = format!("sha256:{}", "e".repeat(64));
    let base = json!({"version": "1", "default_action": "allow"});
    let mut pin = base.clone();
    pin["pin"] = json!({"busybox": {"digest": wrong}});
    verify_under(&env, &pin, 4, "pin[\"busybox\"]");
    pin["pin"] = json!({"busybox": {"digest": s.pack["image_digest"]}});
    verify_under(&env, &pin, 0, "");
    // A pin on another name has no effect; a pin on signers wants a listed one.
    pin["pin"] = json!({"nginx": {"digest": wrong}});
    verify_under(&env, &pin, 0, "");
    pin["pin"] = json!({"busybox": {"signers": ["bob"]}});
    verify_under(&env, &pin, 4, "pin[\"busybox\"]");
    pin["pin"] = json!({"busybox": {"signers": [s.fingerprint]}});
    verify_under(&env, &pin, 0, "");
}

#[test]
fn a_threshold_of_two_needs_two_trusted_signers() {
    let env = TestEnv::new();
    env.keygen("a");
    env.keygen("b");
    env.image(Compression::Gzip, "img");
    env.pack("oci:img:busybox", "one.ctp", &["-k", "a"]);
    env.pack("oci:img:busybox", "two.ctp", &["-k", "a", "-k", "b"]);
    let p = write_policy(
        &env,
        "t.json",
        &json!({"version": "1", "signers": {"allowed": [{"key_id": "*"}], "threshold": 2}}),
    );
    env.ct(&["verify", "one.ctp", "--policy", &p])
        .fails(4, &["signers.threshold"]);
    env.ct(&["verify", "two.ctp", "--policy", &p]).ok();
    // A second signature only counts when its key is trusted.
    env.ct(&["key", "remove", "b"]).ok();
    env.ct(&["verify", "two.ctp", "--policy", &p])
        .fails(4, &["signers.threshold"]);
}

#[test]
fn default_policy_in_config_toml_is_honoured() {
    let env = trusting();
    let reject = write_policy(
        &env,
        "reject.json",
        &json!({"version": "1", "default_action": "allow", "registries": {"blocked": ["oci:*"]}}),
    );
    let accept = write_policy(
        &env,
        "accept.json",
        &json!({"version": "1", "default_action": "allow"}),
    );
    env.ct(&["verify", bundle()]).ok();
    fs::write(
        env.config.join("config.toml"),
        format!("default_policy = \"{reject}\"\n"),
    )
    .unwrap();
    env.ct(&["verify", bundle()])
        .fails(4, &["registries.blocked[0]"]);
    env.ct(&["explain", bundle()])
        .assert_code(4)
        .stdout_has("registries.blocked[0]");
    // --policy wins over the default.
    env.ct(&["verify", bundle(), "--policy", &accept]).ok();
    let v = env.ct(&["--json", "verify", bundle()]).json();
    assert_eq!(v["policy_file"], reject.as_str());
}
