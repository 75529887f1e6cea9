//! Walks what a bundle record references: its blobs, its root record, every directory node and
//! every file object with its outboard. Shared by `gc` (mark) and `fsck` (check). Every value
//! read is checked against the digest it is stored under before it is trusted.

use crate::db::{bundles::BundleRecord, nodes};
use crate::error::{Result, StoreError};
use crate::store::Store;
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::node::dir_digest;
use cerro_core::rootfs::{Blake3Root, DirDigest, DirNode, Payload, RootRecord, RootfsDigest};
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
