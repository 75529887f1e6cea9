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
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
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

/// The index file's name for the place `root` names.
fn index_name(root: &str) -> String {
    format!("{}.json", &Sha256Digest::of(root.as_bytes()).hex()[..16])
}

/// The index directory, opened without following a link at its path and checked: owned by this
/// user and writable by no one else (else refused, 64), so what is read from it and written into
/// it is this user's own even if `XDG_CACHE_HOME` points at a shared place. Every file operation
/// then goes through this descriptor, never the path again. `create` makes it (0700) when absent;
/// otherwise an absent directory is `None`.
fn open_index_dir(dir: &Path, create: bool) -> CmdResult<Option<OwnedFd>> {
    use rustix::fs::{fstat, open, Mode, OFlags};
    if create {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Failure::io(format!("creating {}", dir.display()), e))?;
    }
    let fd = match open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) if !create => return Ok(None),
        Err(e) => {
            return Err(Failure::io(
                format!("opening {} (a directory, not a link)", dir.display()),
                e.into(),
            ))
        }
    };
    let st =
        fstat(&fd).map_err(|e| Failure::io(format!("checking {}", dir.display()), e.into()))?;
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me || st.st_mode & 0o022 != 0 {
        return Err(Failure::usage(format!(
            "{} belongs to uid {} or is writable by others (mode {:o}): not using it for the index",
            dir.display(),
            st.st_uid,
            st.st_mode & 0o7777
        ))
        .hint("point XDG_CACHE_HOME at a directory of your own"));
    }
    Ok(Some(fd))
}

/// Read the index file `name` in `dir` (not through a link); `None` when absent or unreadable.
fn read_index(dir: &OwnedFd, name: &str) -> Option<Result<Index, String>> {
    use rustix::fs::{openat, Mode, OFlags};
    let fd = openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(cerro_core::index::MAX_INDEX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(Index::parse(&bytes))
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
    let dir_path = index_dir()?;
    let name = index_name(&root);
    let file = dir_path.join(&name);
    let index_fd = open_index_dir(&dir_path, true)?.expect("created");
    let previous: BTreeMap<String, Entry> = if a.update {
        read_index(&index_fd, &name)
            .and_then(Result::ok)
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
    write_atomically(&index_fd, &name, &idx.encode())
        .map_err(|e| Failure::io(format!("writing {}", file.display()), e))?;
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

/// Write `name` in `dir` whole or not at all: a new temporary file (exclusive, not through a
/// link, 0600) renamed over it.
fn write_atomically(dir: &OwnedFd, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use rustix::fs::{openat, renameat, unlinkat, AtFlags, Mode, OFlags};
    let tmp = format!(".{name}.tmp{}", std::process::id());
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    let done = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| Ok(renameat(dir, tmp.as_str(), dir, name)?));
    if done.is_err() {
        let _ = unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    done
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
        signer: a
            .signer
            .as_deref()
            .map(|g| {
                cerro_core::policy::KeyGlob::parse(g)
                    .map_err(|e| Failure::usage(format!("--signer {g:?}: {e}")))
            })
            .transpose()?,
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
    if let Some(fd) = open_index_dir(&dir, false)? {
        let entries = rustix::fs::Dir::read_from(&fd)
            .map_err(|e| Failure::io(format!("listing {}", dir.display()), e.into()))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        for n in names {
            match read_index(&fd, &n) {
                Some(Ok(i)) => indexes.push(i),
                Some(Err(why)) => eprintln!(
                    "{} {} skipped: {}",
                    ctx.out.warn("warning:"),
                    dir.join(&n).display(),
                    safe(&why)
                ),
                None => {}
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
