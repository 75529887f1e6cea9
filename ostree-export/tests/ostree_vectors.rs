//! The OSTree export against its vectors (spec/ostree.md §6): each valid rootfs vector of
//! `spec/vectors/rootfs/valid/` and each tree of `spec/vectors/ostree/trees/` (`specials`: device
//! nodes and FIFOs, skipped), with a fixed manifest, exports to the commit checksum written in
//! `spec/vectors/ostree/commits.txt` in both repository modes (a second implementation, or this
//! one on another machine, must give the same), the commit verifies against its own bundle,
//! and a vector OSTree cannot hold (a name that is not UTF-8) is refused naming the path.
//!
//! `CT_WRITE_OSTREE_VECTORS=1` rewrites commits.txt instead of checking it (a format change:
//! review the diff and say so in the commit).

use cerro_core::manifest::{Descriptor, Manifest, Package, RootfsRef, Source, MANIFEST_FORMAT_V1};
use cerro_core::rootfs::{Limits, MemorySink, MemoryTree, RootfsBuilder, VerifiedTree};
use cerro_core::source::Compression;
use cerro_core::{Sha256Digest, SignatureSet};
use cerro_ostree_export::export::{export, preflight, Bundle, ExportError, Options};
use cerro_ostree_export::verify::{check_tree, read_claim, CheckError};
use cerro_ostree_export::{Mode, Repo};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

fn compression_of(name: &str) -> Compression {
    if name.ends_with(".gz") {
        Compression::Gzip
    } else if name.ends_with(".zst") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The tree of a rootfs vector, in memory.
fn tree_of(dir: &Path) -> (Arc<MemoryTree>, cerro_core::rootfs::Rootfs) {
    let mut layers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("layer-"))
        .collect();
    layers.sort_by_key(|n| {
        n["layer-".len()..]
            .split('.')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    });
    let mut b = RootfsBuilder::new(Limits::default());
    let mut sink = MemorySink::default();
    for n in &layers {
        let bytes = std::fs::read(dir.join(n)).unwrap();
        b.apply_layer(&bytes[..], compression_of(n), &mut sink)
            .unwrap();
    }
    let rootfs = b.finish();
    (Arc::new(MemoryTree::new(&rootfs, &sink.files)), rootfs)
}

/// The fixed manifest of vector `name` (no signatures: the export copies what it is given).
fn manifest(name: &str, rootfs: &cerro_core::rootfs::Rootfs) -> Manifest {
    let d = |b: &[u8]| Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        digest: Sha256Digest::of(b),
        size: b.len() as u64,
    };
    Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name: name.into(),
            version: "1.0".into(),
            created: "2024-01-01T00:00:00Z".into(),
        },
        source: Source {
            reference: format!("oci:vectors:{name}"),
            digest: Sha256Digest::of(name.as_bytes()),
        },
        rootfs: RootfsRef {
            digest: rootfs.digest,
        },
        image: d(b"image"),
        config: d(b"config"),
        layers: vec![d(b"layer")],
        attestations: vec![],
    }
}

#[test]
fn rootfs_vectors_export_to_their_commits_in_both_modes_and_verify() {
    let expected_file = spec().join("ostree/commits.txt");
    let write = std::env::var_os("CT_WRITE_OSTREE_VECTORS").is_some();
    let expected: BTreeMap<String, String> = if write {
        BTreeMap::new()
    } else {
        std::fs::read_to_string(&expected_file)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let mut got = BTreeMap::new();
    let mut cases: Vec<PathBuf> = ["rootfs/valid", "ostree/trees"]
        .iter()
        .flat_map(|d| std::fs::read_dir(spec().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6);
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (store, rootfs) = tree_of(&dir);
        let tree = VerifiedTree::new(store);
        let m = manifest(&name, &rootfs);
        let bytes = m.encode();
        let sigs = SignatureSet::new();
        let bundle = Bundle {
            manifest: &m,
            manifest_bytes: &bytes,
            signatures: &sigs,
            root: &rootfs.root,
        };
        let mut commits = Vec::new();
        for mode in [Mode::Archive, Mode::BareUser] {
            let t = tempfile::tempdir().unwrap();
            let repo = Repo::create_or_open(&t.path().join("repo"), mode).unwrap();
            let skip = Options {
                skip_special: true,
                ..Options::default()
            };
            match export(&tree, &bundle, &repo, &skip, &mut |_| {}) {
                Ok(done) => {
                    if name == "specials" {
                        assert_eq!(
                            done.skipped,
                            [
                                "/dev/null",
                                "/dev/sda",
                                "/odd\\\\name/pipe",
                                "/run/ctl\\x1b",
                                "/run/initctl"
                            ],
                            "in walk order, escaped"
                        );
                    }
                    repo.set_ref("v", &done.commit).unwrap();
                    let claim = read_claim(&repo, "v").unwrap();
                    assert_eq!(claim.manifest_bytes, bytes);
                    check_tree(&repo, &claim, &rootfs.digest, &mut |_| {})
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    commits.push(done.commit.to_string());
                }
                Err(ExportError::NotRepresentable { path, why }) => {
                    commits.push(format!("refused {path}"));
                    assert!(why.contains("UTF-8"), "{name}: {why}");
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(
            commits[0], commits[1],
            "{name}: the mode changes the commit"
        );
        got.insert(name, commits.remove(0));
    }
    if write {
        let mut text = String::from(
            "# spec/ostree.md §6: rootfs vector → commit checksum of its export (or the path refused).\n",
        );
        for (k, v) in &got {
            text.push_str(&format!("{k} {v}\n"));
        }
        std::fs::create_dir_all(expected_file.parent().unwrap()).unwrap();
        std::fs::write(&expected_file, text).unwrap();
        return;
    }
    assert_eq!(got, expected);
    // At least one is refused (basic has a Latin-1 name) and several are written.
    assert!(got
        .values()
        .any(|v| v.starts_with("refused /names/latin1-")));
    assert!(got.values().filter(|v| v.len() == 64).count() >= 3);
}

#[test]
fn a_commit_is_not_a_bundle_it_does_not_carry() {
    let (store, rootfs) = tree_of(&spec().join("rootfs/valid/layered"));
    let tree = VerifiedTree::new(store);
    let m = manifest("layered", &rootfs);
    let bytes = m.encode();
    let sigs = SignatureSet::new();
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::create_or_open(&t.path().join("repo"), Mode::Archive).unwrap();
    let done = export(
        &tree,
        &Bundle {
            manifest: &m,
            manifest_bytes: &bytes,
            signatures: &sigs,
            root: &rootfs.root,
        },
        &repo,
        &Options::default(),
        &mut |_| {},
    )
    .unwrap();
    let claim = read_claim(&repo, &done.commit.to_string()).unwrap();
    // Checked against another rootfs digest, the commit's record of the signed tree differs
    // at the root.
    let other =
        cerro_core::rootfs::RootfsDigest::parse(&format!("ctfs:{}", "ab".repeat(32))).unwrap();
    match check_tree(&repo, &claim, &other, &mut |_| {}) {
        Err(CheckError::Differs { path, what }) => {
            assert_eq!(path, "/");
            assert!(what.contains("signed manifest names rootfs"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn device_nodes_and_fifos_are_refused_unless_skipped_and_found_before_any_write() {
    let (store, rootfs) = tree_of(&spec().join("ostree/trees/specials"));
    let tree = VerifiedTree::new(store);
    let found = preflight(&tree, &rootfs.root).unwrap();
    assert_eq!(
        found,
        [
            ("/dev/null".to_string(), "a character device"),
            ("/dev/sda".to_string(), "a block device"),
            ("/odd\\\\name/pipe".to_string(), "a FIFO"),
            ("/run/ctl\\x1b".to_string(), "a FIFO"),
            ("/run/initctl".to_string(), "a FIFO"),
        ]
    );
    let m = manifest("specials", &rootfs);
    let bytes = m.encode();
    let sigs = SignatureSet::new();
    let t = tempfile::tempdir().unwrap();
    let repo = Repo::create_or_open(&t.path().join("repo"), Mode::Archive).unwrap();
    let bundle = Bundle {
        manifest: &m,
        manifest_bytes: &bytes,
        signatures: &sigs,
        root: &rootfs.root,
    };
    match export(&tree, &bundle, &repo, &Options::default(), &mut |_| {}) {
        Err(ExportError::Special { path, kind }) => {
            assert_eq!((path.as_str(), kind), ("/dev/null", "a character device"))
        }
        other => panic!("{other:?}"),
    }
    // A name that is not UTF-8 is found by the preflight too (basic has one).
    let (store, rootfs) = tree_of(&spec().join("rootfs/valid/basic"));
    match preflight(&VerifiedTree::new(store), &rootfs.root) {
        Err(ExportError::NotRepresentable { path, why }) => {
            assert_eq!(path, "/names/latin1-\\xe9");
            assert!(why.contains("not UTF-8"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}
