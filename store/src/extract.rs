//! Writing a verified tree out of the store as a plain directory (`ct unpack --format rootfs`):
//! entries in the order of core's verified walk, every directory node and file block through
//! `VerifiedTree`, and every entry created exclusively, through descriptors, in a directory
//! this process made — no link is followed.
//! Metadata that privileges do not allow (owners, devices, some xattrs) is listed, not fatal.

use crate::Store;
use cerro_core::rootfs::walk::{self, Walk};
use cerro_core::rootfs::{DirDigest, Metadata, Payload, TreeError, VerifiedTree, WalkItem};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

/// Bytes read from a verified file per call (a multiple of the verification block).
const READ_CHUNK: u64 = 1 << 20;

/// Why a tree could not be written: what was being written, and the tree's refusal (a
/// verification failure or an unreadable store object) or the output's I/O error.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{what}: {source}")]
    Tree { what: String, source: TreeError },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl ExtractError {
    fn tree(what: String, source: TreeError) -> Self {
        Self::Tree { what, source }
    }
    fn io(what: String, source: std::io::Error) -> Self {
        Self::Io { what, source }
    }
}

/// A directory being written, with its finished subdirectories (open, with their entries).
type OpenDir = (Rc<OwnedFd>, Vec<(Rc<OwnedFd>, walk::Entry)>);

/// The directory and name of the first path written for a link group.
type LinkTarget = (Rc<OwnedFd>, Vec<u8>);

/// Writes a verified tree into a staging directory through descriptors, keeping what privileges
/// allow and listing what they did not. Every entry is created exclusively in a directory this
/// process made (and that only it can write to until the tree is finished: the staging root
/// stays 0700 until last), so no link is ever followed.
pub struct RootfsWriter {
    tree: VerifiedTree<Store>,
    /// Link group id → the directory and name of the first path written for it.
    links: std::cell::RefCell<HashMap<u64, LinkTarget>>,
    not_preserved: std::cell::RefCell<Vec<String>>,
}

/// A path as messages show it.
fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn cname(b: &[u8]) -> Result<CString, rustix::io::Errno> {
    CString::new(b).map_err(|_| rustix::io::Errno::INVAL)
}

impl RootfsWriter {
    pub fn new(tree: VerifiedTree<Store>) -> Self {
        Self {
            tree,
            links: Default::default(),
            not_preserved: Default::default(),
        }
    }

    /// Write the tree `dir` (whose own metadata is `meta`) into the empty directory `root`,
    /// in the order of core's verified walk; answers what could not be kept, one line each.
    pub fn write(
        self,
        dir: &DirDigest,
        meta: &Metadata,
        root: OwnedFd,
    ) -> Result<Vec<String>, ExtractError> {
        let root = Rc::new(root);
        // The directories being written, innermost last (the root first), each with its
        // finished subdirectories, whose metadata is set when it is finished too: a mode that
        // forbids writing comes after everything below and beside it is written.
        let mut open: Vec<OpenDir> = Vec::new();
        let tree = self.tree.clone();
        for item in Walk::from_dir(&tree, meta.clone(), *dir) {
            match item {
                WalkItem::Error(err) => {
                    let what = format!("directory {}", show(&err.path));
                    return Err(ExtractError::tree(what, *err.source));
                }
                WalkItem::Entry(e) if e.depth == 0 => open.push((root.clone(), Vec::new())),
                WalkItem::Entry(e) => {
                    let parent = open.last().expect("entries come inside the root").0.clone();
                    if let Some(sub) = self.write_entry(&parent, &e)? {
                        open.push((sub, Vec::new()));
                    }
                }
                WalkItem::DirEnd(e) => {
                    let (fd, subdirs) = open.pop().expect("each end closes an open directory");
                    for (sub, se) in &subdirs {
                        self.set_meta(Target::Fd(&**sub), se.meta(), &show(&se.path));
                    }
                    match open.last_mut() {
                        Some((_, siblings)) => siblings.push((fd, e)),
                        // The root's own metadata last: until now only this process could
                        // reach inside.
                        None => self.set_meta(Target::Fd(&*fd), e.meta(), "/"),
                    }
                }
            }
        }
        Ok(self.not_preserved.into_inner())
    }

    fn lost(&self, what: String) {
        self.not_preserved.borrow_mut().push(what);
    }

    /// Create one entry in `dir`; a directory is answered open, for its contents.
    fn write_entry(
        &self,
        dir: &Rc<OwnedFd>,
        e: &walk::Entry,
    ) -> Result<Option<Rc<OwnedFd>>, ExtractError> {
        use rustix::fs::{
            linkat, mkdirat, mknodat, openat, symlinkat, AtFlags, FileType, Mode, OFlags,
        };
        let show = show(&e.path);
        let io = |er: rustix::io::Errno| ExtractError::io(format!("writing {show}"), er.into());
        let name = cname(e.name()).map_err(io)?;
        if let Some(link) = e.payload().link().filter(|l| l.nlink > 1) {
            if e.first_link.is_some() {
                let first = self.links.borrow().get(&link.id).cloned();
                let (fdir, fname) = first.expect("the first path of a link group came earlier");
                let fname = cname(&fname).map_err(io)?;
                linkat(&*fdir, &fname, &**dir, &name, AtFlags::empty())
                    .map_err(|er| ExtractError::io(format!("linking {show}"), er.into()))?;
                return Ok(None);
            }
            self.links
                .borrow_mut()
                .insert(link.id, (dir.clone(), e.name().to_vec()));
        }
        match e.payload() {
            Payload::Directory { .. } => {
                mkdirat(&**dir, &name, Mode::from_raw_mode(0o700)).map_err(io)?;
                let sub = openat(
                    &**dir,
                    &name,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(io)?;
                return Ok(Some(Rc::new(sub)));
            }
            Payload::File { size, root, .. } => {
                let vf = self
                    .tree
                    .open_file(root, *size)
                    .map_err(|er| ExtractError::tree(format!("file {show}"), er))?;
                let fd = openat(
                    &**dir,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::CLOEXEC
                        | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io)?;
                let mut f = std::fs::File::from(fd);
                let mut off = 0;
                while off < *size {
                    let chunk = vf
                        .read_at(off, READ_CHUNK)
                        .map_err(|er| ExtractError::tree(format!("file {show}"), er))?;
                    if chunk.is_empty() {
                        break;
                    }
                    f.write_all(&chunk)
                        .map_err(|er| ExtractError::io(format!("writing {show}"), er))?;
                    off += chunk.len() as u64;
                }
                self.set_meta(Target::Fd(&f), e.meta(), &show);
                return Ok(None);
            }
            Payload::Symlink { target, .. } => {
                symlinkat(cname(target).map_err(io)?.as_c_str(), &**dir, &name).map_err(io)?;
            }
            Payload::CharDevice { major, minor, .. }
            | Payload::BlockDevice { major, minor, .. } => {
                let kind = if matches!(e.payload(), Payload::CharDevice { .. }) {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                let dev = rustix::fs::makedev(*major, *minor);
                if let Err(er) = mknodat(&**dir, &name, kind, Mode::from_raw_mode(0o600), dev) {
                    self.lost(format!(
                        "{show}: device {major}:{minor} not created ({})",
                        std::io::Error::from(er)
                    ));
                    return Ok(None);
                }
            }
            Payload::Fifo { .. } => {
                rustix::fs::mkfifoat(&**dir, &name, Mode::from_raw_mode(0o600)).map_err(io)?;
            }
        }
        self.set_meta(Target::At(dir, &name), e.meta(), &show);
        Ok(None)
    }

    /// Owner, mode, xattrs and mtime of one written entry; what fails is listed, not fatal.
    fn set_meta(&self, t: Target<'_>, m: &Metadata, show: &str) {
        use rustix::fs::{Gid, Mode, Timespec, Timestamps, Uid};
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: m.mtime.secs,
                tv_nsec: i64::from(m.mtime.nanos),
            },
            last_modification: Timespec {
                tv_sec: m.mtime.secs,
                tv_nsec: i64::from(m.mtime.nanos),
            },
        };
        let (uid, gid) = (Uid::from_raw(m.uid), Gid::from_raw(m.gid));
        let owner = match &t {
            Target::Fd(fd) => rustix::fs::fchown(fd, Some(uid), Some(gid)),
            Target::At(dir, name) => rustix::fs::chownat(
                &***dir,
                *name,
                Some(uid),
                Some(gid),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ),
        };
        if let Err(e) = owner {
            self.lost(format!(
                "{show}: owner {}:{} ({})",
                m.uid,
                m.gid,
                std::io::Error::from(e)
            ));
        }
        let is_link = match &t {
            Target::Fd(_) => false,
            Target::At(dir, name) => {
                rustix::fs::statat(&***dir, *name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                    |st| {
                        rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Symlink
                    },
                )
            }
        };
        if !is_link {
            let r = match &t {
                Target::Fd(fd) => rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode)),
                // A device node or FIFO this process made in its private directory.
                Target::At(dir, name) => rustix::fs::chmodat(
                    &***dir,
                    *name,
                    Mode::from_raw_mode(m.mode),
                    rustix::fs::AtFlags::empty(),
                ),
            };
            if let Err(e) = r {
                self.lost(format!(
                    "{show}: mode {:o} ({})",
                    m.mode,
                    std::io::Error::from(e)
                ));
            }
        }
        // After the owner: changing it clears security.capability.
        for (name, value) in &m.xattrs {
            let r = cname(name).and_then(|n| match &t {
                Target::Fd(fd) => {
                    rustix::fs::fsetxattr(fd, n.as_c_str(), value, rustix::fs::XattrFlags::empty())
                }
                // Entries that cannot be opened (links, devices): by the descriptor's /proc
                // path, which names exactly this directory; the last component is not followed.
                Target::At(dir, en) => {
                    let p = format!("/proc/self/fd/{}/", dir.as_raw_fd());
                    let mut full = p.into_bytes();
                    full.extend_from_slice(en.to_bytes());
                    rustix::fs::lsetxattr(
                        std::ffi::OsStr::from_bytes(&full),
                        n.as_c_str(),
                        value,
                        rustix::fs::XattrFlags::empty(),
                    )
                }
            });
            if let Err(e) = r {
                self.lost(format!(
                    "{show}: xattr {} ({})",
                    String::from_utf8_lossy(name),
                    std::io::Error::from(e)
                ));
            }
        }
        let r = match &t {
            Target::Fd(fd) => rustix::fs::futimens(fd, &times),
            Target::At(dir, name) => rustix::fs::utimensat(
                &***dir,
                *name,
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ),
        };
        if let Err(e) = r {
            self.lost(format!("{show}: mtime ({})", std::io::Error::from(e)));
        }
    }
}

/// What `set_meta` changes: an open descriptor, or a name in a directory (never followed).
enum Target<'a> {
    Fd(&'a dyn AsFd),
    At(&'a Rc<OwnedFd>, &'a CStr),
}
