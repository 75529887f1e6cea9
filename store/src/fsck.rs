//! `fsck`: re-hash everything the store holds and report, by bundle and path, every flipped bit,
//! missing or truncated object and corrupt database value. `repair` removes what is corrupt (so
//! nothing corrupt can be served or copied) and names the bundles that must be re-imported.

use crate::db::{inline, names, nodes, records};
use crate::error::Result;
use crate::objects::ObjectId;
use crate::store::Store;
use crate::walk::{record_roots, walk_bundle, Visitor};
use cerro_core::digest::hash_reader;
use cerro_core::rootfs::WalkError;
use cerro_core::rootfs::{Blake3Root, DirDigest, Outboard};
use cerro_core::Sha256Digest;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufReader, Read};

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
        let id = ObjectId::blob(d);
        let state = match self.store.open_object(&id, size) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return ObjectState::Bad("missing".into())
            }
            Err(e) => ObjectState::Bad(e.to_string()),
            Ok(f) => match hash_reader(BufReader::with_capacity(1 << 20, f.take(size + 1))) {
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
        if matches!(state, ObjectState::Bad(_)) {
            self.corrupt_ids.push(id);
        }
        state
    }

    fn check_file(&mut self, size: u64, root: &Blake3Root) -> ObjectState {
        let id = ObjectId::file(root);
        // Where the damage is, for `--repair`: the database value (format 3 keeps files of one
        // verification block there) or the object file.
        let in_db = || {
            inline::is_inline(size)
                && matches!(inline::get(self.store.db(), root), Ok(Some(_)) | Err(_))
        };
        let from_db;
        let state = match self.store.open_file_content(root, size) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return ObjectState::Bad("missing".into())
            }
            Err(e) => {
                from_db = in_db();
                ObjectState::Bad(e.to_string())
            }
            Ok(content) => {
                from_db = content.is_inline();
                let r = BufReader::with_capacity(1 << 20, content.into_reader().take(size + 1));
                match Outboard::compute(r) {
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
                            match nodes::get_outboard(self.store.db(), root) {
                                Ok(stored)
                                    if stored.as_deref().unwrap_or(&[]) == outboard.as_bytes() =>
                                {
                                    ObjectState::Ok
                                }
                                Ok(_) => {
                                    self.corrupt_dirs.push(format!("outboard:{}", root.hex()));
                                    return ObjectState::Bad(
                                        "its Merkle outboard in the database is missing or corrupt"
                                            .into(),
                                    );
                                }
                                Err(e) => ObjectState::Bad(format!("outboard unreadable: {e}")),
                            }
                        }
                    }
                }
            }
        };
        if matches!(state, ObjectState::Bad(_)) {
            if from_db {
                self.corrupt_dirs.push(format!("inline:{}", root.hex()));
            } else {
                self.corrupt_ids.push(id);
            }
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
    fn problem(&mut self, err: &WalkError) {
        if err.source.is_corruption() {
            self.corrupt_dirs.push(err.dir.to_string());
        }
        self.findings.push(Finding {
            bundle: self.bundle.clone(),
            path: Some(String::from_utf8_lossy(&err.path).into_owned()),
            object: "directory node".into(),
            problem: err.source.to_string(),
        });
    }
}

/// A record's label in findings: the names that refer to it, else its digest.
fn label(names: &[String], key: &[u8]) -> String {
    if names.is_empty() {
        records::key_shown(key)
    } else {
        names.join(", ")
    }
}

/// Check the whole store; with `repair` (needs the exclusive lock) remove what is corrupt.
/// Besides content, every binding is checked: each name is a valid name and refers to a record
/// the store has; each record is stored under the digest of the manifest it holds, its root
/// record hashes to the signed rootfs digest, and its signatures verify (trust is not fsck's
/// business: that is checked whenever a record is served).
pub fn fsck(store: &Store, repair: bool) -> Result<FsckReport> {
    let mut rep = FsckReport::default();
    let mut blob_cache = HashMap::new();
    let mut file_cache = HashMap::new();
    let mut corrupt_ids: BTreeSet<ObjectId> = BTreeSet::new();
    let mut corrupt_values: BTreeSet<String> = BTreeSet::new();
    let mut bad_records: Vec<Vec<u8>> = Vec::new();
    let mut bad_names: Vec<Vec<u8>> = Vec::new();
    let entries = store.records()?;
    let have: HashSet<Sha256Digest> = entries.iter().filter_map(|e| e.digest).collect();
    let mut names_of: HashMap<Sha256Digest, Vec<String>> = HashMap::new();
    for (key, r) in store.names()? {
        let finding = |problem: String| Finding {
            bundle: crate::shown(&key),
            path: None,
            object: "name".into(),
            problem,
        };
        match (names::valid_name(&key), r) {
            (Ok(n), Ok(r)) if have.contains(&r.digest) => {
                names_of.entry(r.digest).or_default().push(n.to_string())
            }
            (Ok(n), Ok(r)) => {
                rep.findings.push(finding(format!(
                    "refers to bundle {}, which the store has no record of",
                    r.digest
                )));
                rep.must_reimport.insert(n.to_string());
                bad_names.push(key.clone());
            }
            (_, Err(e)) | (Err(e), _) => {
                rep.findings.push(finding(e.to_string()));
                bad_names.push(key.clone());
            }
        }
    }
    for e in entries {
        rep.bundles += 1;
        let names = e
            .digest
            .and_then(|d| names_of.get(&d).cloned())
            .unwrap_or_default();
        let who = label(&names, &e.key);
        let broken = |problem: String, rep: &mut FsckReport| {
            rep.findings.push(Finding {
                bundle: who.clone(),
                path: None,
                object: "store record".into(),
                problem,
            });
            rep.must_reimport.extend(names.iter().cloned());
        };
        let Some(digest) = e.digest else {
            broken("its key is not a bundle digest".into(), &mut rep);
            bad_records.push(e.key);
            continue;
        };
        let rec = match e.record {
            Ok(r) => r,
            Err(err) => {
                broken(err.to_string(), &mut rep);
                bad_records.push(e.key);
                continue;
            }
        };
        let (m, root) = match record_roots(&digest, &rec) {
            Ok(x) => x,
            Err(err) => {
                broken(err.to_string(), &mut rep);
                bad_records.push(e.key);
                continue;
            }
        };
        if let Some(problem) = signature_problem(&rec, &digest) {
            broken(problem, &mut rep);
            bad_records.push(e.key);
            continue;
        }
        // Each bundle walks all of its own directories (no sharing), so findings name every bundle affected.
        let mut seen = HashSet::new();
        let mut c = Checker {
            store,
            bundle: who.clone(),
            blob_cache: &mut blob_cache,
            file_cache: &mut file_cache,
            findings: vec![],
            corrupt_ids: vec![],
            corrupt_dirs: vec![],
            report_counts: (0, 0, 0),
        };
        if let Err(err) = walk_bundle(store, &m, &root, &mut seen, &mut c) {
            c.findings.push(Finding {
                bundle: who.clone(),
                path: None,
                object: "store record".into(),
                problem: err.to_string(),
            });
        }
        rep.blobs_checked += c.report_counts.0;
        rep.objects_checked += c.report_counts.1;
        rep.bytes_checked += c.report_counts.2;
        if !c.findings.is_empty() {
            rep.must_reimport.extend(names.iter().cloned());
            if names.is_empty() {
                rep.must_reimport.insert(digest.to_string());
            }
        }
        corrupt_ids.extend(c.corrupt_ids);
        corrupt_values.extend(c.corrupt_dirs);
        rep.findings.extend(c.findings);
    }
    if repair {
        for id in &corrupt_ids {
            let rel = id.relative_path_str();
            let (dir, leaf) = rel.rsplit_once('/').expect("object paths have a directory");
            if store.dirs().remove_file(dir, leaf).unwrap_or(false) {
                rep.removed
                    .push(store.object_path(id).display().to_string());
            }
        }
        let writer = store.writer()?;
        let mut batch = writer.batch();
        for v in &corrupt_values {
            if let Some(h) = v.strip_prefix("outboard:") {
                if let Ok(k) = hex::decode(h) {
                    nodes::delete_outboard_key(&mut batch, &k);
                    rep.removed.push(format!("outboard {h}"));
                }
            } else if let Some(h) = v.strip_prefix("inline:") {
                if let Ok(k) = hex::decode(h) {
                    inline::delete_key(&mut batch, &k);
                    rep.removed
                        .push(format!("the database's copy of object {h}"));
                }
            } else if let Ok(d) = DirDigest::parse(v) {
                nodes::delete_dir(&mut batch, &d);
                rep.removed.push(format!("directory node {v}"));
            }
        }
        for k in &bad_records {
            records::delete(&mut batch, k);
            rep.removed
                .push(format!("store record {}", records::key_shown(k)));
        }
        for k in &bad_names {
            names::delete(&mut batch, k);
            rep.removed.push(format!("name {}", crate::shown(k)));
        }
        batch.write()?;
    }
    Ok(rep)
}

/// Why the record's signatures do not verify over its manifest (cryptographically; whether a
/// signer is trusted is not checked here), or `None`.
fn signature_problem(rec: &records::Record, digest: &Sha256Digest) -> Option<String> {
    use cerro_core::verify::{verify_signed_manifest, FailureKind, VerifyContext};
    let bytes = rec.bytes(digest).ok()?;
    let r = verify_signed_manifest(
        &bytes.manifest,
        &bytes.signatures,
        &VerifyContext {
            trust: &|_| None,
            policy: None,
            now: chrono_now(),
        },
    );
    match r.failure {
        Some(f) if f.kind != FailureKind::KeyNotTrusted => {
            Some(format!("its signatures do not verify: {}", f.message))
        }
        _ => None,
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
