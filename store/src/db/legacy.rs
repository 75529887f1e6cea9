//! `bundles` column family: one record per imported bundle, naming everything it references.
//!
//! ```text
//! key:   bundle name, UTF-8 (1-128 of A-Z a-z 0-9 . _ -)
//! value: {"format":"cerro-torre/store-bundle/v1", "name", "bundle_digest", "manifest" (the
//!         signed TOML, verbatim), "signatures" {key_id: file text}, "rootfs" (ctfs:…),
//!         "root_record" (hex of the encoded RootRecord, whose digest is "rootfs"),
//!         "imported_at" (unix seconds)}   — JSON, at most BUNDLE_RECORD_MAX_BYTES
//! ```
//! The manifest and signatures are kept verbatim so that the record can be re-verified from
//! the signature down, like a bundle file.

use super::{Batch, Db, CF_BUNDLES};
use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const BUNDLE_RECORD_FORMAT_V1: &str = "cerro-torre/store-bundle/v1";
/// Largest bundle record read back (a manifest is at most 1 MiB, signatures 256 × 64 KiB).
pub const BUNDLE_RECORD_MAX_BYTES: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleRecord {
    pub format: String,
    pub name: String,
    pub bundle_digest: String,
    pub manifest: String,
    pub signatures: BTreeMap<String, String>,
    pub rootfs: String,
    pub root_record: String,
    pub imported_at: i64,
}

impl BundleRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialize")
    }
    /// Decode a stored value; never panics on any bytes.
    pub fn decode(name: &[u8], v: &[u8]) -> Result<Self> {
        let who = String::from_utf8_lossy(&name[..name.len().min(200)]).into_owned();
        if v.len() > BUNDLE_RECORD_MAX_BYTES {
            return Err(StoreError::Corrupt(format!(
                "bundle record {who:?} is {} bytes, over the limit",
                v.len()
            )));
        }
        let r: BundleRecord = serde_json::from_slice(v).map_err(|e| {
            StoreError::Corrupt(format!("bundle record {who:?} does not decode: {e}"))
        })?;
        if r.format != BUNDLE_RECORD_FORMAT_V1 || r.name.as_bytes() != name {
            return Err(StoreError::Corrupt(format!(
                "bundle record {who:?} has format {:?} / name {:?}",
                r.format, r.name
            )));
        }
        Ok(r)
    }
}

pub fn put(b: &mut Batch<'_>, r: &BundleRecord) {
    b.put(CF_BUNDLES, r.name.as_bytes(), &r.encode());
}
pub fn delete(b: &mut Batch<'_>, name: &str) {
    b.delete(CF_BUNDLES, name.as_bytes());
}
pub fn get(db: &Db, name: &str) -> Result<Option<BundleRecord>> {
    db.get(CF_BUNDLES, name.as_bytes())?
        .map(|v| BundleRecord::decode(name.as_bytes(), &v))
        .transpose()
}

/// Every record, with a per-record decode result so one corrupt value does not hide the rest.
pub fn all(db: &Db) -> Result<Vec<(String, Result<BundleRecord>)>> {
    Ok(db
        .scan(CF_BUNDLES)?
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                BundleRecord::decode(&k, &v),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BundleRecord {
        BundleRecord {
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
    fn round_trip_through_rocksdb() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        let mut b = db.batch();
        put(&mut b, &sample());
        b.write().unwrap();
        assert_eq!(get(&db, "busybox").unwrap().unwrap(), sample());
        assert!(get(&db, "other").unwrap().is_none());
        db.put_raw(CF_BUNDLES, b"bad", b"\xff\x00not json").unwrap();
        let all = all(&db).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().any(|(n, r)| n == "bad" && r.is_err()));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let good = sample().encode();
        for i in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut v = if i % 2 == 0 {
                good.clone()
            } else {
                (0..(x % 300)).map(|j| (x >> (j % 56)) as u8).collect()
            };
            if !v.is_empty() {
                let n = v.len();
                v[(x as usize) % n] ^= (x >> 8) as u8;
            }
            let _ = BundleRecord::decode(b"busybox", &v);
        }
    }
}
