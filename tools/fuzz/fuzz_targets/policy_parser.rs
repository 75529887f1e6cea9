//! Fuzz target: the policy.json v1 parser, and evaluation of whatever parses.
//! Invariant: errors are fine; panics are bugs; evaluation is total.
#![no_main]

use cerro_core::policy::{Policy, PolicyFacts, SignerFacts};
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Policy::parse(data) {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let facts = PolicyFacts {
            bundle_name: "busybox".into(),
            source_reference: "oci:image:busybox".into(),
            image_digest: Sha256Digest::of(b"image"),
            created: t,
            now: t,
            signatures: vec![SignerFacts {
                key_id: KeyId::new("alice").unwrap(),
                fingerprint: Fingerprint::of_public_key(&[1; 32]),
                suite: "CT-SIG-01".into(),
                trusted: true,
            }],
            attestations: Default::default(),
        };
        let _ = p.evaluate(&facts);
        let _ = p.summary();
    }
});
