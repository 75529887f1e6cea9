//! Fuzz target: one OCI layer through the layer reader and the tree rules (spec/rootfs.md §3):
//! the first byte picks the compression (0 none, 1 gzip, 2 zstd), the rest is the blob.
//! Invariant: errors are fine; panics, hangs and unbounded memory are bugs (the limits below
//! bound what a layer may make ct hold).
#![no_main]

use cerro_core::rootfs::{HashSink, Limits, RootfsBuilder};
use cerro_core::source::Compression;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&c, blob)) = data.split_first() else { return };
    let compression = match c % 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        _ => Compression::Zstd,
    };
    let limits = Limits {
        max_layer_bytes: 8 << 20,
        max_layer_entries: 4096,
        max_inodes: 4096,
    };
    let mut b = RootfsBuilder::new(limits);
    if b.apply_layer(blob, compression, &mut HashSink).is_ok() {
        let r = b.finish();
        // Every node the builder made decodes again (it is canonical).
        r.walk().expect("a finished rootfs walks");
    }
});
