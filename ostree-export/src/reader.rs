//! Reading a repository that may be hostile: every metadata object is checked against its
//! checksum and decoded strictly before it is returned; a content object's metadata is
//! returned at once but its checksum covers the content too, so `ContentReader` checks it
//! when the content has been read to its end and fails that last read if it differs.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::DeflateDecoder;
use sha2::{Digest, Sha256};

use crate::checksum::{Checksum, ObjectType};
use crate::error::{Error, Result};
use crate::objects::{self, Commit, DirMeta, DirTree, FileKind, FileMeta, MAX_SYMLINK_TARGET};
use crate::repo::{Mode, Repo};
use crate::writer::MAX_FILE_HEADER_BYTES;

/// Largest `user.ostreemeta` xattr read (Linux caps xattr values at 64 KiB anyway).
const MAX_BAREUSER_META: usize = 64 << 10;

/// A content object opened for reading.
pub struct FileObject {
    pub meta: FileMeta,
    /// For a symlink, the target (already verified with the object's checksum).
    pub kind: FileKind,
    /// The content of a regular file (empty for a symlink).
    pub content: ContentReader,
}

impl Repo {
    /// Reads and verifies a commit.
    pub fn read_commit(&self, checksum: &Checksum) -> Result<Commit> {
        let bytes = self.read_metadata_bytes(ObjectType::Commit, checksum)?;
        objects::decode_commit(&bytes)
            .map_err(|r| Error::malformed(ObjectType::Commit, *checksum, r))
    }

    /// The commit object's exact bytes, verified (what an ed25519 signature covers).
    pub fn read_commit_bytes(&self, checksum: &Checksum) -> Result<Vec<u8>> {
        let bytes = self.read_metadata_bytes(ObjectType::Commit, checksum)?;
        objects::decode_commit(&bytes)
            .map_err(|r| Error::malformed(ObjectType::Commit, *checksum, r))?;
        Ok(bytes)
    }

    /// Reads and verifies a directory listing.
    pub fn read_dirtree(&self, checksum: &Checksum) -> Result<DirTree> {
        let bytes = self.read_metadata_bytes(ObjectType::DirTree, checksum)?;
        objects::decode_dirtree(&bytes)
            .map_err(|r| Error::malformed(ObjectType::DirTree, *checksum, r))
    }

    /// Reads and verifies a directory's metadata.
    pub fn read_dirmeta(&self, checksum: &Checksum) -> Result<DirMeta> {
        let bytes = self.read_metadata_bytes(ObjectType::DirMeta, checksum)?;
        objects::decode_dirmeta(&bytes)
            .map_err(|r| Error::malformed(ObjectType::DirMeta, *checksum, r))
    }

    /// Opens a content object. Its metadata is parsed (strictly) but verified only together
    /// with the content: read `content` to its end (or call `verify_to_end`); the read that
    /// reaches the end fails if the object does not match `checksum`. A symlink is verified
    /// here already.
    pub fn open_file(&self, checksum: &Checksum) -> Result<FileObject> {
        let kind_t = ObjectType::File;
        let Some(file) = self.open_object(kind_t, checksum)? else {
            return Err(Error::MissingObject {
                kind: kind_t,
                checksum: *checksum,
            });
        };
        let malformed = |r: String| Error::malformed(kind_t, *checksum, r);
        let io_err = |e: io::Error| Error::io(format!("reading file object {checksum}"), e);
        let (meta, kind, reader, remaining) = match self.mode() {
            Mode::Archive => {
                let mut input = BufReader::new(file);
                let mut prefix = [0u8; 8];
                input
                    .read_exact(&mut prefix)
                    .map_err(|_| malformed("shorter than its header".into()))?;
                let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
                if prefix[4..] != [0; 4] {
                    return Err(malformed("non-zero header padding".into()));
                }
                if len == 0 || len > MAX_FILE_HEADER_BYTES {
                    return Err(malformed(format!("header of {len} bytes")));
                }
                let mut header = vec![0u8; len];
                input
                    .read_exact(&mut header)
                    .map_err(|_| malformed("shorter than its header".into()))?;
                let (meta, kind) = objects::decode_archive_header(&header).map_err(malformed)?;
                let (reader, remaining): (Inner, u64) = match &kind {
                    FileKind::Regular { size } => {
                        (Inner::Deflate(DeflateDecoder::new(input)), *size)
                    }
                    FileKind::Symlink { .. } => (Inner::Raw(input), 0),
                };
                (meta, kind, reader, remaining)
            }
            Mode::BareUser => {
                let mut buf = vec![0u8; MAX_BAREUSER_META];
                let n = rustix::fs::fgetxattr(&file, "user.ostreemeta", &mut buf[..])
                    .map_err(|e| malformed(format!("no readable user.ostreemeta xattr ({e})")))?;
                let (meta, symlink) =
                    objects::decode_bareuser_meta(&buf[..n]).map_err(malformed)?;
                let size = file.metadata().map_err(io_err)?.len();
                let mut input = BufReader::new(file);
                if symlink {
                    let mut raw = Vec::new();
                    (&mut input)
                        .take(MAX_SYMLINK_TARGET as u64 + 2)
                        .read_to_end(&mut raw)
                        .map_err(io_err)?;
                    let target = match raw.split_last() {
                        Some((0, t)) if !t.contains(&0) => std::str::from_utf8(t)
                            .map_err(|_| malformed("symlink target not UTF-8".into()))?,
                        _ => return Err(malformed("symlink target not NUL-terminated".into())),
                    };
                    let kind = FileKind::Symlink {
                        target: target.to_owned(),
                    };
                    (meta, kind, Inner::Raw(input), 0)
                } else {
                    (meta, FileKind::Regular { size }, Inner::Raw(input), size)
                }
            }
        };
        let header = objects::encode_file_header(&meta, &kind).map_err(malformed)?;
        let mut hasher = Sha256::new();
        hasher.update(&header);
        let mut content = ContentReader {
            inner: reader,
            hasher: Some(hasher),
            remaining,
            expected: *checksum,
            state: State::Reading,
        };
        if let FileKind::Symlink { .. } = kind {
            content.verify_to_end()?;
        }
        Ok(FileObject {
            meta,
            kind,
            content,
        })
    }
}

enum Inner {
    Raw(BufReader<File>),
    Deflate(DeflateDecoder<BufReader<File>>),
}

impl Inner {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Inner::Raw(r) => r.read(buf),
            Inner::Deflate(d) => d.read(buf),
        }
    }

    /// Nothing left: no more content and, for archive, no bytes after the deflate stream.
    fn at_end(&mut self) -> io::Result<bool> {
        let mut one = [0u8; 1];
        if self.read(&mut one)? != 0 {
            return Ok(false);
        }
        match self {
            Inner::Raw(_) => Ok(true),
            Inner::Deflate(d) => Ok(d.get_mut().fill_buf()?.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Verified,
    Failed,
}

/// The content of a file object. It yields exactly the size its header declares; the read
/// that reaches the end checks the whole object against its checksum and returns an
/// `io::Error` of kind `InvalidData` wrapping an `Error` (`ChecksumMismatch` or `Malformed`)
/// if it differs — so only a reader that has returned `Ok(0)` has delivered verified bytes.
pub struct ContentReader {
    inner: Inner,
    hasher: Option<Sha256>,
    remaining: u64,
    expected: Checksum,
    state: State,
}

impl ContentReader {
    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Whether the content has been read to its end and matched the checksum.
    pub fn is_verified(&self) -> bool {
        self.state == State::Verified
    }

    /// Reads (and discards) the rest and verifies the object, with a typed error.
    pub fn verify_to_end(&mut self) -> Result<()> {
        let mut sink = vec![0u8; 64 << 10];
        loop {
            match self.read(&mut sink) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(into_error(e, self.expected)),
            }
        }
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.state = State::Failed;
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    fn malformed(&self, reason: &str) -> Error {
        Error::malformed(ObjectType::File, self.expected, reason)
    }

    fn finish(&mut self) -> io::Result<()> {
        match self.inner.at_end() {
            Ok(true) => {}
            Ok(false) => {
                let e = self.malformed("more content than its header declares");
                return Err(self.fail(e));
            }
            Err(e) => {
                let e = self.malformed(&format!("undecodable content ({e})"));
                return Err(self.fail(e));
            }
        }
        let actual = Checksum(self.hasher.take().unwrap_or_default().finalize().into());
        if actual != self.expected {
            let e = Error::ChecksumMismatch {
                kind: ObjectType::File,
                expected: self.expected,
                actual,
            };
            return Err(self.fail(e));
        }
        self.state = State::Verified;
        Ok(())
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.state {
            State::Verified => return Ok(0),
            State::Failed => {
                let e = self.malformed("already failed verification");
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            State::Reading => {}
        }
        if self.remaining == 0 {
            self.finish()?;
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let e = self.malformed(&format!("undecodable content ({e})"));
                return Err(self.fail(e));
            }
        };
        if n == 0 {
            let e = self.malformed("content shorter than its header declares");
            return Err(self.fail(e));
        }
        self.remaining -= n as u64;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The typed error inside an `io::Error` from `ContentReader`, or an I/O error.
pub fn into_error(e: io::Error, checksum: Checksum) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::malformed(ObjectType::File, checksum, "unreadable");
    }
    Error::io(format!("reading file object {checksum}"), e)
}
