//! Key files: passphrase-encrypted secret keys (Argon2id + XChaCha20-Poly1305) and public key
//! files for the trust store. Pure functions over bytes; the CLI does the file I/O.

use crate::ids::{Fingerprint, KeyId};
use crate::sign::{Signer, Suite};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const SECRET_KEY_FORMAT_V1: &str = "cerro-torre/secret-key/v1";
pub const PUBLIC_KEY_FORMAT_V1: &str = "cerro-torre/public-key/v1";
/// Argon2id cost for new keys: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommendation, with
/// memory lowered to keep `ct pack` responsive on small machines). Stored per key, so it can grow.
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
pub const ARGON2_ITERATIONS: u32 = 3;
pub const ARGON2_PARALLELISM: u32 = 1;
/// Upper bounds on costs read from a key file (hostile files must not exhaust memory or time).
const ARGON2_MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const ARGON2_MAX_ITERATIONS: u32 = 64;
const KEY_FILE_MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file is malformed: {0}")]
    Malformed(String),
    #[error("wrong passphrase for key {0} (the key file could not be decrypted)")]
    WrongPassphrase(KeyId),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt: String,
}

/// A secret key as stored on disk (0600): the seed is only present encrypted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyFile {
    pub format: String,
    pub suite: String,
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    pub public_key: String,
    pub kdf: Kdf,
    pub cipher: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// A public key as exported, imported and kept in the trust store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyFile {
    pub format: String,
    pub suite: String,
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    pub public_key: String,
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

fn derive_key(passphrase: &[u8], kdf: &Kdf, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    if kdf.algorithm != "argon2id" {
        return Err(KeyError::Malformed(format!(
            "unsupported kdf {:?}",
            kdf.algorithm
        )));
    }
    if kdf.memory_kib > ARGON2_MAX_MEMORY_KIB
        || kdf.iterations > ARGON2_MAX_ITERATIONS
        || kdf.parallelism == 0
        || kdf.parallelism > 16
    {
        return Err(KeyError::Malformed(
            "kdf cost parameters out of range".into(),
        ));
    }
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| KeyError::Malformed(format!("kdf parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| KeyError::Malformed(format!("kdf: {e}")))?;
    Ok(out)
}

/// Associated data binds the key's identity to its ciphertext, so metadata cannot be swapped.
fn aad(key_id: &KeyId, public_key_b64: &str) -> Vec<u8> {
    format!(
        "{SECRET_KEY_FORMAT_V1}\0{}\0{key_id}\0{public_key_b64}",
        Suite::CtSig01.id()
    )
    .into_bytes()
}

/// Make a new CT-SIG-01 key pair, the secret sealed under `passphrase`.
pub fn generate(
    key_id: KeyId,
    passphrase: &[u8],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    let seed = Zeroizing::new(random::<32>()?);
    seal(key_id, &seed, passphrase)
}

/// Seal a known seed (used by `generate` and by test-vector tooling).
pub fn seal(
    key_id: KeyId,
    seed: &[u8; 32],
    passphrase: &[u8],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    seal_with(key_id, seed, passphrase, &random::<16>()?, &random::<24>()?)
}

/// [`seal`] with a given salt and nonce, so test vectors are reproducible. Never reuse a salt
/// or nonce for a real key.
#[doc(hidden)]
pub fn seal_with(
    key_id: KeyId,
    seed: &[u8; 32],
    passphrase: &[u8],
    salt: &[u8; 16],
    nonce: &[u8; 24],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    let signer = Signer::from_seed(key_id.clone(), seed);
    let public_key = B64.encode(signer.public_key());
    let kdf = Kdf {
        algorithm: "argon2id".into(),
        memory_kib: ARGON2_MEMORY_KIB,
        iterations: ARGON2_ITERATIONS,
        parallelism: ARGON2_PARALLELISM,
        salt: B64.encode(salt),
    };
    let k = derive_key(passphrase, &kdf, salt)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: seed,
                aad: &aad(&key_id, &public_key),
            },
        )
        .map_err(|_| KeyError::Malformed("encryption failed".into()))?;
    let public = PublicKeyFile {
        format: PUBLIC_KEY_FORMAT_V1.into(),
        suite: Suite::CtSig01.id().into(),
        key_id: key_id.clone(),
        fingerprint: signer.fingerprint(),
        public_key: public_key.clone(),
    };
    let secret = SecretKeyFile {
        format: SECRET_KEY_FORMAT_V1.into(),
        suite: Suite::CtSig01.id().into(),
        key_id,
        fingerprint: signer.fingerprint(),
        public_key,
        kdf,
        cipher: "xchacha20poly1305".into(),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    };
    Ok((secret, public))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, KeyError> {
    if bytes.len() > KEY_FILE_MAX_BYTES {
        return Err(KeyError::Malformed("key file is too large".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| KeyError::Malformed(e.to_string()))
}

fn encode_json<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("key structs serialize");
    out.push(b'\n');
    out
}

fn decode_public_key(b64: &str, claimed: &Fingerprint) -> Result<[u8; 32], KeyError> {
    let pk: [u8; 32] = B64
        .decode(b64)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| KeyError::Malformed("public_key is not 32 bytes of base64".into()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&pk)
        .map_err(|_| KeyError::Malformed("public_key is not a valid Ed25519 key".into()))?;
    if Fingerprint::of_public_key(&pk) != *claimed {
        return Err(KeyError::Malformed(format!(
            "fingerprint {claimed} does not match the public key ({})",
            Fingerprint::of_public_key(&pk)
        )));
    }
    Ok(pk)
}

impl PublicKeyFile {
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let p: PublicKeyFile = parse_json(bytes)?;
        if p.format != PUBLIC_KEY_FORMAT_V1 {
            return Err(KeyError::Malformed(format!(
                "not a Cerro Torre public key (format {:?})",
                p.format
            )));
        }
        if Suite::from_id(&p.suite).is_none() {
            return Err(KeyError::Malformed(format!(
                "unsupported suite {:?}",
                p.suite
            )));
        }
        decode_public_key(&p.public_key, &p.fingerprint)?;
        Ok(p)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

impl SecretKeyFile {
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let s: SecretKeyFile = parse_json(bytes)?;
        if s.format != SECRET_KEY_FORMAT_V1 {
            return Err(KeyError::Malformed(format!(
                "not a Cerro Torre secret key (format {:?})",
                s.format
            )));
        }
        if s.cipher != "xchacha20poly1305" || Suite::from_id(&s.suite).is_none() {
            return Err(KeyError::Malformed(format!(
                "unsupported cipher {:?} or suite {:?}",
                s.cipher, s.suite
            )));
        }
        decode_public_key(&s.public_key, &s.fingerprint)?;
        Ok(s)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
    pub fn public(&self) -> PublicKeyFile {
        PublicKeyFile {
            format: PUBLIC_KEY_FORMAT_V1.into(),
            suite: self.suite.clone(),
            key_id: self.key_id.clone(),
            fingerprint: self.fingerprint,
            public_key: self.public_key.clone(),
        }
    }
    /// Decrypt the seed with `passphrase` and return a signer. A wrong passphrase (or a file whose
    /// metadata was altered) fails AEAD authentication and reports `WrongPassphrase`.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Signer, KeyError> {
        let bad = |what: &str| {
            KeyError::Malformed(format!("{what} is not valid base64 of the right length"))
        };
        let salt = B64.decode(&self.kdf.salt).map_err(|_| bad("kdf.salt"))?;
        if !(8..=64).contains(&salt.len()) {
            return Err(bad("kdf.salt"));
        }
        let nonce: [u8; 24] = B64
            .decode(&self.nonce)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("nonce"))?;
        let ct = B64
            .decode(&self.ciphertext)
            .map_err(|_| bad("ciphertext"))?;
        let k = derive_key(passphrase, &self.kdf, &salt)?;
        let cipher = XChaCha20Poly1305::new(k.as_ref().into());
        let seed = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ct,
                        aad: &aad(&self.key_id, &self.public_key),
                    },
                )
                .map_err(|_| KeyError::WrongPassphrase(self.key_id.clone()))?,
        );
        let seed: &[u8; 32] = seed.as_slice().try_into().map_err(|_| bad("ciphertext"))?;
        let signer = Signer::from_seed(self.key_id.clone(), seed);
        if signer.fingerprint() != self.fingerprint {
            return Err(KeyError::Malformed(
                "decrypted key does not match its public key".into(),
            ));
        }
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_unlock_wrong_passphrase() {
        let (sk, pk) = generate(KeyId::new("k").unwrap(), b"correct horse").unwrap();
        let sk2 = SecretKeyFile::parse(&sk.encode()).unwrap();
        assert_eq!(PublicKeyFile::parse(&pk.encode()).unwrap(), pk);
        let signer = sk2.unlock(b"correct horse").unwrap();
        assert_eq!(signer.fingerprint(), pk.fingerprint);
        assert!(matches!(
            sk2.unlock(b"wrong"),
            Err(KeyError::WrongPassphrase(_))
        ));
        let mut renamed = sk2.clone();
        renamed.key_id = KeyId::new("other").unwrap();
        assert!(matches!(
            renamed.unlock(b"correct horse"),
            Err(KeyError::WrongPassphrase(_))
        ));
    }
}
