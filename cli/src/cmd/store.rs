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
use cerro_core::policy::Policy;
use cerro_core::verified::{verify_bundle, SignedBundle, Verified};
use cerro_core::verify::VerifyContext;
use cerro_core::Sha256Digest;
use cerro_store::import::{import, Downgrade, ImportOptions, ImportStats, NameAction, NameOutcome};
use cerro_store::{LockMode, Store};
use std::path::{Path, PathBuf};

pub(super) fn open(ctx: &Ctx, mode: LockMode) -> CmdResult<Store> {
    Store::open(&ctx.store, mode)
        .map_err(|e| Failure::from(e).context(format!("store {}", ctx.store.display())))
}

pub fn run(ctx: &Ctx, cmd: StoreCmd) -> CmdResult<u8> {
    match cmd {
        StoreCmd::Ls => ls(ctx),
        StoreCmd::Mount(a) => super::mount::store_mount(ctx, a),
        StoreCmd::Info { bundle } => info(ctx, &bundle),
        StoreCmd::Tree { name, policy } => super::store_tree::run(ctx, &name, policy.as_deref()),
        StoreCmd::Rm { name } => {
            let s = open(ctx, LockMode::Exclusive)?;
            let d = s.remove_name(&name)?;
            ctx.out
                .json_doc(&serde_json::json!({"ok": true, "removed": name, "bundle_digest": d}));
            ctx.out.line(format!(
                "removed the name {name} (it named {d}); the bundle and its objects are freed by `ct store gc` unless another name refers to it"
            ));
            Ok(0)
        }
        StoreCmd::Gc => {
            let s = open(ctx, LockMode::Exclusive)?;
            let st = cerro_store::gc::gc(&s)?;
            ctx.out.json_doc(&serde_json::json!({"ok": true, "gc": st}));
            ctx.out.line(format!(
                "kept {} bundle(s) (named, or in use); removed {} record(s), {} blob(s), {} file object(s) ({}), {} directory node(s), {} outboard(s)",
                st.bundles, st.removed_records, st.removed_blobs, st.removed_objects, human_bytes(st.removed_bytes), st.removed_dirs, st.removed_outboards
            ));
            Ok(0)
        }
        StoreCmd::Fsck {
            repair,
            from,
            policy,
        } => fsck(ctx, repair, &from, policy.as_deref()),
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

fn fsck(ctx: &Ctx, repair: bool, from: &[PathBuf], policy: Option<&Path>) -> CmdResult<u8> {
    let s = open(
        ctx,
        if repair {
            LockMode::Exclusive
        } else {
            LockMode::Shared
        },
    )?;
    let rep = cerro_store::fsck::fsck(&s, repair)?;
    drop(s);
    let healing = repair && !from.is_empty();
    if !healing {
        ctx.out.json_doc(&serde_json::json!({"ok": rep.ok(), "exit_code": if rep.ok() { 0 } else { HASH_MISMATCH }, "fsck": rep}));
    }
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
    }
    if healing {
        // Put back what the bundle files contain: each verified and imported (which replaces
        // every damaged part it relies on), then check again.
        let quiet = ctx.with_output(crate::output::Output {
            json: false,
            ..ctx.out.clone()
        });
        let loaded = load_policy(ctx, policy)?;
        for b in from {
            match verify_file(&quiet, b, loaded.as_ref())? {
                Ok((_, v)) => {
                    import_verified(&quiet, b, &v, None, Downgrade::KeepName)?;
                }
                Err(code) => {
                    return Err(Failure::new(
                        code,
                        format!(
                            "{} did not verify; it was not used to repair the store",
                            b.display()
                        ),
                    ))
                }
            }
        }
        let s = open(ctx, LockMode::Shared)?;
        let after = cerro_store::fsck::fsck(&s, false)?;
        ctx.out.json_doc(&serde_json::json!({"ok": after.ok(), "exit_code": if after.ok() { 0 } else { HASH_MISMATCH }, "fsck": rep, "after_repair": after}));
        if after.ok() {
            ctx.out.line(format!(
                "{} repaired from {} bundle file(s): {} bundle(s) checked again, no problems",
                ctx.out.good("ok"),
                from.len(),
                after.bundles
            ));
            return Ok(0);
        }
        eprintln!(
            "{} {} problem(s) remain after the repair; bundles affected: {}",
            ctx.out.bad("FAILED:"),
            after.findings.len(),
            after
                .must_reimport
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(HASH_MISMATCH);
    }
    if rep.ok() {
        return Ok(0);
    }
    let list: Vec<&str> = rep.must_reimport.iter().map(String::as_str).collect();
    eprintln!(
        "{} {} problem(s); bundles affected: {}",
        ctx.out.bad("FAILED:"),
        rep.findings.len(),
        list.join(", ")
    );
    if repair {
        eprintln!(
            "  the corrupt objects were removed; import these bundles again: {} (or repair with `ct store fsck --repair --from BUNDLE.ctp`)",
            list.join(", ")
        );
    } else {
        eprintln!("  run `ct store fsck --repair` to remove what is corrupt, then import those bundles again (`--repair --from BUNDLE.ctp` does both)");
    }
    Ok(HASH_MISMATCH)
}

/// One line of `ct store ls`: a name and what it refers to, or a record no name refers to.
fn ls(ctx: &Ctx) -> CmdResult<u8> {
    let s = open(ctx, LockMode::Shared)?;
    let mut rows = Vec::new();
    let mut named = std::collections::HashSet::new();
    let describe = |d: &Sha256Digest| -> Result<serde_json::Value, String> {
        let r = s
            .record_unverified(d)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the store has no record of {d}"))?;
        let (m, _) = cerro_store::walk::record_roots(d, &r).map_err(|e| e.to_string())?;
        Ok(serde_json::json!({
            "version": m.package.version,
            "created": m.package.created,
            "bundle_digest": d,
            "rootfs": m.rootfs.digest,
            "signers": r.signatures.keys().collect::<Vec<_>>(),
        }))
    };
    for (key, r) in s.names()? {
        let name = cerro_store::shown(&key);
        let row = match (cerro_store::db::names::valid_name(&key), r) {
            (Ok(n), Ok(r)) => {
                named.insert(r.digest);
                match describe(&r.digest) {
                    Ok(mut v) => {
                        v["name"] = n.into();
                        v
                    }
                    Err(e) => serde_json::json!({"name": n, "bundle_digest": r.digest, "error": e}),
                }
            }
            (_, Err(e)) | (Err(e), _) => {
                eprintln!("{} skipped {name}: {e}", ctx.out.warn("warning:"));
                continue;
            }
        };
        rows.push(row);
    }
    for e in s.records()? {
        let Some(d) = e.digest.filter(|d| !named.contains(d)) else {
            continue;
        };
        let mut v = describe(&d)
            .unwrap_or_else(|err| serde_json::json!({"bundle_digest": d, "error": err}));
        v["name"] = serde_json::Value::Null;
        rows.push(v);
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
        let name = r["name"].as_str().unwrap_or("-");
        match r.get("error") {
            Some(e) => ctx.out.line(format!(
                "{:<32} {} {}",
                name,
                ctx.out.bad("damaged:"),
                e.as_str().unwrap_or("")
            )),
            None => ctx.out.line(format!(
                "{:<32} {:<20} {}{}",
                name,
                r["version"].as_str().unwrap_or(""),
                r["bundle_digest"].as_str().unwrap_or(""),
                if r["name"].is_null() {
                    "  (no name refers to it; `ct store gc` removes it)"
                } else {
                    ""
                }
            )),
        }
    }
    Ok(0)
}

fn info(ctx: &Ctx, arg: &str) -> CmdResult<u8> {
    let s = open(ctx, LockMode::Shared)?;
    let d = if arg.starts_with("sha256:") {
        arg.parse::<Sha256Digest>()
            .map_err(|_| Failure::usage(format!("{arg:?} is not a bundle digest")))?
    } else {
        s.resolve(arg)?
    };
    let r = s.record_unverified(&d)?.ok_or_else(|| {
        Failure::new(
            HASH_MISMATCH,
            format!("{arg} refers to bundle {d}, which the store has no record of"),
        )
        .hint("run `ct store fsck`, then import the bundle again")
    })?;
    let (m, _) = cerro_store::walk::record_roots(&d, &r)?;
    let names = s.names_of(&d)?;
    ctx.out.json_doc(&serde_json::json!({
        "ok": true, "name": names.first(), "names": names, "bundle_digest": d, "rootfs": m.rootfs.digest,
        "imported_at": r.imported_at, "manifest": m, "signers": r.signatures.keys().collect::<Vec<_>>(),
    }));
    ctx.out.line(format!(
        "{} {}",
        ctx.out.bold(&m.package.name),
        m.package.version
    ));
    ctx.out.line(format!("  bundle digest  {d}"));
    ctx.out.line(format!(
        "  names          {}",
        if names.is_empty() {
            "(none: `ct store gc` removes it)".to_string()
        } else {
            names.join(", ")
        }
    ));
    ctx.out.line(format!("  image          {}", m.image.digest));
    ctx.out
        .line(format!("  rootfs         {}", m.rootfs.digest));
    ctx.out
        .line(format!("  source         {}", m.source.reference));
    ctx.out
        .line(format!("  created        {}", m.package.created));
    ctx.out.line(format!(
        "  signed by      {}",
        r.signatures
            .keys()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
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
