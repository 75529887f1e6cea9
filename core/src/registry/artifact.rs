//! The Cerro artifact: how a bundle's own files (signed manifest, summary, signatures,
//! attestations) travel in a registry beside the image they describe — an OCI 1.1 artifact
//! manifest (`artifactType` application/vnd.cerro-torre.bundle.v1, the empty config, `subject` =
//! the image manifest), found through the referrers API or the tag `sha256-<image hex>.ctp`.
//! The encoding is deterministic: the same bundle always gives the same artifact digest.

use crate::bundle::layout::{self, EntryPath};
use crate::manifest::Descriptor;
use crate::Sha256Digest;
use serde_json::{json, Value};

/// `artifactType` of the Cerro artifact. Changing it breaks fetching bundles already pushed.
pub const ARTIFACT_TYPE_V1: &str = "application/vnd.cerro-torre.bundle.v1";
/// Media type of `cerro/manifest.toml` (the signed bytes).
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.cerro-torre.manifest.v1+toml";
/// Media type of `cerro/summary.json`.
pub const SUMMARY_MEDIA_TYPE: &str = "application/vnd.cerro-torre.summary.v1+json";
/// Media type of each `cerro/signatures/<key_id>.sig`.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.cerro-torre.signature.v1+json";
/// Attestations keep the media type the signed manifest gives them.
pub const OCI_MANIFEST: &str = crate::source::OCI_MANIFEST;
/// The OCI 1.1 empty descriptor, used as the artifact's config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_BLOB: &[u8] = b"{}";
/// Annotation holding a layer's path inside the bundle.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// Annotations on the artifact manifest: bundle digest, name and version (informative).
pub const BUNDLE_DIGEST_ANNOTATION: &str = "vnd.cerro-torre.bundle.digest";
pub const BUNDLE_NAME_ANNOTATION: &str = "vnd.cerro-torre.bundle.name";
pub const BUNDLE_VERSION_ANNOTATION: &str = "vnd.cerro-torre.bundle.version";

/// The referrers tag-schema fallback tag for an image: `sha256-<hex>.ctp`.
pub fn fallback_tag(image: &Sha256Digest) -> String {
    format!("sha256-{}.ctp", image.hex())
}

/// The tag of the OCI referrers tag schema for an image, `sha256-<hex>` (distribution spec 1.1):
/// an image index listing the image's referrers, for registries without the referrers API.
pub fn referrers_index_tag(image: &Sha256Digest) -> String {
    format!("sha256-{}", image.hex())
}

/// Annotation naming an attestation referrer's kind (`sbom`, `provenance`).
pub const ATTESTATION_KIND_ANNOTATION: &str = "vnd.cerro-torre.attestation.kind";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One attestation as an OCI artifact of its own that refers to the image, so registry-side
/// tools that list an image's referrers see the SBOM and the provenance: `artifactType` the
/// attestation's media type, the empty config, one layer (the attestation, titled with its
/// bundle path), `subject` the image manifest. Deterministic.
pub fn attestation_manifest(
    image: &Descriptor,
    a: &crate::manifest::Attestation,
    bundle_digest: &Sha256Digest,
) -> Vec<u8> {
    let mut layer = descriptor_json(&a.media_type, &a.digest, a.size);
    layer["annotations"] =
        json!({ TITLE_ANNOTATION: format!("cerro/attestations/{}", a.digest.hex()) });
    let v = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": a.media_type,
        "config": descriptor_json(EMPTY_MEDIA_TYPE, &Sha256Digest::of(EMPTY_BLOB), EMPTY_BLOB.len() as u64),
        "layers": [layer],
        "subject": descriptor_json(&image.media_type, &image.digest, image.size),
        "annotations": {
            ATTESTATION_KIND_ANNOTATION: a.kind,
            BUNDLE_DIGEST_ANNOTATION: bundle_digest.to_string(),
        },
    });
    serde_json::to_vec(&v).expect("json values serialize")
}

/// A referrer as the referrers index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Sha256Digest,
    pub size: u64,
    pub artifact_type: String,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The referrers index for the tag schema: what `existing` (the index already at the tag, from
/// the registry: untrusted) lists, then each of `add` not already listed. An `existing` that is
/// not an image index with a `manifests` list is replaced (its entries cannot be kept).
pub fn merge_referrers_index(existing: Option<&[u8]>, add: &[Referrer]) -> Vec<u8> {
    let mut manifests: Vec<Value> = existing
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .filter(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .is_none_or(|m| m == OCI_INDEX)
        })
        .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    for r in add {
        let listed = manifests
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(&r.digest.to_string()));
        if !listed {
            let mut d = descriptor_json(OCI_MANIFEST, &r.digest, r.size);
            d["artifactType"] = json!(r.artifact_type);
            if !r.annotations.is_empty() {
                d["annotations"] = json!(r.annotations);
            }
            manifests.push(d);
        }
    }
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("json values serialize")
}

/// One file of the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its path in the bundle (`cerro/manifest.toml`, `cerro/signatures/a.sig`, …).
    pub path: String,
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
}

fn descriptor_json(media_type: &str, digest: &Sha256Digest, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
}

/// The artifact manifest bytes for `parts` (in the given order) referring to `image`.
pub fn encode(
    image: &Descriptor,
    parts: &[Part],
    bundle_digest: &Sha256Digest,
    name: &str,
    version: &str,
) -> Vec<u8> {
    let layers: Vec<Value> = parts
        .iter()
        .map(|p| {
            let mut d = descriptor_json(&p.media_type, &p.digest, p.size);
            d["annotations"] = json!({ TITLE_ANNOTATION: p.path });
            d
        })
        .collect();
    // serde_json's map is ordered by key, so the bytes are fixed for given inputs.
    let v = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE_V1,
        "config": descriptor_json(EMPTY_MEDIA_TYPE, &Sha256Digest::of(EMPTY_BLOB), EMPTY_BLOB.len() as u64),
        "layers": layers,
        "subject": descriptor_json(&image.media_type, &image.digest, image.size),
        "annotations": {
            BUNDLE_DIGEST_ANNOTATION: bundle_digest.to_string(),
            BUNDLE_NAME_ANNOTATION: name,
            BUNDLE_VERSION_ANNOTATION: version,
        },
    });
    serde_json::to_vec(&v).expect("json values serialize")
}

/// A parsed Cerro artifact manifest.
#[derive(Debug)]
pub struct Artifact {
    pub subject: Sha256Digest,
    pub manifest: Part,
    pub summary: Option<Part>,
    pub signatures: Vec<(String, Part)>,
    pub attestations: Vec<Part>,
}

/// Parse and check an artifact manifest: type, subject, the empty config, and that every layer
/// is a bundle path ct knows (checked with the bundle's own path rules), each at most once.
pub fn parse(bytes: &[u8]) -> Result<Artifact, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("artifactType").and_then(Value::as_str) != Some(ARTIFACT_TYPE_V1) {
        return Err(format!("artifactType is not {ARTIFACT_TYPE_V1}"));
    }
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err("schemaVersion is not 2".into());
    }
    let desc = |d: &Value, what: &str| -> Result<(String, Sha256Digest, u64), String> {
        let mt = d
            .get("mediaType")
            .and_then(Value::as_str)
            .ok_or(format!("{what} has no mediaType"))?;
        let dg = d
            .get("digest")
            .and_then(Value::as_str)
            .ok_or(format!("{what} has no digest"))?;
        let dg =
            Sha256Digest::parse(dg).map_err(|_| format!("{what} digest {dg:?} is not sha256"))?;
        let size = d
            .get("size")
            .and_then(Value::as_u64)
            .ok_or(format!("{what} has no size"))?;
        Ok((mt.to_string(), dg, size))
    };
    let subject = desc(v.get("subject").unwrap_or(&Value::Null), "subject")?.1;
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or("no layers")?;
    if layers.len() > layout::MAX_SIGNATURES + crate::manifest::MAX_ATTESTATIONS + 2 {
        return Err("too many layers".into());
    }
    let mut a = Artifact {
        subject,
        manifest: Part {
            path: String::new(),
            media_type: String::new(),
            digest: subject,
            size: 0,
        },
        summary: None,
        signatures: vec![],
        attestations: vec![],
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut have_manifest = false;
    for (i, l) in layers.iter().enumerate() {
        let what = format!("layer {}", i + 1);
        let (media_type, digest, size) = desc(l, &what)?;
        let path = l
            .pointer(&format!(
                "/annotations/{}",
                TITLE_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .ok_or(format!("{what} has no {TITLE_ANNOTATION} annotation"))?
            .to_string();
        if !seen.insert(path.clone()) {
            return Err(format!("{path} appears twice"));
        }
        let part = Part {
            path: path.clone(),
            media_type,
            digest,
            size,
        };
        match layout::classify(&path).map_err(|e| format!("{what}: {e}"))? {
            EntryPath::Manifest => {
                a.manifest = part;
                have_manifest = true;
            }
            EntryPath::Summary => a.summary = Some(part),
            EntryPath::Signature(id) => a.signatures.push((id.to_string(), part)),
            EntryPath::Attestation(d) if d == digest => a.attestations.push(part),
            _ => {
                return Err(format!(
                    "{what}: {path} is not a file a Cerro artifact carries"
                ))
            }
        }
    }
    if !have_manifest {
        return Err(format!("it carries no {}", layout::MANIFEST_TOML));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referrers_index_keeps_what_is_there_and_adds_each_referrer_once() {
        let r = |b: &[u8], t: &str| Referrer {
            digest: Sha256Digest::of(b),
            size: b.len() as u64,
            artifact_type: t.into(),
            annotations: [("k".to_string(), "v".to_string())].into(),
        };
        let first = merge_referrers_index(None, &[r(b"a", "x/a")]);
        let v: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(v["manifests"][0]["artifactType"], "x/a");
        assert_eq!(v["manifests"][0]["annotations"]["k"], "v");
        // Another tool's entry stays; a referrer listed already is not listed twice.
        let theirs = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": Sha256Digest::of(b"t").to_string(), "size": 1, "artifactType": "other"}]});
        let merged = merge_referrers_index(
            Some(&serde_json::to_vec(&theirs).unwrap()),
            &[r(b"a", "x/a"), r(b"b", "x/b")],
        );
        let again = merge_referrers_index(Some(&merged), &[r(b"b", "x/b")]);
        assert_eq!(merged, again);
        let v: Value = serde_json::from_slice(&merged).unwrap();
        let types: Vec<&str> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["artifactType"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["other", "x/a", "x/b"]);
        // What is not an index is replaced.
        assert_eq!(
            merge_referrers_index(Some(b"not json"), &[r(b"a", "x/a")]),
            first
        );
    }

    #[test]
    fn round_trip_and_determinism() {
        let image = Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Sha256Digest::of(b"img"),
            size: 3,
        };
        let parts = vec![
            Part {
                path: layout::MANIFEST_TOML.into(),
                media_type: MANIFEST_MEDIA_TYPE.into(),
                digest: Sha256Digest::of(b"m"),
                size: 1,
            },
            Part {
                path: layout::SUMMARY_JSON.into(),
                media_type: SUMMARY_MEDIA_TYPE.into(),
                digest: Sha256Digest::of(b"s"),
                size: 1,
            },
            Part {
                path: "cerro/signatures/alice.sig".into(),
                media_type: SIGNATURE_MEDIA_TYPE.into(),
                digest: Sha256Digest::of(b"a"),
                size: 1,
            },
        ];
        let bd = Sha256Digest::of(b"m");
        let bytes = encode(&image, &parts, &bd, "n", "1");
        assert_eq!(bytes, encode(&image, &parts, &bd, "n", "1"));
        let a = parse(&bytes).unwrap();
        assert_eq!(a.subject, image.digest);
        assert_eq!(a.manifest, parts[0]);
        assert_eq!(a.summary.as_ref(), Some(&parts[1]));
        assert_eq!(a.signatures, vec![("alice".to_string(), parts[2].clone())]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","mediaType":"application/vnd.oci.empty.v1+json","size":2}"#), "{text}");
        assert_eq!(
            fallback_tag(&image.digest),
            format!("sha256-{}.ctp", image.digest.hex())
        );
    }

    #[test]
    fn refusals() {
        let ok = |layers: Value| {
            json!({"schemaVersion":2,"artifactType":ARTIFACT_TYPE_V1,
            "subject":{"mediaType":OCI_MANIFEST,"digest":Sha256Digest::of(b"i").to_string(),"size":1},
            "layers":layers}).to_string()
        };
        let layer = |path: &str| json!({"mediaType":"x","digest":Sha256Digest::of(b"x").to_string(),"size":1,"annotations":{TITLE_ANNOTATION:path}});
        assert!(parse(ok(json!([layer("cerro/manifest.toml")])).as_bytes()).is_ok());
        for bad in [
            json!([]),
            json!([layer("cerro/manifest.toml"), layer("cerro/manifest.toml")]),
            json!([layer("cerro/manifest.toml"), layer("../etc/passwd")]),
            json!([layer("cerro/manifest.toml"), layer("blobs/sha256/00")]),
            json!([layer("cerro/manifest.toml"), layer("oci-layout")]),
        ] {
            assert!(parse(ok(bad.clone()).as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(b"{}").is_err());
        assert!(parse(b"\xff").is_err());
    }
}
