//! Fuzz target: the export archive's index, `cerro-export.json` (spec/export.md §3).
//! Invariant: errors are fine, panics are bugs; an accepted index has 1 to 4096 bundles with
//! valid, distinct file names.
#![no_main]

use cerro_core::export::{valid_file_name, ExportIndex, MAX_BUNDLES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = ExportIndex::parse(data) {
        assert!(!i.bundles.is_empty() && i.bundles.len() <= MAX_BUNDLES);
        assert!(i.bundles.iter().all(|b| valid_file_name(&b.file)));
    }
});
