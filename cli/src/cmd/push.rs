//! `ct push BUNDLE HOST/REPO[:TAG]`: the bundle is read and its signatures checked here, before
//! anything is sent; the registry library (`cerro_registry::push`) sends the image unchanged and
//! the bundle's own files as a Cerro artifact whose subject is the image; this prints the result.

use super::Ctx;
use crate::app::PushArgs;
use crate::exit::{CmdResult, Failure, SIGNATURE_INVALID};
use crate::output::human_bytes;
use crate::registry::progress::MultiProgress;
use crate::registry::RegistryOptions;
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::{layout, BundleError};
use cerro_core::sign::SignatureFile;
use cerro_core::source::JSON_BLOB_MAX_BYTES;
use cerro_core::Sha256Digest;
use cerro_registry::push::{self, Bundle, PushOptions, PushedBlob};
use cerro_registry::upload::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Each attestation as an OCI artifact referring to the image.
    attestation_referrers: Vec<ReferrerOut>,
    /// Without the referrers API: the tag-schema index listing every referrer ct pushed.
    referrers_index_tag: Option<String>,
    bytes_sent: u64,
    blobs: Vec<PushedBlob>,
}

#[derive(Serialize)]
struct ReferrerOut {
    kind: String,
    digest: Sha256Digest,
}

pub fn run(ctx: &Ctx, a: PushArgs) -> CmdResult {
    let dest = push::destination(&a.destination)?;
    let parts = BundleFile::open(&a.bundle)?;
    let sigs = checked_signatures(&parts)?;
    let m = parts.manifest();
    let image_bytes = parts
        .read_blob(&m.image.digest, m.image.size, JSON_BLOB_MAX_BYTES)
        .map_err(|e| match e {
            BundleError::Mismatch(_) => Failure::from(e)
                .hint("the bundle was damaged after signing; do not use it, obtain a fresh copy"),
            e => Failure::from(e),
        })?;
    let summary = layout::summary_json(m, parts.manifest_bytes());
    if parts.summary() != Some(&summary[..]) {
        return Err(Failure::malformed(format!(
            "{} is missing or does not match the signed manifest",
            layout::SUMMARY_JSON
        ))
        .context(format!("bundle {}", a.bundle.display()))
        .hint("check it with `ct verify BUNDLE`; re-create it with `ct pack` or `ct re-sign`"));
    }
    // Where each blob the registry may need lies in the bundle file.
    let mut offsets = BTreeMap::new();
    for d in std::iter::once(&m.config).chain(&m.layers) {
        offsets.insert(d.digest, parts.region(&d.digest, d.size, false)?.offset);
    }
    for x in &m.attestations {
        offsets.insert(x.digest, parts.region(&x.digest, x.size, true)?.offset);
    }
    let bundle = Bundle {
        file: parts.file(),
        offsets: &offsets,
        manifest: m,
        manifest_bytes: parts.manifest_bytes(),
        image_manifest: &image_bytes,
        summary: &summary,
        signatures: &sigs,
    };
    let opts = PushOptions {
        registry: RegistryOptions::from(&a.registry),
        jobs: usize::from(a.registry.jobs),
    };
    let p = push::push(&bundle, &dest, &opts, &MultiProgress::new(&ctx.out))?;

    let o = PushOut {
        ok: true,
        bundle: a.bundle.display().to_string(),
        destination: p.destination.to_string(),
        name: m.package.name.clone(),
        version: m.package.version.clone(),
        bundle_digest: p.bundle_digest,
        image_digest: p.image_digest,
        artifact_digest: p.artifact_digest,
        referrers_tag: p.referrers_tag,
        referrers_api: p.referrers_api,
        attestation_referrers: p
            .attestation_referrers
            .into_iter()
            .map(|(kind, digest)| ReferrerOut { kind, digest })
            .collect(),
        referrers_index_tag: p.referrers_index_tag,
        bytes_sent: p.bytes_sent,
        blobs: p.blobs,
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
    for r in &o.attestation_referrers {
        out.line(format!(
            "  {:<9} {} (a referrer of the image{})",
            r.kind,
            r.digest,
            match &o.referrers_index_tag {
                Some(t) => format!(", listed in the index tagged {t}"),
                None => String::new(),
            }
        ));
    }
    for s in &sigs {
        out.line(format!(
            "  signed by {} {} ({})",
            s.key_id, s.fingerprint, s.suite
        ));
    }
    Ok(())
}

/// The bundle's signature files, each checked against its signed manifest: exit 2 when there is
/// none or one does not verify, 10 when one is malformed.
fn checked_signatures(parts: &BundleFile) -> CmdResult<Vec<SignatureFile>> {
    let path = parts.path().display();
    let sigs = parts.signature_files()?;
    for s in &sigs {
        s.verify(parts.manifest_bytes()).map_err(|e| {
            Failure::new(SIGNATURE_INVALID, format!("bundle {path}: {e}")).hint(
                "do not publish this bundle: it was changed after it was signed; re-create or \
                 re-sign it",
            )
        })?;
    }
    if sigs.is_empty() {
        return Err(
            Failure::new(SIGNATURE_INVALID, format!("bundle {path} is not signed"))
                .hint("sign it with `ct re-sign BUNDLE -k KEY`"),
        );
    }
    Ok(sigs)
}
