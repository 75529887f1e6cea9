//! Key validity windows at verification (spec/signature.md §6): a signature by a trusted key
//! counts only for bundles whose signed creation time lies in the window the trust store gives
//! the key; outside it the key is not trusted for that bundle (exit 3), and the message names
//! the window and the creation time. Checked for every suite.

use cerro_core::policy::parse_date;
use cerro_core::sign::{Signer, Suite};
use cerro_core::verify::{verify_signed_manifest, FailureKind, VerifyContext};
use cerro_core::window::KeyWindow;
use cerro_core::{Fingerprint, KeyId, SignatureSet};
use std::path::Path;

/// The minimal manifest vector: created 2024-01-01T00:00:00Z.
fn manifest() -> Vec<u8> {
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    std::fs::read(Path::new(&dir).join("../spec/vectors/manifest/minimal.toml")).unwrap()
}

fn signer(suite: Suite, name: &str) -> Signer {
    let seed = vec![name.len() as u8; suite.seed_len()];
    Signer::from_suite_seed(KeyId::new(name).unwrap(), suite, &seed).unwrap()
}

fn window(nb: Option<&str>, exp: Option<&str>) -> KeyWindow {
    KeyWindow {
        not_before: nb.map(|s| parse_date(s).unwrap()),
        expires: exp.map(|s| parse_date(s).unwrap()),
    }
}

fn check(signers: &[(&Signer, KeyWindow)]) -> cerro_core::verify::VerifyReport {
    let m = manifest();
    let sigs: SignatureSet = signers
        .iter()
        .map(|(s, _)| (s.key_id.clone(), s.sign(&m).encode()))
        .collect();
    let trust = |fp: &Fingerprint| {
        signers
            .iter()
            .find(|(s, _)| s.fingerprint() == *fp)
            .map(|(s, w)| s.key_id.clone().with_window(*w))
    };
    verify_signed_manifest(
        &m,
        &sigs,
        &VerifyContext {
            trust: &trust,
            policy: None,
            now: parse_date("2024-06-01").unwrap(),
        },
    )
}

#[test]
fn a_bundle_created_inside_the_window_verifies_in_every_suite() {
    for suite in Suite::ALL {
        let s = signer(suite, "alice");
        let rep = check(&[(&s, window(Some("2023-01-01"), Some("2024-01-01T00:00:01Z")))]);
        assert!(rep.ok(), "{suite}: {:?}", rep.failure);
        assert_eq!(
            rep.signatures[0].expires.as_deref(),
            Some("2024-01-01T00:00:01Z")
        );
        assert!(rep.signatures[0].trusted);
    }
}

#[test]
fn a_bundle_created_after_the_expiry_is_refused_naming_the_window() {
    for suite in Suite::ALL {
        let s = signer(suite, "alice");
        // The window's end is exclusive: created exactly at the expiry is outside.
        let rep = check(&[(&s, window(None, Some("2024-01-01")))]);
        let f = rep.failure.as_ref().expect("refused");
        assert_eq!(f.kind, FailureKind::KeyNotTrusted, "{suite}");
        assert_eq!(f.exit_code, 3);
        for needle in [
            "alice",
            "trusted only for bundles created before 2024-01-01T00:00:00Z",
            "created 2024-01-01T00:00:00Z",
            "expiry",
        ] {
            assert!(
                f.message.contains(needle),
                "{suite}: {needle} not in {}",
                f.message
            );
        }
        assert!(!rep.signatures[0].trusted && rep.signatures[0].valid);
    }
}

#[test]
fn a_bundle_created_before_the_window_opens_is_refused() {
    let s = signer(Suite::CtSig02, "bob");
    let rep = check(&[(&s, window(Some("2024-01-01T00:00:01Z"), None))]);
    let f = rep.failure.expect("refused");
    assert_eq!(f.kind, FailureKind::KeyNotTrusted);
    assert!(
        f.message.contains("before the key's window opens"),
        "{}",
        f.message
    );
}

#[test]
fn another_signer_inside_its_window_still_carries_the_bundle() {
    let old = signer(Suite::CtSig01, "old");
    let new = signer(Suite::CtSig02, "new-key");
    let rep = check(&[
        (&old, window(None, Some("2023-06-01"))),
        (&new, KeyWindow::default()),
    ]);
    assert!(rep.ok(), "{:?}", rep.failure);
    let old_r = rep.signatures.iter().find(|r| r.key_id == "old").unwrap();
    assert!(old_r.valid && !old_r.trusted);
    assert!(old_r
        .problem
        .as_deref()
        .unwrap()
        .contains("2023-06-01T00:00:00Z"));
}
