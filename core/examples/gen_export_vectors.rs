//! Regenerates the export-archive vectors under `spec/vectors/export/` (spec/export.md): a valid
//! archive of the bundle vector with its key and a policy, and hostile variants of it, each with
//! the stage that must refuse it and why. Run through `tools/gen-vectors`; the tests in
//! `core/tests/export_vectors.rs` load the files and fail if the code and the vectors disagree —
//! a change to `site.tar` is a format change.

use cerro_core::archive::{ArchiveReader, Dialect, TarKind};
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::writer::header;
use cerro_core::export::{ExportBundle, ExportWriter};
use cerro_core::keys::PublicKeyFile;
use cerro_core::Sha256Digest;
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;

/// The policy carried by the valid archive.
const POLICY: &str =
    "{\"version\":\"1\",\"signers\":{\"allowed\":[{\"key_id\":\"vector-key\"}]}}\n";

/// One raw tar entry: name bytes, typeflag, data.
#[derive(Clone)]
struct Raw {
    name: Vec<u8>,
    flag: u8,
    data: Vec<u8>,
}

fn read_entries(bytes: &[u8]) -> Vec<Raw> {
    let mut ar = ArchiveReader::new(bytes, 1024, Dialect::Archive);
    let mut out = Vec::new();
    while let Some(e) = ar.next_entry().unwrap() {
        let mut data = Vec::new();
        ar.read_to_end(&mut data).unwrap();
        let flag = if e.kind == TarKind::Directory {
            b'5'
        } else {
            b'0'
        };
        out.push(Raw {
            name: e.name,
            flag,
            data,
        });
    }
    out
}

/// Tar bytes for these entries: headers under the bundle rules, the name written raw when it
/// fits the 100-byte field (so hostile names go out as they are), then two NUL blocks.
fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let dir = e.flag == b'5';
        let mut h = if e.name.len() <= 100 {
            let mut h = header("x", e.data.len() as u64, dir).unwrap();
            let b = h.as_mut_bytes();
            b[..100].fill(0);
            b[..e.name.len()].copy_from_slice(&e.name);
            b[156] = e.flag;
            h
        } else {
            header(
                std::str::from_utf8(&e.name).unwrap(),
                e.data.len() as u64,
                dir,
            )
            .unwrap()
        };
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn find(entries: &[Raw], suffix: &str) -> usize {
    entries
        .iter()
        .position(|e| e.name.ends_with(suffix.as_bytes()))
        .unwrap_or_else(|| panic!("no entry ending in {suffix}"))
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: gen_export_vectors DIR"),
    );
    let out = root.join("export");
    let hostile = out.join("hostile");
    std::fs::create_dir_all(&hostile).unwrap();

    // The valid archive: the bundle vector, its signer's public key, a policy.
    let bundle_path = root.join("bundle/hello.ctp");
    let bundle_bytes = std::fs::read(&bundle_path).unwrap();
    let file = BundleFile::open(&bundle_path).unwrap();
    let key =
        PublicKeyFile::parse(&std::fs::read(root.join("keys/vector-key.pub")).unwrap()).unwrap();
    let bundles = vec![ExportBundle::of_file(
        "hello.ctp".into(),
        bundle_bytes.len() as u64,
        Sha256Digest::of(&bundle_bytes),
        &file,
    )];
    let mut w = ExportWriter::new(bundles, vec![key], Some(POLICY.as_bytes().to_vec())).unwrap();
    let site = w.write(Vec::new(), &mut |_| {}).unwrap();
    std::fs::write(out.join("site.tar"), &site).unwrap();
    std::fs::write(out.join("policy.json"), POLICY).unwrap();
    let entries = read_entries(&site);
    let bundle_digest = file.manifest().digest();
    let desc = json!({
        "archive": "site.tar",
        "sha256": Sha256Digest::of(&site),
        "size": site.len(),
        "inputs": {
            "bundles": [{"path": "../bundle/hello.ctp", "file": "hello.ctp"}],
            "keys": ["../keys/vector-key.pub"],
            "policy": "policy.json",
        },
        "entries": entries.iter().map(|e| String::from_utf8(e.name.clone()).unwrap()).collect::<Vec<_>>(),
        "index": serde_json::from_slice::<Value>(&entries[0].data).unwrap(),
        "bundle_digest": bundle_digest,
        "rebuilt_bundle_sha256": Sha256Digest::of(&bundle_bytes),
    });
    std::fs::write(
        out.join("site.json"),
        serde_json::to_string_pretty(&desc).unwrap() + "\n",
    )
    .unwrap();

    // Hostile variants: (file, stage, class, message part, entries or bytes).
    let hex = bundle_digest.hex();
    let mut cases: Vec<(&str, &str, &str, &str, Vec<u8>)> = Vec::new();
    let mut variant = |name: &'static str,
                       stage: &'static str,
                       class: &'static str,
                       needle: &'static str,
                       edit: &dyn Fn(&mut Vec<Raw>)| {
        let mut e = entries.clone();
        edit(&mut e);
        cases.push((name, stage, class, needle, tar_of(&e)));
    };
    variant(
        "absolute-path.tar",
        "open",
        "malformed",
        "escapes the archive layout",
        &|e| {
            let i = find(e, "policy.json");
            e[i].name = b"/policy.json".to_vec();
        },
    );
    variant(
        "dot-dot.tar",
        "open",
        "malformed",
        "escapes the archive layout",
        &|e| {
            e.push(Raw {
                name: b"bundles/../../etc/passwd".to_vec(),
                flag: b'0',
                data: b"x".to_vec(),
            })
        },
    );
    variant(
        "unknown-entry.tar",
        "open",
        "malformed",
        "is not part of the export layout",
        &|e| {
            e.push(Raw {
                name: b"README".to_vec(),
                flag: b'0',
                data: b"hello".to_vec(),
            })
        },
    );
    let blob_in_bundle = format!("bundles/{hex}/blobs/sha256/{hex}").into_bytes();
    variant(
        "blob-in-bundle-directory.tar",
        "open",
        "malformed",
        "is not part of the export layout",
        &move |e| {
            e.push(Raw {
                name: blob_in_bundle.clone(),
                flag: b'0',
                data: b"x".to_vec(),
            })
        },
    );
    variant(
        "symlink.tar",
        "open",
        "malformed",
        "is a symbolic link, but its name is a regular file's",
        &|e| {
            let i = find(e, "policy.json");
            e[i].flag = b'2';
            e[i].data.clear();
        },
    );
    variant(
        "file-named-as-directory.tar",
        "open",
        "malformed",
        "is a regular file, but its name is a directory's",
        &|e| {
            let i = find(e, "keys/");
            e[i].name = b"keys".to_vec();
            e[i].flag = b'0';
        },
    );
    variant(
        "repeated-entry.tar",
        "open",
        "malformed",
        "appears twice",
        &|e| {
            let i = find(e, "policy.json");
            let again = e[i].clone();
            e.insert(i + 1, again);
        },
    );
    variant(
        "non-utf8-name.tar",
        "open",
        "malformed",
        "has a name that is not UTF-8",
        &|e| {
            e.push(Raw {
                name: b"keys/\xff.pub".to_vec(),
                flag: b'0',
                data: b"{}".to_vec(),
            })
        },
    );
    variant(
        "no-index.tar",
        "open",
        "malformed",
        "it has no cerro-export.json",
        &|e| {
            e.remove(find(e, "cerro-export.json"));
        },
    );
    let index_edit = |f: fn(&mut Value)| {
        move |e: &mut Vec<Raw>| {
            let i = find(e, "cerro-export.json");
            let mut v: Value = serde_json::from_slice(&e[i].data).unwrap();
            f(&mut v);
            e[i].data = serde_json::to_vec_pretty(&v).unwrap();
        }
    };
    variant(
        "index-other-format.tar",
        "open",
        "malformed",
        "format \"cerro-torre/export/v2\"",
        &index_edit(|v| v["format"] = "cerro-torre/export/v2".into()),
    );
    variant(
        "index-unknown-field.tar",
        "open",
        "malformed",
        "unknown field",
        &index_edit(|v| v["extra"] = true.into()),
    );
    variant(
        "index-escaping-file-name.tar",
        "open",
        "malformed",
        "is invalid or repeated",
        &index_edit(|v| v["bundles"][0]["file"] = "../hello.ctp".into()),
    );
    variant(
        "index-no-bundles.tar",
        "open",
        "malformed",
        "it lists 0 bundles",
        &index_edit(|v| v["bundles"] = json!([])),
    );
    variant(
        "manifest-altered.tar",
        "bundle",
        "mismatch",
        "cerro/manifest.toml hashes to",
        &|e| {
            let i = find(e, "cerro/manifest.toml");
            e[i].data[0] ^= 0x20;
        },
    );
    variant(
        "manifest-missing.tar",
        "bundle",
        "malformed",
        "cerro/manifest.toml is missing",
        &|e| {
            e.remove(find(e, "cerro/manifest.toml"));
        },
    );
    variant(
        "summary-altered.tar",
        "bundle",
        "malformed",
        "cerro/summary.json is missing or does not match the signed manifest",
        &|e| {
            let i = find(e, "cerro/summary.json");
            e[i].data.push(b' ');
        },
    );
    variant(
        "signature-renamed.tar",
        "bundle",
        "malformed",
        "holds a signature by key id \"vector-key\"",
        &|e| {
            let i = find(e, "cerro/signatures/vector-key.sig");
            let n = e[i].name.len();
            e[i].name.truncate(n - "vector-key.sig".len());
            e[i].name.extend_from_slice(b"other-key.sig");
        },
    );
    let layer = file.manifest().layers[0].digest.hex();
    variant(
        "blob-missing.tar",
        "write",
        "malformed",
        "is missing from the pool",
        &move |e| {
            e.remove(find(e, &layer));
        },
    );
    let layer = file.manifest().layers[0].digest.hex();
    variant(
        "blob-altered.tar",
        "write",
        "mismatch",
        "the source's bytes hash to",
        &move |e| {
            let i = find(e, &layer);
            e[i].data[600] ^= 1;
        },
    );
    cases.push((
        "truncated.tar",
        "open",
        "malformed",
        "it is truncated",
        site[..site.len() / 2 / 512 * 512 + 100].to_vec(),
    ));
    cases.push((
        "empty.tar",
        "open",
        "malformed",
        "it is empty or not a tar archive",
        vec![0u8; 1024],
    ));
    cases.push((
        "a-bundle.tar",
        "open",
        "is_bundle",
        "is a bundle, not an export archive",
        bundle_bytes.clone(),
    ));

    let mut expected = serde_json::Map::new();
    for (name, stage, class, needle, bytes) in cases {
        std::fs::write(hostile.join(name), bytes).unwrap();
        expected.insert(
            name.into(),
            json!({"stage": stage, "error": class, "message": needle}),
        );
    }
    std::fs::write(
        hostile.join("expected.json"),
        serde_json::to_string_pretty(&Value::Object(expected)).unwrap() + "\n",
    )
    .unwrap();
}
