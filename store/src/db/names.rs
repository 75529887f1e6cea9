//! `names` column family: a bundle name is only a reference to a bundle digest, as a tag is to
//! an image manifest. Importing another version moves the name (never to an older `created`
//! without `--allow-downgrade`: `import::NameMove`); the bundle it named stays addressable by
//! its digest until `gc`.
//!
//! ```text
//! key:   bundle name (UTF-8; valid names are 1-128 of A-Z a-z 0-9 . _ -)
//! value: {"format":"cerro-torre/store-name/v1", "digest":"sha256:HEX", "updated_at": unix s}
//! ```
//! Keys are untrusted like everything else: a key that is not a valid name is never served or
//! used as a path (callers skip it with a warning; fsck reports it).

use super::schema::{KeyCodec, Schema, ValueCodec};
use super::{Batch, Db, CF_NAMES};
use crate::error::{Result, StoreError};
use cerro_core::manifest::is_valid_name;
use cerro_core::Sha256Digest;
use serde::{Deserialize, Serialize};

pub const NAME_FORMAT_V1: &str = "cerro-torre/store-name/v1";
/// Largest name value read back (a valid one is under 200 bytes).
const NAME_VALUE_MAX_BYTES: usize = 4096;

/// The `names` family: bundle name → [`NameRef`].
pub struct Names;

impl Schema for Names {
    const CF: &'static str = CF_NAMES;
    /// A valid value is under 200 bytes; [`NameRef::decode`] bounds it more tightly.
    const VALUE_MAX: usize = 64 << 10;
    type Key = BundleName;
    type Value = NameRef;
}

/// A valid bundle name (spec/store.md §3): the only key the names family may use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BundleName(String);

impl BundleName {
    /// `name`, when it is a valid bundle name.
    pub fn new(name: &str) -> Result<Self> {
        valid_name(name.as_bytes()).map(|n| Self(n.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl KeyCodec for BundleName {
    fn encode_key(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        valid_name(bytes).map(|n| Self(n.to_string()))
    }
}

impl ValueCodec for NameRef {
    fn encode_value(&self) -> Vec<u8> {
        self.encode()
    }
    fn decode_value(key: &[u8], bytes: &[u8]) -> Result<Self> {
        NameRef::decode(key, bytes)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRef {
    pub format: String,
    pub digest: Sha256Digest,
    pub updated_at: i64,
}

impl NameRef {
    pub fn new(digest: Sha256Digest, updated_at: i64) -> Self {
        Self {
            format: NAME_FORMAT_V1.into(),
            digest,
            updated_at,
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("names serialize")
    }
    /// Decode a stored value under `key`; never panics. The key must be a valid name.
    pub fn decode(key: &[u8], v: &[u8]) -> Result<Self> {
        let name = valid_name(key)?;
        if v.len() > NAME_VALUE_MAX_BYTES {
            return Err(StoreError::Corrupt(format!(
                "name {name:?} has a {}-byte value, over the limit",
                v.len()
            )));
        }
        let r: NameRef = serde_json::from_slice(v)
            .map_err(|e| StoreError::Corrupt(format!("name {name:?} does not decode: {e}")))?;
        if r.format != NAME_FORMAT_V1 {
            return Err(StoreError::Corrupt(format!(
                "name {name:?} has format {}",
                crate::shown(r.format.as_bytes())
            )));
        }
        Ok(r)
    }
}

/// `key` as a name, when it is a valid one.
pub fn valid_name(key: &[u8]) -> Result<&str> {
    match std::str::from_utf8(key) {
        Ok(s) if is_valid_name(s) => Ok(s),
        _ => Err(StoreError::Corrupt(format!(
            "the store holds an invalid bundle name {}",
            crate::shown(key)
        ))),
    }
}

/// Point `name` (which the caller has validated; an invalid one is refused) at `r`.
pub fn put(b: &mut Batch<'_>, name: &str, r: &NameRef) -> Result<()> {
    b.put::<Names>(&BundleName::new(name)?, r);
    Ok(())
}
/// Delete the name under the raw key `key` (also an invalid one).
pub fn delete(b: &mut Batch<'_>, key: &[u8]) {
    b.delete_stored::<Names>(key);
}
/// The reference under `name` (which the caller has validated; an invalid one is refused).
pub fn get(db: &Db, name: &str) -> Result<Option<NameRef>> {
    db.get::<Names>(&BundleName::new(name)?)
}

/// Every name: the raw key and its decode result (an invalid key is an error, never a name).
pub fn all(db: &Db) -> Result<Vec<(Vec<u8>, Result<NameRef>)>> {
    Ok(db
        .scan::<Names>()?
        .into_iter()
        .map(|row| (row.raw_key, row.key.and(row.value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_invalid_keys_are_never_names() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("db")).unwrap();
        let r = NameRef::new(Sha256Digest::of(b"x"), 5);
        let mut b = db.batch();
        put(&mut b, "app", &r).unwrap();
        b.write().unwrap();
        assert_eq!(get(&db, "app").unwrap().unwrap(), r);
        for bad in [&b""[..], b"a/b", b"../x", b".", b"a\nb", b"\xff"] {
            db.put_raw(CF_NAMES, bad, &r.encode()).unwrap();
        }
        let all = all(&db).unwrap();
        assert_eq!(all.len(), 7);
        assert_eq!(all.iter().filter(|(_, r)| r.is_ok()).count(), 1);
        let e = NameRef::decode(b"../x", &r.encode())
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid bundle name \"../x\""), "{e}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let good = NameRef::new(Sha256Digest::of(b"x"), 5).encode();
        crate::testing::mutations(&good, 5000, |v| {
            let _ = NameRef::decode(b"app", v);
            let _ = NameRef::decode(v, &good);
            let _ = NameRef::decode_value(b"app", v);
            let _ = BundleName::decode_key(v);
        });
    }

    #[test]
    fn codecs_round_trip_and_keys_are_valid_names_only() {
        let r = NameRef::new(Sha256Digest::of(b"x"), 5);
        assert_eq!(NameRef::decode_value(b"app", &r.encode_value()).unwrap(), r);
        crate::db::schema::tests::key_round_trip(&BundleName::new("app-1.2_x").unwrap());
        for bad in ["", "a/b", "../x", ".", "-x", "a\nb"] {
            assert!(BundleName::new(bad).is_err(), "{bad:?}");
            assert!(BundleName::decode_key(bad.as_bytes()).is_err(), "{bad:?}");
        }
        // The wire form is what spec/store.md §3 shows, byte for byte.
        let want = format!(
            r#"{{"format":"cerro-torre/store-name/v1","digest":"{}","updated_at":5}}"#,
            Sha256Digest::of(b"x")
        );
        assert_eq!(r.encode_value(), want.as_bytes());
    }
}
