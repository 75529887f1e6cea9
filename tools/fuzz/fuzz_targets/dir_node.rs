//! Fuzz target: a directory node from untrusted bytes (a store value, spec/rootfs.md §5, §7).
//! Invariant: errors are fine, panics are bugs; whatever decodes re-encodes to exactly the
//! input, so a node has one encoding and one digest.
#![no_main]

use cerro_core::rootfs::DirNode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = DirNode::decode(data) {
        assert_eq!(n.encode(), data, "a decoded node must re-encode to its bytes");
        let _ = n.digest();
    }
});
