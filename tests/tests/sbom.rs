//! The SBOM `ct pack` puts in every bundle (attestation `sbom`, SPDX 2.3 JSON): for the Debian
//! minbase image it lists the packages dpkg's database has installed, for the busybox example
//! (no package database) only the image; both validate with `spdx-tools` (PyPI, in a virtual
//! environment of the fixture cache); packing twice gives byte-identical bundles; `--no-sbom`
//! leaves it out; a policy that requires an SBOM accepts the bundle.

use cerro_tests::fixtures::{debian_image, python_venv, DEBIAN_TAG};
use cerro_tests::{
    attestation, example_image, rawtar, run_command_timeout, sha256, Compression, TestEnv, TAG,
};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// spdx-tools, from PyPI, in a cached virtual environment.
fn python() -> PathBuf {
    python_venv(&["spdx-tools==0.8.5"])
}

/// The SBOM of `bundle`: the attestation the signed manifest names as `sbom` (checked against
/// its digest), written to `out`.
fn sbom_of(bundle: &Path, out: &Path) -> Value {
    let (body, media_type) = attestation(bundle, "sbom").expect("an SBOM in the signed manifest");
    assert_eq!(media_type, "application/spdx+json");
    fs::write(out, &body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// `var/lib/dpkg/status` of a one-layer gzip image layout (its largest blob), read with the
/// tar and flate2 crates.
fn dpkg_status_of(layout: &Path) -> String {
    let layer = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let gz = flate2::read::GzDecoder::new(fs::File::open(layer).unwrap());
    let mut ar = tar::Archive::new(gz);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.trim_start_matches("./") == "var/lib/dpkg/status" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            return s;
        }
    }
    panic!("no dpkg status in {}", layout.display());
}

fn validates(file: &Path) {
    let mut c = Command::new(python());
    c.arg("-c")
        .arg("import sys; from spdx_tools.spdx.clitools.pyspdxtools import main; sys.argv[0] = 'pyspdxtools'; main()")
        .arg("-i")
        .arg(file);
    let r = run_command_timeout(c, Duration::from_secs(120));
    assert_eq!(r.code, 0, "spdx-tools refused {}:\n{r:?}", file.display());
}

#[test]
fn the_debian_sbom_lists_dpkgs_packages_and_validates() {
    let env = TestEnv::new();
    env.keygen("alice");
    let src = format!("oci:{}:{DEBIAN_TAG}", debian_image().display());
    env.pack(&src, "deb.ctp", &["--name", "deb"]);
    let doc = sbom_of(&env.path("deb.ctp"), &env.path("deb.spdx.json"));
    validates(&env.path("deb.spdx.json"));
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let pkgs = doc["packages"].as_array().unwrap();
    let names: Vec<&str> = pkgs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for want in ["bash", "libc6", "dpkg", "coreutils"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // As many packages as dpkg's status (read here from the image's layer) has installed,
    // plus the image itself.
    let installed = dpkg_status_of(debian_image())
        .split("\n\n")
        .filter(|p| {
            p.lines()
                .any(|l| l.starts_with("Status:") && l.ends_with(" installed"))
        })
        .count();
    assert!(installed > 50, "{installed}");
    assert_eq!(pkgs.len(), installed + 1);
    let bash = pkgs.iter().find(|p| p["name"] == "bash").unwrap();
    assert!(bash["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap()
        .starts_with("pkg:deb/debian/bash@"));
    // The image is the described element, by its digest.
    assert_eq!(doc["documentDescribes"][0], "SPDXRef-Image");
    // A policy that requires an SBOM accepts the bundle.
    fs::write(
        env.path("p.json"),
        r#"{"version": "1", "signers": {"allowed": [{"key_id": "*"}]}, "require_attestations": {"sbom": true}}"#,
    )
    .unwrap();
    env.ct(&["verify", "deb.ctp", "--policy", "p.json"]).ok();
    // `ct explain --attestations` says what it holds.
    env.ct(&["explain", "--attestations", "deb.ctp"])
        .ok()
        .stdout_has(&format!(
            "SPDX-2.3: {installed} packages from the image's package database"
        ))
        .stdout_has("licences: none stated");
}

#[test]
fn the_busybox_sbom_describes_the_image_and_packing_twice_is_byte_identical() {
    let env = TestEnv::new();
    env.keygen("alice");
    let src = format!("oci:{}:{TAG}", example_image(Compression::Gzip).display());
    env.pack(&src, "a.ctp", &["--name", "bb"]);
    env.pack(&src, "b.ctp", &["--name", "bb"]);
    assert_eq!(
        fs::read(env.path("a.ctp")).unwrap(),
        fs::read(env.path("b.ctp")).unwrap()
    );
    let doc = sbom_of(&env.path("a.ctp"), &env.path("bb.spdx.json"));
    validates(&env.path("bb.spdx.json"));
    assert_eq!(doc["packages"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["packages"][0]["primaryPackagePurpose"], "CONTAINER");
    // The store keeps it: gc leaves it, fsck checks it, `ct unpack --format oci` writes it.
    let st = env.path("store");
    let st = st.to_str().unwrap();
    env.ct(&["--store", st, "import", "a.ctp"]).ok();
    env.ct(&["--store", st, "store", "gc"]).ok();
    env.ct(&["--store", st, "unpack", "bb", "-o", "oci-out"])
        .ok();
    let hex = sha256(&fs::read(env.path("bb.spdx.json")).unwrap())["sha256:".len()..].to_string();
    assert_eq!(
        fs::read(env.path("oci-out/cerro/attestations").join(&hex)).unwrap(),
        fs::read(env.path("bb.spdx.json")).unwrap()
    );
    cerro_tests::flip_byte(&env.path("store/blobs/sha256").join(&hex), 5);
    env.ct(&["--store", st, "store", "fsck"])
        .assert_code(1)
        .stdout_has(&format!("blob sha256:{hex} — content changed"));
    // --no-sbom: no SBOM (the provenance stays).
    env.pack(&src, "c.ctp", &["--name", "bb", "--no-sbom"]);
    let entries = rawtar::read(&env.path("c.ctp"));
    let m = String::from_utf8(
        entries[rawtar::find(&entries, "cerro/manifest.toml")]
            .data
            .clone(),
    )
    .unwrap();
    assert!(!m.contains("kind = \"sbom\""), "{m}");
    assert!(m.contains("kind = \"provenance\""), "{m}");
}
