//! Random access to the blobs inside a bundle file: the tar is indexed once with the bounded
//! archive reader (headers only, data skipped by seeking), then blobs are served by offset. Used
//! to re-sign or re-pack a bundle without unpacking it. Bytes served are not trusted: the bundle
//! writer re-hashes them.

use super::layout::{classify, EntryPath};
use super::reader::MAX_BUNDLE_HEADERS;
use super::{BlobSource, BundleError};
use crate::archive::{ArchiveReader, Dialect};
use crate::digest::Sha256Digest;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub struct BundleFile {
    path: PathBuf,
    file: File,
    blobs: BTreeMap<Sha256Digest, (u64, u64)>,
}

impl BundleFile {
    /// Index the blob and attestation entries of the bundle at `path`.
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let file = File::open(path)
            .map_err(|e| BundleError::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| BundleError::io(format!("opening {}", path.display()), e))?
            .len();
        let mut blobs = BTreeMap::new();
        let mut ar = ArchiveReader::seekable(&file, len, MAX_BUNDLE_HEADERS, Dialect::Archive);
        let bad = |e| {
            let e = super::reader::archive_error(e, "bundle");
            match e {
                BundleError::Malformed(m) => {
                    BundleError::malformed(format!("{}: {m}", path.display()))
                }
                other => other,
            }
        };
        while let Some(entry) = ar.next_entry().map_err(bad)? {
            let name = String::from_utf8_lossy(&entry.name).into_owned();
            if let Ok(EntryPath::Blob(d) | EntryPath::Attestation(d)) = classify(&name) {
                blobs.insert(d, (entry.data_offset, entry.size));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            blobs,
        })
    }
}

impl BlobSource for BundleFile {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + '_>, BundleError> {
        let (offset, have) = *self.blobs.get(digest).ok_or_else(|| {
            BundleError::malformed(format!("{}: blob {digest} is missing", self.path.display()))
        })?;
        if have != size {
            return Err(BundleError::Mismatch(format!(
                "{}: blob {digest} has {have} bytes, the manifest says {size}",
                self.path.display()
            )));
        }
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| BundleError::io(format!("reading {}", self.path.display()), e))?;
        Ok(Box::new((&mut self.file).take(size)))
    }
}
