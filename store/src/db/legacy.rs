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

use super::{Db, CF_LEGACY_BUNDLES};
use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const BUNDLE_RECORD_FORMAT_V1: &str = "cerro-torre/store-bundle/v1";
/// Largest format-1 record read back.
pub const BUNDLE_RECORD_MAX_BYTES: usize = 32 << 20;

/// A format-1 record; `bundle_digest` and `rootfs` are ignored (they were never bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyRecord {
    pub format: String,
    pub name: String,
    pub bundle_digest: String,
    pub manifest: String,
    pub signatures: BTreeMap<String, String>,
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
        .scan(CF_LEGACY_BUNDLES)?
        .into_iter()
        .map(|(k, v)| {
            let r = v.and_then(|v| LegacyRecord::decode(&k, &v));
            (k, r)
        })
        .collect())
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
            signatures: [("alice".to_string(), "{}".to_string())].into(),
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
        });
    }
}
