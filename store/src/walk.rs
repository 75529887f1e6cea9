//! Walks what a bundle record references: its blobs, its root record, every directory node and
//! every file object with its outboard. Shared by `gc` (mark), `fsck` (check) and `ct store tree`
//! (every entry with its path). Every value read is checked against the digest it is stored
//! under before it is trusted.

use crate::db::{bundles::BundleRecord, nodes};
use crate::error::{Result, StoreError};
use crate::store::Store;
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::node::dir_digest;
use cerro_core::rootfs::{
    Blake3Root, DirDigest, DirEntry, DirNode, Payload, RootRecord, RootfsDigest,
};
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

/// Parse a record's signed manifest and root record, checking the root record's digest.
pub fn record_roots(r: &BundleRecord) -> Result<(Manifest, RootRecord)> {
    let m = Manifest::parse(r.manifest.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("bundle {}: stored manifest: {e}", r.name)))?;
    let bytes = hex::decode(&r.root_record)
        .map_err(|_| StoreError::Corrupt(format!("bundle {}: root record is not hex", r.name)))?;
    let root = RootRecord::decode(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("bundle {}: root record: {e}", r.name)))?;
    if root.digest() != m.rootfs.digest
        || RootfsDigest::parse(&r.rootfs).ok() != Some(m.rootfs.digest)
    {
        return Err(StoreError::Corrupt(format!(
            "bundle {}: stored root record does not match the signed rootfs digest",
            r.name
        )));
    }
    Ok((m, root))
}

/// Walk one bundle. `seen_dirs` is shared across bundles so common directories are read once.
pub fn walk_bundle(
    store: &Store,
    r: &BundleRecord,
    seen_dirs: &mut HashSet<DirDigest>,
    v: &mut dyn Visitor,
) -> Result<()> {
    let (m, root) = record_roots(r)?;
    for d in m.image_blobs() {
        v.blob(&d.digest, d.size);
    }
    let mut stack: Vec<(Vec<u8>, DirDigest)> = vec![(b"/".to_vec(), root.dir)];
    while let Some((path, d)) = stack.pop() {
        if !seen_dirs.insert(d) {
            continue;
        }
        let Some(bytes) = nodes::get_dir(store.db(), d.as_bytes())? else {
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

/// Every entry of the rootfs of bundle `r`, the root first (path `/`, with the signed root
/// record's metadata and its directory digest), then all others sorted by path (`/`-joined
/// bytes, leading `/`). Each directory node is read once per path it appears at and checked
/// against the digest its parent names, up to the root record, which is checked against the
/// signed manifest: a missing, corrupt or undecodable node is an error naming bundle and path.
pub fn rootfs_entries(store: &Store, r: &BundleRecord) -> Result<Vec<(Vec<u8>, DirEntry)>> {
    let (_, root) = record_roots(r)?;
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
        let bad = |what: String| StoreError::Corrupt(format!("bundle {}, {shown}: {what}", r.name));
        let bytes = nodes::get_dir(store.db(), d.as_bytes())?
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
    use crate::db::{bundles, CF_DIRS};
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
    fn store_with_tree(root: &std::path::Path) -> (Store, DirDigest) {
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
            nodes::put_dir(&mut b, n.digest().as_bytes(), &n.encode());
        }
        bundles::put(
            &mut b,
            &BundleRecord {
                format: bundles::BUNDLE_RECORD_FORMAT_V1.into(),
                name: "b".into(),
                bundle_digest: Sha256Digest::of(&m.encode()).to_string(),
                manifest: String::from_utf8(m.encode()).unwrap(),
                signatures: Default::default(),
                rootfs: rec.digest().to_string(),
                root_record: hex::encode(rec.encode()),
                imported_at: 0,
            },
        );
        b.write().unwrap();
        drop(w);
        drop(s);
        // A store opened now sees what was written (each open reads the database as it is).
        let s = Store::open(root, LockMode::Exclusive).unwrap();
        (s, e.digest())
    }

    #[test]
    fn entries_come_root_first_then_by_path_with_shared_nodes_at_each_path() {
        let t = tempfile::tempdir().unwrap();
        let (s, _) = store_with_tree(t.path());
        let r = s.bundle("b").unwrap();
        let paths: Vec<String> = rootfs_entries(&s, &r)
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
        let (s, e) = store_with_tree(t.path());
        let r = s.bundle("b").unwrap();
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
        let err = rootfs_entries(&s, &r).unwrap_err().to_string();
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
            nodes::delete_dir(&mut b, e.as_bytes());
            b.write().unwrap();
        }
        let s = reopen(s);
        let err = rootfs_entries(&s, &r).unwrap_err().to_string();
        assert!(err.contains("is missing from the database"), "{err}");
    }
}
