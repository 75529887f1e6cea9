//! Fuzz target: any byte string fed to the bundle reader and then the verifier.
//! Invariant: errors are fine; panics, hangs and unbounded allocation are bugs.
#![no_main]

use cerro_core::bundle::scan_bundle;
use cerro_core::verify::{verify, VerifyContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = scan_bundle(data, &mut |_| {}) {
        let trust = |_: &cerro_core::Fingerprint| None;
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let _ = verify(&raw, &VerifyContext { trust: &trust, policy: None, now });
    }
});
