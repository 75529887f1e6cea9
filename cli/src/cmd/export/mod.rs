//! `ct export A.ctp B.ctp … -o site.tar [--include-keys] [--policy FILE]`: one deterministic
//! archive for an air-gapped site (spec/export.md). Every bundle is verified here first, with
//! this machine's trust store and the policy; the archive itself (index, each bundle's own files,
//! one blob pool, keys, policy) is `cerro_core::export::ExportWriter`'s, written to a temporary
//! file renamed into place. No network. `--format ostree` writes one bundle as an OSTree
//! commit instead (`ostree.rs`).

mod ostree;

use super::Ctx;
use crate::app::{ExportArgs, ExportFormat};
use crate::exit::{CmdResult, Failure};
use crate::output::{human_bytes, Progress};
use crate::steps::verify::{load_policy, print_report};
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::scan_bundle;
use cerro_core::export::{valid_file_name, ExportBundle, ExportError, ExportWriter};
use cerro_core::keys::PublicKeyFile;
use cerro_core::verify::{verify, VerifyContext};
use cerro_core::{KeyId, Sha256Digest};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// One bundle named on the command line, verified.
struct Input {
    path: PathBuf,
    file_name: String,
    file: BundleFile,
    file_size: u64,
    file_digest: Sha256Digest,
    /// Trust-store names of the valid, trusted signers.
    trusted: Vec<KeyId>,
}

pub fn run(ctx: &Ctx, a: ExportArgs) -> CmdResult<u8> {
    if a.format == ExportFormat::Ostree {
        return ostree::run(ctx, a);
    }
    let ostree_only = [
        ("--repo", a.repo.is_some()),
        ("--branch", a.branch.is_some()),
        ("--parent", a.parent.is_some()),
        ("--skip-special", a.skip_special),
        ("--mode", a.mode.is_some()),
        ("--key", a.key.is_some()),
        ("--passphrase-file", a.passphrase.passphrase_file.is_some()),
    ];
    if let Some((flag, _)) = ostree_only.iter().find(|(_, given)| *given) {
        return Err(Failure::usage(format!(
            "{flag} is for --format ostree; an archive takes -o OUT.tar"
        )));
    }
    let Some(output) = a.output.clone() else {
        return Err(Failure::usage("an archive needs -o OUT.tar")
            .hint("or pass --format ostree --repo REPO to write an OSTree commit"));
    };
    if output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", output.display()))
                .hint("pass --force to replace it"),
        );
    }
    let policy = load_policy(ctx, a.policy.as_deref())?;
    let policy_bytes = match &a.policy {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| Failure::io(format!("reading policy {}", p.display()), e))?,
        ),
        None => None,
    };
    let trust = ctx.cfg.trust_lookup()?;
    let vctx = VerifyContext {
        trust: &trust,
        policy: policy.as_ref().map(|(_, p)| p),
        now: chrono::Utc::now(),
    };

    // 1. Verify every bundle as `ct verify` does, hashing the whole file on the way.
    let mut inputs: Vec<Input> = Vec::new();
    for path in &a.bundles {
        match verify_input(ctx, path, &vctx, policy.as_ref().map(|(p, _)| p.as_path()))? {
            Ok(input) => inputs.push(input),
            Err(code) => return Ok(code),
        }
    }

    // 2. The archive: each bundle once, each blob once, the trusted signers' keys.
    let keys = if a.include_keys {
        included_keys(ctx, &inputs)?
    } else {
        Vec::new()
    };
    let bundles = inputs
        .iter()
        .map(|i| ExportBundle::of_file(i.file_name.clone(), i.file_size, i.file_digest, &i.file))
        .collect();
    let mut archive =
        ExportWriter::new(bundles, keys, policy_bytes).map_err(|e| conflict(&inputs, e))?;

    // 3. Write it.
    let mut progress = Progress::new(&ctx.out, "exporting", archive.blob_bytes());
    let size = crate::config::write_file_atomic(&output, 0o644, |file| {
        archive
            .write(file, &mut |n| progress.update(n))
            .map(drop)
            .map_err(|e| match e {
                ExportError::Mismatch(m) => Failure::new(crate::exit::HASH_MISMATCH, m).hint(
                    "nothing was exported; check the bundle with `ct verify` and export again",
                ),
                e => Failure::from(e).context(format!("writing {}", output.display())),
            })
    })?;
    progress.finish();

    print_exported(ctx, &a, &output, &archive, size);
    Ok(0)
}

/// Verify one bundle file as `ct verify` does, hashing the whole file on the way. A bundle that
/// does not verify has its report printed, and its exit code answered.
fn verify_input(
    ctx: &Ctx,
    path: &Path,
    vctx: &VerifyContext<'_>,
    policy: Option<&Path>,
) -> CmdResult<Result<Input, u8>> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| valid_file_name(n))
        .ok_or_else(|| {
            Failure::usage(format!(
                "{}: a bundle's file name must be a plain NAME.ctp (A-Z a-z 0-9 . _ - + @)",
                path.display()
            ))
        })?
        .to_string();
    let f = std::fs::File::open(path)
        .map_err(|e| Failure::io(format!("opening bundle {}", path.display()), e))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut progress = Progress::new(&ctx.out, format!("verifying {file_name}"), total);
    let mut hr = cerro_core::digest::HashingReader::new(BufReader::with_capacity(1 << 20, f));
    let raw = scan_bundle(&mut hr, &mut |n| progress.update(n))
        .map_err(|e| Failure::from(e).context(format!("bundle {}", path.display())))?;
    let (file_digest, file_size) = hr
        .finish()
        .map_err(|e| Failure::io(format!("reading bundle {}", path.display()), e))?;
    progress.finish();
    let rep = verify(&raw, vctx);
    if !rep.ok() {
        ctx.out.json_doc(&serde_json::json!({"ok": false, "exit_code": rep.exit_code(), "bundle": path, "report": rep}));
        print_report(ctx, path, &rep, policy);
        if !ctx.out.json {
            eprintln!("  nothing was exported");
        }
        return Ok(Err(rep.exit_code()));
    }
    let trusted = rep
        .signatures
        .iter()
        .filter_map(|s| s.trusted_as.clone())
        .collect();
    let file = BundleFile::open(path)?;
    Ok(Ok(Input {
        path: path.to_path_buf(),
        file_name,
        file,
        file_size,
        file_digest,
        trusted,
    }))
}

/// `--include-keys`: the trust store's key of every signer trusted for an exported bundle.
fn included_keys(ctx: &Ctx, inputs: &[Input]) -> CmdResult<Vec<PublicKeyFile>> {
    let mut keys: BTreeMap<KeyId, PublicKeyFile> = BTreeMap::new();
    let all = ctx.cfg.trusted_keys()?;
    for inp in inputs {
        for id in &inp.trusted {
            if let Some(k) = all.iter().find(|k| k.key_id == *id) {
                keys.insert(id.clone(), k.clone());
            }
        }
    }
    Ok(keys.into_values().collect())
}

/// What was written.
fn print_exported(ctx: &Ctx, a: &ExportArgs, output: &Path, archive: &ExportWriter<'_>, size: u64) {
    let index = archive.index();
    ctx.out.json_doc(&serde_json::json!({
        "ok": true,
        "output": output,
        "archive_size": size,
        "bundles": index.bundles,
        "blobs": archive.blob_count(),
        "blob_bytes": archive.blob_bytes(),
        "keys": index.keys,
        "policy": index.policy,
    }));
    ctx.out.line(format!(
        "{} {} bundle{} → {} ({}; {} blobs, {} of bundles in)",
        ctx.out.good("exported"),
        index.bundles.len(),
        if index.bundles.len() == 1 { "" } else { "s" },
        output.display(),
        human_bytes(size),
        archive.blob_count(),
        human_bytes(archive.bundle_bytes()),
    ));
    for b in &index.bundles {
        ctx.out.line(format!(
            "  {} {} {}  {}",
            ctx.out.bold(&b.name),
            b.version,
            b.file,
            b.bundle_digest
        ));
    }
    if !index.keys.is_empty() {
        let ids: Vec<&str> = index.keys.iter().map(|k| k.key_id.as_str()).collect();
        ctx.out.line(format!("  keys: {}", ids.join(", ")));
    }
    if index.policy {
        ctx.out.line(format!(
            "  policy: {}",
            a.policy.as_deref().unwrap_or(Path::new("")).display()
        ));
    }
}

/// The writer's refusal of two bundles, with their paths and what to do.
fn conflict(inputs: &[Input], e: ExportError) -> Failure {
    let path = |i: usize| inputs[i].path.display();
    match e {
        ExportError::SameManifest(p, q) => Failure::usage(format!(
            "{} and {} hold the same signed manifest with different signatures",
            path(p),
            path(q)
        ))
        .hint("export one of them, or combine their signatures with `ct re-sign --add-signature`"),
        ExportError::SameFileName(p, q) => Failure::usage(format!(
            "{} and {} have the same file name",
            path(p),
            path(q)
        ))
        .hint("rename one of them; bundles keep their file names through export and import"),
        e => Failure::from(e),
    }
}
