//! Key validity windows, rotation and the doctor's expiry warnings, end to end: a signature on a
//! bundle created after its key's window is refused (exit 3) with the window in the message,
//! while bundles created inside it keep verifying after the key expires; ct does not sign with
//! an expired key, nor a bundle its key's window excludes; `ct key rotate` makes a successor and
//! hands over the default; `ct doctor` warns 30 days ahead.

use cerro_tests::{layout_manifest, put_blob, rewrite_layout_manifest, TestEnv, TAG};
use serde_json::Value;
use std::fs;
use std::path::Path;

/// Give the only image of `layout` this config `created` time (a consistent layout).
fn set_created(layout: &Path, created: &str) {
    let (_, m) = layout_manifest(layout);
    let cd = m["config"]["digest"].as_str().unwrap().to_string();
    let mut config: Value =
        serde_json::from_slice(&fs::read(cerro_tests::blob_path(layout, &cd)).unwrap()).unwrap();
    config["created"] = created.into();
    let bytes = serde_json::to_vec(&config).unwrap();
    let d = put_blob(layout, &bytes);
    rewrite_layout_manifest(layout, |m| {
        m["config"]["digest"] = d.clone().into();
        m["config"]["size"] = bytes.len().into();
    });
}

/// The key-expiry entries of `ct doctor --quick --json` (other checks depend on the host).
fn expiry_checks(env: &TestEnv) -> Vec<Value> {
    let r = env.ct(&["--json", "doctor", "--quick"]);
    let v = r.json();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "key expiry")
        .cloned()
        .collect()
}

#[test]
fn a_signature_outside_its_keys_window_is_refused_naming_the_window() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack(&format!("oci:img:{TAG}"), "now.ctp", &[]); // created 2024-01-01
    env.image(cerro_tests::Compression::Gzip, "future");
    set_created(&env.path("future"), "2031-05-01T00:00:00Z");
    env.pack(&format!("oci:future:{TAG}"), "later.ctp", &[]);
    env.ct(&["verify", "later.ctp"]).ok();

    // Alice's key is retired: it counts only for bundles created before 2030-01-01.
    let v = env
        .ct(&[
            "--json",
            "key",
            "rotate",
            "alice",
            "--expire-old",
            "2030-01-01",
        ])
        .ok()
        .json();
    assert_eq!(v["replaces"]["expires"], "2030-01-01T00:00:00Z");
    let r = env.ct(&["verify", "later.ctp"]);
    r.fails(
        3,
        &[
            "alice",
            "trusted only for bundles created before 2030-01-01T00:00:00Z",
            "created 2031-05-01T00:00:00Z",
        ],
    );
    let v = env
        .ct(&["--json", "verify", "later.ctp"])
        .json_fails(3, &["2030-01-01T00:00:00Z"]);
    let s = &v["report"]["signatures"][0];
    assert_eq!(
        (s["valid"].clone(), s["trusted"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(s["expires"], "2030-01-01T00:00:00Z");
    env.ct(&["verify", "later.ctp"])
        .assert_code(3)
        .stdout_has("outside the key's validity window");
    // A bundle created inside the window keeps verifying after the key's retirement.
    env.ct(&["verify", "now.ctp"]).ok();
    // The policy's time rules still apply to the creation time (a bundle from 2031 is in the
    // future): with the successor's co-signature, the starter policy refuses it for its skew.
    env.ct(&["re-sign", "later.ctp", "-k", "alice-2", "--add-signature"])
        .ok();
    env.ct(&["verify", "later.ctp"]).ok();
    env.ct(&["policy", "init"]).ok();
    env.ct(&["verify", "later.ctp", "--policy", "policy.json"])
        .fails(4, &["time.clock_skew_tolerance_seconds"]);

    // ct itself does not make such a signature: alice may still sign today, but not a bundle
    // created after her window.
    env.ct(&[
        "pack",
        &format!("oci:future:{TAG}"),
        "-o",
        "x.ctp",
        "-k",
        "alice",
    ])
    .fails(
        64,
        &["alice", "2031-05-01T00:00:00Z", "verifiers would refuse"],
    );
    assert!(!env.path("x.ctp").exists());
}

#[test]
fn an_expired_key_signs_nothing_and_the_doctor_warns_ahead() {
    let env = TestEnv::new();
    env.ct(&["keygen", "--id", "soon", "--expires", "10d"])
        .ok()
        .stdout_has("expires");
    let v = env.ct(&["--json", "key", "list"]).ok().json();
    assert!(v["keys"][0]["expires"].is_string());
    assert_eq!(v["keys"][0]["expired"], false);
    let checks = expiry_checks(&env);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["warning"], true);
    assert_eq!(checks[0]["ok"], true, "a warning is not a failure");
    let detail = checks[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("soon") && detail.contains("in 10 day(s)"),
        "{detail}"
    );
    assert!(checks[0]["fix"]
        .as_str()
        .unwrap()
        .contains("ct key rotate soon"));

    // Keys that expire later are not mentioned.
    let calm = TestEnv::new();
    calm.ct(&["keygen", "--id", "later", "--expires", "1y"])
        .ok();
    let checks = expiry_checks(&calm);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["warning"], false);

    // Expired now: ct refuses to sign with it (before asking for its passphrase), and the
    // doctor calls the expired default key a problem.
    env.ct(&[
        "key",
        "rotate",
        "soon",
        "--id",
        "next",
        "--expire-old",
        "now",
    ])
    .ok();
    env.ct(&["key", "default", "soon"]).ok();
    env.image(cerro_tests::Compression::Gzip, "img");
    env.cmd(&[
        "pack",
        &format!("oci:img:{TAG}"),
        "-o",
        "b.ctp",
        "-k",
        "soon",
    ])
    .env_remove("CT_PASSPHRASE")
    .run()
    .fails(64, &["key soon expired on", "ct key rotate soon"]);
    assert!(!env.path("b.ctp").exists());
    env.ct(&["key", "list"]).ok().stdout_has("EXPIRED");
    let checks = expiry_checks(&env);
    let soon = checks
        .iter()
        .find(|c| c["detail"].as_str().unwrap().contains("soon"))
        .unwrap();
    assert_eq!(soon["ok"], false, "{soon}");
    assert!(soon["detail"]
        .as_str()
        .unwrap()
        .contains("default signing key"));

    // Windows that are over or empty are refused when a key is made.
    env.ct(&["keygen", "--id", "past", "--expires", "2020-01-01"])
        .fails(64, &["not in the future"]);
    env.ct(&[
        "keygen",
        "--id",
        "empty",
        "--not-before",
        "2031-01-01",
        "--expires",
        "2030-01-01",
    ])
    .fails(64, &["empty"]);
    env.ct(&["keygen", "--id", "typo", "--expires", "3 months"])
        .fails(64, &["90d"]);
    assert!(!env.config.join("keys/past.key").exists());
}

#[test]
fn rotate_makes_a_successor_and_hands_over_the_default() {
    let env = TestEnv::new();
    env.keygen("rel-1");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack(&format!("oci:img:{TAG}"), "old.ctp", &[]);

    let v = env.ct(&["--json", "key", "rotate", "rel-1"]).ok().json();
    assert_eq!(v["key_id"], "rel-2");
    assert_eq!(v["suite"], "CT-SIG-01", "same suite by default");
    assert_eq!(v["default"], true);
    assert_eq!(v["replaces"]["key_id"], "rel-1");
    assert!(
        v["replaces"]["expires"].is_null(),
        "the old key is left as it was"
    );
    // The next pack signs with the successor; the old bundle still verifies.
    let p = env.pack(&format!("oci:img:{TAG}"), "new.ctp", &[]);
    assert_eq!(p["signatures"][0]["key_id"], "rel-2");
    env.ct(&["verify", "old.ctp"]).ok();

    // A move to the hybrid suite, under a chosen name, with a validity of its own; the human
    // output says what to do next.
    let r = env.ct(&[
        "key",
        "rotate",
        "rel-2",
        "--suite",
        "CT-SIG-02",
        "--id",
        "rel-pq",
        "--expires",
        "2y",
    ]);
    r.ok()
        .stdout_has("CT-SIG-02")
        .stdout_has("succeeds     rel-2")
        .stdout_has("ct re-sign BUNDLE -k rel-pq --add-signature")
        .stdout_has("ct policy deny rel-2 --after DATE");
    let list = env.ct(&["--json", "key", "list"]).ok().json();
    let pq = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == "rel-pq")
        .unwrap()
        .clone();
    assert_eq!(pq["suite"], "CT-SIG-02");
    assert_eq!(pq["default"], true);
    assert!(pq["expires"].is_string());
    env.ct(&["re-sign", "old.ctp", "-k", "rel-pq", "--add-signature"])
        .ok();
    env.ct(&["verify", "old.ctp"]).ok().stdout_has("CT-SIG-02");

    // A name without a number gets -2; what does not exist cannot be rotated.
    env.keygen("alice");
    let v = env.ct(&["--json", "key", "rotate", "alice"]).ok().json();
    assert_eq!(v["key_id"], "alice-2");
    assert_eq!(v["default"], false, "alice was not the default");
    env.ct(&["key", "rotate", "nobody"])
        .fails(64, &["no secret key \"nobody\""]);
    env.ct(&["key", "rotate", "alice", "--id", "alice-2"])
        .fails(64, &["already exists"]);
}
