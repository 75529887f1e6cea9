//! Garbage collection, mark and sweep under the exclusive store lock: everything reachable from
//! a bundle record is kept; every other blob, file object, directory node and outboard goes.
//! If any bundle record cannot be read, nothing is removed (its references are unknown).

use crate::db::{bundles, nodes};
use crate::error::{Result, StoreError};
use crate::objects::{BLOBS_DIR, OBJECTS_DIR};
use crate::store::Store;
use crate::walk::{walk_bundle, Visitor};
use cerro_core::rootfs::{Blake3Root, DirDigest};
use cerro_core::Sha256Digest;
use std::collections::HashSet;
use std::fs;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcStats {
    pub bundles: usize,
    pub removed_blobs: u64,
    pub removed_objects: u64,
    pub removed_bytes: u64,
    pub removed_dirs: u64,
    pub removed_outboards: u64,
}

#[derive(Default)]
struct Marks {
    blobs: HashSet<String>,
    files: HashSet<String>,
    dirs: HashSet<DirDigest>,
    problems: Vec<String>,
}

impl Visitor for Marks {
    fn blob(&mut self, d: &Sha256Digest, _: u64) {
        self.blobs.insert(d.hex());
    }
    fn dir(&mut self, d: &DirDigest) {
        self.dirs.insert(*d);
    }
    fn file(&mut self, _: &[u8], _: u64, root: &Blake3Root) {
        self.files.insert(root.hex());
    }
    fn problem(&mut self, path: &[u8], _: &DirDigest, what: String) {
        self.problems
            .push(format!("{}: {what}", String::from_utf8_lossy(path)));
    }
}

/// Remove everything no bundle references. Needs the store opened with `LockMode::Exclusive`.
pub fn gc(store: &Store) -> Result<GcStats> {
    let mut marks = Marks::default();
    let mut seen = HashSet::new();
    let mut stats = GcStats::default();
    for (name, rec) in bundles::all(store.db())? {
        let rec = rec.map_err(|e| {
            StoreError::Corrupt(format!(
                "{e}; nothing was removed — run `ct store fsck --repair` first (bundle {name:?})"
            ))
        })?;
        walk_bundle(store, &rec, &mut seen, &mut marks)?;
        stats.bundles += 1;
    }
    // What live mounts serve stays, even when its bundle record was removed meanwhile.
    for m in crate::mounts::list(store.root())? {
        if !m.alive {
            continue;
        }
        let info = m.info.map_err(|e| {
            StoreError::Corrupt(format!(
                "{e}; nothing was removed — a live mount's registration cannot be read"
            ))
        })?;
        for rec in &info.records {
            walk_bundle(store, rec, &mut seen, &mut marks)?;
        }
    }
    if let Some(p) = marks.problems.first() {
        // A missing directory hides what lies below it: removing anything could lose data.
        return Err(StoreError::Corrupt(format!(
            "{p}; nothing was removed — run `ct store fsck` first"
        )));
    }
    // Sweep files.
    let blobs = store.root().join(BLOBS_DIR);
    for ent in fs::read_dir(&blobs)
        .map_err(|e| StoreError::io(format!("reading {}", blobs.display()), e))?
        .flatten()
    {
        let name = ent.file_name().to_string_lossy().into_owned();
        if !marks.blobs.contains(&name) {
            stats.removed_bytes += ent.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(ent.path())
                .map_err(|e| StoreError::io(format!("removing {}", ent.path().display()), e))?;
            stats.removed_blobs += 1;
        }
    }
    let objects = store.root().join(OBJECTS_DIR);
    for sub in fs::read_dir(&objects)
        .map_err(|e| StoreError::io(format!("reading {}", objects.display()), e))?
        .flatten()
    {
        let prefix = sub.file_name().to_string_lossy().into_owned();
        let Ok(rd) = fs::read_dir(sub.path()) else {
            continue;
        };
        for ent in rd.flatten() {
            let hexname = format!("{prefix}{}", ent.file_name().to_string_lossy());
            if !marks.files.contains(&hexname) {
                stats.removed_bytes += ent.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(ent.path())
                    .map_err(|e| StoreError::io(format!("removing {}", ent.path().display()), e))?;
                stats.removed_objects += 1;
            }
        }
        let _ = fs::remove_dir(sub.path()); // only succeeds when empty
    }
    // Sweep database nodes.
    let writer = store.writer()?;
    let mut batch = writer.batch();
    for k in nodes::dir_keys(store.db())? {
        let keep = <[u8; 32]>::try_from(k.as_slice())
            .map(|a| marks.dirs.contains(&DirDigest::from_bytes(a)))
            .unwrap_or(false);
        if !keep {
            batch.delete(crate::db::CF_DIRS, &k);
            stats.removed_dirs += 1;
        }
    }
    for k in nodes::outboard_keys(store.db())? {
        let keep = <[u8; 32]>::try_from(k.as_slice())
            .map(|a| marks.files.contains(&hex::encode(a)))
            .unwrap_or(false);
        if !keep {
            batch.delete(crate::db::CF_OUTBOARDS, &k);
            stats.removed_outboards += 1;
        }
    }
    batch.write()?;
    Ok(stats)
}
