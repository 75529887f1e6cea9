//! Manifests in a registry: fetch one by tag or digest (its digest computed and checked, a digest
//! mismatch error otherwise), store one, pick a platform from an image index, and list referrers (OCI 1.1
//! referrers API; `None` when the registry does not offer it).

use crate::client::{header, net_failure, with_query, Body, Client, Req};
use crate::error::{Error, ErrorKind, Result};
use cerro_core::manifest::Descriptor;
use cerro_core::source::oci_dir::host_arch;
use cerro_core::source::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, JSON_BLOB_MAX_BYTES, OCI_INDEX, OCI_MANIFEST,
};
use cerro_core::Sha256Digest;
use serde_json::Value;
use ureq::http::Method;

/// What `GET /v2/<repo>/manifests/<ref>` asks for.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest as fetched: its bytes, media type and (computed) digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Sha256Digest,
}

/// Fetch a manifest; `None` when the registry says it does not exist (404).
pub fn try_get_manifest(
    c: &Client,
    repo: &str,
    reference: &str,
    expect: Option<&Sha256Digest>,
) -> Result<Option<Fetched>> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = c.send(&Req::new(Method::GET, path.clone()).header("accept", ACCEPT))?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        _ => return Err(c.status_failure(&format!("GET {path}"), resp)),
    }
    let header_type =
        header(&resp, "content-type").map(|t| t.split(';').next().unwrap_or("").trim().to_string());
    let header_digest = header(&resp, "docker-content-digest");
    let mut resp = resp;
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(JSON_BLOB_MAX_BYTES)
        .read_to_vec()
        .map_err(|e| net_failure(&c.registry, format!("GET {path}: {e}")))?;
    let digest = Sha256Digest::of(&bytes);
    let wrong = |claimed: &str| {
        Error::new(
            ErrorKind::DigestMismatch,
            format!(
                "registry {}: the manifest {repo}@{claimed} it served hashes to {digest}",
                c.registry
            ),
        )
        .hint("the registry's copy is damaged or was tampered with; nothing was written")
    };
    if let Some(e) = expect {
        if *e != digest {
            return Err(wrong(&e.to_string()));
        }
    }
    if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:")) {
        if h != digest.to_string() {
            return Err(wrong(&h));
        }
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::malformed(format!(
            "registry {}: manifest {repo}:{reference} is not JSON: {e}",
            c.registry
        ))
    })?;
    // The manifest's own mediaType wins; else the Content-Type the registry sent.
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(header_type)
        .unwrap_or_default();
    Ok(Some(Fetched {
        bytes,
        media_type,
        digest,
    }))
}

/// Fetch a manifest that must exist (404 is a not-found error naming it).
pub fn get_manifest(
    c: &Client,
    repo: &str,
    reference: &str,
    expect: Option<&Sha256Digest>,
) -> Result<Fetched> {
    try_get_manifest(c, repo, reference, expect)?.ok_or_else(|| {
        net_failure(
            &c.registry,
            format!("GET /v2/{repo}/manifests/{reference} answered 404 Not Found (no such image)"),
        )
        .with_kind(ErrorKind::NotFound)
        .hint("check the repository and tag (`skopeo inspect docker://…` lists what is there)")
    })
}

/// Whether the manifest `digest` exists in `repo`.
pub fn manifest_exists(c: &Client, repo: &str, digest: &Sha256Digest) -> Result<bool> {
    let path = format!("/v2/{repo}/manifests/{digest}");
    let resp = c.send(&Req::new(Method::HEAD, path.clone()).header("accept", ACCEPT))?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(c.status_failure(&format!("HEAD {path}"), resp)),
    }
}

/// Store a manifest under `reference` (a tag or its digest); checks the digest the registry reports.
pub fn put_manifest(
    c: &Client,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<Option<String>> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = c.send(
        &Req::new(Method::PUT, path.clone())
            .header("content-type", media_type.to_string())
            .body(Body::Bytes(bytes)),
    )?;
    if !matches!(resp.status().as_u16(), 200 | 201 | 204) {
        return Err(c.status_failure(&format!("PUT {path}"), resp));
    }
    let digest = Sha256Digest::of(bytes).to_string();
    if let Some(d) = header(&resp, "docker-content-digest").filter(|d| d.starts_with("sha256:")) {
        if d != digest {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "registry {}: manifest {digest} was stored as {d}",
                    c.registry
                ),
            ));
        }
    }
    Ok(header(&resp, "oci-subject"))
}

/// The `linux/<host arch>` entry of an image index.
pub fn pick_platform(index: &[u8]) -> Result<Descriptor, String> {
    cerro_core::registry::answers::pick_platform(index, host_arch())
}

pub use cerro_core::registry::answers::descriptor;

/// Referrers of `digest` with `artifact_type`, through the OCI 1.1 referrers API. `None` when the
/// registry has no such API (404, 400, 405, …): the caller falls back to the tag schema.
pub fn referrers(
    c: &Client,
    repo: &str,
    digest: &Sha256Digest,
    artifact_type: &str,
) -> Result<Option<Vec<Descriptor>>> {
    let path = with_query(
        &format!("/v2/{repo}/referrers/{digest}"),
        "artifactType",
        artifact_type,
    );
    let mut resp = c.send(&Req::new(Method::GET, path).header("accept", OCI_INDEX))?;
    if resp.status().as_u16() != 200 {
        return Ok(None);
    }
    let Ok(bytes) = resp
        .body_mut()
        .with_config()
        .limit(JSON_BLOB_MAX_BYTES)
        .read_to_vec()
    else {
        return Ok(None);
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(None); // not the API (some registries answer other things on unknown paths)
    };
    if v.get("mediaType")
        .and_then(Value::as_str)
        .is_some_and(|m| m != OCI_INDEX)
    {
        return Ok(None);
    }
    let Some(list) = v.get("manifests").and_then(Value::as_array) else {
        return Ok(None);
    };
    Ok(Some(
        list.iter()
            .filter(|d| d.get("artifactType").and_then(Value::as_str) == Some(artifact_type))
            .filter_map(|d| descriptor(d).ok())
            .collect(),
    ))
}

/// True for the media types of image manifests (not indexes).
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// True for the media types of image indexes.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_pick() {
        let arch = host_arch();
        let d = Sha256Digest::of(b"x").to_string();
        let idx = serde_json::json!({"manifests":[
            {"mediaType":OCI_MANIFEST,"digest":d,"size":1,"platform":{"os":"windows","architecture":arch}},
            {"mediaType":OCI_MANIFEST,"digest":d,"size":2,"platform":{"os":"linux","architecture":arch}},
        ]});
        assert_eq!(pick_platform(idx.to_string().as_bytes()).unwrap().size, 2);
        assert!(pick_platform(b"{\"manifests\":[]}").is_err());
        assert!(pick_platform(b"[").is_err());
    }
}
