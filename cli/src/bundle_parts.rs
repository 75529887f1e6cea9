//! Random access to a bundle's parts without reading its blobs: the tar is indexed once with
//! core's bounded archive reader (headers only; data is skipped by seeking), the small files
//! (signed manifest, summary, index, signatures) are kept with the bundle reader's bounds, and
//! blobs are served by offset. For
//! `ct push` and `ct export`, which stream blobs elsewhere. Nothing here is trusted: the signed
//! manifest is parsed canonically and every blob is re-hashed by whoever consumes it.

use crate::exit::{CmdResult, Failure};
use cerro_core::archive::{ArchiveError, ArchiveReader, Dialect, TarKind};
use cerro_core::bundle::layout::{self, classify, EntryPath};
use cerro_core::bundle::reader::MAX_BUNDLE_HEADERS;
use cerro_core::manifest::Manifest;
use cerro_core::sign::SignatureFile;
use cerro_core::text::show_name;
use cerro_core::{Sha256Digest, SignatureSet};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where one blob's bytes sit in the bundle file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub size: u64,
}

pub struct BundleParts {
    pub path: PathBuf,
    pub file: File,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub summary: Option<Vec<u8>>,
    /// Signature files by key id (file name).
    pub signatures: SignatureSet,
    pub blobs: BTreeMap<Sha256Digest, Region>,
    pub attestations: BTreeMap<Sha256Digest, Region>,
}

impl BundleParts {
    /// Index the bundle at `path` and parse its signed manifest (exit 10 when it is not a bundle).
    pub fn open(path: &Path) -> CmdResult<Self> {
        let ctx = |m: String| Failure::malformed(format!("bundle {}: {m}", path.display()));
        let file = File::open(path)
            .map_err(|e| Failure::io(format!("opening bundle {}", path.display()), e))?;
        let mut manifest_bytes = None;
        let mut summary = None;
        let mut signatures = SignatureSet::new();
        let mut blobs = BTreeMap::new();
        let mut attestations = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let len = file
            .metadata()
            .map_err(|e| Failure::io(format!("opening bundle {}", path.display()), e))?
            .len();
        // The bounded archive reader (no extension header over 1 MiB, no name over 4095 bytes);
        // blob data is sought over, never read.
        let mut ar = ArchiveReader::seekable(&file, len, MAX_BUNDLE_HEADERS, Dialect::Archive);
        let bad = |e: ArchiveError| match e {
            ArchiveError::Io(e) => Failure::io(format!("reading bundle {}", path.display()), e),
            e if e.is_truncated() => ctx(format!("it is truncated ({e}); copy it again")),
            e => ctx(format!("not a readable bundle: {e}")),
        };
        while let Some(entry) = ar.next_entry().map_err(bad)? {
            let name = String::from_utf8(entry.name).map_err(|b| {
                ctx(format!(
                    "entry {} has a name that is not UTF-8",
                    show_name(b.as_bytes())
                ))
            })?;
            if !seen.insert(name.trim_end_matches('/').to_string()) {
                return Err(ctx(format!(
                    "entry {} appears twice",
                    show_name(name.as_bytes())
                )));
            }
            let kind = classify(&name).map_err(ctx)?;
            let is_dir = matches!(kind, EntryPath::Dir(_));
            let expected = if is_dir {
                TarKind::Directory
            } else {
                TarKind::Regular
            };
            if entry.kind != expected {
                return Err(ctx(format!(
                    "entry {} is a {}; a bundle holds only regular files and directories",
                    show_name(name.as_bytes()),
                    entry.kind.describe()
                )));
            }
            let size = entry.size;
            let mut small = |limit: u64| -> CmdResult<Vec<u8>> {
                if size > limit {
                    return Err(ctx(format!(
                        "entry {} is {size} bytes, more than the {limit} allowed",
                        show_name(name.as_bytes())
                    )));
                }
                let mut v = Vec::with_capacity(size as usize);
                ar.read_to_end(&mut v)
                    .map_err(|e| match e.downcast::<ArchiveError>() {
                        Ok(a) => bad(a),
                        Err(e) => Failure::io(format!("reading bundle {}", path.display()), e),
                    })?;
                Ok(v)
            };
            let region = Region {
                offset: entry.data_offset,
                size,
            };
            match kind {
                EntryPath::Manifest => {
                    manifest_bytes = Some(small(cerro_core::manifest::MANIFEST_MAX_BYTES as u64)?)
                }
                EntryPath::Summary => summary = Some(small(layout::SMALL_FILE_MAX_BYTES)?),
                EntryPath::Signature(id) => {
                    if signatures.len() >= layout::MAX_SIGNATURES {
                        return Err(ctx("too many signatures".into()));
                    }
                    let v = small(cerro_core::sign::SIGNATURE_MAX_BYTES as u64)?;
                    signatures.insert(id, v);
                }
                EntryPath::Blob(d) => {
                    blobs.insert(d, region);
                }
                EntryPath::Attestation(d) => {
                    attestations.insert(d, region);
                }
                EntryPath::Dir(_) | EntryPath::OciLayout | EntryPath::IndexJson => {}
            }
        }
        let manifest_bytes =
            manifest_bytes.ok_or_else(|| ctx(format!("it has no {}", layout::MANIFEST_TOML)))?;
        let manifest = Manifest::parse(&manifest_bytes)
            .map_err(|e| ctx(format!("{}: {e}", layout::MANIFEST_TOML)))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            manifest_bytes,
            manifest,
            summary,
            signatures,
            blobs,
            attestations,
        })
    }

    /// Where blob (or attestation) `d` of `size` bytes is; exit 10 when missing, 1 when its size
    /// differs from the signed one.
    pub fn region(&self, d: &Sha256Digest, size: u64, attestation: bool) -> CmdResult<Region> {
        let table = if attestation {
            &self.attestations
        } else {
            &self.blobs
        };
        let r = *table.get(d).ok_or_else(|| {
            Failure::malformed(format!(
                "bundle {}: blob {d} is missing",
                self.path.display()
            ))
        })?;
        if r.size != size {
            return Err(Failure::new(
                crate::exit::HASH_MISMATCH,
                format!(
                    "bundle {}: blob {d} has {} bytes, the signed manifest says {size}",
                    self.path.display(),
                    r.size
                ),
            ));
        }
        Ok(r)
    }

    /// Read a small blob whole and check its digest (exit 1 on mismatch).
    pub fn read_blob(&self, d: &Sha256Digest, size: u64, max: u64) -> CmdResult<Vec<u8>> {
        let r = self.region(d, size, false)?;
        if size > max {
            return Err(Failure::malformed(format!(
                "bundle {}: blob {d} is larger than {max} bytes",
                self.path.display()
            )));
        }
        let mut v = vec![0u8; size as usize];
        self.file
            .read_exact_at(&mut v, r.offset)
            .map_err(|e| Failure::io(format!("reading bundle {}", self.path.display()), e))?;
        let got = Sha256Digest::of(&v);
        if got != *d {
            return Err(Failure::new(
                crate::exit::HASH_MISMATCH,
                format!("bundle {}: blob {d} hashes to {got}", self.path.display()),
            )
            .hint("the bundle was damaged after signing; do not use it, obtain a fresh copy"));
        }
        Ok(v)
    }

    /// Parse every signature file and check it against the signed manifest: exit 2 when there is
    /// none or one does not verify, 10 when one is malformed.
    pub fn checked_signatures(&self) -> CmdResult<Vec<SignatureFile>> {
        let mut out = Vec::new();
        for (id, bytes) in &self.signatures {
            let s = SignatureFile::parse(bytes).map_err(|e| {
                Failure::malformed(format!(
                    "bundle {}: cerro/signatures/{id}.sig: {e}",
                    self.path.display()
                ))
            })?;
            if s.key_id != *id {
                return Err(Failure::malformed(format!(
                    "bundle {}: cerro/signatures/{id}.sig holds a signature by key id {:?}",
                    self.path.display(),
                    s.key_id.as_str()
                )));
            }
            s.verify(&self.manifest_bytes).map_err(|e| {
                Failure::new(crate::exit::SIGNATURE_INVALID, format!("bundle {}: {e}", self.path.display()))
                    .hint("do not publish this bundle: it was changed after it was signed; re-create or re-sign it")
            })?;
            out.push(s);
        }
        if out.is_empty() {
            return Err(Failure::new(
                crate::exit::SIGNATURE_INVALID,
                format!("bundle {} is not signed", self.path.display()),
            )
            .hint("sign it with `ct re-sign BUNDLE -k KEY`"));
        }
        Ok(out)
    }
}
