//! `ct re-sign BUNDLE -k KEY [--add-signature] [--attach FILE.sig] [-o OUT]`: replace (or add
//! to) a bundle's signatures without changing any content digest — for key rotation and
//! co-signing, in any suite (a post-quantum signature beside an Ed25519 one), and for signatures
//! made elsewhere. The content is checked first (every blob against the manifest): a signature
//! is never put on bytes that do not match what it signs, and an attached one must verify over
//! the manifest. BUNDLE is rewritten atomically unless `-o` is given.

use super::Ctx;
use crate::app::ResignArgs;
use crate::exit::{CmdResult, Failure, SIGNATURE_INVALID};
use crate::steps::sign::{check_windows, signers, write_bundle_file, SigningKey};
use crate::steps::verify::scan;
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::{BundleContents, RawBundle};
use cerro_core::manifest::Manifest;
use cerro_core::sign::SignatureFile;
use cerro_core::verify::verify_content;
use cerro_core::KeyId;
use std::path::{Path, PathBuf};

pub fn run(ctx: &Ctx, a: ResignArgs) -> CmdResult {
    let output = a.output.clone().unwrap_or_else(|| a.bundle.clone());
    if a.output.is_some() && output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", output.display()))
                .hint("pass --force to replace it"),
        );
    }
    // Attached signature files are read first: a missing or malformed one fails before any
    // passphrase is asked for.
    let attached = read_attached(&a.attach)?;
    let add = a.add_signature || !a.attach.is_empty();
    let new_signers: Vec<SigningKey> = if a.keys.is_empty() && !a.attach.is_empty() {
        Vec::new()
    } else {
        signers(ctx, &a.keys, a.passphrase.passphrase_file.as_deref())?
    };
    let raw = scan(ctx, &a.bundle, "checking")?;
    let rep = verify_content(&raw);
    if let Some(f) = rep.failure {
        return Err(Failure {
            code: f.exit_code,
            message: format!("bundle {}: {}", a.bundle.display(), f.message),
            hint: Some(format!("{}; nothing was signed", f.hint)),
        });
    }
    let manifest_bytes = raw
        .manifest
        .as_deref()
        .expect("verify_content checked the manifest");
    let manifest = Manifest::parse(manifest_bytes).expect("verify_content parsed the manifest");
    check_windows(&new_signers, &manifest.package.created)?;
    for (f, s) in a.attach.iter().zip(&attached) {
        s.verify(manifest_bytes).map_err(|e| {
            Failure::new(SIGNATURE_INVALID, format!("{}: {e}", f.display())).hint(
                "the attached signature must be over this bundle's manifest (spec/signature.md §2); nothing was written",
            )
        })?;
    }
    let new_ids: Vec<&KeyId> = new_signers
        .iter()
        .map(|k| &k.signer.key_id)
        .chain(attached.iter().map(|s| &s.key_id))
        .collect();
    if let Some(dup) = new_ids
        .iter()
        .enumerate()
        .find(|(i, id)| new_ids[..*i].contains(id))
        .map(|(_, id)| id)
    {
        return Err(Failure::usage(format!(
            "two new signatures have key id {dup}; a bundle holds one signature per key id"
        )));
    }
    let mut sigs = if add {
        kept_signatures(&raw, manifest_bytes, &new_ids, &a.bundle)?
    } else {
        Vec::new()
    };
    sigs.extend(new_signers.iter().map(|s| s.signer.sign(manifest_bytes)));
    sigs.extend(attached);
    sigs.sort_by(|x, y| x.key_id.cmp(&y.key_id));
    let mut src = BundleFile::open(&a.bundle)?;
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes,
        signatures: &sigs,
    };
    write_bundle_file(ctx, &output, &contents, &mut src, "re-signing")
        .map_err(|e| e.context(format!("re-signing {}", a.bundle.display())))?;

    report(ctx, &a.bundle, &output, &manifest, &sigs);
    Ok(())
}

/// The signature files given with `--attach`, parsed (checked against the manifest later).
fn read_attached(files: &[PathBuf]) -> CmdResult<Vec<SignatureFile>> {
    files
        .iter()
        .map(|f| {
            let bytes =
                std::fs::read(f).map_err(|e| Failure::io(format!("reading {}", f.display()), e))?;
            SignatureFile::parse(&bytes)
                .map_err(|e| Failure::malformed(format!("{}: {e}", f.display())))
        })
        .collect()
}

/// With `--add-signature`: the bundle's signatures that stay — each must verify over the
/// manifest; one with a key id being re-signed is replaced.
fn kept_signatures(
    raw: &RawBundle,
    manifest_bytes: &[u8],
    new_ids: &[&KeyId],
    bundle: &Path,
) -> CmdResult<Vec<SignatureFile>> {
    let mut sigs = Vec::new();
    for (id, bytes) in &raw.signatures {
        let s = SignatureFile::parse(bytes)
            .map_err(|e| Failure::malformed(format!("cerro/signatures/{id}.sig: {e}")))?;
        if new_ids.contains(&&s.key_id) {
            continue; // re-signing with the same key id replaces its signature
        }
        s.verify(manifest_bytes).map_err(|e| {
            Failure::new(
                SIGNATURE_INVALID,
                format!("bundle {}: existing {e}", bundle.display()),
            )
            .hint("re-sign without --add-signature to replace every signature")
        })?;
        sigs.push(s);
    }
    Ok(sigs)
}

fn report(ctx: &Ctx, bundle: &Path, output: &Path, manifest: &Manifest, sigs: &[SignatureFile]) {
    let signed_by: Vec<serde_json::Value> = sigs.iter().map(|s| serde_json::json!({"key_id": s.key_id, "fingerprint": s.fingerprint, "suite": s.suite})).collect();
    ctx.out.json_doc(&serde_json::json!({
        "ok": true,
        "output": output,
        "bundle_digest": manifest.digest(),
        "image_digest": manifest.image.digest,
        "signatures": signed_by,
    }));
    ctx.out.line(format!(
        "{} {} → {}",
        ctx.out.good("re-signed"),
        bundle.display(),
        output.display()
    ));
    ctx.out.line(format!(
        "  content unchanged: bundle digest {}, image {}",
        manifest.digest(),
        manifest.image.digest
    ));
    for s in sigs {
        ctx.out.line(format!(
            "  signed by {} {} ({})",
            s.key_id, s.fingerprint, s.suite
        ));
    }
}
