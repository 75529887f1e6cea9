//! `meta` column family: store-wide facts. Today only the store format version, checked at open
//! so an older ct never misreads a newer store, and the migration from format 1.
//!
//! ```text
//! key "format"  →  ASCII decimal version (STORE_FORMAT_V3 = "3")
//! ```
//! Format 1 kept records by name with an unchecked `bundle_digest` field; format 2 keeps them by
//! the digest they must hash to, and names as references (records.rs, names.rs). Format 3 adds
//! the `inline` family (inline.rs): files of one verification block are kept in the database.
//! Opening a format-1 store for writing migrates it in one batch (`migrate`); a format-2 store
//! is format 3 as soon as a writer has added the family (nothing moves: readers look for a small
//! file in the database first, then in `objects/`). Format 2 stays readable without a writer.

use super::schema::{KeyCodec, Schema, ValueCodec};
use super::{legacy, names, records, Db, CF_META};
use crate::error::{Result, StoreError};
use cerro_core::Sha256Digest;

/// The store's on-disk format. Changing the layout of any column family means a new version.
pub const STORE_FORMAT_V3: &str = "3";
/// The format before small files were kept in the database (upgraded on open for writing).
pub const STORE_FORMAT_V2: &str = "2";
/// The format before records were addressed by digest (migrated on open).
pub const STORE_FORMAT_V1: &str = "1";
const KEY_FORMAT: &[u8] = b"format";

/// The `meta` family: a known key → its value.
pub struct Meta;

impl Schema for Meta {
    const CF: &'static str = CF_META;
    const VALUE_MAX: usize = 64 << 10;
    type Key = MetaKey;
    type Value = StoreFormat;
}

/// The keys of the `meta` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// `format`: the store format version.
    Format,
}

impl KeyCodec for MetaKey {
    fn encode_key(&self) -> Vec<u8> {
        match self {
            MetaKey::Format => KEY_FORMAT.to_vec(),
        }
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        match bytes {
            KEY_FORMAT => Ok(MetaKey::Format),
            _ => Err(StoreError::Corrupt(format!(
                "the store database's meta family holds an unknown key {}",
                crate::shown(&bytes[..bytes.len().min(64)])
            ))),
        }
    }
}

/// The store format a database records: one this ct knows, or other bytes (a newer format,
/// or damage), kept as found so they can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFormat {
    V1,
    V2,
    V3,
    Other(Vec<u8>),
}

impl ValueCodec for StoreFormat {
    fn encode_value(&self) -> Vec<u8> {
        match self {
            StoreFormat::V1 => STORE_FORMAT_V1.as_bytes().to_vec(),
            StoreFormat::V2 => STORE_FORMAT_V2.as_bytes().to_vec(),
            StoreFormat::V3 => STORE_FORMAT_V3.as_bytes().to_vec(),
            StoreFormat::Other(v) => v.clone(),
        }
    }
    fn decode_value(_key: &[u8], bytes: &[u8]) -> Result<Self> {
        Ok(if bytes == STORE_FORMAT_V1.as_bytes() {
            StoreFormat::V1
        } else if bytes == STORE_FORMAT_V2.as_bytes() {
            StoreFormat::V2
        } else if bytes == STORE_FORMAT_V3.as_bytes() {
            StoreFormat::V3
        } else {
            StoreFormat::Other(bytes.to_vec())
        })
    }
}

fn format_of(db: &Db) -> Result<Option<StoreFormat>> {
    db.get::<Meta>(&MetaKey::Format)
}

/// Record the format in a new store, migrate a format-1 or format-2 store, or check an existing
/// one. `db` is a writer, so it has every family (`Db::open` creates the `inline` family).
pub fn check_or_init(db: &Db) -> Result<()> {
    match format_of(db)? {
        None | Some(StoreFormat::V2) => {
            let mut b = db.batch();
            b.put::<Meta>(&MetaKey::Format, &StoreFormat::V3);
            b.write()
        }
        Some(StoreFormat::V1) => migrate(db).map(|_| ()),
        Some(_) => check(db),
    }
}

/// True when the database records the current format (older ones are upgraded by a writer).
pub fn current(db: &Db) -> Result<bool> {
    Ok(format_of(db)? == Some(StoreFormat::V3))
}

/// Check that this ct can read the store: format 3, or format 2 (which has no small files in
/// the database yet).
pub fn check(db: &Db) -> Result<()> {
    match format_of(db)? {
        Some(StoreFormat::V2 | StoreFormat::V3) => Ok(()),
        Some(StoreFormat::V1) => Err(StoreError::Corrupt(
            "the store has format 1, which this ct migrates when it opens the store for writing \
             (any `ct store` or `ct import` command does)"
                .into(),
        )),
        Some(StoreFormat::Other(v)) => Err(StoreError::Corrupt(format!(
            "the store has format {}; this ct understands formats {STORE_FORMAT_V2} and \
             {STORE_FORMAT_V3}",
            crate::shown(&v[..v.len().min(32)])
        ))),
        None => Err(StoreError::Corrupt(
            "the store database records no format version".into(),
        )),
    }
}

/// Migrate format 1 to 3 in one batch (format 2's change; the `inline` family starts empty):
/// every decodable record is re-addressed by the SHA-256 of its manifest bytes (the old
/// `bundle_digest` field is ignored), its name becomes a reference to that digest, and the old
/// family is emptied. Records that do not decode, and invalid
/// names, are dropped (they could not have been served). Returns the records migrated.
pub fn migrate(db: &Db) -> Result<usize> {
    let mut b = db.batch();
    let mut n = 0;
    for (key, rec) in legacy::all(db)? {
        legacy::delete(&mut b, &key);
        let Ok(r) = rec else { continue };
        let Ok(root) = hex::decode(&r.root_record) else {
            continue;
        };
        let digest = Sha256Digest::of(r.manifest.as_bytes());
        let new = records::Record::new(r.manifest.as_bytes(), &r.signatures, &root, r.imported_at)?;
        records::put(&mut b, &digest, &new);
        if names::valid_name(&key).is_ok() {
            names::put(&mut b, &r.name, &names::NameRef::new(digest, r.imported_at))?;
        }
        n += 1;
    }
    b.put::<Meta>(&MetaKey::Format, &StoreFormat::V3);
    b.write()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::CF_LEGACY_BUNDLES;

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
            signatures: [(cerro_core::KeyId::new("alice").unwrap(), b"{}".to_vec())]
                .into_iter()
                .collect(),
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
        assert!(current(&db).unwrap());
        let want = Sha256Digest::of(b"m");
        assert_eq!(names::get(&db, "app").unwrap().unwrap().digest, want);
        let r = records::get(&db, &want).unwrap().unwrap();
        assert_eq!(r.root_record, "0102");
        assert!(legacy::all(&db).unwrap().is_empty());
        assert_eq!(db.scan::<names::Names>().unwrap().len(), 1);
    }

    #[test]
    fn a_format_2_store_is_read_as_it_is_and_upgraded_by_a_writer() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        db.put_raw(CF_META, KEY_FORMAT, b"2").unwrap();
        check(&db).unwrap();
        assert!(!current(&db).unwrap());
        check_or_init(&db).unwrap();
        assert!(current(&db).unwrap());
        db.put_raw(CF_META, KEY_FORMAT, b"4").unwrap();
        let e = check(&db).unwrap_err().to_string();
        assert!(
            e.contains("format \"4\"; this ct understands formats 2 and 3"),
            "{e}"
        );
    }

    #[test]
    fn codecs_round_trip_and_never_panic() {
        let k = MetaKey::Format;
        assert_eq!(MetaKey::decode_key(&k.encode_key()).unwrap(), k);
        assert_eq!(k.encode_key(), b"format");
        for (v, bytes) in [
            (StoreFormat::V1, &b"1"[..]),
            (StoreFormat::V2, b"2"),
            (StoreFormat::V3, b"3"),
            (StoreFormat::Other(b"4".to_vec()), b"4"),
        ] {
            assert_eq!(v.encode_value(), bytes);
            assert_eq!(StoreFormat::decode_value(b"format", bytes).unwrap(), v);
        }
        crate::testing::mutations(b"format", 2000, |v| {
            if let Ok(k) = MetaKey::decode_key(v) {
                assert_eq!(k.encode_key(), v);
            }
            let f = StoreFormat::decode_value(b"format", v).unwrap();
            assert_eq!(f.encode_value(), v);
        });
    }
}
