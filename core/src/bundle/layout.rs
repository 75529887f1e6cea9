//! Every path a bundle may contain, the canonical entry order, and the small JSON files of the
//! OCI layout (`oci-layout`, `index.json`) and Cerro's `summary.json`, all derived deterministically.

use crate::digest::Sha256Digest;
use crate::manifest::Manifest;
use serde::Serialize;

pub const OCI_LAYOUT: &str = "oci-layout";
pub const INDEX_JSON: &str = "index.json";
pub const CERRO_DIR: &str = "cerro/";
pub const ATTESTATIONS_DIR: &str = "cerro/attestations/";
pub const MANIFEST_TOML: &str = "cerro/manifest.toml";
pub const SIGNATURES_DIR: &str = "cerro/signatures/";
pub const SUMMARY_JSON: &str = "cerro/summary.json";
pub const BLOBS_DIR: &str = "blobs/";
pub const BLOBS_SHA256_DIR: &str = "blobs/sha256/";

/// Exact bytes of `oci-layout` written by ct (the OCI image layout version marker).
pub const OCI_LAYOUT_BYTES: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
pub const SUMMARY_FORMAT_V1: &str = "cerro-torre/summary/v1";

/// Largest small file (index.json, summary.json, oci-layout) read into memory.
pub const SMALL_FILE_MAX_BYTES: u64 = 1 << 20;
/// Most signature files in one bundle.
pub const MAX_SIGNATURES: usize = 256;
/// Most blob entries in one bundle (manifest + config + layers).
pub const MAX_BLOBS: usize = crate::manifest::MAX_LAYERS + 2;

/// One classified tar entry path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPath {
    Dir(&'static str),
    OciLayout,
    IndexJson,
    Manifest,
    Summary,
    /// `cerro/signatures/<key_id>.sig`: the key id the file name gives.
    Signature(crate::ids::KeyId),
    Attestation(Sha256Digest),
    Blob(Sha256Digest),
}

/// Classify a tar entry name, or say why it has no place in a bundle.
pub fn classify(name: &str) -> Result<EntryPath, String> {
    let shown = crate::text::show_name(name.as_bytes());
    if name.starts_with('/') {
        return Err(format!("entry {shown} has an absolute path"));
    }
    if name.split('/').any(|c| c == ".." || c == ".") {
        return Err(format!(
            "entry {shown} has a '.' or '..' path component (it would escape the bundle layout)"
        ));
    }
    for d in [
        CERRO_DIR,
        ATTESTATIONS_DIR,
        SIGNATURES_DIR,
        BLOBS_DIR,
        BLOBS_SHA256_DIR,
    ] {
        if name == d || name == d.trim_end_matches('/') {
            return Ok(EntryPath::Dir(d));
        }
    }
    match name {
        OCI_LAYOUT => return Ok(EntryPath::OciLayout),
        INDEX_JSON => return Ok(EntryPath::IndexJson),
        MANIFEST_TOML => return Ok(EntryPath::Manifest),
        SUMMARY_JSON => return Ok(EntryPath::Summary),
        _ => {}
    }
    if let Some(rest) = name.strip_prefix(SIGNATURES_DIR) {
        if let Some(id) = rest.strip_suffix(".sig") {
            if let Ok(id) = crate::ids::KeyId::new(id) {
                return Ok(EntryPath::Signature(id));
            }
        }
    }
    if let Some(h) = name.strip_prefix(BLOBS_SHA256_DIR) {
        if let Some(d) = Sha256Digest::parse_hex(h) {
            return Ok(EntryPath::Blob(d));
        }
    }
    if let Some(h) = name.strip_prefix(ATTESTATIONS_DIR) {
        if let Some(d) = Sha256Digest::parse_hex(h) {
            return Ok(EntryPath::Attestation(d));
        }
    }
    Err(format!(
        "entry {shown} is not part of the bundle layout (see spec/bundle.md §2)"
    ))
}

/// The OCI reference name given to the image in `index.json`: `name:version` when the version is
/// a valid tag, else `name`.
pub fn ref_name(m: &Manifest) -> String {
    let v = &m.package.version;
    let tag_ok = !v.is_empty()
        && v.len() <= 128
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if tag_ok {
        format!("{}:{v}", m.package.name)
    } else {
        m.package.name.clone()
    }
}

/// `index.json` of a bundle: one manifest descriptor with its reference name.
pub fn index_json(m: &Manifest) -> Vec<u8> {
    let v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": m.image.media_type,
            "digest": m.image.digest.to_string(),
            "size": m.image.size,
            "annotations": { REF_NAME_ANNOTATION: ref_name(m) },
        }],
    });
    serde_json::to_vec(&v).expect("json values serialize")
}

/// `cerro/summary.json`: a readable digest of the manifest for tools that do not parse TOML.
/// It is derived from the manifest alone, and a verifier checks it matches.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub format: &'static str,
    pub name: &'a str,
    pub version: &'a str,
    pub created: &'a str,
    pub source: &'a str,
    pub bundle_digest: String,
    pub image_digest: String,
    pub layers: usize,
    pub image_size: u64,
    pub attestations: Vec<&'a str>,
}

pub fn summary_json(m: &Manifest, manifest_bytes: &[u8]) -> Vec<u8> {
    let s = Summary {
        format: SUMMARY_FORMAT_V1,
        name: &m.package.name,
        version: &m.package.version,
        created: &m.package.created,
        source: &m.source.reference,
        bundle_digest: Sha256Digest::of(manifest_bytes).to_string(),
        image_digest: m.image.digest.to_string(),
        layers: m.layers.len(),
        image_size: m.image_size(),
        attestations: m.attestations.iter().map(|a| a.kind.as_str()).collect(),
    };
    let mut v = serde_json::to_vec_pretty(&s).expect("summary serializes");
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        assert_eq!(classify("oci-layout").unwrap(), EntryPath::OciLayout);
        assert_eq!(
            classify("blobs/sha256").unwrap(),
            EntryPath::Dir(BLOBS_SHA256_DIR)
        );
        let h = "a".repeat(64);
        assert!(matches!(
            classify(&format!("blobs/sha256/{h}")).unwrap(),
            EntryPath::Blob(_)
        ));
        assert!(matches!(
            classify("cerro/signatures/alice.sig").unwrap(),
            EntryPath::Signature(_)
        ));
        for bad in [
            "../x",
            "/oci-layout",
            "blobs/sha256/../../x",
            "cerro/other",
            "blobs/sha512/aa",
            "./oci-layout",
            "cerro/signatures/.x.sig",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
    }
}
