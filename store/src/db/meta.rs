//! `meta` column family: store-wide facts. Today only the store format version, checked at open
//! so an older ct never misreads a newer store.
//!
//! ```text
//! key "format"  →  ASCII decimal version (STORE_FORMAT_V1 = "1")
//! ```

use super::{Db, CF_META};
use crate::error::{Result, StoreError};

/// The store's on-disk format. Changing the layout of any column family means a new version.
pub const STORE_FORMAT_V1: &str = "1";
const KEY_FORMAT: &[u8] = b"format";

/// Record the format in a new store, or check it in an existing one.
pub fn check_or_init(db: &Db) -> Result<()> {
    match db.get(CF_META, KEY_FORMAT)? {
        None => {
            let mut b = db.batch();
            b.put(CF_META, KEY_FORMAT, STORE_FORMAT_V1.as_bytes());
            b.write()
        }
        Some(_) => check(db),
    }
}

/// Whether a format version is recorded (not yet, in a store whose creation was cut short).
pub fn recorded(db: &Db) -> Result<bool> {
    Ok(db.get(CF_META, KEY_FORMAT)?.is_some())
}

/// Check the format of an existing store (read-only views cannot record it).
pub fn check(db: &Db) -> Result<()> {
    match db.get(CF_META, KEY_FORMAT)? {
        Some(v) if v == STORE_FORMAT_V1.as_bytes() => Ok(()),
        Some(v) => Err(StoreError::Corrupt(format!(
            "the store has format {:?}; this ct understands format {STORE_FORMAT_V1}",
            String::from_utf8_lossy(&v[..v.len().min(32)])
        ))),
        None => Err(StoreError::Corrupt(
            "the store database records no format version".into(),
        )),
    }
}
