//! The store's RocksDB database: one column family per record type, each with its own typed
//! module (key and value codecs). Every multi-record change goes through one `WriteBatch`
//! written with `sync`, so an import becomes visible all at once or not at all.
//!
//! ```text
//! column family   key                         value
//! bundles         bundle name (UTF-8)          BundleRecord (versioned JSON)     bundles.rs
//! dirs            directory digest (32 bytes)  canonical directory node          nodes.rs
//! outboards       BLAKE3 file root (32 bytes)  Merkle outboard                   nodes.rs
//! meta            ASCII key                    store format version, …           meta.rs
//! ```
//! Readers open a read-only view ([`Db::open_read_only`]: no lock, any number at once, beside a
//! writer); writers open read-write only for their batch ([`Db::open`] waits for another
//! process's batch), so long-running readers such as mount daemons never block imports.
//! Values are untrusted at rest: decoders are bounded and never panic, and whatever is read
//! is verified against a digest from a signed manifest before use.

pub mod bundles;
pub mod meta;
pub mod nodes;

use crate::error::{Result, StoreError};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const CF_BUNDLES: &str = "bundles";
pub const CF_DIRS: &str = "dirs";
pub const CF_OUTBOARDS: &str = "outboards";
pub const CF_META: &str = "meta";
const ALL_CFS: [&str; 4] = [CF_BUNDLES, CF_DIRS, CF_OUTBOARDS, CF_META];

pub struct Db {
    db: DB,
    path: PathBuf,
}

/// How long a writer waits for another process's write to finish. Writers hold the database
/// only for one batch (milliseconds), so waiting this long means something is wrong.
const WRITER_WAIT: Duration = Duration::from_secs(120);

/// Attempts of a read-only open that races a writer's file switch (about 2 s in all).
const READER_RETRIES: u32 = 20;

fn cf_descriptors() -> impl Iterator<Item = ColumnFamilyDescriptor> {
    ALL_CFS.iter().map(|n| {
        let mut o = Options::default();
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
        ColumnFamilyDescriptor::new(*n, o)
    })
}

impl Db {
    /// Whether the database at `path` has every column family: false for one whose creation
    /// was cut short (a process killed while RocksDB created them), or that does not exist.
    pub fn is_complete(path: &Path) -> bool {
        DB::list_cf(&Options::default(), path)
            .is_ok_and(|have| ALL_CFS.iter().all(|cf| have.iter().any(|h| h == cf)))
    }

    /// Open read-write (creating the database if needed). RocksDB admits one read-write opener
    /// per database, across processes: callers hold it only for one batch, and a second writer
    /// waits here (up to [`WRITER_WAIT`]) instead of failing.
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Bounded memory: the store is read by short-lived commands and long-lived mounts alike.
        opts.set_max_open_files(256);
        opts.set_keep_log_file_num(4);
        let deadline = Instant::now() + WRITER_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            match DB::open_cf_descriptors(&opts, path, cf_descriptors()) {
                Ok(db) => {
                    return Ok(Self {
                        db,
                        path: path.to_path_buf(),
                    })
                }
                Err(e) if is_lock_contention(&e) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(StoreError::Db {
                        path: path.to_path_buf(),
                        message: if is_lock_contention(&e) {
                            format!(
                                "another process has held the database for over {}s: {e}",
                                WRITER_WAIT.as_secs()
                            )
                        } else {
                            e.to_string()
                        },
                    })
                }
            }
        }
    }

    /// Open a read-only view of the database as it is now: takes no lock, so any number of
    /// readers (listings, fsck, mount daemons) run beside a writer. Every table file is opened
    /// up front and kept open, so a later compaction by a writer cannot pull a file away from
    /// under a long-lived reader.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.set_max_open_files(-1);
        // A writer in another process may be switching its MANIFEST or deleting a file just
        // as we read the list of them: that race is transient, so try again a few times.
        let mut attempt = 0;
        loop {
            match DB::open_cf_descriptors_read_only(&opts, path, cf_descriptors(), false) {
                Ok(db) => {
                    return Ok(Self {
                        db,
                        path: path.to_path_buf(),
                    })
                }
                Err(_) if attempt < READER_RETRIES && path.join("CURRENT").exists() => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 * attempt as u64));
                }
                Err(e) => {
                    return Err(StoreError::Db {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    fn err(&self, e: rocksdb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    pub(crate) fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf), key).map_err(|e| self.err(e))
    }

    /// Every (key, value) of a column family, in key order.
    pub(crate) fn scan(&self, cf: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(cf), rocksdb::IteratorMode::Start)
        {
            let (k, v) = item.map_err(|e| self.err(e))?;
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    /// Keys only, in order (no values read into memory).
    pub(crate) fn keys(&self, cf: &str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(cf));
        it.seek_to_first();
        while let Some(k) = it.key() {
            out.push(k.to_vec());
            it.next();
        }
        it.status().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Start a batch; add records with the typed modules, then `write`.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            db: self,
            wb: WriteBatch::default(),
        }
    }

    /// Raw put, for tests that corrupt values on purpose.
    pub fn put_raw(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_cf(self.cf(cf), key, value)
            .map_err(|e| self.err(e))
    }
}

/// True for RocksDB's "another process has the database open read-write" error.
fn is_lock_contention(e: &rocksdb::Error) -> bool {
    let m = e.to_string();
    m.contains("LOCK") && m.contains("unavailable")
}

/// A set of changes applied atomically and durably (`sync`) by `write`.
pub struct Batch<'a> {
    db: &'a Db,
    wb: WriteBatch,
}

impl Batch<'_> {
    pub(crate) fn put(&mut self, cf: &str, key: &[u8], value: &[u8]) {
        self.wb.put_cf(self.db.cf(cf), key, value);
    }
    pub(crate) fn delete(&mut self, cf: &str, key: &[u8]) {
        self.wb.delete_cf(self.db.cf(cf), key);
    }
    pub fn len(&self) -> usize {
        self.wb.len()
    }
    pub fn is_empty(&self) -> bool {
        self.wb.is_empty()
    }
    pub fn write(self) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .db
            .write_opt(self.wb, &wo)
            .map_err(|e| self.db.err(e))
    }
}
