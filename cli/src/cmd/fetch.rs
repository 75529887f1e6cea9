//! `ct fetch HOST/REPO:TAG -o OUT.ctp`: the registry library finds the Cerro artifact of the
//! image and checks its signatures against the trust store before downloading layers
//! (`cerro_registry::fetch`), then streams every blob into the deterministic bundle writer while
//! `ct verify`'s reader checks the bytes written; OUT appears (atomically) only when it verifies.
//! With `--create`, a plain image is pulled and packed instead (`ct pack docker://…`).

use super::Ctx;
use crate::app::FetchArgs;
use crate::exit::{CmdResult, Failure};
use crate::registry::progress::MultiProgress;
use crate::registry::RegistryOptions;
use crate::steps::assemble::{persist, write_verified, WriteError};
use crate::steps::verify::{load_policy, print_report};
use cerro_core::bundle::BundleError;
use cerro_core::verify::VerifyContext;
use cerro_registry::download::MISMATCH_HINT;
use cerro_registry::fetch::{DownloadError, FoundVia, RemoteBundle};
use std::path::Path;

pub fn run(ctx: &Ctx, a: FetchArgs) -> CmdResult<u8> {
    if a.output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", a.output.display()))
                .hint("pass --force to replace it"),
        );
    }
    let policy = load_policy(ctx, a.policy.as_deref())?;
    let remote = RemoteBundle::resolve(&a.image, &RegistryOptions::from(&a.registry))?;
    let trust = ctx.cfg.trust_lookup()?;
    remote.check_signatures(&trust)?;
    let r = &remote.reference;

    // Download while writing, verify while writing.
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
    let vctx = VerifyContext {
        trust: &trust,
        policy: policy.as_ref().map(|(_, p)| p),
        now: chrono::Utc::now(),
    };
    let progress = MultiProgress::new(&ctx.out);
    let jobs = usize::from(a.registry.jobs);
    let result = remote.download(staging.path(), jobs, &progress, |contents, src| {
        write_verified(
            // The per-blob bars are the progress here; no overall line on top of them.
            &crate::output::Output {
                progress: false,
                ..ctx.out.clone()
            },
            parent,
            contents,
            src,
            &vctx,
            "fetching",
            false,
        )
    });
    let assembled = match result {
        Ok(x) => x,
        Err(DownloadError::Registry(e)) => return Err(e.into()),
        Err(DownloadError::Writer(e)) => return Err(writer_failure(e, &remote)),
    };
    drop(staging);
    let report = assembled.report.clone();
    let rep = &report;
    let code = rep.exit_code();
    ctx.out.json_doc(&serde_json::json!({
        "ok": rep.ok(),
        "exit_code": code,
        "image": r.to_string(),
        "image_digest": remote.image.digest,
        "artifact_digest": remote.artifact_digest,
        "found_via": remote.found_via,
        "output": if rep.ok() { Some(&a.output) } else { None },
        "bundle_size": assembled.size,
        "policy_file": policy.as_ref().map(|(p, _)| p),
        "report": rep,
    }));
    if rep.ok() {
        let size = assembled.size;
        persist(assembled, &a.output)?;
        ctx.out.line(format!(
            "{} {r} → {} ({}, Cerro artifact {} via {})",
            ctx.out.good("fetched"),
            a.output.display(),
            crate::output::human_bytes(size),
            remote.artifact_digest,
            match remote.found_via {
                FoundVia::ReferrersApi => "the referrers API",
                FoundVia::Tag => "its fallback tag",
            }
        ));
    }
    print_report(
        ctx,
        &a.output,
        rep,
        policy.as_ref().map(|(p, _)| p.as_path()),
    );
    if !rep.ok() && !ctx.out.json {
        eprintln!("  nothing was written to {}", a.output.display());
    }
    Ok(code)
}

/// Why the bundle being downloaded could not be written: a blob that did not match its signed
/// digest (exit 1, naming the registry), or another failure of the writer.
fn writer_failure(e: WriteError, remote: &RemoteBundle) -> Failure {
    match e {
        WriteError::Bundle(BundleError::Mismatch(m)) => Failure::new(
            crate::exit::HASH_MISMATCH,
            format!("registry {}: {m}", remote.client.registry),
        )
        .hint(MISMATCH_HINT),
        WriteError::Bundle(e) => Failure::from(e).context(format!("fetching {}", remote.reference)),
        WriteError::Failure(f) => f,
    }
}
