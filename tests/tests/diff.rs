//! `ct diff OLD NEW` end to end: the busybox example against the mount image built on it (one
//! layer added, /data added, a co-signer added), in sections and as JSON; the file diff reads
//! only the directories that differ; a bundle against itself shows nothing; a damaged stored
//! config is a hash mismatch.

use cerro_tests::mount::pack_mount_image;
use cerro_tests::{example_image, flip_byte, Compression, TestEnv, TAG};
use std::collections::{BTreeMap, BTreeSet};

fn setup() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.keygen("alice");
    env.keygen("bob");
    env.pack(
        &format!("oci:{}:{TAG}", example_image(Compression::Gzip).display()),
        "base.ctp",
        &["--name", "app"],
    );
    pack_mount_image(&env, "mnt.ctp", "app");
    // Co-signed by bob.
    env.ct(&["re-sign", "mnt.ctp", "-k", "bob", "--add-signature"])
        .ok();
    let store = env.path("store").to_str().unwrap().to_string();
    (env, store)
}

#[test]
fn layers_files_and_signers_that_changed_are_listed() {
    let (env, st) = setup();
    let v = env
        .ct(&["--json", "--store", &st, "diff", "base.ctp", "mnt.ctp"])
        .ok()
        .json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["layers"]["kept"], 1, "{v}");
    assert_eq!(v["layers"]["added"].as_array().unwrap().len(), 1);
    assert_eq!(v["layers"]["removed"].as_array().unwrap().len(), 0);
    let added: Vec<&str> = v["signers"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(added.len(), 1, "{v}");
    assert!(added[0].starts_with("bob (SHA256:"), "{v}");
    assert!(v["signers"]["kept"][0]
        .as_str()
        .unwrap()
        .starts_with("alice (SHA256:"));
    let changes = v["files"]["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "added" && c["path"] == "/data" && c["kind"] == "dir"),
        "{v}"
    );
    // /data stands for all below it; nothing of busybox differs.
    assert!(
        changes
            .iter()
            .all(|c| !c["path"].as_str().unwrap().starts_with("/bin")),
        "{v}"
    );
    // Only the root listing differs: busybox's directories are never read.
    assert!(v["files"]["dirs_compared"].as_u64().unwrap() <= 2, "{v}");
    // Sections: only what is asked; the human form.
    let only = env
        .ct(&[
            "--json", "--store", &st, "diff", "--layers", "mnt.ctp", "base.ctp",
        ])
        .ok()
        .json();
    assert!(only.get("files").is_none() && only.get("signers").is_none());
    assert_eq!(only["layers"]["removed"].as_array().unwrap().len(), 1);
    env.ct(&["--store", &st, "diff", "base.ctp", "mnt.ctp"])
        .ok()
        .stdout_has("+ /data (dir)")
        .stdout_has("signers: 1 kept")
        .stdout_has("config: the same");
    // A bundle against itself (a file and its store name): nothing.
    let same = env
        .ct(&["--json", "--store", &st, "diff", "mnt.ctp", "app"])
        .ok()
        .json();
    assert_eq!(same["files"]["changes"], serde_json::json!([]));
    assert_eq!(same["files"]["dirs_compared"], 0);
    assert_eq!(same["config"], serde_json::json!([]));
}

/// The `[config]` digest's hex in a bundle's signed manifest.
fn config_hex(bundle: &std::path::Path) -> String {
    let mut ar = tar::Archive::new(std::fs::File::open(bundle).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("cerro/manifest.toml") {
            let mut toml = String::new();
            std::io::Read::read_to_string(&mut e, &mut toml).unwrap();
            let table = toml.split("\n[config]\n").nth(1).expect("a [config] table");
            let line = table.lines().find(|l| l.starts_with("digest")).unwrap();
            let digest = line.split('"').nth(1).unwrap();
            return digest.trim_start_matches("sha256:").to_string();
        }
    }
    panic!("no manifest in {}", bundle.display());
}

#[test]
fn a_damaged_stored_config_is_a_hash_mismatch() {
    let (env, st) = setup();
    env.ct(&["--store", &st, "import", "base.ctp", "--name", "base"])
        .ok();
    let hex = config_hex(&env.path("base.ctp"));
    flip_byte(
        &std::path::Path::new(&st).join("blobs/sha256").join(&hex),
        10,
    );
    env.ct(&["--store", &st, "diff", "--config", "base", "base"])
        .fails(1, &["the stored image config is not", &hex]);
}

#[test]
fn the_sboms_package_changes_are_listed() {
    use cerro_tests::fixtures::{debian_image, debian_image_plus, DEBIAN_TAG};
    let env = TestEnv::new();
    env.keygen("alice");
    let mut digests = Vec::new();
    for (layout, out) in [
        (debian_image(), "deb.ctp"),
        (debian_image_plus(), "deb-plus.ctp"),
    ] {
        let p = env.pack(
            &format!("oci:{}:{DEBIAN_TAG}", layout.display()),
            out,
            &["--name", "deb"],
        );
        digests.push(p["bundle_digest"].as_str().unwrap().to_string());
    }
    let st = env.path("store");
    let st = st.to_str().unwrap();
    // `ct --store ST [--json] diff ARGS…`.
    let diff = |json: bool, args: &[&str]| {
        let mut full = vec!["--store", st, "diff"];
        if json {
            full.insert(0, "--json");
        }
        full.extend_from_slice(args);
        env.ct(&full)
    };
    let v = diff(true, &["--attestations", "deb.ctp", "deb-plus.ctp"])
        .ok()
        .json();
    assert_eq!(
        v["attestations"]["changed"],
        serde_json::json!(["sbom", "provenance"]),
        "{v}"
    );
    // The provenance: the same builder, another source (and digest).
    let fields: Vec<&str> = v["attestations"]["provenance"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"source_digest"), "{v}");
    assert!(!fields.contains(&"builder"), "{v}");
    let added: Vec<&str> = v["attestations"]["packages"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    // The second image was built with --include=less,bzip2,netbase: exactly those.
    assert_eq!(added.len(), 3, "{added:?}");
    for want in ["less ", "bzip2 ", "netbase "] {
        assert!(
            added.iter().any(|p| p.starts_with(want)),
            "{want} in {added:?}"
        );
    }
    assert_eq!(
        v["attestations"]["packages"]["changed"],
        serde_json::json!([]),
        "{v}"
    );
    assert_eq!(
        v["attestations"]["packages"]["removed"],
        serde_json::json!([]),
        "{v}"
    );
    assert!(v.get("files").is_none());
    diff(false, &["--attestations", "deb.ctp", "deb-plus.ctp"])
        .ok()
        .stdout_has("+ package less ");

    // The files: exactly what a plain comparison of the two unpacked trees finds.
    let tree = |digest: &str| {
        let out = env.path(&format!("tree-{}", &digest[7..19]));
        env.ct(&[
            "--store",
            st,
            "unpack",
            digest,
            "--format",
            "rootfs",
            "-o",
            out.to_str().unwrap(),
        ])
        .ok();
        cerro_tests::tree::walk_tree(&out)
    };
    let (old, new) = (tree(&digests[0]), tree(&digests[1]));
    let v = diff(true, &["--files", &digests[0], &digests[1]])
        .ok()
        .json();
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in v["files"]["changes"].as_array().unwrap() {
        got.entry(c["change"].as_str().unwrap().to_string())
            .or_default()
            .insert(c["path"].as_str().unwrap().to_string());
    }
    let parent_in = |p: &str, t: &BTreeMap<String, cerro_tests::tree::Entry>| {
        let parent = p
            .rsplit_once('/')
            .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        t.contains_key(parent)
    };
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (p, e) in &new {
        match old.get(p) {
            None if parent_in(p, &old) => {
                want.entry("added".into()).or_default().insert(p.clone());
            }
            None => {}
            Some(o) => {
                let (mut a, mut b) = (o.clone(), e.clone());
                if a.kind == cerro_tests::tree::Kind::Dir {
                    // A directory's link count follows its subdirectories.
                    (a.nlink, b.nlink) = (0, 0);
                }
                // Which path names a hard-link group is a detail of the walk.
                (a.hardlink, b.hardlink) = (None, None);
                if a != b {
                    want.entry("changed".into()).or_default().insert(p.clone());
                }
            }
        }
    }
    for p in old.keys() {
        if !new.contains_key(p) && parent_in(p, &new) {
            want.entry("removed".into()).or_default().insert(p.clone());
        }
    }
    assert_eq!(got, want, "ct diff --files against the unpacked trees");
    assert!(want["added"].iter().any(|p| p.starts_with("/usr/bin/less")));
}
