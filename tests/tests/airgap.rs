//! `ct export` / `ct import` for air-gapped sites: three bundles that share layers go into one
//! archive that stores each shared blob once, is the same bytes whatever the argument order, and
//! imports on another machine into byte-identical bundles — or, when any bundle fails (policy,
//! trust, a damaged blob), imports nothing at all.

use cerro_tests::rawtar;
use cerro_tests::{put_blob, rewrite_layout_manifest, tool, Compression, TestEnv, TAG};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;

/// Three bundles signed by `alice`: `one` and `two` are the example image under two names, and
/// `three` is that image with one more layer (so all three share the base layer).
fn three_bundles() -> (TestEnv, Vec<Value>) {
    let env = TestEnv::new();
    env.keygen("alice");
    env.image(Compression::Gzip, "img");
    let one = env.pack(
        &format!("oci:img:{TAG}"),
        "one.ctp",
        &["--name", "one", "--version", "1"],
    );
    let two = env.pack(
        &format!("oci:img:{TAG}"),
        "two.ctp",
        &["--name", "two", "--version", "2"],
    );
    let img3 = env.image(Compression::Gzip, "img3");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("etc/extra").unwrap();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"extra\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let digest = put_blob(&img3, &layer);
    rewrite_layout_manifest(&img3, |m| {
        m["layers"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer.len()}));
    });
    let three = env.pack(
        "oci:img3",
        "three.ctp",
        &["--name", "three", "--version", "3"],
    );
    (env, vec![one, two, three])
}

/// Blob entries of an archive: digest hex → how many times it appears.
fn pool(archive: &std::path::Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in rawtar::read(archive) {
        if let Some(h) = e
            .name()
            .strip_prefix("blobs/sha256/")
            .filter(|h| !h.is_empty())
        {
            *out.entry(h.to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn export_shares_blobs_is_deterministic_and_imports_byte_identically_elsewhere() {
    let (env, packs) = three_bundles();
    let out = env
        .ct(&[
            "--json",
            "export",
            "one.ctp",
            "two.ctp",
            "three.ctp",
            "-o",
            "site.tar",
            "--include-keys",
        ])
        .ok()
        .json();
    assert_eq!(out["bundles"].as_array().unwrap().len(), 3);
    assert_eq!(out["keys"][0]["key_id"], "alice");

    // Each blob once: one and two have identical images; three adds one layer and a new
    // manifest (and config stays shared): 3 + 2 distinct image blobs, not 3 + 3 + 4 — plus
    // each bundle's SBOM and provenance, which name its package and version, so three of each.
    let p = pool(&env.path("site.tar"));
    assert!(p.values().all(|&n| n == 1), "a blob is stored twice: {p:?}");
    assert_eq!(p.len(), 5 + 3 + 3, "{p:?}");
    let base_layer = cerro_tests::skopeo_layers(&env.path("one.ctp"))[0].clone();
    assert_eq!(p.get(base_layer.strip_prefix("sha256:").unwrap()), Some(&1));
    let sizes: u64 = ["one.ctp", "two.ctp", "three.ctp"]
        .iter()
        .map(|f| fs::metadata(env.path(f)).unwrap().len())
        .sum();
    let archive = fs::metadata(env.path("site.tar")).unwrap().len();
    assert!(
        archive * 2 < sizes,
        "archive {archive} bytes vs bundles {sizes}: shared layers were not shared"
    );
    // The listing is what `tar` itself shows.
    let listing = tool("tar", &["-tf", env.path("site.tar").to_str().unwrap()]).stdout;
    assert!(
        listing.starts_with("cerro-export.json\nkeys/\nkeys/alice.pub\nbundles/\n"),
        "{listing}"
    );

    // Same bundles in another order (and again): the same bytes.
    env.ct(&[
        "export",
        "three.ctp",
        "one.ctp",
        "two.ctp",
        "-o",
        "site2.tar",
        "--include-keys",
    ])
    .ok();
    assert_eq!(
        fs::read(env.path("site.tar")).unwrap(),
        fs::read(env.path("site2.tar")).unwrap()
    );

    // The other site: an empty machine. Without trusting the archive's keys nothing verifies.
    let site = TestEnv::new();
    fs::copy(env.path("site.tar"), site.path("site.tar")).unwrap();
    site.ct(&["import", "site.tar", "-o", "in"])
        .fails(3, &["alice"]);
    assert!(
        !site.path("in").exists(),
        "nothing is written when a bundle fails"
    );
    let v = site
        .ct(&[
            "--json",
            "import",
            "site.tar",
            "-o",
            "in",
            "--trust-included-keys",
        ])
        .ok()
        .json();
    assert_eq!(v["bundles"].as_array().unwrap().len(), 3);
    // Straight into an empty store: all three land, sharing their blobs and objects.
    let store = site.path("store");
    let st = store.to_str().unwrap();
    site.ct(&["--store", st, "import", "site.tar"])
        .fails(3, &["alice"]);
    site.ct(&["--store", st, "import", "site.tar", "--trust-included-keys"])
        .ok();
    let ls = site
        .ct(&["--json", "--store", st, "store", "ls"])
        .ok()
        .json();
    assert_eq!(ls["bundles"].as_array().unwrap().len(), 3, "{ls}");
    site.ct(&["--store", st, "store", "fsck"]).ok();
    for (f, pack) in ["one.ctp", "two.ctp", "three.ctp"].iter().zip(&packs) {
        assert_eq!(
            fs::read(site.path("in").join(f)).unwrap(),
            fs::read(env.path(f)).unwrap(),
            "{f} differs"
        );
        let b = v["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["file"] == *f)
            .unwrap();
        assert_eq!(b["bundle_digest"], pack["bundle_digest"]);
        assert_eq!(b["identical_to_exported"], true);
    }
    // Importing again changes nothing; a different file in the way is refused.
    site.ct(&["import", "site.tar", "-o", "in", "--trust-included-keys"])
        .ok()
        .stdout_has("unchanged");
    fs::write(site.path("in/two.ctp"), b"other").unwrap();
    site.ct(&["import", "site.tar", "-o", "in", "--trust-included-keys"])
        .fails(64, &["two.ctp", "--force"]);
    assert_eq!(fs::read(site.path("in/two.ctp")).unwrap(), b"other");
    site.ct(&[
        "import",
        "site.tar",
        "-o",
        "in",
        "--trust-included-keys",
        "--force",
    ])
    .ok();
    assert_eq!(
        fs::read(site.path("in/two.ctp")).unwrap(),
        fs::read(env.path("two.ctp")).unwrap()
    );
}

/// A policy accepting alice's bundles, except `three` (pinned to a digest it does not have).
const POLICY_REJECTING_THREE: &str = r#"{"version":"1","signers":{"allowed":[{"key_id":"alice"}]},
"pin":{"three":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}}}"#;

#[test]
fn one_bundle_failing_policy_refuses_the_whole_archive() {
    let (env, _) = three_bundles();
    env.ct(&[
        "export",
        "one.ctp",
        "two.ctp",
        "three.ctp",
        "-o",
        "site.tar",
    ])
    .ok();
    fs::write(env.path("policy.json"), POLICY_REJECTING_THREE).unwrap();
    fs::create_dir(env.path("in")).unwrap();
    env.ct(&["import", "site.tar", "-o", "in", "--policy", "policy.json"])
        .fails(4, &["pin"]);
    assert_eq!(
        fs::read_dir(env.path("in")).unwrap().count(),
        0,
        "nothing imported, no temporary file left"
    );
    let j = env
        .ct(&[
            "--json",
            "import",
            "site.tar",
            "-o",
            "new",
            "--policy",
            "policy.json",
        ])
        .json_fails(4, &["three"]);
    assert_eq!(j["bundle"], "three.ctp");
    assert!(
        !env.path("new").exists(),
        "a directory ct created is removed again"
    );
    // Into the store: the same refusal, and not one bundle lands.
    let store = env.path("store");
    let st = store.to_str().unwrap();
    env.ct(&[
        "--store",
        st,
        "import",
        "site.tar",
        "--policy",
        "policy.json",
    ])
    .fails(4, &["pin"]);
    let ls = env
        .ct(&["--json", "--store", st, "store", "ls"])
        .ok()
        .json();
    assert_eq!(ls["bundles"].as_array().unwrap().len(), 0, "{ls}");

    // Export checks the same policy before writing anything.
    env.ct(&[
        "export",
        "one.ctp",
        "three.ctp",
        "-o",
        "p.tar",
        "--policy",
        "policy.json",
    ])
    .assert_code(4);
    assert!(!env.path("p.tar").exists());
    // A policy travels with the archive and is used on request.
    fs::write(
        env.path("ok.json"),
        r#"{"version":"1","signers":{"allowed":[{"key_id":"alice"}]}}"#,
    )
    .unwrap();
    env.ct(&[
        "export",
        "one.ctp",
        "three.ctp",
        "-o",
        "q.tar",
        "--policy",
        "ok.json",
    ])
    .ok();
    env.ct(&["import", "q.tar", "-o", "q", "--use-included-policy"])
        .ok();
    assert!(env.path("q/three.ctp").exists());
}

#[test]
fn a_damaged_archive_imports_nothing() {
    let (env, _) = three_bundles();
    env.ct(&[
        "export",
        "one.ctp",
        "two.ctp",
        "three.ctp",
        "-o",
        "site.tar",
    ])
    .ok();
    let layer = cerro_tests::skopeo_layers(&env.path("one.ctp"))[0].clone();
    let name = format!("blobs/sha256/{}", layer.strip_prefix("sha256:").unwrap());
    let off = rawtar::data_offset(&env.path("site.tar"), &name);
    cerro_tests::flip_byte(&env.path("site.tar"), off + 10);
    env.ct(&["import", "site.tar", "-o", "in"])
        .fails(1, &[&layer]);
    assert!(!env.path("in").exists());
    // Not an archive at all, a bundle, and no -o: clear refusals.
    env.ct(&["import", "one.ctp", "-o", "in"])
        .fails(64, &["export archives"]);
    // Without -o the archive goes into the store: the damaged one is refused, the store stays empty.
    let store = env.path("store");
    env.ct(&["--store", store.to_str().unwrap(), "import", "site.tar"])
        .fails(1, &[&layer]);
    assert!(fs::read_dir(store.join("objects"))
        .map(|d| d.count() == 0)
        .unwrap_or(true));
    fs::write(env.path("junk.tar"), b"not a tar").unwrap();
    env.ct(&["import", "junk.tar", "-o", "in"]).assert_code(10);
}
