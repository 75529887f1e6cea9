//! Fuzz target: what a registry's HTTP answers carry besides manifests: `WWW-Authenticate`
//! challenges, a token service's JSON, the distribution error JSON.
//! Invariant: errors are fine, panics are bugs; an accepted token can be sent back in a header
//! (printable ASCII, no spaces); error text is escaped (no control characters).
#![no_main]

use cerro_core::registry::answers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = std::str::from_utf8(data) {
        for c in answers::parse_challenges(h) {
            assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        }
    }
    if let Ok(t) = answers::token_from_json(data) {
        assert!(!t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)));
    }
    if let Some(d) = answers::error_detail(data) {
        assert!(!d.chars().any(char::is_control), "{d:?}");
    }
});
