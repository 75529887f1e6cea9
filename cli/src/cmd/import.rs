//! `ct import site.tar -o DIR`: read an export archive (spec/export.md), reassemble every bundle
//! in a staging directory inside DIR with the deterministic bundle writer while `ct verify`'s
//! reader checks it, and only when all of them verify move them into DIR — all or nothing. Trust
//! is this machine's store, plus the archive's keys only when asked. No network.
//! A single bundle given without `-o` goes to the store instead (`super::store`).

use super::export::{
    read_region, ExportIndex, BLOBS_SHA256_DIR, BUNDLES_DIR, INDEX_FILE, INDEX_MAX_BYTES, KEYS_DIR,
    KEY_FILE_MAX_BYTES, POLICY_FILE, POLICY_MAX_BYTES,
};
use super::Ctx;
use crate::app::ImportArgs;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH};
use crate::steps::assemble::{persist, write_verified, Assembled, WriteError};
use crate::steps::verify::{load_policy, print_report};
use cerro_core::archive::{ArchiveError, ArchiveReader, Dialect, TarKind};
use cerro_core::bundle::layout::{self, EntryPath};
use cerro_core::bundle::{BlobSource, BundleContents, BundleError};
use cerro_core::keys::PublicKeyFile;
use cerro_core::manifest::Manifest;
use cerro_core::policy::Policy;
use cerro_core::sign::SignatureFile;
use cerro_core::text::show_name;
use cerro_core::verify::VerifyContext;
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Most entries read from an archive's tar index (untrusted input bound).
const MAX_ENTRIES: usize = 1 << 20;

#[derive(Clone, Copy)]
struct At {
    offset: u64,
    size: u64,
}

/// The archive's entries: files by path (directories are checked, not kept).
struct Archive {
    path: PathBuf,
    file: File,
    files: BTreeMap<String, At>,
}

impl Archive {
    fn open(path: &Path) -> CmdResult<Self> {
        let bad = |m: String| Failure::malformed(format!("archive {}: {m}", path.display()));
        let file = File::open(path)
            .map_err(|e| Failure::io(format!("opening archive {}", path.display()), e))?;
        let mut files = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        let len = file
            .metadata()
            .map_err(|e| Failure::io(format!("opening archive {}", path.display()), e))?
            .len();
        // Core's bounded reader: extension headers at most 1 MiB, names at most 4095 bytes.
        let mut ar = ArchiveReader::seekable(&file, len, 2 * MAX_ENTRIES as u64, Dialect::Archive);
        let terr = |e: ArchiveError| match e {
            ArchiveError::Io(e) => Failure::io(format!("reading archive {}", path.display()), e),
            e if e.is_truncated() => bad(format!("it is truncated ({e}); copy it again")),
            e => bad(format!("not a readable tar archive: {e}")),
        };
        while let Some(entry) = ar.next_entry().map_err(terr)? {
            if seen.len() >= MAX_ENTRIES {
                return Err(bad(format!("more than {MAX_ENTRIES} entries")));
            }
            let name = String::from_utf8(entry.name).map_err(|b| {
                bad(format!(
                    "entry {} has a name that is not UTF-8",
                    show_name(b.as_bytes())
                ))
            })?;
            let shown = show_name(name.as_bytes());
            if !seen.insert(name.trim_end_matches('/').to_string()) {
                return Err(bad(format!("entry {shown} appears twice")));
            }
            if name == layout::OCI_LAYOUT || name == layout::INDEX_JSON {
                return Err(Failure::usage(format!(
                    "{} is a bundle, not an export archive",
                    path.display()
                ))
                .hint("copy the .ctp where you want it, and check it with `ct verify`"));
            }
            let is_dir = classify(&name).map_err(|e| bad(format!("entry {shown} {e}")))?;
            match (entry.kind, is_dir) {
                (TarKind::Directory, true) => {}
                (TarKind::Regular, false) => {
                    files.insert(
                        name,
                        At {
                            offset: entry.data_offset,
                            size: entry.size,
                        },
                    );
                }
                (k, _) => {
                    return Err(bad(format!(
                        "entry {shown} is a {}, but its name is a {}'s",
                        k.describe(),
                        if is_dir { "directory" } else { "regular file" }
                    )))
                }
            }
        }
        if seen.is_empty() {
            return Err(bad("it is empty or not a tar archive".into()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            files,
        })
    }

    fn read(&self, name: &str, max: u64) -> CmdResult<Option<Vec<u8>>> {
        let Some(at) = self.files.get(name) else {
            return Ok(None);
        };
        if at.size > max {
            return Err(Failure::malformed(format!(
                "archive {}: {name} is {} bytes, more than the {max} allowed",
                self.path.display(),
                at.size
            )));
        }
        read_region(&self.file, at.offset, at.size)
            .map(Some)
            .map_err(|e| Failure::io(format!("reading archive {}", self.path.display()), e))
    }
}

/// Whether `name` is a directory entry of the export layout; an error if it has no place in it.
fn classify(name: &str) -> Result<bool, String> {
    if name.starts_with('/') || name.split('/').any(|c| c == "." || c == "..") {
        return Err("escapes the archive layout".into());
    }
    let n = name.trim_end_matches('/');
    let is_dir = name.ends_with('/');
    match n {
        "keys" | "bundles" | "blobs" | "blobs/sha256" => return Ok(true),
        INDEX_FILE | POLICY_FILE => return Ok(false),
        _ => {}
    }
    if let Some(id) = n
        .strip_prefix(KEYS_DIR)
        .and_then(|r| r.strip_suffix(".pub"))
    {
        if KeyId::new(id).is_ok() {
            return Ok(false);
        }
    }
    if let Some(h) = n.strip_prefix(BLOBS_SHA256_DIR) {
        if Sha256Digest::parse_hex(h).is_some() {
            return Ok(false);
        }
    }
    if let Some(rest) = n.strip_prefix(BUNDLES_DIR) {
        let (h, inner) = rest.split_once('/').unwrap_or((rest, ""));
        if Sha256Digest::parse_hex(h).is_some() {
            if inner.is_empty() {
                return Ok(true);
            }
            let inner_name = if is_dir {
                format!("{inner}/")
            } else {
                inner.to_string()
            };
            return match layout::classify(&inner_name) {
                Ok(EntryPath::Dir(d)) if d == layout::CERRO_DIR || d == layout::SIGNATURES_DIR => {
                    Ok(true)
                }
                Ok(
                    EntryPath::OciLayout
                    | EntryPath::IndexJson
                    | EntryPath::Manifest
                    | EntryPath::Summary
                    | EntryPath::Signature(_),
                ) => Ok(false),
                _ => Err("is not part of the export layout (see spec/export.md)".into()),
            };
        }
    }
    Err("is not part of the export layout (see spec/export.md)".into())
}

/// The blob pool as the bundle writer's source.
struct Pool<'a>(&'a Archive);

impl BlobSource for Pool<'_> {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + '_>, BundleError> {
        let name = format!("{BLOBS_SHA256_DIR}{}", digest.hex());
        let at = self.0.files.get(&name).ok_or_else(|| {
            BundleError::malformed(format!(
                "archive {}: blob {digest} is missing from the pool",
                self.0.path.display()
            ))
        })?;
        if at.size != size {
            return Err(BundleError::Mismatch(format!(
                "archive {}: blob {digest} has {} bytes, the signed manifest says {size}",
                self.0.path.display(),
                at.size
            )));
        }
        Ok(Box::new(OwnedRegion {
            file: &self.0.file,
            pos: at.offset,
            end: at.offset + size,
        }))
    }
}

/// A region of the archive, read with pread (the writer re-hashes every byte).
struct OwnedRegion<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for OwnedRegion<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

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
        if a.output.is_some() {
            return Err(Failure::usage(
                "-o DIR is for export archives; a bundle is imported into the store",
            )
            .hint(format!(
                "`ct import {}` imports it into the store",
                a.archive.display()
            )));
        }
        return crate::steps::import::import_bundle(
            ctx,
            &a.archive,
            a.name.as_deref(),
            a.policy.as_deref(),
            downgrade(&a),
        );
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
    let ar = Archive::open(&a.archive)?;
    let bad = |m: String| Failure::malformed(format!("archive {}: {m}", a.archive.display()));
    let index_bytes = ar.read(INDEX_FILE, INDEX_MAX_BYTES)?.ok_or_else(|| {
        bad(format!(
            "it has no {INDEX_FILE}; it was not written by `ct export`"
        ))
    })?;
    let index = ExportIndex::parse(&index_bytes).map_err(|e| bad(format!("{INDEX_FILE}: {e}")))?;

    // Trust: this machine's store, plus the archive's keys when asked.
    let mut trusted: Vec<PublicKeyFile> = ctx.cfg.trusted_keys()?;
    let mut included = Vec::new();
    for (name, _) in ar
        .files
        .range(KEYS_DIR.to_string()..)
        .take_while(|(n, _)| n.starts_with(KEYS_DIR))
    {
        let bytes = ar.read(name, KEY_FILE_MAX_BYTES)?.unwrap_or_default();
        let k = PublicKeyFile::parse(&bytes).map_err(|e| bad(format!("{name}: {e}")))?;
        included.push(k);
    }
    if a.trust_included_keys {
        if included.is_empty() {
            return Err(Failure::usage(format!(
                "--trust-included-keys: archive {} carries no keys",
                a.archive.display()
            )));
        }
        trusted.extend(included.iter().cloned());
    }
    let trust = move |fp: &Fingerprint| {
        trusted
            .iter()
            .find(|k| k.fingerprint == *fp)
            .map(|k| k.key_id.clone().with_window(k.window()))
    };

    // Policy: --policy, else the archive's with --use-included-policy, else config's default.
    let policy: Option<(PathBuf, Policy)> = if a.use_included_policy {
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
        let bytes = ar.read(POLICY_FILE, POLICY_MAX_BYTES)?.ok_or_else(|| {
            Failure::usage(format!(
                "--use-included-policy: archive {} carries no {POLICY_FILE}",
                a.archive.display()
            ))
        })?;
        let p = Policy::parse(&bytes).map_err(|e| bad(format!("{POLICY_FILE}: {e}")))?;
        Some((a.archive.join(POLICY_FILE), p))
    } else {
        load_policy(ctx, a.policy.as_deref())?
    };
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

    // Into the store: every bundle verified above; write each assembled bundle, then import it.
    if store_tmp.is_some() {
        let mut imported = Vec::new();
        for s in staged {
            let path = out_dir.join(&s.file);
            persist(s.assembled, &path)?;
            let raw = crate::steps::verify::scan(ctx, &path, "reading")?;
            // Verified above from the archive; verified again from the file written, which
            // yields the witness the import takes.
            let v = match cerro_core::verified::verify_bundle(&raw, &vctx) {
                Ok(v) => v,
                Err(rep) => return Ok(rep.exit_code()),
            };
            crate::steps::import::import_verified(ctx, &path, &v, None, downgrade(&a)).map_err(
                |f| {
                    f.context(format!(
                        "archive {}, bundle {}",
                        a.archive.display(),
                        s.file
                    ))
                    .hint(format!(
                        "bundles imported before it stay in the store: {}",
                        imported.join(", ")
                    ))
                },
            )?;
            imported.push(s.name.clone());
        }
        return Ok(0);
    }

    // Every bundle verified: check the targets, then move them all into place.
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
            } else if !a.force {
                return cleanup(Err(Failure::usage(format!("{} exists with other content", target.display()))
                    .hint("pass --force to replace it, or import into another directory; nothing was imported")));
            }
        }
    }
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
    ctx.out.json_doc(&serde_json::json!({"ok": true, "exit_code": 0, "archive": a.archive, "output_dir": out_dir, "bundles": report}));
    ctx.out.line(format!(
        "{} {} bundle{} from {} → {}",
        ctx.out.good("imported"),
        report.len(),
        if report.len() == 1 { "" } else { "s" },
        a.archive.display(),
        out_dir.display()
    ));
    for r in &report {
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
    Ok(0)
}

type StageResult = Result<Staged, (Staged, u8)>;

/// Reassemble one bundle into a temporary file in `dir` and verify it.
fn stage(
    ctx: &Ctx,
    ar: &Archive,
    b: &super::export::ExportedBundle,
    dir: &Path,
    vctx: &VerifyContext<'_>,
) -> CmdResult<StageResult> {
    let base = format!("{BUNDLES_DIR}{}/", b.bundle_digest.hex());
    let bad = |m: String| Failure::malformed(format!("archive {}: {base}: {m}", ar.path.display()));
    let manifest_bytes = ar
        .read(
            &format!("{base}{}", layout::MANIFEST_TOML),
            cerro_core::manifest::MANIFEST_MAX_BYTES as u64,
        )?
        .ok_or_else(|| bad(format!("{} is missing", layout::MANIFEST_TOML)))?;
    let got = Sha256Digest::of(&manifest_bytes);
    if got != b.bundle_digest {
        return Err(Failure::new(
            HASH_MISMATCH,
            format!(
                "archive {}: {base}{} hashes to {got}",
                ar.path.display(),
                layout::MANIFEST_TOML
            ),
        )
        .hint("the archive was damaged or altered after export; obtain a fresh copy"));
    }
    let manifest = Manifest::parse(&manifest_bytes)
        .map_err(|e| bad(format!("{}: {e}", layout::MANIFEST_TOML)))?;
    // Derived files must be exactly what the manifest gives (they are regenerated on writing).
    let derived = [
        (layout::OCI_LAYOUT, layout::OCI_LAYOUT_BYTES.to_vec()),
        (layout::INDEX_JSON, layout::index_json(&manifest)),
        (
            layout::SUMMARY_JSON,
            layout::summary_json(&manifest, &manifest_bytes),
        ),
    ];
    for (name, want) in derived {
        let have = ar.read(&format!("{base}{name}"), layout::SMALL_FILE_MAX_BYTES)?;
        if have.as_deref() != Some(&want[..]) {
            return Err(bad(format!(
                "{name} is missing or does not match the signed manifest"
            )));
        }
    }
    let prefix = format!("{base}{}", layout::SIGNATURES_DIR);
    let mut sigs = Vec::new();
    for (name, _) in ar
        .files
        .range(prefix.clone()..)
        .take_while(|(n, _)| n.starts_with(&prefix))
    {
        let bytes = ar
            .read(name, cerro_core::sign::SIGNATURE_MAX_BYTES as u64)?
            .unwrap_or_default();
        let s = SignatureFile::parse(&bytes).map_err(|e| bad(format!("{name}: {e}")))?;
        let id = name
            .strip_prefix(&prefix)
            .and_then(|n| n.strip_suffix(".sig"))
            .unwrap_or("");
        if s.key_id.as_str() != id {
            return Err(bad(format!(
                "{name} holds a signature by key id {:?}",
                s.key_id.as_str()
            )));
        }
        sigs.push(s);
    }
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes: &manifest_bytes,
        signatures: &sigs,
    };
    let assembled = match write_verified(
        &ctx.out,
        dir,
        &contents,
        &mut Pool(ar),
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
        name: manifest.package.name.clone(),
        version: manifest.package.version.clone(),
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

/// True when `path` is a Cerro bundle (it has `cerro/manifest.toml` among its first entries)
/// rather than an export archive. Read with the bounded reader; anything unreadable is "not a
/// bundle" here (the export-archive reader then says what is wrong with it).
fn is_bundle(path: &std::path::Path) -> CmdResult<bool> {
    let f = std::fs::File::open(path)
        .map_err(|e| Failure::io(format!("opening {}", path.display()), e))?;
    let len = f
        .metadata()
        .map_err(|e| Failure::io(format!("opening {}", path.display()), e))?
        .len();
    let mut ar = ArchiveReader::seekable(&f, len, 128, Dialect::Archive);
    for _ in 0..64 {
        match ar.next_entry() {
            Ok(Some(e)) if e.name == cerro_core::bundle::layout::MANIFEST_TOML.as_bytes() => {
                return Ok(true)
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(false),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        let h = "ab".repeat(32);
        for (p, dir) in [
            ("cerro-export.json", false),
            ("keys/", true),
            ("keys/alice.pub", false),
            ("policy.json", false),
            ("bundles/", true),
            (&*format!("bundles/{h}/"), true),
            (&*format!("bundles/{h}/cerro/"), true),
            (&*format!("bundles/{h}/cerro/signatures/"), true),
            (&*format!("bundles/{h}/cerro/signatures/a.sig"), false),
            (&*format!("bundles/{h}/cerro/manifest.toml"), false),
            (&*format!("bundles/{h}/index.json"), false),
            (&*format!("blobs/sha256/{h}"), false),
        ] {
            assert_eq!(classify(p), Ok(dir), "{p}");
        }
        for p in [
            "../x",
            "/cerro-export.json",
            "other",
            "keys/.x.pub",
            &*format!("bundles/{h}/blobs/sha256/{h}"),
            &*format!("bundles/{h}/cerro/attestations/{h}"),
            &*format!("bundles/{h}/../../x"),
            "bundles/xyz/",
        ] {
            assert!(classify(p).is_err(), "{p}");
        }
    }
}
