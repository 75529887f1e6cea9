//! Signature suites, the exact message that is signed, and detached signature files
//! (`cerro/signatures/<key_id>.sig`). Specified in `spec/signature.md`.

use crate::ids::{Fingerprint, KeyId};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Domain separator that starts every signed message. Changing it breaks every signature.
pub const SIGNATURE_DOMAIN_V1: &[u8] = b"cerro-torre/manifest-signature/v1\0";
/// Format identifier inside every signature file.
pub const SIGNATURE_FORMAT_V1: &str = "cerro-torre/signature/v1";
/// Largest signature file accepted (an ML-DSA-87 hybrid one is under 16 KiB).
pub const SIGNATURE_MAX_BYTES: usize = 64 * 1024;

/// A signature suite. Only CT-SIG-01 is implemented; the others are named so that bundles using
/// them get a clear "unsupported suite" error rather than a parse failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suite {
    /// Ed25519 (RFC 8032), deterministic signatures.
    CtSig01,
}

impl Suite {
    pub const fn id(self) -> &'static str {
        match self {
            Suite::CtSig01 => "CT-SIG-01",
        }
    }
    pub fn from_id(s: &str) -> Option<Self> {
        match s {
            "CT-SIG-01" => Some(Suite::CtSig01),
            _ => None,
        }
    }
    pub const fn description(self) -> &'static str {
        match self {
            Suite::CtSig01 => "Ed25519",
        }
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

/// A key that can sign: its id and the Ed25519 secret.
pub struct Signer {
    pub key_id: KeyId,
    key: SigningKey,
}

impl Signer {
    pub fn from_seed(key_id: KeyId, seed: &[u8; 32]) -> Self {
        Self {
            key_id,
            key: SigningKey::from_bytes(seed),
        }
    }
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_public_key(&self.public_key())
    }
    /// Sign canonical manifest bytes under CT-SIG-01.
    pub fn sign(&self, manifest: &[u8]) -> SignatureFile {
        let sig = self.key.sign(&signed_message(Suite::CtSig01, manifest));
        SignatureFile {
            format: SIGNATURE_FORMAT_V1.into(),
            suite: Suite::CtSig01.id().into(),
            key_id: self.key_id.clone(),
            fingerprint: self.fingerprint(),
            public_key: B64.encode(self.public_key()),
            signature: B64.encode(sig.to_bytes()),
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
                "unsupported suite {:?} (this ct verifies CT-SIG-01)",
                self.suite
            ))
        })?;
        let pk: [u8; 32] = B64
            .decode(&self.public_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| invalid("public key is not 32 bytes of base64".into()))?;
        if Fingerprint::of_public_key(&pk) != self.fingerprint {
            return Err(invalid(format!(
                "the file claims fingerprint {} but its public key has {}",
                self.fingerprint,
                Fingerprint::of_public_key(&pk)
            )));
        }
        let sig: [u8; 64] = B64
            .decode(&self.signature)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| invalid("signature is not 64 bytes of base64".into()))?;
        let vk = VerifyingKey::from_bytes(&pk)
            .map_err(|_| invalid("public key is not a valid Ed25519 point".into()))?;
        // Strict Ed25519 (spec/signature.md §1.1): A canonically encoded and not of small
        // order, R canonically encoded and not of small order, S < L, and [S]B = R + [k]A.
        // `verify_strict` checks all but A's encoding (it decodes y >= p as y - p).
        if vk.to_edwards().compress().to_bytes() != pk {
            return Err(invalid(
                "public key is not a canonical Ed25519 encoding".into(),
            ));
        }
        if vk.is_weak() {
            return Err(invalid(
                "public key is a point of small order, which signs anything".into(),
            ));
        }
        vk.verify_strict(&signed_message(suite, manifest), &Signature::from_bytes(&sig))
            .map_err(|_| invalid("the signature does not match the manifest bytes (the manifest was changed after signing, or the signature was made over other bytes)".into()))?;
        Ok(suite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut suite = parsed.clone();
        suite.suite = "CT-SIG-03".into();
        assert!(suite.verify(b"manifest bytes").is_err());
    }

    #[test]
    fn deterministic() {
        let s = Signer::from_seed(KeyId::new("a").unwrap(), &[3u8; 32]);
        assert_eq!(s.sign(b"x").encode(), s.sign(b"x").encode());
    }
}
