//! `meta` column family: store-wide facts. Today only the store format version, checked at open
//! so an older ct never misreads a newer store, and the migration from format 1.
//!
//! ```text
//! key "format"  →  ASCII decimal version (STORE_FORMAT_V2 = "2")
//! ```
//! Format 1 kept records by name with an unchecked `bundle_digest` field; format 2 keeps them by
//! the digest they must hash to, and names as references (records.rs, names.rs). Opening a
//! format-1 store for writing migrates it in one batch (`migrate`).

use super::{legacy, names, records, Db, CF_META};
use crate::error::{Result, StoreError};
use cerro_core::Sha256Digest;

/// The store's on-disk format. Changing the layout of any column family means a new version.
pub const STORE_FORMAT_V2: &str = "2";
/// The format before records were addressed by digest (migrated on open).
pub const STORE_FORMAT_V1: &str = "1";
const KEY_FORMAT: &[u8] = b"format";

/// Record the format in a new store, migrate a format-1 store, or check an existing one.
pub fn check_or_init(db: &Db) -> Result<()> {
    match db.get(CF_META, KEY_FORMAT)? {
        None => {
            let mut b = db.batch();
            b.put(CF_META, KEY_FORMAT, STORE_FORMAT_V2.as_bytes());
            b.write()
        }
        Some(v) if v == STORE_FORMAT_V1.as_bytes() => migrate(db).map(|_| ()),
        Some(_) => check(db),
    }
}

/// True when the database records a format this ct can read without writing first.
pub fn current(db: &Db) -> Result<bool> {
    Ok(db.get(CF_META, KEY_FORMAT)?.as_deref() == Some(STORE_FORMAT_V2.as_bytes()))
}

pub fn check(db: &Db) -> Result<()> {
    match db.get(CF_META, KEY_FORMAT)? {
        Some(v) if v == STORE_FORMAT_V2.as_bytes() => Ok(()),
        Some(v) if v == STORE_FORMAT_V1.as_bytes() => Err(StoreError::Corrupt(
            "the store has format 1, which this ct migrates when it opens the store for writing \
             (any `ct store` or `ct import` command does)"
                .into(),
        )),
        Some(v) => Err(StoreError::Corrupt(format!(
            "the store has format {}; this ct understands format {STORE_FORMAT_V2}",
            crate::shown(&v[..v.len().min(32)])
        ))),
        None => Err(StoreError::Corrupt(
            "the store database records no format version".into(),
        )),
    }
}

/// Migrate format 1 to 2 in one batch: every decodable record is re-addressed by the SHA-256 of
/// its manifest bytes (the old `bundle_digest` field is ignored), its name becomes a reference
/// to that digest, and the old family is emptied. Records that do not decode, and invalid
/// names, are dropped (they could not have been served). Returns the records migrated.
pub fn migrate(db: &Db) -> Result<usize> {
    let mut b = db.batch();
    let mut n = 0;
    for (key, rec) in legacy::all(db)? {
        b.delete(super::CF_LEGACY_BUNDLES, &key);
        let Ok(r) = rec else { continue };
        let Ok(root) = hex::decode(&r.root_record) else {
            continue;
        };
        let digest = Sha256Digest::of(r.manifest.as_bytes());
        let sigs = r
            .signatures
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        let new = records::Record::new(r.manifest.as_bytes(), &sigs, &root, r.imported_at)?;
        records::put(&mut b, &digest, &new);
        if names::valid_name(&key).is_ok() {
            names::put(&mut b, &r.name, &names::NameRef::new(digest, r.imported_at));
        }
        n += 1;
    }
    b.put(CF_META, KEY_FORMAT, STORE_FORMAT_V2.as_bytes());
    b.write()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{CF_LEGACY_BUNDLES, CF_NAMES};

    #[test]
    fn format_1_records_are_readdressed_by_what_their_manifest_hashes_to() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        db.put_raw(CF_META, KEY_FORMAT, b"1").unwrap();
        let old = legacy::LegacyRecord {
            format: legacy::BUNDLE_RECORD_FORMAT_V1.into(),
            name: "app".into(),
            // A lie, as format 1 allowed: it is ignored.
            bundle_digest: Sha256Digest::of(b"something else").to_string(),
            manifest: "m".into(),
            signatures: [("alice".to_string(), "{}".to_string())].into(),
            rootfs: String::new(),
            root_record: "0102".into(),
            imported_at: 7,
        };
        db.put_raw(
            CF_LEGACY_BUNDLES,
            b"app",
            &serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        db.put_raw(CF_LEGACY_BUNDLES, b"junk", b"not json").unwrap();
        check_or_init(&db).unwrap();
        check(&db).unwrap();
        let want = Sha256Digest::of(b"m");
        assert_eq!(names::get(&db, "app").unwrap().unwrap().digest, want);
        let r = records::get(&db, &want).unwrap().unwrap();
        assert_eq!(r.root_record, "0102");
        assert!(legacy::all(&db).unwrap().is_empty());
        assert_eq!(db.scan(CF_NAMES).unwrap().len(), 1);
    }
}
