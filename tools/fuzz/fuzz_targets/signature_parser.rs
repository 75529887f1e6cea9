//! Fuzz target: signature files and key files (public and secret) from untrusted bytes.
//! Invariant: errors are fine, panics are bugs. (No unlocking: Argon2 per input is too slow.)
#![no_main]

use cerro_core::keys::{PublicKeyFile, SecretKeyFile};
use cerro_core::sign::SignatureFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SignatureFile::parse(data) {
        let _ = s.verify(b"manifest");
    }
    let _ = PublicKeyFile::parse(data);
    let _ = SecretKeyFile::parse(data);
});
