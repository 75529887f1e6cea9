//! The store's directories, reached through descriptors so that root follows no link it did
//! not make. The store root is opened once; everything inside it is opened relative to that
//! descriptor with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`, so a
//! symbolic link anywhere in the store (`tmp -> /victim`, `objects/ab -> /etc`) makes the
//! operation fail instead of leaving the store. Files are checked with `fstat` after opening
//! (`O_NONBLOCK`, so a FIFO cannot hang the open): only regular files of the expected size are
//! read. Files ct creates are opened `O_CREAT | O_EXCL | O_NOFOLLOW`; removal `lstat`s first
//! and never follows or removes what it does not expect.
//!
//! The store's own directories must be real directories owned by the store root's owner;
//! anything else refuses to open the store (StoreError::Unsafe). RocksDB opens the files inside
//! `db/` by name: `db/` itself is checked the same way, and the store root is created 0700 so
//! only its owner can plant anything there.

use crate::error::{Result, StoreError};
use rustix::fs::{
    fstat, mkdirat, openat2, renameat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags,
    ResolveFlags,
};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How every path inside the store is resolved: beneath the root, never through a link.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// The directories a store has (created by [`StoreDirs::create`], checked by both opens).
pub const LAYOUT: [&str; 8] = [
    "blobs",
    "blobs/sha256",
    "objects",
    "tmp",
    "log",
    "mounts",
    "leases",
    "db",
];

/// The store root, opened, with its owner.
#[derive(Clone)]
pub struct StoreDirs {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    root: OwnedFd,
    owner: u32,
}

impl std::fmt::Debug for StoreDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreDirs({})", self.inner.path.display())
    }
}

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from(e)
}

impl StoreDirs {
    /// Create the store at `root` (mode 0700 when new) and its layout, then open it.
    pub fn create(root: &Path) -> Result<Self> {
        {
            use std::os::unix::fs::DirBuilderExt;
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true).mode(0o700);
            b.create(root)
                .map_err(|e| StoreError::io(format!("creating the store {}", root.display()), e))?;
        }
        let me = Self::open_root(root)?;
        for d in LAYOUT {
            match mkdirat(me.root(), d, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(StoreError::io(
                        format!("creating {}", me.join(d).display()),
                        errno_io(e),
                    ))
                }
            }
        }
        me.check_layout(true)?;
        Ok(me)
    }

    /// Open an existing store without creating anything; what exists of its layout is checked.
    pub fn open(root: &Path) -> Result<Self> {
        let me = Self::open_root(root)?;
        me.check_layout(false)?;
        Ok(me)
    }

    fn open_root(root: &Path) -> Result<Self> {
        // The root itself is the path the user gave (or the default): it is opened as given.
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            StoreError::io(format!("opening the store {}", root.display()), errno_io(e))
        })?;
        let st = fstat(&fd)
            .map_err(|e| StoreError::io(format!("checking {}", root.display()), errno_io(e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: root.to_path_buf(),
                root: fd,
                owner: st.st_uid,
            }),
        })
    }

    fn check_layout(&self, all: bool) -> Result<()> {
        for d in LAYOUT {
            match self.open_dir(d) {
                Ok(_) => {}
                Err(StoreError::Io { source, .. })
                    if !all && source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The store root's path (for messages, and for RocksDB, which opens by path).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    /// `rel` under the store root, for messages.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.inner.path.join(rel)
    }
    pub fn root(&self) -> BorrowedFd<'_> {
        self.inner.root.as_fd()
    }

    /// A directory of the store (`rel` relative to the root), which must be a real directory
    /// owned by the store's owner.
    pub fn open_dir(&self, rel: &str) -> Result<OwnedFd> {
        let fd = openat2(
            self.root(),
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| self.refusal(rel, e, "directory"))?;
        let st = fstat(&fd).map_err(|e| {
            StoreError::io(
                format!("checking {}", self.join(rel).display()),
                errno_io(e),
            )
        })?;
        if st.st_uid != self.inner.owner {
            return Err(StoreError::Unsafe(format!(
                "{} is owned by uid {}, not by the store's owner (uid {}); ct will not use it",
                self.join(rel).display(),
                st.st_uid,
                self.inner.owner
            )));
        }
        Ok(fd)
    }

    fn refusal(&self, rel: &str, e: Errno, what: &str) -> StoreError {
        let p = self.join(rel);
        match e {
            Errno::LOOP | Errno::XDEV => StoreError::Unsafe(format!(
                "{} (or a directory on the way to it) is a symbolic link; ct follows no links inside the store",
                p.display()
            )),
            Errno::NOTDIR if what == "directory" => {
                let link = statat(self.root(), rel, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                StoreError::Unsafe(if link {
                    format!(
                        "{} is a symbolic link; ct follows no links inside the store",
                        p.display()
                    )
                } else {
                    format!("{} is not a directory", p.display())
                })
            }
            e => StoreError::io(format!("opening {}", p.display()), errno_io(e)),
        }
    }

    /// Open a regular file of the store for reading: no link is followed, a FIFO or device is
    /// refused without blocking (`InvalidData`), a missing file is `NotFound`.
    pub fn open_file(&self, rel: &str) -> std::io::Result<File> {
        let fd = openat2(
            self.root(),
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| match e {
            Errno::LOOP | Errno::XDEV => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "it is a symbolic link (or lies behind one); the store follows no links",
            ),
            e => errno_io(e),
        })?;
        let st = fstat(&fd).map_err(errno_io)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "it is not a regular file (a {:?})",
                    FileType::from_raw_mode(st.st_mode)
                )
                .to_lowercase(),
            ));
        }
        // Reads of a regular file never block; clear O_NONBLOCK anyway so nothing surprises.
        let f = File::from(fd);
        Ok(f)
    }

    /// [`Self::open_file`], requiring exactly `size` bytes (the signed size).
    pub fn open_sized(&self, rel: &str, size: u64) -> std::io::Result<File> {
        let f = self.open_file(rel)?;
        let len = f.metadata()?.len();
        if len != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("it is {len} bytes, expected {size}"),
            ));
        }
        Ok(f)
    }

    /// A regular file named `name` in directory `dir`, when it exists (`None` when it does not).
    pub fn open_regular(&self, dir: &str, name: &str) -> Result<Option<File>> {
        match self.open_file(&format!("{dir}/{name}")) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(
                format!("opening {}", self.join(&format!("{dir}/{name}")).display()),
                e,
            )),
        }
    }

    /// Create a new file `name` in directory `dir` (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600).
    pub fn create_new(&self, dir: &str, name: &str) -> Result<File> {
        let d = self.open_dir(dir)?;
        create_new_at(&d, name, 0o600).map_err(|e| {
            StoreError::io(
                format!("creating {}", self.join(&format!("{dir}/{name}")).display()),
                e,
            )
        })
    }

    /// Open `name` in `dir` for appending, creating it (never through a link; must be a
    /// regular file).
    pub fn open_append(&self, dir: &str, name: &str) -> Result<File> {
        let d = self.open_dir(dir)?;
        let p = || self.join(&format!("{dir}/{name}"));
        let fd = openat2(
            &d,
            name,
            OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::CLOEXEC
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY,
            Mode::from_raw_mode(0o600),
            RESOLVE,
        )
        .map_err(|e| self.refusal(&format!("{dir}/{name}"), e, "file"))?;
        let st = fstat(&fd)
            .map_err(|e| StoreError::io(format!("checking {}", p().display()), errno_io(e)))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(StoreError::Unsafe(format!(
                "{} is not a regular file",
                p().display()
            )));
        }
        Ok(File::from(fd))
    }

    /// Remove `name` from `dir` if it is a regular file or a symbolic link (the link itself);
    /// anything else is left alone. True when something was removed.
    pub fn remove_file(&self, dir: &str, name: &str) -> Result<bool> {
        let d = self.open_dir(dir)?;
        remove_file_at(&d, name).map_err(|e| {
            StoreError::io(
                format!("removing {}", self.join(&format!("{dir}/{name}")).display()),
                e,
            )
        })
    }

    /// The names in directory `dir` (UTF-8 names only; `.` and `..` left out).
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        let d = self.open_dir(dir)?;
        list_at(&d).map_err(|e| StoreError::io(format!("reading {}", self.join(dir).display()), e))
    }

    /// Create directory `name` in `dir` if missing (mode 0700) and open it (checked).
    pub fn ensure_dir(&self, dir: &str, name: &str) -> Result<OwnedFd> {
        let d = self.open_dir(dir)?;
        match mkdirat(&d, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(StoreError::io(
                    format!("creating {}", self.join(&format!("{dir}/{name}")).display()),
                    errno_io(e),
                ))
            }
        }
        self.open_dir(&format!("{dir}/{name}"))
    }

    /// Rename `from` in directory `fd_from` to `to` in `fd_to` (replacing a file there).
    pub fn rename(fd_from: &OwnedFd, from: &str, fd_to: &OwnedFd, to: &str) -> std::io::Result<()> {
        renameat(fd_from, from, fd_to, to).map_err(errno_io)
    }

    /// `lstat` of `rel` (never following a link): its type and size, or `None` when missing.
    pub fn lstat(&self, rel: &str) -> Result<Option<(FileType, u64)>> {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, rel),
        };
        let st = match dir {
            Some(d) => {
                let fd = match self.open_dir(d) {
                    Ok(fd) => fd,
                    Err(StoreError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        return Ok(None)
                    }
                    Err(e) => return Err(e),
                };
                statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
            }
            None => statat(self.root(), name, AtFlags::SYMLINK_NOFOLLOW),
        };
        match st {
            Ok(st) => Ok(Some((
                FileType::from_raw_mode(st.st_mode),
                st.st_size as u64,
            ))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(StoreError::io(
                format!("checking {}", self.join(rel).display()),
                errno_io(e),
            )),
        }
    }
}

/// Create `name` in directory `d`: `O_CREAT|O_EXCL|O_NOFOLLOW`, read-write.
pub fn create_new_at(d: &impl AsFd, name: &str, mode: u32) -> std::io::Result<File> {
    let fd = openat2(
        d,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(mode),
        RESOLVE,
    )
    .map_err(errno_io)?;
    Ok(File::from(fd))
}

/// Remove `name` in `d` when it is a regular file or a link (not followed).
pub fn remove_file_at(d: &impl AsFd, name: &str) -> std::io::Result<bool> {
    let st = match statat(d, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(errno_io(e)),
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile | FileType::Symlink => match unlinkat(d, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_io(e)),
        },
        _ => Ok(false),
    }
}

/// Names in the directory `d`.
pub fn list_at(d: &impl AsFd) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut dir = Dir::read_from(d).map_err(errno_io)?;
    while let Some(ent) = dir.read() {
        let ent = ent.map_err(errno_io)?;
        let Ok(name) = ent.file_name().to_str() else {
            continue;
        };
        if name != "." && name != ".." {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Remove directory `name` in `d` and everything in it, through descriptors: links inside are
/// removed, never followed. Depth is bounded (staging directories are flat or two deep).
pub fn remove_tree_at(d: &impl AsFd, name: &str) -> std::io::Result<()> {
    fn go(d: BorrowedFd<'_>, name: &str, depth: u32) -> std::io::Result<()> {
        if depth > 8 {
            return Err(std::io::Error::other(
                "directory nesting too deep to remove",
            ));
        }
        let sub = openat2(
            d,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(errno_io)?;
        for child in list_at(&sub)? {
            let st = statat(&sub, child.as_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(errno_io)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                go(sub.as_fd(), &child, depth + 1)?;
            } else {
                unlinkat(&sub, child.as_str(), AtFlags::empty()).map_err(errno_io)?;
            }
        }
        unlinkat(d, name, AtFlags::REMOVEDIR).map_err(errno_io)
    }
    go(d.as_fd(), name, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_the_store_are_refused_and_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("keep"), b"precious").unwrap();
        let root = t.path().join("store");
        std::fs::create_dir(&root).unwrap();
        symlink(&victim, root.join("tmp")).unwrap();
        let e = StoreDirs::create(&root).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(victim.join("keep").exists());

        std::fs::remove_file(root.join("tmp")).unwrap();
        let s = StoreDirs::create(&root).unwrap();
        // A file that is a link, a FIFO, and a link in the middle of a path.
        symlink("/etc/passwd", root.join("blobs/sha256/aa")).unwrap();
        nix::unistd::mkfifo(&root.join("blobs/sha256/bb"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::remove_dir(root.join("log")).unwrap();
        symlink(&victim, root.join("log")).unwrap();
        for rel in ["blobs/sha256/aa", "blobs/sha256/bb", "log/keep"] {
            let e = s.open_file(rel).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{rel}: {e}");
        }
        assert!(s.open_append("log", "x.log").is_err());
        assert!(s.remove_file("log", "keep").is_err());
        assert!(victim.join("keep").exists());
        // The link itself is removed, its target is not.
        assert!(s.remove_file("blobs/sha256", "aa").unwrap());
        assert!(std::path::Path::new("/etc/passwd").exists());
    }

    #[test]
    fn a_tree_is_removed_without_following_its_links() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("keep"), b"x").unwrap();
        let s = StoreDirs::create(&t.path().join("store")).unwrap();
        let stage = t.path().join("store/tmp/import-1");
        std::fs::create_dir_all(stage.join("o/ab")).unwrap();
        std::fs::write(stage.join("o/ab/f"), b"x").unwrap();
        symlink(&victim, stage.join("o/link")).unwrap();
        let tmp = s.open_dir("tmp").unwrap();
        remove_tree_at(&tmp, "import-1").unwrap();
        assert!(!stage.exists());
        assert!(victim.join("keep").exists());
    }
}
