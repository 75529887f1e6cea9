//! Fuzz target: bytes read from an OSTree repository through every decoder `ct verify ostree:`
//! uses — commit, dirtree, dirmeta, detached metadata, archive and bare-user file headers, and
//! the signed tree in a commit's metadata (spec/ostree.md); the first byte picks which.
//! Invariant: errors are fine; panics, hangs and unbounded memory are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cerro_ostree_export::fuzzing::decode(data);
});
