//! Fuzz target: the store's bundle records and names from untrusted bytes (store/src/db/:
//! `records` keyed by bundle digest, `names` referring to them, and format-1 `legacy` records
//! read when migrating), RocksDB keys and values an attacker can write, through the schema's
//! key codecs too (`db::schema`). Built only with `--features store` (it links RocksDB).
//! Invariant: errors are fine, panics are bugs; an accepted record has the v2 format.
#![no_main]

use cerro_core::Sha256Digest;
use cerro_core::rootfs::{Blake3Root, DirDigest};
use cerro_store::db::legacy::LegacyRecord;
use cerro_store::db::meta::{MetaKey, StoreFormat};
use cerro_store::db::names::{BundleName, NameRef};
use cerro_store::db::records::{Record, RECORD_FORMAT_V2};
use cerro_store::db::schema::{KeyCodec, ValueCodec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The key is attacker-chosen too: the first byte says how much of the input it takes.
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n as usize).min(rest.len());
    let (key, value) = rest.split_at(n);
    if let Ok(r) = Record::decode(key, value) {
        assert_eq!(r.format, RECORD_FORMAT_V2);
        let _ = r.bytes(&Sha256Digest::of(key));
    }
    let _ = NameRef::decode(key, value);
    let _ = LegacyRecord::decode(key, value);
    // Keys of every family; a key that decodes encodes back to exactly its bytes.
    if let Ok(d) = Sha256Digest::decode_key(key) {
        assert_eq!(d.encode_key(), key);
    }
    if let Ok(n) = BundleName::decode_key(key) {
        assert_eq!(n.encode_key(), key);
    }
    let _ = DirDigest::decode_key(key);
    let _ = Blake3Root::decode_key(key);
    let _ = MetaKey::decode_key(key);
    if let Ok(f) = StoreFormat::decode_value(key, value) {
        assert_eq!(f.encode_value(), value);
    }
});
