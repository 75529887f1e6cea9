//! The export archive of spec/export.md: its layout (paths and bounds), its index
//! `cerro-export.json` (§3: the model, its canonical encoding, and a decoder for untrusted bytes
//! that checks everything the index alone can show), the deterministic writer (`writer`, §2) and
//! the bounded reader of hostile archives (`reader`, §4). `ct export` and `ct import` only verify
//! bundles, choose trust and policy, and print.

pub mod reader;
pub mod writer;

pub use reader::{ArchivedBundle, ExportReader};
pub use writer::{ExportBundle, ExportWriter};

use crate::bundle::BundleError;
use crate::ids::{Fingerprint, KeyId};
use crate::Sha256Digest;
use serde::{Deserialize, Serialize};

/// The index's path in the archive (always its first entry).
pub const INDEX_FILE: &str = "cerro-export.json";
pub const KEYS_DIR: &str = "keys/";
pub const POLICY_FILE: &str = "policy.json";
pub const BUNDLES_DIR: &str = "bundles/";
pub const BLOBS_DIR: &str = "blobs/";
pub const BLOBS_SHA256_DIR: &str = "blobs/sha256/";
/// Largest public key file accepted on import (untrusted input bound).
pub const KEY_FILE_MAX_BYTES: u64 = 64 << 10;
/// Largest policy accepted on import (untrusted input bound).
pub const POLICY_MAX_BYTES: u64 = 1 << 20;

/// Why an export archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The archive, or a bundle in it, breaks a rule of spec/export.md (exit 10).
    #[error("{0}")]
    Malformed(String),
    /// Reading or writing failed (exit 11).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Bytes differ from the digest that names them (exit 1).
    #[error("{0}")]
    Mismatch(String),
    /// A bundle was given where an export archive was expected (a usage error).
    #[error("{} is a bundle, not an export archive", .0.display())]
    IsBundle(std::path::PathBuf),
    /// Bundles given to the writer (indices in the order given) hold the same signed manifest
    /// with different signatures: their directories would collide (a usage error).
    #[error("bundles {0} and {1} hold the same signed manifest with different signatures")]
    SameManifest(usize, usize),
    /// Bundles given to the writer (indices in the order given) have the same file name.
    #[error("bundles {0} and {1} have the same file name")]
    SameFileName(usize, usize),
}

impl ExportError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A bundle error, its message prefixed with where it happened.
    pub(crate) fn from_bundle(at: &str, e: BundleError) -> Self {
        match e {
            BundleError::Malformed(m) => Self::Malformed(format!("{at}: {m}")),
            BundleError::Io { context, source } => Self::Io {
                context: format!("{at}: {context}"),
                source,
            },
            BundleError::Mismatch(m) => Self::Mismatch(format!("{at}: {m}")),
        }
    }
}

/// Format identifier in `cerro-export.json`. Changing it breaks every archive already written.
pub const EXPORT_FORMAT_V1: &str = "cerro-torre/export/v1";
/// Largest index accepted on import (untrusted input bound).
pub const INDEX_MAX_BYTES: u64 = 16 << 20;
/// Most bundles in one archive (untrusted input bound).
pub const MAX_BUNDLES: usize = 4096;

/// `cerro-export.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportIndex {
    pub format: String,
    /// Sorted by bundle digest.
    pub bundles: Vec<ExportedBundle>,
    /// Key files under `keys/`, sorted by key id.
    pub keys: Vec<ExportedKey>,
    /// Whether `policy.json` is present.
    pub policy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedBundle {
    /// File name the bundle had (and gets back on import).
    pub file: String,
    pub name: String,
    pub version: String,
    /// SHA-256 of its `cerro/manifest.toml`; its directory is `bundles/<hex>/`.
    pub bundle_digest: Sha256Digest,
    pub image_digest: Sha256Digest,
    /// Size and SHA-256 of the whole `.ctp` file as exported.
    pub file_size: u64,
    pub file_digest: Sha256Digest,
    /// Key ids of its signatures.
    pub signers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedKey {
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
}

/// A valid bundle file name in an archive: a plain name ending in `.ctp`.
pub fn valid_file_name(s: &str) -> bool {
    s.len() <= 255
        && s.ends_with(".ctp")
        && s.len() > 4
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+@".contains(&b))
}

impl ExportIndex {
    /// The canonical bytes (spec/export.md §3): pretty JSON, two-space indent, one LF after.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("the index serializes");
        v.push(b'\n');
        v
    }

    /// Decode an index read from an archive: JSON of this model (unknown fields refused), the
    /// v1 format, 1 to [`MAX_BUNDLES`] bundles with valid, distinct file names.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() as u64 > INDEX_MAX_BYTES {
            return Err(format!("larger than {INDEX_MAX_BYTES} bytes"));
        }
        let index: ExportIndex = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if index.format != EXPORT_FORMAT_V1 {
            return Err(format!(
                "format \"{}\" (this ct reads {EXPORT_FORMAT_V1:?})",
                crate::text::show_text(&index.format, 100)
            ));
        }
        if index.bundles.is_empty() || index.bundles.len() > MAX_BUNDLES {
            return Err(format!(
                "it lists {} bundles (1 to {MAX_BUNDLES} allowed)",
                index.bundles.len()
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for b in &index.bundles {
            if !valid_file_name(&b.file) || !names.insert(b.file.as_str()) {
                return Err(format!(
                    "bundle file name \"{}\" is invalid or repeated",
                    crate::text::show_text(&b.file, 300)
                ));
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert!(valid_file_name("busybox-1.36.ctp"));
        for bad in [
            "x.tar",
            ".ctp",
            ".hidden.ctp",
            "a/b.ctp",
            "a b.ctp",
            "..ctp",
        ] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn index_checks() {
        let d = Sha256Digest::of(b"x");
        let bundle = |file: &str| ExportedBundle {
            file: file.into(),
            name: "n".into(),
            version: "1".into(),
            bundle_digest: d,
            image_digest: d,
            file_size: 1,
            file_digest: d,
            signers: vec![],
        };
        let idx = |bundles: Vec<ExportedBundle>| ExportIndex {
            format: EXPORT_FORMAT_V1.into(),
            bundles,
            keys: vec![],
            policy: false,
        };
        let enc = |i: &ExportIndex| serde_json::to_vec(i).unwrap();
        assert!(ExportIndex::parse(&enc(&idx(vec![bundle("a.ctp")]))).is_ok());
        for bad in [
            idx(vec![]),
            idx(vec![bundle("a.ctp"), bundle("a.ctp")]),
            idx(vec![bundle("../a.ctp")]),
            ExportIndex {
                format: "other".into(),
                ..idx(vec![bundle("a.ctp")])
            },
        ] {
            assert!(ExportIndex::parse(&enc(&bad)).is_err());
        }
        assert!(ExportIndex::parse(b"{}").is_err());
    }
}
