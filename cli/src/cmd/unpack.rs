//! `ct unpack BUNDLE|NAME -o OUT [--format oci|docker|rootfs]`: hand a verified image to other
//! tools. Everything is read from the store (a .ctp is verified and imported first) and checked
//! while it is copied: blobs are re-hashed against the signed digests, the rootfs is read
//! through `VerifiedTree`. Output goes to a temporary sibling renamed into place at the end, so
//! a failure (exit 1 on a mismatch) leaves nothing behind.

use super::Ctx;
use crate::app::{UnpackArgs, UnpackFormat};
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, IO_ERROR};
use crate::steps::stored::{open_bundle, Checks};
use cerro_core::bundle::layout;
use cerro_core::digest::HashingWriter;
use cerro_core::manifest::{Descriptor, Manifest};
use cerro_core::rootfs::{TreeError, VerifiedTree};
use cerro_core::verified::{StoredBundle, Verified};
use cerro_store::extract::{ExtractError, RootfsWriter};
use cerro_store::outdir::{create_at, mkdir_at, Staged};
use cerro_store::Store;
use serde::Serialize;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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

fn tree_failure(e: TreeError, what: &str) -> Failure {
    let code = if e.is_corruption() {
        HASH_MISMATCH
    } else {
        IO_ERROR
    };
    Failure::new(code, format!("{what}: {e}"))
        .hint("run `ct store fsck`, then import the bundle again; nothing was written")
}

fn extract_failure(e: ExtractError) -> Failure {
    match e {
        ExtractError::Tree { what, source } => tree_failure(source, &what),
        ExtractError::Io { what, source } => Failure::io(what, source),
    }
}

pub fn run(ctx: &Ctx, a: UnpackArgs) -> CmdResult<u8> {
    let out = std::path::absolute(&a.output)
        .map_err(|e| Failure::io(format!("resolving {}", a.output.display()), e))?;
    refuse_existing(&out, a.force)?;
    let checks = Checks::load(ctx, a.source.policy.as_deref(), false)?;
    let opened = open_bundle(
        ctx,
        &a.source,
        &checks,
        &format!("unpack to {}", out.display()),
        "written",
    )?;
    let name = opened.label();
    let bundle = &opened.bundle;
    let manifest = bundle.manifest().clone();
    // Staged beside OUT in a private, unpredictably named entry, written through descriptors.
    let store = opened.store.clone();
    let mut not_preserved = Vec::new();
    let (staged, format) = match a.format {
        UnpackFormat::Oci => {
            let (st, dir) = Staged::dir(&out)?;
            write_oci(&store, bundle, &dir, &st.path())?;
            (st, "oci")
        }
        UnpackFormat::Docker => {
            let (st, f) = Staged::file(&out)?;
            write_docker(&store, &manifest, f, &st.path())?;
            (st, "docker")
        }
        UnpackFormat::Rootfs => {
            let (st, dir) = Staged::dir(&out)?;
            let root = &bundle.subject().root;
            let w = RootfsWriter::new(VerifiedTree::new(store.clone()));
            not_preserved = w
                .write(&root.dir, &root.meta, dir)
                .map_err(extract_failure)?;
            (st, "rootfs")
        }
    };
    // With --force, the new output is swapped in with one atomic exchange (renameat2), so OUT
    // always names a whole output, old or new; the old one is then removed.
    staged.publish(&out, a.force)?;
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
    let f = store.open_blob(&d.digest, d.size).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData {
            Failure::new(
                HASH_MISMATCH,
                format!("blob {} in the store: {e}", d.digest),
            )
            .hint("run `ct store fsck`, then import the bundle again; nothing was written")
        } else {
            Failure::io(format!("opening blob {}", d.digest), e)
        }
    })?;
    let mut w = HashingWriter::new(dest);
    // Never more than the signed size (plus one byte, to see a longer file).
    io::copy(&mut io::Read::take(f, d.size.saturating_add(1)), &mut w)
        .map_err(|e| Failure::io(format!("copying blob {}", d.digest), e))?;
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

fn write_at(dir: &OwnedFd, name: &str, bytes: &[u8], shown: &Path) -> CmdResult {
    create_at(dir, name)
        .map_err(io::Error::from)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| Failure::io(format!("writing {}", shown.join(name).display()), e))
}

fn mkdir_in(dir: &OwnedFd, name: &str, shown: &Path) -> CmdResult<OwnedFd> {
    mkdir_at(dir, name)
        .and_then(|fd| {
            rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o755))?;
            Ok(fd)
        })
        .map_err(|e| Failure::io(format!("creating {}", shown.join(name).display()), e.into()))
}

/// An OCI image layout with the signed blobs, and `cerro/` with the manifest, signatures and
/// attestations.
fn write_oci(store: &Store, v: &Verified<StoredBundle>, dir: &OwnedFd, shown: &Path) -> CmdResult {
    let m = v.manifest();
    rustix::fs::fchmod(dir, rustix::fs::Mode::from_raw_mode(0o755))
        .map_err(|e| Failure::io(format!("setting the mode of {}", shown.display()), e.into()))?;
    write_at(dir, layout::OCI_LAYOUT, layout::OCI_LAYOUT_BYTES, shown)?;
    write_at(dir, layout::INDEX_JSON, &layout::index_json(m), shown)?;
    let blobs_dir = mkdir_in(dir, "blobs", shown)?;
    let sha_dir = mkdir_in(&blobs_dir, "sha256", &shown.join("blobs"))?;
    let mut done = std::collections::HashSet::new();
    for d in blobs(m) {
        if !done.insert(d.digest) {
            continue;
        }
        let name = d.digest.hex();
        let mut f = create_at(&sha_dir, &name).map_err(|e| {
            Failure::io(
                format!(
                    "creating {}",
                    shown.join("blobs/sha256").join(&name).display()
                ),
                e.into(),
            )
        })?;
        copy_blob(store, d, &mut f)?;
    }
    let cerro = mkdir_in(dir, "cerro", shown)?;
    let sig_dir = mkdir_in(&cerro, "signatures", &shown.join("cerro"))?;
    write_at(
        &cerro,
        "manifest.toml",
        v.manifest_bytes(),
        &shown.join("cerro"),
    )?;
    write_at(
        &cerro,
        "summary.json",
        &layout::summary_json(m, v.manifest_bytes()),
        &shown.join("cerro"),
    )?;
    for (key, sig) in v.signatures() {
        write_at(
            &sig_dir,
            &format!("{key}.sig"),
            sig,
            &shown.join("cerro/signatures"),
        )?;
    }
    // The attestations beside the image, as in a bundle (`cerro/attestations/<hex>`), each
    // re-hashed against the signed digest as it is copied out of the store.
    let mut dirs = vec![(sig_dir, 0o755)];
    if !m.attestations.is_empty() {
        let att_dir = mkdir_in(&cerro, "attestations", &shown.join("cerro"))?;
        for a in &m.attestations {
            let d = Descriptor {
                media_type: a.media_type.clone(),
                digest: a.digest,
                size: a.size,
            };
            let name = a.digest.hex();
            let mut f = create_at(&att_dir, &name).map_err(|e| {
                Failure::io(
                    format!(
                        "creating {}",
                        shown.join("cerro/attestations").join(&name).display()
                    ),
                    e.into(),
                )
            })?;
            copy_blob(store, &d, &mut f)?;
        }
        dirs.push((att_dir, 0o755));
    }
    dirs.push((cerro, 0o755));
    for (fd, mode) in &dirs {
        let _ = rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(*mode));
    }
    Ok(())
}

/// A `docker save` archive: `manifest.json`, the config and the layers as stored (compressed
/// layers are accepted by skopeo and docker alike). Layers are streamed from the store, never
/// held whole in memory.
fn write_docker(store: &Store, m: &Manifest, f: std::fs::File, shown: &Path) -> CmdResult {
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
    let io_err = |e: io::Error| Failure::io(format!("writing {}", shown.display()), e);
    for (name, d) in entries {
        let h = cerro_core::bundle::writer::header(&name, d.size, false)?;
        // The header says the signed size; copy_blob refuses (and the output is dropped) if
        // the store's bytes differ in any way.
        tar.append(&h, io::empty()).map_err(io_err)?;
        let w = tar.get_mut();
        copy_blob(store, d, w)?;
        let pad = (512 - (d.size % 512) as usize) % 512;
        w.write_all(&vec![0u8; pad]).map_err(io_err)?;
    }
    let mj = serde_json::to_vec(&docker_manifest).expect("json values serialize");
    let h = cerro_core::bundle::writer::header("manifest.json", mj.len() as u64, false)?;
    tar.append(&h, mj.as_slice()).map_err(io_err)?;
    let mut w = tar.into_inner().map_err(io_err)?;
    w.flush().map_err(io_err)?;
    let f = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .and_then(|_| f.sync_all())
        .map_err(io_err)?;
    Ok(())
}
