//! `dirs` and `outboards` column families: the verified tree's interior, keyed by digest.
//! Values are stored as written by core's rootfs encoder and are opaque here; whoever reads one
//! decodes it with core's bounded decoder and checks it against its key (the key is the digest
//! of the value, so a flipped bit is always caught).
//!
//! ```text
//! dirs       key: directory digest, 32 bytes   value: canonical directory node bytes
//! outboards  key: BLAKE3 file root, 32 bytes   value: Merkle outboard (interior CVs)
//! ```

use super::schema::Schema;
use super::{Batch, Db, CF_DIRS, CF_OUTBOARDS};
use crate::error::Result;
use cerro_core::rootfs::{Blake3Root, DirDigest};

/// Largest directory node or outboard read back (untrusted at rest; bounds memory).
pub const NODE_MAX_BYTES: usize = 64 << 20;

/// The `dirs` family: directory digest → the node's canonical bytes (opaque here).
pub struct Dirs;

impl Schema for Dirs {
    const CF: &'static str = CF_DIRS;
    const VALUE_MAX: usize = NODE_MAX_BYTES;
    type Key = DirDigest;
    type Value = Vec<u8>;
}

/// The `outboards` family: a file's BLAKE3 root → its Merkle outboard (opaque here).
pub struct Outboards;

impl Schema for Outboards {
    const CF: &'static str = CF_OUTBOARDS;
    const VALUE_MAX: usize = NODE_MAX_BYTES;
    type Key = Blake3Root;
    type Value = Vec<u8>;
}

pub fn put_dir(b: &mut Batch<'_>, digest: &DirDigest, node: &[u8]) {
    b.put::<Dirs>(digest, &node.to_vec());
}
pub fn put_outboard(b: &mut Batch<'_>, root: &Blake3Root, outboard: &[u8]) {
    b.put::<Outboards>(root, &outboard.to_vec());
}
pub fn delete_dir(b: &mut Batch<'_>, digest: &DirDigest) {
    b.delete::<Dirs>(digest);
}
pub fn delete_outboard(b: &mut Batch<'_>, root: &Blake3Root) {
    b.delete::<Outboards>(root);
}
/// Delete a `dirs` item under a raw key (also one that is not 32 bytes).
pub fn delete_dir_key(b: &mut Batch<'_>, key: &[u8]) {
    b.delete_stored::<Dirs>(key);
}
/// Delete an `outboards` item under a raw key (also one that is not 32 bytes).
pub fn delete_outboard_key(b: &mut Batch<'_>, key: &[u8]) {
    b.delete_stored::<Outboards>(key);
}
pub fn get_dir(db: &Db, digest: &DirDigest) -> Result<Option<Vec<u8>>> {
    db.get::<Dirs>(digest)
}
pub fn get_outboard(db: &Db, root: &Blake3Root) -> Result<Option<Vec<u8>>> {
    db.get::<Outboards>(root)
}
pub fn has_dir(db: &Db, digest: &DirDigest) -> Result<bool> {
    Ok(get_dir(db, digest)?.is_some())
}

/// Keys of a 32-byte-keyed family; keys of another length are returned as errors by the caller.
pub fn dir_keys(db: &Db) -> Result<Vec<Vec<u8>>> {
    Ok(db.keys::<Dirs>()?.into_iter().map(|(k, _)| k).collect())
}
pub fn outboard_keys(db: &Db) -> Result<Vec<Vec<u8>>> {
    Ok(db
        .keys::<Outboards>()?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::{KeyCodec, ValueCodec};

    #[test]
    fn round_trip_through_rocksdb_and_no_panic_on_any_key() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        let (d1, r2) = (
            DirDigest::from_bytes([1; 32]),
            Blake3Root::from_bytes([2; 32]),
        );
        let mut b = db.batch();
        put_dir(&mut b, &d1, b"node");
        put_outboard(&mut b, &r2, b"outboard");
        b.write().unwrap();
        assert_eq!(get_dir(&db, &d1).unwrap().unwrap(), b"node");
        assert_eq!(get_outboard(&db, &r2).unwrap().unwrap(), b"outboard");
        assert!(!has_dir(&db, &DirDigest::from_bytes([2; 32])).unwrap());
        db.put_raw(CF_DIRS, b"short", b"x").unwrap();
        assert_eq!(dir_keys(&db).unwrap().len(), 2);
        let keys = db.keys::<Dirs>().unwrap();
        assert!(keys.iter().any(|(k, d)| k == b"short" && d.is_err()));
        let mut b = db.batch();
        delete_dir_key(&mut b, b"short");
        delete_dir(&mut b, &d1);
        delete_outboard(&mut b, &r2);
        b.write().unwrap();
        assert!(dir_keys(&db).unwrap().is_empty());
        assert!(outboard_keys(&db).unwrap().is_empty());
        crate::testing::mutations(&[7; 32], 2000, |v| {
            let _ = DirDigest::decode_key(v);
            let _ = Blake3Root::decode_key(v);
            assert_eq!(Vec::<u8>::decode_value(&[7; 32], v).unwrap(), v);
        });
    }
}
