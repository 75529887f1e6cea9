//! Fuzz target: a root record from untrusted bytes (a store value, spec/rootfs.md §6, §7).
//! Invariant: errors are fine, panics are bugs; whatever decodes re-encodes to exactly the input.
#![no_main]

use cerro_core::rootfs::RootRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = RootRecord::decode(data) {
        assert_eq!(r.encode(), data, "a decoded root record must re-encode to its bytes");
        let _ = r.digest();
    }
});
