//! Verifying a bundle file, the one way every command does it: load the policy, read the file
//! once (with progress) and check it, print the report.

use crate::cmd::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::{human_bytes, safe, Progress};
use cerro_core::bundle::{scan_bundle, RawBundle};
use cerro_core::policy::{Policy, Verdict};
use cerro_core::verify::{verify, VerifyContext, VerifyReport};
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Load the policy named on the command line or in config.toml (None: trust store only).
pub fn load_policy(ctx: &Ctx, arg: Option<&Path>) -> CmdResult<Option<(PathBuf, Policy)>> {
    let Some(path) = arg
        .map(Path::to_path_buf)
        .or_else(|| ctx.cfg.file.default_policy.clone())
    else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path)
        .map_err(|e| Failure::io(format!("reading policy {}", path.display()), e))?;
    let p = Policy::parse(&bytes).map_err(|e| {
        Failure::malformed(format!("policy {}: {e}", path.display()))
            .hint("check it with `ct policy check FILE`")
    })?;
    Ok(Some((path, p)))
}

/// Read a whole bundle file once (with progress), hashing every blob.
pub fn scan(ctx: &Ctx, bundle: &Path, label: &str) -> CmdResult<RawBundle> {
    let f = std::fs::File::open(bundle)
        .map_err(|e| Failure::io(format!("opening bundle {}", bundle.display()), e))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut progress = Progress::new(&ctx.out, label, total);
    let raw = scan_bundle(BufReader::with_capacity(1 << 20, f), &mut |n| {
        progress.update(n)
    })
    .map_err(|e| Failure::from(e).context(format!("bundle {}", bundle.display())))?;
    progress.finish();
    Ok(raw)
}

/// Read and verify a bundle file. Errors are only for bundles that cannot be read at all.
pub fn check(ctx: &Ctx, bundle: &Path, policy: Option<&Policy>) -> CmdResult<VerifyReport> {
    check_at(ctx, bundle, policy, chrono::Utc::now())
}

/// [`check`] as of `now`.
pub fn check_at(
    ctx: &Ctx,
    bundle: &Path,
    policy: Option<&Policy>,
    now: chrono::DateTime<chrono::Utc>,
) -> CmdResult<VerifyReport> {
    let raw = scan(ctx, bundle, "verifying")?;
    let trust = ctx.cfg.trust_lookup()?;
    Ok(verify(
        &raw,
        &VerifyContext {
            trust: &trust,
            policy,
            now,
        },
    ))
}

pub fn print_report(ctx: &Ctx, bundle: &Path, rep: &VerifyReport, policy: Option<&Path>) {
    print_report_with(ctx, bundle, rep, policy, None)
}

/// `print_report`, plus the line of a further check that passed (`--deep`'s rootfs check, an
/// OSTree commit's tree), shown before the verdict.
pub fn print_report_with(
    ctx: &Ctx,
    bundle: &Path,
    rep: &VerifyReport,
    policy: Option<&Path>,
    passed: Option<String>,
) {
    let o = &ctx.out;
    if o.json {
        // The report is on stdout; a failure still gets its one readable line on stderr.
        if let Some(f) = &rep.failure {
            eprintln!("{} {}", o.bad("FAILED:"), safe(&f.message));
        }
        return;
    }
    let tick = o.good("✓");
    let cross = o.bad("✗");
    if let Some(m) = &rep.manifest {
        o.line(format!(
            "{} {}  {}",
            o.bold(&m.package.name),
            m.package.version,
            o.dim(&bundle.display().to_string())
        ));
        o.line(format!(
            "  {tick} layout and canonical manifest (bundle digest {})",
            rep.bundle_digest.map(|d| d.to_string()).unwrap_or_default()
        ));
    }
    for s in &rep.signatures {
        let mark = if s.valid && s.trusted { &tick } else { &cross };
        let state = match (s.valid, s.trusted) {
            (true, true) => format!(
                "valid, trusted{}",
                s.trusted_as
                    .as_ref()
                    .filter(|n| n.as_str() != s.key_id)
                    .map(|n| format!(" as {n}"))
                    .unwrap_or_default()
            ),
            (true, false) if s.trusted_as.is_some() => {
                "valid, NOT trusted for this bundle: outside the key's validity window".into()
            }
            (true, false) => "valid, NOT trusted".into(),
            _ => "INVALID".into(),
        };
        o.line(format!(
            "  {mark} signature {} {} ({}, {state})",
            s.key_id,
            s.fingerprint.map(|f| f.to_string()).unwrap_or_default(),
            // The suite string is the signature file's, unvalidated.
            cerro_core::text::show_text(s.suite.as_deref().unwrap_or("?"), 64)
        ));
    }
    let ok_blobs = rep.blobs.iter().filter(|b| b.ok).count();
    if !rep.blobs.is_empty() && ok_blobs > 0 {
        let bytes: u64 = rep.blobs.iter().map(|b| b.size).sum();
        let mark = if ok_blobs == rep.blobs.len() {
            &tick
        } else {
            &cross
        };
        o.line(format!(
            "  {mark} {ok_blobs} of {} blobs match the signed digests ({})",
            rep.blobs.len(),
            human_bytes(bytes)
        ));
    }
    for b in rep.blobs.iter().filter(|b| b.problem.is_some()) {
        o.line(format!(
            "  {cross} {}: {}",
            b.role,
            safe(b.problem.as_deref().unwrap_or(""))
        ));
    }
    match (&rep.policy, policy) {
        (Some(Verdict::Accept { notes }), Some(p)) => o.line(format!(
            "  {tick} policy {} accepts it{}",
            p.display(),
            if notes.is_empty() {
                String::new()
            } else {
                format!(": {}", notes.join("; "))
            }
        )),
        (Some(Verdict::Reject(r)), Some(p)) => o.line(format!(
            "  {cross} policy {} rejects it: rule {}: {}",
            p.display(),
            r.rule,
            r.reason
        )),
        (None, None) if rep.ok() => o.line(format!(
            "  {} no policy given: any signer in the trust store is accepted",
            o.dim("·")
        )),
        _ => {}
    }
    match &rep.failure {
        None => {
            if let Some(line) = passed {
                o.line(format!("  {} {line}", o.good("✓")));
            }
            o.line(o.good("VERIFIED"))
        }
        Some(f) => {
            eprintln!("{} {}", o.bad("FAILED:"), safe(&f.message));
            eprintln!("  {} {}", o.dim("hint:"), safe(&f.hint));
        }
    }
}
