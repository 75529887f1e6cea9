//! `bundles` column family of store format 1: one record per bundle *name*, holding a
//! `bundle_digest` string nobody checked. Read only by the migration to format 2
//! (`meta::migrate`), which re-addresses every record by the SHA-256 of its manifest bytes —
//! never by that field — and then empties this family.
//!
//! ```text
//! key:   bundle name (UTF-8)
//! value: {"format":"cerro-torre/store-bundle/v1", "name", "bundle_digest", "manifest",
//!         "signatures" {key_id: file text}, "rootfs", "root_record" (hex), "imported_at"}
//! ```

use super::schema::{KeyCodec, Schema, ValueCodec};
use super::{Batch, Db, CF_LEGACY_BUNDLES};
use crate::error::{Result, StoreError};
use cerro_core::SignatureSet;
use serde::{Deserialize, Serialize};

pub const BUNDLE_RECORD_FORMAT_V1: &str = "cerro-torre/store-bundle/v1";
/// Largest format-1 record read back.
pub const BUNDLE_RECORD_MAX_BYTES: usize = 32 << 20;

/// The format-1 `bundles` family: bundle name (any bytes: format 1 did not check) →
/// [`LegacyRecord`]. Only read, and emptied, by the migration.
pub struct LegacyBundles;

impl Schema for LegacyBundles {
    const CF: &'static str = CF_LEGACY_BUNDLES;
    const VALUE_MAX: usize = BUNDLE_RECORD_MAX_BYTES;
    type Key = LegacyName;
    type Value = LegacyRecord;
}

/// A format-1 key: whatever bytes format 1 wrote as a name. The migration keeps the name only
/// if it is a valid one (`names::valid_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyName(pub Vec<u8>);

impl KeyCodec for LegacyName {
    fn encode_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        Ok(Self(bytes.to_vec()))
    }
}

impl ValueCodec for LegacyRecord {
    fn encode_value(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("format-1 records serialize")
    }
    fn decode_value(key: &[u8], bytes: &[u8]) -> Result<Self> {
        LegacyRecord::decode(key, bytes)
    }
}

/// A format-1 record; `bundle_digest` and `rootfs` are ignored (they were never bound), so they
/// stay the strings format 1 wrote: typing them would drop records whose ignored fields are
/// malformed from the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyRecord {
    pub format: String,
    pub name: String,
    pub bundle_digest: String,
    pub manifest: String,
    #[serde(with = "super::records::signature_text")]
    pub signatures: SignatureSet,
    pub rootfs: String,
    pub root_record: String,
    pub imported_at: i64,
}

impl LegacyRecord {
    /// Decode a stored value; never panics on any bytes.
    pub fn decode(name: &[u8], v: &[u8]) -> Result<Self> {
        let who = crate::shown(name);
        if v.len() > BUNDLE_RECORD_MAX_BYTES {
            return Err(StoreError::Corrupt(format!(
                "format-1 bundle record {who} is {} bytes, over the limit",
                v.len()
            )));
        }
        let r: LegacyRecord = serde_json::from_slice(v).map_err(|e| {
            StoreError::Corrupt(format!("format-1 bundle record {who} does not decode: {e}"))
        })?;
        if r.format != BUNDLE_RECORD_FORMAT_V1 || r.name.as_bytes() != name {
            return Err(StoreError::Corrupt(format!(
                "format-1 bundle record {who} has format {:?} / name {:?}",
                r.format, r.name
            )));
        }
        Ok(r)
    }
}

/// Every format-1 record, keys raw, with a per-record decode result.
pub fn all(db: &Db) -> Result<Vec<(Vec<u8>, Result<LegacyRecord>)>> {
    Ok(db
        .scan::<LegacyBundles>()?
        .into_iter()
        .map(|row| (row.raw_key, row.value))
        .collect())
}

/// Remove the format-1 record under `key`.
pub fn delete(b: &mut Batch<'_>, key: &[u8]) {
    b.delete::<LegacyBundles>(&LegacyName(key.to_vec()));
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> LegacyRecord {
        LegacyRecord {
            format: BUNDLE_RECORD_FORMAT_V1.into(),
            name: "busybox".into(),
            bundle_digest: "sha256:00".into(),
            manifest: "format = \"x\"\n".into(),
            signatures: [(cerro_core::KeyId::new("alice").unwrap(), b"{}".to_vec())]
                .into_iter()
                .collect(),
            rootfs: "ab".repeat(32),
            root_record: "00".into(),
            imported_at: 1,
        }
    }

    #[test]
    fn decodes_what_format_1_wrote_and_refuses_a_wrong_key() {
        let v = serde_json::to_vec(&sample()).unwrap();
        assert_eq!(LegacyRecord::decode(b"busybox", &v).unwrap(), sample());
        assert!(LegacyRecord::decode(b"other", &v).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let good = serde_json::to_vec(&sample()).unwrap();
        crate::testing::mutations(&good, 3000, |v| {
            let _ = LegacyRecord::decode(b"busybox", v);
            let _ = LegacyRecord::decode_value(v, &good);
            assert_eq!(LegacyName::decode_key(v).unwrap().encode_key(), v);
        });
    }

    #[test]
    fn codec_round_trips_what_format_1_wrote() {
        let v = serde_json::to_vec(&sample()).unwrap();
        assert_eq!(sample().encode_value(), v);
        assert_eq!(
            LegacyRecord::decode_value(b"busybox", &v).unwrap(),
            sample()
        );
        let k = LegacyName(b"busybox".to_vec());
        assert_eq!(LegacyName::decode_key(&k.encode_key()).unwrap(), k);
        let written = r#"{"format":"cerro-torre/store-bundle/v1","name":"busybox","bundle_digest":"sha256:00","manifest":"m","signatures":{"alice":"{}"},"rootfs":"","root_record":"00","imported_at":1}"#;
        let r = LegacyRecord::decode(b"busybox", written.as_bytes()).unwrap();
        assert_eq!(r.encode_value(), written.as_bytes());
    }
}
