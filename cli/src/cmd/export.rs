//! `ct export A.ctp B.ctp … -o site.tar [--include-keys] [--policy FILE]`: one deterministic
//! archive for an air-gapped site (spec/export.md) — an index, each bundle's own files under
//! `bundles/<bundle digest hex>/`, the trusted signers' public keys, a policy, and one blob pool
//! in which a blob shared by several bundles is stored once. Every bundle is verified first;
//! the archive is written to a temporary file and renamed into place. No network.

use super::verify::{load_policy, print_report};
use super::Ctx;
use crate::app::ExportArgs;
use crate::bundle_parts::BundleParts;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH};
use crate::output::{human_bytes, Progress};
use cerro_core::bundle::{layout, scan_bundle};
use cerro_core::digest::HashingWriter;
use cerro_core::keys::PublicKeyFile;
use cerro_core::verify::{verify, VerifyContext};
use cerro_core::{KeyId, Sha256Digest};
use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const INDEX_FILE: &str = "cerro-export.json";
pub const KEYS_DIR: &str = "keys/";
pub const POLICY_FILE: &str = "policy.json";
pub const BUNDLES_DIR: &str = "bundles/";
pub const BLOBS_DIR: &str = "blobs/";
pub const BLOBS_SHA256_DIR: &str = "blobs/sha256/";
/// Largest public key file accepted on import.
pub const KEY_FILE_MAX_BYTES: u64 = 64 << 10;
/// Largest policy accepted on import.
pub const POLICY_MAX_BYTES: u64 = 1 << 20;

pub use cerro_core::export::{
    valid_file_name, ExportIndex, ExportedBundle, ExportedKey, EXPORT_FORMAT_V1, INDEX_MAX_BYTES,
};

/// A ustar header with the bundle rules (the bundle writer's own, so both tars agree).
pub fn header(path: &str, size: u64, dir: bool) -> CmdResult<tar::Header> {
    Ok(cerro_core::bundle::writer::header(path, size, dir)?)
}

struct Input {
    path: PathBuf,
    file_name: String,
    parts: BundleParts,
    file_size: u64,
    file_digest: Sha256Digest,
    /// Trust-store names of the valid, trusted signers.
    trusted: Vec<KeyId>,
}

pub fn run(ctx: &Ctx, a: ExportArgs) -> CmdResult<u8> {
    if a.output.exists() && !a.force {
        return Err(
            Failure::usage(format!("{} already exists", a.output.display()))
                .hint("pass --force to replace it"),
        );
    }
    let policy = load_policy(ctx, a.policy.as_deref())?;
    let policy_bytes = match &a.policy {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| Failure::io(format!("reading policy {}", p.display()), e))?,
        ),
        None => None,
    };
    let trust = ctx.cfg.trust_lookup()?;
    let vctx = VerifyContext {
        trust: &trust,
        policy: policy.as_ref().map(|(_, p)| p),
        now: chrono::Utc::now(),
    };

    // 1. Verify every bundle as `ct verify` does, hashing the whole file on the way.
    let mut inputs: Vec<Input> = Vec::new();
    for path in &a.bundles {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| valid_file_name(n))
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{}: a bundle's file name must be a plain NAME.ctp (A-Z a-z 0-9 . _ - + @)",
                    path.display()
                ))
            })?
            .to_string();
        let f = std::fs::File::open(path)
            .map_err(|e| Failure::io(format!("opening bundle {}", path.display()), e))?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut progress = Progress::new(&ctx.out, format!("verifying {file_name}"), total);
        let mut hr = super::assemble::HashingReader::new(BufReader::with_capacity(1 << 20, f));
        let raw = scan_bundle(&mut hr, &mut |n| progress.update(n))
            .map_err(|e| Failure::from(e).context(format!("bundle {}", path.display())))?;
        let (file_digest, file_size) = hr
            .finish()
            .map_err(|e| Failure::io(format!("reading bundle {}", path.display()), e))?;
        progress.finish();
        let rep = verify(&raw, &vctx);
        if !rep.ok() {
            ctx.out.json_doc(&serde_json::json!({"ok": false, "exit_code": rep.exit_code(), "bundle": path, "report": rep}));
            print_report(ctx, path, &rep, policy.as_ref().map(|(p, _)| p.as_path()));
            if !ctx.out.json {
                eprintln!("  nothing was exported");
            }
            return Ok(rep.exit_code());
        }
        let trusted = rep
            .signatures
            .iter()
            .filter_map(|s| s.trusted_as.clone())
            .collect();
        let parts = BundleParts::open(path)?;
        inputs.push(Input {
            path: path.clone(),
            file_name,
            parts,
            file_size,
            file_digest,
            trusted,
        });
    }

    // 2. One entry per bundle digest; names must not clash.
    inputs.sort_by(|x, y| {
        x.parts
            .manifest
            .digest()
            .cmp(&y.parts.manifest.digest())
            .then(x.file_name.cmp(&y.file_name))
    });
    let mut i = 1;
    while i < inputs.len() {
        let (p, q) = (&inputs[i - 1], &inputs[i]);
        if p.parts.manifest.digest() == q.parts.manifest.digest() {
            if p.file_digest == q.file_digest {
                inputs.remove(i); // the same bundle twice
                continue;
            }
            return Err(Failure::usage(format!(
                "{} and {} hold the same signed manifest with different signatures",
                p.path.display(),
                q.path.display()
            ))
            .hint(
                "export one of them, or combine their signatures with `ct re-sign --add-signature`",
            ));
        }
        i += 1;
    }
    let mut names = BTreeMap::new();
    for inp in &inputs {
        if let Some(other) = names.insert(inp.file_name.clone(), &inp.path) {
            return Err(Failure::usage(format!(
                "{} and {} have the same file name",
                other.display(),
                inp.path.display()
            ))
            .hint("rename one of them; bundles keep their file names through export and import"));
        }
    }

    // 3. Keys, index, and the blob pool's plan (each digest once, from the first bundle with it).
    let mut keys: BTreeMap<KeyId, PublicKeyFile> = BTreeMap::new();
    if a.include_keys {
        let all = ctx.cfg.trusted_keys()?;
        for inp in &inputs {
            for id in &inp.trusted {
                if let Some(k) = all.iter().find(|k| k.key_id == *id) {
                    keys.insert(id.clone(), k.clone());
                }
            }
        }
    }
    let mut pool: BTreeMap<Sha256Digest, (usize, u64, bool)> = BTreeMap::new();
    for (i, inp) in inputs.iter().enumerate() {
        let m = &inp.parts.manifest;
        for d in m.image_blobs() {
            pool.entry(d.digest).or_insert((i, d.size, false));
        }
        for x in &m.attestations {
            pool.entry(x.digest).or_insert((i, x.size, true));
        }
    }
    let index = ExportIndex {
        format: EXPORT_FORMAT_V1.into(),
        bundles: inputs
            .iter()
            .map(|inp| {
                let m = &inp.parts.manifest;
                ExportedBundle {
                    file: inp.file_name.clone(),
                    name: m.package.name.clone(),
                    version: m.package.version.clone(),
                    bundle_digest: m.digest(),
                    image_digest: m.image.digest,
                    file_size: inp.file_size,
                    file_digest: inp.file_digest,
                    signers: inp.parts.signatures.keys().map(|k| k.to_string()).collect(),
                }
            })
            .collect(),
        keys: keys
            .values()
            .map(|k| ExportedKey {
                key_id: k.key_id.clone(),
                fingerprint: k.fingerprint,
            })
            .collect(),
        policy: policy_bytes.is_some(),
    };
    let mut index_bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
    index_bytes.push(b'\n');

    // 4. Write the archive.
    let io_err = |e: io::Error| Failure::io(format!("writing {}", a.output.display()), e);
    let total: u64 = pool.values().map(|(_, s, _)| s).sum();
    let mut progress = Progress::new(&ctx.out, "exporting", total);
    let size = crate::config::write_file_atomic(&a.output, 0o644, |file| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let small = |w: &mut BufWriter<&std::fs::File>, path: &str, data: &[u8]| -> CmdResult {
            w.write_all(header(path, data.len() as u64, false)?.as_bytes())
                .map_err(io_err)?;
            w.write_all(data).map_err(io_err)?;
            w.write_all(&[0u8; 512][..pad(data.len() as u64)])
                .map_err(io_err)
        };
        let dir = |w: &mut BufWriter<&std::fs::File>, path: &str| -> CmdResult {
            w.write_all(header(path, 0, true)?.as_bytes())
                .map_err(io_err)
        };
        small(&mut w, INDEX_FILE, &index_bytes)?;
        if !keys.is_empty() {
            dir(&mut w, KEYS_DIR)?;
            for (id, k) in &keys {
                small(&mut w, &format!("{KEYS_DIR}{id}.pub"), &k.encode())?;
            }
        }
        if let Some(p) = &policy_bytes {
            small(&mut w, POLICY_FILE, p)?;
        }
        dir(&mut w, BUNDLES_DIR)?;
        for inp in &inputs {
            let m = &inp.parts.manifest;
            let base = format!("{BUNDLES_DIR}{}/", m.digest().hex());
            dir(&mut w, &base)?;
            small(
                &mut w,
                &format!("{base}{}", layout::OCI_LAYOUT),
                layout::OCI_LAYOUT_BYTES,
            )?;
            small(
                &mut w,
                &format!("{base}{}", layout::INDEX_JSON),
                &layout::index_json(m),
            )?;
            dir(&mut w, &format!("{base}{}", layout::CERRO_DIR))?;
            small(
                &mut w,
                &format!("{base}{}", layout::MANIFEST_TOML),
                &inp.parts.manifest_bytes,
            )?;
            dir(&mut w, &format!("{base}{}", layout::SIGNATURES_DIR))?;
            for (id, bytes) in &inp.parts.signatures {
                small(
                    &mut w,
                    &format!("{base}{}{id}.sig", layout::SIGNATURES_DIR),
                    bytes,
                )?;
            }
            small(
                &mut w,
                &format!("{base}{}", layout::SUMMARY_JSON),
                &layout::summary_json(m, &inp.parts.manifest_bytes),
            )?;
        }
        dir(&mut w, BLOBS_DIR)?;
        dir(&mut w, BLOBS_SHA256_DIR)?;
        let mut copied = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for (d, (i, size, att)) in &pool {
            let inp = &inputs[*i];
            let region = inp.parts.region(d, *size, *att)?;
            w.write_all(
                header(&format!("{BLOBS_SHA256_DIR}{}", d.hex()), *size, false)?.as_bytes(),
            )
            .map_err(io_err)?;
            let mut hw = HashingWriter::new(&mut w);
            let mut off = 0u64;
            while off < *size {
                let n = buf.len().min((*size - off) as usize);
                inp.parts
                    .file
                    .read_exact_at(&mut buf[..n], region.offset + off)
                    .map_err(|e| {
                        Failure::io(format!("reading bundle {}", inp.path.display()), e)
                    })?;
                hw.write_all(&buf[..n]).map_err(io_err)?;
                off += n as u64;
                copied += n as u64;
                progress.update(copied);
            }
            let (got, _, _) = hw.finish();
            if got != *d {
                return Err(Failure::new(
                    HASH_MISMATCH,
                    format!(
                        "bundle {}: blob {d} now hashes to {got} (it changed while being exported)",
                        inp.path.display()
                    ),
                )
                .hint("nothing was exported; check the bundle with `ct verify` and export again"));
            }
            w.write_all(&[0u8; 512][..pad(*size)]).map_err(io_err)?;
        }
        w.write_all(&[0u8; 1024]).map_err(io_err)?;
        w.flush().map_err(io_err)
    })?;
    progress.finish();

    let bundle_bytes: u64 = inputs.iter().map(|i| i.file_size).sum();
    ctx.out.json_doc(&serde_json::json!({
        "ok": true,
        "output": a.output,
        "archive_size": size,
        "bundles": index.bundles,
        "blobs": pool.len(),
        "blob_bytes": total,
        "keys": index.keys,
        "policy": index.policy,
    }));
    ctx.out.line(format!(
        "{} {} bundle{} → {} ({}; {} blobs, {} of bundles in)",
        ctx.out.good("exported"),
        inputs.len(),
        if inputs.len() == 1 { "" } else { "s" },
        a.output.display(),
        human_bytes(size),
        pool.len(),
        human_bytes(bundle_bytes),
    ));
    for b in &index.bundles {
        ctx.out.line(format!(
            "  {} {} {}  {}",
            ctx.out.bold(&b.name),
            b.version,
            b.file,
            b.bundle_digest
        ));
    }
    if !index.keys.is_empty() {
        let ids: Vec<&str> = index.keys.iter().map(|k| k.key_id.as_str()).collect();
        ctx.out.line(format!("  keys: {}", ids.join(", ")));
    }
    if index.policy {
        ctx.out.line(format!(
            "  policy: {}",
            a.policy.as_deref().unwrap_or(Path::new("")).display()
        ));
    }
    Ok(0)
}

/// NUL bytes after `size` bytes of data to reach a 512-byte boundary.
pub fn pad(size: u64) -> usize {
    (512 - (size % 512) as usize) % 512
}

/// Read a whole small region of a file (used by import).
pub fn read_region(f: &std::fs::File, offset: u64, size: u64) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; size as usize];
    f.read_exact_at(&mut v, offset)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert!(valid_file_name("busybox-1.36.ctp"));
        for bad in [
            "x.tar",
            ".ctp",
            ".hidden.ctp",
            "a/b.ctp",
            "a b.ctp",
            "..ctp",
        ] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn long_names_use_the_ustar_prefix() {
        let p = format!(
            "{BUNDLES_DIR}{}/cerro/signatures/{}.sig",
            "a".repeat(64),
            "k".repeat(64)
        );
        assert!(p.len() > 100);
        let h = header(&p, 1, false).unwrap();
        assert_eq!(String::from_utf8_lossy(&h.path_bytes()), p);
        let u = h.as_ustar().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&u.prefix).trim_end_matches('\0'),
            format!("{BUNDLES_DIR}{}/cerro/signatures", "a".repeat(64))
        );
    }
}
