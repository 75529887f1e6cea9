//! Reads a bundle in one streaming pass and constant memory: small files are kept (with bounds),
//! every blob is hashed as it goes by. Entry order is free; entry names, kinds and uniqueness are
//! not. Nothing here decides trust: `crate::verify` does that from the [`RawBundle`].

use super::layout::{self, classify, EntryPath};
use super::BundleError;
use crate::digest::{Sha256Digest, HASH_BUF_SIZE};
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::rc::Rc;

/// What a blob entry turned out to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobSeen {
    /// SHA-256 of the entry's bytes.
    pub actual: Sha256Digest,
    pub size: u64,
}

/// A bundle's contents as read, before any trust decision.
#[derive(Debug, Default)]
pub struct RawBundle {
    pub oci_layout: Option<Vec<u8>>,
    pub index_json: Option<Vec<u8>>,
    pub manifest: Option<Vec<u8>>,
    pub summary: Option<Vec<u8>>,
    /// Signature files by key id (from the file name).
    pub signatures: BTreeMap<String, Vec<u8>>,
    /// Blob entries by the digest their name claims, with what they really hold.
    pub blobs: BTreeMap<Sha256Digest, BlobSeen>,
    pub attestations: BTreeMap<Sha256Digest, BlobSeen>,
    /// Bytes of every blob of at most `layout::SMALL_FILE_MAX_BYTES` (the image manifest and
    /// config are among them; a verifier needs their contents).
    pub small_blobs: BTreeMap<Sha256Digest, Vec<u8>>,
}

/// Remembers whether the underlying reader failed, so tar format errors (exit 10) can be told
/// apart from I/O errors (exit 11), and whether it reached the end of the stream, so a tar error
/// after the end (a header or padding cut short) is reported as truncation.
struct Tracking<R> {
    inner: R,
    failed: Rc<Cell<bool>>,
    eof: Rc<Cell<bool>>,
}
impl<R: Read> Read for Tracking<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .inspect_err(|_| self.failed.set(true))?;
        if n == 0 && !buf.is_empty() {
            self.eof.set(true);
        }
        Ok(n)
    }
}

fn tar_error(e: io::Error, failed_io: bool, eof: bool, at: &str) -> BundleError {
    if failed_io {
        return BundleError::io(format!("reading the bundle{at}"), e);
    }
    if eof || e.kind() == io::ErrorKind::UnexpectedEof {
        BundleError::malformed(format!("the bundle is truncated{at}: the tar stream ends inside a header or an entry; copy the bundle again"))
    } else {
        // The tar crate quotes raw header bytes: escape control characters so a hostile bundle
        // cannot send escape sequences to the terminal through an error message.
        let msg: String = e
            .to_string()
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        BundleError::malformed(format!("the bundle is not a valid tar archive{at}: {msg}"))
    }
}

/// Most bytes of small blobs kept in memory in all (bounds memory on hostile bundles).
const KEEP_TOTAL_MAX: u64 = 8 << 20;

/// Read a whole bundle stream. `progress` receives the count of blob bytes hashed so far.
pub fn scan_bundle<R: Read>(r: R, progress: &mut dyn FnMut(u64)) -> Result<RawBundle, BundleError> {
    let failed = Rc::new(Cell::new(false));
    let eof = Rc::new(Cell::new(false));
    let mut ar = tar::Archive::new(Tracking {
        inner: r,
        failed: failed.clone(),
        eof: eof.clone(),
    });
    let mut raw = RawBundle::default();
    let mut seen = BTreeSet::new();
    let mut hashed = 0u64;
    let mut buf = vec![0u8; HASH_BUF_SIZE];
    let entries = ar
        .entries()
        .map_err(|e| tar_error(e, failed.get(), eof.get(), ""))?;
    let mut count = 0usize;
    let mut kept_total = 0u64;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return Err(tar_error(e, failed.get(), eof.get(), "")),
        };
        count += 1;
        let name_bytes = entry.path_bytes().into_owned();
        let name = String::from_utf8(name_bytes).map_err(|b| {
            BundleError::malformed(format!(
                "entry {:?} has a name that is not UTF-8",
                String::from_utf8_lossy(b.as_bytes())
            ))
        })?;
        let at = format!(" (entry {name:?})");
        if !seen.insert(name.trim_end_matches('/').to_string()) {
            return Err(BundleError::malformed(format!(
                "entry {name:?} appears twice in the bundle"
            )));
        }
        let kind = entry.header().entry_type();
        let path = classify(&name).map_err(BundleError::malformed)?;
        let is_dir = matches!(path, EntryPath::Dir(_));
        match (kind, is_dir) {
            (tar::EntryType::Directory, true) => continue,
            (tar::EntryType::Regular | tar::EntryType::Continuous, false) => {}
            (k, _) => {
                return Err(BundleError::malformed(format!(
                    "entry {name:?} is a {k:?}; a bundle holds only regular files and directories"
                )))
            }
        }
        let size = entry.size();
        let small = |entry: &mut tar::Entry<_>, limit: u64| -> Result<Vec<u8>, BundleError> {
            if size > limit {
                return Err(BundleError::malformed(format!(
                    "entry {name:?} is {size} bytes, more than the {limit} allowed"
                )));
            }
            let mut v = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut v)
                .map_err(|e| tar_error(e, failed.get(), eof.get(), &at))?;
            if v.len() as u64 != size {
                return Err(BundleError::malformed(format!(
                    "the bundle is truncated inside entry {name:?}"
                )));
            }
            Ok(v)
        };
        match path {
            EntryPath::Dir(_) => unreachable!("handled above"),
            EntryPath::OciLayout => raw.oci_layout = Some(small(&mut entry, 4096)?),
            EntryPath::IndexJson => {
                raw.index_json = Some(small(&mut entry, layout::SMALL_FILE_MAX_BYTES)?)
            }
            EntryPath::Manifest => {
                raw.manifest = Some(small(
                    &mut entry,
                    crate::manifest::MANIFEST_MAX_BYTES as u64,
                )?)
            }
            EntryPath::Summary => {
                raw.summary = Some(small(&mut entry, layout::SMALL_FILE_MAX_BYTES)?)
            }
            EntryPath::Signature(id) => {
                if raw.signatures.len() >= layout::MAX_SIGNATURES {
                    return Err(BundleError::malformed(format!(
                        "more than {} signatures",
                        layout::MAX_SIGNATURES
                    )));
                }
                let v = small(&mut entry, crate::sign::SIGNATURE_MAX_BYTES as u64)?;
                raw.signatures.insert(id, v);
            }
            EntryPath::Blob(d) | EntryPath::Attestation(d) => {
                let is_blob = matches!(path, EntryPath::Blob(_));
                if raw.blobs.len() + raw.attestations.len()
                    >= layout::MAX_BLOBS + crate::manifest::MAX_ATTESTATIONS
                {
                    return Err(BundleError::malformed("too many blobs in the bundle"));
                }
                let keep = is_blob
                    && size <= layout::SMALL_FILE_MAX_BYTES
                    && kept_total + size <= KEEP_TOTAL_MAX;
                let mut kept = Vec::new();
                let mut h = Sha256::new();
                let mut n_total = 0u64;
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(tar_error(e, failed.get(), eof.get(), &at)),
                    };
                    h.update(&buf[..n]);
                    if keep {
                        kept.extend_from_slice(&buf[..n]);
                    }
                    n_total += n as u64;
                    hashed += n as u64;
                    progress(hashed);
                }
                if n_total != size {
                    return Err(BundleError::malformed(format!(
                        "the bundle is truncated inside entry {name:?}"
                    )));
                }
                let seen = BlobSeen {
                    actual: Sha256Digest::from_bytes(h.finalize().into()),
                    size,
                };
                if is_blob {
                    if keep {
                        kept_total += size;
                        raw.small_blobs.insert(d, kept);
                    }
                    raw.blobs.insert(d, seen);
                } else {
                    raw.attestations.insert(d, seen);
                }
            }
        }
    }
    if count == 0 {
        return Err(BundleError::malformed(
            "the file is empty or not a tar archive, so it is not a Cerro bundle",
        ));
    }
    Ok(raw)
}
