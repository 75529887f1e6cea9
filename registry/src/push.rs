//! Pushing a signed bundle (spec/registry.md): the image goes up unchanged (blobs, then its
//! manifest by digest and by tag), and the bundle's own files as a Cerro artifact whose subject
//! is the image (by digest and under the fallback tag `sha256-<hex>.ctp`). Blobs the registry has
//! are skipped, blobs in another repository of the same registry are mounted, several blobs go
//! at once. The caller checks the bundle (signatures, summary) before; this sends it.

use crate::artifact::{self, Part};
use crate::client::repo_scope;
use crate::download::short;
use crate::error::{Error, Result};
use crate::manifests::{manifest_exists, put_manifest, try_get_manifest};
use crate::progress::Progress;
use crate::upload::{push_blob, Blob, Data, Outcome};
use crate::{Client, Reference, RegistryOptions};
use cerro_core::bundle::layout;
use cerro_core::manifest::Manifest;
use cerro_core::sign::SignatureFile;
use cerro_core::Sha256Digest;
use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A bundle to push, as read (and checked) by the caller.
pub struct Bundle<'a> {
    /// The bundle file: image blobs and attestations are read from it with pread.
    pub file: &'a File,
    /// Where each image blob (config, layers) and each attestation starts in `file`.
    pub offsets: &'a BTreeMap<Sha256Digest, u64>,
    pub manifest: &'a Manifest,
    /// The canonical manifest bytes (what the signatures cover).
    pub manifest_bytes: &'a [u8],
    /// The image manifest (`manifest.image`'s bytes).
    pub image_manifest: &'a [u8],
    /// The bundle's summary (it must match the signed manifest).
    pub summary: &'a [u8],
    pub signatures: &'a [SignatureFile],
}

/// How to push.
pub struct PushOptions {
    pub registry: RegistryOptions,
    /// Blobs sent at once (at least 1).
    pub jobs: usize,
}

/// One blob and what happened to it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushedBlob {
    /// What it is: `image config`, `layer 1`, `signature KEYID`, …
    pub role: String,
    pub digest: Sha256Digest,
    pub size: u64,
    pub outcome: Outcome,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The destination with the tag that was set.
    pub destination: Reference,
    pub bundle_digest: Sha256Digest,
    pub image_digest: Sha256Digest,
    pub artifact_digest: Sha256Digest,
    /// The tag-schema fallback tag that points to the Cerro artifact.
    pub referrers_tag: String,
    /// Whether the registry reported OCI 1.1 referrers support (`OCI-Subject`).
    pub referrers_api: bool,
    /// Each attestation as an OCI artifact referring to the image: (kind, manifest digest).
    pub attestation_referrers: Vec<(String, Sha256Digest)>,
    /// Without the referrers API: the tag-schema index (`sha256-<hex>`) listing the Cerro
    /// artifact and the attestation referrers (merged with what it listed before).
    pub referrers_index_tag: Option<String>,
    pub bytes_sent: u64,
    /// Every blob once, largest first.
    pub blobs: Vec<PushedBlob>,
}

/// Parse a push destination `HOST/REPO[:TAG]`: a tag, never a digest.
pub fn destination(text: &str) -> Result<Reference> {
    let dest = Reference::parse(text).map_err(Error::usage)?;
    if dest.digest.is_some() {
        return Err(Error::usage(format!("{text}: push to a tag, not a digest"))
            .hint("the image's digest is fixed by its content; name the tag to set, e.g. HOST/REPO:1.0"));
    }
    Ok(dest)
}

/// The repository to mount blobs from: the bundle's source, when it is another repository of
/// the same registry (`docker://HOST/REPO…` recorded by `ct pack`).
fn mount_source(source_ref: &str, dest: &Reference) -> Option<String> {
    let s = source_ref.strip_prefix("docker://")?;
    let r = Reference::parse(s).ok()?;
    (r.registry == dest.registry && r.repository != dest.repository).then_some(r.repository)
}

/// The artifact's files, in bundle order: manifest, summary, signatures, attestations; with
/// the signature files' bytes.
fn artifact_parts(b: &Bundle<'_>) -> (Vec<Part>, Vec<(String, Vec<u8>)>) {
    let m = b.manifest;
    let sig_bytes: Vec<(String, Vec<u8>)> = b
        .signatures
        .iter()
        .map(|s| (s.key_id.to_string(), s.encode()))
        .collect();
    let mut parts = vec![
        Part {
            path: layout::MANIFEST_TOML.into(),
            media_type: artifact::MANIFEST_MEDIA_TYPE.into(),
            digest: Sha256Digest::of(b.manifest_bytes),
            size: b.manifest_bytes.len() as u64,
        },
        Part {
            path: layout::SUMMARY_JSON.into(),
            media_type: artifact::SUMMARY_MEDIA_TYPE.into(),
            digest: Sha256Digest::of(b.summary),
            size: b.summary.len() as u64,
        },
    ];
    for (id, bytes) in &sig_bytes {
        parts.push(Part {
            path: format!("{}{id}.sig", layout::SIGNATURES_DIR),
            media_type: artifact::SIGNATURE_MEDIA_TYPE.into(),
            digest: Sha256Digest::of(bytes),
            size: bytes.len() as u64,
        });
    }
    for x in attestations(m) {
        parts.push(Part {
            path: format!("{}{}", layout::ATTESTATIONS_DIR, x.digest.hex()),
            media_type: x.media_type.clone(),
            digest: x.digest,
            size: x.size,
        });
    }
    (parts, sig_bytes)
}

fn attestations(m: &Manifest) -> Vec<cerro_core::manifest::Attestation> {
    let mut atts = m.attestations.clone();
    atts.sort_by_key(|x| x.digest);
    atts.dedup_by_key(|x| x.digest);
    atts
}

/// Push `bundle` to `dest` (tag `latest` when it names none): every blob, the image manifest by
/// digest (unless there) and by tag, then the Cerro artifact by digest and by fallback tag.
pub fn push(
    bundle: &Bundle<'_>,
    dest: &Reference,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed> {
    let m = bundle.manifest;
    let tag = dest.tag.clone().unwrap_or_else(|| "latest".into());
    let bundle_digest = Sha256Digest::of(bundle.manifest_bytes);
    let (art_parts, sig_bytes) = artifact_parts(bundle);
    let artifact_bytes = artifact::encode(
        &m.image,
        &art_parts,
        &bundle_digest,
        &m.package.name,
        &m.package.version,
    );
    let artifact_digest = Sha256Digest::of(&artifact_bytes);

    // Every blob, each once: the image's config and layers, then the artifact's files.
    let mount_from = mount_source(&m.source.reference, dest);
    let region = |d: &Sha256Digest| -> Result<Data<'_>> {
        let offset = *bundle
            .offsets
            .get(d)
            .ok_or_else(|| Error::malformed(format!("blob {d} is not in the bundle")))?;
        Ok(Data::Region {
            file: bundle.file,
            offset,
        })
    };
    // (role, digest, size, bytes, may be mounted from the source repository)
    let mut all: Vec<(String, Sha256Digest, u64, Data<'_>, bool)> = vec![(
        "image config".into(),
        m.config.digest,
        m.config.size,
        region(&m.config.digest)?,
        true,
    )];
    for (i, l) in m.layers.iter().enumerate() {
        all.push((
            format!("layer {}", i + 1),
            l.digest,
            l.size,
            region(&l.digest)?,
            true,
        ));
    }
    all.push((
        "artifact config".into(),
        Sha256Digest::of(artifact::EMPTY_BLOB),
        artifact::EMPTY_BLOB.len() as u64,
        Data::Bytes(artifact::EMPTY_BLOB),
        false,
    ));
    all.push((
        layout::MANIFEST_TOML.into(),
        bundle_digest,
        bundle.manifest_bytes.len() as u64,
        Data::Bytes(bundle.manifest_bytes),
        false,
    ));
    all.push((
        layout::SUMMARY_JSON.into(),
        art_parts[1].digest,
        bundle.summary.len() as u64,
        Data::Bytes(bundle.summary),
        false,
    ));
    for (id, b) in &sig_bytes {
        all.push((
            format!("signature {id}"),
            Sha256Digest::of(b),
            b.len() as u64,
            Data::Bytes(b),
            false,
        ));
    }
    for x in attestations(m) {
        all.push((
            format!("attestation {}", x.kind),
            x.digest,
            x.size,
            region(&x.digest)?,
            false,
        ));
    }
    let mut blobs: Vec<(String, Blob<'_>)> = Vec::new();
    for (role, digest, size, data, mount) in all {
        if !blobs.iter().any(|(_, b)| b.digest == digest) {
            let mount_from = if mount { mount_from.clone() } else { None };
            blobs.push((
                role,
                Blob {
                    digest,
                    size,
                    data,
                    mount_from,
                },
            ));
        }
    }
    // Largest first, so parallel uploads finish together.
    blobs.sort_by(|x, y| y.1.size.cmp(&x.1.size).then(x.1.digest.cmp(&y.1.digest)));

    let mut scopes = vec![repo_scope(&dest.repository, true)];
    if let Some(f) = &mount_from {
        scopes.push(repo_scope(f, false));
    }
    let client = Client::connect(dest, &opts.registry, scopes)?;
    let repo = dest.repository.as_str();
    let (outcomes, bytes_sent) = push_blobs(&client, repo, &blobs, opts.jobs, progress)?;

    // The image manifest by digest (unless there), then the tag; then the artifact.
    if !manifest_exists(&client, repo, &m.image.digest)? {
        put_manifest(
            &client,
            repo,
            &m.image.digest.to_string(),
            &m.image.media_type,
            bundle.image_manifest,
        )?;
    }
    put_manifest(
        &client,
        repo,
        &tag,
        &m.image.media_type,
        bundle.image_manifest,
    )?;
    let subject = put_manifest(
        &client,
        repo,
        &artifact_digest.to_string(),
        artifact::OCI_MANIFEST,
        &artifact_bytes,
    )?;
    let referrers_tag = artifact::fallback_tag(&m.image.digest);
    put_manifest(
        &client,
        repo,
        &referrers_tag,
        artifact::OCI_MANIFEST,
        &artifact_bytes,
    )?;
    // Each attestation as a referrer of its own, for registry-side tools; their blobs (the
    // empty config, the attestation) were pushed above.
    let mut referrers = vec![artifact::Referrer {
        digest: artifact_digest,
        size: artifact_bytes.len() as u64,
        artifact_type: artifact::ARTIFACT_TYPE_V1.into(),
        annotations: [(
            artifact::BUNDLE_DIGEST_ANNOTATION.to_string(),
            bundle_digest.to_string(),
        )]
        .into(),
    }];
    let mut attestation_referrers = Vec::new();
    for a in &m.attestations {
        let bytes = artifact::attestation_manifest(&m.image, a, &bundle_digest);
        let digest = Sha256Digest::of(&bytes);
        put_manifest(
            &client,
            repo,
            &digest.to_string(),
            artifact::OCI_MANIFEST,
            &bytes,
        )?;
        referrers.push(artifact::Referrer {
            digest,
            size: bytes.len() as u64,
            artifact_type: a.media_type.clone(),
            annotations: [(
                artifact::ATTESTATION_KIND_ANNOTATION.to_string(),
                a.kind.clone(),
            )]
            .into(),
        });
        attestation_referrers.push((a.kind.clone(), digest));
    }
    // Without the referrers API, the tag schema: the index at `sha256-<hex>` lists them all,
    // kept with whatever it listed (other tools' referrers of the same image).
    let referrers_index_tag = if subject.is_none() {
        let tag = artifact::referrers_index_tag(&m.image.digest);
        let existing = try_get_manifest(&client, repo, &tag, None)?;
        let index =
            artifact::merge_referrers_index(existing.as_ref().map(|f| &f.bytes[..]), &referrers);
        put_manifest(&client, repo, &tag, artifact::OCI_INDEX, &index)?;
        Some(tag)
    } else {
        None
    };
    Ok(Pushed {
        destination: dest.with_tag(&tag),
        bundle_digest,
        image_digest: m.image.digest,
        artifact_digest,
        referrers_tag,
        referrers_api: subject.is_some(),
        attestation_referrers,
        referrers_index_tag,
        bytes_sent,
        blobs: blobs
            .iter()
            .zip(&outcomes)
            .map(|((role, b), o)| PushedBlob {
                role: role.clone(),
                digest: b.digest,
                size: b.size,
                outcome: o.unwrap_or(Outcome::Present),
            })
            .collect(),
    })
}

/// Push `blobs` with `jobs` threads; the first failure stops the others.
fn push_blobs(
    client: &Client,
    repo: &str,
    blobs: &[(String, Blob<'_>)],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<(Vec<Option<Outcome>>, u64)> {
    let next = AtomicUsize::new(0);
    let sent = AtomicU64::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; blobs.len()]);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(blobs.len()).max(1) {
            s.spawn(|| loop {
                if failure.lock().expect("lock").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((role, b)) = blobs.get(i) else {
                    return;
                };
                let bar = progress.bar(format!("{role} {}", short(&b.digest)), b.size);
                let r = push_blob(client, repo, b, &|n| {
                    sent.fetch_add(n, Ordering::Relaxed);
                    bar.add(n);
                });
                bar.finish();
                match r {
                    Ok(o) => results.lock().expect("lock")[i] = Some(o),
                    Err(f) => {
                        failure
                            .lock()
                            .expect("lock")
                            .get_or_insert(f.context(format!("pushing {role} {}", b.digest)));
                        return;
                    }
                }
            });
        }
    });
    progress.clear();
    if let Some(f) = failure.into_inner().expect("lock") {
        return Err(f);
    }
    Ok((
        results.into_inner().expect("lock"),
        sent.load(Ordering::Relaxed),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_only_within_the_same_registry() {
        let dest = Reference::parse("127.0.0.1:5000/dst:1").unwrap();
        assert_eq!(
            mount_source("docker://127.0.0.1:5000/src/app:2", &dest).as_deref(),
            Some("src/app")
        );
        assert_eq!(mount_source("docker://127.0.0.1:5000/dst:0", &dest), None);
        assert_eq!(mount_source("docker://quay.io/src:2", &dest), None);
        assert_eq!(mount_source("oci:busybox:1", &dest), None);
    }
}
