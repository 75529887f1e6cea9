//! `ct re-sign BUNDLE -k KEY [--add-signature] [-o OUT]`: replace (or add to) a bundle's
//! signatures without changing any content digest — for key rotation and co-signing. The content
//! is checked first (every blob against the manifest): a signature is never put on bytes that
//! do not match what it signs. BUNDLE is rewritten atomically unless `-o` is given.

use super::pack::{signers, write_bundle_file};
use super::verify::scan;
use super::Ctx;
use crate::app::ResignArgs;
use crate::exit::{CmdResult, Failure, SIGNATURE_INVALID};
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::BundleContents;
use cerro_core::manifest::Manifest;
use cerro_core::sign::SignatureFile;
use cerro_core::verify::verify_content;

pub fn run(ctx: &Ctx, a: ResignArgs) -> CmdResult {
    let output = a.output.clone().unwrap_or_else(|| a.bundle.clone());
    if a.output.is_some() && output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", output.display()))
                .hint("pass --force to replace it"),
        );
    }
    let new_signers = signers(ctx, &a.keys, a.passphrase.passphrase_file.as_deref())?;
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
    let mut sigs: Vec<SignatureFile> = Vec::new();
    if a.add_signature {
        for (id, bytes) in &raw.signatures {
            let s = SignatureFile::parse(bytes)
                .map_err(|e| Failure::malformed(format!("cerro/signatures/{id}.sig: {e}")))?;
            if new_signers.iter().any(|n| n.key_id == s.key_id) {
                continue; // re-signing with the same key id replaces its signature
            }
            s.verify(manifest_bytes).map_err(|e| {
                Failure::new(
                    SIGNATURE_INVALID,
                    format!("bundle {}: existing {e}", a.bundle.display()),
                )
                .hint("re-sign without --add-signature to replace every signature")
            })?;
            sigs.push(s);
        }
    }
    sigs.extend(new_signers.iter().map(|s| s.sign(manifest_bytes)));
    let mut src = BundleFile::open(&a.bundle)?;
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes,
        signatures: &sigs,
    };
    write_bundle_file(ctx, &output, &contents, &mut src, "re-signing")
        .map_err(|e| e.context(format!("re-signing {}", a.bundle.display())))?;

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
        a.bundle.display(),
        output.display()
    ));
    ctx.out.line(format!(
        "  content unchanged: bundle digest {}, image {}",
        manifest.digest(),
        manifest.image.digest
    ));
    for s in &sigs {
        ctx.out.line(format!(
            "  signed by {} {} ({})",
            s.key_id, s.fingerprint, s.suite
        ));
    }
    Ok(())
}
