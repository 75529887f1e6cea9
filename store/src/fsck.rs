//! `fsck`: re-hash everything the store holds and report, by bundle and path, every flipped bit,
//! missing or truncated object and corrupt database value. `repair` removes what is corrupt (so
//! nothing corrupt can be served or copied) and names the bundles that must be re-imported.

use crate::db::{bundles, nodes};
use crate::error::Result;
use crate::objects::ObjectId;
use crate::store::Store;
use crate::walk::{walk_bundle, Visitor};
use cerro_core::digest::hash_reader;
use cerro_core::rootfs::{Blake3Root, DirDigest, Outboard};
use cerro_core::Sha256Digest;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub bundle: String,
    /// Path inside the rootfs, when the problem is a file or directory.
    pub path: Option<String>,
    /// The blob, object or database value at fault.
    pub object: String,
    pub problem: String,
}

#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    pub bundles: usize,
    pub blobs_checked: u64,
    pub objects_checked: u64,
    pub bytes_checked: u64,
    pub findings: Vec<Finding>,
    /// With `repair`: what was removed.
    pub removed: Vec<String>,
    pub must_reimport: BTreeSet<String>,
}

impl FsckReport {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The verdict on one content object, computed once however many bundles share it.
#[derive(Clone)]
enum ObjectState {
    Ok,
    Bad(String),
}

struct Checker<'a> {
    store: &'a Store,
    bundle: String,
    blob_cache: &'a mut HashMap<String, ObjectState>,
    file_cache: &'a mut HashMap<String, ObjectState>,
    findings: Vec<Finding>,
    corrupt_ids: Vec<ObjectId>,
    corrupt_dirs: Vec<String>,
    report_counts: (u64, u64, u64),
}

impl Checker<'_> {
    fn check_blob(&mut self, d: &Sha256Digest, size: u64) -> ObjectState {
        let id = ObjectId::Blob(d.hex());
        let p = self.store.object_path(&id);
        let state = match File::open(&p) {
            Err(e) => ObjectState::Bad(format!("missing ({e})")),
            Ok(f) => match hash_reader(BufReader::with_capacity(1 << 20, f)) {
                Err(e) => ObjectState::Bad(format!("unreadable: {e}")),
                Ok((got, len)) => {
                    self.report_counts.0 += 1;
                    self.report_counts.2 += len;
                    if len != size {
                        ObjectState::Bad(format!(
                            "truncated or extended: {len} bytes, expected {size}"
                        ))
                    } else if got != *d {
                        ObjectState::Bad(format!("content changed: hashes to {got}"))
                    } else {
                        ObjectState::Ok
                    }
                }
            },
        };
        if matches!(state, ObjectState::Bad(_)) && p.exists() {
            self.corrupt_ids.push(id);
        }
        state
    }

    fn check_file(&mut self, size: u64, root: &Blake3Root) -> ObjectState {
        let id = ObjectId::File(root.hex());
        let p = self.store.object_path(&id);
        let state = match File::open(&p) {
            Err(e) => ObjectState::Bad(format!("missing ({e})")),
            Ok(f) => match Outboard::compute(BufReader::with_capacity(1 << 20, f)) {
                Err(e) => ObjectState::Bad(format!("unreadable: {e}")),
                Ok((got, outboard, len)) => {
                    self.report_counts.1 += 1;
                    self.report_counts.2 += len;
                    if len != size {
                        ObjectState::Bad(format!(
                            "truncated or extended: {len} bytes, expected {size}"
                        ))
                    } else if got != *root {
                        ObjectState::Bad(format!("content changed: hashes to {got}"))
                    } else {
                        match nodes::get_outboard(self.store.db(), root.as_bytes()) {
                            Ok(stored)
                                if stored.as_deref().unwrap_or(&[]) == outboard.as_bytes() =>
                            {
                                ObjectState::Ok
                            }
                            Ok(_) => {
                                self.corrupt_dirs.push(format!("outboard:{}", root.hex()));
                                ObjectState::Bad(
                                    "its Merkle outboard in the database is missing or corrupt"
                                        .into(),
                                )
                            }
                            Err(e) => ObjectState::Bad(format!("outboard unreadable: {e}")),
                        }
                    }
                }
            },
        };
        if matches!(&state, ObjectState::Bad(m) if !m.contains("outboard")) && p.exists() {
            self.corrupt_ids.push(id);
        }
        state
    }
}

impl Visitor for Checker<'_> {
    fn blob(&mut self, d: &Sha256Digest, size: u64) {
        let key = d.hex();
        let state = match self.blob_cache.get(&key) {
            Some(s) => s.clone(),
            None => {
                let s = self.check_blob(d, size);
                self.blob_cache.insert(key, s.clone());
                s
            }
        };
        if let ObjectState::Bad(problem) = state {
            self.findings.push(Finding {
                bundle: self.bundle.clone(),
                path: None,
                object: format!("blob {d}"),
                problem,
            });
        }
    }
    fn dir(&mut self, _: &DirDigest) {}
    fn file(&mut self, path: &[u8], size: u64, root: &Blake3Root) {
        let key = root.hex();
        let state = match self.file_cache.get(&key) {
            Some(s) => s.clone(),
            None => {
                let s = self.check_file(size, root);
                self.file_cache.insert(key, s.clone());
                s
            }
        };
        if let ObjectState::Bad(problem) = state {
            self.findings.push(Finding {
                bundle: self.bundle.clone(),
                path: Some(String::from_utf8_lossy(path).into_owned()),
                object: format!("object {root}"),
                problem,
            });
        }
    }
    fn problem(&mut self, path: &[u8], dir: &DirDigest, what: String) {
        if !what.contains("missing") {
            self.corrupt_dirs.push(dir.to_string());
        }
        self.findings.push(Finding {
            bundle: self.bundle.clone(),
            path: Some(String::from_utf8_lossy(path).into_owned()),
            object: "directory node".into(),
            problem: what,
        });
    }
}

/// Check the whole store; with `repair` (needs the exclusive lock) remove what is corrupt.
pub fn fsck(store: &Store, repair: bool) -> Result<FsckReport> {
    let mut rep = FsckReport::default();
    let mut blob_cache = HashMap::new();
    let mut file_cache = HashMap::new();
    let mut corrupt_ids: BTreeSet<ObjectId> = BTreeSet::new();
    let mut corrupt_values: BTreeSet<String> = BTreeSet::new();
    let mut bad_records = Vec::new();
    for (name, rec) in bundles::all(store.db())? {
        rep.bundles += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                rep.findings.push(Finding {
                    bundle: name.clone(),
                    path: None,
                    object: "bundle record".into(),
                    problem: e.to_string(),
                });
                rep.must_reimport.insert(name.clone());
                bad_records.push(name);
                continue;
            }
        };
        // Each bundle walks all of its own directories (no sharing), so findings name every bundle affected.
        let mut seen = HashSet::new();
        let mut c = Checker {
            store,
            bundle: name.clone(),
            blob_cache: &mut blob_cache,
            file_cache: &mut file_cache,
            findings: vec![],
            corrupt_ids: vec![],
            corrupt_dirs: vec![],
            report_counts: (0, 0, 0),
        };
        if let Err(e) = walk_bundle(store, &rec, &mut seen, &mut c) {
            c.findings.push(Finding {
                bundle: name.clone(),
                path: None,
                object: "bundle record".into(),
                problem: e.to_string(),
            });
        }
        rep.blobs_checked += c.report_counts.0;
        rep.objects_checked += c.report_counts.1;
        rep.bytes_checked += c.report_counts.2;
        if !c.findings.is_empty() {
            rep.must_reimport.insert(name.clone());
        }
        corrupt_ids.extend(c.corrupt_ids);
        corrupt_values.extend(c.corrupt_dirs);
        rep.findings.extend(c.findings);
    }
    if repair {
        for id in &corrupt_ids {
            let p = store.object_path(id);
            if std::fs::remove_file(&p).is_ok() {
                rep.removed.push(p.display().to_string());
            }
        }
        let writer = store.writer()?;
        let mut batch = writer.batch();
        for v in &corrupt_values {
            if let Some(h) = v.strip_prefix("outboard:") {
                if let Ok(k) = hex::decode(h) {
                    batch.delete(crate::db::CF_OUTBOARDS, &k);
                    rep.removed.push(format!("outboard {h}"));
                }
            } else if let Ok(d) = DirDigest::parse(v) {
                nodes::delete_dir(&mut batch, d.as_bytes());
                rep.removed.push(format!("directory node {v}"));
            }
        }
        for name in &bad_records {
            batch.delete(crate::db::CF_BUNDLES, name.as_bytes());
            rep.removed.push(format!("bundle record {name:?}"));
        }
        batch.write()?;
    }
    Ok(rep)
}
