//! Fuzz target: the canonical manifest parser.
//! Invariant: errors are fine, panics are bugs; whatever parses re-encodes to the same bytes.
#![no_main]

use cerro_core::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        assert_eq!(m.encode(), data, "a parsed manifest must be canonical");
    }
});
