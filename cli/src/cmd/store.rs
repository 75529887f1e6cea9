//! `ct store ls|info|rm|gc|fsck|du` — look into and maintain the content-addressed store (`tree`
//! is in `store_tree`) — and `import_bundle`, the store side of `ct import` (verify first, then
//! import all or nothing).

use super::verify::{load_policy, print_report, scan};
use super::Ctx;
use crate::app::StoreCmd;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH};
use crate::output::{human_bytes, Progress};
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::RawBundle;
use cerro_core::manifest::Manifest;
use cerro_core::verify::{verify, VerifyContext};
use cerro_store::import::{import, ImportRequest};
use cerro_store::{LockMode, Store};
use std::path::Path;

pub(super) fn open(ctx: &Ctx, mode: LockMode) -> CmdResult<Store> {
    Store::open(&ctx.store, mode)
        .map_err(|e| Failure::from(e).context(format!("store {}", ctx.store.display())))
}

pub fn run(ctx: &Ctx, cmd: StoreCmd) -> CmdResult<u8> {
    match cmd {
        StoreCmd::Ls => ls(ctx),
        StoreCmd::Mount(a) => super::mount::store_mount(ctx, a),
        StoreCmd::Info { name } => info(ctx, &name),
        StoreCmd::Tree { name } => super::store_tree::run(ctx, &name),
        StoreCmd::Rm { name } => {
            let s = open(ctx, LockMode::Exclusive)?;
            let r = s.remove_bundle(&name)?;
            ctx.out.json_doc(
                &serde_json::json!({"ok": true, "removed": name, "bundle_digest": r.bundle_digest}),
            );
            ctx.out.line(format!(
                "removed {name} ({}); its objects are freed by `ct store gc`",
                r.bundle_digest
            ));
            Ok(0)
        }
        StoreCmd::Gc => {
            let s = open(ctx, LockMode::Exclusive)?;
            let st = cerro_store::gc::gc(&s)?;
            ctx.out.json_doc(&serde_json::json!({"ok": true, "gc": st}));
            ctx.out.line(format!(
                "kept everything {} bundle(s) reference; removed {} blob(s), {} file object(s) ({}), {} directory node(s), {} outboard(s)",
                st.bundles, st.removed_blobs, st.removed_objects, human_bytes(st.removed_bytes), st.removed_dirs, st.removed_outboards
            ));
            Ok(0)
        }
        StoreCmd::Fsck { repair } => {
            let s = open(
                ctx,
                if repair {
                    LockMode::Exclusive
                } else {
                    LockMode::Shared
                },
            )?;
            let rep = cerro_store::fsck::fsck(&s, repair)?;
            ctx.out.json_doc(&serde_json::json!({"ok": rep.ok(), "exit_code": if rep.ok() { 0 } else { HASH_MISMATCH }, "fsck": rep}));
            for f in &rep.findings {
                ctx.out.line(format!(
                    "{} bundle {}{}: {} — {}",
                    ctx.out.bad("✗"),
                    f.bundle,
                    f.path
                        .as_ref()
                        .map(|p| format!(", {p}"))
                        .unwrap_or_default(),
                    f.object,
                    f.problem
                ));
            }
            for r in &rep.removed {
                ctx.out.line(format!("  removed {r}"));
            }
            if rep.ok() {
                ctx.out.line(format!(
                    "{} {} bundle(s), {} blob(s) and {} file object(s) checked ({}): no problems",
                    ctx.out.good("ok"),
                    rep.bundles,
                    rep.blobs_checked,
                    rep.objects_checked,
                    human_bytes(rep.bytes_checked)
                ));
                Ok(0)
            } else {
                let list: Vec<&str> = rep.must_reimport.iter().map(String::as_str).collect();
                eprintln!(
                    "{} {} problem(s); bundles affected: {}",
                    ctx.out.bad("FAILED:"),
                    rep.findings.len(),
                    list.join(", ")
                );
                if repair {
                    eprintln!(
                        "  the corrupt objects were removed; import these bundles again: {}",
                        list.join(", ")
                    );
                } else {
                    eprintln!("  run `ct store fsck --repair` to remove what is corrupt, then import those bundles again");
                }
                Ok(HASH_MISMATCH)
            }
        }
        StoreCmd::Du => {
            let s = open(ctx, LockMode::Shared)?;
            let u = cerro_store::du::usage(&s)?;
            ctx.out
                .json_doc(&serde_json::json!({"ok": true, "usage": u}));
            for b in &u.bundles {
                ctx.out.line(format!(
                    "{:<32} {:>10}  {} files",
                    b.name,
                    human_bytes(b.logical_bytes),
                    b.files
                ));
            }
            ctx.out.line(format!(
                "logical {}  stored {} (database {})  saved by deduplication {}",
                human_bytes(u.logical_bytes),
                human_bytes(u.stored_bytes),
                human_bytes(u.database_bytes),
                human_bytes(u.saving_bytes)
            ));
            Ok(0)
        }
    }
}

fn ls(ctx: &Ctx) -> CmdResult<u8> {
    let s = open(ctx, LockMode::Shared)?;
    let mut rows = Vec::new();
    for (name, rec) in s.bundles()? {
        match rec {
            Ok(r) => {
                let m = Manifest::parse(r.manifest.as_bytes()).ok();
                rows.push(serde_json::json!({
                    "name": name,
                    "version": m.as_ref().map(|m| m.package.version.clone()),
                    "bundle_digest": r.bundle_digest,
                    "rootfs": r.rootfs,
                    "signers": r.signatures.keys().collect::<Vec<_>>(),
                }));
            }
            Err(e) => rows.push(serde_json::json!({"name": name, "error": e.to_string()})),
        }
    }
    ctx.out
        .json_doc(&serde_json::json!({"ok": true, "store": ctx.store, "bundles": rows}));
    if rows.is_empty() {
        ctx.out.line(format!(
            "the store {} holds no bundles — add one with `ct import BUNDLE.ctp`",
            ctx.store.display()
        ));
    }
    for r in &rows {
        match r.get("error") {
            Some(e) => ctx.out.line(format!(
                "{:<32} {} {}",
                r["name"].as_str().unwrap_or(""),
                ctx.out.bad("unreadable:"),
                e.as_str().unwrap_or("")
            )),
            None => ctx.out.line(format!(
                "{:<32} {:<20} {}",
                r["name"].as_str().unwrap_or(""),
                r["version"].as_str().unwrap_or(""),
                r["bundle_digest"].as_str().unwrap_or("")
            )),
        }
    }
    Ok(0)
}

fn info(ctx: &Ctx, name: &str) -> CmdResult<u8> {
    let s = open(ctx, LockMode::Shared)?;
    let r = s.bundle(name)?;
    let m = Manifest::parse(r.manifest.as_bytes()).map_err(|e| {
        Failure::new(
            HASH_MISMATCH,
            format!("bundle {name}: stored manifest: {e}"),
        )
    })?;
    ctx.out.json_doc(&serde_json::json!({
        "ok": true, "name": name, "bundle_digest": r.bundle_digest, "rootfs": r.rootfs,
        "imported_at": r.imported_at, "manifest": m, "signers": r.signatures.keys().collect::<Vec<_>>(),
    }));
    ctx.out.line(format!(
        "{} {}",
        ctx.out.bold(&m.package.name),
        m.package.version
    ));
    ctx.out
        .line(format!("  bundle digest  {}", r.bundle_digest));
    ctx.out.line(format!("  image          {}", m.image.digest));
    ctx.out.line(format!("  rootfs         {}", r.rootfs));
    ctx.out
        .line(format!("  source         {}", m.source.reference));
    ctx.out
        .line(format!("  created        {}", m.package.created));
    ctx.out.line(format!(
        "  signed by      {}",
        r.signatures.keys().cloned().collect::<Vec<_>>().join(", ")
    ));
    for (i, l) in m.layers.iter().enumerate() {
        ctx.out.line(format!(
            "  layer {:<3}      {} {}",
            i + 1,
            l.digest,
            human_bytes(l.size)
        ));
    }
    Ok(0)
}

/// `ct import BUNDLE.ctp [--name NAME]` into the store: the same checks as `ct verify` (same exit
/// codes), then the import, all or nothing. Returns the exit code.
pub fn import_bundle(
    ctx: &Ctx,
    bundle: &Path,
    name: Option<&str>,
    policy_arg: Option<&Path>,
) -> CmdResult<u8> {
    Ok(import_bundle_named(ctx, bundle, name, policy_arg)?
        .err()
        .unwrap_or(0))
}

/// [`import_bundle`], answering the name the bundle is stored under, or the verification's
/// exit code when it was refused (its report already printed).
pub fn import_bundle_named(
    ctx: &Ctx,
    bundle: &Path,
    name: Option<&str>,
    policy_arg: Option<&Path>,
) -> CmdResult<Result<String, u8>> {
    let policy = load_policy(ctx, policy_arg)?;
    let raw = scan(ctx, bundle, "verifying")?;
    let trust = ctx.cfg.trust_lookup()?;
    let rep = verify(
        &raw,
        &VerifyContext {
            trust: &trust,
            policy: policy.as_ref().map(|(_, p)| p),
            now: chrono::Utc::now(),
        },
    );
    if !rep.ok() {
        ctx.out.json_doc(&serde_json::json!({"ok": false, "exit_code": rep.exit_code(), "bundle": bundle, "report": rep}));
        print_report(ctx, bundle, &rep, policy.as_ref().map(|(p, _)| p.as_path()));
        return Ok(Err(rep.exit_code()));
    }
    import_verified_named(ctx, bundle, &raw, name).map(Ok)
}

/// Import a bundle that has already been verified (signatures, trust, policy) from `raw`, its
/// scan. The import itself still re-hashes every byte and re-derives the rootfs.
pub fn import_verified(
    ctx: &Ctx,
    bundle: &Path,
    raw: &RawBundle,
    name: Option<&str>,
) -> CmdResult<u8> {
    import_verified_named(ctx, bundle, raw, name).map(|_| 0)
}

/// [`import_verified`], answering the name the bundle is stored under.
fn import_verified_named(
    ctx: &Ctx,
    bundle: &Path,
    raw: &RawBundle,
    name: Option<&str>,
) -> CmdResult<String> {
    let manifest_bytes = raw
        .manifest
        .as_deref()
        .ok_or_else(|| Failure::malformed(format!("{}: no manifest", bundle.display())))?;
    let m = Manifest::parse(manifest_bytes)
        .map_err(|e| Failure::malformed(format!("{}: {e}", bundle.display())))?;
    let bundle_digest = cerro_core::Sha256Digest::of(manifest_bytes);
    let name = name.unwrap_or(&m.package.name);
    if !cerro_core::manifest::is_valid_name(name) {
        return Err(Failure::usage(format!(
            "{name:?} is not a valid bundle name (1-128 of A-Z a-z 0-9 . _ -)"
        )));
    }
    let store = open(ctx, LockMode::Shared)?;
    let mut src = BundleFile::open(bundle)?;
    let mut progress = Progress::new(&ctx.out, "importing", m.layers.iter().map(|l| l.size).sum());
    let stats = import(
        &store,
        &mut src,
        &ImportRequest {
            name,
            manifest_bytes,
            manifest: &m,
            signatures: &raw.signatures,
        },
        &ctx.cfg.limits(),
        &mut |n| progress.update(n),
    )
    .map_err(|e| {
        ctx.cfg
            .limit_hint(Failure::from(e).context(format!("importing {}", bundle.display())))
    })?;
    progress.finish();
    ctx.out.json_doc(&serde_json::json!({"ok": true, "name": name, "store": ctx.store, "bundle_digest": bundle_digest, "rootfs": m.rootfs.digest, "stats": stats}));
    if stats.already_present {
        ctx.out.line(format!(
            "{name} is already in the store ({}); nothing to do",
            bundle_digest
        ));
    } else {
        ctx.out.line(format!(
            "{} {} {} into {}",
            ctx.out.good("imported"),
            ctx.out.bold(name),
            m.package.version,
            ctx.store.display()
        ));
        ctx.out.line(format!(
            "  rootfs {} verified against the signed manifest",
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
    Ok(name.to_string())
}
