//! `records` column family: one record per imported bundle, addressed by its bundle digest.
//!
//! ```text
//! key:   bundle digest: SHA-256 of the signed manifest bytes (32 bytes)
//! value: {"format":"cerro-torre/store-record/v2",
//!         "manifest"    the signed manifest, verbatim (TOML text),
//!         "signatures"  {key_id: signature file text},
//!         "root_record" hex of the encoded root record (its digest is the signed rootfs),
//!         "imported_at" unix seconds}                — JSON, at most RECORD_MAX_BYTES
//! ```
//! The key is the only identity a record has, and it is checked: a record whose manifest does
//! not hash to its key is not that bundle (`cerro_core::verified::verify_stored`, fsck). The
//! value names no digest and no name of its own, so there is nothing else to disagree with.

use super::{Batch, Db, CF_RECORDS};
use crate::error::{Result, StoreError};
use cerro_core::verified::{SignatureFiles, StoredRecord};
use cerro_core::Sha256Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const RECORD_FORMAT_V2: &str = "cerro-torre/store-record/v2";
/// Largest record read back (a manifest is at most 1 MiB, signatures 256 × 64 KiB).
pub const RECORD_MAX_BYTES: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: String,
    pub manifest: String,
    pub signatures: BTreeMap<String, String>,
    pub root_record: String,
    pub imported_at: i64,
}

/// A record's parts as bytes, ready for `verify_stored`.
#[derive(Debug, Clone)]
pub struct RecordBytes {
    pub manifest: Vec<u8>,
    pub signatures: SignatureFiles,
    pub root_record: Vec<u8>,
}

impl RecordBytes {
    /// The record as `verify_stored` takes it, claimed to be bundle `digest`.
    pub fn stored(&self, digest: Sha256Digest) -> StoredRecord<'_> {
        StoredRecord {
            digest,
            manifest: &self.manifest,
            signatures: &self.signatures,
            root_record: &self.root_record,
        }
    }
}

impl Record {
    pub fn new(
        manifest: &[u8],
        signatures: &SignatureFiles,
        root_record: &[u8],
        imported_at: i64,
    ) -> Result<Self> {
        let text = |b: &[u8], what: &str| {
            String::from_utf8(b.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("{what} is not UTF-8")))
        };
        Ok(Self {
            format: RECORD_FORMAT_V2.into(),
            manifest: text(manifest, "the manifest")?,
            signatures: signatures
                .iter()
                .map(|(k, v)| Ok((k.clone(), text(v, &format!("signature {k}"))?)))
                .collect::<Result<_>>()?,
            root_record: hex::encode(root_record),
            imported_at,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialize")
    }

    /// Decode a stored value; never panics on any bytes. Only the format is checked here: the
    /// binding to the key is checked by whoever relies on the record.
    pub fn decode(key: &[u8], v: &[u8]) -> Result<Self> {
        let who = key_shown(key);
        if v.len() > RECORD_MAX_BYTES {
            return Err(StoreError::Corrupt(format!(
                "store record {who} is {} bytes, over the limit of {RECORD_MAX_BYTES}",
                v.len()
            )));
        }
        let r: Record = serde_json::from_slice(v)
            .map_err(|e| StoreError::Corrupt(format!("store record {who} does not decode: {e}")))?;
        if r.format != RECORD_FORMAT_V2 {
            return Err(StoreError::Corrupt(format!(
                "store record {who} has format {}",
                crate::shown(r.format.as_bytes())
            )));
        }
        Ok(r)
    }

    /// The parts as bytes (the root record un-hexed).
    pub fn bytes(&self, key: &Sha256Digest) -> Result<RecordBytes> {
        Ok(RecordBytes {
            manifest: self.manifest.clone().into_bytes(),
            signatures: self
                .signatures
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect(),
            root_record: hex::decode(&self.root_record).map_err(|_| {
                StoreError::Corrupt(format!("store record {key}: the root record is not hex"))
            })?,
        })
    }

    /// Whether the record holds exactly these parts (`imported_at` aside).
    pub fn same_content(&self, other: &Record) -> bool {
        self.manifest == other.manifest
            && self.signatures == other.signatures
            && self.root_record == other.root_record
    }
}

/// A key as people read it: `sha256:HEX` for a well-formed key, else escaped bytes.
pub fn key_shown(key: &[u8]) -> String {
    match <[u8; 32]>::try_from(key) {
        Ok(a) => Sha256Digest::from_bytes(a).to_string(),
        Err(_) => format!("with malformed key {}", crate::shown(key)),
    }
}

pub fn put(b: &mut Batch<'_>, digest: &Sha256Digest, r: &Record) {
    b.put(CF_RECORDS, digest.as_bytes(), &r.encode());
}
pub fn delete(b: &mut Batch<'_>, key: &[u8]) {
    b.delete(CF_RECORDS, key);
}
pub fn get(db: &Db, digest: &Sha256Digest) -> Result<Option<Record>> {
    db.get(CF_RECORDS, digest.as_bytes())?
        .map(|v| Record::decode(digest.as_bytes(), &v))
        .transpose()
}

/// One stored record: its key (a digest when well-formed) and its decode result.
pub struct Entry {
    pub key: Vec<u8>,
    pub digest: Option<Sha256Digest>,
    pub record: Result<Record>,
}

/// Every record, with a per-record decode result so one corrupt value does not hide the rest.
pub fn all(db: &Db) -> Result<Vec<Entry>> {
    Ok(db
        .scan(CF_RECORDS)?
        .into_iter()
        .map(|(k, v)| Entry {
            digest: <[u8; 32]>::try_from(k.as_slice())
                .ok()
                .map(Sha256Digest::from_bytes),
            record: v.and_then(|v| Record::decode(&k, &v)),
            key: k,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Record {
        Record {
            format: RECORD_FORMAT_V2.into(),
            manifest: "format = \"x\"\n".into(),
            signatures: [("alice".to_string(), "{}".to_string())].into(),
            root_record: "00".into(),
            imported_at: 1,
        }
    }

    #[test]
    fn round_trip_through_rocksdb() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        let k = Sha256Digest::of(b"m");
        let mut b = db.batch();
        put(&mut b, &k, &sample());
        b.write().unwrap();
        assert_eq!(get(&db, &k).unwrap().unwrap(), sample());
        assert!(get(&db, &Sha256Digest::of(b"other")).unwrap().is_none());
        db.put_raw(CF_RECORDS, b"short", b"\xff\x00not json")
            .unwrap();
        let all = all(&db).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all
            .iter()
            .any(|e| e.key == b"short" && e.digest.is_none() && e.record.is_err()));
        assert_eq!(sample().bytes(&k).unwrap().root_record, vec![0]);
    }

    #[test]
    fn random_bytes_never_panic() {
        let good = sample().encode();
        crate::testing::mutations(&good, 5000, |v| {
            if let Ok(r) = Record::decode(&[1; 32], v) {
                let _ = r.bytes(&Sha256Digest::from_bytes([1; 32]));
            }
        });
    }
}
