//! The export archive's index, `cerro-export.json` (spec/export.md §3): its model and a decoder
//! for untrusted bytes that checks everything the index alone can show (format, bounds, file
//! names). The archive itself is read with `crate::archive` and written by `ct export`.

use crate::ids::{Fingerprint, KeyId};
use crate::Sha256Digest;
use serde::{Deserialize, Serialize};

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
