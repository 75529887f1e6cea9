//! Loads the normative vectors in `spec/vectors/{manifest,signature}` and checks the code
//! against them: canonical bytes, digests (a digest-stability test), signatures and refusals.

use base64::Engine as _;
use cerro_core::manifest::{Manifest, ManifestError};
use cerro_core::sign::{signed_message, SignatureFile, Signer, Suite};
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../spec/vectors")
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn manifest_vectors_encode_to_their_canonical_bytes_and_digest() {
    let dir = vectors().join("manifest");
    let mut n = 0;
    for name in ["minimal", "full"] {
        let mut model = json(&dir.join(format!("{name}.json")));
        let expected = Sha256Digest::parse(model["_expected_sha256"].as_str().unwrap()).unwrap();
        model.as_object_mut().unwrap().remove("_expected_sha256");
        let m: Manifest = serde_json::from_value(model).unwrap();
        let bytes = std::fs::read(dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(
            String::from_utf8(m.encode()).unwrap(),
            String::from_utf8(bytes.clone()).unwrap(),
            "{name}: encoding changed"
        );
        assert_eq!(
            Sha256Digest::of(&bytes),
            expected,
            "{name}: the manifest digest changed — a format change"
        );
        assert_eq!(m.digest(), expected);
        assert_eq!(
            Manifest::parse(&bytes).unwrap(),
            m,
            "{name}: parse does not give the model back"
        );
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn invalid_manifest_vectors_are_refused_for_the_stated_reason() {
    let dir = vectors().join("manifest/invalid");
    let expected = json(&dir.join("expected.json"));
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 15);
    for (file, class) in cases {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let err = Manifest::parse(&bytes).expect_err(file);
        let got = match err {
            ManifestError::NotCanonical { .. } => "not_canonical",
            ManifestError::Syntax(_) | ManifestError::NotUtf8 | ManifestError::TooLarge => "syntax",
            ManifestError::Invalid { .. } => "invalid",
        };
        assert_eq!(got, class.as_str().unwrap(), "{file}: {err}");
    }
}

#[test]
fn signature_vectors_verify_and_are_reproduced() {
    let dir = vectors().join("signature");
    for name in ["minimal", "full"] {
        let v = json(&dir.join(format!("{name}.json")));
        let manifest = std::fs::read(dir.join(v["manifest"].as_str().unwrap())).unwrap();
        let mut seed = [0u8; 32];
        hex::decode_to_slice(v["seed_hex"].as_str().unwrap(), &mut seed).unwrap();
        let signer = Signer::from_seed(KeyId::new(v["key_id"].as_str().unwrap()).unwrap(), &seed);
        let pk = base64::engine::general_purpose::STANDARD
            .decode(v["public_key_b64"].as_str().unwrap())
            .unwrap();
        assert_eq!(signer.public_key().to_vec(), pk);
        assert_eq!(
            Fingerprint::of_public_key(&pk),
            Fingerprint::parse(v["fingerprint"].as_str().unwrap()).unwrap()
        );
        assert_eq!(
            Sha256Digest::of(&signed_message(Suite::CtSig01, &manifest)).to_string(),
            v["signed_message_sha256"].as_str().unwrap()
        );
        let sig = signer.sign(&manifest);
        assert_eq!(
            sig.signature,
            v["signature_b64"].as_str().unwrap(),
            "{name}: Ed25519 is deterministic; the signature must not change"
        );
        let file = std::fs::read(dir.join(v["signature_file"].as_str().unwrap())).unwrap();
        assert_eq!(sig.encode(), file, "{name}: signature file bytes changed");
        let parsed = SignatureFile::parse(&file).unwrap();
        assert_eq!(parsed.verify(&manifest).unwrap(), Suite::CtSig01);
        let mut other = manifest.clone();
        other[0] ^= 1;
        assert!(parsed.verify(&other).is_err());
    }
}

#[test]
fn rfc8032_public_key_matches() {
    // RFC 8032 §7.1 TEST 1: the public key for the vector seed.
    let v = json(&vectors().join("signature/minimal.json"));
    let pk = base64::engine::general_purpose::STANDARD
        .decode(v["public_key_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        hex::encode(pk),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
}
