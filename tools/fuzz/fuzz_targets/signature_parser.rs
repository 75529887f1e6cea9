//! Fuzz target: signature files and key files (public and secret) from untrusted bytes, and raw
//! signatures of every suite (the input cut into a public key and a signature of the suite's
//! sizes, so the ML-DSA-87 decoders see well-sized hostile bytes).
//! Invariant: errors are fine, panics are bugs. (No unlocking: Argon2 per input is too slow.)
#![no_main]

use cerro_core::keys::{PublicKeyFile, SecretKeyFile};
use cerro_core::sign::{verify_message, SignatureFile, Suite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SignatureFile::parse(data) {
        let _ = s.verify(b"manifest");
    }
    let _ = PublicKeyFile::parse(data);
    let _ = SecretKeyFile::parse(data);
    for suite in Suite::ALL {
        let (pk, sig) = (suite.public_key_len(), suite.signature_len());
        let mut padded = data.to_vec();
        padded.resize(pk + sig, 0);
        let _ = verify_message(suite, &padded[..pk], b"message", &padded[pk..]);
    }
});
