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

#[test]
fn invalid_signature_vectors_are_refused_strictly() {
    // spec/signature.md §1.1: each file parses (it is well formed) but does not verify, so a
    // bundle carrying it exits 2 — including the small-order forgery that a verifier without
    // the strict rules accepts.
    use cerro_core::sign::SignatureError;
    let dir = vectors().join("signature/invalid");
    let expected = json(&dir.join("expected.json"));
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 5);
    for (file, want) in cases {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let manifest = std::fs::read(dir.join(want["manifest"].as_str().unwrap())).unwrap();
        assert_eq!(want["exit_code"], 2);
        let s = SignatureFile::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        match s.verify(&manifest) {
            Err(e @ SignatureError::Invalid { .. }) => assert!(
                e.to_string().contains(want["reason"].as_str().unwrap()),
                "{file}: {e}"
            ),
            other => panic!("{file}: {other:?}"),
        }
    }
    // The forgery is real: cofactorless verification without the small-order check accepts it
    // for any message.
    let s = SignatureFile::parse(&std::fs::read(dir.join("small-order-key-s-zero.sig")).unwrap())
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pk: [u8; 32] = b64.decode(&s.public_key).unwrap().try_into().unwrap();
    let sig: [u8; 64] = b64.decode(&s.signature).unwrap().try_into().unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    use ed25519_dalek::Verifier as _;
    assert!(vk.verify(b"any message at all", &sig).is_ok());
    assert!(vk.verify_strict(b"any message at all", &sig).is_err());
}

#[test]
fn the_bundle_vector_is_reproduced_byte_for_byte_and_verifies() {
    // spec/bundle.md §2.1: the same image and key give the same bundle bytes.
    use cerro_core::bundle::{scan_bundle, write_bundle, BlobSource, BundleContents, BundleError};
    struct Mem(Vec<Vec<u8>>);
    impl BlobSource for Mem {
        fn open_blob(
            &mut self,
            d: &Sha256Digest,
            _: u64,
        ) -> Result<Box<dyn std::io::Read + Send + '_>, BundleError> {
            let b = self.0.iter().find(|b| Sha256Digest::of(b) == *d).unwrap();
            Ok(Box::new(&b[..]))
        }
    }
    let dir = vectors().join("bundle");
    let v = json(&dir.join("hello.json"));
    let bytes = std::fs::read(dir.join(v["bundle"].as_str().unwrap())).unwrap();
    assert_eq!(
        Sha256Digest::of(&bytes).to_string(),
        v["sha256"].as_str().unwrap(),
        "the bundle vector changed — a format change"
    );
    let raw = scan_bundle(&bytes[..], &mut |_| {}).unwrap();
    let mbytes = raw.manifest.clone().unwrap();
    assert_eq!(
        Sha256Digest::of(&mbytes).to_string(),
        v["bundle_digest"].as_str().unwrap()
    );
    let m = Manifest::parse(&mbytes).unwrap();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(v["signer_seed_hex"].as_str().unwrap(), &mut seed).unwrap();
    let signer = Signer::from_seed(KeyId::new(v["key_id"].as_str().unwrap()).unwrap(), &seed);
    let sigs = [signer.sign(&mbytes)];
    let blobs = &v["blobs"];
    let mut mem = Mem(vec![
        blobs["image"].as_str().unwrap().as_bytes().to_vec(),
        blobs["config"].as_str().unwrap().as_bytes().to_vec(),
        hex::decode(blobs["layer_hex"].as_str().unwrap()).unwrap(),
    ]);
    let contents = BundleContents {
        manifest: &m,
        manifest_bytes: &mbytes,
        signatures: &sigs,
    };
    let rebuilt = write_bundle(Vec::new(), &contents, &mut mem, &mut |_| {}).unwrap();
    assert!(
        rebuilt == bytes,
        "the writer no longer gives the vector's bytes"
    );
    let fp = signer.fingerprint();
    let trust = move |f: &Fingerprint| (*f == fp).then(|| KeyId::new("vector-key").unwrap());
    let rep = cerro_core::verify::verify(
        &raw,
        &cerro_core::verify::VerifyContext {
            trust: &trust,
            policy: None,
            now: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        },
    );
    assert!(rep.ok(), "{:?}", rep.failure);
}

#[test]
fn header_vectors_are_what_the_writer_writes() {
    // spec/bundle.md §2.1: the byte form of every header field.
    let v = json(&vectors().join("bundle/headers.json"));
    for (name, h) in v.as_object().unwrap() {
        let got = cerro_core::bundle::writer::header(
            h["path"].as_str().unwrap(),
            h["size"].as_u64().unwrap(),
            h["dir"].as_bool().unwrap(),
        )
        .unwrap();
        assert_eq!(
            hex::encode(got.as_bytes()),
            h["hex"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn the_secret_key_vector_unlocks_with_its_passphrase_only() {
    // spec/signature.md §4: Argon2id (v1.3, 32-byte output) keys XChaCha20-Poly1305 over the
    // 32-byte seed; the passphrase is the exact bytes (a newline is part of it: only
    // `--passphrase-file` drops one trailing newline before this point).
    use cerro_core::keys::{seal_with, SecretKeyFile};
    let dir = vectors().join("keys");
    let v = json(&dir.join("vector-key.json"));
    let bytes = std::fs::read(dir.join(v["secret_key_file"].as_str().unwrap())).unwrap();
    let file = SecretKeyFile::parse(&bytes).unwrap();
    let pass = v["passphrase"].as_str().unwrap();
    let signer = file.unlock(pass.as_bytes()).unwrap();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(v["seed_hex"].as_str().unwrap(), &mut seed).unwrap();
    let expected = Signer::from_seed(KeyId::new("vector-key").unwrap(), &seed);
    assert_eq!(signer.public_key(), expected.public_key());
    assert!(file.unlock(format!("{pass}\n").as_bytes()).is_err());
    assert!(file.unlock(&pass.as_bytes()[1..]).is_err());
    // The file is reproduced byte for byte from its salt and nonce.
    let (again, public) = seal_with(
        KeyId::new("vector-key").unwrap(),
        &seed,
        pass.as_bytes(),
        &[0x5a; 16],
        &[0xa5; 24],
    )
    .unwrap();
    assert!(
        again.encode() == bytes,
        "the secret key file format changed"
    );
    assert_eq!(
        public.encode(),
        std::fs::read(dir.join(v["public_key_file"].as_str().unwrap())).unwrap()
    );
}
