//! Garbage collection, mark and sweep under the exclusive store lock. The roots are every name
//! and every live lease (mount daemons, `ct run`, `ct unpack` … take one before they resolve
//! what they read, see lease.rs); records no root reaches are removed, and everything reachable
//! from a remaining record is kept: every other blob, file object, directory node and outboard
//! goes, small files' contents in the database included. If anything a root depends on cannot be read, nothing is removed (its references are
//! unknown). Files are listed and removed through descriptors; only names of the store's own
//! form (64 hex digits) that `lstat` shows to be regular files or links are ever removed.

use crate::db::{inline, names, nodes, records};
use crate::dirs::{list_at, remove_file_at};
use crate::error::{Result, StoreError};
use crate::lease;
use crate::objects::{BLOBS_DIR, OBJECTS_DIR};
use crate::store::Store;
use crate::walk::{record_roots, walk_bundle, Visitor};
use cerro_core::rootfs::{Blake3Root, DirDigest, WalkError};
use cerro_core::Sha256Digest;
use std::collections::HashSet;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcStats {
    /// Bundles kept (named, or leased by a live reader).
    pub bundles: usize,
    /// Records removed: bundles no name and no live reader refers to any more.
    pub removed_records: u64,
    pub removed_blobs: u64,
    pub removed_objects: u64,
    pub removed_bytes: u64,
    pub removed_dirs: u64,
    pub removed_outboards: u64,
    /// Small files' contents removed from the database (store format 3).
    pub removed_inline: u64,
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
    fn problem(&mut self, err: &WalkError) {
        self.problems.push(err.to_string());
    }
}

fn refuse(what: String) -> StoreError {
    StoreError::Corrupt(format!(
        "{what}; nothing was removed — run `ct store fsck` (and `--repair`) first"
    ))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Remove everything no name and no live reader references. Needs the store opened with
/// `LockMode::Exclusive` (so no reader can take a lease meanwhile).
pub fn gc(store: &Store) -> Result<GcStats> {
    let mut stats = GcStats::default();
    let mut roots: HashSet<Sha256Digest> = HashSet::new();
    for (key, r) in names::all(store.db())? {
        let r = r.map_err(|e| refuse(format!("{e} (name {})", crate::shown(&key))))?;
        roots.insert(r.digest);
    }
    roots.extend(lease::live_digests(store.dirs())?);

    let mut marks = Marks::default();
    let mut seen = HashSet::new();
    let mut dead_records = Vec::new();
    for e in store.records()? {
        let rooted = e.digest.is_some_and(|d| roots.contains(&d));
        if !rooted {
            dead_records.push(e.key);
            continue;
        }
        let d = e.digest.expect("rooted records have digest keys");
        let rec = e.record.map_err(|err| refuse(err.to_string()))?;
        let (m, root) = record_roots(&d, &rec).map_err(|err| refuse(err.to_string()))?;
        walk_bundle(store, &m, &root, &mut seen, &mut marks)?;
        stats.bundles += 1;
    }
    if let Some(p) = marks.problems.first() {
        // A missing directory hides what lies below it: removing anything could lose data.
        return Err(refuse(p.clone()));
    }
    // Sweep files.
    let dirs = store.dirs();
    let blobs = dirs.open_dir(BLOBS_DIR)?;
    let listing = |p: &str, e: std::io::Error| {
        StoreError::io(format!("reading {}", dirs.join(p).display()), e)
    };
    for name in list_at(&blobs).map_err(|e| listing(BLOBS_DIR, e))? {
        if is_hex(&name, 64) && !marks.blobs.contains(&name) {
            let size = dirs
                .lstat(&format!("{BLOBS_DIR}/{name}"))?
                .map_or(0, |(_, s)| s);
            if remove_file_at(&blobs, &name)
                .map_err(|e| StoreError::io(format!("removing blob {name}"), e))?
            {
                stats.removed_bytes += size;
                stats.removed_blobs += 1;
            }
        }
    }
    let objects = dirs.open_dir(OBJECTS_DIR)?;
    for prefix in list_at(&objects).map_err(|e| listing(OBJECTS_DIR, e))? {
        if !is_hex(&prefix, 2) {
            continue;
        }
        // A link or anything but a real directory of ours is left alone.
        let Ok(sub) = dirs.open_dir(&format!("{OBJECTS_DIR}/{prefix}")) else {
            continue;
        };
        for name in list_at(&sub).map_err(|e| listing(OBJECTS_DIR, e))? {
            let hexname = format!("{prefix}{name}");
            if is_hex(&hexname, 64) && !marks.files.contains(&hexname) {
                let size = dirs
                    .lstat(&format!("{OBJECTS_DIR}/{prefix}/{name}"))?
                    .map_or(0, |(_, s)| s);
                if remove_file_at(&sub, &name)
                    .map_err(|e| StoreError::io(format!("removing object {hexname}"), e))?
                {
                    stats.removed_bytes += size;
                    stats.removed_objects += 1;
                }
            }
        }
        // Only succeeds when empty.
        let _ = rustix::fs::unlinkat(&objects, prefix.as_str(), rustix::fs::AtFlags::REMOVEDIR);
    }
    // Sweep the database: unreferenced records, nodes and outboards, in one batch.
    let writer = store.writer()?;
    let mut batch = writer.batch();
    for k in &dead_records {
        records::delete(&mut batch, k);
        stats.removed_records += 1;
    }
    for k in nodes::dir_keys(store.db())? {
        let keep = <[u8; 32]>::try_from(k.as_slice())
            .map(|a| marks.dirs.contains(&DirDigest::from_bytes(a)))
            .unwrap_or(false);
        if !keep {
            nodes::delete_dir_key(&mut batch, &k);
            stats.removed_dirs += 1;
        }
    }
    // A file's outboard and database value are kept while a kept record reaches the file; a key
    // that is not a root at all is never reached.
    let reached = |k: &[u8]| {
        <[u8; 32]>::try_from(k)
            .ok()
            .filter(|a| marks.files.contains(&hex::encode(a)))
            .is_some()
    };
    for k in nodes::outboard_keys(store.db())? {
        if !reached(&k) {
            nodes::delete_outboard_key(&mut batch, &k);
            stats.removed_outboards += 1;
        }
    }
    for k in inline::keys(store.db())? {
        if !reached(&k) {
            let stored = <[u8; 32]>::try_from(k.as_slice())
                .ok()
                .and_then(|a| inline::get(store.db(), &Blake3Root::from_bytes(a)).ok())
                .flatten();
            stats.removed_bytes += stored.map_or(0, |v| v.len() as u64);
            inline::delete_key(&mut batch, &k);
            stats.removed_inline += 1;
        }
    }
    batch.write()?;
    Ok(stats)
}
