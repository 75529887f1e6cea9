//! Loads the export-archive vectors in `spec/vectors/export/` (spec/export.md): the writer must
//! reproduce the valid archive byte for byte from its inputs, the reader must give back its index
//! and a bundle that the bundle writer rebuilds byte for byte, and every hostile archive must be
//! refused at the stated stage, for the stated reason.

use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::{write_bundle, BundleError};
use cerro_core::export::{ExportBundle, ExportError, ExportReader, ExportWriter};
use cerro_core::keys::PublicKeyFile;
use cerro_core::Sha256Digest;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../spec/vectors/export")
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn the_export_vector_is_reproduced_byte_for_byte() {
    let v = json(&dir().join("site.json"));
    let site = std::fs::read(dir().join(v["archive"].as_str().unwrap())).unwrap();
    assert_eq!(
        Sha256Digest::of(&site).to_string(),
        v["sha256"].as_str().unwrap(),
        "the export vector changed — a format change"
    );
    let inputs = &v["inputs"];
    let files: Vec<(String, Vec<u8>, BundleFile)> = inputs["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let p = dir().join(b["path"].as_str().unwrap());
            let bytes = std::fs::read(&p).unwrap();
            (
                b["file"].as_str().unwrap().to_string(),
                bytes,
                BundleFile::open(&p).unwrap(),
            )
        })
        .collect();
    let keys = inputs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            PublicKeyFile::parse(&std::fs::read(dir().join(k.as_str().unwrap())).unwrap()).unwrap()
        })
        .collect::<Vec<_>>();
    let policy = std::fs::read(dir().join(inputs["policy"].as_str().unwrap())).unwrap();
    // Given twice and in either order, the bundles give the same archive.
    for twice in [false, true] {
        let mut bundles: Vec<ExportBundle<'_>> = files
            .iter()
            .map(|(name, bytes, f)| {
                ExportBundle::of_file(name.clone(), bytes.len() as u64, Sha256Digest::of(bytes), f)
            })
            .collect();
        if twice {
            let (name, bytes, f) = &files[0];
            bundles.insert(
                0,
                ExportBundle::of_file(name.clone(), bytes.len() as u64, Sha256Digest::of(bytes), f),
            );
        }
        let mut w = ExportWriter::new(bundles, keys.clone(), Some(policy.clone())).unwrap();
        assert_eq!(
            serde_json::to_value(w.index()).unwrap(),
            v["index"],
            "the index changed"
        );
        let written = w.write(Vec::new(), &mut |_| {}).unwrap();
        assert!(
            written == site,
            "the writer no longer gives the vector's bytes"
        );
    }

    // Read back: the index, the entries in canonical order, and the bundle rebuilt exactly.
    let r = ExportReader::open(&dir().join("site.tar")).unwrap();
    assert_eq!(serde_json::to_value(r.index()).unwrap(), v["index"]);
    assert_eq!(r.keys().unwrap(), keys);
    assert!(r.policy().unwrap().is_some());
    let b = &r.index().bundles[0];
    assert_eq!(
        b.bundle_digest.to_string(),
        v["bundle_digest"].as_str().unwrap()
    );
    let archived = r.bundle(b).unwrap();
    let rebuilt =
        write_bundle(Vec::new(), &archived.contents(), &mut r.pool(), &mut |_| {}).unwrap();
    assert_eq!(
        Sha256Digest::of(&rebuilt).to_string(),
        v["rebuilt_bundle_sha256"].as_str().unwrap()
    );
    assert_eq!(Sha256Digest::of(&rebuilt), b.file_digest);
    let listed: Vec<String> = listing(&site);
    let want: Vec<String> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, want);
}

/// Entry names of an archive, in order.
fn listing(bytes: &[u8]) -> Vec<String> {
    use cerro_core::archive::{ArchiveReader, Dialect};
    let mut ar = ArchiveReader::new(bytes, 1024, Dialect::Archive);
    let mut out = Vec::new();
    while let Some(e) = ar.next_entry().unwrap() {
        out.push(String::from_utf8(e.name).unwrap());
    }
    out
}

fn class(e: &ExportError) -> &'static str {
    match e {
        ExportError::Malformed(_) => "malformed",
        ExportError::Mismatch(_) => "mismatch",
        ExportError::IsBundle(_) => "is_bundle",
        ExportError::Io { .. } => "io",
        ExportError::SameManifest(..) | ExportError::SameFileName(..) => "usage",
    }
}

#[test]
fn hostile_export_vectors_are_refused_at_their_stage_for_their_reason() {
    let hostile = dir().join("hostile");
    let expected = json(&hostile.join("expected.json"));
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 20);
    for (file, want) in cases {
        let (stage, error, message) = (
            want["stage"].as_str().unwrap(),
            want["error"].as_str().unwrap(),
            want["message"].as_str().unwrap(),
        );
        let got: (&str, String) = match ExportReader::open(&hostile.join(file)) {
            Err(e) => {
                assert_eq!(stage, "open", "{file}: refused on opening: {e}");
                (class(&e), e.to_string())
            }
            Ok(r) => {
                assert_ne!(stage, "open", "{file}: opened");
                let b = r.index().bundles[0].clone();
                match r.bundle(&b) {
                    Err(e) => {
                        assert_eq!(stage, "bundle", "{file}: refused reading the bundle: {e}");
                        (class(&e), e.to_string())
                    }
                    Ok(archived) => {
                        assert_eq!(stage, "write", "{file}: the bundle was read");
                        let e = write_bundle(
                            std::io::sink(),
                            &archived.contents(),
                            &mut r.pool(),
                            &mut |_| {},
                        )
                        .expect_err(file);
                        let c = match e {
                            BundleError::Malformed(_) => "malformed",
                            BundleError::Mismatch(_) => "mismatch",
                            BundleError::Io { .. } => "io",
                        };
                        (c, e.to_string())
                    }
                }
            }
        };
        assert_eq!(got.0, error, "{file}: {}", got.1);
        assert!(got.1.contains(message), "{file}: {}", got.1);
        assert!(
            got.1.len() < 1000 && !got.1.chars().any(|c| c.is_control()),
            "{file}: a short, escaped message: {:?}",
            got.1
        );
    }
}
