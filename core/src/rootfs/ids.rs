//! Typed identifiers of the rootfs Merkle DAG (spec/rootfs.md §2): a file's BLAKE3 content root,
//! a directory node digest, the rootfs digest, and a verification block index. None is ever a
//! bare `[u8; 32]` or `u64`, so a directory digest cannot be passed where a file root is meant.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why an identifier string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {what} {found:?}: expected \"{prefix}\" followed by 64 lowercase hex digits")]
pub struct IdParseError {
    pub what: &'static str,
    pub prefix: &'static str,
    pub found: String,
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The text prefix of this identifier (`<prefix><64 hex>`).
            pub const PREFIX: &'static str = $prefix;

            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// The 64 lowercase hex digits without the prefix.
            pub fn hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Parse `<prefix><64 lowercase hex>`; anything else is refused.
            pub fn parse(s: &str) -> Result<Self, IdParseError> {
                let err = || IdParseError {
                    what: $what,
                    prefix: $prefix,
                    found: s.chars().take(100).collect(),
                };
                let h = s.strip_prefix($prefix).ok_or_else(err)?;
                if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(err());
                }
                let mut out = [0u8; 32];
                hex::decode_to_slice(h, &mut out).map_err(|_| err())?;
                Ok(Self(out))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.hex())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_id!(
    /// A regular file's content root: the standard BLAKE3 hash of its bytes (what `b3sum`
    /// prints). Written `blake3:<hex>`.
    Blake3Root,
    "blake3:",
    "BLAKE3 content root"
);
hash_id!(
    /// The digest of one directory node (its canonical encoding hashed in the directory
    /// domain, spec/rootfs.md §5). Written `ctdir:<hex>`.
    DirDigest,
    "ctdir:",
    "directory digest"
);
hash_id!(
    /// The digest that identifies a whole rootfs: the root record (the root directory's own
    /// metadata and its node digest) hashed in the rootfs domain. Written `ctfs:<hex>`.
    RootfsDigest,
    "ctfs:",
    "rootfs digest"
);

impl Blake3Root {
    /// The content root of a byte slice (one-shot; for tests and small data).
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }
}

impl From<blake3::Hash> for Blake3Root {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

/// The index of one verification block of a file (block `i` covers bytes
/// `i * VERIFY_BLOCK_SIZE_V1 ..`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BlockIndex(pub u64);

impl fmt::Display for BlockIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake3_root_of_empty_is_b3sum_of_empty() {
        let r = Blake3Root::of(b"");
        assert_eq!(
            r.to_string(),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(Blake3Root::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn prefixes_are_not_interchangeable() {
        let r = Blake3Root::of(b"x");
        assert!(DirDigest::parse(&r.to_string()).is_err());
        assert!(RootfsDigest::parse(&format!("ctfs:{}", r.hex())).is_ok());
        assert!(Blake3Root::parse(&format!("blake3:{}", r.hex().to_uppercase())).is_err());
        assert!(Blake3Root::parse("blake3:").is_err());
    }
}
