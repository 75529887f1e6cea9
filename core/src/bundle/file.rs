//! Random access to a bundle file without reading its blobs: the one seekable index of a bundle.
//! The tar is read once with the bounded archive reader under the same entry rules as the
//! streaming reader (headers only; blob data is sought over, never read), the small files
//! (signed manifest, summary, index, signatures) are kept within their bounds, the signed
//! manifest is parsed canonically, and blobs are served by offset. Used to push, export,
//! re-sign, re-pack or import a bundle without unpacking it. Nothing served is trusted: whoever
//! consumes a blob re-hashes it (the bundle writer does, and [`BundleFile::read_blob`] does).

use super::layout::{self, EntryPath};
use super::reader::{archive_error, read_small, EntryRules, MAX_BUNDLE_HEADERS};
use super::{BlobSource, BundleError};
use crate::archive::{ArchiveReader, Dialect};
use crate::digest::Sha256Digest;
use crate::manifest::Manifest;
use crate::sign::SignatureFile;
use crate::SignatureSet;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Where one entry's data sits in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub size: u64,
}

impl Region {
    /// A reader over exactly this region of `file` (positioned reads: the file's own offset is
    /// not used, so several regions of one file may be read in turn).
    pub fn reader(self, file: &File) -> RegionReader<'_> {
        RegionReader {
            file,
            pos: self.offset,
            end: self.offset.saturating_add(self.size),
        }
    }

    /// Read the whole region (the caller has bounded its size).
    pub fn read_all(self, file: &File) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.size as usize);
        self.reader(file).read_to_end(&mut v)?;
        if (v.len() as u64) < self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than its index says (it changed while being read)",
            ));
        }
        Ok(v)
    }
}

/// Reads one region of a file with positioned reads.
pub struct RegionReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for RegionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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

/// A bundle file, indexed.
pub struct BundleFile {
    path: PathBuf,
    file: File,
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    summary: Option<Vec<u8>>,
    signatures: SignatureSet,
    blobs: BTreeMap<Sha256Digest, Region>,
    attestations: BTreeMap<Sha256Digest, Region>,
}

impl BundleFile {
    /// Index the bundle at `path` and parse its signed manifest. A file that breaks the entry
    /// rules of a bundle, or has no canonical `cerro/manifest.toml`, is malformed (exit 10).
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let at = |e: BundleError| match e {
            BundleError::Malformed(m) => {
                BundleError::malformed(format!("bundle {}: {m}", path.display()))
            }
            BundleError::Io { source, .. } => {
                BundleError::io(format!("reading bundle {}", path.display()), source)
            }
            other => other,
        };
        let file = File::open(path)
            .map_err(|e| BundleError::io(format!("opening bundle {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| BundleError::io(format!("opening bundle {}", path.display()), e))?
            .len();
        let mut manifest_bytes = None;
        let mut summary = None;
        let mut signatures = SignatureSet::new();
        let mut blobs = BTreeMap::new();
        let mut attestations = BTreeMap::new();
        let mut rules = EntryRules::default();
        let mut ar = ArchiveReader::seekable(&file, len, MAX_BUNDLE_HEADERS, Dialect::Archive);
        while let Some(entry) = ar
            .next_entry()
            .map_err(|e| at(archive_error(e, "bundle")))?
        {
            let region = Region {
                offset: entry.data_offset,
                size: entry.size,
            };
            let Some(kind) = rules.check(entry).map_err(at)? else {
                continue;
            };
            match kind {
                EntryPath::Manifest => {
                    manifest_bytes = Some(read_small(&mut ar, region.size).map_err(at)?)
                }
                EntryPath::Summary => summary = Some(read_small(&mut ar, region.size).map_err(at)?),
                EntryPath::Signature(id) => {
                    signatures.insert(id, read_small(&mut ar, region.size).map_err(at)?);
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
        let manifest_bytes = manifest_bytes.ok_or_else(|| {
            at(BundleError::malformed(format!(
                "it has no {}",
                layout::MANIFEST_TOML
            )))
        })?;
        let manifest = Manifest::parse(&manifest_bytes).map_err(|e| {
            at(BundleError::malformed(format!(
                "{}: {e}",
                layout::MANIFEST_TOML
            )))
        })?;
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file (blob data is read from it by offset).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The signed manifest, parsed canonically.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The signed manifest's exact bytes (what the signatures cover).
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// `cerro/summary.json` as stored, if present (not checked here).
    pub fn summary(&self) -> Option<&[u8]> {
        self.summary.as_deref()
    }

    /// The signature files as stored, by key id (their file name), in key-id order.
    pub fn signatures(&self) -> &SignatureSet {
        &self.signatures
    }

    /// Every signature file parsed, each holding a signature by the key id it is named after
    /// (malformed otherwise). Whether they verify is the caller's question.
    pub fn signature_files(&self) -> Result<Vec<SignatureFile>, BundleError> {
        let mut out = Vec::with_capacity(self.signatures.len());
        for (id, bytes) in &self.signatures {
            let name = format!("{}{id}.sig", layout::SIGNATURES_DIR);
            let s = SignatureFile::parse(bytes).map_err(|e| {
                BundleError::malformed(format!("bundle {}: {name}: {e}", self.path.display()))
            })?;
            if s.key_id != *id {
                return Err(BundleError::malformed(format!(
                    "bundle {}: {name} holds a signature by key id {:?}",
                    self.path.display(),
                    s.key_id.as_str()
                )));
            }
            out.push(s);
        }
        Ok(out)
    }

    /// Where blob (or attestation) `d` of `size` bytes is: malformed when it is missing, a
    /// mismatch (exit 1) when its size differs from the signed one.
    pub fn region(
        &self,
        d: &Sha256Digest,
        size: u64,
        attestation: bool,
    ) -> Result<Region, BundleError> {
        let table = if attestation {
            &self.attestations
        } else {
            &self.blobs
        };
        let r = *table.get(d).ok_or_else(|| {
            BundleError::malformed(format!(
                "bundle {}: blob {d} is missing",
                self.path.display()
            ))
        })?;
        if r.size != size {
            return Err(BundleError::Mismatch(format!(
                "bundle {}: blob {d} has {} bytes, the signed manifest says {size}",
                self.path.display(),
                r.size
            )));
        }
        Ok(r)
    }

    /// Read a small blob whole and check its digest (a mismatch when it does not hash to `d`).
    pub fn read_blob(&self, d: &Sha256Digest, size: u64, max: u64) -> Result<Vec<u8>, BundleError> {
        let r = self.region(d, size, false)?;
        if size > max {
            return Err(BundleError::malformed(format!(
                "bundle {}: blob {d} is larger than {max} bytes",
                self.path.display()
            )));
        }
        let v = r
            .read_all(&self.file)
            .map_err(|e| BundleError::io(format!("reading bundle {}", self.path.display()), e))?;
        let got = Sha256Digest::of(&v);
        if got != *d {
            return Err(BundleError::Mismatch(format!(
                "bundle {}: blob {d} hashes to {got}",
                self.path.display()
            )));
        }
        Ok(v)
    }
}

impl BundleFile {
    /// A reader over blob or attestation `digest` (looked up among the blobs first).
    fn blob_reader(
        &self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<RegionReader<'_>, BundleError> {
        let attestation = !self.blobs.contains_key(digest);
        Ok(self.region(digest, size, attestation)?.reader(&self.file))
    }
}

impl BlobSource for BundleFile {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        Ok(Box::new(self.blob_reader(digest, size)?))
    }
}

/// Blobs are read with positioned reads, so a shared reference serves them too (several
/// bundles of an export are read in turn).
impl BlobSource for &BundleFile {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        Ok(Box::new(self.blob_reader(digest, size)?))
    }
}

/// Whether the file at `path` looks like a bundle rather than an export archive: it has
/// `cerro/manifest.toml` among its first entries. Read with the bounded reader; anything
/// unreadable is "not a bundle" here (the reader the caller picks then says what is wrong).
pub fn looks_like_bundle(path: &Path) -> io::Result<bool> {
    /// Entries looked at: a bundle's manifest comes after at most a few dozen (§2.1 order).
    const LOOK_AT: usize = 64;
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut ar = ArchiveReader::seekable(&f, len, 2 * LOOK_AT as u64, Dialect::Archive);
    for _ in 0..LOOK_AT {
        match ar.next_entry() {
            Ok(Some(e)) if e.name == layout::MANIFEST_TOML.as_bytes() => return Ok(true),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(false),
        }
    }
    Ok(false)
}
