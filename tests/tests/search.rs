//! `ct index [DIR] [--update]` (no DIR: the store) and `ct search`: only bundles that verify are indexed (a
//! tampered one and one signed by an untrusted key are listed as skipped), every search field
//! finds what it should and nothing else, `--update` re-verifies only what changed and drops
//! what is gone, the store is indexed by name, and the index lives in the user's cache
//! directory, not beside the bundles.

use cerro_tests::forge::{write_layout, Layer, TarBuilder};
use cerro_tests::{flip_byte, Compression, TestEnv, TAG};
use serde_json::Value;
use std::fs;

/// An image whose apk database states a licence (`MIT`), so its SBOM lists one.
fn apk_layout(env: &TestEnv) -> String {
    let mut t = TarBuilder::new();
    t.dir(b"lib/").dir(b"lib/apk/").dir(b"lib/apk/db/").file(
        b"lib/apk/db/installed",
        b"P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:zlib\nV:1.3.1-r0\nA:x86_64\nL:Zlib\n\n",
    );
    let dir = env.path("apk-layout");
    write_layout(&dir, "apk", &[Layer::tar(t.finish())]);
    format!("oci:{}:apk", dir.display())
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["bundles"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn only_verified_bundles_are_indexed_and_every_field_finds_them() {
    let env = TestEnv::new();
    env.keygen("alice");
    let bob = env.keygen("bob");
    env.image(Compression::Gzip, "img");
    fs::create_dir_all(env.path("bundles/more")).unwrap();
    let app = env.pack(
        &format!("oci:img:{TAG}"),
        "bundles/app.ctp",
        &["--name", "app", "-k", "alice"],
    );
    env.pack(
        &apk_layout(&env),
        "bundles/more/tools.ctp",
        &["--name", "tools", "-k", "bob"],
    );
    env.pack(
        &format!("oci:img:{TAG}"),
        "bundles/plain.ctp",
        &["--name", "plain", "-k", "alice", "--no-sbom"],
    );
    // Not indexed: a damaged copy, and a bundle by a key this user does not trust.
    fs::copy(env.path("bundles/app.ctp"), env.path("bundles/damaged.ctp")).unwrap();
    let len = fs::metadata(env.path("bundles/damaged.ctp")).unwrap().len();
    flip_byte(&env.path("bundles/damaged.ctp"), len / 2);
    let stranger = TestEnv::new();
    stranger.keygen("carol");
    stranger.image(Compression::Gzip, "img");
    stranger.pack(
        &format!("oci:img:{TAG}"),
        "carol.ctp",
        &["--name", "carols"],
    );
    fs::copy(stranger.path("carol.ctp"), env.path("bundles/carol.ctp")).unwrap();

    // Searching before any index is a usage error.
    env.ct(&["search", "app"])
        .fails(64, &["no index to search", "ct index DIR"]);
    let v = env.ct(&["--json", "index", "bundles"]).ok().json();
    assert_eq!(v["indexed"], 3, "{v}");
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{v}");
    assert!(skipped.iter().any(|r| r.contains("exit 3")), "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|r| r.contains("exit 1") || r.contains("exit 10")),
        "{skipped:?}"
    );
    // The index is in the user's cache, not beside the bundles.
    let index = v["index"].as_str().unwrap();
    assert!(
        index.starts_with(env.path("home/.cache/cerro/index").to_str().unwrap()),
        "{index}"
    );
    let mut beside: Vec<String> = fs::read_dir(env.path("bundles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["app.ctp", "carol.ctp", "damaged.ctp", "more", "plain.ctp"]
    );

    let search = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["--json", "search"];
        full.extend_from_slice(args);
        names(&env.ct(&full).ok().json())
    };
    assert_eq!(search(&[]), ["app", "plain", "tools"]);
    assert_eq!(search(&["TOOLS"]), ["tools"]);
    assert_eq!(search(&["--signer", "ali*"]), ["app", "plain"]);
    assert_eq!(search(&["--fingerprint", &bob]), ["tools"]);
    let digest = app["bundle_digest"].as_str().unwrap();
    assert_eq!(search(&["--digest", digest]), ["app"]);
    assert_eq!(
        search(&["--digest", &digest[7..19]]),
        ["app"],
        "a prefix of 12 hex digits"
    );
    assert_eq!(search(&["--has-sbom"]), ["app", "tools"]);
    assert_eq!(search(&["--license", "mit"]), ["tools"]);
    assert_eq!(search(&["--license", "gpl"]), Vec::<String>::new());
    // Every image here was created on 2024-01-01.
    assert_eq!(search(&["--after", "2024-01-01"]).len(), 3);
    assert!(search(&["--after", "2024-01-02"]).is_empty());
    assert!(search(&["--before", "2024-01-01"]).is_empty());
    let one = env.ct(&["--json", "search", "tools"]).ok().json();
    let e = &one["bundles"][0];
    assert_eq!(e["signers"][0]["key_id"], "bob");
    assert_eq!(e["signers"][0]["trusted_as"], "bob");
    assert_eq!(e["packages"], 2);
    assert_eq!(e["licenses"], serde_json::json!(["MIT", "Zlib"]));
    assert!(e["builder"]
        .as_str()
        .unwrap()
        .starts_with("https://cerro-torre.invalid/builders/ct "));
    env.ct(&["search", "--digest", "xyz"])
        .fails(64, &["--digest"]);
    env.ct(&["search", "--after", "yesterday"])
        .fails(64, &["--after"]);
    // The human listing.
    env.ct(&["search", "tools"])
        .ok()
        .stdout_has("tools")
        .stdout_has("signed by bob");

    // --update: unchanged files keep their entries; a changed one is verified again; a removed
    // one is gone.
    fs::remove_file(env.path("bundles/more/tools.ctp")).unwrap();
    env.pack(
        &format!("oci:img:{TAG}"),
        "bundles/plain.ctp",
        &["--name", "plain2", "-k", "alice", "--no-sbom", "--force"],
    );
    let v = env
        .ct(&["--json", "index", "bundles", "--update"])
        .ok()
        .json();
    assert_eq!(
        (v["indexed"].clone(), v["kept"].clone()),
        (2.into(), 1.into()),
        "{v}"
    );
    assert_eq!(search(&[]), ["app", "plain2"]);

    // The store, by name.
    env.ct(&[
        "--store",
        "st",
        "import",
        "bundles/app.ctp",
        "--name",
        "stored-app",
    ])
    .ok();
    let v = env.ct(&["--json", "--store", "st", "index"]).ok().json();
    assert_eq!(v["indexed"], 1, "{v}");
    let hit = env.ct(&["--json", "search", "stored-app"]).ok().json();
    assert_eq!(hit["bundles"][0]["location"], "store:stored-app");
    assert_eq!(hit["bundles"][0]["bundle_digest"], app["bundle_digest"]);
    env.ct(&["index", "nowhere"]).fails(11, &["nowhere"]);

    // A cache directory someone else could write to, or a link planted as the index
    // directory, is refused before anything is read from or written into it.
    use std::os::unix::fs::PermissionsExt;
    let shared = env.path("shared-cache");
    fs::create_dir_all(shared.join("cerro/index")).unwrap();
    fs::set_permissions(
        shared.join("cerro/index"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    env.cmd(&["index", "bundles"])
        .env("XDG_CACHE_HOME", &shared)
        .run()
        .fails(64, &["writable by others", "XDG_CACHE_HOME"]);
    let planted = env.path("planted-cache");
    fs::create_dir_all(planted.join("cerro")).unwrap();
    std::os::unix::fs::symlink(env.path("bundles"), planted.join("cerro/index")).unwrap();
    env.cmd(&["index", "bundles"])
        .env("XDG_CACHE_HOME", &planted)
        .run()
        .fails(11, &["not a link"]);
    assert_eq!(
        fs::read_dir(env.path("bundles")).unwrap().count(),
        5,
        "nothing written through the link"
    );
}
