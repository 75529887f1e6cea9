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

use super::schema::{Schema, ValueCodec};
use super::{Batch, Db, CF_RECORDS};
use crate::error::{Result, StoreError};
use cerro_core::verified::StoredRecord;
use cerro_core::{Sha256Digest, SignatureSet};
use serde::{Deserialize, Serialize};

/// The `records` family: bundle digest → [`Record`].
pub struct Records;

impl Schema for Records {
    const CF: &'static str = CF_RECORDS;
    const VALUE_MAX: usize = RECORD_MAX_BYTES;
    type Key = Sha256Digest;
    type Value = Record;
}

impl ValueCodec for Record {
    fn encode_value(&self) -> Vec<u8> {
        self.encode()
    }
    fn decode_value(key: &[u8], bytes: &[u8]) -> Result<Self> {
        Record::decode(key, bytes)
    }
}

pub const RECORD_FORMAT_V2: &str = "cerro-torre/store-record/v2";
/// Largest record read back (a manifest is at most 1 MiB, signatures 256 × 64 KiB).
pub const RECORD_MAX_BYTES: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: String,
    pub manifest: String,
    /// Stored as an object of key id → the signature file's text (`signature_text`).
    #[serde(with = "signature_text")]
    pub signatures: SignatureSet,
    pub root_record: String,
    pub imported_at: i64,
}

/// A record's parts as bytes, ready for `verify_stored`.
#[derive(Debug, Clone)]
pub struct RecordBytes {
    pub manifest: Vec<u8>,
    pub signatures: SignatureSet,
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
        signatures: &SignatureSet,
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
                .map(|(k, v)| Ok((k.clone(), text(v, &format!("signature {k}"))?.into_bytes())))
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
            signatures: self.signatures.clone(),
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
    b.put::<Records>(digest, r);
}
/// Delete the record under the raw key `key` (also a malformed one).
pub fn delete(b: &mut Batch<'_>, key: &[u8]) {
    b.delete_stored::<Records>(key);
}
pub fn get(db: &Db, digest: &Sha256Digest) -> Result<Option<Record>> {
    db.get::<Records>(digest)
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
        .scan::<Records>()?
        .into_iter()
        .map(|row| Entry {
            digest: row.key.ok(),
            record: row.value,
            key: row.raw_key,
        })
        .collect())
}

/// The JSON form of a record's signatures (spec/store.md §2): an object of key id → the
/// signature file's text. Signature files are UTF-8 JSON (`Record::new` refuses any other), so
/// the text is the file byte for byte; an invalid key id does not decode.
pub(crate) mod signature_text {
    use cerro_core::{KeyId, SignatureSet};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(set: &SignatureSet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            set.iter()
                .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SignatureSet, D::Error> {
        Ok(BTreeMap::<KeyId, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::KeyCodec;

    pub(crate) fn sample() -> Record {
        Record {
            format: RECORD_FORMAT_V2.into(),
            manifest: "format = \"x\"\n".into(),
            signatures: [(cerro_core::KeyId::new("alice").unwrap(), b"{}".to_vec())]
                .into_iter()
                .collect(),
            root_record: "00".into(),
            imported_at: 1,
        }
    }

    /// The bytes `ct` wrote before the schema was typed, for the same record.
    const SAMPLE_V2_BYTES: &str = r#"{"format":"cerro-torre/store-record/v2","manifest":"format = \"x\"\n","signatures":{"alice":"{}"},"root_record":"00","imported_at":1}"#;

    #[test]
    fn encoding_is_byte_identical_and_round_trips() {
        assert_eq!(sample().encode_value(), SAMPLE_V2_BYTES.as_bytes());
        let k = Sha256Digest::of(b"m");
        let back = Record::decode_value(k.as_bytes(), SAMPLE_V2_BYTES.as_bytes()).unwrap();
        assert_eq!(back, sample());
        crate::db::schema::tests::key_round_trip(&k);
    }

    #[test]
    fn a_signature_under_an_invalid_key_id_does_not_decode() {
        let v = SAMPLE_V2_BYTES.replace("\"alice\"", "\"../x\"");
        let e = Record::decode(&[1; 32], v.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not decode"), "{e}");
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
            let _ = <Sha256Digest as KeyCodec>::decode_key(v);
            if let Ok(r) = Record::decode_value(&[1; 32], v) {
                let _ = r.bytes(&Sha256Digest::from_bytes([1; 32]));
            }
        });
    }
}
