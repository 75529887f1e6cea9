//! `ct push BUNDLE HOST/REPO[:TAG]`: the image goes up unchanged (blobs, then its manifest by
//! digest and by tag), and the bundle's own files as a Cerro artifact whose subject is the image
//! (by digest and under the fallback tag `sha256-<hex>.ctp`). Signatures are checked before
//! anything is sent; blobs the registry has are skipped; several blobs go at once.

use super::Ctx;
use crate::app::PushArgs;
use crate::bundle_parts::BundleParts;
use crate::exit::{CmdResult, Failure};
use crate::output::human_bytes;
use crate::registry::artifact::{self, Part};
use crate::registry::client::repo_scope;
use crate::registry::download::short;
use crate::registry::manifests::{manifest_exists, put_manifest};
use crate::registry::progress::MultiProgress;
use crate::registry::upload::{push_blob, Blob, Data, Outcome};
use crate::registry::{Client, Reference, RegistryOptions};
use cerro_core::bundle::layout;
use cerro_core::source::JSON_BLOB_MAX_BYTES;
use cerro_core::Sha256Digest;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Serialize)]
struct BlobOut {
    role: String,
    digest: Sha256Digest,
    size: u64,
    outcome: Outcome,
}

#[derive(Serialize)]
struct PushOut {
    ok: bool,
    bundle: String,
    destination: String,
    name: String,
    version: String,
    bundle_digest: Sha256Digest,
    image_digest: Sha256Digest,
    artifact_digest: Sha256Digest,
    /// The tag-schema fallback tag that points to the Cerro artifact.
    referrers_tag: String,
    /// Whether the registry reported OCI 1.1 referrers support (`OCI-Subject`).
    referrers_api: bool,
    bytes_sent: u64,
    blobs: Vec<BlobOut>,
}

/// The repository to mount blobs from: the bundle's source, when it is another repository of
/// the same registry (`docker://HOST/REPO…` recorded by `ct pack`).
fn mount_source(source_ref: &str, dest: &Reference) -> Option<String> {
    let s = source_ref.strip_prefix("docker://")?;
    let r = Reference::parse(s).ok()?;
    (r.registry == dest.registry && r.repository != dest.repository).then_some(r.repository)
}

pub fn run(ctx: &Ctx, a: PushArgs) -> CmdResult {
    let dest = Reference::parse(&a.destination).map_err(Failure::usage)?;
    if dest.digest.is_some() {
        return Err(Failure::usage(format!("{}: push to a tag, not a digest", a.destination))
            .hint("the image's digest is fixed by its content; name the tag to set, e.g. HOST/REPO:1.0"));
    }
    let tag = dest.tag.clone().unwrap_or_else(|| "latest".into());
    let parts = BundleParts::open(&a.bundle)?;
    let sigs = parts.checked_signatures()?;
    let m = &parts.manifest;
    let bundle_ctx = |f: Failure| f.context(format!("bundle {}", a.bundle.display()));
    let image_bytes = parts.read_blob(&m.image.digest, m.image.size, JSON_BLOB_MAX_BYTES)?;
    let summary = layout::summary_json(m, &parts.manifest_bytes);
    if parts.summary.as_deref() != Some(&summary[..]) {
        return Err(bundle_ctx(Failure::malformed(format!(
            "{} is missing or does not match the signed manifest",
            layout::SUMMARY_JSON
        )))
        .hint("check it with `ct verify BUNDLE`; re-create it with `ct pack` or `ct re-sign`"));
    }
    let bundle_digest = Sha256Digest::of(&parts.manifest_bytes);

    // The artifact's files, in bundle order: manifest, summary, signatures, attestations.
    let sig_bytes: Vec<(String, Vec<u8>)> = sigs
        .iter()
        .map(|s| (s.key_id.to_string(), s.encode()))
        .collect();
    let mut art_parts = vec![
        Part {
            path: layout::MANIFEST_TOML.into(),
            media_type: artifact::MANIFEST_MEDIA_TYPE.into(),
            digest: bundle_digest,
            size: parts.manifest_bytes.len() as u64,
        },
        Part {
            path: layout::SUMMARY_JSON.into(),
            media_type: artifact::SUMMARY_MEDIA_TYPE.into(),
            digest: Sha256Digest::of(&summary),
            size: summary.len() as u64,
        },
    ];
    for (id, b) in &sig_bytes {
        art_parts.push(Part {
            path: format!("{}{id}.sig", layout::SIGNATURES_DIR),
            media_type: artifact::SIGNATURE_MEDIA_TYPE.into(),
            digest: Sha256Digest::of(b),
            size: b.len() as u64,
        });
    }
    let mut atts = m.attestations.clone();
    atts.sort_by_key(|x| x.digest);
    atts.dedup_by_key(|x| x.digest);
    for x in &atts {
        art_parts.push(Part {
            path: format!("{}{}", layout::ATTESTATIONS_DIR, x.digest.hex()),
            media_type: x.media_type.clone(),
            digest: x.digest,
            size: x.size,
        });
    }
    let artifact_bytes = artifact::encode(
        &m.image,
        &art_parts,
        &bundle_digest,
        &m.package.name,
        &m.package.version,
    );
    let artifact_digest = Sha256Digest::of(&artifact_bytes);

    // Every blob, each once: the image's config and layers, then the artifact's files.
    let mount_from = mount_source(&m.source.reference, &dest);
    let region = |d: &Sha256Digest, size: u64, att: bool| -> CmdResult<Data<'_>> {
        let r = parts.region(d, size, att)?;
        Ok(Data::Region {
            file: &parts.file,
            offset: r.offset,
        })
    };
    // (role, digest, size, bytes, may be mounted from the source repository)
    let mut all: Vec<(String, Sha256Digest, u64, Data<'_>, bool)> = vec![(
        "image config".into(),
        m.config.digest,
        m.config.size,
        region(&m.config.digest, m.config.size, false)?,
        true,
    )];
    for (i, l) in m.layers.iter().enumerate() {
        all.push((
            format!("layer {}", i + 1),
            l.digest,
            l.size,
            region(&l.digest, l.size, false)?,
            true,
        ));
    }
    let empty = Sha256Digest::of(artifact::EMPTY_BLOB);
    all.push((
        "artifact config".into(),
        empty,
        artifact::EMPTY_BLOB.len() as u64,
        Data::Bytes(artifact::EMPTY_BLOB),
        false,
    ));
    all.push((
        layout::MANIFEST_TOML.into(),
        bundle_digest,
        parts.manifest_bytes.len() as u64,
        Data::Bytes(&parts.manifest_bytes),
        false,
    ));
    all.push((
        layout::SUMMARY_JSON.into(),
        art_parts[1].digest,
        summary.len() as u64,
        Data::Bytes(&summary),
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
    for x in &atts {
        all.push((
            format!("attestation {}", x.kind),
            x.digest,
            x.size,
            region(&x.digest, x.size, true)?,
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
    let client = Client::connect(&dest, &RegistryOptions::from(&a.registry), scopes)?;
    let repo = dest.repository.as_str();

    let progress = MultiProgress::new(&ctx.out);
    let next = AtomicUsize::new(0);
    let sent = AtomicU64::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; blobs.len()]);
    let failure: Mutex<Option<Failure>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..usize::from(a.registry.jobs).min(blobs.len()).max(1) {
            s.spawn(|| loop {
                if failure.lock().expect("lock").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((role, b)) = blobs.get(i) else {
                    return;
                };
                let bar = progress.bar(format!("{role} {}", short(&b.digest)), b.size);
                let r = push_blob(&client, repo, b, &|n| {
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
    let outcomes = results.into_inner().expect("lock");

    // The image manifest by digest (unless there), then the tag; then the artifact.
    if !manifest_exists(&client, repo, &m.image.digest)? {
        put_manifest(
            &client,
            repo,
            &m.image.digest.to_string(),
            &m.image.media_type,
            &image_bytes,
        )?;
    }
    put_manifest(&client, repo, &tag, &m.image.media_type, &image_bytes)?;
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

    let o = PushOut {
        ok: true,
        bundle: a.bundle.display().to_string(),
        destination: dest.with_tag(&tag).to_string(),
        name: m.package.name.clone(),
        version: m.package.version.clone(),
        bundle_digest,
        image_digest: m.image.digest,
        artifact_digest,
        referrers_tag,
        referrers_api: subject.is_some(),
        bytes_sent: sent.load(Ordering::Relaxed),
        blobs: blobs
            .iter()
            .zip(&outcomes)
            .map(|((role, b), o)| BlobOut {
                role: role.clone(),
                digest: b.digest,
                size: b.size,
                outcome: o.unwrap_or(Outcome::Present),
            })
            .collect(),
    };
    ctx.out.json_doc(&o);
    let count = |k: Outcome| o.blobs.iter().filter(|b| b.outcome == k).count();
    let out = &ctx.out;
    out.line(format!(
        "{} {} {} → {}",
        out.good("pushed"),
        out.bold(&o.name),
        o.version,
        o.destination
    ));
    out.line(format!(
        "  image     {} ({} blobs: {} uploaded, {} already there{}; {} sent)",
        o.image_digest,
        o.blobs.len(),
        count(Outcome::Uploaded),
        count(Outcome::Present),
        match count(Outcome::Mounted) {
            0 => String::new(),
            n => format!(", {n} mounted"),
        },
        human_bytes(o.bytes_sent)
    ));
    out.line(format!(
        "  cerro     {} (tag {}{})",
        o.artifact_digest,
        o.referrers_tag,
        if o.referrers_api {
            ", and the referrers API"
        } else {
            ""
        }
    ));
    for s in &sigs {
        out.line(format!(
            "  signed by {} {} ({})",
            s.key_id, s.fingerprint, s.suite
        ));
    }
    Ok(())
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
