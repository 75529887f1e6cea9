//! What a bundle record references, for `gc` (mark), `fsck` (check) and `du` (sum): its blobs,
//! its root record bound to the signed manifest, and every directory node and file object, met
//! through core's one verified walk (`cerro_core::rootfs::walk`). These walk records whose
//! signatures they do not check (they serve nothing).

use crate::db::records::Record;
use crate::error::{Result, StoreError};
use crate::store::Store;
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::{
    Blake3Root, DirDigest, Payload, RootRecord, TreeError, VerifiedTree, Walk, WalkError, WalkItem,
};
use cerro_core::Sha256Digest;
use std::collections::HashSet;
use std::sync::Arc;

/// What [`walk_bundle`] reports.
pub trait Visitor {
    /// A blob the bundle's manifest lists (an image blob or an attestation).
    fn blob(&mut self, digest: &Sha256Digest, size: u64);
    /// A directory node, the first time it is met (verified against `digest`).
    fn dir(&mut self, _digest: &DirDigest) {}
    /// A regular file: its path in the rootfs, size and content root.
    fn file(&mut self, path: &[u8], size: u64, root: &Blake3Root);
    /// A directory node that is missing, corrupt or undecodable (what lies below it is not
    /// walked).
    fn problem(&mut self, err: &WalkError);
}

/// Check a record's binding without its signatures: its manifest hashes to `digest` (the key
/// it is stored under), parses, and its root record hashes to the signed rootfs digest. What
/// `gc`, `fsck` and `du` rely on; serving code uses `Store::verified`, which also checks the
/// signatures, trust and policy.
pub fn record_roots(digest: &Sha256Digest, r: &Record) -> Result<(Manifest, RootRecord)> {
    let found = Sha256Digest::of(r.manifest.as_bytes());
    if found != *digest {
        return Err(StoreError::Corrupt(format!(
            "store record {digest}: the manifest it holds hashes to {found}, so it is not that bundle"
        )));
    }
    let m = Manifest::parse(r.manifest.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("store record {digest}: manifest: {e}")))?;
    let bytes = hex::decode(&r.root_record).map_err(|_| {
        StoreError::Corrupt(format!("store record {digest}: the root record is not hex"))
    })?;
    let root = RootRecord::decode(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("store record {digest}: root record: {e}")))?;
    if root.digest() != m.rootfs.digest {
        return Err(StoreError::Corrupt(format!(
            "store record {digest}: its root record hashes to {}, but the signed manifest names rootfs {}",
            root.digest(),
            m.rootfs.digest
        )));
    }
    Ok((m, root))
}

/// Walk one bundle: its manifest's blobs, then the tree below `root` through core's verified
/// walk, entering each directory digest once across every walk given the same `seen` (so
/// bundles sharing subtrees read them once). A store that cannot be read is an error; a node
/// that is missing or wrong is a [`Visitor::problem`], and the walk goes on.
pub fn walk_bundle(
    store: &Store,
    m: &Manifest,
    root: &RootRecord,
    seen: &mut HashSet<DirDigest>,
    v: &mut dyn Visitor,
) -> Result<()> {
    for d in m.image_blobs() {
        v.blob(&d.digest, d.size);
    }
    for a in &m.attestations {
        v.blob(&a.digest, a.size);
    }
    let tree = VerifiedTree::new(Arc::new(store));
    for item in Walk::new(&tree, root).once_per_dir(seen) {
        match item {
            WalkItem::Entry(e) => match e.payload() {
                Payload::Directory { digest } => v.dir(digest),
                Payload::File { size, root, .. } => v.file(&e.path, *size, root),
                _ => {}
            },
            WalkItem::Error(err) => match *err.source {
                TreeError::Io { what, source } => {
                    return Err(StoreError::io(format!("reading {what}"), source))
                }
                _ => v.problem(&err),
            },
            WalkItem::DirEnd(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{names, nodes, records, CF_DIRS};
    use crate::lock::LockMode;
    use cerro_core::manifest::{Descriptor, Package, RootfsRef, Source, MANIFEST_FORMAT_V1};
    use cerro_core::rootfs::{DirEntry, DirNode, Link, Metadata};

    fn file(name: &str, data: &[u8]) -> DirEntry {
        DirEntry {
            name: name.into(),
            meta: Metadata {
                mode: 0o644,
                ..Metadata::default()
            },
            payload: Payload::File {
                size: data.len() as u64,
                root: Blake3Root::of(data),
                link: Link::SINGLE,
            },
        }
    }

    fn dir(name: &str, node: &DirNode) -> DirEntry {
        DirEntry {
            name: name.into(),
            meta: Metadata {
                mode: 0o755,
                ..Metadata::default()
            },
            payload: Payload::Directory {
                digest: node.digest(),
            },
        }
    }

    /// A store holding one bundle `b` whose rootfs is `/a-b`, `/a/e/f`, `/a/g` and `/z/e/f`
    /// (`/a/e` and `/z/e` are the same node); returns it and the `e` node's digest.
    fn store_with_tree(root: &std::path::Path) -> (Store, DirDigest, RootRecord) {
        let e = DirNode {
            entries: vec![file("f", b"f")],
        };
        let a = DirNode {
            entries: vec![dir("e", &e), file("g", b"g")],
        };
        let z = DirNode {
            entries: vec![dir("e", &e)],
        };
        let top = DirNode {
            entries: vec![dir("a", &a), file("a-b", b"ab"), dir("z", &z)],
        };
        let rec = RootRecord {
            meta: Metadata {
                mode: 0o755,
                ..Metadata::default()
            },
            dir: top.digest(),
        };
        let d = |b: &[u8]| Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: Sha256Digest::of(b),
            size: b.len() as u64,
        };
        let m = Manifest {
            format: MANIFEST_FORMAT_V1.into(),
            package: Package {
                name: "b".into(),
                version: "1".into(),
                created: "2024-01-01T00:00:00Z".into(),
            },
            source: Source {
                reference: "oci:x".into(),
                digest: Sha256Digest::of(b"src"),
            },
            rootfs: RootfsRef {
                digest: rec.digest(),
            },
            image: d(b"image"),
            config: d(b"config"),
            layers: vec![d(b"layer")],
            attestations: vec![],
        };
        let s = Store::open(root, LockMode::Exclusive).unwrap();
        let w = s.writer().unwrap();
        let mut b = w.batch();
        for n in [&e, &a, &z, &top] {
            nodes::put_dir(&mut b, &n.digest(), &n.encode());
        }
        let digest = Sha256Digest::of(&m.encode());
        let record = Record::new(&m.encode(), &Default::default(), &rec.encode(), 0).unwrap();
        records::put(&mut b, &digest, &record);
        names::put(&mut b, "b", &Store::name_ref(digest)).unwrap();
        b.write().unwrap();
        drop(w);
        drop(s);
        // A store opened now sees what was written (each open reads the database as it is).
        let s = Store::open(root, LockMode::Exclusive).unwrap();
        let got = s
            .record_unverified(&s.resolve("b").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(record_roots(&digest, &got).unwrap().1, rec);
        (s, e.digest(), rec)
    }

    /// What a walk reported: files by path, directories, problems by path.
    #[derive(Default)]
    struct Seen {
        files: Vec<String>,
        dirs: usize,
        problems: Vec<(String, bool)>,
    }

    impl Visitor for Seen {
        fn blob(&mut self, _: &Sha256Digest, _: u64) {}
        fn dir(&mut self, _: &DirDigest) {
            self.dirs += 1;
        }
        fn file(&mut self, path: &[u8], _: u64, _: &Blake3Root) {
            self.files.push(String::from_utf8(path.to_vec()).unwrap());
        }
        fn problem(&mut self, err: &WalkError) {
            self.problems
                .push((err.to_string(), err.source.is_corruption()));
        }
    }

    fn walk(s: &Store, r: &RootRecord, m: &Manifest) -> Seen {
        let mut seen = Seen::default();
        walk_bundle(s, m, r, &mut HashSet::new(), &mut seen).unwrap();
        seen
    }

    #[test]
    fn shared_subtrees_are_walked_once() {
        let t = tempfile::tempdir().unwrap();
        let (s, _, r) = store_with_tree(t.path());
        let m = manifest_of(&s);
        let seen = walk(&s, &r, &m);
        // /z/e is the node /a/e: met, not entered again.
        assert_eq!(seen.files, ["/a/e/f", "/a/g", "/a-b"]);
        assert_eq!(seen.dirs, 5, "/, /a, /a/e, /z and /z/e");
        assert!(seen.problems.is_empty());
    }

    #[test]
    fn a_corrupt_or_missing_node_is_a_problem_naming_the_path() {
        let t = tempfile::tempdir().unwrap();
        let (s, e, r) = store_with_tree(t.path());
        let m = manifest_of(&s);
        let other = DirNode {
            entries: vec![file("f", b"forged")],
        };
        s.writer()
            .unwrap()
            .put_raw(CF_DIRS, e.as_bytes(), &other.encode())
            .unwrap();
        let reopen = |s: Store| {
            drop(s);
            Store::open(t.path(), LockMode::Exclusive).unwrap()
        };
        let s = reopen(s);
        let seen = walk(&s, &r, &m);
        assert_eq!(seen.problems.len(), 1, "the node is entered once");
        let (what, corrupt) = &seen.problems[0];
        assert!(what.starts_with("/a/e: directory node"), "{what}");
        assert!(what.contains("failed verification") && *corrupt, "{what}");
        assert_eq!(seen.files, ["/a/g", "/a-b"], "nothing below it");
        {
            let w = s.writer().unwrap();
            let mut b = w.batch();
            nodes::delete_dir(&mut b, &e);
            b.write().unwrap();
        }
        let s = reopen(s);
        let seen = walk(&s, &r, &m);
        let (what, corrupt) = &seen.problems[0];
        assert!(
            what.ends_with("is missing from the store") && !*corrupt,
            "{what}"
        );
    }

    fn manifest_of(s: &Store) -> Manifest {
        let d = s.resolve("b").unwrap();
        let rec = s.record_unverified(&d).unwrap().unwrap();
        record_roots(&d, &rec).unwrap().0
    }
}
