//! Fuzz target: image indexes and manifests' descriptors as a registry sends them, and the
//! Cerro artifact manifest (spec/registry.md §2). Invariant: errors are fine, panics are bugs;
//! an accepted descriptor has a size of at most 2^63-1; an accepted artifact carries a manifest.
#![no_main]

use cerro_core::registry::{answers, artifact};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for arch in ["amd64", "arm64"] {
        if let Ok(d) = answers::pick_platform(data, arch) {
            assert!(d.size <= i64::MAX as u64);
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = answers::descriptor(&v);
    }
    if let Ok(a) = artifact::parse(data) {
        assert_eq!(a.manifest.path, "cerro/manifest.toml");
    }
});
