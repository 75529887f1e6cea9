//! Walks what a bundle record references: its blobs, its root record, every directory node and
//! every file object with its outboard. Shared by `gc` (mark), `fsck` (check) and `ct store tree`
//! (every entry with its path). Every value read is checked against the digest it is stored
//! under before it is trusted; `gc`, `fsck` and `du` walk records whose signatures they do not
//! check (they serve nothing), `ct store tree` walks a verified record's root.

use crate::db::{nodes, records::Record};
use crate::error::{Result, StoreError};
use crate::store::Store;
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::node::dir_digest;
use cerro_core::rootfs::{Blake3Root, DirDigest, DirEntry, DirNode, Payload, RootRecord};
use cerro_core::Sha256Digest;
use std::collections::HashSet;

/// What the walker reports.
pub trait Visitor {
    /// A blob the bundle's manifest lists.
    fn blob(&mut self, digest: &Sha256Digest, size: u64);
    /// A directory node, the first time it is met (bytes already checked against `digest`).
    fn dir(&mut self, _digest: &DirDigest) {}
    /// A regular file: its path in the rootfs, size and content root.
    fn file(&mut self, path: &[u8], size: u64, root: &Blake3Root);
    /// A problem: a directory node (`dir`) that is missing, corrupt or undecodable, at `path`.
    fn problem(&mut self, path: &[u8], dir: &DirDigest, what: String);
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

/// Walk one bundle (its manifest's blobs and the tree below `root`). `seen_dirs` is shared
/// across bundles so common directories are read once.
pub fn walk_bundle(
    store: &Store,
    m: &Manifest,
    root: &RootRecord,
    seen_dirs: &mut HashSet<DirDigest>,
    v: &mut dyn Visitor,
) -> Result<()> {
    for d in m.image_blobs() {
        v.blob(&d.digest, d.size);
    }
    let mut stack: Vec<(Vec<u8>, DirDigest)> = vec![(b"/".to_vec(), root.dir)];
    while let Some((path, d)) = stack.pop() {
        if !seen_dirs.insert(d) {
            continue;
        }
        let Some(bytes) = nodes::get_dir(store.db(), &d)? else {
            v.problem(
                &path,
                &d,
                format!("directory node {d} is missing from the database"),
            );
            continue;
        };
        if dir_digest(&bytes) != d {
            v.problem(
                &path,
                &d,
                format!(
                    "directory node {d} is corrupt (its bytes hash to {})",
                    dir_digest(&bytes)
                ),
            );
            continue;
        }
        let node = match DirNode::decode(&bytes) {
            Ok(n) => n,
            Err(e) => {
                v.problem(
                    &path,
                    &d,
                    format!("directory node {d} does not decode: {e}"),
                );
                continue;
            }
        };
        v.dir(&d);
        for e in node.entries {
            let mut p = path.clone();
            if p.len() > 1 {
                p.push(b'/');
            }
            p.extend_from_slice(&e.name);
            match e.payload {
                Payload::Directory { digest } => stack.push((p, digest)),
                Payload::File { size, root, .. } => v.file(&p, size, &root),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every entry of the rootfs whose verified root record is `root`, the root first (path `/`,
/// with the root record's metadata and its directory digest), then all others sorted by path
/// (`/`-joined bytes, leading `/`). Each directory node is read once per path it appears at and
/// checked against the digest its parent names: a missing, corrupt or undecodable node is an
/// error naming `label` (the bundle) and the path.
pub fn rootfs_entries(
    store: &Store,
    label: &str,
    root: &RootRecord,
) -> Result<Vec<(Vec<u8>, DirEntry)>> {
    let mut out = vec![(
        b"/".to_vec(),
        DirEntry {
            name: Vec::new(),
            meta: root.meta.clone(),
            payload: Payload::Directory { digest: root.dir },
        },
    )];
    let mut stack: Vec<(Vec<u8>, DirDigest)> = vec![(Vec::new(), root.dir)];
    while let Some((prefix, d)) = stack.pop() {
        let shown = if prefix.is_empty() {
            "/".to_string()
        } else {
            String::from_utf8_lossy(&prefix).into_owned()
        };
        let bad = |what: String| StoreError::Corrupt(format!("bundle {label}, {shown}: {what}"));
        let bytes = nodes::get_dir(store.db(), &d)?
            .ok_or_else(|| bad(format!("directory node {d} is missing from the database")))?;
        let found = dir_digest(&bytes);
        if found != d {
            return Err(bad(format!(
                "directory node {d} is corrupt (its bytes hash to {found})"
            )));
        }
        let node = DirNode::decode(&bytes)
            .map_err(|e| bad(format!("directory node {d} does not decode: {e}")))?;
        for e in node.entries {
            let mut path = prefix.clone();
            path.push(b'/');
            path.extend_from_slice(&e.name);
            if let Payload::Directory { digest } = e.payload {
                stack.push((path.clone(), digest));
            }
            out.push((path, e));
        }
    }
    out[1..].sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{names, records, CF_DIRS};
    use crate::lock::LockMode;
    use cerro_core::manifest::{Descriptor, Package, RootfsRef, Source, MANIFEST_FORMAT_V1};
    use cerro_core::rootfs::{Link, Metadata};

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

    #[test]
    fn entries_come_root_first_then_by_path_with_shared_nodes_at_each_path() {
        let t = tempfile::tempdir().unwrap();
        let (s, _, r) = store_with_tree(t.path());
        let paths: Vec<String> = rootfs_entries(&s, "b", &r)
            .unwrap()
            .into_iter()
            .map(|(p, _)| String::from_utf8(p).unwrap())
            .collect();
        assert_eq!(
            paths,
            ["/", "/a", "/a-b", "/a/e", "/a/e/f", "/a/g", "/z", "/z/e", "/z/e/f"]
        );
    }

    #[test]
    fn a_corrupt_or_missing_node_stops_the_walk_naming_the_path() {
        let t = tempfile::tempdir().unwrap();
        let (s, e, r) = store_with_tree(t.path());
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
        let err = rootfs_entries(&s, "b", &r).unwrap_err().to_string();
        // The node sits at two paths; the walk names the one where it met it first.
        assert!(
            err.contains("bundle b, /a/e: directory node")
                || err.contains("bundle b, /z/e: directory node"),
            "{err}"
        );
        assert!(err.contains("is corrupt"), "{err}");
        {
            let w = s.writer().unwrap();
            let mut b = w.batch();
            nodes::delete_dir(&mut b, &e);
            b.write().unwrap();
        }
        let s = reopen(s);
        let err = rootfs_entries(&s, "b", &r).unwrap_err().to_string();
        assert!(err.contains("is missing from the database"), "{err}");
    }
}
