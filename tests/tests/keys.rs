//! Keys end to end: `ct keygen` and `ct key list|export|import|default|remove`, where passphrases
//! come from, and that a refused key command writes nothing.

use cerro_tests::{fingerprint_of_public_key_file, mode_of, signed_bundle, TestEnv, PASSPHRASE};
use std::fs;

/// `SHA256:` then 16 groups of 4 lowercase hex digits.
fn is_grouped_fingerprint(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("SHA256:") else {
        return false;
    };
    let groups: Vec<&str> = rest.split(':').collect();
    groups.len() == 16
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[test]
fn keygen_writes_a_0600_secret_and_a_trusted_public_key_with_its_fingerprint() {
    let env = TestEnv::new();
    let r = env.ct(&["keygen", "--id", "alice"]);
    r.ok();
    let sk = env.config.join("keys/alice.key");
    let pk = env.config.join("trust/alice.pub");
    assert_eq!(mode_of(&sk), 0o600, "secret key must be 0600");
    assert!(pk.is_file(), "public key goes to the trust store");
    let sk_text = fs::read_to_string(&sk).unwrap();
    assert!(
        !sk_text.contains(PASSPHRASE),
        "the passphrase must never be stored"
    );
    let v: serde_json::Value = serde_json::from_str(&sk_text).unwrap();
    assert_eq!(v["kdf"]["algorithm"], "argon2id");

    // The fingerprint printed is the grouped SHA-256 of the raw public key.
    let expected = fingerprint_of_public_key_file(&pk);
    assert!(is_grouped_fingerprint(&expected), "{expected}");
    r.stdout_has(&format!("fingerprint  {expected}"));
    let pk_json: serde_json::Value = serde_json::from_slice(&fs::read(&pk).unwrap()).unwrap();
    assert_eq!(pk_json["fingerprint"], expected.as_str());
    assert_eq!(pk_json["key_id"], "alice");

    // The first key becomes the default signing key.
    let cfg = fs::read_to_string(env.config.join("config.toml")).unwrap();
    assert!(cfg.contains("default_key = \"alice\""), "{cfg}");

    // And the key list reports the same fingerprint, trusted, secret held, default.
    let list = env.ct(&["--json", "key", "list"]).ok().json();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["key_id"], "alice");
    assert_eq!(keys[0]["fingerprint"], expected.as_str());
    assert_eq!(keys[0]["trusted"], true);
    assert_eq!(keys[0]["secret"], true);
    assert_eq!(keys[0]["default"], true);
}

#[test]
fn key_list_human_shows_each_key_with_its_flags() {
    let env = TestEnv::new();
    let empty = env.ct(&["key", "list"]);
    empty.ok().stdout_has("no keys");
    let fa = env.keygen("alice");
    let fb = env.keygen("bob");
    let r = env.ct(&["key", "list"]);
    r.ok();
    let line = |id: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no line for {id} in\n{}", r.stdout))
            .to_string()
    };
    let (a, b) = (line("alice"), line("bob"));
    assert!(a.contains(&fa) && a.contains("CT-SIG-01"), "{a}");
    assert!(a.contains("[trusted, secret, default]"), "{a}");
    assert!(b.contains(&fb) && b.contains("[trusted, secret]"), "{b}");
    assert_ne!(fa, fb, "two keys, two fingerprints");
}

#[test]
fn export_then_import_elsewhere_keeps_the_fingerprint_and_grants_trust() {
    let s = signed_bundle();
    let other = TestEnv::new();
    let bundle = s.bundle.to_str().unwrap();
    // Before: the other config does not trust alice.
    other
        .ct(&["verify", bundle])
        .fails(3, &["alice", &s.fingerprint]);

    let r = s.env.ct(&["--json", "key", "export", "alice", "--public"]);
    let exported = r.ok().json();
    assert_eq!(exported["fingerprint"], s.fingerprint.as_str());
    assert!(
        exported.get("ciphertext").is_none(),
        "export never carries secret material"
    );
    assert_eq!(
        fingerprint_of_public_key_file(&s.public_key),
        s.fingerprint,
        "the exported file's key hashes to the fingerprint"
    );

    let imp = other
        .ct(&["--json", "key", "import", s.public_key.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(imp["fingerprint"], s.fingerprint.as_str());
    let list = other.ct(&["--json", "key", "list"]).ok().json();
    assert_eq!(list["keys"][0]["key_id"], "alice");
    assert_eq!(list["keys"][0]["fingerprint"], s.fingerprint.as_str());
    assert_eq!(list["keys"][0]["trusted"], true);
    assert_eq!(list["keys"][0]["secret"], false);
    assert!(!other.config.join("keys/alice.key").exists());
    // After: it verifies there.
    other.ct(&["verify", bundle]).ok();
    // Importing the same key again under another name is refused.
    other
        .ct(&[
            "key",
            "import",
            s.public_key.to_str().unwrap(),
            "--id",
            "alias",
        ])
        .fails(64, &["already trusted"]);
}

#[test]
fn key_default_chooses_the_key_pack_signs_with() {
    let env = TestEnv::new();
    env.keygen("alice");
    let fb = env.keygen("bob");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.ct(&["key", "default", "bob"]).ok();
    let cfg = fs::read_to_string(env.config.join("config.toml")).unwrap();
    assert!(cfg.contains("default_key = \"bob\""), "{cfg}");
    let p = env.pack("oci:img:busybox", "b.ctp", &[]);
    let sigs = p["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0]["key_id"], "bob");
    assert_eq!(sigs[0]["fingerprint"], fb.as_str());
    // A key that does not exist cannot become the default.
    env.ct(&["key", "default", "carol"])
        .fails(64, &["no secret key \"carol\""]);
    let cfg2 = fs::read_to_string(env.config.join("config.toml")).unwrap();
    assert_eq!(cfg, cfg2, "a refused `key default` changes nothing");
}

#[test]
fn key_remove_untrusts_but_keeps_the_secret_unless_asked() {
    let env = TestEnv::new();
    let fa = env.keygen("alice");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.pack("oci:img:busybox", "b.ctp", &[]);
    env.ct(&["verify", "b.ctp"]).ok();

    let r = env.ct(&["key", "remove", "alice"]);
    r.ok().stdout_has("was kept");
    assert!(!env.config.join("trust/alice.pub").exists());
    assert!(env.config.join("keys/alice.key").exists());
    // Its bundles are no longer trusted here.
    env.ct(&["verify", "b.ctp"]).fails(3, &["alice", &fa]);
    let list = env.ct(&["--json", "key", "list"]).ok().json();
    assert_eq!(list["keys"][0]["key_id"], "alice");
    assert_eq!(list["keys"][0]["trusted"], false);
    assert_eq!(list["keys"][0]["secret"], true);

    env.ct(&["key", "remove", "alice", "--delete-secret"]).ok();
    assert!(!env.config.join("keys/alice.key").exists());
    let list = env.ct(&["--json", "key", "list"]).ok().json();
    assert_eq!(list["keys"], serde_json::json!([]));
    // Nothing left to remove.
    env.ct(&["key", "remove", "alice"])
        .fails(64, &["no trusted key named \"alice\""]);
}

#[test]
fn keygen_refuses_an_existing_name_and_writes_nothing() {
    let env = TestEnv::new();
    env.keygen("alice");
    let before = TestEnv::snapshot(&env.config);
    env.ct(&["keygen", "--id", "alice"])
        .fails(64, &["already exists"]);
    assert_eq!(before, TestEnv::snapshot(&env.config));
    // Also when only the public half is there (a key someone else shared).
    let other = TestEnv::new();
    other.trust(&env.config.join("trust/alice.pub"));
    let before = TestEnv::snapshot(&other.config);
    other
        .ct(&["keygen", "--id", "alice"])
        .fails(64, &["already exists"]);
    assert_eq!(before, TestEnv::snapshot(&other.config));
    // And an invalid name is a usage error.
    env.ct(&["keygen", "--id", "../evil"])
        .fails(64, &["invalid key id"]);
}

#[test]
fn passphrase_from_file_or_env_and_file_wins() {
    let env = TestEnv::new();
    // keygen with the file only.
    env.cmd(&[
        "keygen",
        "--id",
        "alice",
        "--passphrase-file",
        env.pass_file.to_str().unwrap(),
    ])
    .env_remove("CT_PASSPHRASE")
    .run()
    .ok();
    env.image(cerro_tests::Compression::Gzip, "img");
    // pack with the environment only: the same passphrase opens the key.
    env.cmd(&["pack", "oci:img:busybox", "-o", "env.ctp"])
        .env("CT_PASSPHRASE", PASSPHRASE)
        .run()
        .ok();
    // The file is used before the environment.
    env.cmd(&[
        "pack",
        "oci:img:busybox",
        "-o",
        "file.ctp",
        "--passphrase-file",
        env.pass_file.to_str().unwrap(),
    ])
    .env("CT_PASSPHRASE", "not the passphrase")
    .run()
    .ok();
    assert_eq!(
        fs::read(env.path("env.ctp")).unwrap(),
        fs::read(env.path("file.ctp")).unwrap()
    );
    // A passphrase file with the wrong passphrase fails even when the environment is right.
    fs::write(env.path("wrong"), "nope\n").unwrap();
    env.cmd(&[
        "pack",
        "oci:img:busybox",
        "-o",
        "x.ctp",
        "--passphrase-file",
        "wrong",
    ])
    .run()
    .fails(64, &["wrong passphrase"]);
    assert!(!env.path("x.ctp").exists());
}

#[test]
fn no_passphrase_and_no_terminal_is_a_usage_error_that_writes_nothing() {
    let env = TestEnv::new();
    env.cmd(&["keygen", "--id", "alice"])
        .env_remove("CT_PASSPHRASE")
        .run()
        .fails(64, &["passphrase", "no terminal"]);
    assert!(!env.config.join("keys").exists() && !env.config.join("trust").exists());

    env.keygen("alice");
    env.image(cerro_tests::Compression::Gzip, "img");
    env.cmd(&["pack", "oci:img:busybox", "-o", "b.ctp"])
        .env_remove("CT_PASSPHRASE")
        .run()
        .fails(64, &["passphrase", "no terminal"]);
    assert!(!env.path("b.ctp").exists());
    // An empty passphrase is refused too: a secret key is never stored unencrypted.
    env.cmd(&["keygen", "--id", "bob"])
        .env("CT_PASSPHRASE", "")
        .run()
        .fails(64, &["empty"]);
    assert!(!env.config.join("keys/bob.key").exists());
}

#[test]
fn wrong_passphrase_at_pack_is_64_and_writes_no_bundle() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.image(cerro_tests::Compression::Gzip, "img");
    let before = TestEnv::snapshot(env.root());
    env.cmd(&["pack", "oci:img:busybox", "-o", "b.ctp"])
        .env("CT_PASSPHRASE", "Correct horse battery staple")
        .run()
        .fails(64, &["wrong passphrase", "alice"]);
    assert_eq!(
        before,
        TestEnv::snapshot(env.root()),
        "no bundle and no temporary file may be left"
    );
}

#[test]
fn export_needs_public_and_an_existing_key() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.ct(&["key", "export", "alice"]).fails(64, &["--public"]);
    env.ct(&["key", "export", "nobody", "--public"])
        .fails(64, &["nobody"]);
    // Importing something that is not a public key file is malformed input.
    fs::write(env.path("junk.pub"), "{\"hello\": 1}").unwrap();
    let before = TestEnv::snapshot(&env.config);
    env.ct(&["key", "import", "junk.pub"])
        .fails(10, &["junk.pub"]);
    // The secret key file is not a public key file either.
    let sk = env.config.join("keys/alice.key");
    env.ct(&["key", "import", sk.to_str().unwrap()])
        .fails(10, &["alice.key"]);
    env.ct(&["key", "import", "missing.pub"])
        .fails(11, &["missing.pub"]);
    assert_eq!(before, TestEnv::snapshot(&env.config));
}
