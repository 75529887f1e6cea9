//! `ct index [DIR] [--update]` (no DIR: the store) and `ct search [TEXT] [filters…]`: an index of verified
//! bundles (`cerro_core::index`), kept in the user's cache directory (never beside the bundles,
//! where whoever writes them could write it too), one file per indexed place, and searched all
//! together. Only bundles that verify (signatures, trust store, every blob) are indexed; with
//! `--update`, a bundle file whose size, mtime and inode are unchanged keeps its entry, and a
//! stored bundle whose name still points at the same digest keeps its own.

use super::Ctx;
use crate::app::{IndexArgs, SearchArgs};
use crate::exit::{CmdResult, Failure};
use crate::output::safe;
use crate::steps::stored::{open_bundle, Checks};
use crate::steps::verify::scan;
use cerro_core::index::{entry_of, Entry, FileStamp, Index, Query};
use cerro_core::verify::{verify, verify_signed_manifest, VerifyContext};
use cerro_core::Sha256Digest;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Deepest directory level searched for bundle files below DIR.
const MAX_DEPTH: usize = 16;

/// Where index files live: `$XDG_CACHE_HOME/cerro/index`, else `~/.cache/cerro/index`.
fn index_dir() -> CmdResult<PathBuf> {
    let base = match (std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME")) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x),
        (_, Some(h)) if !h.is_empty() => Path::new(&h).join(".cache"),
        _ => {
            return Err(Failure::usage(
                "neither XDG_CACHE_HOME nor HOME is set: nowhere to keep the index",
            ))
        }
    };
    Ok(base.join("cerro").join("index"))
}

/// The index file of the place `root` names.
fn index_file(root: &str) -> CmdResult<PathBuf> {
    let key = Sha256Digest::of(root.as_bytes());
    Ok(index_dir()?.join(format!("{}.json", &key.hex()[..16])))
}

#[derive(serde::Serialize)]
struct Skipped {
    location: String,
    reason: String,
}

pub fn index(ctx: &Ctx, a: IndexArgs) -> CmdResult<u8> {
    let (root, dir) = match &a.dir {
        Some(d) => {
            let canon = d
                .canonicalize()
                .map_err(|e| Failure::io(format!("opening directory {}", d.display()), e))?;
            if !canon.is_dir() {
                return Err(Failure::usage(format!(
                    "{} is not a directory",
                    d.display()
                )));
            }
            (canon.display().to_string(), Some(canon))
        }
        None => (format!("store:{}", ctx.store.display()), None),
    };
    let file = index_file(&root)?;
    let previous: BTreeMap<String, Entry> = if a.update {
        std::fs::read(&file)
            .ok()
            .and_then(|b| Index::parse(&b).ok())
            .map(|i| {
                i.entries
                    .into_iter()
                    .map(|e| (e.location.clone(), e))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    let (entries, skipped, kept) = match &dir {
        Some(d) => index_files(ctx, d, &previous)?,
        None => index_store(ctx, &previous)?,
    };
    let idx = Index::new(root.clone(), entries);
    write_atomically(&file, &idx.encode())?;
    if ctx.out.json {
        ctx.out.json_doc(&serde_json::json!({
            "ok": true,
            "root": root,
            "index": file,
            "indexed": idx.entries.len(),
            "kept": kept,
            "skipped": skipped,
        }));
        return Ok(0);
    }
    ctx.out.line(format!(
        "{} {} bundles of {} ({} unchanged since the last index) into {}",
        ctx.out.good("indexed"),
        idx.entries.len(),
        safe(&root),
        kept,
        file.display()
    ));
    for s in &skipped {
        eprintln!(
            "{} not indexed: {}: {}",
            ctx.out.warn("warning:"),
            safe(&s.location),
            safe(&s.reason)
        );
    }
    Ok(0)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> CmdResult<()> {
    let dir = path.parent().expect("an index file has a directory");
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(format!("creating {}", dir.display()), e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::io(format!("writing {}", path.display()), e)
        })
}

/// `*.ctp` files below `dir` (not through links), sorted.
fn bundle_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> CmdResult<()> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| Failure::io(format!("listing {}", dir.display()), e))?;
    for e in rd {
        let e = e.map_err(|e| Failure::io(format!("listing {}", dir.display()), e))?;
        let t = e
            .file_type()
            .map_err(|e| Failure::io(format!("listing {}", dir.display()), e))?;
        let p = e.path();
        if t.is_dir() && depth < MAX_DEPTH {
            bundle_files(&p, depth + 1, out)?;
        } else if t.is_file() && p.extension().is_some_and(|x| x == "ctp") {
            out.push(p);
        }
    }
    out.sort();
    Ok(())
}

type Indexed = (Vec<Entry>, Vec<Skipped>, usize);

fn index_files(ctx: &Ctx, dir: &Path, previous: &BTreeMap<String, Entry>) -> CmdResult<Indexed> {
    let mut files = Vec::new();
    bundle_files(dir, 0, &mut files)?;
    let trust = ctx.cfg.trust_lookup()?;
    let (mut entries, mut skipped, mut kept) = (Vec::new(), Vec::new(), 0);
    for path in files {
        let location = path.display().to_string();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue; // gone since it was listed
        };
        let stamp = FileStamp {
            size: md.len(),
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            inode: md.ino(),
        };
        if let Some(e) = previous.get(&location).filter(|e| e.file == Some(stamp)) {
            entries.push(e.clone());
            kept += 1;
            continue;
        }
        let raw = match scan(ctx, &path, "verifying") {
            Ok(r) => r,
            Err(f) => {
                skipped.push(Skipped {
                    location,
                    reason: f.message,
                });
                continue;
            }
        };
        let rep = verify(
            &raw,
            &VerifyContext {
                trust: &trust,
                policy: None,
                now: chrono::Utc::now(),
            },
        );
        let (Some(m), None) = (rep.manifest.clone(), rep.failure.as_ref()) else {
            let reason = rep
                .failure
                .as_ref()
                .map(|f| format!("{} (exit {})", f.message, f.exit_code))
                .unwrap_or_default();
            skipped.push(Skipped { location, reason });
            continue;
        };
        let body = |kind: &str| {
            let a = m.attestations.iter().find(|a| a.kind == kind)?;
            raw.attestation_bodies
                .get(&a.digest)
                .filter(|b| Sha256Digest::of(b) == a.digest)
                .cloned()
        };
        entries.push(entry_of(location, Some(stamp), &m, &rep, &body));
    }
    Ok((entries, skipped, kept))
}

fn index_store(ctx: &Ctx, previous: &BTreeMap<String, Entry>) -> CmdResult<Indexed> {
    let names = crate::steps::stored::names(ctx)?;
    let checks = Checks::load(ctx, None, true)?;
    let trust = ctx.cfg.trust_lookup()?;
    let (mut entries, mut skipped, mut kept) = (Vec::new(), Vec::new(), 0);
    for (name, digest) in names {
        let location = format!("store:{name}");
        if let Some(e) = previous
            .get(&location)
            .filter(|e| e.bundle_digest == digest.to_string())
        {
            entries.push(e.clone());
            kept += 1;
            continue;
        }
        let src = crate::app::BundleSource {
            bundle: name.clone(),
            name: None,
            policy: None,
        };
        let opened = match open_bundle(ctx, &src, &checks, "index", "indexed") {
            Ok(o) => o,
            Err(f) => {
                skipped.push(Skipped {
                    location,
                    reason: format!("{} (exit {})", f.message, f.code),
                });
                continue;
            }
        };
        let b = &opened.bundle;
        let rep = verify_signed_manifest(
            b.manifest_bytes(),
            b.signatures(),
            &VerifyContext {
                trust: &trust,
                policy: None,
                now: chrono::Utc::now(),
            },
        );
        let m = b.manifest();
        let body = |kind: &str| {
            let a = m.attestations.iter().find(|a| a.kind == kind)?;
            let mut bytes = Vec::new();
            opened
                .store
                .open_blob(&a.digest, a.size)
                .ok()?
                .take(a.size)
                .read_to_end(&mut bytes)
                .ok()?;
            (Sha256Digest::of(&bytes) == a.digest).then_some(bytes)
        };
        entries.push(entry_of(location, None, m, &rep, &body));
    }
    Ok((entries, skipped, kept))
}

pub fn search(ctx: &Ctx, a: SearchArgs) -> CmdResult<u8> {
    let date = |flag: &str, s: &Option<String>| -> CmdResult<_> {
        s.as_deref()
            .map(|s| {
                cerro_core::policy::parse_date(s).ok_or_else(|| {
                    Failure::usage(format!(
                        "{flag} {s:?}: expected YYYY-MM-DD or an RFC 3339 date-time"
                    ))
                })
            })
            .transpose()
    };
    let q = Query {
        text: a.text.clone(),
        signer: a.signer.clone(),
        fingerprint: a
            .fingerprint
            .as_deref()
            .map(|f| {
                cerro_core::Fingerprint::parse(f)
                    .map_err(|e| Failure::usage(format!("--fingerprint {f:?}: {e}")))
            })
            .transpose()?,
        digest: a.digest.clone(),
        has_sbom: a.has_sbom,
        license: a.license.clone(),
        after: date("--after", &a.after)?,
        before: date("--before", &a.before)?,
    };
    q.check().map_err(Failure::usage)?;
    let dir = index_dir()?;
    let mut indexes = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match std::fs::read(&p).map(|b| Index::parse(&b)) {
                Ok(Ok(i)) => indexes.push(i),
                Ok(Err(why)) => eprintln!(
                    "{} {} skipped: {}",
                    ctx.out.warn("warning:"),
                    p.display(),
                    safe(&why)
                ),
                Err(_) => {}
            }
        }
    }
    if indexes.is_empty() {
        return Err(Failure::usage("there is no index to search yet").hint(
            "index a directory of bundles with `ct index DIR`, or the store with `ct index`",
        ));
    }
    let hits = cerro_core::index::search(&indexes, &q);
    if ctx.out.json {
        ctx.out
            .json_doc(&serde_json::json!({"ok": true, "count": hits.len(), "bundles": hits}));
        return Ok(0);
    }
    for e in &hits {
        let signers: Vec<String> = e.signers.iter().map(|s| s.key_id.clone()).collect();
        ctx.out.line(format!(
            "{} {}  created {}  signed by {}{}  {}",
            ctx.out.bold(&safe(&e.name)),
            safe(&e.version),
            safe(&e.created),
            safe(&signers.join(", ")),
            if e.has_sbom { "  sbom" } else { "" },
            safe(&e.location)
        ));
    }
    ctx.out.line(format!(
        "{} bundle{} found (in {} indexes; the index says what verified when it was built: verify before use)",
        hits.len(),
        if hits.len() == 1 { "" } else { "s" },
        indexes.len()
    ));
    Ok(0)
}
