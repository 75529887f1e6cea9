//! Verify a bundle file, then import it into the store all or nothing: the store side of
//! `ct import`, and how `ct mount FILE`, `ct run FILE` and `ct unpack FILE` bring a file in.

use super::verify::{load_policy, print_report, scan};
use crate::cmd::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::{human_bytes, Progress};
use crate::steps::stored::open_store as open;
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::RawBundle;
use cerro_core::policy::Policy;
use cerro_core::verified::{verify_bundle, SignedBundle, Verified};
use cerro_core::verify::VerifyContext;
use cerro_store::import::{import, Downgrade, ImportOptions, ImportStats, NameAction, NameOutcome};
use cerro_store::LockMode;
use std::path::{Path, PathBuf};

/// `ct import BUNDLE.ctp [--name NAME]` into the store: the same checks as `ct verify` (same exit
/// codes), then the import, all or nothing. Returns the exit code.
pub fn import_bundle(
    ctx: &Ctx,
    bundle: &Path,
    name: Option<&str>,
    policy_arg: Option<&Path>,
    downgrade: Downgrade,
) -> CmdResult<u8> {
    let policy = load_policy(ctx, policy_arg)?;
    match verify_file(ctx, bundle, policy.as_ref())? {
        Ok((_, v)) => import_verified(ctx, bundle, &v, name, downgrade).map(|_| 0),
        Err(code) => Ok(code),
    }
}

/// Read and verify a bundle file exactly as `ct verify` does. On failure the report is printed
/// (and with `--json`, its document) and the exit code answered.
pub fn verify_file(
    ctx: &Ctx,
    bundle: &Path,
    policy: Option<&(PathBuf, Policy)>,
) -> CmdResult<Result<(RawBundle, Verified<SignedBundle>), u8>> {
    let raw = scan(ctx, bundle, "verifying")?;
    let trust = ctx.cfg.trust_lookup()?;
    match verify_bundle(
        &raw,
        &VerifyContext {
            trust: &trust,
            policy: policy.map(|(_, p)| p),
            now: chrono::Utc::now(),
        },
    ) {
        Ok(v) => Ok(Ok((raw, v))),
        Err(rep) => {
            ctx.out.json_doc(&serde_json::json!({"ok": false, "exit_code": rep.exit_code(), "bundle": bundle, "report": rep}));
            print_report(ctx, bundle, &rep, policy.map(|(p, _)| p.as_path()));
            Ok(Err(rep.exit_code()))
        }
    }
}

/// Import the verified bundle `v` (scanned from the file `bundle` as `raw`) into the store. The
/// import itself still re-hashes every byte, re-derives the rootfs, and checks (and heals)
/// whatever the store already holds of it.
pub fn import_verified(
    ctx: &Ctx,
    bundle: &Path,
    v: &Verified<SignedBundle>,
    name: Option<&str>,
    downgrade: Downgrade,
) -> CmdResult<ImportStats> {
    let m = v.manifest();
    let bundle_digest = v.digest();
    let store = open(ctx, LockMode::Shared)?;
    let mut src = BundleFile::open(bundle)?;
    let mut progress = Progress::new(
        &ctx.out,
        "importing",
        m.layers.iter().fold(0u64, |a, l| a.saturating_add(l.size)),
    );
    let stats = import(
        &store,
        &mut src,
        v,
        ImportOptions { name, downgrade },
        &ctx.cfg.limits(),
        &mut |n| progress.update(n),
    )
    .map_err(|e| {
        ctx.cfg
            .limit_hint(Failure::from(e).context(format!("importing {}", bundle.display())))
    })?;
    progress.finish();
    let shown_name = stats
        .name
        .as_ref()
        .map_or(m.package.name.as_str(), |n| n.name.as_str());
    ctx.out.json_doc(&serde_json::json!({"ok": true, "name": shown_name, "store": ctx.store, "bundle_digest": bundle_digest, "version": m.package.version, "rootfs": m.rootfs.digest, "stats": stats}));
    if stats.already_present && stats.healed.is_empty() {
        ctx.out.line(format!(
            "{shown_name} is already in the store ({bundle_digest}); nothing to do: every part of it that the store holds was checked"
        ));
    } else {
        ctx.out.line(format!(
            "{} {} {} into {}",
            ctx.out.good("imported"),
            ctx.out.bold(shown_name),
            m.package.version,
            ctx.store.display()
        ));
        ctx.out.line(format!(
            "  bundle {bundle_digest}; rootfs {} verified against the signed manifest",
            m.rootfs.digest
        ));
        ctx.out.line(format!(
            "  {} files ({}); new: {} objects ({}), {} blobs ({}); the rest was already stored",
            stats.files,
            human_bytes(stats.file_bytes),
            stats.new_objects,
            human_bytes(stats.new_object_bytes),
            stats.new_blobs,
            human_bytes(stats.new_blob_bytes)
        ));
    }
    for h in &stats.healed {
        ctx.out.line(format!("  repaired: {h}"));
    }
    if let Some(n) = &stats.name {
        let was = |n: &NameOutcome| {
            format!(
                "{}{}",
                n.previous.map(|d| d.to_string()).unwrap_or_default(),
                n.previous_version
                    .as_ref()
                    .map(|v| format!(", version {v}"))
                    .unwrap_or_default()
            )
        };
        match n.action {
            NameAction::Moved => ctx.out.line(format!(
                "  {} now names this bundle (it named {}; that bundle stays, by digest, until `ct store gc`)",
                n.name,
                was(n)
            )),
            NameAction::KeptNewer => ctx.out.line(format!(
                "  {} still names the newer {}; this bundle is kept by digest",
                n.name,
                was(n)
            )),
            NameAction::Created | NameAction::Unchanged => {}
        }
    }
    Ok(stats)
}
