//! Regenerates `spec/vectors/signature/suites/`: for each suite (CT-SIG-01, -02, -03), a key
//! from a fixed seed, its signature over the minimal manifest vector, and signature files that
//! MUST NOT verify — a flipped bit (in each half of a hybrid), swapped halves, the wrong public
//! key, a truncated signature, and more. Run through `tools/gen-vectors`; the unit tests in
//! `core/tests/suite_vectors.rs` load the files. A change here is a format change.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cerro_core::sign::{signed_message, SignatureFile, Signer, Suite, ED25519_SIGNATURE_LEN};
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::path::{Path, PathBuf};

/// RFC 8032 §7.1 TEST 1's secret key: the Ed25519 seed of every suite that has an Ed25519 part.
const ED25519_SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// The ML-DSA-87 seed ξ: the bytes 0x00, 0x01, …, 0x1f (any FIPS 204 implementation with a
/// seeded key generation, e.g. dilithium-py's `key_derive`, derives the same key from it).
fn mldsa_seed() -> Vec<u8> {
    (0u8..32).collect()
}
/// A second, unrelated key for the "wrong public key" vectors.
fn other_seed(suite: Suite) -> Vec<u8> {
    vec![0x42; suite.seed_len()]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn seed_of(suite: Suite) -> Vec<u8> {
    match suite {
        Suite::CtSig01 => unhex(ED25519_SEED_HEX),
        Suite::CtSig02 => [unhex(ED25519_SEED_HEX), mldsa_seed()].concat(),
        Suite::CtSig03 => mldsa_seed(),
    }
}

fn write(path: PathBuf, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    println!("wrote {}", path.display());
}

/// The same signature file with another raw signature.
fn with_sig(good: &SignatureFile, sig: &[u8]) -> SignatureFile {
    SignatureFile {
        signature: B64.encode(sig),
        ..good.clone()
    }
}

/// `(name, file, class, message substring)` for every signature of `suite` that must fail:
/// class `form` (not a well-formed signature of the suite), `mismatch` (well formed, does not
/// verify) or `any`.
fn invalid(
    suite: Suite,
    signer: &Signer,
    good: &SignatureFile,
    manifest: &[u8],
) -> Vec<(&'static str, SignatureFile, &'static str, &'static str)> {
    let sig = B64.decode(&good.signature).unwrap();
    let flip = |at: usize| {
        let mut s = sig.clone();
        s[at] ^= 0x01;
        with_sig(good, &s)
    };
    let other = Signer::from_suite_seed(good.key_id.clone(), suite, &other_seed(suite)).unwrap();
    let mut out = vec![
        // The right signature presented with another key (file self-consistent: the fingerprint
        // is the other key's), so only the signature check can catch it.
        (
            "wrong-public-key",
            SignatureFile {
                public_key: B64.encode(other.public_key()),
                fingerprint: other.fingerprint(),
                ..good.clone()
            },
            "mismatch",
            "does not match the manifest bytes",
        ),
        (
            "truncated",
            with_sig(good, &sig[..sig.len() - 1]),
            "form",
            "signatures are",
        ),
        (
            "other-message",
            signer.sign(b"not the minimal manifest"),
            "mismatch",
            "does not match the manifest bytes",
        ),
    ];
    match suite {
        Suite::CtSig01 | Suite::CtSig03 => {
            out.push((
                "flipped-bit",
                flip(sig.len() / 2),
                "mismatch",
                "does not match",
            ));
        }
        Suite::CtSig02 => {
            out.push((
                "flipped-bit-ed25519-half",
                flip(10),
                "mismatch",
                "the Ed25519 signature does not match; its ML-DSA-87 half verifies",
            ));
            out.push((
                "flipped-bit-ml-dsa-half",
                flip(ED25519_SIGNATURE_LEN + 100),
                "mismatch",
                "the ML-DSA-87 signature does not match; its Ed25519 half verifies",
            ));
            let mut swapped = sig[ED25519_SIGNATURE_LEN..].to_vec();
            swapped.extend_from_slice(&sig[..ED25519_SIGNATURE_LEN]);
            out.push(("swapped-halves", with_sig(good, &swapped), "any", ""));
            out.push((
                "ed25519-half-only",
                with_sig(good, &sig[..ED25519_SIGNATURE_LEN]),
                "form",
                "CT-SIG-02 signatures are 4691 bytes",
            ));
            out.push((
                "relabelled-ct-sig-03",
                SignatureFile {
                    suite: Suite::CtSig03.id().into(),
                    ..good.clone()
                },
                "form",
                "CT-SIG-03 public keys are 2592 bytes",
            ));
        }
    }
    if suite == Suite::CtSig03 {
        out.push((
            "context-string",
            with_sig(
                good,
                &ml_dsa_sign_with_context(&signed_message(Suite::CtSig03, manifest)),
            ),
            "mismatch",
            "does not match the manifest bytes",
        ));
    }
    out
}

/// A deterministic ML-DSA-87 signature by the vector key over `message`, with the FIPS 204
/// context string "cerro-torre" instead of the empty one.
fn ml_dsa_sign_with_context(message: &[u8]) -> Vec<u8> {
    use ml_dsa::{MlDsa87, SigningKey};
    let seed: [u8; 32] = mldsa_seed().try_into().unwrap();
    SigningKey::<MlDsa87>::from_seed(&seed.into())
        .expanded_key()
        .sign_deterministic(message, b"cerro-torre")
        .unwrap()
        .encode()
        .to_vec()
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: gen_suite_vectors SPEC_VECTORS_DIR"),
    );
    let manifest = std::fs::read(root.join("manifest/minimal.toml")).unwrap();
    let dir = root.join("signature/suites");
    for suite in Suite::ALL {
        let name = suite.id().to_ascii_lowercase();
        let seed = seed_of(suite);
        let signer =
            Signer::from_suite_seed(KeyId::new("vector-key").unwrap(), suite, &seed).unwrap();
        let good = signer.sign(&manifest);
        assert_eq!(good.verify(&manifest).unwrap(), suite);
        let sub = Path::new(&name);
        write(dir.join(sub).join("valid.sig"), &good.encode());
        let mut expected = serde_json::Map::new();
        for (case, file, class, contains) in invalid(suite, &signer, &good, &manifest) {
            let err = file.verify(&manifest).expect_err(case).to_string();
            assert!(err.contains(contains), "{case}: {err}");
            write(dir.join(sub).join(format!("{case}.sig")), &file.encode());
            expected.insert(
                format!("{name}/{case}.sig"),
                serde_json::json!({"class": class, "message_contains": contains}),
            );
        }
        let msg = signed_message(suite, &manifest);
        let v = serde_json::json!({
            "suite": suite.id(),
            "key_id": "vector-key",
            "seed_hex": hex(&seed),
            "public_key_bytes": suite.public_key_len(),
            "signature_bytes": suite.signature_len(),
            "public_key_b64": good.public_key,
            "fingerprint": Fingerprint::of_public_key(&signer.public_key()).to_string(),
            "manifest": "../../manifest/minimal.toml",
            "signed_message_sha256": Sha256Digest::of(&msg).to_string(),
            "signature_b64": good.signature,
            "valid": format!("{name}/valid.sig"),
            "invalid": expected,
        });
        write(
            dir.join(format!("{name}.json")),
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap()).as_bytes(),
        );
    }
}
