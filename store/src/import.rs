//! Import of a verified bundle into the store, all or nothing. Each layer is read once: the
//! bytes are hashed (SHA-256, checked against the signed descriptor) and kept as the verbatim
//! blob while they are decompressed, parsed and applied (core's rootfs rules); every regular
//! file becomes a content-addressed object with its Merkle outboard. New objects wait in a
//! staging directory until the rootfs derived from the layers equals the signed one; only then
//! are they moved into place, synced, and made reachable by one database batch. A crash at any
//! point leaves either no trace (staging is removed) or unreferenced objects that `gc` removes.

use crate::db::{bundles, bundles::BundleRecord, nodes};
use crate::error::StoreError;
use crate::objects::{sync_store, ObjectId, Staging};
use crate::store::Store;
use cerro_core::bundle::{BlobSource, BundleError};
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::{
    Blake3Root, ContentSink, Limits, OutboardBuilder, RootfsBuilder, RootfsDigest,
};
use cerro_core::source::layer_compression;
use cerro_core::Sha256Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};

/// Files up to this size are hashed in memory first, so content the store already has is never
/// written at all; larger ones are streamed to a staging file while they are hashed.
const IN_MEMORY_FILE_MAX: u64 = 1 << 20;
const COPY_BUF: usize = 1 << 20;

/// What to import: the verified manifest bytes and signature files of one bundle.
pub struct ImportRequest<'a> {
    pub name: &'a str,
    pub manifest_bytes: &'a [u8],
    pub manifest: &'a Manifest,
    pub signatures: &'a BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportStats {
    /// The bundle was already in the store under this name: nothing was written.
    pub already_present: bool,
    pub files: u64,
    pub file_bytes: u64,
    pub new_objects: u64,
    pub new_object_bytes: u64,
    pub new_blobs: u64,
    pub new_blob_bytes: u64,
    pub directories: u64,
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
    #[error("the store already has a different bundle named {name:?} ({existing})")]
    NameTaken { name: String, existing: String },
}

/// Import `req` reading blobs from `src` (a bundle file). The bundle must have been verified
/// (signatures, trust, policy) by the caller; every byte is re-hashed here anyway.
pub fn import(
    store: &Store,
    src: &mut dyn BlobSource,
    req: &ImportRequest<'_>,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportStats, ImportError> {
    let m = req.manifest;
    let bundle_digest = Sha256Digest::of(req.manifest_bytes).to_string();
    if let Some(existing) = bundles::get(store.db(), req.name)? {
        if existing.bundle_digest == bundle_digest {
            return Ok(ImportStats {
                already_present: true,
                ..Default::default()
            });
        }
        return Err(ImportError::NameTaken {
            name: req.name.into(),
            existing: existing.bundle_digest,
        });
    }
    let mut staging = Staging::new(store.root())?;
    let mut stats = ImportStats::default();
    let mut done = 0u64;

    // Small blobs (image manifest, config) first, then each layer once, in order.
    for d in [&m.image, &m.config] {
        let mut r = src.open_blob(&d.digest, d.size)?;
        copy_blob(&mut staging, &mut *r, d.digest, d.size, &mut stats)?;
    }
    let mut builder = RootfsBuilder::new(*limits);
    let mut sink = StoreSink {
        staging: &mut staging,
        outboards: HashMap::new(),
        stats: &mut stats,
    };
    for (i, l) in m.layers.iter().enumerate() {
        let compression = layer_compression(&l.media_type).ok_or_else(|| {
            BundleError::malformed(format!("layer {} has media type {:?}", i + 1, l.media_type))
        })?;
        let id = ObjectId::Blob(l.digest.hex());
        let keep = !sink.staging.exists_in_store(&id);
        let (tmp_path, tmp) = if keep {
            sink.staging.temp_file().map(|(p, f)| (Some(p), Some(f)))?
        } else {
            (None, None)
        };
        let mut tee = Tee {
            inner: src.open_blob(&l.digest, l.size)?,
            hasher: Sha256::new(),
            out: tmp,
            len: 0,
        };
        builder
            .apply_layer(&mut tee, compression, &mut sink)
            .map_err(|e| layer_error(i, l.digest, e))?;
        // Whatever follows the tar's end (padding, a trailing gzip member) is part of the blob.
        io::copy(&mut tee, &mut io::sink())
            .map_err(|e| StoreError::io(format!("reading layer {}", i + 1), e))?;
        let (digest, len, out) = tee.finish();
        if digest != l.digest || len != l.size {
            return Err(BundleError::Mismatch(format!(
                "layer {} {}: the bundle's bytes ({len} bytes) hash to {digest}",
                i + 1,
                l.digest
            ))
            .into());
        }
        if let (Some(p), Some(mut f)) = (tmp_path, out) {
            f.flush()
                .map_err(|e| StoreError::io("writing a layer blob", e))?;
            sink.stats.new_blobs += 1;
            sink.stats.new_blob_bytes += len;
            sink.staging.stage(&p, id)?;
        }
        done += l.size;
        progress(done);
    }
    let outboards = std::mem::take(&mut sink.outboards);
    let rootfs = builder.finish();
    if rootfs.digest != m.rootfs.digest {
        return Err(ImportError::RootfsMismatch {
            signed: m.rootfs.digest,
            derived: rootfs.digest,
        });
    }

    // Verified: move objects into place, make them durable, then publish in one batch.
    staging.commit()?;
    sync_store(store.root())?;
    // The database is opened read-write only now, for this one batch, so that imports running
    // side by side wait for each other only here. Everything is checked again against the
    // database as it is now: another import may have published the same name meanwhile.
    let db = store.writer()?;
    if let Some(existing) = bundles::get(&db, req.name)? {
        if existing.bundle_digest != bundle_digest {
            return Err(ImportError::NameTaken {
                name: req.name.into(),
                existing: existing.bundle_digest,
            });
        }
    }
    let db = &db;
    let mut batch = db.batch();
    for (digest, node) in &rootfs.dirs {
        if !nodes::has_dir(db, digest.as_bytes())? {
            nodes::put_dir(&mut batch, digest.as_bytes(), node);
        }
    }
    stats.directories = rootfs.dirs.len() as u64;
    for (root, ob) in &outboards {
        if nodes::get_outboard(db, root.as_bytes())?.is_none() {
            nodes::put_outboard(&mut batch, root.as_bytes(), ob);
        }
    }
    let record = BundleRecord {
        format: bundles::BUNDLE_RECORD_FORMAT_V1.into(),
        name: req.name.into(),
        bundle_digest,
        manifest: String::from_utf8(req.manifest_bytes.to_vec())
            .map_err(|_| BundleError::malformed("the manifest is not UTF-8"))?,
        signatures: req
            .signatures
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    String::from_utf8(v.clone()).map_err(|_| {
                        BundleError::malformed(format!("signature {k} is not UTF-8"))
                    })?,
                ))
            })
            .collect::<Result<_, BundleError>>()?,
        rootfs: rootfs.digest.to_string(),
        root_record: hex::encode(rootfs.root.encode()),
        imported_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    bundles::put(&mut batch, &record);
    batch.write()?;
    Ok(stats)
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

/// Copy a whole small blob into staging (unless the store has it), checking its digest.
fn copy_blob(
    staging: &mut Staging,
    r: &mut dyn Read,
    digest: Sha256Digest,
    size: u64,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let mut bytes = Vec::with_capacity(size.min(16 << 20) as usize);
    r.take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(format!("reading blob {digest}"), e))?;
    if Sha256Digest::of(&bytes) != digest || bytes.len() as u64 != size {
        return Err(BundleError::Mismatch(format!(
            "blob {digest}: the bundle's bytes do not match"
        ))
        .into());
    }
    let id = ObjectId::Blob(digest.hex());
    if staging.exists_in_store(&id) {
        return Ok(());
    }
    let (p, mut f) = staging.temp_file()?;
    f.write_all(&bytes)
        .map_err(|e| StoreError::io(format!("writing {}", p.display()), e))?;
    stats.new_blobs += 1;
    stats.new_blob_bytes += size;
    staging.stage(&p, id)?;
    Ok(())
}

/// Reads through, hashing every byte and copying it to `out` when given.
struct Tee<'a> {
    inner: Box<dyn Read + 'a>,
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
/// object unless the store (or this import) already has it.
struct StoreSink<'a> {
    staging: &'a mut Staging,
    outboards: HashMap<Blake3Root, Vec<u8>>,
    stats: &'a mut ImportStats,
}

impl ContentSink for StoreSink<'_> {
    fn file(&mut self, content: &mut dyn Read, size: u64) -> io::Result<Blake3Root> {
        let to_io = |e: StoreError| io::Error::other(e.to_string());
        let mut ob = OutboardBuilder::new();
        let mut buf = vec![0u8; COPY_BUF.min(size.max(1) as usize)];
        let (root, outboard, len) = if size <= IN_MEMORY_FILE_MAX {
            let mut data = Vec::with_capacity(size as usize);
            content.read_to_end(&mut data)?;
            ob.update(&data);
            let (root, outboard, len) = ob.finalize();
            let id = ObjectId::File(root.hex());
            if len == size && !self.staging.exists_in_store(&id) {
                let (p, mut f) = self.staging.temp_file().map_err(to_io)?;
                f.write_all(&data)?;
                self.stats.new_objects += 1;
                self.stats.new_object_bytes += len;
                self.staging.stage(&p, id).map_err(to_io)?;
            }
            (root, outboard, len)
        } else {
            let (p, f) = self.staging.temp_file().map_err(to_io)?;
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
            let id = ObjectId::File(root.hex());
            if len == size {
                if !self.staging.exists_in_store(&id) {
                    self.stats.new_objects += 1;
                    self.stats.new_object_bytes += len;
                }
                self.staging.stage(&p, id).map_err(to_io)?;
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
