//! Signature suites, the exact message that is signed, and detached signature files
//! (`cerro/signatures/<key_id>.sig`). Specified in `spec/signature.md`.

use crate::ids::{Fingerprint, KeyId};
use crate::mldsa::{self, MlDsa87Key};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Domain separator that starts every signed message. Changing it breaks every signature.
pub const SIGNATURE_DOMAIN_V1: &[u8] = b"cerro-torre/manifest-signature/v1\0";
/// Format identifier inside every signature file.
pub const SIGNATURE_FORMAT_V1: &str = "cerro-torre/signature/v1";
/// Largest signature file accepted (a CT-SIG-02 one is about 10 KiB).
pub const SIGNATURE_MAX_BYTES: usize = 64 * 1024;
/// Bytes of an Ed25519 public key, signature and seed (RFC 8032). Format constants.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
pub const ED25519_SIGNATURE_LEN: usize = 64;
pub const ED25519_SEED_LEN: usize = 32;

/// A signature suite (spec/signature.md §1). Ordered CT-SIG-01 < CT-SIG-02 < CT-SIG-03, the
/// order policies use for `suites.minimum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suite {
    /// Ed25519 (RFC 8032), deterministic signatures, strict verification.
    CtSig01,
    /// Hybrid: Ed25519 and ML-DSA-87 over the same message; valid only when both verify.
    CtSig02,
    /// ML-DSA-87 (FIPS 204) alone, deterministic variant.
    CtSig03,
}

impl Suite {
    /// Every suite this code signs and verifies, in order.
    pub const ALL: [Suite; 3] = [Suite::CtSig01, Suite::CtSig02, Suite::CtSig03];

    pub const fn id(self) -> &'static str {
        match self {
            Suite::CtSig01 => "CT-SIG-01",
            Suite::CtSig02 => "CT-SIG-02",
            Suite::CtSig03 => "CT-SIG-03",
        }
    }
    pub fn from_id(s: &str) -> Option<Self> {
        Suite::ALL.into_iter().find(|x| x.id() == s)
    }
    pub const fn description(self) -> &'static str {
        match self {
            Suite::CtSig01 => "Ed25519",
            Suite::CtSig02 => "hybrid Ed25519 + ML-DSA-87",
            Suite::CtSig03 => "ML-DSA-87",
        }
    }
    /// Bytes of the raw public key: Ed25519 ‖ ML-DSA-87 for the hybrid.
    pub const fn public_key_len(self) -> usize {
        match self {
            Suite::CtSig01 => ED25519_PUBLIC_KEY_LEN,
            Suite::CtSig02 => ED25519_PUBLIC_KEY_LEN + mldsa::PUBLIC_KEY_LEN,
            Suite::CtSig03 => mldsa::PUBLIC_KEY_LEN,
        }
    }
    /// Bytes of the raw signature: Ed25519 ‖ ML-DSA-87 for the hybrid.
    pub const fn signature_len(self) -> usize {
        match self {
            Suite::CtSig01 => ED25519_SIGNATURE_LEN,
            Suite::CtSig02 => ED25519_SIGNATURE_LEN + mldsa::SIGNATURE_LEN,
            Suite::CtSig03 => mldsa::SIGNATURE_LEN,
        }
    }
    /// Bytes of the secret seed a key file seals: Ed25519 seed ‖ ML-DSA-87 ξ for the hybrid.
    pub const fn seed_len(self) -> usize {
        match self {
            Suite::CtSig01 => ED25519_SEED_LEN,
            Suite::CtSig02 => ED25519_SEED_LEN + mldsa::SEED_LEN,
            Suite::CtSig03 => mldsa::SEED_LEN,
        }
    }
    /// Every suite id, for messages: `CT-SIG-01, CT-SIG-02, CT-SIG-03`.
    pub fn all_ids() -> String {
        Suite::ALL.map(Suite::id).join(", ")
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// The exact bytes a signer signs: domain, suite id, NUL, then the canonical manifest bytes.
/// Binding the suite id means a signature cannot be replayed under another algorithm.
pub fn signed_message(suite: Suite, manifest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN_V1.len() + 16 + manifest.len());
    m.extend_from_slice(SIGNATURE_DOMAIN_V1);
    m.extend_from_slice(suite.id().as_bytes());
    m.push(0);
    m.extend_from_slice(manifest);
    m
}

/// A detached signature file as stored in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: String,
    pub suite: String,
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    /// Raw public key, base64 (standard alphabet, padded).
    pub public_key: String,
    /// Raw signature, base64.
    pub signature: String,
}

/// Why a signature file is unusable. `Malformed` is bad input (exit 10); `Invalid` means the
/// cryptography says no (exit 2).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature file is malformed: {0}")]
    Malformed(String),
    #[error("signature by key {key_id} ({fingerprint}) is invalid: {why}")]
    Invalid {
        key_id: KeyId,
        fingerprint: Fingerprint,
        why: String,
    },
}

/// The secret half of a key, per suite.
enum Secret {
    Ed25519(SigningKey),
    Hybrid(SigningKey, MlDsa87Key),
    MlDsa87(MlDsa87Key),
}

/// A key that can sign: its id, its suite and the secret.
pub struct Signer {
    pub key_id: KeyId,
    secret: Secret,
}

fn ed25519_from(seed: &[u8]) -> SigningKey {
    let seed: &[u8; ED25519_SEED_LEN] = seed.try_into().expect("callers pass 32 bytes");
    SigningKey::from_bytes(seed)
}

fn mldsa_from(seed: &[u8]) -> MlDsa87Key {
    let seed: &[u8; mldsa::SEED_LEN] = seed.try_into().expect("callers pass 32 bytes");
    MlDsa87Key::from_seed(seed)
}

impl Signer {
    /// A CT-SIG-01 (Ed25519) signer from its 32-byte seed.
    pub fn from_seed(key_id: KeyId, seed: &[u8; 32]) -> Self {
        Self {
            key_id,
            secret: Secret::Ed25519(SigningKey::from_bytes(seed)),
        }
    }

    /// A signer of any suite from its seed ([`Suite::seed_len`] bytes: the Ed25519 seed, the
    /// ML-DSA-87 seed ξ, or for CT-SIG-02 the Ed25519 seed followed by ξ).
    pub fn from_suite_seed(
        key_id: KeyId,
        suite: Suite,
        seed: &[u8],
    ) -> Result<Self, SignatureError> {
        if seed.len() != suite.seed_len() {
            return Err(SignatureError::Malformed(format!(
                "a {suite} seed is {} bytes, not {}",
                suite.seed_len(),
                seed.len()
            )));
        }
        let secret = match suite {
            Suite::CtSig01 => Secret::Ed25519(ed25519_from(seed)),
            Suite::CtSig02 => Secret::Hybrid(
                ed25519_from(&seed[..ED25519_SEED_LEN]),
                mldsa_from(&seed[ED25519_SEED_LEN..]),
            ),
            Suite::CtSig03 => Secret::MlDsa87(mldsa_from(seed)),
        };
        Ok(Self { key_id, secret })
    }

    /// A new key of `suite` from fresh operating-system randomness; returns the seed too, for
    /// sealing into a key file.
    pub fn generate(
        key_id: KeyId,
        suite: Suite,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), getrandom::Error> {
        let mut seed = Zeroizing::new(vec![0u8; suite.seed_len()]);
        getrandom::getrandom(&mut seed)?;
        let signer = Self::from_suite_seed(key_id, suite, &seed).expect("the seed has its length");
        Ok((signer, seed))
    }

    pub fn suite(&self) -> Suite {
        match self.secret {
            Secret::Ed25519(_) => Suite::CtSig01,
            Secret::Hybrid(..) => Suite::CtSig02,
            Secret::MlDsa87(_) => Suite::CtSig03,
        }
    }

    /// The raw public key ([`Suite::public_key_len`] bytes).
    pub fn public_key(&self) -> Vec<u8> {
        match &self.secret {
            Secret::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
            Secret::Hybrid(e, m) => {
                let mut pk = e.verifying_key().to_bytes().to_vec();
                pk.extend_from_slice(&m.public_key());
                pk
            }
            Secret::MlDsa87(m) => m.public_key(),
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_public_key(&self.public_key())
    }

    /// The raw signature over an already built message (for test vectors and interop).
    pub fn sign_message(&self, message: &[u8]) -> Vec<u8> {
        match &self.secret {
            Secret::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            Secret::Hybrid(e, m) => {
                let mut sig = e.sign(message).to_bytes().to_vec();
                sig.extend_from_slice(&m.sign(message));
                sig
            }
            Secret::MlDsa87(m) => m.sign(message),
        }
    }

    /// An Ed25519 signature over an OSTree commit object, as OSTree's `ostree.sign.ed25519`
    /// holds them (the commit's bytes, no domain separator: OSTree verifies exactly those), and
    /// the Ed25519 public key a host configures to accept it. `None` for a key without an
    /// Ed25519 part (CT-SIG-03); a hybrid key signs with its Ed25519 half. Refuses a message
    /// that starts with ct's own manifest-signature domain, so such a signature can never be
    /// taken for a manifest signature.
    pub fn sign_ostree_commit(&self, commit: &[u8]) -> Option<([u8; 64], [u8; 32])> {
        if commit.starts_with(SIGNATURE_DOMAIN_V1) {
            return None;
        }
        let k = match &self.secret {
            Secret::Ed25519(k) | Secret::Hybrid(k, _) => k,
            Secret::MlDsa87(_) => return None,
        };
        Some((k.sign(commit).to_bytes(), k.verifying_key().to_bytes()))
    }

    /// Sign canonical manifest bytes under this key's suite. Deterministic in every suite.
    pub fn sign(&self, manifest: &[u8]) -> SignatureFile {
        let suite = self.suite();
        let public_key = self.public_key();
        SignatureFile {
            format: SIGNATURE_FORMAT_V1.into(),
            suite: suite.id().into(),
            key_id: self.key_id.clone(),
            fingerprint: Fingerprint::of_public_key(&public_key),
            public_key: B64.encode(&public_key),
            signature: B64.encode(self.sign_message(&signed_message(suite, manifest))),
        }
    }
}

/// A strict Ed25519 public key (spec/signature.md §1.1 rules 1–2): a canonical encoding of a
/// point that is not of small order. `verify_strict` checks the rest, but not A's encoding (it
/// decodes y >= p as y - p), so that is checked here, for signatures and key files alike.
fn ed25519_key(pk: &[u8]) -> Result<VerifyingKey, String> {
    let bytes: [u8; ED25519_PUBLIC_KEY_LEN] = pk
        .try_into()
        .map_err(|_| "the Ed25519 public key is not 32 bytes".to_string())?;
    let vk = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "public key is not a valid Ed25519 point".to_string())?;
    if vk.to_edwards().compress().to_bytes() != bytes {
        return Err("public key is not a canonical Ed25519 encoding".into());
    }
    if vk.is_weak() {
        return Err("public key is a point of small order, which signs anything".into());
    }
    Ok(vk)
}

/// Whether `public_key` is a well-formed raw public key of `suite`; says what is wrong.
pub fn check_public_key(suite: Suite, public_key: &[u8]) -> Result<(), String> {
    if public_key.len() != suite.public_key_len() {
        return Err(format!(
            "the public key is {} bytes; {suite} public keys are {} bytes",
            public_key.len(),
            suite.public_key_len()
        ));
    }
    if matches!(suite, Suite::CtSig01 | Suite::CtSig02) {
        ed25519_key(&public_key[..ED25519_PUBLIC_KEY_LEN])?;
    }
    // Every 2592-byte string is an ML-DSA-87 public key encoding (pkDecode cannot fail).
    Ok(())
}

/// Why a raw signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The key or signature is not a well-formed encoding of its suite (wrong size, not a
    /// point, a malformed ML-DSA hint): no message could verify under it.
    Form(String),
    /// Well formed, but it does not verify over this message. For CT-SIG-02, which halves fail.
    Mismatch(String),
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyFailure::Form(s) | VerifyFailure::Mismatch(s) => f.write_str(s),
        }
    }
}

/// Strict Ed25519 verification of one signature (CT-SIG-01, and the first half of CT-SIG-02).
fn verify_ed25519(pk: &[u8], message: &[u8], sig: &[u8]) -> Result<(), VerifyFailure> {
    use VerifyFailure::*;
    let sig: [u8; ED25519_SIGNATURE_LEN] = sig
        .try_into()
        .map_err(|_| Form("the Ed25519 signature is not 64 bytes".into()))?;
    let vk = ed25519_key(pk).map_err(Form)?;
    vk.verify_strict(message, &Signature::from_bytes(&sig))
        .map_err(|_| Mismatch("the Ed25519 signature does not match".into()))
}

fn verify_mldsa(pk: &[u8], message: &[u8], sig: &[u8]) -> Result<(), VerifyFailure> {
    match mldsa::verify(pk, message, sig) {
        Ok(()) => Ok(()),
        Err(mldsa::VerifyError::Mismatch) => Err(VerifyFailure::Mismatch(
            "the ML-DSA-87 signature does not match".into(),
        )),
        Err(mldsa::VerifyError::Form(why)) => Err(VerifyFailure::Form(why.into())),
    }
}

/// Verify a raw signature of `suite` over an already built message. Both halves of a hybrid
/// are always checked, so the error names each one that failed.
pub fn verify_message(
    suite: Suite,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyFailure> {
    use VerifyFailure::*;
    check_public_key(suite, public_key).map_err(Form)?;
    if signature.len() != suite.signature_len() {
        return Err(Form(format!(
            "the signature is {} bytes; {suite} signatures are {} bytes",
            signature.len(),
            suite.signature_len()
        )));
    }
    match suite {
        Suite::CtSig01 => verify_ed25519(public_key, message, signature),
        Suite::CtSig03 => verify_mldsa(public_key, message, signature),
        Suite::CtSig02 => {
            let (epk, mpk) = public_key.split_at(ED25519_PUBLIC_KEY_LEN);
            let (esig, msig) = signature.split_at(ED25519_SIGNATURE_LEN);
            match (
                verify_ed25519(epk, message, esig),
                verify_mldsa(mpk, message, msig),
            ) {
                (Ok(()), Ok(())) => Ok(()),
                (Err(Form(e)), _) | (_, Err(Form(e))) => Err(Form(e)),
                (Err(e), Ok(())) => Err(Mismatch(format!(
                    "{e}; its ML-DSA-87 half verifies, but both halves must"
                ))),
                (Ok(()), Err(m)) => Err(Mismatch(format!(
                    "{m}; its Ed25519 half verifies, but both halves must"
                ))),
                (Err(e), Err(m)) => Err(Mismatch(format!("{e}, and {m}"))),
            }
        }
    }
}

impl SignatureFile {
    /// Parse a signature file; checks form only, not the signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, SignatureError> {
        if bytes.len() > SIGNATURE_MAX_BYTES {
            return Err(SignatureError::Malformed(format!(
                "larger than {SIGNATURE_MAX_BYTES} bytes"
            )));
        }
        let s: SignatureFile =
            serde_json::from_slice(bytes).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        if s.format != SIGNATURE_FORMAT_V1 {
            return Err(SignatureError::Malformed(format!(
                "unsupported format {:?}",
                s.format
            )));
        }
        Ok(s)
    }

    /// The canonical file bytes: pretty JSON in field order, LF, trailing newline.
    pub fn encode(&self) -> Vec<u8> {
        let mut v =
            serde_json::to_vec_pretty(self).expect("serializing a struct of strings cannot fail");
        v.push(b'\n');
        v
    }

    /// File name inside `cerro/signatures/`.
    pub fn file_name(&self) -> String {
        format!("{}.sig", self.key_id)
    }

    /// Check the signature over `manifest`. On success returns the suite.
    pub fn verify(&self, manifest: &[u8]) -> Result<Suite, SignatureError> {
        let invalid = |why: String| SignatureError::Invalid {
            key_id: self.key_id.clone(),
            fingerprint: self.fingerprint,
            why,
        };
        let suite = Suite::from_id(&self.suite).ok_or_else(|| {
            invalid(format!(
                "unsupported suite {:?} (this ct verifies {})",
                self.suite,
                Suite::all_ids()
            ))
        })?;
        let pk = B64
            .decode(&self.public_key)
            .map_err(|_| invalid("public key is not base64".into()))?;
        if Fingerprint::of_public_key(&pk) != self.fingerprint {
            return Err(invalid(format!(
                "the file claims fingerprint {} but its public key has {}",
                self.fingerprint,
                Fingerprint::of_public_key(&pk)
            )));
        }
        let sig = B64
            .decode(&self.signature)
            .map_err(|_| invalid("signature is not base64".into()))?;
        verify_message(suite, &pk, &signed_message(suite, manifest), &sig).map_err(|f| match f {
            VerifyFailure::Form(why) => invalid(why),
            VerifyFailure::Mismatch(why) => {
                let detail = match suite {
                    Suite::CtSig01 => String::new(),
                    _ => format!("{why}; "),
                };
                invalid(format!("the signature does not match the manifest bytes ({detail}the manifest was changed after signing, or the signature was made over other bytes)"))
            }
        })?;
        Ok(suite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(suite: Suite) -> Signer {
        let seed: Vec<u8> = (0..suite.seed_len() as u8).collect();
        Signer::from_suite_seed(KeyId::new("alice").unwrap(), suite, &seed).unwrap()
    }

    #[test]
    fn sign_verify_and_tamper() {
        let s = Signer::from_seed(KeyId::new("alice").unwrap(), &[9u8; 32]);
        let sig = s.sign(b"manifest bytes");
        let parsed = SignatureFile::parse(&sig.encode()).unwrap();
        assert_eq!(parsed.verify(b"manifest bytes").unwrap(), Suite::CtSig01);
        assert!(matches!(
            parsed.verify(b"manifest bytez"),
            Err(SignatureError::Invalid { .. })
        ));
        let mut other = parsed.clone();
        other.fingerprint = Fingerprint::of_public_key(&[1u8; 32]);
        assert!(other.verify(b"manifest bytes").is_err());
        // Relabelled under another suite: the message (and the sizes) differ.
        for label in ["CT-SIG-02", "CT-SIG-03", "CT-SIG-99", "ct-sig-01", ""] {
            let mut suite = parsed.clone();
            suite.suite = label.into();
            assert!(suite.verify(b"manifest bytes").is_err(), "{label}");
        }
    }

    #[test]
    fn every_suite_signs_deterministically_and_verifies() {
        for suite in Suite::ALL {
            let s = signer(suite);
            assert_eq!(s.suite(), suite);
            assert_eq!(s.public_key().len(), suite.public_key_len());
            let f = s.sign(b"m");
            assert_eq!(f.suite, suite.id());
            assert_eq!(
                f.encode(),
                s.sign(b"m").encode(),
                "{suite} is deterministic"
            );
            assert!(f.encode().len() < SIGNATURE_MAX_BYTES);
            let parsed = SignatureFile::parse(&f.encode()).unwrap();
            assert_eq!(parsed.verify(b"m").unwrap(), suite);
            assert!(parsed.verify(b"n").is_err());
            let raw = B64.decode(&f.signature).unwrap();
            assert_eq!(raw.len(), suite.signature_len());
        }
    }

    #[test]
    fn hybrid_needs_both_halves() {
        let s = signer(Suite::CtSig02);
        let msg = signed_message(Suite::CtSig02, b"m");
        let pk = s.public_key();
        let sig = s.sign_message(&msg);
        verify_message(Suite::CtSig02, &pk, &msg, &sig).unwrap();
        // A flipped bit in the Ed25519 half, then in the ML-DSA-87 half.
        for (at, names) in [(10, "Ed25519"), (ED25519_SIGNATURE_LEN + 10, "ML-DSA-87")] {
            let mut bad = sig.clone();
            bad[at] ^= 0x01;
            let e = verify_message(Suite::CtSig02, &pk, &msg, &bad).unwrap_err();
            assert!(
                matches!(&e, VerifyFailure::Mismatch(m) if m.starts_with(&format!("the {names} signature does not match"))),
                "{e:?}"
            );
        }
        // Halves swapped: same length, nothing verifies.
        let mut swapped = sig[ED25519_SIGNATURE_LEN..].to_vec();
        swapped.extend_from_slice(&sig[..ED25519_SIGNATURE_LEN]);
        assert!(verify_message(Suite::CtSig02, &pk, &msg, &swapped).is_err());
        // Either half alone, or a truncated signature: the size says no.
        for short in [
            &sig[..ED25519_SIGNATURE_LEN],
            &sig[ED25519_SIGNATURE_LEN..],
            &sig[..sig.len() - 1],
        ] {
            let e = verify_message(Suite::CtSig02, &pk, &msg, short).unwrap_err();
            assert!(matches!(e, VerifyFailure::Form(_)), "{e:?}");
        }
        // The Ed25519 half is no CT-SIG-01 signature: the suite id is part of the message.
        let msg01 = signed_message(Suite::CtSig01, b"m");
        assert!(verify_message(
            Suite::CtSig01,
            &pk[..ED25519_PUBLIC_KEY_LEN],
            &msg01,
            &sig[..ED25519_SIGNATURE_LEN]
        )
        .is_err());
        // Nor is the ML-DSA-87 half a CT-SIG-03 signature.
        let msg03 = signed_message(Suite::CtSig03, b"m");
        assert!(verify_message(
            Suite::CtSig03,
            &pk[ED25519_PUBLIC_KEY_LEN..],
            &msg03,
            &sig[ED25519_SIGNATURE_LEN..]
        )
        .is_err());
    }

    #[test]
    fn seeds_of_the_wrong_length_are_refused() {
        for suite in Suite::ALL {
            let bad = vec![0u8; suite.seed_len() + 1];
            assert!(Signer::from_suite_seed(KeyId::new("k").unwrap(), suite, &bad).is_err());
        }
    }

    #[test]
    fn deterministic() {
        let s = Signer::from_seed(KeyId::new("a").unwrap(), &[3u8; 32]);
        assert_eq!(s.sign(b"x").encode(), s.sign(b"x").encode());
    }
}
