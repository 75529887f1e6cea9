//! Key files: passphrase-encrypted secret keys (Argon2id + XChaCha20-Poly1305) and public key
//! files for the trust store, for every suite, each with an optional validity window. Pure
//! functions over bytes; the CLI does the file I/O.

use crate::ids::{Fingerprint, KeyId};
use crate::sign::{check_public_key, Signer, Suite};
use crate::window::{parse_instant, show_instant, KeyWindow};
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
    /// Start of the validity window (spec/signature.md §6), RFC 3339 UTC; absent: open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// End of the validity window (exclusive), RFC 3339 UTC; absent: the key does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
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
    /// Start of the validity window (spec/signature.md §6), RFC 3339 UTC; absent: open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// End of the validity window (exclusive), RFC 3339 UTC; absent: the key does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
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
fn aad(suite: &str, key_id: &KeyId, public_key_b64: &str) -> Vec<u8> {
    format!("{SECRET_KEY_FORMAT_V1}\0{suite}\0{key_id}\0{public_key_b64}").into_bytes()
}

/// Make a new CT-SIG-01 key pair, the secret sealed under `passphrase`.
pub fn generate(
    key_id: KeyId,
    passphrase: &[u8],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    generate_key(key_id, Suite::CtSig01, KeyWindow::default(), passphrase)
}

/// Make a new key pair of `suite` with validity window `window`, the secret sealed under
/// `passphrase`.
pub fn generate_key(
    key_id: KeyId,
    suite: Suite,
    window: KeyWindow,
    passphrase: &[u8],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    let mut seed = Zeroizing::new(vec![0u8; suite.seed_len()]);
    getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    seal_key(key_id, suite, &seed, window, passphrase)
}

/// Seal a known CT-SIG-01 seed (used by `generate` and by test-vector tooling).
pub fn seal(
    key_id: KeyId,
    seed: &[u8; 32],
    passphrase: &[u8],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    seal_key(
        key_id,
        Suite::CtSig01,
        seed,
        KeyWindow::default(),
        passphrase,
    )
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
    seal_key_with(
        key_id,
        Suite::CtSig01,
        seed,
        KeyWindow::default(),
        passphrase,
        salt,
        nonce,
    )
}

/// Seal a known seed of `suite` ([`Suite::seed_len`] bytes) with a validity window.
pub fn seal_key(
    key_id: KeyId,
    suite: Suite,
    seed: &[u8],
    window: KeyWindow,
    passphrase: &[u8],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    seal_key_with(
        key_id,
        suite,
        seed,
        window,
        passphrase,
        &random::<16>()?,
        &random::<24>()?,
    )
}

/// [`seal_key`] with a given salt and nonce (for [`seal_with`]'s reproducible vectors).
fn seal_key_with(
    key_id: KeyId,
    suite: Suite,
    seed: &[u8],
    window: KeyWindow,
    passphrase: &[u8],
    salt: &[u8; 16],
    nonce: &[u8; 24],
) -> Result<(SecretKeyFile, PublicKeyFile), KeyError> {
    window.validate().map_err(KeyError::Malformed)?;
    let signer = Signer::from_suite_seed(key_id.clone(), suite, seed)
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
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
                aad: &aad(suite.id(), &key_id, &public_key),
            },
        )
        .map_err(|_| KeyError::Malformed("encryption failed".into()))?;
    let (not_before, expires) = window_fields(&window);
    let public = PublicKeyFile {
        format: PUBLIC_KEY_FORMAT_V1.into(),
        suite: suite.id().into(),
        key_id: key_id.clone(),
        fingerprint: signer.fingerprint(),
        public_key: public_key.clone(),
        not_before: not_before.clone(),
        expires: expires.clone(),
    };
    let secret = SecretKeyFile {
        format: SECRET_KEY_FORMAT_V1.into(),
        suite: suite.id().into(),
        key_id,
        fingerprint: signer.fingerprint(),
        public_key,
        not_before,
        expires,
        kdf,
        cipher: "xchacha20poly1305".into(),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    };
    Ok((secret, public))
}

/// The `not_before` and `expires` strings of a key file for `window`.
pub fn window_fields(window: &KeyWindow) -> (Option<String>, Option<String>) {
    (
        window.not_before.as_ref().map(show_instant),
        window.expires.as_ref().map(show_instant),
    )
}

/// Read and check the window fields of a key file.
fn read_window(
    not_before: &Option<String>,
    expires: &Option<String>,
) -> Result<KeyWindow, KeyError> {
    let read = |name: &str, v: &Option<String>| match v {
        None => Ok(None),
        Some(s) => parse_instant(s).map(Some).ok_or_else(|| {
            KeyError::Malformed(format!(
                "{name} {s:?} is not a date (YYYY-MM-DD or an RFC 3339 date-time)"
            ))
        }),
    };
    let w = KeyWindow {
        not_before: read("not_before", not_before)?,
        expires: read("expires", expires)?,
    };
    w.validate().map_err(KeyError::Malformed)?;
    Ok(w)
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

/// The suite a key file names, or why it cannot be used.
fn file_suite(suite: &str) -> Result<Suite, KeyError> {
    Suite::from_id(suite).ok_or_else(|| {
        KeyError::Malformed(format!(
            "unsupported suite {suite:?} (this ct knows {})",
            Suite::all_ids()
        ))
    })
}

fn decode_public_key(suite: Suite, b64: &str, claimed: &Fingerprint) -> Result<Vec<u8>, KeyError> {
    let pk = B64
        .decode(b64)
        .map_err(|_| KeyError::Malformed("public_key is not base64".into()))?;
    check_public_key(suite, &pk).map_err(KeyError::Malformed)?;
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
        decode_public_key(file_suite(&p.suite)?, &p.public_key, &p.fingerprint)?;
        read_window(&p.not_before, &p.expires)?;
        Ok(p)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
    /// The key's suite (checked by [`PublicKeyFile::parse`]).
    pub fn suite(&self) -> Option<Suite> {
        Suite::from_id(&self.suite)
    }
    /// The key's validity window (checked by [`PublicKeyFile::parse`]; unlimited if unreadable).
    pub fn window(&self) -> KeyWindow {
        read_window(&self.not_before, &self.expires).unwrap_or_default()
    }
    /// Replace the validity window.
    pub fn set_window(&mut self, window: &KeyWindow) {
        (self.not_before, self.expires) = window_fields(window);
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
        if s.cipher != "xchacha20poly1305" {
            return Err(KeyError::Malformed(format!(
                "unsupported cipher {:?}",
                s.cipher
            )));
        }
        decode_public_key(file_suite(&s.suite)?, &s.public_key, &s.fingerprint)?;
        read_window(&s.not_before, &s.expires)?;
        Ok(s)
    }
    /// The key's suite (checked by [`SecretKeyFile::parse`]).
    pub fn suite(&self) -> Option<Suite> {
        Suite::from_id(&self.suite)
    }
    /// The key's validity window (checked by [`SecretKeyFile::parse`]; unlimited if unreadable).
    pub fn window(&self) -> KeyWindow {
        read_window(&self.not_before, &self.expires).unwrap_or_default()
    }
    /// Replace the validity window. The window is not part of the sealed data: changing it
    /// needs no passphrase.
    pub fn set_window(&mut self, window: &KeyWindow) {
        (self.not_before, self.expires) = window_fields(window);
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
            not_before: self.not_before.clone(),
            expires: self.expires.clone(),
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
                        aad: &aad(&self.suite, &self.key_id, &self.public_key),
                    },
                )
                .map_err(|_| KeyError::WrongPassphrase(self.key_id.clone()))?,
        );
        let suite = file_suite(&self.suite)?;
        let signer = Signer::from_suite_seed(self.key_id.clone(), suite, &seed)
            .map_err(|_| bad("ciphertext"))?;
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

    #[test]
    fn every_suite_seals_and_unlocks_with_its_window() {
        let t = |s: &str| parse_instant(s).unwrap();
        for suite in Suite::ALL {
            let w = KeyWindow {
                not_before: None,
                expires: Some(t("2030-01-01")),
            };
            let (sk, pk) = generate_key(KeyId::new("pq").unwrap(), suite, w, b"pass").unwrap();
            assert_eq!(sk.suite, suite.id());
            assert_eq!(pk.expires.as_deref(), Some("2030-01-01T00:00:00Z"));
            let sk = SecretKeyFile::parse(&sk.encode()).unwrap();
            let pk = PublicKeyFile::parse(&pk.encode()).unwrap();
            assert_eq!((sk.window(), pk.window()), (w, w));
            assert_eq!(sk.public(), pk);
            let signer = sk.unlock(b"pass").unwrap();
            assert_eq!(signer.suite(), suite);
            assert_eq!(signer.fingerprint(), pk.fingerprint);
            // The suite is bound to the ciphertext: relabelling it fails authentication.
            let mut relabelled = sk.clone();
            relabelled.suite = Suite::ALL[(suite as usize + 1) % 3].id().into();
            assert!(relabelled.unlock(b"pass").is_err());
            // The window is not: it can be changed without the passphrase.
            let mut moved = sk.clone();
            moved.set_window(&KeyWindow::default());
            assert!(!moved.encode().windows(7).any(|w| w == b"expires"));
            assert!(moved.unlock(b"pass").is_ok());
        }
    }

    #[test]
    fn hostile_key_files_are_refused() {
        let (_, pk) = generate(KeyId::new("k").unwrap(), b"p").unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&pk.encode()).unwrap();
        v["suite"] = "CT-SIG-03".into();
        let e = PublicKeyFile::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("2592 bytes"), "{e}");
        v["suite"] = "CT-SIG-01".into();
        v["expires"] = "2026-13-01".into();
        assert!(PublicKeyFile::parse(v.to_string().as_bytes()).is_err());
        v["expires"] = "2026-01-01".into();
        v["not_before"] = "2026-01-01".into();
        let e = PublicKeyFile::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("must be earlier"), "{e}");
        v["suite"] = "CT-SIG-09".into();
        assert!(PublicKeyFile::parse(v.to_string().as_bytes()).is_err());
    }
}
