//! `du`: the store's logical size (what the bundles would take stored separately), its stored
//! size (each blob and object once, plus the database) and the difference, the dedup saving.

use crate::db::{inline, names};
use crate::error::Result;
use crate::store::Store;
use crate::walk::{record_roots, walk_bundle, Visitor};
use cerro_core::rootfs::{Blake3Root, WalkError};
use cerro_core::Sha256Digest;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default, Serialize)]
pub struct BundleUsage {
    pub name: String,
    /// Blob bytes (compressed layers, config, manifest) plus file content bytes.
    pub logical_bytes: u64,
    pub files: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Usage {
    pub bundles: Vec<BundleUsage>,
    pub logical_bytes: u64,
    /// Unique blob and object-file bytes, plus the database directory (which holds the contents
    /// of files of at most 64 KiB).
    pub stored_bytes: u64,
    pub database_bytes: u64,
    pub saving_bytes: u64,
}

struct Sum<'a> {
    u: BundleUsage,
    unique_blobs: &'a mut HashMap<String, u64>,
    unique_files: &'a mut HashMap<String, u64>,
}

impl Visitor for Sum<'_> {
    fn blob(&mut self, d: &Sha256Digest, size: u64) {
        self.u.logical_bytes += size;
        self.unique_blobs.insert(d.hex(), size);
    }
    fn file(&mut self, _: &[u8], size: u64, root: &Blake3Root) {
        self.u.logical_bytes += size;
        self.u.files += 1;
        self.unique_files.insert(root.hex(), size);
    }
    fn problem(&mut self, _: &WalkError) {}
}

pub fn usage(store: &Store) -> Result<Usage> {
    let mut out = Usage::default();
    let mut blobs = HashMap::new();
    let mut files = HashMap::new();
    // One row per name (what a user sees as a bundle), then one per record no name refers to
    // (an older version kept until `gc`). Records that do not check out are left out.
    let mut rows: Vec<(String, Sha256Digest)> = Vec::new();
    for (key, r) in store.names()? {
        if let (Ok(n), Ok(r)) = (names::valid_name(&key), r) {
            rows.push((n.to_string(), r.digest));
        }
    }
    for e in store.records()? {
        if let Some(d) = e.digest.filter(|d| !rows.iter().any(|(_, x)| x == d)) {
            rows.push((d.to_string(), d));
        }
    }
    for (name, digest) in rows {
        let Ok(Some(rec)) = store.record_unverified(&digest) else {
            continue;
        };
        let Ok((m, root)) = record_roots(&digest, &rec) else {
            continue;
        };
        // Directories are walked per bundle so each bundle's logical size counts all its files.
        let mut seen = HashSet::new();
        let mut s = Sum {
            u: BundleUsage {
                name,
                ..Default::default()
            },
            unique_blobs: &mut blobs,
            unique_files: &mut files,
        };
        walk_bundle(store, &m, &root, &mut seen, &mut s)?;
        out.logical_bytes += s.u.logical_bytes;
        out.bundles.push(s.u);
    }
    out.database_bytes = dir_size(&store.root().join("db"));
    // Files of one verification block are in the database (format 3), counted in its size.
    let object_files: u64 = files.values().filter(|s| !inline::is_inline(**s)).sum();
    out.stored_bytes = blobs.values().sum::<u64>() + object_files + out.database_bytes;
    out.saving_bytes = out.logical_bytes.saturating_sub(out.stored_bytes);
    Ok(out)
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
