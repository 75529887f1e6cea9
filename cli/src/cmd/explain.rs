//! `ct explain BUNDLE`: the same checks as `ct verify`, told for someone who has never seen the
//! format: what the package is, where it came from, what each layer and signature is, and the
//! verdict with its reason. Exits with the verdict's code.

use super::Ctx;
use crate::app::ExplainArgs;
use crate::exit::CmdResult;
use crate::output::{human_bytes, safe, Output};
use crate::steps::verify::{check, load_policy};
use cerro_core::manifest::Manifest;
use cerro_core::pack::{EPOCH, UNVERSIONED};
use cerro_core::policy::Verdict;
use cerro_core::source::{layer_compression, Compression};
use cerro_core::verify::VerifyReport;
use std::io::Read;
use std::path::Path;

pub fn run(ctx: &Ctx, a: ExplainArgs) -> CmdResult<u8> {
    let policy = load_policy(ctx, a.policy.as_deref())?;
    let rep = check(ctx, &a.bundle, policy.as_ref().map(|(_, p)| p))?;
    ctx.out.json_doc(&serde_json::json!({
        "ok": rep.ok(),
        "exit_code": rep.exit_code(),
        "bundle": a.bundle,
        "policy_file": policy.as_ref().map(|(p, _)| p),
        "report": rep,
    }));
    if ctx.out.json {
        // As for every command: the failure's readable line also goes to stderr.
        if let Some(f) = &rep.failure {
            eprintln!("{} {}", ctx.out.bad("FAILED:"), safe(&f.message));
        }
        return Ok(rep.exit_code());
    }
    let all = !a.signers && !a.layers && !a.attestations;
    if let Some(m) = &rep.manifest {
        package(&ctx.out, m, &rep, &a.bundle);
        if all || a.layers {
            layers(&ctx.out, m, &rep);
        }
        if (all || a.attestations) && rep.ok() {
            attestations(&ctx.out, m, &rep, &a.bundle);
        }
    }
    if all || a.signers {
        signatures(&ctx.out, &rep);
    }
    verdict(&ctx.out, &rep, policy.as_ref().map(|(p, _)| p.as_path()));
    Ok(rep.exit_code())
}

/// What the package is and where it came from.
fn package(o: &Output, m: &Manifest, rep: &VerifyReport, bundle: &Path) {
    o.line(o.bold(&format!("Package {} {}", m.package.name, m.package.version)));
    if m.package.version == UNVERSIONED {
        o.line("  (no version was given when it was packed, and the image has no version label)");
    }
    let created = if m.package.created == EPOCH {
        format!(
            "{} (the image config records no creation time)",
            m.package.created
        )
    } else {
        m.package.created.clone()
    };
    o.line(format!(
        "  created     {created}  — from the image config, signed"
    ));
    o.line(format!(
        "  source      {}  (source digest {})",
        m.source.reference, m.source.digest
    ));
    o.line(format!("  image       {}  — the OCI manifest digest; `skopeo inspect oci-archive:{}` shows the same", m.image.digest, bundle.display()));
    o.line(format!(
        "  rootfs      {}  — the merged root filesystem the layers give, signed (`ct verify --deep` recomputes it)",
        m.rootfs.digest
    ));
    o.line(format!(
        "  bundle      {}  — SHA-256 of the signed manifest (cerro/manifest.toml)",
        rep.bundle_digest.map(|d| d.to_string()).unwrap_or_default()
    ));
    if m.attestations.is_empty() {
        o.line("  provenance  none: the bundle carries no provenance, SBOM or transparency-log attestation");
    } else {
        for at in &m.attestations {
            o.line(format!(
                "  attestation {} ({}, {}, {})",
                at.kind,
                at.media_type,
                at.digest,
                human_bytes(at.size)
            ));
        }
    }
}

/// What each attestation says, read again from the bundle and checked against its signed
/// digest before it is parsed (only for a bundle that verified).
fn attestations(o: &Output, m: &Manifest, rep: &VerifyReport, bundle: &Path) {
    use cerro_core::bundle::BlobSource;
    if m.attestations.is_empty() {
        return;
    }
    o.line("");
    o.line(o.bold("Attestations (signed with the manifest)"));
    let Ok(mut file) = cerro_core::bundle::file::BundleFile::open(bundle) else {
        o.line("  (the bundle could not be read again)");
        return;
    };
    for at in &m.attestations {
        let mut body = Vec::new();
        let read = file
            .open_blob(&at.digest, at.size)
            .ok()
            .and_then(|r| r.take(at.size).read_to_end(&mut body).ok());
        if read.is_none() || cerro_core::Sha256Digest::of(&body) != at.digest {
            o.line(format!(
                "  {}: could not be read again, or changed since it was verified",
                at.kind
            ));
            continue;
        }
        match (at.kind.as_str(), at.media_type.as_str()) {
            ("sbom", cerro_core::sbom::SPDX_MEDIA_TYPE) => match cerro_core::sbom::summary(&body) {
                Ok(s) => {
                    o.line(format!(
                        "  sbom        {}: {} packages from the image's package database, made by {}",
                        safe(&s.spdx_version),
                        s.packages,
                        safe(&s.creators.join(", "))
                    ));
                    o.line(if s.licenses.is_empty() {
                        "              licences: none stated by the package database (dpkg's states none)".to_string()
                    } else {
                        format!("              licences stated: {}", safe(&s.licenses.join(", ")))
                    });
                }
                Err(e) => o.line(format!(
                    "  sbom        does not parse as SPDX JSON: {}",
                    safe(&e)
                )),
            },
            ("provenance", cerro_core::provenance::DSSE_MEDIA_TYPE) => {
                match cerro_core::provenance::open(&body) {
                    Ok(p) => {
                        let s = p.summary();
                        o.line(format!(
                            "  provenance  SLSA v1, built by {} {} ({})",
                            safe(&s.builder_id),
                            safe(&s.builder_version),
                            safe(&s.build_type)
                        ));
                        o.line(format!(
                            "              from {} ({})",
                            safe(&s.source),
                            safe(&s.source_digest)
                        ));
                        // What verification made of the envelope's signatures, by key name.
                        let checked = rep
                            .blobs
                            .iter()
                            .find(|b| b.digest == at.digest)
                            .and_then(|b| b.note.as_deref())
                            .and_then(|n| n.strip_prefix("DSSE signatures: "));
                        o.line(match checked {
                            Some(c) => {
                                format!("              DSSE envelope signatures: {}", safe(c))
                            }
                            None => format!(
                                "              DSSE envelope signed by {} (not checked)",
                                safe(&s.signed_by.join(", "))
                            ),
                        });
                    }
                    Err(e) => o.line(format!(
                        "  provenance  does not parse as a DSSE envelope of SLSA provenance: {}",
                        safe(&e)
                    )),
                }
            }
            (kind, media) => o.line(format!(
                "  {kind}  {} ({}) — not summarised by this version of ct",
                safe(media),
                human_bytes(at.size)
            )),
        }
    }
}

/// Each layer, in the order it is applied, and the config.
fn layers(o: &Output, m: &Manifest, rep: &VerifyReport) {
    o.line("");
    o.line(o.bold(&format!(
        "Layers ({}, {} in all; applied in this order to build the root filesystem)",
        m.layers.len(),
        human_bytes(m.layers.iter().map(|l| l.size).sum())
    )));
    for (i, l) in m.layers.iter().enumerate() {
        let comp = match layer_compression(&l.media_type) {
            Some(Compression::Gzip) => "gzip",
            Some(Compression::Zstd) => "zstd",
            Some(Compression::None) => "uncompressed",
            None => "unknown",
        };
        let ok = rep
            .blobs
            .iter()
            .find(|b| b.digest == l.digest)
            .map(|b| b.ok)
            .unwrap_or(false);
        o.line(format!(
            "  {:>2}. {}  {:>10}  {comp} tar  {}",
            i + 1,
            l.digest,
            human_bytes(l.size),
            if ok {
                o.good("digest matches")
            } else {
                o.bad("digest NOT verified")
            }
        ));
    }
    o.line(format!(
        "  config  {}  {}",
        m.config.digest,
        human_bytes(m.config.size)
    ));
}

/// Each signature, and why it counts or not.
fn signatures(o: &Output, rep: &VerifyReport) {
    o.line("");
    o.line(o.bold(&format!("Signatures ({})", rep.signatures.len())));
    if rep.signatures.is_empty() {
        o.line("  none — an unsigned bundle is never accepted");
    }
    for s in &rep.signatures {
        let fp = s
            .fingerprint
            .map(|f| f.to_string())
            .unwrap_or_else(|| "?".into());
        let raw_suite = s.suite.as_deref().unwrap_or("?");
        // The suite string is the signature file's, unvalidated.
        let suite = cerro_core::text::show_text(raw_suite, 64);
        o.line(format!(
            "  {} — {} ({suite}, {})",
            s.key_id,
            fp,
            cerro_core::sign::Suite::from_id(raw_suite)
                .map_or("a suite this ct does not know", |x| x.description())
        ));
        let why = match (s.valid, s.trusted) {
            (true, true) => o.good(&format!(
                "valid and trusted: the signature matches the manifest, and this fingerprint is in your trust store{}",
                s.trusted_as.as_ref().filter(|n| n.as_str() != s.key_id).map(|n| format!(" (as {n})")).unwrap_or_default()
            )),
            (true, false) if s.trusted_as.is_some() => o.warn(&format!("valid but NOT trusted for this bundle: {}", safe(s.problem.as_deref().unwrap_or("outside the key's validity window")))),
            (true, false) => o.warn("valid but NOT trusted: the signature matches, but this key is not in your trust store (`ct key import` it once you have checked the fingerprint with its owner)"),
            _ => o.bad(&format!("INVALID: {}", safe(s.problem.as_deref().unwrap_or("the signature does not verify")))),
        };
        o.line(format!("      {why}"));
    }
}

/// The policy's verdict and the outcome, with what to do about a failure.
fn verdict(o: &Output, rep: &VerifyReport, policy: Option<&Path>) {
    o.line("");
    match (&rep.policy, policy) {
        (Some(Verdict::Accept { notes }), Some(p)) => o.line(format!("Policy {}: accepted. {}", p.display(), notes.join("; "))),
        (Some(Verdict::Reject(r)), Some(p)) => o.line(format!("Policy {}: rule {} rejects it: {}", p.display(), r.rule, r.reason)),
        (None, None) => o.line("Policy: none given (--policy FILE or default_policy in config.toml); a bundle is accepted when a signer is in your trust store."),
        _ => {}
    }
    match &rep.failure {
        None => o.line(format!("{} every blob matches the signed manifest, and the signature chain ends in your trust store.", o.good("Verdict: VERIFIED —"))),
        Some(f) => {
            o.line(format!("{} {}", o.bad(&format!("Verdict: REJECTED (exit {}) —", f.exit_code)), safe(&f.message)));
            o.line(format!("  what to do: {}", safe(&f.hint)));
        }
    }
}
