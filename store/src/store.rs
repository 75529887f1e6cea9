//! `Store`: an opened store — its directories (reached through descriptors), lock, database and
//! format — and the operations that need no tree walking: names, records, removal, and the one
//! way serving code obtains a record, [`Store::verified`], which re-verifies it at that moment
//! under a [`Lease`] taken before the record was resolved.

use crate::db::{self, names, records, Db};
use crate::dirs::StoreDirs;
use crate::error::{Result, StoreError};
use crate::lease::Lease;
use crate::lock::{LockMode, StoreLock};
use crate::objects::{self, ObjectId};
use cerro_core::manifest::is_valid_name;
use cerro_core::rootfs::Blake3Root;
use cerro_core::verified::{verify_stored, StoredBundle, Verified};
use cerro_core::verify::{VerifyContext, VerifyReport};
use cerro_core::Sha256Digest;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where a file's content came from ([`Store::open_file_content`]); unverified bytes either way.
pub enum FileContent {
    /// Its object file under `objects/`.
    File(File),
    /// Its bytes from the database's `inline` family.
    Inline(Vec<u8>),
}

impl FileContent {
    /// Whether the bytes came from the database.
    pub fn is_inline(&self) -> bool {
        matches!(self, FileContent::Inline(_))
    }
    /// The content as a stream from its start.
    pub fn into_reader(self) -> Box<dyn std::io::Read + Send> {
        match self {
            FileContent::File(f) => Box::new(f),
            FileContent::Inline(v) => Box::new(std::io::Cursor::new(v)),
        }
    }
}

impl cerro_core::rootfs::ContentReader for FileContent {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        match self {
            FileContent::File(f) => cerro_core::rootfs::ContentReader::read_at(f, buf, offset),
            FileContent::Inline(v) => cerro_core::rootfs::ContentReader::read_at(v, buf, offset),
        }
    }
}

pub struct Store {
    root: PathBuf,
    dirs: StoreDirs,
    /// A read-only view of the database as of `open`; writes go through [`Store::writer`].
    db: Db,
    lock: StoreLock,
}

/// What a reader is about to read: one name (resolved under the store lock), one bundle digest,
/// or every named bundle (`ct store mount`).
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Name(&'a str),
    Digest(Sha256Digest),
    AllNames,
}

/// Why a record cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No record under that digest (a name pointing at nothing, or one `gc` removed).
    #[error("the store has no record of bundle {0}")]
    Missing(Sha256Digest),
    /// The record failed verification; the report says how (its exit code included).
    #[error("{}", .0.failure.as_ref().map_or("verification failed", |f| f.message.as_str()))]
    Refused(Box<VerifyReport>),
    /// A programming error: the digest was resolved without a lease covering it.
    #[error("bundle {0} is not covered by this reader's lease")]
    NotLeased(Sha256Digest),
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Open (creating if needed) the store at `root`, holding its lock in `mode`. Staging left
    /// by dead imports is removed; a format-1 store is migrated.
    pub fn open(root: &Path, mode: LockMode) -> Result<Self> {
        let dirs = StoreDirs::create(root)?;
        let lock = StoreLock::acquire(&dirs, mode, true)?;
        objects::clean_abandoned_staging(&dirs)?;
        let path = root.join("db");
        // A new store, one whose creation was cut short (a first import killed before every
        // column family or the format was recorded), or a format-1 store: complete or migrate
        // it with a writer, then let go.
        if !Db::is_complete(&path) {
            db::meta::check_or_init(&Db::open(&path)?)?;
        }
        let mut db = Db::open_read_only(&path)?;
        if !db::meta::current(&db)? {
            db::meta::check_or_init(&Db::open(&path)?)?;
            db = Db::open_read_only(&path)?;
        }
        db::meta::check(&db)?;
        Ok(Self {
            root: root.to_path_buf(),
            dirs,
            db,
            lock,
        })
    }

    /// Open a store for reading only, without taking the store lock and without creating
    /// anything (`ct doctor`). Whatever is read is verified before use as always.
    pub fn open_reader(root: &Path) -> Result<Self> {
        let dirs = StoreDirs::open(root)?;
        let db = Db::open_read_only(&root.join("db"))?;
        db::meta::check(&db)?;
        Ok(Self {
            root: root.to_path_buf(),
            dirs,
            db,
            lock: StoreLock::none(),
        })
    }

    /// Open the store to read `target` from it, for as long as the returned [`Lease`] lives:
    /// the name is resolved and the lease written while the store lock keeps `gc` out, and the
    /// lock is then let go (long-lived readers must not keep `gc` waiting). `gc` never removes
    /// what a live lease covers.
    pub fn open_leased(root: &Path, purpose: &str, target: Target<'_>) -> Result<(Self, Lease)> {
        let mut store = Self::open(root, LockMode::Shared)?;
        let mut resolved = Vec::new();
        let mut skipped = Vec::new();
        match target {
            Target::Name(n) => resolved.push((n.to_string(), store.resolve(n)?)),
            Target::Digest(_) => {}
            Target::AllNames => {
                for (key, r) in names::all(&store.db)? {
                    match (names::valid_name(&key), r) {
                        (Ok(n), Ok(r)) => resolved.push((n.to_string(), r.digest)),
                        (_, Err(e)) => skipped.push(e.to_string()),
                        (Err(e), _) => skipped.push(e.to_string()),
                    }
                }
            }
        }
        let mut digests: Vec<Sha256Digest> = resolved.iter().map(|(_, d)| *d).collect();
        if let Target::Digest(d) = target {
            digests.push(d);
        }
        digests.sort();
        digests.dedup();
        let lease = Lease::create(&store.dirs, purpose, digests, resolved, skipped)?;
        store.lock = StoreLock::none();
        Ok((store, lease))
    }

    /// [`Store::open`] with a shared lock that is let go before returning: for readers that hold
    /// a [`Lease`] already (taken before they resolved what they read).
    pub fn open_unlocked(root: &Path) -> Result<Self> {
        let mut s = Self::open(root, LockMode::Shared)?;
        s.lock = StoreLock::none();
        Ok(s)
    }

    /// The database opened read-write, for one batch. Waits while another process writes; drop
    /// it as soon as the batch is written.
    pub fn writer(&self) -> Result<Db> {
        Db::open(&self.root.join("db"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn dirs(&self) -> &StoreDirs {
        &self.dirs
    }
    pub fn db(&self) -> &Db {
        &self.db
    }
    /// Where an object lives (for messages; open objects with [`Store::open_object`]).
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.root.join(id.relative_path())
    }

    /// Open an object for reading: a regular file of exactly `size` bytes, reached without
    /// following any link (anything else is an error of kind `InvalidData`).
    pub fn open_object(&self, id: &ObjectId, size: u64) -> std::io::Result<File> {
        self.dirs.open_sized(&id.relative_path_str(), size)
    }

    /// Open a stored OCI blob of the signed `size` (its bytes are re-hashed by the reader).
    pub fn open_blob(&self, d: &Sha256Digest, size: u64) -> std::io::Result<File> {
        self.open_object(&ObjectId::blob(d), size)
    }

    /// Open a stored file object of the signed `size`.
    pub fn open_file_object(&self, root: &Blake3Root, size: u64) -> std::io::Result<File> {
        self.open_object(&ObjectId::file(root), size)
    }

    /// A file's stored content, wherever the store keeps it: a file of at most one verification
    /// block in the database (format 3), else (and for small files a format-2 store wrote) its
    /// object file. Unverified, like every stored byte: read it through
    /// `cerro_core::rootfs::VerifiedTree`, or hash it. A database value that is not `size` bytes
    /// is an error of kind `InvalidData`, as an object file of the wrong size is.
    pub fn open_file_content(&self, root: &Blake3Root, size: u64) -> std::io::Result<FileContent> {
        if db::inline::is_inline(size) {
            match db::inline::get(&self.db, root) {
                Ok(Some(v)) if v.len() as u64 == size => return Ok(FileContent::Inline(v)),
                Ok(Some(v)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the database holds {} bytes for it, not {size}", v.len()),
                    ))
                }
                Ok(None) => {}
                Err(e @ StoreError::Corrupt(_)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    ))
                }
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        self.open_file_object(root, size).map(FileContent::File)
    }

    /// The bundle digest `name` refers to. `NotFound` for a name the store lacks or that is not
    /// a valid name at all.
    pub fn resolve(&self, name: &str) -> Result<Sha256Digest> {
        if !is_valid_name(name) {
            return Err(StoreError::NotFound(name.chars().take(200).collect()));
        }
        names::get(&self.db, name)?
            .map(|r| r.digest)
            .ok_or_else(|| StoreError::NotFound(name.to_string()))
    }

    /// Every name: raw key and its reference (an invalid key or value is an error item).
    pub fn names(&self) -> Result<Vec<(Vec<u8>, Result<names::NameRef>)>> {
        names::all(&self.db)
    }

    /// The valid names that refer to `digest`, sorted.
    pub fn names_of(&self, digest: &Sha256Digest) -> Result<Vec<String>> {
        let mut out: Vec<String> = names::all(&self.db)?
            .into_iter()
            .filter_map(|(k, r)| match (names::valid_name(&k), r) {
                (Ok(n), Ok(r)) if r.digest == *digest => Some(n.to_string()),
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every record, each with its decode result. Nothing here is verified.
    pub fn records(&self) -> Result<Vec<records::Entry>> {
        records::all(&self.db)
    }

    /// The record under `digest`, decoded but not verified: for listings, `gc` and `fsck`,
    /// which never serve content. Serving code uses [`Store::verified`].
    pub fn record_unverified(&self, digest: &Sha256Digest) -> Result<Option<records::Record>> {
        records::get(&self.db, digest)
    }

    /// The record of bundle `digest`, verified now: bound to its digest, signatures, trust and
    /// policy (`ctx`), root record against the signed rootfs. `lease` must cover `digest`
    /// (taken before the digest was resolved), so `gc` keeps everything it references.
    pub fn verified(
        &self,
        lease: &Lease,
        digest: &Sha256Digest,
        ctx: &VerifyContext<'_>,
    ) -> std::result::Result<Verified<StoredBundle>, RecordError> {
        if !lease.covers(digest) {
            return Err(RecordError::NotLeased(*digest));
        }
        let rec = records::get(&self.db, digest)?.ok_or(RecordError::Missing(*digest))?;
        let bytes = rec.bytes(digest)?;
        verify_stored(bytes.stored(*digest), ctx).map_err(RecordError::Refused)
    }

    /// Remove a name. The bundle it named stays (by digest) until `gc` finds it unreferenced.
    pub fn remove_name(&self, name: &str) -> Result<Sha256Digest> {
        if !is_valid_name(name) {
            return Err(StoreError::NotFound(name.chars().take(200).collect()));
        }
        let w = self.writer()?;
        let r = names::get(&w, name)?.ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        let mut b = w.batch();
        names::delete(&mut b, name.as_bytes());
        b.write()?;
        Ok(r.digest)
    }

    /// Point `name` at `digest` unconditionally (the import decides whether it may).
    pub(crate) fn name_ref(digest: Sha256Digest) -> names::NameRef {
        names::NameRef::new(digest, now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a first import leaves it when killed while RocksDB creates the column
    /// families: only some of them exist, and no format is recorded.
    fn half_created(root: &Path, cfs: &[&str]) {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        drop(rocksdb::DB::open_cf(&o, root.join("db"), cfs).unwrap());
    }

    #[test]
    fn a_store_whose_creation_was_cut_short_opens_and_is_completed() {
        for cfs in [
            &[][..],
            &["meta"][..],
            &["bundles", "dirs", "outboards", "meta"][..],
        ] {
            let dir = tempfile::tempdir().unwrap();
            half_created(dir.path(), cfs);
            assert!(!Db::is_complete(&dir.path().join("db")), "{cfs:?}");
            let s = Store::open(dir.path(), LockMode::Shared)
                .unwrap_or_else(|e| panic!("{cfs:?}: {e}"));
            assert!(s.records().unwrap().is_empty());
            drop(s);
            assert!(Db::is_complete(&dir.path().join("db")));
            // Readers that create nothing open it now too.
            Store::open_reader(dir.path()).unwrap();
        }
    }

    #[test]
    fn a_lease_resolves_names_and_lets_the_lock_go() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), LockMode::Shared).unwrap();
        let d = Sha256Digest::of(b"m");
        {
            let w = s.writer().unwrap();
            let mut b = w.batch();
            names::put(&mut b, "app", &Store::name_ref(d)).unwrap();
            b.write().unwrap();
        }
        drop(s);
        let (s, lease) = Store::open_leased(dir.path(), "test", Target::Name("app")).unwrap();
        assert!(lease.covers(&d));
        assert_eq!(lease.names(), &[("app".to_string(), d)]);
        // The lock is free again: gc (exclusive) could run beside this reader.
        let _gc = StoreLock::acquire(s.dirs(), LockMode::Exclusive, false).unwrap();
        assert!(matches!(
            s.verified(
                &lease,
                &Sha256Digest::of(b"other"),
                &VerifyContext {
                    trust: &|_| None,
                    policy: None,
                    now: chrono::Utc::now(),
                }
            ),
            Err(RecordError::NotLeased(_))
        ));
        assert!(matches!(
            s.verified(
                &lease,
                &d,
                &VerifyContext {
                    trust: &|_| None,
                    policy: None,
                    now: chrono::Utc::now(),
                }
            ),
            Err(RecordError::Missing(_))
        ));
    }
}
