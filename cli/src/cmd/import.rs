//! `ct import site.tar -o DIR`: read an export archive (spec/export.md) with core's bounded
//! `ExportReader`, reassemble every bundle in a staging directory inside DIR with the
//! deterministic bundle writer while `ct verify`'s reader checks it, and only when all of them
//! verify move them into DIR — all or nothing. Trust is this machine's store, plus the archive's
//! keys only when asked. No network.
//! A single bundle given without `-o` goes to the store instead (`steps::import`).

use super::Ctx;
use crate::app::ImportArgs;
use crate::exit::{CmdResult, Failure};
use crate::steps::assemble::{persist, write_verified, Assembled, WriteError};
use crate::steps::verify::{load_policy, print_report};
use cerro_core::bundle::file::looks_like_bundle;
use cerro_core::export::{ExportError, ExportReader, ExportedBundle, POLICY_FILE};
use cerro_core::keys::PublicKeyFile;
use cerro_core::policy::Policy;
use cerro_core::verify::VerifyContext;
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::path::{Path, PathBuf};

/// One bundle, reassembled and verified, waiting to be moved into DIR.
struct Staged {
    file: String,
    name: String,
    version: String,
    bundle_digest: Sha256Digest,
    identical: bool,
    assembled: Assembled,
}

pub fn run(ctx: &Ctx, a: ImportArgs) -> CmdResult<u8> {
    if is_bundle(&a.archive)? {
        return import_single(ctx, &a);
    }
    if a.name.is_some() {
        return Err(Failure::usage(
            "--name applies to a single bundle, not to an export archive",
        ));
    }
    // Without -o the bundles go into the store: they are assembled and verified in a temporary
    // directory first (all of them, before anything lands), then imported one by one.
    let store_tmp = match &a.output {
        Some(_) => None,
        None => Some(
            tempfile::tempdir().map_err(|e| Failure::io("creating a temporary directory", e))?,
        ),
    };
    let out_dir = match (&a.output, &store_tmp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!("one of them is set"),
    };
    let ar = ExportReader::open(&a.archive).map_err(|e| match e {
        ExportError::IsBundle(_) => {
            Failure::from(e).hint("copy the .ctp where you want it, and check it with `ct verify`")
        }
        e => Failure::from(e),
    })?;
    let index = ar.index();

    let trust = trust(ctx, &ar, &a)?;

    let policy = policy(ctx, &ar, &a)?;
    let vctx = VerifyContext {
        trust: &trust,
        policy: policy.as_ref().map(|(_, p)| p),
        now: chrono::Utc::now(),
    };

    // Stage: DIR (created if needed, removed again on failure if we created it).
    let created_dir = !out_dir.exists();
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::io(format!("creating {}", out_dir.display()), e))?;
    let cleanup = |code_or_err: CmdResult<u8>| {
        if created_dir {
            let _ = std::fs::remove_dir_all(&out_dir);
        }
        code_or_err
    };
    let mut staged: Vec<Staged> = Vec::new();
    for b in &index.bundles {
        match stage(ctx, &ar, b, &out_dir, &vctx) {
            Ok(Ok(s)) => staged.push(s),
            Ok(Err((s, code))) => {
                let rep = &s.assembled.report;
                ctx.out.json_doc(&serde_json::json!({"ok": false, "exit_code": code, "archive": a.archive, "bundle": b.file, "report": rep}));
                print_report(
                    ctx,
                    Path::new(&b.file),
                    rep,
                    policy.as_ref().map(|(p, _)| p.as_path()),
                );
                if !ctx.out.json {
                    eprintln!("  nothing was imported: every bundle of the archive must verify");
                }
                drop(staged);
                drop(s);
                return cleanup(Ok(code));
            }
            Err(f) => {
                drop(staged);
                return cleanup(Err(f
                    .context(format!(
                        "archive {}, bundle {}",
                        a.archive.display(),
                        b.file
                    ))
                    .hint("nothing was imported")));
            }
        }
    }

    if store_tmp.is_some() {
        return into_store(ctx, &a, staged, &out_dir, &vctx);
    }

    // Every bundle verified: check the targets, then move them all into place.
    let unchanged = match unchanged_targets(&staged, &out_dir, a.force) {
        Ok(u) => u,
        Err(f) => return cleanup(Err(f)),
    };
    let mut report = Vec::new();
    for (s, same) in staged.into_iter().zip(unchanged) {
        let target = out_dir.join(&s.file);
        let entry = serde_json::json!({
            "file": s.file, "name": s.name, "version": s.version, "bundle_digest": s.bundle_digest,
            "file_digest": s.assembled.file_digest, "identical_to_exported": s.identical,
            "written": !same, "report": s.assembled.report,
        });
        if !same {
            persist(s.assembled, &target)?;
        }
        report.push(entry);
    }
    print_written(ctx, &a.archive, &out_dir, &report);
    Ok(0)
}

/// Which staged bundles are already in DIR, byte for byte; another file under a bundle's name
/// is refused unless `--force`.
fn unchanged_targets(staged: &[Staged], out_dir: &Path, force: bool) -> CmdResult<Vec<bool>> {
    let mut unchanged = vec![false; staged.len()];
    for (i, s) in staged.iter().enumerate() {
        let target = out_dir.join(&s.file);
        if target.exists() {
            let same = std::fs::File::open(&target)
                .and_then(|f| cerro_core::digest::hash_reader(std::io::BufReader::new(f)))
                .map(|(d, _)| Some(d) == s.assembled.file_digest)
                .unwrap_or(false);
            if same {
                unchanged[i] = true;
            } else if !force {
                return Err(Failure::usage(format!("{} exists with other content", target.display()))
                    .hint("pass --force to replace it, or import into another directory; nothing was imported"));
            }
        }
    }
    Ok(unchanged)
}

/// A single bundle (not an export archive) goes into the store, as `ct store` imports do.
fn import_single(ctx: &Ctx, a: &ImportArgs) -> CmdResult<u8> {
    if a.output.is_some() {
        return Err(Failure::usage(
            "-o DIR is for export archives; a bundle is imported into the store",
        )
        .hint(format!(
            "`ct import {}` imports it into the store",
            a.archive.display()
        )));
    }
    crate::steps::import::import_bundle(
        ctx,
        &a.archive,
        a.name.as_deref(),
        a.policy.as_deref(),
        downgrade(a),
    )
}

/// Trust: this machine's trust store, plus the archive's keys with `--trust-included-keys`.
fn trust(
    ctx: &Ctx,
    ar: &ExportReader,
    a: &ImportArgs,
) -> CmdResult<impl Fn(&Fingerprint) -> Option<KeyId>> {
    let mut trusted: Vec<PublicKeyFile> = ctx.cfg.trusted_keys()?;
    let included = ar.keys()?;
    if a.trust_included_keys {
        if included.is_empty() {
            return Err(Failure::usage(format!(
                "--trust-included-keys: archive {} carries no keys",
                a.archive.display()
            )));
        }
        trusted.extend(included.iter().cloned());
    }
    Ok(move |fp: &Fingerprint| {
        trusted
            .iter()
            .find(|k| k.fingerprint == *fp)
            .map(|k| k.key_id.clone().with_window(k.window()))
    })
}

/// The policy: `--policy`, else the archive's with `--use-included-policy`, else the default.
fn policy(ctx: &Ctx, ar: &ExportReader, a: &ImportArgs) -> CmdResult<Option<(PathBuf, Policy)>> {
    if a.use_included_policy {
        // The sender's policy must not quietly take the place of this machine's own.
        if let (Some(default), false) = (&ctx.cfg.file.default_policy, a.replace_default_policy) {
            return Err(Failure::usage(format!(
                "--use-included-policy would replace this machine's default policy {} (from \
                 config.toml) with the one in archive {}",
                default.display(),
                a.archive.display()
            ))
            .hint(
                "drop --use-included-policy to evaluate the default policy, or add \
                   --replace-default-policy to evaluate the archive's instead for this import",
            ));
        }
        let p = ar.policy()?.ok_or_else(|| {
            Failure::usage(format!(
                "--use-included-policy: archive {} carries no {POLICY_FILE}",
                a.archive.display()
            ))
        })?;
        Ok(Some((a.archive.join(POLICY_FILE), p)))
    } else {
        load_policy(ctx, a.policy.as_deref())
    }
}

/// Into the store: every bundle was verified from the archive; write each assembled bundle,
/// verify it again from that file (which yields the witness the import takes), import it.
fn into_store(
    ctx: &Ctx,
    a: &ImportArgs,
    staged: Vec<Staged>,
    out_dir: &Path,
    vctx: &VerifyContext<'_>,
) -> CmdResult<u8> {
    let mut imported = Vec::new();
    for s in staged {
        let path = out_dir.join(&s.file);
        persist(s.assembled, &path)?;
        let raw = crate::steps::verify::scan(ctx, &path, "reading")?;
        // Verified above from the archive; verified again from the file written, which
        // yields the witness the import takes.
        let v = match cerro_core::verified::verify_bundle(&raw, vctx) {
            Ok(v) => v,
            Err(rep) => return Ok(rep.exit_code()),
        };
        crate::steps::import::import_verified(ctx, &path, &v, None, downgrade(a)).map_err(|f| {
            f.context(format!(
                "archive {}, bundle {}",
                a.archive.display(),
                s.file
            ))
            .hint(format!(
                "bundles imported before it stay in the store: {}",
                imported.join(", ")
            ))
        })?;
        imported.push(s.name.clone());
    }
    Ok(0)
}

/// What was written into DIR.
fn print_written(ctx: &Ctx, archive: &Path, out_dir: &Path, report: &[serde_json::Value]) {
    ctx.out.json_doc(&serde_json::json!({"ok": true, "exit_code": 0, "archive": archive, "output_dir": out_dir, "bundles": report}));
    ctx.out.line(format!(
        "{} {} bundle{} from {} → {}",
        ctx.out.good("imported"),
        report.len(),
        if report.len() == 1 { "" } else { "s" },
        archive.display(),
        out_dir.display()
    ));
    for r in report {
        ctx.out.line(format!(
            "  {} {} {}  {}{}{}",
            ctx.out.good("✓"),
            ctx.out.bold(r["name"].as_str().unwrap_or("")),
            r["version"].as_str().unwrap_or(""),
            r["file"].as_str().unwrap_or(""),
            if r["written"] == false { " (already there, unchanged)" } else { "" },
            if r["identical_to_exported"] == false { " (rewritten in canonical form: same content and signatures, other bytes than exported)" } else { "" },
        ));
    }
}

type StageResult = Result<Staged, (Staged, u8)>;

/// Reassemble one bundle into a temporary file in `dir` and verify it.
fn stage(
    ctx: &Ctx,
    ar: &ExportReader,
    b: &ExportedBundle,
    dir: &Path,
    vctx: &VerifyContext<'_>,
) -> CmdResult<StageResult> {
    let bundle = ar.bundle(b).map_err(|e| match e {
        ExportError::Mismatch(_) => Failure::from(e)
            .hint("the archive was damaged or altered after export; obtain a fresh copy"),
        e => Failure::from(e),
    })?;
    let assembled = match write_verified(
        &ctx.out,
        dir,
        &bundle.contents(),
        &mut ar.pool(),
        vctx,
        &format!("verifying {}", b.file),
        true,
    ) {
        Ok(x) => x,
        Err(WriteError::Bundle(e)) => return Err(Failure::from(e)),
        Err(WriteError::Failure(f)) => return Err(f),
    };
    let code = assembled.report.exit_code();
    let s = Staged {
        file: b.file.clone(),
        name: bundle.manifest.package.name.clone(),
        version: bundle.manifest.package.version.clone(),
        bundle_digest: b.bundle_digest,
        identical: assembled.file_digest == Some(b.file_digest) && assembled.size == b.file_size,
        assembled,
    };
    Ok(if code == 0 { Ok(s) } else { Err((s, code)) })
}

/// What a name does when the bundle is older than the one it names (`--allow-downgrade`).
fn downgrade(a: &ImportArgs) -> cerro_store::import::Downgrade {
    if a.allow_downgrade {
        cerro_store::import::Downgrade::Allow
    } else {
        cerro_store::import::Downgrade::Refuse
    }
}

/// True when `path` is a Cerro bundle rather than an export archive.
fn is_bundle(path: &Path) -> CmdResult<bool> {
    looks_like_bundle(path).map_err(|e| Failure::io(format!("opening {}", path.display()), e))
}
