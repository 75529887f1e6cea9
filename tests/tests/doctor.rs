//! `ct doctor` on a healthy setup (exit 0) and with induced faults, each reported with its fix
//! (exit 1): no FUSE device (through `[doctor] fuse_device`), a secret key readable by others, a
//! trust-store key writable by others, an unparsable default policy.

use cerro_tests::{signed_bundle, TestEnv};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn healthy() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.keygen("bob");
    let store = env.path("store");
    let s = signed_bundle();
    env.trust(&s.public_key);
    env.ct(&[
        "--store",
        store.to_str().unwrap(),
        "import",
        s.bundle.to_str().unwrap(),
    ])
    .ok();
    env.ct(&["policy", "init", "-o", "policy.json"]).ok();
    append_config(
        &env,
        &format!("default_policy = {:?}\n", env.path("policy.json")),
    );
    (env, store.to_str().unwrap().to_string())
}

/// Add top-level keys before any table in config.toml.
fn append_config(env: &TestEnv, top: &str) {
    let p = env.config.join("config.toml");
    let old = fs::read_to_string(&p).unwrap_or_default();
    fs::write(&p, format!("{top}{old}")).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn check<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

#[test]
fn a_healthy_host_passes() {
    let (env, st) = healthy();
    let r = env.ct(&["--store", &st, "doctor"]);
    r.ok().stdout_has("all well");
    let v = env.ct(&["--json", "--store", &st, "doctor"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert!(check(&v, "store")["detail"]
        .as_str()
        .unwrap()
        .contains("1 bundle record(s) consistent"));
    // This kernel (6.18) re-sends FUSE requests: mounts survive their serving process.
    assert_eq!(check(&v, "mount restarts")["ok"], true, "{v}");
    assert!(check(&v, "mount restarts")["detail"]
        .as_str()
        .unwrap()
        .contains("survives its serving process"));
    env.ct(&["--store", &st, "doctor", "--quick"]).ok();
}

#[test]
fn each_induced_fault_is_reported_with_its_fix() {
    // No FUSE device (simulated through configuration).
    let (env, st) = healthy();
    let p = env.config.join("config.toml");
    let mut cfg = fs::read_to_string(&p).unwrap();
    cfg.push_str("\n[doctor]\nfuse_device = \"/nonexistent/fuse\"\n");
    fs::write(&p, cfg).unwrap();
    let r = env.ct(&["--store", &st, "doctor"]);
    r.assert_code(1)
        .stdout_has("BAD fuse device")
        .stdout_has("/nonexistent/fuse")
        .stdout_has("modprobe fuse");
    let v = env.ct(&["--json", "--store", &st, "doctor"]).json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"], 1, "{v}");

    // A secret key other users can read.
    let (env, st) = healthy();
    chmod(&env.config.join("keys/bob.key"), 0o644);
    env.ct(&["--store", &st, "doctor"])
        .assert_code(1)
        .stdout_has("BAD secret keys")
        .stdout_has("bob.key (644)")
        .stdout_has("chmod 0600");

    // A trust-store key other users can change.
    let (env, st) = healthy();
    chmod(&env.config.join("trust/alice.pub"), 0o666);
    env.ct(&["--store", &st, "doctor"])
        .assert_code(1)
        .stdout_has("BAD trust store")
        .stdout_has("alice.pub (666)")
        .stdout_has("chmod go-w");

    // An unparsable default policy.
    let (env, st) = healthy();
    fs::write(env.path("policy.json"), b"{ not json").unwrap();
    env.ct(&["--store", &st, "doctor"])
        .assert_code(1)
        .stdout_has("BAD default policy")
        .stdout_has("ct policy check");
}
