//! The store's RocksDB database: one column family per record type, each with its own typed
//! module (key and value codecs). Every multi-record change goes through one `WriteBatch`
//! written with `sync`, so an import becomes visible all at once or not at all.
//!
//! ```text
//! column family   key                         value
//! records         bundle digest (32 bytes)     Record: signed manifest, signatures,
//!                                              root record (versioned JSON)      records.rs
//! names           bundle name (UTF-8)          NameRef: the bundle digest it names  names.rs
//! dirs            directory digest (32 bytes)  canonical directory node          nodes.rs
//! outboards       BLAKE3 file root (32 bytes)  Merkle outboard                   nodes.rs
//! inline          BLAKE3 file root (32 bytes)  content of a file of at most one
//!                                              verification block (64 KiB)       inline.rs
//! meta            ASCII key                    store format version, …           meta.rs
//! bundles         (format 1 only: name → record; emptied by the migration)  legacy.rs
//! ```
//! A record is addressed by what it must hash to: `sha256(record.manifest) == key` is checked
//! on every read that matters (spec/store.md). A name is only a reference to a digest.
//! Every read, write, delete and scan goes through a [`schema::Schema`]: the column family,
//! its value bound, and typed key and value codecs (`records::Records`, `names::Names`,
//! `nodes::Dirs`, `nodes::Outboards`, `inline::Inline`, `meta::Meta`, `legacy::LegacyBundles`).
//! Inline file contents arrive by table-file ingestion, not batches ([`Db::ingest`]): an
//! import writes them once, sorted, into a table file in its staging directory.
//! Readers open a read-only view ([`Db::open_read_only`]: no lock, any number at once, beside a
//! writer); writers open read-write only for their batch ([`Db::open`] waits for another
//! process's batch), so long-running readers such as mount daemons never block imports.
//! Values are untrusted at rest: decoders are bounded and never panic, and whatever is read
//! is verified against a digest from a signed manifest before use.

pub mod inline;
pub mod legacy;
pub mod meta;
pub mod names;
pub mod nodes;
pub mod records;
pub mod schema;

use crate::error::{Result, StoreError};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, IngestExternalFileOptions, Options, WriteBatch,
    WriteOptions, DB,
};
use schema::{KeyCodec, Row, Schema, ValueCodec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One item of [`Db::keys`]: a raw key and its decode result.
pub(crate) type KeyItem<S> = (Vec<u8>, Result<<S as Schema>::Key>);

pub const CF_RECORDS: &str = "records";
pub const CF_NAMES: &str = "names";
pub const CF_DIRS: &str = "dirs";
pub const CF_OUTBOARDS: &str = "outboards";
pub const CF_META: &str = "meta";
/// Store format 1's records by name; kept (empty) so databases of either format open.
pub const CF_LEGACY_BUNDLES: &str = "bundles";
/// Contents of small files (store format 3; a format-2 database has no such family until a
/// writer opens it, and a reader then finds every file in `objects/`).
pub const CF_INLINE: &str = "inline";
const ALL_CFS: [&str; 7] = [
    CF_RECORDS,
    CF_NAMES,
    CF_DIRS,
    CF_OUTBOARDS,
    CF_META,
    CF_LEGACY_BUNDLES,
    CF_INLINE,
];

pub struct Db {
    db: DB,
    path: PathBuf,
}

/// How long a writer waits for another process's write to finish. Writers hold the database
/// only for one batch (milliseconds), so waiting this long means something is wrong.
const WRITER_WAIT: Duration = Duration::from_secs(120);

/// Attempts of a read-only open that races a writer's file switch (about 2 s in all).
const READER_RETRIES: u32 = 20;

/// Table block size of the `inline` family. A cold pass over a tree (`tar`, a container's
/// start) reads most of its small files in an order that has nothing to do with their keys
/// (content hashes), so each block read should bring many of them: with 64 KiB blocks a pass
/// over Debian reads each block once, where 4 KiB blocks (RocksDB's default) cost one random
/// read per file (measured, README Performance).
const INLINE_BLOCK_SIZE: usize = 64 << 10;
/// Decompressed `inline` blocks a process keeps (see `cf_options`).
const INLINE_CACHE_BYTES: usize = 8 << 20;

/// The options of column family `name`; also those an import writes `inline` table files with
/// (`inline::write_table`), so that ingested tables match their family.
pub(crate) fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    if name == CF_INLINE {
        let mut t = BlockBasedOptions::default();
        t.set_block_size(INLINE_BLOCK_SIZE);
        // Every import adds a table file, and a lookup must not read a data block of each one:
        // the bloom filter answers "not here" from memory.
        t.set_bloom_filter(10.0, false);
        // RocksDB's default is a 32 MiB cache per family, which a mount daemon filled after one
        // cold pass over Debian. The kernel caches what the mount serves, and the table file's
        // pages stay in the page cache: a block read again costs a decompression, not a disk read.
        t.set_block_cache(&rocksdb::Cache::new_lru_cache(INLINE_CACHE_BYTES));
        o.set_block_based_table_factory(&t);
    }
    o
}

fn cf_descriptors() -> impl Iterator<Item = ColumnFamilyDescriptor> {
    ALL_CFS
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n)))
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
        // See `open_read_only`: no thread pool just to open a few table files.
        opts.set_max_file_opening_threads(1);
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
        // Table files are opened on this thread: RocksDB's default starts 16 threads per
        // column family for it (over a hundred per open, most with nothing to do), which was
        // most of the time `ct mount` took to open the store. The store's tables are few.
        opts.set_max_file_opening_threads(1);
        // A writer in another process may be switching its MANIFEST or deleting a file just
        // as we read the list of them: that race is transient, so try again a few times.
        let mut attempt = 0;
        loop {
            // A format-2 database has no `inline` family yet (the first writer adds it): open
            // the families it has; reads of a missing one find nothing.
            // If the list cannot be read now, ask for every family: the open fails and is retried.
            let have = DB::list_cf(&Options::default(), path)
                .unwrap_or_else(|_| ALL_CFS.iter().map(|n| n.to_string()).collect());
            let cfs = ALL_CFS
                .iter()
                .filter(|n| **n != CF_INLINE || have.iter().any(|h| h == *n))
                .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n)));
            match DB::open_cf_descriptors_read_only(&opts, path, cfs, false) {
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

    /// A column family a writer has (every one: `open` creates what is missing).
    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    /// A column family a reader may lack (`inline` in a format-2 database opened read-only).
    fn cf_read(&self, name: &str) -> Option<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name)
    }

    /// Add the sorted table files `paths` (written with [`cf_options`] of `S`) to family `S`,
    /// atomically and durably; the files are moved into the database, not copied.
    pub(crate) fn ingest<S: Schema>(&self, paths: &[std::path::PathBuf]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut o = IngestExternalFileOptions::default();
        o.set_move_files(true);
        self.db
            .ingest_external_file_cf_opts(self.cf(S::CF), &o, paths.to_vec())
            .map_err(|e| self.err(e))
    }

    /// The value of schema `S` under `key`, refused (never copied) when it is larger than any
    /// value of that family can be: values are untrusted at rest.
    pub(crate) fn get<S: Schema>(&self, key: &S::Key) -> Result<Option<S::Value>> {
        let k = key.encode_key();
        let Some(cf) = self.cf_read(S::CF) else {
            return Ok(None);
        };
        let Some(v) = self.db.get_pinned_cf(cf, &k).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        check_len::<S>(v.len())?;
        S::Value::decode_value(&k, &v).map(Some)
    }

    /// Every item of schema `S`, in key order, each key and value decoded on its own (a value
    /// larger than the family's limit is not copied: its item is an error).
    pub(crate) fn scan<S: Schema>(&self) -> Result<Vec<Row<S>>> {
        let mut out = Vec::new();
        let Some(cf) = self.cf_read(S::CF) else {
            return Ok(out);
        };
        let mut it = self.db.raw_iterator_cf(cf);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            out.push(Row {
                key: S::Key::decode_key(k),
                value: check_len::<S>(v.len()).and_then(|()| S::Value::decode_value(k, v)),
                raw_key: k.to_vec(),
            });
            it.next();
        }
        it.status().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// The keys of schema `S` only, in order (no values read into memory): each raw, with its
    /// decode result.
    pub(crate) fn keys<S: Schema>(&self) -> Result<Vec<KeyItem<S>>> {
        let mut out = Vec::new();
        let Some(cf) = self.cf_read(S::CF) else {
            return Ok(out);
        };
        let mut it = self.db.raw_iterator_cf(cf);
        it.seek_to_first();
        while let Some(k) = it.key() {
            out.push((k.to_vec(), S::Key::decode_key(k)));
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

    /// Raw reads and writes, for tests that play an attacker who can write the store
    /// (`testing` feature, or this crate's own tests): `ct` never writes a value except through
    /// the typed modules.
    #[cfg(any(test, feature = "testing"))]
    pub fn scan_raw(&self, cf: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.db
            .iterator_cf(self.cf(cf), rocksdb::IteratorMode::Start)
            .map(|i| {
                let (k, v) = i.expect("readable");
                (k.into_vec(), v.into_vec())
            })
            .collect()
    }

    /// Raw delete (see `scan_raw`).
    #[cfg(any(test, feature = "testing"))]
    pub fn delete_raw(&self, cf: &str, key: &[u8]) -> Result<()> {
        self.db.delete_cf(self.cf(cf), key).map_err(|e| self.err(e))
    }

    /// Raw put (see `scan_raw`).
    #[cfg(any(test, feature = "testing"))]
    pub fn put_raw(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_cf(self.cf(cf), key, value)
            .map_err(|e| self.err(e))
    }
}

/// Refuse a value of schema `S` larger than any it can hold (bounds reads of untrusted values).
fn check_len<S: Schema>(len: usize) -> Result<()> {
    if len > S::VALUE_MAX {
        return Err(StoreError::Corrupt(format!(
            "a {} value in the store database is {len} bytes, over the limit of {}",
            S::CF,
            S::VALUE_MAX
        )));
    }
    Ok(())
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
    pub(crate) fn put<S: Schema>(&mut self, key: &S::Key, value: &S::Value) {
        self.wb
            .put_cf(self.db.cf(S::CF), key.encode_key(), value.encode_value());
    }
    pub(crate) fn delete<S: Schema>(&mut self, key: &S::Key) {
        self.wb.delete_cf(self.db.cf(S::CF), key.encode_key());
    }
    /// Delete whatever is stored under the raw key `key` of schema `S`, also a key that does not
    /// decode (what `fsck` and `gc` remove).
    pub(crate) fn delete_stored<S: Schema>(&mut self, key: &[u8]) {
        self.wb.delete_cf(self.db.cf(S::CF), key);
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
