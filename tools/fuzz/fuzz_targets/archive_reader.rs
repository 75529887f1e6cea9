//! Fuzz target: the bounded reader of ct's outer archives (bundles, export and docker
//! archives, `cerro_core::archive`), in both dialects, reading every entry's data.
//! Invariant: errors are fine; panics, hangs and allocations beyond the 1 MiB extension bound
//! are bugs; every entry's data is exactly its size; errors display (escaped) without panics.
#![no_main]

use cerro_core::archive::{ArchiveReader, Dialect};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    for dialect in [Dialect::Archive, Dialect::Layer] {
        let mut r = ArchiveReader::new(data, 4096, dialect);
        loop {
            match r.next_entry() {
                Ok(Some(e)) => {
                    assert!(e.name.len() <= 4095);
                    let mut v = Vec::new();
                    match (&mut r).take(1 << 20).read_to_end(&mut v) {
                        Ok(_) => assert!(v.len() as u64 == e.size || v.len() == 1 << 20),
                        Err(e) => {
                            let _ = e.to_string();
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            }
        }
    }
    // The whole bundle reader too (it is also `bundle_reader`'s first step).
    let _ = cerro_core::bundle::scan_bundle(data, &mut |_| {});
});
