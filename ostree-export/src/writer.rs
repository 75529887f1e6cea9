//! Writing a commit from a pre-order walk: `CommitBuilder` takes directories, files and
//! symlinks in name order, streams each file's content into `tmp/` while hashing it (the
//! checksum is known only at the end), moves it to its loose path unless that object exists,
//! and writes dirmeta, dirtree and commit objects as the walk closes them. No clock, no
//! randomness: the same tree and `CommitInfo` give the same bytes and the same commit.

use std::io::{BufWriter, Read, Write};
use std::os::fd::AsFd;

use flate2::write::DeflateEncoder;
use flate2::Compression;
use rustix::fs::{self as rfs, Mode as FsMode, XattrFlags};
use sha2::{Digest, Sha256};

use crate::checksum::{Checksum, ObjectType};
use crate::error::{sys, Error, Result};
use crate::fsutil::TmpFile;
use crate::objects::{
    self, validate_name, Commit, DirMeta, DirTree, DirTreeDir, FileKind, FileMeta, MetaValue,
};
use crate::repo::{Mode, Repo};

/// OSTree's archive compression level (`OSTREE_ARCHIVE_DEFAULT_COMPRESSION_LEVEL`, gzip's).
const ARCHIVE_COMPRESSION_LEVEL: u32 = 6;
/// Read size when streaming file content.
const COPY_CHUNK: usize = 128 << 10;
/// Regular files up to this size are read into memory and hashed before anything is written
/// (objects already present cost no compression and no write); larger ones stream.
const IN_MEMORY_MAX: u64 = 8 << 20;
/// Largest content-object header (metadata and xattrs of one file) written or read.
pub const MAX_FILE_HEADER_BYTES: usize = 16 << 20;
/// bare-user keeps at most these permission bits on the object file itself (OSTree's mask:
/// no set-id bits, no world write), plus owner read.
const BAREUSER_FILE_MASK: u32 = 0o775;
const BAREUSER_SYMLINK_FILE_MODE: u32 = 0o644;

/// How many objects a write added and how many were already in the repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteStats {
    pub written: u64,
    pub already_present: u64,
}

impl WriteStats {
    fn count(&mut self, new: bool) {
        if new {
            self.written += 1;
        } else {
            self.already_present += 1;
        }
    }
}

/// The commit object's own fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommitInfo {
    pub subject: String,
    pub body: String,
    /// Seconds since the Unix epoch (the caller's choice: nothing here reads a clock).
    pub timestamp: u64,
    pub parent: Option<Checksum>,
    /// Stored sorted by key; keys must be unique and non-empty.
    pub metadata: Vec<(String, MetaValue)>,
}

/// What `CommitBuilder::finish` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub commit: Checksum,
    pub root_tree: Checksum,
    pub root_meta: Checksum,
    pub stats: WriteStats,
}

struct Frame {
    name: String,
    meta: Checksum,
    files: Vec<(String, Checksum)>,
    dirs: Vec<DirTreeDir>,
    last: Option<Vec<u8>>,
}

/// Builds one commit from a pre-order walk; see `Repo::begin_commit`.
///
/// After any error the builder is in an unspecified state: drop it. Objects already written
/// stay (they are valid objects; nothing refers to them until a ref does).
pub struct CommitBuilder<'r> {
    repo: &'r Repo,
    stack: Vec<Frame>,
    stats: WriteStats,
}

impl Repo {
    /// Starts a commit whose root directory has `root`'s metadata. Then, for each directory
    /// in pre-order, its entries in increasing name-byte order: `file`, `symlink`, or
    /// `dir_start` … `dir_end` for a subdirectory; finally `finish`.
    pub fn begin_commit(&self, root: &DirMeta) -> Result<CommitBuilder<'_>> {
        let mut b = CommitBuilder {
            repo: self,
            stack: Vec::new(),
            stats: WriteStats::default(),
        };
        let meta = b.write_dirmeta(root)?;
        b.stack.push(Frame {
            name: String::new(),
            meta,
            files: Vec::new(),
            dirs: Vec::new(),
            last: None,
        });
        Ok(b)
    }
}

fn not_representable(what: impl Into<String>) -> Error {
    Error::NotRepresentable(what.into())
}

impl<'r> CommitBuilder<'r> {
    /// Objects written and found so far.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    /// Checks and records the next name of the current directory.
    fn next_name(&mut self, name: &[u8]) -> Result<String> {
        let frame = self
            .stack
            .last_mut()
            .ok_or_else(|| Error::Protocol("entry after the root directory ended".into()))?;
        let valid = validate_name(name).map_err(not_representable)?.to_owned();
        if let Some(last) = &frame.last {
            if last.as_slice() >= name {
                return Err(Error::Protocol(format!(
                    "{valid:?} does not follow {:?} in name-byte order",
                    String::from_utf8_lossy(last)
                )));
            }
        }
        frame.last = Some(name.to_vec());
        Ok(valid)
    }

    fn write_dirmeta(&mut self, meta: &DirMeta) -> Result<Checksum> {
        let bytes = objects::encode_dirmeta(meta).map_err(not_representable)?;
        let (c, new) = self.repo.write_metadata(ObjectType::DirMeta, &bytes)?;
        self.stats.count(new);
        Ok(c)
    }

    /// Opens subdirectory `name` of the current directory.
    pub fn dir_start(&mut self, name: &[u8], meta: &DirMeta) -> Result<()> {
        let name = self.next_name(name)?;
        let meta = self.write_dirmeta(meta)?;
        self.stack.push(Frame {
            name,
            meta,
            files: Vec::new(),
            dirs: Vec::new(),
            last: None,
        });
        Ok(())
    }

    /// Closes the current subdirectory (writes its dirtree).
    pub fn dir_end(&mut self) -> Result<()> {
        if self.stack.len() < 2 {
            return Err(Error::Protocol(
                "dir_end without a matching dir_start".into(),
            ));
        }
        let (frame, tree) = self.close_frame()?;
        if let Some(parent) = self.stack.last_mut() {
            parent.dirs.push(DirTreeDir {
                name: frame.name,
                tree,
                meta: frame.meta,
            });
        }
        Ok(())
    }

    fn close_frame(&mut self) -> Result<(Frame, Checksum)> {
        let mut frame = self
            .stack
            .pop()
            .ok_or_else(|| Error::Protocol("no open directory".into()))?;
        let tree = DirTree {
            files: std::mem::take(&mut frame.files),
            dirs: std::mem::take(&mut frame.dirs),
        };
        let bytes = objects::encode_dirtree(&tree).map_err(not_representable)?;
        let (c, new) = self.repo.write_metadata(ObjectType::DirTree, &bytes)?;
        self.stats.count(new);
        Ok((frame, c))
    }

    fn add_file_entry(&mut self, name: String, c: Checksum) {
        if let Some(f) = self.stack.last_mut() {
            f.files.push((name, c));
        }
    }

    /// Adds regular file `name` of exactly `size` bytes read from `content` (to its end).
    pub fn file(
        &mut self,
        name: &[u8],
        meta: &FileMeta,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<Checksum> {
        let name = self.next_name(name)?;
        let (c, new) = write_content(
            self.repo,
            &name,
            meta,
            &FileKind::Regular { size },
            Some(content),
        )?;
        self.stats.count(new);
        self.add_file_entry(name, c);
        Ok(c)
    }

    /// Adds symlink `name` pointing at `target` (UTF-8, 1 to 4095 bytes, no NUL).
    pub fn symlink(&mut self, name: &[u8], meta: &FileMeta, target: &[u8]) -> Result<Checksum> {
        let name = self.next_name(name)?;
        let target = std::str::from_utf8(target).map_err(|_| {
            not_representable(format!(
                "the target of symlink {name:?} is not UTF-8 ({:?})",
                String::from_utf8_lossy(target)
            ))
        })?;
        let kind = FileKind::Symlink {
            target: target.to_owned(),
        };
        let (c, new) = write_content(self.repo, &name, meta, &kind, None)?;
        self.stats.count(new);
        self.add_file_entry(name, c);
        Ok(c)
    }

    /// Closes the root directory and writes the commit object.
    pub fn finish(mut self, info: CommitInfo) -> Result<Committed> {
        if self.stack.len() != 1 {
            return Err(Error::Protocol(format!(
                "finish with {} directories still open",
                self.stack.len().saturating_sub(1)
            )));
        }
        let (root, root_tree) = self.close_frame()?;
        let mut metadata = info.metadata;
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = metadata.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::Protocol(format!(
                "commit metadata key {:?} given twice",
                w[0].0
            )));
        }
        let commit = Commit {
            metadata,
            parent: info.parent,
            related: Vec::new(),
            subject: info.subject,
            body: info.body,
            timestamp: info.timestamp,
            root_tree,
            root_meta: root.meta,
        };
        let bytes = objects::encode_commit(&commit).map_err(not_representable)?;
        let (c, new) = self.repo.write_metadata(ObjectType::Commit, &bytes)?;
        self.stats.count(new);
        Ok(Committed {
            commit: c,
            root_tree,
            root_meta: root.meta,
            stats: self.stats,
        })
    }
}

/// Hashes what it writes (the content part of a content checksum).
struct HashingCopy<'a> {
    /// None when the bytes were hashed already (an object buffered in memory first).
    hasher: Option<&'a mut Sha256>,
}

/// Streams `content` into `out`, hashing it, refusing more or fewer than `size` bytes.
fn copy_exact(
    name: &str,
    content: &mut dyn Read,
    size: u64,
    out: &mut dyn Write,
    mut h: HashingCopy<'_>,
) -> Result<()> {
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut total: u64 = 0;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Input {
                    name: name.to_owned(),
                    source: e,
                })
            }
        };
        total = total.saturating_add(n as u64);
        if total > size {
            return Err(Error::SizeMismatch {
                name: name.to_owned(),
                declared: size,
                read: total,
                more: true,
            });
        }
        if let Some(hasher) = h.hasher.as_deref_mut() {
            hasher.update(&buf[..n]);
        }
        out.write_all(&buf[..n])
            .map_err(|e| Error::io(format!("writing the content of {name:?}"), e))?;
    }
    if total != size {
        return Err(Error::SizeMismatch {
            name: name.to_owned(),
            declared: size,
            read: total,
            more: false,
        });
    }
    Ok(())
}

/// Writes one content object; returns its checksum and whether it is new.
pub(crate) fn write_content(
    repo: &Repo,
    name: &str,
    meta: &FileMeta,
    kind: &FileKind,
    content: Option<&mut dyn Read>,
) -> Result<(Checksum, bool)> {
    let what = |e: String| not_representable(format!("{name:?}: {e}"));
    let header = objects::encode_file_header(meta, kind).map_err(what)?;
    if header.len() > MAX_FILE_HEADER_BYTES {
        return Err(not_representable(format!(
            "{name:?}: metadata and xattrs of {} bytes, above {MAX_FILE_HEADER_BYTES}",
            header.len()
        )));
    }
    let mut hasher = Sha256::new();
    hasher.update(&header);
    // A file small enough is read (verified) and hashed first, so an object the repository
    // already has is neither compressed nor written again (a symlink's target is in the header,
    // hashed already); a larger file streams into a temporary object, hashed on the way, which
    // is dropped if the repository turns out to have it.
    let mut content = content;
    let mut data = None;
    if let (FileKind::Regular { size }, Some(c)) = (kind, content.as_mut()) {
        if *size <= IN_MEMORY_MAX {
            let mut d = Vec::with_capacity(*size as usize);
            let hashing = HashingCopy {
                hasher: Some(&mut hasher),
            };
            copy_exact(name, &mut **c, *size, &mut d, hashing)?;
            data = Some(d);
        }
    }
    let streams = matches!(kind, FileKind::Regular { .. }) && data.is_none();
    let known = (!streams).then(|| Checksum(hasher.clone().finalize().into()));
    if let Some(c) = known {
        if repo.has_object(ObjectType::File, &c)? {
            return Ok((c, false));
        }
    }
    let tmp_dir = repo.tmp_dir()?;
    let tmp = TmpFile::create(tmp_dir.as_fd())?;
    let mode = repo.mode();
    match &data {
        Some(d) => write_object(&tmp, mode, name, meta, kind, Some(&mut &d[..]), None)?,
        None if streams => write_object(&tmp, mode, name, meta, kind, content, Some(&mut hasher))?,
        None => write_object(&tmp, mode, name, meta, kind, None, None)?,
    }
    let checksum = known.unwrap_or_else(|| Checksum(hasher.finalize().into()));
    let new = repo.persist_object(tmp, ObjectType::File, &checksum)?;
    Ok((checksum, new))
}

/// Writes a content object's file into `tmp` (not yet in place): content streamed from
/// `content`, hashed into `hasher` when one is given.
fn write_object(
    tmp: &TmpFile<'_>,
    mode: Mode,
    name: &str,
    meta: &FileMeta,
    kind: &FileKind,
    content: Option<&mut dyn Read>,
    hasher: Option<&mut Sha256>,
) -> Result<()> {
    let what = |e: String| not_representable(format!("{name:?}: {e}"));
    let io = |e: std::io::Error| Error::io(format!("writing the object of {name:?}"), e);
    match (mode, kind) {
        (Mode::Archive, _) => {
            let archive_header = objects::encode_archive_header(meta, kind).map_err(what)?;
            let mut out = BufWriter::new(&tmp.file);
            out.write_all(&archive_header).map_err(io)?;
            if let (FileKind::Regular { size }, Some(content)) = (kind, content) {
                let mut z =
                    DeflateEncoder::new(&mut out, Compression::new(ARCHIVE_COMPRESSION_LEVEL));
                copy_exact(name, content, *size, &mut z, HashingCopy { hasher })?;
                z.finish().map_err(io)?;
            }
            out.flush().map_err(io)?;
        }
        (Mode::BareUser, FileKind::Regular { size }) => {
            let Some(content) = content else {
                return Err(Error::Protocol("regular file without content".into()));
            };
            let mut out = BufWriter::new(&tmp.file);
            copy_exact(name, content, *size, &mut out, HashingCopy { hasher })?;
            out.flush().map_err(io)?;
            set_bareuser_meta(tmp, meta, false, name)?;
            let mode = (meta.mode & BAREUSER_FILE_MASK) | 0o400;
            rfs::fchmod(&tmp.file, FsMode::from_raw_mode(mode)).map_err(sys("fchmod"))?;
        }
        (Mode::BareUser, FileKind::Symlink { target }) => {
            // bare-user keeps a symlink as a regular file holding its target and a NUL.
            let mut out = BufWriter::new(&tmp.file);
            out.write_all(target.as_bytes()).map_err(io)?;
            out.write_all(&[0]).map_err(io)?;
            out.flush().map_err(io)?;
            set_bareuser_meta(tmp, meta, true, name)?;
            rfs::fchmod(&tmp.file, FsMode::from_raw_mode(BAREUSER_SYMLINK_FILE_MODE))
                .map_err(sys("fchmod"))?;
        }
    }
    Ok(())
}

fn set_bareuser_meta(tmp: &TmpFile<'_>, meta: &FileMeta, symlink: bool, name: &str) -> Result<()> {
    let xattr = objects::encode_bareuser_meta(meta, symlink)
        .map_err(|e| not_representable(format!("{name:?}: {e}")))?;
    rfs::fsetxattr(&tmp.file, "user.ostreemeta", &xattr, XattrFlags::empty()).map_err(sys(format!(
        "setting user.ostreemeta on the object of {name:?}"
    )))
}
