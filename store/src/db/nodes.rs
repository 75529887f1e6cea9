//! `dirs` and `outboards` column families: the verified tree's interior, keyed by digest.
//! Values are stored as written by core's rootfs encoder and are opaque here; whoever reads one
//! decodes it with core's bounded decoder and checks it against its key (the key is the digest
//! of the value, so a flipped bit is always caught).
//!
//! ```text
//! dirs       key: directory digest, 32 bytes   value: canonical directory node bytes
//! outboards  key: BLAKE3 file root, 32 bytes   value: Merkle outboard (interior CVs)
//! ```

use super::{Batch, Db, CF_DIRS, CF_OUTBOARDS};
use crate::error::Result;

/// Largest directory node or outboard read back (untrusted at rest; bounds memory).
pub const NODE_MAX_BYTES: usize = 64 << 20;

pub fn put_dir(b: &mut Batch<'_>, digest: &[u8; 32], node: &[u8]) {
    b.put(CF_DIRS, digest, node);
}
pub fn put_outboard(b: &mut Batch<'_>, root: &[u8; 32], outboard: &[u8]) {
    b.put(CF_OUTBOARDS, root, outboard);
}
pub fn delete_dir(b: &mut Batch<'_>, digest: &[u8; 32]) {
    b.delete(CF_DIRS, digest);
}
pub fn delete_outboard(b: &mut Batch<'_>, root: &[u8; 32]) {
    b.delete(CF_OUTBOARDS, root);
}
pub fn get_dir(db: &Db, digest: &[u8; 32]) -> Result<Option<Vec<u8>>> {
    db.get(CF_DIRS, digest)
}
pub fn get_outboard(db: &Db, root: &[u8; 32]) -> Result<Option<Vec<u8>>> {
    db.get(CF_OUTBOARDS, root)
}
pub fn has_dir(db: &Db, digest: &[u8; 32]) -> Result<bool> {
    Ok(get_dir(db, digest)?.is_some())
}

/// Keys of a 32-byte-keyed family; keys of another length are returned as errors by the caller.
pub fn dir_keys(db: &Db) -> Result<Vec<Vec<u8>>> {
    db.keys(CF_DIRS)
}
pub fn outboard_keys(db: &Db) -> Result<Vec<Vec<u8>>> {
    db.keys(CF_OUTBOARDS)
}
