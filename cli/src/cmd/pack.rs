//! `ct pack SOURCE -o OUT.ctp`: resolve the image, build and sign the manifest, write the bundle
//! to a temporary file beside OUT and rename it into place only when all of it was written.

use super::Ctx;
use crate::app::{PackArgs, RegistryArgs};
use crate::exit::{CmdResult, Failure};
use crate::output::human_bytes;
use crate::registry::progress::MultiProgress;
use crate::registry::RegistryOptions;
use crate::steps::sign::{check_windows, signers, write_bundle_file};
use cerro_core::bundle::BundleContents;
use cerro_core::pack::{plan, PackOptions, WithAttestations};
use cerro_core::sign::SignatureFile;
use cerro_core::source::{docker_archive::DockerArchive, oci_dir::OciDir, ImageSource};
use cerro_registry::source::RegistrySource;
use serde::Serialize;
use std::path::Path;

const SOURCES: &str = "oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or docker://HOST/REPO[:TAG]";

/// Open the image a SOURCE string names. A `docker://` source is downloaded into a temporary
/// directory in `tmp_parent` (beside the output).
pub fn open_source(
    source: &str,
    registry: &RegistryArgs,
    tmp_parent: &Path,
    out: &crate::output::Output,
) -> CmdResult<Box<dyn ImageSource>> {
    let (transport, rest) = source
        .split_once(':')
        .ok_or_else(|| Failure::usage(format!("{source:?} names no transport; use {SOURCES}")))?;
    let split = |rest: &str| -> (String, Option<String>) {
        match rest.split_once(':') {
            Some((p, t)) if !t.is_empty() => (p.to_string(), Some(t.to_string())),
            _ => (rest.to_string(), None),
        }
    };
    match transport {
        "oci" => {
            let (dir, tag) = split(rest);
            Ok(Box::new(
                OciDir::open(Path::new(&dir), tag.as_deref())
                    .map_err(|e| Failure::from(e).context(format!("source {source}")))?,
            ))
        }
        "docker-archive" => {
            let (file, tag) = split(rest);
            Ok(Box::new(
                DockerArchive::open(Path::new(&file), tag.as_deref())
                    .map_err(|e| Failure::from(e).context(format!("source {source}")))?,
            ))
        }
        "docker" => Ok(Box::new(RegistrySource::open(
            source,
            &RegistryOptions::from(registry),
            tmp_parent,
            usize::from(registry.jobs),
            &MultiProgress::new(out),
        )?)),
        other => Err(Failure::usage(format!(
            "unknown source transport {other:?}; use {SOURCES}"
        ))),
    }
}

#[derive(Serialize)]
struct PackOut {
    ok: bool,
    output: String,
    name: String,
    version: String,
    source: String,
    bundle_digest: String,
    image_digest: String,
    rootfs: String,
    layers: usize,
    image_size: u64,
    bundle_size: u64,
    signatures: Vec<SigOut>,
}
#[derive(Serialize)]
struct SigOut {
    key_id: String,
    fingerprint: String,
    suite: String,
}

pub fn run(ctx: &Ctx, a: PackArgs) -> CmdResult {
    if a.output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", a.output.display()))
                .hint("pass --force to replace it"),
        );
    }
    // Unlock keys first: a wrong passphrase should fail before any work.
    let signers = signers(ctx, &a.keys, a.passphrase.passphrase_file.as_deref())?;
    let parent = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut src = open_source(&a.source, &a.registry, parent, &ctx.out)?;
    let keys: Vec<&cerro_core::sign::Signer> = signers.iter().map(|s| &s.signer).collect();
    let planned = plan(
        src.as_mut(),
        &PackOptions {
            name: a.name.clone(),
            version: a.version.clone(),
            limits: ctx.cfg.limits(),
            sbom: !a.no_sbom,
            provenance: !a.no_provenance,
            tool_version: env!("CARGO_PKG_VERSION").into(),
        },
        &keys,
    )
    .map_err(|e| {
        ctx.cfg
            .limit_hint(Failure::from(e).context(format!("source {}", a.source)))
    })?;
    let manifest = planned.manifest;
    check_windows(&signers, &manifest.package.created)?;
    let manifest_bytes = manifest.encode();
    let sigs: Vec<SignatureFile> = signers
        .iter()
        .map(|s| s.signer.sign(&manifest_bytes))
        .collect();

    let total = manifest.image_size();
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes: &manifest_bytes,
        signatures: &sigs,
    };
    let mut blobs = WithAttestations {
        inner: src.as_mut(),
        attestations: &planned.attestations,
    };
    let bundle_size = write_bundle_file(ctx, &a.output, &contents, &mut blobs, "packing")
        .map_err(|e| e.context(format!("packing {}", a.source)))?;

    let o = PackOut {
        ok: true,
        output: a.output.display().to_string(),
        name: manifest.package.name.clone(),
        version: manifest.package.version.clone(),
        source: manifest.source.reference.clone(),
        bundle_digest: manifest.digest().to_string(),
        image_digest: manifest.image.digest.to_string(),
        rootfs: manifest.rootfs.digest.to_string(),
        layers: manifest.layers.len(),
        image_size: total,
        bundle_size,
        signatures: sigs
            .iter()
            .map(|s| SigOut {
                key_id: s.key_id.to_string(),
                fingerprint: s.fingerprint.to_string(),
                suite: s.suite.clone(),
            })
            .collect(),
    };
    ctx.out.json_doc(&o);
    ctx.out.line(format!(
        "{} {} {} → {}",
        ctx.out.good("packed"),
        ctx.out.bold(&o.name),
        o.version,
        o.output
    ));
    ctx.out
        .line(format!("  bundle digest  {}", o.bundle_digest));
    ctx.out.line(format!(
        "  image          {} ({} layer{}, {})",
        o.image_digest,
        o.layers,
        if o.layers == 1 { "" } else { "s" },
        human_bytes(total)
    ));
    for s in &o.signatures {
        ctx.out.line(format!(
            "  signed by      {} {} ({})",
            s.key_id, s.fingerprint, s.suite
        ));
    }
    Ok(())
}
