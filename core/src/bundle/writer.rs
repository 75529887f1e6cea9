//! Writes a bundle: the same inputs give the same bytes (fixed entry order, mtime 0, uid/gid 0,
//! fixed modes, ustar headers). Blob bytes are re-hashed as they are copied; a blob whose bytes
//! do not match its digest aborts the write.

use super::layout::{
    self, ATTESTATIONS_DIR, BLOBS_DIR, BLOBS_SHA256_DIR, CERRO_DIR, SIGNATURES_DIR,
};
use super::BundleError;
use crate::digest::{HashingWriter, Sha256Digest};
use crate::manifest::Manifest;
use crate::sign::SignatureFile;
use std::io::{self, Read, Write};

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Where the writer gets blob bytes from (an OCI layout, a docker archive, another bundle).
pub trait BlobSource {
    /// A reader over exactly the bytes of the blob `digest` (`size` bytes expected).
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError>;
}

/// Everything that goes into a bundle besides blob bytes.
pub struct BundleContents<'a> {
    pub manifest: &'a Manifest,
    /// The canonical manifest bytes (what the signatures cover).
    pub manifest_bytes: &'a [u8],
    pub signatures: &'a [SignatureFile],
}

/// A ustar header under the bundle rules (spec/bundle.md §2.1): mtime 0, uid/gid 0, mode 0644
/// for files and 0755 for directories. Shared by every deterministic tar ct writes.
pub fn header(path: &str, size: u64, dir: bool) -> Result<tar::Header, BundleError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| {
        BundleError::malformed(format!("cannot store path {path:?} in a tar header: {e}"))
    })?;
    h.set_size(size);
    h.set_mode(if dir { DIR_MODE } else { FILE_MODE });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    Ok(h)
}

/// Write the whole bundle to `out` and return it. `progress` is called with bytes of blob data
/// copied so far.
pub fn write_bundle<W: Write>(
    out: W,
    c: &BundleContents<'_>,
    blobs: &mut dyn BlobSource,
    progress: &mut dyn FnMut(u64),
) -> Result<W, BundleError> {
    let io_err = |e: io::Error| BundleError::io("writing the bundle", e);
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    let small = |b: &mut tar::Builder<W>, path: &str, data: &[u8]| -> Result<(), BundleError> {
        b.append(&header(path, data.len() as u64, false)?, data)
            .map_err(io_err)
    };
    let dir = |b: &mut tar::Builder<W>, path: &str| -> Result<(), BundleError> {
        b.append(&header(path, 0, true)?, io::empty())
            .map_err(io_err)
    };

    small(&mut b, layout::OCI_LAYOUT, layout::OCI_LAYOUT_BYTES)?;
    small(&mut b, layout::INDEX_JSON, &layout::index_json(c.manifest))?;
    dir(&mut b, CERRO_DIR)?;
    let mut atts: Vec<_> = c
        .manifest
        .attestations
        .iter()
        .map(|a| (a.digest, a.size))
        .collect();
    atts.sort();
    atts.dedup();
    if !atts.is_empty() {
        dir(&mut b, ATTESTATIONS_DIR)?;
    }
    let mut copied = 0u64;
    for (d, size) in &atts {
        copy_blob(
            &mut b,
            &format!("{ATTESTATIONS_DIR}{}", d.hex()),
            d,
            *size,
            blobs,
            &mut copied,
            progress,
        )?;
    }
    small(&mut b, layout::MANIFEST_TOML, c.manifest_bytes)?;
    let mut sigs: Vec<&SignatureFile> = c.signatures.iter().collect();
    sigs.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    if sigs.windows(2).any(|w| w[0].key_id == w[1].key_id) {
        return Err(BundleError::malformed(
            "two signatures with the same key id",
        ));
    }
    dir(&mut b, SIGNATURES_DIR)?;
    for s in sigs {
        small(
            &mut b,
            &format!("{SIGNATURES_DIR}{}", s.file_name()),
            &s.encode(),
        )?;
    }
    small(
        &mut b,
        layout::SUMMARY_JSON,
        &layout::summary_json(c.manifest, c.manifest_bytes),
    )?;

    dir(&mut b, BLOBS_DIR)?;
    dir(&mut b, BLOBS_SHA256_DIR)?;
    let mut all: Vec<(Sha256Digest, u64)> = c
        .manifest
        .image_blobs()
        .map(|d| (d.digest, d.size))
        .collect();
    all.sort();
    all.dedup();
    if all.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(BundleError::malformed(
            "one digest is listed with two different sizes",
        ));
    }
    for (d, size) in &all {
        copy_blob(
            &mut b,
            &format!("{BLOBS_SHA256_DIR}{}", d.hex()),
            d,
            *size,
            blobs,
            &mut copied,
            progress,
        )?;
    }
    b.into_inner().map_err(io_err)
}

#[allow(clippy::too_many_arguments)]
fn copy_blob<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    digest: &Sha256Digest,
    size: u64,
    blobs: &mut dyn BlobSource,
    copied: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(), BundleError> {
    // The header goes out by hand and the data is streamed after it, so the byte count and the
    // digest can be checked (tar would pad a short source silently).
    let h = header(path, size, false)?;
    let out = b.get_mut();
    out.write_all(h.as_bytes())
        .map_err(|e| BundleError::io("writing the bundle", e))?;
    let mut hw = HashingWriter::new(out);
    {
        let mut src = blobs.open_blob(digest, size)?.take(size);
        let mut buf = vec![0u8; crate::digest::HASH_BUF_SIZE];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BundleError::io(format!("reading blob {digest}"), e)),
            };
            hw.write_all(&buf[..n])
                .map_err(|e| BundleError::io("writing the bundle", e))?;
            *copied += n as u64;
            progress(*copied);
        }
    }
    let (got, len, out) = hw.finish();
    if len != size {
        return Err(BundleError::Mismatch(format!(
            "blob {digest}: the source has {len} bytes, its descriptor says {size}"
        )));
    }
    if got != *digest {
        return Err(BundleError::Mismatch(format!(
            "blob {digest}: the source's bytes hash to {got}; the source image is corrupt"
        )));
    }
    let pad = (512 - (size % 512) as usize) % 512;
    out.write_all(&[0u8; 512][..pad])
        .map_err(|e| BundleError::io("writing the bundle", e))?;
    Ok(())
}
