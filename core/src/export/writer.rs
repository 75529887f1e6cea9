//! Writes an export archive in canonical form (spec/export.md §2): the same bundles, keys and
//! policy give the same bytes, whatever order they were given in and on any machine. Pure: it
//! writes to any `Write`, and takes blob bytes from a [`BlobSource`] per bundle, re-hashing every
//! byte as it is copied (a blob that changed since it was verified aborts the write). Verifying
//! the bundles first (§2: a writer MUST) is the caller's step; so is the temporary file renamed
//! into place.

use super::{
    ExportError, ExportIndex, ExportedBundle, ExportedKey, BLOBS_DIR, BLOBS_SHA256_DIR,
    BUNDLES_DIR, EXPORT_FORMAT_V1, INDEX_FILE, KEYS_DIR, POLICY_FILE,
};
use crate::bundle::file::BundleFile;
use crate::bundle::layout;
use crate::bundle::writer::header;
use crate::bundle::BlobSource;
use crate::digest::{HashingWriter, Sha256Digest, HASH_BUF_SIZE};
use crate::keys::PublicKeyFile;
use crate::manifest::Manifest;
use crate::SignatureSet;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};

/// Output buffered between the writer and `out` (blob data is copied in pieces of
/// `HASH_BUF_SIZE`; headers and small files are far smaller).
const OUT_BUFFER: usize = 1 << 20;

/// One bundle to export: what the index says of it, its signed files, and its blobs.
pub struct ExportBundle<'a> {
    /// The file name it had (and gets back on import): a valid name (`super::valid_file_name`).
    pub file_name: String,
    /// Size and SHA-256 of the `.ctp` file as exported.
    pub file_size: u64,
    pub file_digest: Sha256Digest,
    pub manifest: &'a Manifest,
    /// The signed manifest's exact bytes.
    pub manifest_bytes: &'a [u8],
    /// Signature files by key id, byte for byte.
    pub signatures: &'a SignatureSet,
    /// Where its blobs and attestations are read from.
    pub blobs: Box<dyn BlobSource + 'a>,
}

impl<'a> ExportBundle<'a> {
    /// A bundle file as indexed (its size and digest are the caller's: it hashed the whole file
    /// while verifying it).
    pub fn of_file(
        file_name: String,
        file_size: u64,
        file_digest: Sha256Digest,
        file: &'a BundleFile,
    ) -> Self {
        Self {
            file_name,
            file_size,
            file_digest,
            manifest: file.manifest(),
            manifest_bytes: file.manifest_bytes(),
            signatures: file.signatures(),
            blobs: Box::new(file),
        }
    }
}

/// An export archive ready to be written: bundles in canonical order, each once, and the plan
/// of the blob pool.
pub struct ExportWriter<'a> {
    bundles: Vec<ExportBundle<'a>>,
    keys: Vec<PublicKeyFile>,
    policy: Option<Vec<u8>>,
    /// Each blob of the pool once: its size, and the bundle (index in `bundles`) it is read from.
    pool: BTreeMap<Sha256Digest, (usize, u64)>,
    index: ExportIndex,
}

impl<'a> ExportWriter<'a> {
    /// Plan the archive of these bundles (§2), keys (`keys/<key_id>.pub`, one per key id) and
    /// policy bytes. The same bundle given twice is exported once; two bundles with the same
    /// bundle digest and other bytes, or with the same file name, are refused (with their
    /// indices in `bundles`).
    pub fn new(
        bundles: Vec<ExportBundle<'a>>,
        keys: Vec<PublicKeyFile>,
        policy: Option<Vec<u8>>,
    ) -> Result<Self, ExportError> {
        // Bundle digest order; one directory per bundle digest.
        let mut bundles: Vec<(usize, Sha256Digest, ExportBundle<'a>)> = bundles
            .into_iter()
            .enumerate()
            .map(|(i, b)| (i, b.manifest.digest(), b))
            .collect();
        bundles.sort_by(|x, y| x.1.cmp(&y.1).then(x.2.file_name.cmp(&y.2.file_name)));
        let mut i = 1;
        while i < bundles.len() {
            let (p, q) = (&bundles[i - 1], &bundles[i]);
            if p.1 == q.1 {
                if p.2.file_digest == q.2.file_digest {
                    bundles.remove(i); // the same bundle twice
                    continue;
                }
                return Err(ExportError::SameManifest(p.0, q.0));
            }
            i += 1;
        }
        let mut names = BTreeMap::new();
        for (i, _, b) in &bundles {
            if let Some(other) = names.insert(b.file_name.as_str(), *i) {
                return Err(ExportError::SameFileName(other, *i));
            }
        }
        let bundles: Vec<ExportBundle<'a>> = bundles.into_iter().map(|(_, _, b)| b).collect();

        let mut keys = keys;
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        keys.dedup_by(|a, b| a.key_id == b.key_id);

        let mut pool = BTreeMap::new();
        for (i, b) in bundles.iter().enumerate() {
            for d in b.manifest.image_blobs() {
                pool.entry(d.digest).or_insert((i, d.size));
            }
            for x in &b.manifest.attestations {
                pool.entry(x.digest).or_insert((i, x.size));
            }
        }
        let index = ExportIndex {
            format: EXPORT_FORMAT_V1.into(),
            bundles: bundles
                .iter()
                .map(|b| ExportedBundle {
                    file: b.file_name.clone(),
                    name: b.manifest.package.name.clone(),
                    version: b.manifest.package.version.clone(),
                    bundle_digest: b.manifest.digest(),
                    image_digest: b.manifest.image.digest,
                    file_size: b.file_size,
                    file_digest: b.file_digest,
                    signers: b.signatures.keys().map(|k| k.to_string()).collect(),
                })
                .collect(),
            keys: keys
                .iter()
                .map(|k| ExportedKey {
                    key_id: k.key_id.clone(),
                    fingerprint: k.fingerprint,
                })
                .collect(),
            policy: policy.is_some(),
        };
        Ok(Self {
            bundles,
            keys,
            policy,
            pool,
            index,
        })
    }

    /// The index the archive will carry.
    pub fn index(&self) -> &ExportIndex {
        &self.index
    }

    /// Blobs in the pool (each digest once).
    pub fn blob_count(&self) -> usize {
        self.pool.len()
    }

    /// Bytes of blob data in the pool.
    pub fn blob_bytes(&self) -> u64 {
        self.pool.values().map(|(_, s)| s).sum()
    }

    /// Bytes of the bundle files exported (once each).
    pub fn bundle_bytes(&self) -> u64 {
        self.bundles.iter().map(|b| b.file_size).sum()
    }

    /// Write the archive to `out` and return it. `progress` is called with the bytes of blob
    /// data copied so far.
    pub fn write<W: Write>(
        &mut self,
        out: W,
        progress: &mut dyn FnMut(u64),
    ) -> Result<W, ExportError> {
        let mut w = BufWriter::with_capacity(OUT_BUFFER, out);
        small(&mut w, INDEX_FILE, &self.index.encode())?;
        if !self.keys.is_empty() {
            dir(&mut w, KEYS_DIR)?;
            for k in &self.keys {
                small(&mut w, &format!("{KEYS_DIR}{}.pub", k.key_id), &k.encode())?;
            }
        }
        if let Some(p) = &self.policy {
            small(&mut w, POLICY_FILE, p)?;
        }
        dir(&mut w, BUNDLES_DIR)?;
        for b in &self.bundles {
            let m = b.manifest;
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
                b.manifest_bytes,
            )?;
            dir(&mut w, &format!("{base}{}", layout::SIGNATURES_DIR))?;
            for (id, bytes) in b.signatures {
                small(
                    &mut w,
                    &format!("{base}{}{id}.sig", layout::SIGNATURES_DIR),
                    bytes,
                )?;
            }
            small(
                &mut w,
                &format!("{base}{}", layout::SUMMARY_JSON),
                &layout::summary_json(m, b.manifest_bytes),
            )?;
        }
        dir(&mut w, BLOBS_DIR)?;
        dir(&mut w, BLOBS_SHA256_DIR)?;
        let mut copied = 0u64;
        let mut buf = vec![0u8; HASH_BUF_SIZE];
        for (d, (i, size)) in &self.pool {
            let b = &mut self.bundles[*i];
            let at = format!("bundle {}", b.file_name);
            let path = format!("{BLOBS_SHA256_DIR}{}", d.hex());
            write_all(&mut w, header_bytes(&path, *size, false)?.as_slice())?;
            let mut hw = HashingWriter::new(&mut w);
            {
                let mut src = b
                    .blobs
                    .open_blob(d, *size)
                    .map_err(|e| ExportError::from_bundle(&at, e))?
                    .take(*size);
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(ExportError::io(format!("reading {at}"), e)),
                    };
                    hw.write_all(&buf[..n]).map_err(write_err)?;
                    copied += n as u64;
                    progress(copied);
                }
            }
            let (got, len, _) = hw.finish();
            if len != *size || got != *d {
                return Err(ExportError::Mismatch(format!(
                    "{at}: blob {d} now {} (it changed while being exported)",
                    if len != *size {
                        format!("has {len} bytes, not {size}")
                    } else {
                        format!("hashes to {got}")
                    }
                )));
            }
            write_all(&mut w, &[0u8; 512][..pad(*size)])?;
        }
        write_all(&mut w, &[0u8; 1024])?;
        w.into_inner().map_err(|e| write_err(e.into_error()))
    }
}

fn write_err(e: io::Error) -> ExportError {
    ExportError::io("writing the archive", e)
}

fn write_all(w: &mut impl Write, data: &[u8]) -> Result<(), ExportError> {
    w.write_all(data).map_err(write_err)
}

/// A header under the bundle rules (spec/export.md §2 refers to spec/bundle.md §2.1).
fn header_bytes(path: &str, size: u64, is_dir: bool) -> Result<Vec<u8>, ExportError> {
    header(path, size, is_dir)
        .map(|h| h.as_bytes().to_vec())
        .map_err(|e| ExportError::from_bundle("the archive", e))
}

fn small(w: &mut impl Write, path: &str, data: &[u8]) -> Result<(), ExportError> {
    write_all(w, &header_bytes(path, data.len() as u64, false)?)?;
    write_all(w, data)?;
    write_all(w, &[0u8; 512][..pad(data.len() as u64)])
}

fn dir(w: &mut impl Write, path: &str) -> Result<(), ExportError> {
    write_all(w, &header_bytes(path, 0, true)?)
}

/// NUL bytes after `size` bytes of data to reach a 512-byte boundary.
fn pad(size: u64) -> usize {
    (512 - (size % 512) as usize) % 512
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn padding() {
        assert_eq!(pad(0), 0);
        assert_eq!(pad(1), 511);
        assert_eq!(pad(512), 0);
        assert_eq!(pad(513), 511);
    }
}
