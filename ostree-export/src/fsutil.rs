//! File-system steps beneath a repository's directory descriptor that never follow a link
//! planted in the repository: every component is opened with `O_NOFOLLOW`, files are created
//! with `O_EXCL` in `tmp/` and renamed into place, and readers refuse anything but a regular
//! file (a FIFO cannot block them: opens are non-blocking).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::{sys, Error, Result};

/// Mode of the directories this crate creates.
pub(crate) const DIR_MODE: u32 = 0o755;
/// Mode of metadata objects, refs and config (as OSTree's own).
pub(crate) const FILE_MODE: u32 = 0o644;

/// A single path component we are willing to open: no `/`, not `.` or `..`, not empty.
fn check_component(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::Protocol(format!("bad path component {name:?}")));
    }
    Ok(())
}

/// Opens directory `name` beneath `parent` without following a link, creating it first when
/// `create`.
pub(crate) fn open_dir(parent: BorrowedFd<'_>, name: &str, create: bool) -> Result<OwnedFd> {
    check_component(name)?;
    if create {
        match rfs::mkdirat(parent, name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(Error::io(format!("creating directory {name}"), e.into())),
        }
    }
    rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(format!(
        "opening directory {name} (links are not followed)"
    )))
}

/// Opens `path` (components separated by `/`) beneath `root`, each component without
/// following links; `Ok(None)` when a component does not exist and `create` is false.
pub(crate) fn open_dir_path(
    root: BorrowedFd<'_>,
    path: &str,
    create: bool,
) -> Result<Option<OwnedFd>> {
    let mut current: Option<OwnedFd> = None;
    for part in path.split('/') {
        let parent = current.as_ref().map(|f| f.as_fd()).unwrap_or(root);
        match open_dir(parent, part, create) {
            Ok(fd) => current = Some(fd),
            Err(Error::Io { source, .. })
                if !create && source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(current)
}

/// Opens regular file `name` in `dir` for reading; `Ok(None)` if absent. A link, FIFO, device
/// or directory there is refused.
pub(crate) fn open_regular(dir: BorrowedFd<'_>, name: &str) -> Result<Option<File>> {
    check_component(name)?;
    let fd = match rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(Error::io(
                format!("{name} is a symbolic link; refusing to follow it"),
                Errno::LOOP.into(),
            ))
        }
        Err(e) => return Err(Error::io(format!("opening {name}"), e.into())),
    };
    let st = rfs::fstat(&fd).map_err(sys(format!("stat of {name}")))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::io(
            format!("{name} is not a regular file"),
            std::io::Error::from(std::io::ErrorKind::InvalidData),
        ));
    }
    // Back to blocking reads (irrelevant for regular files, but be plain about it).
    let flags = rfs::fcntl_getfl(&fd).map_err(sys("fcntl"))?;
    rfs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK).map_err(sys("fcntl"))?;
    Ok(Some(File::from(fd)))
}

/// Reads at most `limit` bytes of an open file; `Err(size)` with the size seen when larger.
pub(crate) fn read_bounded(file: &mut File, limit: u64) -> std::io::Result<Result<Vec<u8>, u64>> {
    let size = file.metadata()?.len();
    if size > limit {
        return Ok(Err(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Ok(Err(buf.len() as u64));
    }
    Ok(Ok(buf))
}

pub(crate) fn exists(dir: BorrowedFd<'_>, name: &str) -> Result<bool> {
    check_component(name)?;
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(Error::io(format!("stat of {name}"), e.into())),
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new file in `tmp/`, unlinked again on drop unless `persist`ed into place.
pub(crate) struct TmpFile<'a> {
    dir: BorrowedFd<'a>,
    name: Option<String>,
    pub(crate) file: File,
}

impl<'a> TmpFile<'a> {
    pub(crate) fn create(dir: BorrowedFd<'a>) -> Result<TmpFile<'a>> {
        // Names need only be unique among live writers: O_EXCL settles any collision.
        for _ in 0..1000 {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("ct-tmp-{}-{n}", std::process::id());
            match rfs::openat(
                dir,
                name.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(FILE_MODE),
            ) {
                Ok(fd) => {
                    return Ok(TmpFile {
                        dir,
                        name: Some(name),
                        file: File::from(fd),
                    })
                }
                Err(Errno::EXIST) => continue,
                Err(e) => {
                    return Err(Error::io(
                        "creating a file in the repository's tmp/",
                        e.into(),
                    ))
                }
            }
        }
        Err(Error::io(
            "creating a file in the repository's tmp/",
            std::io::Error::other("no free temporary name"),
        ))
    }

    /// Moves the file to `dest/name` unless something is there already; returns whether it
    /// was moved (`false`: the existing entry is kept and this file removed).
    pub(crate) fn persist_noreplace(mut self, dest: BorrowedFd<'_>, name: &str) -> Result<bool> {
        check_component(name)?;
        let Some(tmp) = self.name.take() else {
            return Err(Error::Protocol("temporary file persisted twice".into()));
        };
        let result =
            match rfs::renameat_with(self.dir, tmp.as_str(), dest, name, RenameFlags::NOREPLACE) {
                Ok(()) => return Ok(true),
                Err(Errno::EXIST) => Ok(false),
                // File systems without RENAME_NOREPLACE: a hard link fails the same way on EEXIST.
                Err(Errno::INVAL) | Err(Errno::NOSYS) => {
                    match rfs::linkat(self.dir, tmp.as_str(), dest, name, AtFlags::empty()) {
                        Ok(()) => Ok(true),
                        Err(Errno::EXIST) => Ok(false),
                        Err(e) => Err(Error::io(format!("linking {name} into place"), e.into())),
                    }
                }
                Err(e) => Err(Error::io(format!("moving {name} into place"), e.into())),
            };
        // Not renamed: the temporary name goes (linked or not).
        let _ = rfs::unlinkat(self.dir, tmp.as_str(), AtFlags::empty());
        result
    }

    /// Moves the file to `dest/name`, replacing what is there (a link there is replaced,
    /// never followed).
    pub(crate) fn persist_replace(mut self, dest: BorrowedFd<'_>, name: &str) -> Result<()> {
        check_component(name)?;
        let Some(tmp) = self.name.take() else {
            return Err(Error::Protocol("temporary file persisted twice".into()));
        };
        let r = rfs::renameat(self.dir, tmp.as_str(), dest, name);
        if let Err(e) = r {
            let _ = rfs::unlinkat(self.dir, tmp.as_str(), AtFlags::empty());
            return Err(Error::io(format!("moving {name} into place"), e.into()));
        }
        Ok(())
    }
}

impl Drop for TmpFile<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = rfs::unlinkat(self.dir, name.as_str(), AtFlags::empty());
        }
    }
}
