//! The store database's typed schema (the `schemadb` pattern): each column family is a
//! [`Schema`] naming its family, the bound on its values, and a typed key and value, each with
//! a codec. Every read, write, delete and scan of the database goes through a schema, so a
//! value is encoded by one function and decoded by one bounded, non-panicking function.
//!
//! Keys and values are untrusted at rest: `decode_key` and `decode_value` never panic on any
//! bytes, and whatever they return is still checked against a digest from a signed manifest by
//! whoever serves it (spec/store.md). Raw, unchecked writes exist only for tests
//! (`Db::put_raw`, behind `cfg(test)` or the `testing` feature).

use crate::error::{Result, StoreError};
use cerro_core::rootfs::{Blake3Root, DirDigest};
use cerro_core::Sha256Digest;

/// One column family: its name, the largest value it holds, and its key and value types.
pub trait Schema {
    /// The RocksDB column family.
    const CF: &'static str;
    /// The largest value read back: a longer one is refused before it is copied.
    const VALUE_MAX: usize;
    type Key: KeyCodec;
    type Value: ValueCodec;
}

/// How a key is stored.
pub trait KeyCodec: Sized {
    fn encode_key(&self) -> Vec<u8>;
    /// The key stored as `bytes`, or why it is not one; never panics.
    fn decode_key(bytes: &[u8]) -> Result<Self>;
}

/// How a value is stored.
pub trait ValueCodec: Sized {
    fn encode_value(&self) -> Vec<u8>;
    /// The value stored as `bytes` under the raw key `key` (given for messages, and for the
    /// families whose values repeat their key); never panics.
    fn decode_value(key: &[u8], bytes: &[u8]) -> Result<Self>;
}

/// One stored item of a scan: the raw key, and the key and value decoded separately, so a
/// malformed key or value is reported (and can be deleted) without hiding the rest.
pub struct Row<S: Schema> {
    pub raw_key: Vec<u8>,
    pub key: Result<S::Key>,
    pub value: Result<S::Value>,
}

/// The 32 bytes of a digest key, or why `bytes` are not.
fn key_32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| {
        StoreError::Corrupt(format!(
            "a {what} key in the store database is {} bytes, not 32: {}",
            bytes.len(),
            crate::shown(&bytes[..bytes.len().min(64)])
        ))
    })
}

impl KeyCodec for Sha256Digest {
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        key_32(bytes, "bundle digest").map(Sha256Digest::from_bytes)
    }
}

impl KeyCodec for DirDigest {
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        key_32(bytes, "directory digest").map(DirDigest::from_bytes)
    }
}

impl KeyCodec for Blake3Root {
    fn encode_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode_key(bytes: &[u8]) -> Result<Self> {
        key_32(bytes, "file root").map(Blake3Root::from_bytes)
    }
}

/// Opaque bytes, for the families whose values are checked by their reader against their key
/// (directory nodes and outboards: the key is the digest of the value).
impl ValueCodec for Vec<u8> {
    fn encode_value(&self) -> Vec<u8> {
        self.clone()
    }
    fn decode_value(_key: &[u8], bytes: &[u8]) -> Result<Self> {
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A codec's two properties: every value survives encode → decode, and no bytes make the
    /// decoder panic (mutations of a good encoding, truncations, random bytes).
    pub(crate) fn key_round_trip<K: KeyCodec + PartialEq + std::fmt::Debug>(k: &K) {
        let b = k.encode_key();
        assert_eq!(&K::decode_key(&b).unwrap(), k);
        crate::testing::mutations(&b, 3000, |v| {
            if let Ok(k2) = K::decode_key(v) {
                assert_eq!(
                    k2.encode_key(),
                    v,
                    "a decoded key encodes back to its bytes"
                );
            }
        });
    }

    #[test]
    fn digest_keys_round_trip_and_refuse_other_lengths() {
        key_round_trip(&Sha256Digest::of(b"m"));
        key_round_trip(&DirDigest::from_bytes([7; 32]));
        key_round_trip(&Blake3Root::from_bytes([9; 32]));
        for bad in [&b""[..], &[0; 31], &[0; 33]] {
            assert!(Sha256Digest::decode_key(bad).is_err());
            assert!(DirDigest::decode_key(bad).is_err());
            assert!(Blake3Root::decode_key(bad).is_err());
        }
    }

    #[test]
    fn opaque_values_round_trip() {
        let v = b"node bytes".to_vec();
        assert_eq!(Vec::<u8>::decode_value(b"k", &v.encode_value()).unwrap(), v);
        crate::testing::mutations(&v, 1000, |b| {
            assert_eq!(Vec::<u8>::decode_value(b"k", b).unwrap(), b);
        });
    }
}
