//! Fuzz target: a store bundle record from untrusted bytes (store/src/db/bundles.rs, a RocksDB
//! value an attacker can write). Built only with `--features store` (it links RocksDB).
//! Invariant: errors are fine, panics are bugs; an accepted record names the key it was read
//! under and has the v1 format.
#![no_main]

use cerro_store::db::bundles::{BundleRecord, BUNDLE_RECORD_FORMAT_V1};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The key is attacker-chosen too: the first byte says how much of the input it takes.
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n as usize).min(rest.len());
    let (key, value) = rest.split_at(n);
    if let Ok(r) = BundleRecord::decode(key, value) {
        assert_eq!(r.name.as_bytes(), key);
        assert_eq!(r.format, BUNDLE_RECORD_FORMAT_V1);
    }
});
