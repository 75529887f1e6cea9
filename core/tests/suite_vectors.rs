//! Loads `spec/vectors/signature/suites/` (spec/signature.md §5): for each suite, the key
//! derived from the vector's seed, the signature over the minimal manifest reproduced byte for
//! byte (every suite signs deterministically), and every signature file that MUST NOT verify
//! refused for the stated reason — flipped bits in either half of a hybrid, swapped halves, the
//! wrong public key, truncation, a FIPS 204 context string.

use base64::Engine as _;
use cerro_core::sign::{verify_message, SignatureFile, Signer, Suite, VerifyFailure};
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../spec/vectors/signature/suites")
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn b64(s: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

#[test]
fn every_suite_has_vectors_that_verify_and_are_reproduced() {
    for suite in Suite::ALL {
        let name = suite.id().to_ascii_lowercase();
        let v = json(&dir().join(format!("{name}.json")));
        assert_eq!(v["suite"], suite.id());
        let manifest = std::fs::read(dir().join(v["manifest"].as_str().unwrap())).unwrap();
        let seed = hex::decode(v["seed_hex"].as_str().unwrap()).unwrap();
        let signer = Signer::from_suite_seed(
            KeyId::new(v["key_id"].as_str().unwrap()).unwrap(),
            suite,
            &seed,
        )
        .unwrap();
        let pk = b64(&v["public_key_b64"]);
        assert_eq!(signer.public_key(), pk, "{name}: key derivation changed");
        assert_eq!(pk.len() as u64, v["public_key_bytes"].as_u64().unwrap());
        assert_eq!(
            Fingerprint::of_public_key(&pk),
            Fingerprint::parse(v["fingerprint"].as_str().unwrap()).unwrap()
        );
        let msg = cerro_core::sign::signed_message(suite, &manifest);
        assert_eq!(
            Sha256Digest::of(&msg).to_string(),
            v["signed_message_sha256"].as_str().unwrap()
        );
        let sig = b64(&v["signature_b64"]);
        assert_eq!(sig.len() as u64, v["signature_bytes"].as_u64().unwrap());
        verify_message(suite, &pk, &msg, &sig).unwrap();
        let file = std::fs::read(dir().join(v["valid"].as_str().unwrap())).unwrap();
        assert_eq!(
            signer.sign(&manifest).encode(),
            file,
            "{name}: signing is deterministic; the signature file must not change"
        );
        assert_eq!(
            SignatureFile::parse(&file)
                .unwrap()
                .verify(&manifest)
                .unwrap(),
            suite
        );
    }
}

#[test]
fn every_invalid_vector_is_refused_for_its_reason() {
    let mut n = 0;
    for suite in Suite::ALL {
        let name = suite.id().to_ascii_lowercase();
        let v = json(&dir().join(format!("{name}.json")));
        let manifest = std::fs::read(dir().join(v["manifest"].as_str().unwrap())).unwrap();
        let cases = v["invalid"].as_object().unwrap();
        assert!(cases.len() >= 4, "{name}: too few negative vectors");
        for (file, expect) in cases {
            let bytes = std::fs::read(dir().join(file)).unwrap();
            let f = SignatureFile::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
            let err = f.verify(&manifest).expect_err(file).to_string();
            let contains = expect["message_contains"].as_str().unwrap();
            assert!(err.contains(contains), "{file}: {err:?} lacks {contains:?}");
            // The class, on the raw bytes.
            let raw_sig = b64(&serde_json::Value::String(f.signature.clone()));
            let raw_pk = b64(&serde_json::Value::String(f.public_key.clone()));
            let file_suite = Suite::from_id(&f.suite).unwrap();
            let got = verify_message(
                file_suite,
                &raw_pk,
                &cerro_core::sign::signed_message(file_suite, &manifest),
                &raw_sig,
            )
            .expect_err(file);
            match (expect["class"].as_str().unwrap(), &got) {
                ("form", VerifyFailure::Form(_)) | ("mismatch", VerifyFailure::Mismatch(_)) => {}
                ("any", _) => {}
                (want, got) => panic!("{file}: expected {want}, got {got:?}"),
            }
            n += 1;
        }
    }
    assert!(n >= 17, "only {n} negative vectors");
    // The hybrid's own list names both halves, swapped halves, wrong key and truncation.
    let v = json(&dir().join("ct-sig-02.json"));
    for case in [
        "flipped-bit-ed25519-half",
        "flipped-bit-ml-dsa-half",
        "swapped-halves",
        "wrong-public-key",
        "truncated",
    ] {
        assert!(
            v["invalid"].get(format!("ct-sig-02/{case}.sig")).is_some(),
            "{case} missing"
        );
    }
}
