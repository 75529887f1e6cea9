//! Import of a verified bundle into the store, all or nothing. It takes the witness
//! `Verified<SignedBundle>` that only core's verification makes, so nothing unverified can be
//! imported. Each layer is read once: the bytes are hashed (SHA-256, checked against the signed
//! descriptor) and kept as the verbatim blob while they are decompressed, parsed and applied
//! (core's rootfs rules); every regular file becomes a content-addressed object with its
//! Merkle outboard — or, for a file of at most one verification block, a value in the
//! database's `inline` family, written sorted into table files in staging (`db/inline.rs`).
//! New objects wait in a staging directory until the rootfs derived from the layers equals the
//! signed one; only then are they moved into place, synced (tables ingested), and made
//! reachable by one database batch: the record under the bundle digest, and the name moved to
//! it (never to an older `created` unless allowed). A crash at any point leaves either no trace
//! (staging is removed) or unreferenced objects that `gc` removes.
//!
//! Re-import heals: every object, blob, directory node and outboard the bundle relies on that
//! the store already holds is checked (type, size, content hash; node and outboard bytes) and
//! replaced with the verified bytes when it is damaged.

use crate::db::{inline, names, nodes, records};
use crate::error::StoreError;
use crate::objects::{check_existing, sync_store, Existing, ObjectId, Staging, Temp};
use crate::store::Store;
use cerro_core::bundle::{BlobSource, BundleError};
use cerro_core::manifest::{is_valid_name, Manifest};
use cerro_core::rootfs::{
    Blake3Root, ContentSink, Limits, OutboardBuilder, RootfsBuilder, RootfsDigest,
};
use cerro_core::source::layer_compression;
use cerro_core::verified::{SignedBundle, Verified};
use cerro_core::Sha256Digest;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// Files up to this size are hashed in memory first, so content the store already has is never
/// written at all; larger ones are streamed to a staging file while they are hashed.
const IN_MEMORY_FILE_MAX: u64 = 1 << 20;
const COPY_BUF: usize = 1 << 20;
/// Small files' contents are held in memory up to this many bytes, then written out as one
/// sorted table file in staging (bounded memory for images of any size).
const INLINE_TABLE_BYTES: usize = 32 << 20;

/// What to do when the name would move to an older bundle (signed `created` earlier than the
/// one the name holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downgrade {
    /// Refuse the import (exit 4): `ct import` without `--allow-downgrade`.
    Refuse,
    /// Import the bundle by digest but leave the name where it is: `ct mount FILE` and friends,
    /// which serve exactly FILE's digest whatever the name says.
    KeepName,
    /// Move the name anyway (`--allow-downgrade`).
    Allow,
}

/// How to import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions<'a> {
    /// The name to point at the bundle [default: its package name].
    pub name: Option<&'a str>,
    pub downgrade: Downgrade,
}

/// What happened to the name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NameAction {
    /// The name is new.
    Created,
    /// The name already named this bundle.
    Unchanged,
    /// The name moved from another bundle to this one.
    Moved,
    /// The name stays on a newer bundle (`Downgrade::KeepName`).
    KeptNewer,
}

#[derive(Debug, Clone, Serialize)]
pub struct NameOutcome {
    pub name: String,
    pub action: NameAction,
    /// The bundle the name named before, when another.
    pub previous: Option<Sha256Digest>,
    /// That bundle's signed version and `created`, when its record could be read.
    pub previous_version: Option<String>,
    pub previous_created: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportStats {
    /// The store already held this bundle's record, intact: nothing new was needed (damaged
    /// parts, if any, were replaced: see `healed`).
    pub already_present: bool,
    pub files: u64,
    pub file_bytes: u64,
    pub new_objects: u64,
    pub new_object_bytes: u64,
    pub new_blobs: u64,
    pub new_blob_bytes: u64,
    pub directories: u64,
    /// Damaged objects, blobs, nodes, outboards or records the import replaced, one line each.
    pub healed: Vec<String>,
    pub name: Option<NameOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("the layers give root filesystem {derived}, but the signed manifest says {signed}")]
    RootfsMismatch {
        signed: RootfsDigest,
        derived: RootfsDigest,
    },
    #[error("{name:?} is not a valid bundle name (1-128 of A-Z a-z 0-9 . _ -)")]
    InvalidName { name: String },
    #[error("{0}")]
    Downgrade(Box<Rollback>),
}

/// A name move refused because the new bundle is older than the one the name holds.
#[derive(Debug, thiserror::Error)]
#[error("refusing to move {name} from version {held_version} (created {held_created}, {held}) to the older version {new_version} (created {new_created}, {new})")]
pub struct Rollback {
    pub name: String,
    pub held: Sha256Digest,
    pub held_version: String,
    pub held_created: String,
    pub new: Sha256Digest,
    pub new_version: String,
    pub new_created: String,
}

/// Import the verified bundle `bundle`, reading its blobs from `src` (the bundle file it was
/// verified from). Every byte is re-hashed here anyway.
pub fn import(
    store: &Store,
    src: &mut dyn BlobSource,
    bundle: &Verified<SignedBundle>,
    opts: ImportOptions<'_>,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportStats, ImportError> {
    let m = bundle.manifest();
    let digest = bundle.digest();
    let name = opts.name.unwrap_or(&m.package.name);
    if !is_valid_name(name) {
        return Err(ImportError::InvalidName {
            name: name.chars().take(200).collect(),
        });
    }
    // Fail fast on a refused downgrade; decided again against the database at write time.
    decide_name(store.db(), name, digest, m, opts.downgrade)?;
    let record = records::Record::new(bundle.manifest_bytes(), bundle.signatures(), &[], now())?;
    let mut stats = ImportStats {
        already_present: matches!(
            store.record_unverified(&digest),
            Ok(Some(r)) if Sha256Digest::of(r.manifest.as_bytes()) == digest
                && r.manifest == record.manifest && r.signatures == record.signatures
        ),
        ..Default::default()
    };
    let mut staging = Staging::new(store.dirs())?;
    let mut checked: HashMap<ObjectId, bool> = HashMap::new();
    let mut done = 0u64;

    // Small blobs (image manifest, config, attestations) first, then each layer once, in order.
    let small = [
        (m.image.digest, m.image.size),
        (m.config.digest, m.config.size),
    ]
    .into_iter()
    .chain(m.attestations.iter().map(|a| (a.digest, a.size)));
    for (digest, size) in small {
        let mut r = src.open_blob(&digest, size)?;
        copy_blob(
            store,
            &mut staging,
            &mut checked,
            &mut *r,
            digest,
            size,
            &mut stats,
        )?;
    }
    let mut builder = RootfsBuilder::new(*limits);
    let mut sink = StoreSink {
        store,
        staging: &mut staging,
        checked: &mut checked,
        outboards: HashMap::new(),
        inline: InlineTables::default(),
        stats: &mut stats,
    };
    for (i, l) in m.layers.iter().enumerate() {
        let compression = layer_compression(&l.media_type).ok_or_else(|| {
            BundleError::malformed(format!("layer {} has media type {:?}", i + 1, l.media_type))
        })?;
        let id = ObjectId::blob(&l.digest);
        let keep = sink.needs(&id, l.size);
        let (tmp, out) = if keep {
            sink.staging.temp_file().map(|(t, f)| (Some(t), Some(f)))?
        } else {
            (None, None)
        };
        let mut tee = Tee {
            inner: src.open_blob(&l.digest, l.size)?,
            hasher: Sha256::new(),
            out,
            len: 0,
        };
        builder
            .apply_layer(&mut tee, compression, &mut sink)
            .map_err(|e| layer_error(i, l.digest, e))?;
        // Whatever follows the tar's end (padding, a trailing gzip member) is part of the blob.
        io::copy(&mut tee, &mut io::sink())
            .map_err(|e| StoreError::io(format!("reading layer {}", i + 1), e))?;
        let (got, len, out) = tee.finish();
        if got != l.digest || len != l.size {
            return Err(BundleError::Mismatch(format!(
                "layer {} {}: the bundle's bytes ({len} bytes) hash to {got}",
                i + 1,
                l.digest
            ))
            .into());
        }
        if let (Some(t), Some(mut f)) = (tmp, out) {
            f.flush()
                .map_err(|e| StoreError::io("writing a layer blob", e))?;
            sink.stats.new_blobs += 1;
            sink.stats.new_blob_bytes += len;
            sink.staging.stage(t, id)?;
        }
        done += l.size;
        progress(done);
    }
    let outboards = std::mem::take(&mut sink.outboards);
    let mut inline_tables = std::mem::take(&mut sink.inline);
    let rootfs = builder.finish();
    if rootfs.digest != m.rootfs.digest {
        return Err(ImportError::RootfsMismatch {
            signed: m.rootfs.digest,
            derived: rootfs.digest,
        });
    }

    // Verified: move objects into place, make them durable, then publish in one batch.
    inline_tables.write_pending(&mut staging)?;
    staging.commit()?;
    sync_store(store.dirs())?;
    // The database is opened read-write only now, for this one batch, so that imports running
    // side by side wait for each other only here. The name is decided again against the
    // database as it is now: another import may have moved it meanwhile. Small files' tables
    // go in first (ingestion is durable): the record that refers to them comes after.
    let db = store.writer()?;
    inline::ingest(&db, &inline_tables.tables)?;
    let name_outcome = decide_name(&db, name, digest, m, opts.downgrade)?;
    let db = &db;
    let mut batch = db.batch();
    for (d, node) in &rootfs.dirs {
        match nodes::get_dir(db, d)? {
            Some(stored) if stored == *node => {}
            stored => {
                if stored.is_some() {
                    stats.healed.push(format!("directory node {d}"));
                }
                nodes::put_dir(&mut batch, d, node);
            }
        }
    }
    stats.directories = rootfs.dirs.len() as u64;
    for (root, ob) in &outboards {
        match nodes::get_outboard(db, root)? {
            Some(stored) if stored == *ob => {}
            stored => {
                if stored.is_some() {
                    stats.healed.push(format!("outboard of {root}"));
                }
                nodes::put_outboard(&mut batch, root, ob);
            }
        }
    }
    let record = records::Record {
        root_record: hex::encode(rootfs.root.encode()),
        ..record
    };
    match records::get(db, &digest) {
        Ok(Some(held)) if held.same_content(&record) => {}
        held => {
            if !matches!(held, Ok(None)) {
                stats.healed.push(format!("store record {digest}"));
                stats.already_present = false;
            }
            records::put(&mut batch, &digest, &record);
        }
    }
    if matches!(name_outcome.action, NameAction::Created | NameAction::Moved) {
        names::put(&mut batch, name, &Store::name_ref(digest))?;
    }
    batch.write()?;
    stats.name = Some(name_outcome);
    Ok(stats)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where `name` should point once `digest` (manifest `m`) is imported, by the rollback rule:
/// never to an older signed `created` than the bundle it names now, unless allowed. The bundle
/// it names now is read from its record, which must hash to its digest (a broken record is
/// not believed, and the name moves).
fn decide_name(
    db: &crate::db::Db,
    name: &str,
    digest: Sha256Digest,
    m: &Manifest,
    downgrade: Downgrade,
) -> Result<NameOutcome, ImportError> {
    let mut out = NameOutcome {
        name: name.to_string(),
        action: NameAction::Created,
        previous: None,
        previous_version: None,
        previous_created: None,
    };
    // A name whose value does not decode is replaced (fsck reports it).
    let Ok(Some(held)) = names::get(db, name) else {
        return Ok(out);
    };
    if held.digest == digest {
        out.action = NameAction::Unchanged;
        return Ok(out);
    }
    out.previous = Some(held.digest);
    out.action = NameAction::Moved;
    let held_manifest = match records::get(db, &held.digest) {
        Ok(Some(r)) if Sha256Digest::of(r.manifest.as_bytes()) == held.digest => {
            Manifest::parse(r.manifest.as_bytes()).ok()
        }
        _ => None,
    };
    let Some(hm) = held_manifest else {
        return Ok(out);
    };
    out.previous_version = Some(hm.package.version.clone());
    out.previous_created = Some(hm.package.created.clone());
    let older = match (m.created(), hm.created()) {
        (Ok(new), Ok(old)) => new < old,
        _ => false,
    };
    if older {
        match downgrade {
            Downgrade::Allow => {}
            Downgrade::KeepName => out.action = NameAction::KeptNewer,
            Downgrade::Refuse => {
                return Err(ImportError::Downgrade(Box::new(Rollback {
                    name: name.to_string(),
                    held: held.digest,
                    held_version: hm.package.version.clone(),
                    held_created: hm.package.created.clone(),
                    new: digest,
                    new_version: m.package.version.clone(),
                    new_created: m.package.created.clone(),
                })))
            }
        }
    }
    Ok(out)
}

fn layer_error(i: usize, digest: Sha256Digest, e: cerro_core::rootfs::LayerError) -> ImportError {
    use cerro_core::rootfs::LayerError;
    let what = format!("layer {} ({digest})", i + 1);
    match e {
        LayerError::Refused { entry, problem, .. } => {
            BundleError::malformed(format!("{what}, {entry}: {problem}")).into()
        }
        LayerError::Io { source, .. } | LayerError::Sink { source, .. } => {
            StoreError::io(what, source).into()
        }
    }
}

/// Whether the store needs `id` written: absent, or damaged (then it is recorded as healed).
/// Checked once per import.
fn needs(
    store: &Store,
    checked: &mut HashMap<ObjectId, bool>,
    healed: &mut Vec<String>,
    id: &ObjectId,
    size: u64,
) -> bool {
    *checked
        .entry(*id)
        .or_insert_with(|| match check_existing(store.dirs(), id, size) {
            Existing::Sound => false,
            Existing::Absent => true,
            Existing::Damaged(why) => {
                healed.push(format!("{id} ({why})"));
                true
            }
        })
}

/// Whether the store needs the small file `root` (of `size` bytes, at most
/// [`inline::INLINE_MAX`]) written into the database: its value there is missing or damaged
/// (then it is recorded as healed), and no intact object file from a format-2 store stands in
/// for a missing one. Readers look in the database first, so a damaged value is always replaced.
fn needs_inline(
    store: &Store,
    checked: &mut HashMap<ObjectId, bool>,
    healed: &mut Vec<String>,
    root: &Blake3Root,
    size: u64,
) -> bool {
    let id = ObjectId::file(root);
    *checked.entry(id).or_insert_with(|| {
        let why = match inline::get(store.db(), root) {
            Ok(Some(v)) if v.len() as u64 == size && Blake3Root::of(&v) == *root => return false,
            Ok(Some(v)) if v.len() as u64 != size => {
                format!("{} bytes in the database, not {size}", v.len())
            }
            Ok(Some(_)) => "its bytes in the database do not hash to its name".to_string(),
            Ok(None) => match check_existing(store.dirs(), &id, size) {
                Existing::Sound => return false,
                Existing::Absent => return true,
                Existing::Damaged(why) => why,
            },
            Err(e) => e.to_string(),
        };
        healed.push(format!("{id} ({why})"));
        true
    })
}

/// Small files' contents on their way into the database: held sorted in memory, and written
/// as table files into staging whenever [`INLINE_TABLE_BYTES`] have gathered.
#[derive(Default)]
struct InlineTables {
    pending: BTreeMap<[u8; 32], Vec<u8>>,
    pending_bytes: usize,
    tables: Vec<PathBuf>,
}

impl InlineTables {
    fn add(
        &mut self,
        staging: &mut Staging,
        root: Blake3Root,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.pending_bytes += data.len() + 32;
        self.pending.insert(*root.as_bytes(), data);
        if self.pending_bytes >= INLINE_TABLE_BYTES {
            self.write_pending(staging)?;
        }
        Ok(())
    }

    /// Write what is pending as one table file in staging.
    fn write_pending(&mut self, staging: &mut Staging) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = staging.table_path()?;
        inline::write_table(&path, &self.pending)?;
        self.tables.push(path);
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }
}

/// Copy a whole small blob into staging (unless the store has it intact), checking its digest.
fn copy_blob(
    store: &Store,
    staging: &mut Staging,
    checked: &mut HashMap<ObjectId, bool>,
    r: &mut dyn Read,
    digest: Sha256Digest,
    size: u64,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let mut bytes = Vec::with_capacity(size.min(16 << 20) as usize);
    r.take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(format!("reading blob {digest}"), e))?;
    if Sha256Digest::of(&bytes) != digest || bytes.len() as u64 != size {
        return Err(BundleError::Mismatch(format!(
            "blob {digest}: the bundle's bytes do not match"
        ))
        .into());
    }
    let id = ObjectId::blob(&digest);
    if staging.has_staged(&id) || !needs(store, checked, &mut stats.healed, &id, size) {
        return Ok(());
    }
    let (t, mut f) = staging.temp_file()?;
    f.write_all(&bytes)
        .map_err(|e| StoreError::io(format!("writing blob {digest} to staging"), e))?;
    stats.new_blobs += 1;
    stats.new_blob_bytes += size;
    staging.stage(t, id)?;
    Ok(())
}

/// Reads through, hashing every byte and copying it to `out` when given.
struct Tee<'a> {
    inner: Box<dyn Read + Send + 'a>,
    hasher: Sha256,
    out: Option<File>,
    len: u64,
}

impl Tee<'_> {
    fn finish(self) -> (Sha256Digest, u64, Option<File>) {
        (
            Sha256Digest::from_bytes(self.hasher.finalize().into()),
            self.len,
            self.out,
        )
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(o) = &mut self.out {
            o.write_all(&buf[..n])?;
        }
        self.len += n as u64;
        Ok(n)
    }
}

/// Receives each regular file: hashes it into its BLAKE3 root and outboard and writes it as an
/// object unless the store (or this import) already has it intact.
struct StoreSink<'a> {
    store: &'a Store,
    staging: &'a mut Staging,
    checked: &'a mut HashMap<ObjectId, bool>,
    outboards: HashMap<Blake3Root, Vec<u8>>,
    inline: InlineTables,
    stats: &'a mut ImportStats,
}

impl StoreSink<'_> {
    fn needs(&mut self, id: &ObjectId, size: u64) -> bool {
        !self.staging.has_staged(id)
            && needs(self.store, self.checked, &mut self.stats.healed, id, size)
    }

    fn keep(&mut self, t: Temp, id: ObjectId, len: u64) -> Result<(), StoreError> {
        if self.needs(&id, len) {
            self.stats.new_objects += 1;
            self.stats.new_object_bytes += len;
            self.staging.stage(t, id)
        } else {
            self.staging.discard(t)
        }
    }
}

impl ContentSink for StoreSink<'_> {
    fn file(&mut self, content: &mut dyn Read, size: u64) -> io::Result<Blake3Root> {
        let to_io = |e: StoreError| io::Error::other(e.to_string());
        let mut ob = OutboardBuilder::new();
        let (root, outboard, len) = if size <= IN_MEMORY_FILE_MAX {
            let mut data = Vec::with_capacity(size as usize);
            content.read_to_end(&mut data)?;
            ob.update(&data);
            let (root, outboard, len) = ob.finalize();
            let id = ObjectId::file(&root);
            if len == size && inline::is_inline(len) {
                if needs_inline(self.store, self.checked, &mut self.stats.healed, &root, len) {
                    self.stats.new_objects += 1;
                    self.stats.new_object_bytes += len;
                    self.inline.add(self.staging, root, data).map_err(to_io)?;
                    // Held now: a second copy in this import is not written again (and a
                    // table already written keeps it).
                    self.checked.insert(id, false);
                }
            } else if len == size && self.needs(&id, len) {
                let (t, mut f) = self.staging.temp_file().map_err(to_io)?;
                f.write_all(&data)?;
                self.stats.new_objects += 1;
                self.stats.new_object_bytes += len;
                self.staging.stage(t, id).map_err(to_io)?;
            }
            (root, outboard, len)
        } else {
            let mut buf = vec![0u8; COPY_BUF];
            let (t, f) = self.staging.temp_file().map_err(to_io)?;
            let mut w = io::BufWriter::with_capacity(COPY_BUF, f);
            loop {
                let n = match content.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                ob.update(&buf[..n]);
                w.write_all(&buf[..n])?;
            }
            w.flush()?;
            let (root, outboard, len) = ob.finalize();
            if len == size {
                self.keep(t, ObjectId::file(&root), len).map_err(to_io)?;
            } else {
                self.staging.discard(t).map_err(to_io)?;
            }
            (root, outboard, len)
        };
        if len != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file content is {len} bytes, expected {size}"),
            ));
        }
        self.stats.files += 1;
        self.stats.file_bytes += size;
        if !outboard.as_bytes().is_empty() {
            self.outboards
                .entry(root)
                .or_insert_with(|| outboard.into_bytes());
        }
        Ok(root)
    }
}
