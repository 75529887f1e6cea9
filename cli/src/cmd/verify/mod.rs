//! `ct verify BUNDLE`: read the bundle once, check it (core::verify), print the report, exit with
//! the code of the first failure. `ct verify ostree:REPO:REF` checks an OSTree commit against
//! the bundle it carries (`ostree.rs`).

mod explain;
mod ostree;

use super::Ctx;
use crate::app::VerifyArgs;
use crate::exit::{CmdResult, Failure};
use crate::output::Progress;
use crate::steps::verify::{check_at, load_policy, print_report_with};
use cerro_core::bundle::file::BundleFile;
use cerro_core::manifest::Manifest;
use cerro_core::pack::rootfs_of;
use cerro_core::rootfs::{HashSink, RootfsDigest};
use cerro_core::verify::FailureKind;
use std::path::Path;

pub fn run(ctx: &Ctx, a: VerifyArgs) -> CmdResult<u8> {
    let policy = load_policy(ctx, a.policy.as_deref())?;
    if let Some(rest) = a.bundle.to_str().and_then(|s| s.strip_prefix("ostree:")) {
        if a.deep || a.explain {
            return Err(Failure::usage(
                "--deep and --explain are for bundle files; ostree:REPO:REF always checks the whole tree",
            ));
        }
        let (repo, reference) = ostree::parse(rest)?;
        let arg = a.bundle.to_string_lossy();
        let policy = policy.as_ref().map(|(p, pol)| (p.as_path(), pol));
        return ostree::run(ctx, &arg, &repo, &reference, policy);
    }
    let now = chrono::Utc::now();
    let mut rep = check_at(ctx, &a.bundle, policy.as_ref().map(|(_, p)| p), now)?;
    let explanation = a
        .explain
        .then(|| explain::explain(&rep, policy.as_ref().map(|(_, p)| p), now));
    let mut deep = None;
    if a.deep && rep.ok() {
        let m = rep
            .manifest
            .clone()
            .expect("a verified report has its manifest");
        let derived = deep_check(ctx, &a.bundle, &m)?;
        if derived != m.rootfs.digest {
            rep.failure = Some(cerro_core::verify::Failure {
                kind: FailureKind::HashMismatch,
                exit_code: FailureKind::HashMismatch.exit_code(),
                message: format!(
                    "the layers give root filesystem {derived}, but the signed manifest says {}",
                    m.rootfs.digest
                ),
                hint: "the bundle was packed by a tool that applies layers differently, or its rootfs digest was forged; do not mount it".into(),
            });
        }
        deep = Some(serde_json::json!({"signed": m.rootfs.digest, "derived": derived}));
    }
    ctx.out.json_doc(&serde_json::json!({
        "ok": rep.ok(),
        "exit_code": rep.exit_code(),
        "bundle": a.bundle,
        "policy_file": policy.as_ref().map(|(p, _)| p),
        "deep": deep,
        "report": rep,
        "explain": explanation,
    }));
    if let Some(e) = &explanation {
        explain::print(ctx, e, policy.as_ref().map(|(p, _)| p.as_path()));
    }

    print_report_with(
        ctx,
        &a.bundle,
        &rep,
        policy.as_ref().map(|(p, _)| p.as_path()),
        (deep.is_some() && rep.ok()).then(|| {
            "layers applied: the root filesystem matches the signed rootfs digest".to_string()
        }),
    );
    Ok(rep.exit_code())
}

/// Apply the bundle's layers in order and return the rootfs digest they give (`--deep`).
fn deep_check(ctx: &Ctx, bundle: &Path, m: &Manifest) -> CmdResult<RootfsDigest> {
    let mut src = BundleFile::open(bundle)?;
    let total = m.layers.iter().map(|l| l.size).sum();
    let mut progress = Progress::new(&ctx.out, "applying layers", total);
    let rootfs = rootfs_of(
        &mut src,
        &m.layers,
        &mut HashSink,
        &ctx.cfg.limits(),
        &mut |n| progress.update(n),
    )
    .map_err(|e| {
        ctx.cfg
            .limit_hint(Failure::from(e).context(format!("bundle {}", bundle.display())))
    })?;
    Ok(rootfs.digest)
}
