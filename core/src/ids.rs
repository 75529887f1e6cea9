//! Key identifiers and fingerprints: each is its own type, validated once when it is made.

use crate::digest::Sha256Digest;
use crate::window::KeyWindow;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest key id accepted; key ids become file names, so they stay short.
pub const KEY_ID_MAX_LEN: usize = 64;

/// A signer's chosen name for a key: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
/// It is a label, not an identity: trust is decided by the [`Fingerprint`].
///
/// When the trust store answers a lookup (`VerifyContext::trust`), the name it gives may carry
/// the validity window that trust-store entry sets for the key ([`KeyId::with_window`]); the
/// verifier then refuses the key's signature on a bundle created outside it. The window is not
/// part of the id: equality, ordering, hashing, display and serialization use the name only.
#[derive(Clone)]
pub struct KeyId {
    name: String,
    window: Option<KeyWindow>,
}

impl PartialEq for KeyId {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for KeyId {}
impl std::hash::Hash for KeyId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name.hash(h)
    }
}
impl PartialOrd for KeyId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for KeyId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error(
        "invalid key id {0:?}: use 1-64 characters of A-Z a-z 0-9 . _ -, not starting with . or -"
    )]
    KeyId(String),
    #[error("invalid fingerprint {0:?}: expected 64 hex digits (groups separated by ':' or spaces are fine, an optional \"SHA256:\" prefix too)")]
    Fingerprint(String),
}

impl KeyId {
    pub fn new(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= KEY_ID_MAX_LEN
            && !s.starts_with('.')
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self {
                name: s.to_string(),
                window: None,
            })
        } else {
            Err(IdError::KeyId(s.chars().take(80).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.name
    }
    /// This trust-store name, with the validity window the trust store gives the key (an
    /// unlimited window is the same as none).
    pub fn with_window(mut self, window: KeyWindow) -> Self {
        self.window = (!window.is_unlimited()).then_some(window);
        self
    }
    /// The validity window attached by [`KeyId::with_window`], if any.
    pub fn window(&self) -> Option<&KeyWindow> {
        self.window.as_ref()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.name)
    }
}
impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}
impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of a key's raw public key bytes. Displayed grouped (`SHA256:ab12:cd34:…`) for people,
/// serialized as that same grouped form; parsing accepts any grouping and case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(Sha256Digest);

impl Fingerprint {
    pub fn of_public_key(raw: &[u8]) -> Self {
        Self(Sha256Digest::of(raw))
    }
    /// 64 lowercase hex digits, no grouping.
    pub fn hex(&self) -> String {
        self.0.hex()
    }
    /// Accepts `SHA256:ab12:cd34…`, `ab12 cd34 …`, or plain hex, in any case.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let body = s
            .strip_prefix("SHA256:")
            .or_else(|| s.strip_prefix("sha256:"))
            .unwrap_or(s);
        let h: String = body
            .chars()
            .filter(|c| !matches!(c, ':' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Sha256Digest::parse_hex(&h)
            .map(Self)
            .ok_or_else(|| IdError::Fingerprint(s.chars().take(120).collect()))
    }
}

impl fmt::Display for Fingerprint {
    /// `SHA256:` then 16 groups of 4 hex digits joined by `:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.hex();
        f.write_str("SHA256:")?;
        for (i, chunk) in h.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            f.write_str(std::str::from_utf8(chunk).expect("hex is ascii"))?;
        }
        Ok(())
    }
}
impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        for ok in ["alice", "release-2026.q4", "A_b"] {
            KeyId::new(ok).unwrap();
        }
        for bad in ["", ".hidden", "-x", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(KeyId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprint_forms_agree() {
        let fp = Fingerprint::of_public_key(&[7u8; 32]);
        let shown = fp.to_string();
        assert!(shown.starts_with("SHA256:") && shown.len() == 7 + 64 + 15);
        assert_eq!(Fingerprint::parse(&shown).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&fp.hex()).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&fp.hex().to_uppercase()).unwrap(), fp);
        assert!(Fingerprint::parse("SHA256:abcd").is_err());
    }
}
