//! Writing an output (`ct unpack -o OUT`) where other local users may be. The output is staged
//! in a new directory (mode 0700) or file (0600) beside OUT, created exclusively with an
//! unpredictable name, and everything in it is written through directory descriptors (`*at`
//! calls with `O_NOFOLLOW`/`O_EXCL`, `AT_SYMLINK_NOFOLLOW`): no link — planted before, or raced
//! in while ct writes — is ever followed, and nothing is created or changed outside the
//! staging entry. The finished output replaces OUT with one rename (or, with `--force`, one
//! atomic exchange); a failure removes the staging entry, through descriptors too.

use rustix::fs::{
    fstat, mkdirat, openat, renameat, renameat_with, statat, AtFlags, FileType, Mode, OFlags,
    RenameFlags,
};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why an output could not be staged or published.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// OUT names no file (`/`, or a name not in UTF-8).
    #[error("{} names no file (or not in UTF-8)", .0.display())]
    NoName(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The staging entry opened is not the one this process made: someone else can write to
    /// the directory.
    #[error("{} was replaced while ct was creating it", .0.display())]
    Replaced(PathBuf),
}

type Result<T, E = OutputError> = std::result::Result<T, E>;

fn io(what: impl std::fmt::Display, e: Errno) -> OutputError {
    io_err(what, std::io::Error::from(e))
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> OutputError {
    OutputError::Io {
        what: what.to_string(),
        source: e,
    }
}

/// Open directory `name` in `dir` without following a link; it must be ours.
pub fn open_dir_at(dir: &impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    let fd = openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    Ok(fd)
}

/// Create directory `name` in `dir` (mode 0700 until its metadata is set) and open it.
pub fn mkdir_at(dir: &impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
    open_dir_at(dir, name)
}

/// Create file `name` in `dir`: `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600 until its metadata is set.
pub fn create_at(dir: &impl AsFd, name: &str) -> Result<File, Errno> {
    let fd = openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(File::from(fd))
}

/// A staging directory or file beside OUT; removed on drop unless published.
pub struct Staged {
    parent: OwnedFd,
    parent_path: PathBuf,
    name: String,
    published: bool,
}

impl Staged {
    fn open_parent(out: &Path) -> Result<(OwnedFd, PathBuf, String)> {
        let parent = out.parent().unwrap_or(Path::new("/")).to_path_buf();
        let base = out
            .file_name()
            .and_then(|b| b.to_str())
            .ok_or_else(|| OutputError::NoName(out.to_path_buf()))?
            .to_string();
        // The parent is the user's own path: opened as given.
        let fd = rustix::fs::open(
            &parent,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(format!("opening {}", parent.display()), e))?;
        Ok((fd, parent, base))
    }

    /// A new private directory beside `out`, and its descriptor.
    pub fn dir(out: &Path) -> Result<(Self, OwnedFd)> {
        let (parent, parent_path, base) = Self::open_parent(out)?;
        // tempfile makes the directory with an unpredictable name, exclusively, mode 0700.
        let t = tempfile::Builder::new()
            .prefix(&format!(".{base}.ct-unpack-"))
            .tempdir_in(&parent_path)
            .map_err(|e| {
                io_err(
                    format!("creating a staging directory in {}", parent_path.display()),
                    e,
                )
            })?;
        let name = t
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tempfile names are UTF-8")
            .to_string();
        let _ = t.keep();
        let me = Self {
            parent,
            parent_path,
            name,
            published: false,
        };
        let fd = open_dir_at(&me.parent, &me.name)
            .map_err(|e| io(format!("opening {}", me.path().display()), e))?;
        me.check_ours(&fd, FileType::Directory)?;
        Ok((me, fd))
    }

    /// A new private file beside `out`, open for writing.
    pub fn file(out: &Path) -> Result<(Self, File)> {
        let (parent, parent_path, base) = Self::open_parent(out)?;
        let t = tempfile::Builder::new()
            .prefix(&format!(".{base}.ct-unpack-"))
            .tempfile_in(&parent_path)
            .map_err(|e| {
                io_err(
                    format!("creating a staging file in {}", parent_path.display()),
                    e,
                )
            })?;
        let (f, path) = t
            .keep()
            .map_err(|e| io_err("keeping the staging file", e.error))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tempfile names are UTF-8")
            .to_string();
        let me = Self {
            parent,
            parent_path,
            name,
            published: false,
        };
        me.check_ours(&f, FileType::RegularFile)?;
        Ok((me, f))
    }

    /// What was opened is what this process made: a new entry of the expected type, ours.
    fn check_ours(&self, fd: &impl AsFd, want: FileType) -> Result<()> {
        let st = fstat(fd).map_err(|e| io(format!("checking {}", self.path().display()), e))?;
        if FileType::from_raw_mode(st.st_mode) != want
            || st.st_uid != nix::unistd::geteuid().as_raw()
        {
            return Err(OutputError::Replaced(self.path()));
        }
        Ok(())
    }

    /// The staging entry's path (for messages).
    pub fn path(&self) -> PathBuf {
        self.parent_path.join(&self.name)
    }

    /// Move the staged output to `out`'s name: over an empty directory, or with `force` in one
    /// atomic exchange with whatever is there (the old output is then removed, through
    /// descriptors). Without `force`, an existing non-empty OUT was refused before staging.
    pub fn publish(mut self, out: &Path, force: bool) -> Result<()> {
        let base = out
            .file_name()
            .and_then(|b| b.to_str())
            .expect("checked when staging")
            .to_string();
        let exists = statat(&self.parent, base.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok();
        if exists && force {
            match renameat_with(
                &self.parent,
                self.name.as_str(),
                &self.parent,
                base.as_str(),
                RenameFlags::EXCHANGE,
            ) {
                // The old output now has the staging name: Drop removes it.
                Ok(()) => return Ok(()),
                Err(e) if e == Errno::INVAL || e == Errno::NOSYS => {
                    remove_at(&self.parent, &base)
                        .map_err(|e| io(format!("removing the old {}", out.display()), e))?;
                }
                Err(e) => return Err(io(format!("replacing {}", out.display()), e)),
            }
        } else if exists {
            // An empty directory (checked before staging) is replaced.
            rustix::fs::unlinkat(&self.parent, base.as_str(), AtFlags::REMOVEDIR)
                .map_err(|e| io(format!("replacing {}", out.display()), e))?;
        }
        renameat(
            &self.parent,
            self.name.as_str(),
            &self.parent,
            base.as_str(),
        )
        .map_err(|e| io(format!("renaming into {}", out.display()), e))?;
        self.published = true;
        Ok(())
    }
}

/// Remove `name` in `dir`: a file or link is unlinked, a directory removed with everything in
/// it, through descriptors (links inside are removed, never followed).
pub fn remove_at(dir: &impl AsFd, name: &str) -> Result<(), Errno> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::INVAL)?;
    remove_c_at(dir, &c, 0)
}

/// Directory nesting [`remove_at`] descends at most (an image's tree is far shallower).
const MAX_REMOVE_DEPTH: u32 = 4096;

fn remove_c_at(dir: &impl AsFd, name: &std::ffi::CStr, depth: u32) -> Result<(), Errno> {
    let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    if depth > MAX_REMOVE_DEPTH {
        return Err(Errno::LOOP);
    }
    let sub = openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    // The tree may have lost its write permission (an image's 0555 directory): give it back.
    let _ = rustix::fs::fchmod(&sub, Mode::from_raw_mode(0o700));
    let mut names = Vec::new();
    let mut d = rustix::fs::Dir::read_from(&sub)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(ent.file_name().to_owned());
        }
    }
    for n in names {
        remove_c_at(&sub, &n, depth + 1)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            let _ = remove_at(&self.parent, &self.name);
        }
    }
}
