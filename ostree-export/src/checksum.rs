//! OSTree object names: a SHA-256 `Checksum` (64 lowercase hex digits in text), the five
//! object types this crate reads or writes, and the loose-object path they give in a repository.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 checksum that names an OSTree object.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// SHA-256 of `bytes` (the name of a metadata object whose serialisation is `bytes`).
    pub fn of(bytes: &[u8]) -> Checksum {
        Checksum(Sha256::digest(bytes).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From the 32 raw bytes OSTree stores inside objects (`ay`).
    pub fn from_slice(bytes: &[u8]) -> Option<Checksum> {
        bytes.try_into().ok().map(Checksum)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

/// Why a text is not a checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an OSTree checksum (64 lowercase hex digits): {0:?}")]
pub struct ChecksumParseError(pub String);

impl FromStr for Checksum {
    type Err = ChecksumParseError;

    /// Exactly 64 lowercase hex digits, as OSTree writes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ChecksumParseError(s.chars().take(80).collect());
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
        Ok(Checksum(out))
    }
}

impl serde::Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// The kinds of object this crate handles (OSTree also has tombstones and payload links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// A content object: a regular file or a symlink with its metadata.
    File,
    /// A directory listing, `(a(say)a(sayay))`.
    DirTree,
    /// A directory's own metadata, `(uuua(ayay))`.
    DirMeta,
    /// A commit, `(a{sv}aya(say)sstayay)`.
    Commit,
    /// A commit's detached metadata, `a{sv}` (signatures); named after the commit, unhashed.
    CommitMeta,
}

impl ObjectType {
    /// The extension of a loose object of this type (`file`, `dirtree`, …); archive
    /// repositories store content objects as `filez`.
    pub fn extension(self, archive: bool) -> &'static str {
        match self {
            ObjectType::File if archive => "filez",
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::CommitMeta => "commitmeta",
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension(false))
    }
}

/// `objects/` subdirectory (first two hex digits) and file name (the rest, dot, extension).
pub(crate) fn loose_name(c: &Checksum, t: ObjectType, archive: bool) -> (String, String) {
    let hex = c.to_hex();
    (
        hex[..2].to_owned(),
        format!("{}.{}", &hex[2..], t.extension(archive)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_strict_parse() {
        let c = Checksum::of(b"");
        let s = c.to_string();
        assert_eq!(
            s,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(s.parse::<Checksum>().unwrap(), c);
        assert!(s.to_uppercase().parse::<Checksum>().is_err());
        assert!(s[1..].parse::<Checksum>().is_err());
        assert!(format!("{s}0").parse::<Checksum>().is_err());
        assert!("é".repeat(32).parse::<Checksum>().is_err());
        let (dir, name) = loose_name(&c, ObjectType::File, true);
        assert_eq!(dir, "e3");
        assert!(name.ends_with(".filez") && name.starts_with("b0c4"));
    }
}
