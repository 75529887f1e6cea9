//! The policy helpers (`ct policy show|add-signer|add-registry|deny|pin|remove`): after every
//! command the file is one `ct policy check` accepts, in canonical form, holding exactly the
//! rule the command promised; a change that would make an invalid policy is refused and the
//! file is left byte for byte as it was; repeating an addition changes nothing; and the rules
//! they write decide `ct verify` as they say (a CT-SIG-02-requiring signer entry refuses an
//! Ed25519-only bundle with exit 4).

use cerro_tests::{signed_bundle, TestEnv, TAG};
use serde_json::{json, Value};
use std::fs;

fn policy(env: &TestEnv) -> Value {
    serde_json::from_slice(&fs::read(env.path("policy.json")).unwrap()).unwrap()
}

/// `ct policy check` accepts the file, and `show` finds it canonical.
#[track_caller]
fn valid_and_canonical(env: &TestEnv) {
    env.ct(&["policy", "check", "policy.json"]).ok();
    let v = env.ct(&["--json", "policy", "show"]).ok().json();
    assert_eq!(v["canonical"], true, "{v}");
    assert_eq!(v["policy"], policy(env));
}

/// Run a helper (in the env's directory, so ./policy.json is the file) and return its JSON.
#[track_caller]
fn helper(env: &TestEnv, args: &[&str]) -> Value {
    let mut a = vec!["--json", "policy"];
    a.extend_from_slice(args);
    let v = env.ct(&a).ok().json();
    valid_and_canonical(env);
    v
}

fn trusting_alice() -> TestEnv {
    let env = TestEnv::new();
    env.trust(&signed_bundle().public_key);
    env
}

#[test]
fn every_helper_writes_the_rule_it_promises_into_a_valid_canonical_policy() {
    let env = trusting_alice();
    let alice_fp = signed_bundle().fingerprint.clone();
    env.ct(&["policy", "init"]).ok();
    // init writes the canonical form already.
    valid_and_canonical(&env);

    // A trusted key's name: the entry names its fingerprint.
    let v = helper(&env, &["add-signer", "alice"]);
    assert_eq!(v["changed"], true);
    assert_eq!(v["rules"][0]["rule"], "signers.allowed[1]");
    assert_eq!(
        policy(&env)["signers"]["allowed"][1],
        json!({"fingerprint": alice_fp})
    );
    // A glob with suites and required.
    helper(
        &env,
        &[
            "add-signer",
            "release-*",
            "--suite",
            "CT-SIG-03",
            "--suite",
            "ct-sig-02",
            "--required",
        ],
    );
    assert_eq!(
        policy(&env)["signers"]["allowed"][2],
        json!({"key_id": "release-*", "suites": ["CT-SIG-02", "CT-SIG-03"], "required": true})
    );
    // A fingerprint in plain hex is written grouped.
    let hex: String = alice_fp["SHA256:".len()..].replace(':', "").to_uppercase();
    let v = helper(&env, &["add-signer", &hex]);
    assert_eq!(
        v["changed"], false,
        "the same fingerprint entry is there already"
    );
    assert_eq!(v["rules"][0]["rule"], "signers.allowed[1]");

    // Registries: a host, a repository, a block.
    helper(&env, &["add-registry", "registry.example.com"]);
    helper(&env, &["add-registry", "127.0.0.1:5000/team/app"]);
    helper(
        &env,
        &[
            "add-registry",
            "--block",
            "docker://registry.example.com/*:latest",
        ],
    );
    assert_eq!(
        policy(&env)["registries"],
        json!({"allowed": ["docker://registry.example.com/*", "docker://127.0.0.1:5000/team/app[:@]*"],
               "blocked": ["docker://registry.example.com/*:latest"]})
    );

    // Deny: a trusted name by fingerprint, with a date and a reason.
    let v = helper(
        &env,
        &[
            "deny",
            "alice",
            "--after",
            "2026-06-01",
            "--reason",
            "key leaked",
        ],
    );
    assert_eq!(v["rules"][0]["rule"], "signers.denied[0]");
    assert_eq!(
        policy(&env)["signers"]["denied"][0],
        json!({"fingerprint": alice_fp, "after": "2026-06-01", "reason": "key leaked"})
    );
    helper(&env, &["deny", "old-*", "--key-id"]);

    // Pin: a digest and a trusted signer (by fingerprint); a second pin replaces the first.
    let d = format!("sha256:{}", "d1".repeat(32));
    helper(
        &env,
        &[
            "pin",
            "busybox",
            &d,
            "--signer",
            "alice",
            "--signer",
            "release-1",
        ],
    );
    assert_eq!(
        policy(&env)["pin"]["busybox"],
        json!({"digest": d, "signers": [alice_fp, "release-1"]})
    );
    let v = helper(&env, &["pin", "busybox", "--signer", "release-2"]);
    assert!(v["notes"].to_string().contains("replaces"), "{v}");
    assert_eq!(
        policy(&env)["pin"]["busybox"],
        json!({"signers": ["release-2"]})
    );
    // A pin digest can be read from a bundle file (the image digest its manifest signs).
    helper(
        &env,
        &["pin", "bb", signed_bundle().bundle.to_str().unwrap()],
    );
    assert_eq!(
        policy(&env)["pin"]["bb"]["digest"],
        signed_bundle().pack["image_digest"]
    );

    // show names every rule the way remove takes it.
    let show = env.ct(&["--json", "policy", "show"]).ok().json();
    let names: Vec<&str> = show["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    for n in [
        "signers.allowed[2]",
        "signers.denied[1]",
        "registries.blocked[0]",
        "pin[\"bb\"]",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    env.ct(&["policy", "show"])
        .ok()
        .stdout_has("signers.denied[0]")
        .stdout_has("(trusted as alice)");

    // Remove by name, and by what a rule names.
    helper(&env, &["remove", "signers.allowed[2]"]);
    assert_eq!(
        policy(&env)["signers"]["allowed"].as_array().unwrap().len(),
        2
    );
    helper(&env, &["remove", "--registry", "registry.example.com"]);
    assert_eq!(
        policy(&env)["registries"]["allowed"],
        json!(["docker://127.0.0.1:5000/team/app[:@]*"])
    );
    helper(&env, &["remove", "--deny", "alice"]);
    assert_eq!(
        policy(&env)["signers"]["denied"],
        json!([{"key_id": "old-*"}])
    );
    helper(&env, &["remove", "--signer", "alice"]);
    assert_eq!(policy(&env)["signers"]["allowed"], json!([{"key_id": "*"}]));
    helper(&env, &["remove", "pin.bb"]);
    helper(&env, &["remove", "--pin", "busybox"]);
    assert_eq!(policy(&env)["pin"], json!({}));
}

#[test]
fn a_change_that_would_make_an_invalid_policy_is_refused_and_writes_nothing() {
    let env = trusting_alice();
    env.ct(&["policy", "init"]).ok();
    helper(&env, &["remove", "suites.allowed[0]"]);
    helper(&env, &["remove", "suites.allowed[0]"]);
    let before = fs::read(env.path("policy.json")).unwrap();
    // The last allowed suite: removing it would turn "only CT-SIG-03" into an empty list.
    env.ct(&["policy", "remove", "suites.allowed[0]"])
        .fails(64, &["policy.json", "suites.allowed: empty list"]);
    let refused: [&[&str]; 7] = [
        &["add-signer", "a**"],
        &["deny", "bob", "--after", "2026-13-01"],
        &[
            "deny",
            "bob",
            "--after",
            "2026-06-01",
            "--before",
            "2026-01-01",
        ],
        &["pin", "busybox"],
        &["pin", "busybox", "sha256:ABC"],
        &["remove", "signers.allowed[7]"],
        &["remove", "no such rule"],
    ];
    for args in refused {
        let mut a = vec!["policy"];
        a.extend_from_slice(args);
        env.ct(&a).assert_code(64);
        assert_eq!(
            fs::read(env.path("policy.json")).unwrap(),
            before,
            "{args:?}"
        );
    }
    // Removing the whole rule is what widens it, explicitly.
    helper(&env, &["remove", "suites.allowed"]);
    assert!(policy(&env).get("suites").is_some_and(|s| s == &json!({})));

    // An invalid policy is not edited at all (exit 10), nor rewritten.
    fs::write(env.path("policy.json"), r#"{"version": "1", "typo": 1}"#).unwrap();
    env.ct(&["policy", "add-signer", "alice"])
        .fails(10, &["policy.json", "typo: unknown field"]);
    assert_eq!(
        fs::read_to_string(env.path("policy.json")).unwrap(),
        r#"{"version": "1", "typo": 1}"#
    );
}

#[test]
fn the_file_is_found_as_documented_and_rewritten_canonically() {
    let env = trusting_alice();
    // No --policy, no default_policy, no ./policy.json.
    env.ct(&["policy", "show"])
        .fails(64, &["no policy file", "--policy FILE"]);
    // Any valid layout is accepted and rewritten in canonical form on the first edit.
    fs::write(
        env.path("elsewhere.json"),
        r#"{"signers":{"allowed":[{"required":false,"key_id":"*"}]},"version":"1"}"#,
    )
    .unwrap();
    let v = env
        .ct(&["--json", "policy", "show", "--policy", "elsewhere.json"])
        .ok()
        .json();
    assert_eq!(v["canonical"], false);
    env.ct(&[
        "policy",
        "add-registry",
        "oci:img:*",
        "--policy",
        "elsewhere.json",
    ])
    .ok();
    assert_eq!(
        fs::read_to_string(env.path("elsewhere.json")).unwrap(),
        "{\n  \"version\": \"1\",\n  \"signers\": {\n    \"allowed\": [\n      { \"key_id\": \"*\", \"required\": false }\n    ]\n  },\n  \"registries\": {\n    \"allowed\": [\"oci:img:*\"]\n  }\n}\n"
    );
    // default_policy from config.toml is next.
    fs::create_dir_all(&env.config).unwrap();
    fs::write(
        env.config.join("config.toml"),
        format!("default_policy = {:?}\n", env.path("elsewhere.json")),
    )
    .unwrap();
    env.ct(&["policy", "deny", "mallory"]).ok();
    assert!(fs::read_to_string(env.path("elsewhere.json"))
        .unwrap()
        .contains("\"denied\""));
}

#[test]
fn a_policy_requiring_ct_sig_02_refuses_an_ed25519_only_bundle_with_exit_4() {
    let env = TestEnv::new();
    env.keygen("alice");
    let v = env
        .ct(&["--json", "keygen", "--id", "hybrid", "--suite", "CT-SIG-02"])
        .ok()
        .json();
    let hybrid_fp = v["fingerprint"].as_str().unwrap().to_string();
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack(&format!("oci:img:{TAG}"), "b.ctp", &["-k", "alice"]);
    env.ct(&["policy", "init"]).ok();
    helper(
        &env,
        &["add-signer", "hybrid", "--suite", "CT-SIG-02", "--required"],
    );
    assert_eq!(
        policy(&env)["signers"]["allowed"][1],
        json!({"fingerprint": hybrid_fp, "suites": ["CT-SIG-02"], "required": true})
    );
    env.ct(&["verify", "b.ctp", "--policy", "policy.json"])
        .fails(
            4,
            &[
                "policy rule signers.allowed[1] rejected",
                "suite CT-SIG-02",
                "alice",
                "CT-SIG-01",
            ],
        );
    // A required suite for every signer says so by its own rule.
    helper(&env, &["remove", "signers.allowed[1]"]);
    let mut p = policy(&env);
    p["suites"] = json!({"minimum": "CT-SIG-02"});
    fs::write(env.path("policy.json"), serde_json::to_vec(&p).unwrap()).unwrap();
    env.ct(&["verify", "b.ctp", "--policy", "policy.json"])
        .fails(4, &["suites.minimum", "CT-SIG-01", "CT-SIG-02"]);
    // With the hybrid signature added, both policies accept it.
    env.ct(&["re-sign", "b.ctp", "-k", "hybrid", "--add-signature"])
        .ok();
    env.ct(&["verify", "b.ctp", "--policy", "policy.json"]).ok();
    // And a denied key rejects it whoever else signed (exit 4, the rule named).
    helper(&env, &["deny", "alice", "--reason", "retired"]);
    env.ct(&["verify", "b.ctp", "--policy", "policy.json"])
        .fails(4, &["signers.denied[0]", "retired"]);
}
