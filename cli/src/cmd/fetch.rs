//! `ct fetch HOST/REPO:TAG -o OUT.ctp`: find the Cerro artifact of the image (referrers API, else
//! the `sha256-<hex>.ctp` tag), check its signatures against the trust store before downloading
//! layers, then stream every blob into the deterministic bundle writer while `ct verify`'s reader
//! checks the bytes written; OUT appears (atomically) only when it verifies. With `--create`, a
//! plain image is pulled and packed instead (`ct pack docker://…`).

use super::assemble::{persist, write_verified, WriteError};
use super::verify::{load_policy, print_report};
use super::Ctx;
use crate::app::{FetchArgs, PackArgs};
use crate::exit::{CmdResult, Failure, KEY_NOT_TRUSTED, MALFORMED, SIGNATURE_INVALID};
use crate::registry::artifact::{self, Part};
use crate::registry::client::{net_failure, repo_scope};
use crate::registry::download::{mismatch, Downloads, Feed, MISMATCH_HINT};
use crate::registry::manifests::{
    get_manifest, is_image_manifest, is_index, referrers, try_get_manifest,
};
use crate::registry::progress::MultiProgress;
use crate::registry::{Client, Reference, RegistryOptions};
use cerro_core::bundle::{layout, BundleContents, BundleError};
use cerro_core::manifest::{Descriptor, Manifest};
use cerro_core::sign::SignatureFile;
use cerro_core::verify::VerifyContext;
use cerro_core::Sha256Digest;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How the Cerro artifact was found.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum FoundVia {
    ReferrersApi,
    Tag,
}

pub fn run(ctx: &Ctx, a: FetchArgs) -> CmdResult<u8> {
    if a.create {
        let source = if a.image.starts_with("docker://") {
            a.image.clone()
        } else {
            format!("docker://{}", a.image)
        };
        return super::pack::run(
            ctx,
            PackArgs {
                source,
                output: a.output,
                keys: a.keys,
                name: a.name,
                version: a.version,
                force: a.force,
                passphrase: a.passphrase,
                registry: a.registry,
            },
        )
        .map(|_| 0);
    }
    if a.output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", a.output.display()))
                .hint("pass --force to replace it"),
        );
    }
    let policy = load_policy(ctx, a.policy.as_deref())?;
    let r = Reference::parse(&a.image).map_err(Failure::usage)?;
    let repo = r.repository.clone();
    let client = Client::connect(
        &r,
        &RegistryOptions::from(&a.registry),
        vec![repo_scope(&repo, false)],
    )?;

    // 1. The image manifest the tag (or digest) names.
    let img = get_manifest(&client, &repo, &r.manifest_reference(), r.digest.as_ref())?;
    if is_index(&img.media_type) {
        return Err(Failure::malformed(format!("{r} is an image index (several platforms), not a bundle pushed by ct (ct pushes one image manifest)"))
            .hint(format!("to pack it yourself: `ct fetch {} --create -o OUT.ctp -k KEY`", a.image)));
    }
    if !is_image_manifest(&img.media_type) {
        return Err(Failure::malformed(format!(
            "{r} is a {:?}, not an image manifest",
            img.media_type
        )));
    }
    let image_desc = Descriptor {
        media_type: img.media_type.clone(),
        digest: img.digest,
        size: img.bytes.len() as u64,
    };

    // 2. The Cerro artifact that refers to it.
    let (art_digest, via) = find_artifact(&client, &repo, &img.digest)?.ok_or_else(|| {
        Failure::malformed(format!(
            "{r} ({}) has no Cerro bundle attached: neither the referrers API nor the tag {} lists one",
            img.digest,
            artifact::fallback_tag(&img.digest)
        ))
        .hint(format!("it is a plain image; to pack and sign it yourself: `ct fetch {} --create -o OUT.ctp -k KEY`", a.image))
    })?;
    let art = get_manifest(&client, &repo, &art_digest.to_string(), Some(&art_digest))?;
    let bad_art = |why: String| {
        Failure::malformed(format!(
            "registry {}: the Cerro artifact {art_digest} of {r}: {why}",
            client.registry
        ))
        .hint("push the bundle again with `ct push`, or ask its publisher to")
    };
    let parsed = artifact::parse(&art.bytes).map_err(bad_art)?;
    if parsed.subject != img.digest {
        return Err(bad_art(format!(
            "it refers to image {}, not {}",
            parsed.subject, img.digest
        )));
    }

    // 3. The small files: signed manifest, summary, signatures.
    let manifest_bytes = get_small(
        &client,
        &repo,
        &parsed.manifest,
        cerro_core::manifest::MANIFEST_MAX_BYTES as u64,
    )?;
    let manifest = Manifest::parse(&manifest_bytes)
        .map_err(|e| bad_art(format!("{}: {e}", layout::MANIFEST_TOML)))?;
    let mut want_atts: Vec<(Sha256Digest, u64)> = manifest
        .attestations
        .iter()
        .map(|x| (x.digest, x.size))
        .collect();
    want_atts.sort();
    want_atts.dedup();
    let mut have_atts: Vec<(Sha256Digest, u64)> = parsed
        .attestations
        .iter()
        .map(|p| (p.digest, p.size))
        .collect();
    have_atts.sort();
    if want_atts != have_atts {
        return Err(bad_art(
            "its attestations are not the ones the signed manifest lists".into(),
        ));
    }
    let mut sigs = Vec::new();
    for (id, p) in &parsed.signatures {
        let bytes = get_small(
            &client,
            &repo,
            p,
            cerro_core::sign::SIGNATURE_MAX_BYTES as u64,
        )?;
        let s = SignatureFile::parse(&bytes).map_err(|e| bad_art(format!("{}: {e}", p.path)))?;
        if s.key_id.as_str() != id {
            return Err(bad_art(format!(
                "{} holds a signature by key id {:?}",
                p.path,
                s.key_id.as_str()
            )));
        }
        sigs.push(s);
    }

    // 4. Signatures and trust before the (large) download: the same outcome `ct verify` would
    // reach at its steps 2 and 3, only sooner.
    let trust = ctx.cfg.trust_lookup()?;
    early_trust_check(&sigs, &manifest_bytes, &trust, &r)?;

    // What is derived from the manifest, or must agree with it, is compared only now that its
    // signatures are known good: an edited manifest is a signature failure (exit 2), as in
    // `ct verify` (spec/bundle.md §7).
    if manifest.image != image_desc {
        return Err(bad_art(format!(
            "its signed manifest describes image {} ({} bytes, {}), but {r} is {} ({} bytes, {})",
            manifest.image.digest,
            manifest.image.size,
            manifest.image.media_type,
            image_desc.digest,
            image_desc.size,
            image_desc.media_type
        )));
    }
    if let Some(p) = &parsed.summary {
        let got = get_small(&client, &repo, p, layout::SMALL_FILE_MAX_BYTES)?;
        if got != layout::summary_json(&manifest, &manifest_bytes) {
            return Err(bad_art(format!(
                "{} does not match the signed manifest",
                layout::SUMMARY_JSON
            )));
        }
    }

    // 5. Download while writing, verify while writing.
    let parent = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".ct-fetch-")
        .tempdir_in(parent)
        .map_err(|e| {
            Failure::io(
                format!("creating a temporary directory in {}", parent.display()),
                e,
            )
        })?;
    let mut order: Vec<(Sha256Digest, u64)> = want_atts.clone();
    let mut image_blobs: Vec<(Sha256Digest, u64)> =
        manifest.image_blobs().map(|d| (d.digest, d.size)).collect();
    image_blobs.sort();
    image_blobs.dedup();
    order.extend(image_blobs);
    let mut memory = BTreeMap::new();
    memory.insert(img.digest, img.bytes.clone());
    let progress = MultiProgress::new(&ctx.out);
    let downloads = Downloads::new(&client, &repo, order, memory, staging.path(), &progress);
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes: &manifest_bytes,
        signatures: &sigs,
    };
    let vctx = VerifyContext {
        trust: &trust,
        policy: policy.as_ref().map(|(_, p)| p),
        now: chrono::Utc::now(),
    };
    let result = std::thread::scope(|s| {
        for _ in 1..a.registry.jobs.max(1) {
            s.spawn(|| downloads.worker());
        }
        let r = write_verified(
            // The per-blob bars are the progress here; no overall line on top of them.
            &crate::output::Output {
                progress: false,
                ..ctx.out.clone()
            },
            parent,
            &contents,
            &mut Feed(&downloads),
            &vctx,
            "fetching",
            false,
        );
        downloads.cancel();
        r
    });
    progress.clear();
    let assembled = match result {
        Ok(x) => x,
        Err(e) => {
            // A network failure or a digest mismatch recorded by the downloads explains the
            // writer's error better than the writer can.
            if let Some(f) = downloads.failure.lock().expect("lock").take() {
                return Err(f.context(format!("fetching {r}")));
            }
            return Err(match e {
                WriteError::Bundle(BundleError::Mismatch(m)) => Failure::new(
                    crate::exit::HASH_MISMATCH,
                    format!("registry {}: {m}", client.registry),
                )
                .hint(MISMATCH_HINT),
                WriteError::Bundle(e) => Failure::from(e).context(format!("fetching {r}")),
                WriteError::Failure(f) => f,
            });
        }
    };
    drop(staging);
    let report = assembled.report.clone();
    let rep = &report;
    let code = rep.exit_code();
    ctx.out.json_doc(&serde_json::json!({
        "ok": rep.ok(),
        "exit_code": code,
        "image": r.to_string(),
        "image_digest": img.digest,
        "artifact_digest": art_digest,
        "found_via": via,
        "output": if rep.ok() { Some(&a.output) } else { None },
        "bundle_size": assembled.size,
        "policy_file": policy.as_ref().map(|(p, _)| p),
        "report": rep,
    }));
    if rep.ok() {
        let size = assembled.size;
        persist(assembled, &a.output)?;
        ctx.out.line(format!(
            "{} {r} → {} ({}, Cerro artifact {art_digest} via {})",
            ctx.out.good("fetched"),
            a.output.display(),
            crate::output::human_bytes(size),
            match via {
                FoundVia::ReferrersApi => "the referrers API",
                FoundVia::Tag => "its fallback tag",
            }
        ));
        print_report(
            ctx,
            &a.output,
            rep,
            policy.as_ref().map(|(p, _)| p.as_path()),
        );
    } else {
        print_report(
            ctx,
            &a.output,
            rep,
            policy.as_ref().map(|(p, _)| p.as_path()),
        );
        if !ctx.out.json {
            eprintln!("  nothing was written to {}", a.output.display());
        }
    }
    Ok(code)
}

/// The Cerro artifact referring to `image`: through the referrers API when the registry has it
/// (the one the fallback tag names when there are several), else through the fallback tag.
fn find_artifact(
    c: &Client,
    repo: &str,
    image: &Sha256Digest,
) -> CmdResult<Option<(Sha256Digest, FoundVia)>> {
    let tag = artifact::fallback_tag(image);
    if let Some(list) = referrers(c, repo, image, artifact::ARTIFACT_TYPE_V1)? {
        match list.len() {
            0 => {}
            1 => return Ok(Some((list[0].digest, FoundVia::ReferrersApi))),
            _ => {
                // Several (re-signed and pushed again): the tag names the latest push.
                if let Some(t) = try_get_manifest(c, repo, &tag, None)? {
                    if list.iter().any(|d| d.digest == t.digest) {
                        return Ok(Some((t.digest, FoundVia::ReferrersApi)));
                    }
                }
                return Ok(Some((list[0].digest, FoundVia::ReferrersApi)));
            }
        }
    }
    Ok(try_get_manifest(c, repo, &tag, None)?.map(|m| (m.digest, FoundVia::Tag)))
}

/// Download a small artifact file into memory, checking size and digest.
fn get_small(c: &Client, repo: &str, p: &Part, max: u64) -> CmdResult<Vec<u8>> {
    if p.size > max {
        return Err(Failure::new(
            MALFORMED,
            format!(
                "registry {}: {} is {} bytes, more than the {max} allowed",
                c.registry, p.path, p.size
            ),
        ));
    }
    let mut r = crate::registry::download::BlobReader::open(c, repo, p.digest, p.size)?;
    let mut v = Vec::with_capacity(p.size as usize);
    if let Err(e) = r.read_to_end(&mut v) {
        return Err(r
            .failure
            .take()
            .unwrap_or_else(|| net_failure(&c.registry, format!("downloading {}: {e}", p.path))));
    }
    let got = Sha256Digest::of(&v);
    if got != p.digest || v.len() as u64 != p.size {
        return Err(
            mismatch(&c.registry, repo, &p.digest, p.size, v.len() as u64, &got).context(&p.path),
        );
    }
    Ok(v)
}

/// Exit 2 when a signature does not verify (or there is none), 3 when no valid one is trusted.
fn early_trust_check(
    sigs: &[SignatureFile],
    manifest: &[u8],
    trust: &dyn Fn(&cerro_core::Fingerprint) -> Option<cerro_core::KeyId>,
    r: &Reference,
) -> CmdResult {
    if sigs.is_empty() {
        return Err(Failure::new(
            SIGNATURE_INVALID,
            format!("the bundle at {r} is not signed"),
        )
        .hint("nothing was downloaded; ask its publisher for a signed bundle"));
    }
    for s in sigs {
        s.verify(manifest).map_err(|e| {
            Failure::new(SIGNATURE_INVALID, format!("the bundle at {r}: {e}"))
                .hint("do not use it: it was changed after it was signed, or the signature is forged; nothing was downloaded")
        })?;
    }
    if !sigs.iter().any(|s| trust(&s.fingerprint).is_some()) {
        let who: Vec<String> = sigs
            .iter()
            .map(|s| format!("{} ({})", s.key_id, s.fingerprint))
            .collect();
        return Err(Failure::new(KEY_NOT_TRUSTED, format!("the bundle at {r} is signed by no key in the trust store; signed by: {}", who.join(", ")))
            .hint("if you trust the signer, import their public key with `ct key import FILE` after checking its fingerprint with them; nothing was downloaded"));
    }
    Ok(())
}
