//! ML-DSA-87 (FIPS 204, final) for the post-quantum suites CT-SIG-02 and CT-SIG-03, through the
//! RustCrypto `ml-dsa` crate: keys from a 32-byte seed ξ (`ML-DSA.KeyGen_internal`), pure
//! ML-DSA with an empty context string, and the deterministic signing variant (rnd = 0^32), so
//! the same key and message always give the same signature — and the same bundle.

use ml_dsa::{EncodedSignature, EncodedVerifyingKey, MlDsa87, Signature, SigningKey, VerifyingKey};

/// Bytes of an ML-DSA-87 public key (`pkEncode`, FIPS 204 Table 2). A format constant.
pub const PUBLIC_KEY_LEN: usize = 2592;
/// Bytes of an ML-DSA-87 signature (`sigEncode`, FIPS 204 Table 2). A format constant.
pub const SIGNATURE_LEN: usize = 4627;
/// Bytes of the key generation seed ξ. A format constant.
pub const SEED_LEN: usize = 32;
/// The FIPS 204 context string every Cerro Torre signature uses: empty (the signed message
/// carries its own domain separation, spec/signature.md §2).
pub const CONTEXT: &[u8] = b"";

/// An ML-DSA-87 signing key, derived from its seed. Boxed: the expanded key is ~100 KiB.
pub struct MlDsa87Key(Box<SigningKey<MlDsa87>>);

impl MlDsa87Key {
    /// `ML-DSA.KeyGen_internal(ξ)`: the same seed always gives the same key pair.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let xi = ml_dsa::Seed::from(*seed);
        Self(Box::new(SigningKey::<MlDsa87>::from_seed(&xi)))
    }

    /// The encoded public key (`pkEncode`), [`PUBLIC_KEY_LEN`] bytes.
    pub fn public_key(&self) -> Vec<u8> {
        use ml_dsa::Keypair as _;
        self.0.verifying_key().encode().to_vec()
    }

    /// Deterministic `ML-DSA.Sign(sk, message, ctx = "")`, [`SIGNATURE_LEN`] bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        // The crate's `Signer` is FIPS 204's deterministic variant with the empty context.
        ml_dsa::Signer::try_sign(&*self.0, message)
            .expect("with an empty context, deterministic ML-DSA signing cannot fail")
            .encode()
            .to_vec()
    }
}

/// Why an ML-DSA-87 signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a well-formed key or signature encoding; says what is wrong.
    Form(&'static str),
    /// Well formed, but not a signature of this message under this key.
    Mismatch,
}

/// `ML-DSA.Verify(pk, message, signature, ctx = "")`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    let pk = EncodedVerifyingKey::<MlDsa87>::try_from(public_key)
        .map_err(|_| VerifyError::Form("the ML-DSA-87 public key is not 2592 bytes"))?;
    let sig = EncodedSignature::<MlDsa87>::try_from(signature)
        .map_err(|_| VerifyError::Form("the ML-DSA-87 signature is not 4627 bytes"))?;
    // sigDecode refuses malformed hints and a z out of range (FIPS 204 Algorithms 27 and 8).
    let sig = Signature::<MlDsa87>::decode(&sig).ok_or(VerifyError::Form(
        "the ML-DSA-87 signature is not a valid encoding (its hint or z is out of range)",
    ))?;
    if VerifyingKey::<MlDsa87>::decode(&pk).verify_with_context(message, CONTEXT, &sig) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_determinism_and_tamper() {
        let k = MlDsa87Key::from_seed(&[7u8; 32]);
        let pk = k.public_key();
        assert_eq!(pk.len(), PUBLIC_KEY_LEN);
        let sig = k.sign(b"message");
        assert_eq!(sig.len(), SIGNATURE_LEN);
        assert_eq!(sig, k.sign(b"message"), "deterministic signing");
        assert_eq!(pk, MlDsa87Key::from_seed(&[7u8; 32]).public_key());
        verify(&pk, b"message", &sig).unwrap();
        assert!(verify(&pk, b"messagf", &sig).is_err());
        let mut bad = sig.clone();
        bad[100] ^= 1;
        assert!(verify(&pk, b"message", &bad).is_err());
        assert!(verify(&pk, b"message", &sig[..SIGNATURE_LEN - 1]).is_err());
        assert!(verify(&pk[..100], b"message", &sig).is_err());
        let other = MlDsa87Key::from_seed(&[8u8; 32]).public_key();
        assert!(verify(&other, b"message", &sig).is_err());
        // Random bytes never panic.
        let junk: Vec<u8> = (0..SIGNATURE_LEN).map(|i| (i * 131 % 251) as u8).collect();
        assert!(verify(&pk, b"message", &junk).is_err());
        assert!(verify(&vec![0xff; PUBLIC_KEY_LEN], b"message", &sig).is_err());
    }
}
