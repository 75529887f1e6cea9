//! `ct store ls|info|rm|gc|fsck|du` — look into and maintain the content-addressed store (`tree`
//! is in `tree.rs`; `ct store mount` is dispatched to `ct mount`'s module).

mod tree;

use super::Ctx;
use crate::app::StoreCmd;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH};
use crate::output::human_bytes;
use crate::steps::import::{import_verified, verify_file};
use crate::steps::stored::open_store as open;
use crate::steps::verify::load_policy;
use cerro_core::Sha256Digest;
use cerro_store::fsck::FsckReport;
use cerro_store::import::Downgrade;
use cerro_store::LockMode;
use std::path::{Path, PathBuf};

pub fn run(ctx: &Ctx, cmd: StoreCmd) -> CmdResult<u8> {
    match cmd {
        StoreCmd::Ls => ls(ctx),
        StoreCmd::Mount(_) => unreachable!("dispatched to cmd::mount"),
        StoreCmd::Info { bundle } => info(ctx, &bundle),
        StoreCmd::Tree { name, policy } => tree::run(ctx, &name, policy.as_deref()),
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
                st.bundles, st.removed_records, st.removed_blobs, st.removed_objects + st.removed_inline, human_bytes(st.removed_bytes), st.removed_dirs, st.removed_outboards
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
        return heal(ctx, &rep, from, policy);
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

/// `fsck --repair --from BUNDLE.ctp…`: put back what the bundle files contain — each verified
/// and imported (which replaces every damaged part it relies on) — then check again.
fn heal(ctx: &Ctx, rep: &FsckReport, from: &[PathBuf], policy: Option<&Path>) -> CmdResult<u8> {
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
