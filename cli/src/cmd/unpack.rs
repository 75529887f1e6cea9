//! `ct unpack BUNDLE|NAME -o OUT [--format oci|docker|rootfs]`: hand a verified image to other
//! tools. Everything is read from the store (a .ctp is verified and imported first) and checked
//! while it is copied: blobs are re-hashed against the signed digests, the rootfs is read
//! through `VerifiedTree`. Output goes to a temporary sibling renamed into place at the end, so
//! a failure (exit 1 on a mismatch) leaves nothing behind.

use super::daemon::{self, Kind, Plan};
use super::Ctx;
use crate::app::{UnpackArgs, UnpackFormat};
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, IO_ERROR};
use cerro_core::bundle::layout;
use cerro_core::digest::HashingWriter;
use cerro_core::manifest::{Descriptor, Manifest};
use cerro_core::rootfs::{DirDigest, Metadata, Payload, TreeError, VerifiedTree};
use cerro_fuse::View;
use cerro_store::objects::ObjectId;
use cerro_store::{walk, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes read from a verified file per call (a multiple of the verification block).
const READ_CHUNK: u64 = 1 << 20;

/// What `ct unpack` reports (human and `--json`).
#[derive(Debug, Serialize)]
struct Report {
    bundle: String,
    format: &'static str,
    output: PathBuf,
    image_digest: String,
    /// Metadata that could not be written with this process's privileges, one line each.
    not_preserved: Vec<String>,
}

/// Removes a temporary output unless it was renamed into place.
struct TempOut {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_any(&self.path);
        }
    }
}

/// Remove a directory tree, or a file (or symlink, not followed).
fn remove_any(p: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(p)?.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
}

fn tree_failure(e: TreeError, what: &str) -> Failure {
    let code = if e.is_corruption() {
        HASH_MISMATCH
    } else {
        IO_ERROR
    };
    Failure::new(code, format!("{what}: {e}"))
        .hint("run `ct store fsck`, then import the bundle again; nothing was written")
}

pub fn run(ctx: &Ctx, a: UnpackArgs) -> CmdResult<u8> {
    let out = std::path::absolute(&a.output)
        .map_err(|e| Failure::io(format!("resolving {}", a.output.display()), e))?;
    refuse_existing(&out, a.force)?;
    let name = super::mount::resolve_bundle(ctx, &a.source)?;
    let plan = daemon::plan(
        ctx,
        &daemon::Request {
            kind: Kind::Bundle,
            name: Some(name.clone()),
            mountpoint: out.clone(),
            allow_other: false,
            suid: false,
            threads: None,
            policy: a.source.policy.clone(),
        },
    )?;
    let Plan {
        store,
        view,
        records,
    } = plan;
    let rec = records.into_iter().next().expect("one bundle checked");
    let (manifest, _) =
        walk::record_roots(&rec).map_err(|e| Failure::new(HASH_MISMATCH, e.to_string()))?;
    let parent = out.parent().unwrap_or(Path::new("/"));
    let base = out
        .file_name()
        .ok_or_else(|| Failure::usage(format!("{} names no file", out.display())))?;
    let mut tmp = TempOut {
        path: parent.join(format!(
            ".{}.ct-unpack-{}",
            base.to_string_lossy(),
            std::process::id()
        )),
        keep: false,
    };
    let store = Arc::new(store);
    let mut not_preserved = Vec::new();
    let format = match a.format {
        UnpackFormat::Oci => {
            write_oci(&store, &manifest, &rec, &tmp.path)?;
            "oci"
        }
        UnpackFormat::Docker => {
            write_docker(&store, &manifest, &tmp.path)?;
            "docker"
        }
        UnpackFormat::Rootfs => {
            let View::Rootfs(root) = view else {
                unreachable!("a bundle plan has a rootfs view")
            };
            let w = RootfsWriter::new(VerifiedTree::new(store.clone()));
            not_preserved = w.write(&root.root.dir, &root.root.meta, &tmp.path)?;
            "rootfs"
        }
    };
    // With --force, the new output is swapped in with one atomic exchange (renameat2), so OUT
    // always names a whole output, old or new; the old one, now at the temporary path, is then
    // removed by the guard. Where the filesystem cannot exchange, the old is removed first.
    let mut swapped = false;
    if a.force && std::fs::symlink_metadata(&out).is_ok() {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, &tmp.path, CWD, &out, RenameFlags::EXCHANGE) {
            Ok(()) => swapped = true,
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                remove_any(&out)
                    .map_err(|e| Failure::io(format!("removing the old {}", out.display()), e))?
            }
            Err(e) => {
                return Err(Failure::io(
                    format!("replacing {}", out.display()),
                    std::io::Error::from(e),
                ))
            }
        }
    } else if out.exists() {
        // An empty directory is fine to replace.
        std::fs::remove_dir(&out)
            .map_err(|e| Failure::io(format!("replacing {}", out.display()), e))?;
    }
    if !swapped {
        std::fs::rename(&tmp.path, &out)
            .map_err(|e| Failure::io(format!("renaming into {}", out.display()), e))?;
        tmp.keep = true;
    }
    drop(tmp);
    let report = Report {
        bundle: name,
        format,
        output: out,
        image_digest: manifest.image.digest.to_string(),
        not_preserved,
    };
    if ctx.out.json {
        ctx.out.json_doc(&report);
    } else {
        ctx.out.line(format!(
            "unpacked {} ({}) as {} into {}",
            report.bundle,
            report.image_digest,
            report.format,
            report.output.display()
        ));
        for n in &report.not_preserved {
            ctx.out.line(format!("  not preserved: {n}"));
        }
    }
    Ok(0)
}

/// An existing output is refused unless it is an empty directory or `--force` was given.
fn refuse_existing(out: &Path, force: bool) -> CmdResult {
    let Ok(md) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    let empty_dir = md.is_dir()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    if empty_dir || force {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{} exists and is not an empty directory",
        out.display()
    ))
    .hint("choose another output, or pass --force to replace it"))
}

/// Copy one signed blob from the store to `dest`, hashing it on the way; a digest or size that
/// differs from the signed descriptor is a hash mismatch.
fn copy_blob(store: &Store, d: &Descriptor, dest: &mut dyn Write) -> CmdResult {
    let path = store.object_path(&ObjectId::Blob(d.digest.hex()));
    let mut f = std::fs::File::open(&path)
        .map_err(|e| Failure::io(format!("opening blob {}", d.digest), e))?;
    let mut w = HashingWriter::new(dest);
    io::copy(&mut f, &mut w).map_err(|e| Failure::io(format!("copying blob {}", d.digest), e))?;
    let (found, size, _) = w.finish();
    if found != d.digest || size != d.size {
        return Err(Failure::new(
            HASH_MISMATCH,
            format!(
                "blob {} in the store hashes to {found} ({size} bytes, {} signed)",
                d.digest, d.size
            ),
        )
        .hint("run `ct store fsck`, then import the bundle again; nothing was written"));
    }
    Ok(())
}

fn blobs(m: &Manifest) -> Vec<&Descriptor> {
    let mut v = vec![&m.image, &m.config];
    v.extend(m.layers.iter());
    v
}

fn write_file(path: &Path, bytes: &[u8]) -> CmdResult {
    std::fs::write(path, bytes).map_err(|e| Failure::io(format!("writing {}", path.display()), e))
}

fn mkdirs(path: &Path) -> CmdResult {
    std::fs::create_dir_all(path)
        .map_err(|e| Failure::io(format!("creating {}", path.display()), e))
}

/// An OCI image layout with the signed blobs, and `cerro/` with the manifest and signatures.
fn write_oci(
    store: &Store,
    m: &Manifest,
    rec: &cerro_store::db::bundles::BundleRecord,
    dir: &Path,
) -> CmdResult {
    let blob_dir = dir.join(layout::BLOBS_SHA256_DIR);
    mkdirs(&blob_dir)?;
    write_file(&dir.join(layout::OCI_LAYOUT), layout::OCI_LAYOUT_BYTES)?;
    write_file(&dir.join(layout::INDEX_JSON), &layout::index_json(m))?;
    for d in blobs(m) {
        let path = blob_dir.join(d.digest.hex());
        if path.exists() {
            continue;
        }
        let mut f = std::fs::File::create(&path)
            .map_err(|e| Failure::io(format!("creating {}", path.display()), e))?;
        copy_blob(store, d, &mut f)?;
    }
    let sig_dir = dir.join(layout::SIGNATURES_DIR);
    mkdirs(&sig_dir)?;
    write_file(&dir.join(layout::MANIFEST_TOML), rec.manifest.as_bytes())?;
    write_file(
        &dir.join(layout::SUMMARY_JSON),
        &layout::summary_json(m, rec.manifest.as_bytes()),
    )?;
    for (key, sig) in &rec.signatures {
        write_file(&sig_dir.join(format!("{key}.sig")), sig.as_bytes())?;
    }
    Ok(())
}

/// A `docker save` archive: `manifest.json`, the config and the layers as stored (compressed
/// layers are accepted by skopeo and docker alike).
fn write_docker(store: &Store, m: &Manifest, file: &Path) -> CmdResult {
    let f = std::fs::File::create(file)
        .map_err(|e| Failure::io(format!("creating {}", file.display()), e))?;
    let mut tar = tar::Builder::new(io::BufWriter::new(f));
    let config_name = format!("{}.json", m.config.digest.hex());
    let layer_names: Vec<String> = m
        .layers
        .iter()
        .map(|l| format!("{}/layer.tar", l.digest.hex()))
        .collect();
    let docker_manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [layout::ref_name(m)],
        "Layers": layer_names,
    }]);
    let mut entries: Vec<(String, &Descriptor)> = vec![(config_name, &m.config)];
    let mut seen = std::collections::HashSet::new();
    for (name, d) in layer_names.iter().zip(&m.layers) {
        if seen.insert(d.digest) {
            entries.push((name.clone(), d));
        }
    }
    let io_err = |e: io::Error| Failure::io(format!("writing {}", file.display()), e);
    for (name, d) in entries {
        let mut bytes = Vec::with_capacity(d.size as usize);
        copy_blob(store, d, &mut bytes)?;
        let h = super::export::header(&name, bytes.len() as u64, false)?;
        tar.append(&h, bytes.as_slice()).map_err(io_err)?;
    }
    let mj = serde_json::to_vec(&docker_manifest).expect("json values serialize");
    let h = super::export::header("manifest.json", mj.len() as u64, false)?;
    tar.append(&h, mj.as_slice()).map_err(io_err)?;
    let mut w = tar.into_inner().map_err(io_err)?;
    w.flush().map_err(io_err)?;
    w.into_inner()
        .map_err(|e| io_err(e.into_error()))?
        .sync_all()
        .map_err(io_err)?;
    Ok(())
}

/// Writes a verified tree to disk, keeping what privileges allow and listing what they did not.
struct RootfsWriter {
    tree: VerifiedTree<Store>,
    /// Link group id → the first path written for it.
    links: std::cell::RefCell<HashMap<u64, PathBuf>>,
    not_preserved: std::cell::RefCell<Vec<String>>,
}

impl RootfsWriter {
    fn new(tree: VerifiedTree<Store>) -> Self {
        Self {
            tree,
            links: Default::default(),
            not_preserved: Default::default(),
        }
    }

    fn write(self, dir: &DirDigest, meta: &Metadata, path: &Path) -> CmdResult<Vec<String>> {
        mkdirs(path)?;
        self.write_dir(dir, path, "/")?;
        self.set_meta(path, meta, "/", false);
        Ok(self.not_preserved.into_inner())
    }

    fn lost(&self, what: String) {
        self.not_preserved.borrow_mut().push(what);
    }

    fn write_dir(&self, digest: &DirDigest, path: &Path, shown: &str) -> CmdResult {
        let node = self
            .tree
            .dir(digest)
            .map_err(|e| tree_failure(e, &format!("directory {shown}")))?;
        for e in &node.entries {
            let p = path.join(OsStr::from_bytes(&e.name));
            let show = format!(
                "{}{}",
                if shown == "/" {
                    "/".to_string()
                } else {
                    format!("{shown}/")
                },
                String::from_utf8_lossy(&e.name)
            );
            if let Some(link) = e.payload.link() {
                if link.nlink > 1 {
                    let first = self.links.borrow().get(&link.id).cloned();
                    if let Some(first) = first {
                        std::fs::hard_link(&first, &p)
                            .map_err(|er| Failure::io(format!("linking {show}"), er))?;
                        continue;
                    }
                    self.links.borrow_mut().insert(link.id, p.clone());
                }
            }
            let io = |er: io::Error| Failure::io(format!("writing {show}"), er);
            match &e.payload {
                Payload::Directory { digest } => {
                    std::fs::create_dir(&p).map_err(io)?;
                    self.write_dir(digest, &p, &show)?;
                }
                Payload::File { size, root, .. } => {
                    let vf = self
                        .tree
                        .open_file(root, *size)
                        .map_err(|er| tree_failure(er, &format!("file {show}")))?;
                    let mut f = std::fs::File::create(&p).map_err(io)?;
                    let mut off = 0;
                    while off < *size {
                        let chunk = vf
                            .read_at(off, READ_CHUNK)
                            .map_err(|er| tree_failure(er, &format!("file {show}")))?;
                        if chunk.is_empty() {
                            break;
                        }
                        f.write_all(&chunk).map_err(io)?;
                        off += chunk.len() as u64;
                    }
                }
                Payload::Symlink { target, .. } => {
                    std::os::unix::fs::symlink(OsStr::from_bytes(target), &p).map_err(io)?;
                }
                Payload::CharDevice { major, minor, .. }
                | Payload::BlockDevice { major, minor, .. } => {
                    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
                    let kind = if matches!(e.payload, Payload::CharDevice { .. }) {
                        SFlag::S_IFCHR
                    } else {
                        SFlag::S_IFBLK
                    };
                    let dev = makedev(u64::from(*major), u64::from(*minor));
                    if let Err(er) = mknod(&p, kind, Mode::from_bits_truncate(0o600), dev) {
                        self.lost(format!("{show}: device {major}:{minor} not created ({er})"));
                        continue;
                    }
                }
                Payload::Fifo { .. } => {
                    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
                        .map_err(|er| io(er.into()))?;
                }
            }
            let is_link = matches!(e.payload, Payload::Symlink { .. });
            if !matches!(e.payload, Payload::Directory { .. }) {
                self.set_meta(&p, &e.meta, &show, is_link);
            }
        }
        // Directory metadata last, once its children are written (mtime, then a mode that may
        // forbid writing).
        for e in &node.entries {
            if matches!(e.payload, Payload::Directory { .. }) {
                let p = path.join(OsStr::from_bytes(&e.name));
                let show = format!("{shown}/{}", String::from_utf8_lossy(&e.name));
                self.set_meta(&p, &e.meta, show.trim_start_matches('/'), false);
            }
        }
        Ok(())
    }

    /// Owner, mode, xattrs and mtime of one written entry; what fails is listed, not fatal.
    fn set_meta(&self, p: &Path, m: &Metadata, show: &str, symlink: bool) {
        use nix::sys::stat::{fchmodat, utimensat, FchmodatFlags, Mode, UtimensatFlags};
        use nix::sys::time::TimeSpec;
        use nix::unistd::{fchownat, Gid, Uid};
        if let Err(e) = fchownat(
            nix::fcntl::AT_FDCWD,
            p,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            self.lost(format!("{show}: owner {}:{} ({e})", m.uid, m.gid));
        }
        if !symlink {
            if let Err(e) = fchmodat(
                nix::fcntl::AT_FDCWD,
                p,
                Mode::from_bits_truncate(m.mode),
                FchmodatFlags::FollowSymlink,
            ) {
                self.lost(format!("{show}: mode {:o} ({e})", m.mode));
            }
        }
        // After the owner: changing it clears security.capability.
        for (name, value) in &m.xattrs {
            let r = std::ffi::CString::new(name.as_slice())
                .map_err(|_| rustix::io::Errno::INVAL)
                .and_then(|n| {
                    rustix::fs::lsetxattr(p, n.as_c_str(), value, rustix::fs::XattrFlags::empty())
                });
            if let Err(e) = r {
                self.lost(format!(
                    "{show}: xattr {} ({})",
                    String::from_utf8_lossy(name),
                    std::io::Error::from(e)
                ));
            }
        }
        let t = TimeSpec::new(m.mtime.secs, i64::from(m.mtime.nanos));
        if let Err(e) = utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        ) {
            self.lost(format!("{show}: mtime ({e})"));
        }
    }
}
