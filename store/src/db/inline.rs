//! `inline` column family (store format 3): the contents of small files, so that a cold pass
//! over a tree reads a few large table blocks instead of opening thousands of object files.
//!
//! ```text
//! inline   key: BLAKE3 file root, 32 bytes   value: the file's bytes (at most INLINE_MAX)
//! ```
//! A file of at most one verification block (spec/rootfs.md §4.2) has no outboard: its bytes
//! hash to its key, and whoever reads a value checks exactly that before releasing a byte
//! (`cerro_core::rootfs::VerifiedTree`), as for an object file. Values arrive by ingesting table
//! files that an import wrote in its staging directory (`write_table`), never through a batch:
//! each byte is written once, memory stays bounded by one table's worth, and an import's
//! contents become visible all at once, before the record that refers to them.

use super::schema::Schema;
use super::{cf_options, Batch, Db, CF_INLINE};
use crate::error::{Result, StoreError};
use cerro_core::rootfs::{Blake3Root, VERIFY_BLOCK_SIZE_V1};
use std::collections::BTreeMap;
use std::path::Path;

/// Files of at most this many bytes are kept in the database: exactly the files of one
/// verification block, which have no outboard.
pub const INLINE_MAX: u64 = VERIFY_BLOCK_SIZE_V1;

/// The `inline` family: a file's BLAKE3 root → its bytes (opaque here, checked by the reader).
pub struct Inline;

impl Schema for Inline {
    const CF: &'static str = CF_INLINE;
    const VALUE_MAX: usize = INLINE_MAX as usize;
    type Key = Blake3Root;
    type Value = Vec<u8>;
}

/// Whether a file of `size` bytes belongs in the database rather than in `objects/`.
pub fn is_inline(size: u64) -> bool {
    size <= INLINE_MAX
}

pub fn get(db: &Db, root: &Blake3Root) -> Result<Option<Vec<u8>>> {
    db.get::<Inline>(root)
}

/// Keys of the family (raw; one that is not 32 bytes is reached by no file, so gc removes it).
pub fn keys(db: &Db) -> Result<Vec<Vec<u8>>> {
    Ok(db.keys::<Inline>()?.into_iter().map(|(k, _)| k).collect())
}

/// Delete whatever is stored under the raw key `key`.
pub fn delete_key(b: &mut Batch<'_>, key: &[u8]) {
    b.delete_stored::<Inline>(key);
}

/// Write `contents` (root → bytes, each at most [`INLINE_MAX`]) as one sorted table file at
/// `path`, for [`ingest`]. The path is in the import's own staging directory.
pub fn write_table(path: &Path, contents: &BTreeMap<[u8; 32], Vec<u8>>) -> Result<()> {
    let opts = cf_options(CF_INLINE);
    let mut w = rocksdb::SstFileWriter::create(&opts);
    let fail = |e: rocksdb::Error| StoreError::Db {
        path: path.to_path_buf(),
        message: format!("writing a table of small files: {e}"),
    };
    w.open(path).map_err(fail)?;
    for (k, v) in contents {
        debug_assert!(v.len() as u64 <= INLINE_MAX);
        w.put(k, v).map_err(fail)?;
    }
    w.finish().map_err(fail)
}

/// Add table files written by [`write_table`] to the family, atomically and durably.
pub fn ingest(db: &Db, paths: &[std::path::PathBuf]) -> Result<()> {
    db.ingest::<Inline>(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_ingested_read_back_and_deleted() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        let (a, b) = (b"small".to_vec(), vec![7u8; INLINE_MAX as usize]);
        let (ra, rb) = (Blake3Root::of(&a), Blake3Root::of(&b));
        let t1 = d.path().join("t1.sst");
        let t2 = d.path().join("t2.sst");
        write_table(&t1, &BTreeMap::from([(*ra.as_bytes(), a.clone())])).unwrap();
        // A second table overlapping the first (same key again, and another).
        write_table(
            &t2,
            &BTreeMap::from([(*ra.as_bytes(), a.clone()), (*rb.as_bytes(), b.clone())]),
        )
        .unwrap();
        ingest(&db, std::slice::from_ref(&t1)).unwrap();
        ingest(&db, std::slice::from_ref(&t2)).unwrap();
        assert!(
            !t1.exists() && !t2.exists(),
            "ingested tables are moved, not copied"
        );
        assert_eq!(get(&db, &ra).unwrap().unwrap(), a);
        assert_eq!(get(&db, &rb).unwrap().unwrap(), b);
        assert_eq!(keys(&db).unwrap().len(), 2);
        // A value over the family's bound is refused, never copied.
        db.put_raw(CF_INLINE, &[9; 32], &vec![0; INLINE_MAX as usize + 1])
            .unwrap();
        assert!(get(&db, &Blake3Root::from_bytes([9; 32])).is_err());
        let mut batch = db.batch();
        delete_key(&mut batch, ra.as_bytes());
        delete_key(&mut batch, &[9; 32]);
        batch.write().unwrap();
        assert_eq!(get(&db, &ra).unwrap(), None);
        assert_eq!(keys(&db).unwrap().len(), 1);
        // Readers see it too, and a reader of a database without the family finds nothing.
        drop(db);
        let r = Db::open_read_only(&d.path().join("db")).unwrap();
        assert_eq!(get(&r, &rb).unwrap().unwrap(), b);
    }
}
