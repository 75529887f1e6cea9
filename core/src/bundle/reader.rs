//! Reads a bundle in one streaming pass and constant memory (the bounded `crate::archive`
//! reader: no extension header over 1 MiB, no name over 4095 bytes): small files are kept (with bounds),
//! every blob is hashed as it goes by. Entry order is free; entry names, kinds and uniqueness are
//! not. Nothing here decides trust: `crate::verify` does that from the [`RawBundle`].

use super::layout::{self, classify, EntryPath};
use super::BundleError;
use crate::archive::{ArchiveEntry, ArchiveError, ArchiveReader, Dialect, TarKind};
use crate::digest::{Sha256Digest, HASH_BUF_SIZE};
use crate::signature_set::SignatureSet;
use crate::text::show_name;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

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
    pub signatures: SignatureSet,
    /// Blob entries by the digest their name claims, with what they really hold.
    pub blobs: BTreeMap<Sha256Digest, BlobSeen>,
    pub attestations: BTreeMap<Sha256Digest, BlobSeen>,
    /// Bytes of every blob of at most `layout::SMALL_FILE_MAX_BYTES` (the image manifest and
    /// config are among them; a verifier needs their contents).
    pub small_blobs: BTreeMap<Sha256Digest, Vec<u8>>,
    /// Bytes of every attestation of at most `layout::SMALL_FILE_MAX_BYTES` (a verifier checks
    /// the provenance's envelope).
    pub attestation_bodies: BTreeMap<Sha256Digest, Vec<u8>>,
}

/// The error for an archive that could not be read: I/O (exit 11), truncation, or a broken tar
/// (exit 10); names are cut and escaped by the archive reader.
pub(crate) fn archive_error(e: ArchiveError, what: &str) -> BundleError {
    match e {
        ArchiveError::Io(e) => BundleError::io(format!("reading the {what}"), e),
        e if e.is_truncated() => BundleError::malformed(format!(
            "the {what} is truncated ({e}); copy the {what} again"
        )),
        e => BundleError::malformed(format!("the {what} is not a valid tar archive: {e}")),
    }
}

/// Most headers read from one bundle: its entries (at most 1 + 1 + 256 signatures + 64
/// attestations + 1026 blobs + 2 small files + 5 directories) and an extension header each.
pub const MAX_BUNDLE_HEADERS: u64 = 4096;

/// A bundle entry's name as text, or the malformed-input error naming it.
pub(crate) fn entry_name(name: Vec<u8>) -> Result<String, BundleError> {
    String::from_utf8(name).map_err(|b| {
        BundleError::malformed(format!(
            "entry {} has a name that is not UTF-8",
            show_name(b.as_bytes())
        ))
    })
}

/// Most bytes of small blobs kept in memory in all (bounds memory on hostile bundles).
const KEEP_TOTAL_MAX: u64 = 8 << 20;

/// Largest `oci-layout` file read.
const OCI_LAYOUT_MAX_BYTES: u64 = 4096;

/// The entry rules of a bundle (spec/bundle.md §2.2), shared by the streaming reader
/// ([`scan_bundle`]) and the seekable index of a bundle file (`super::file::BundleFile`), so
/// both refuse the same entries with the same words: a UTF-8 name, not repeated, with a place
/// in the layout, of the kind that place calls for, small files within their bounds, and at
/// most so many signatures and blobs.
#[derive(Default)]
pub(crate) struct EntryRules {
    seen: BTreeSet<String>,
    signatures: usize,
    blobs: usize,
}

impl EntryRules {
    /// Check one entry: `None` for a directory, else its place in the layout.
    pub(crate) fn check(&mut self, entry: ArchiveEntry) -> Result<Option<EntryPath>, BundleError> {
        let name = entry_name(entry.name)?;
        let shown = show_name(name.as_bytes());
        if !self.seen.insert(name.trim_end_matches('/').to_string()) {
            return Err(BundleError::malformed(format!(
                "entry {shown} appears twice in the bundle"
            )));
        }
        let path = classify(&name).map_err(BundleError::malformed)?;
        let is_dir = matches!(path, EntryPath::Dir(_));
        match (entry.kind, is_dir) {
            (TarKind::Directory, true) => return Ok(None),
            (TarKind::Regular, false) => {}
            (k, _) => {
                return Err(BundleError::malformed(format!(
                    "entry {shown} is a {}; a bundle holds only regular files and directories{}",
                    k.describe(),
                    if is_dir {
                        " (and this name is a directory's)"
                    } else {
                        ""
                    }
                )))
            }
        }
        match &path {
            EntryPath::Signature(_) => {
                if self.signatures >= layout::MAX_SIGNATURES {
                    return Err(BundleError::malformed(format!(
                        "more than {} signatures",
                        layout::MAX_SIGNATURES
                    )));
                }
                self.signatures += 1;
            }
            EntryPath::Blob(_) | EntryPath::Attestation(_) => {
                if self.blobs >= layout::MAX_BLOBS + crate::manifest::MAX_ATTESTATIONS {
                    return Err(BundleError::malformed("too many blobs in the bundle"));
                }
                self.blobs += 1;
            }
            _ => {}
        }
        if let Some(limit) = small_file_limit(&path) {
            if entry.size > limit {
                return Err(BundleError::malformed(format!(
                    "entry {shown} is {} bytes, more than the {limit} allowed",
                    entry.size
                )));
            }
        }
        Ok(Some(path))
    }
}

/// The bound of a small file a reader keeps whole (`None` for blobs, which are streamed).
pub(crate) fn small_file_limit(path: &EntryPath) -> Option<u64> {
    match path {
        EntryPath::OciLayout => Some(OCI_LAYOUT_MAX_BYTES),
        EntryPath::IndexJson | EntryPath::Summary => Some(layout::SMALL_FILE_MAX_BYTES),
        EntryPath::Manifest => Some(crate::manifest::MANIFEST_MAX_BYTES as u64),
        EntryPath::Signature(_) => Some(crate::sign::SIGNATURE_MAX_BYTES as u64),
        EntryPath::Dir(_) | EntryPath::Blob(_) | EntryPath::Attestation(_) => None,
    }
}

/// Read the current entry's data whole (its size was checked against its bound).
pub(crate) fn read_small<R: Read>(
    ar: &mut ArchiveReader<R>,
    size: u64,
) -> Result<Vec<u8>, BundleError> {
    let mut v = Vec::with_capacity(size as usize);
    ar.read_to_end(&mut v)
        .map_err(|e| match e.downcast::<ArchiveError>() {
            Ok(a) => archive_error(a, "bundle"),
            Err(e) => BundleError::io("reading the bundle", e),
        })?;
    Ok(v)
}

/// Read a whole bundle stream. `progress` receives the count of blob bytes hashed so far.
pub fn scan_bundle<R: Read>(r: R, progress: &mut dyn FnMut(u64)) -> Result<RawBundle, BundleError> {
    let mut ar = ArchiveReader::new(r, MAX_BUNDLE_HEADERS, Dialect::Archive);
    let mut raw = RawBundle::default();
    let mut rules = EntryRules::default();
    let mut hashed = 0u64;
    let mut buf = vec![0u8; HASH_BUF_SIZE];
    let mut count = 0usize;
    let mut kept_total = 0u64;
    loop {
        let entry = match ar.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) if count == 0 && ar.position() == 0 => {
                // Nothing at all: an empty file (or an unreadable one).
                return Err(match e {
                    ArchiveError::Io(e) => BundleError::io("reading the bundle", e),
                    _ => BundleError::malformed(
                        "the file is empty or not a tar archive, so it is not a Cerro bundle",
                    ),
                });
            }
            Err(e) => return Err(archive_error(e, "bundle")),
        };
        count += 1;
        let size = entry.size;
        let Some(path) = rules.check(entry)? else {
            continue;
        };
        match path {
            EntryPath::Dir(_) => unreachable!("directories are checked, not kept"),
            EntryPath::OciLayout => raw.oci_layout = Some(read_small(&mut ar, size)?),
            EntryPath::IndexJson => raw.index_json = Some(read_small(&mut ar, size)?),
            EntryPath::Manifest => raw.manifest = Some(read_small(&mut ar, size)?),
            EntryPath::Summary => raw.summary = Some(read_small(&mut ar, size)?),
            EntryPath::Signature(id) => {
                let v = read_small(&mut ar, size)?;
                raw.signatures.insert(id, v);
            }
            EntryPath::Blob(d) | EntryPath::Attestation(d) => {
                let is_blob = matches!(path, EntryPath::Blob(_));
                let keep =
                    size <= layout::SMALL_FILE_MAX_BYTES && kept_total + size <= KEEP_TOTAL_MAX;
                let mut kept = Vec::new();
                let mut h = Sha256::new();
                loop {
                    let n = ar
                        .read_data(&mut buf)
                        .map_err(|e| archive_error(e, "bundle"))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    if keep {
                        kept.extend_from_slice(&buf[..n]);
                    }
                    hashed += n as u64;
                    progress(hashed);
                }
                let seen = BlobSeen {
                    actual: Sha256Digest::from_bytes(h.finalize().into()),
                    size,
                };
                if keep {
                    kept_total += size;
                    if is_blob {
                        raw.small_blobs.insert(d, kept);
                    } else {
                        raw.attestation_bodies.insert(d, kept);
                    }
                }
                if is_blob {
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
