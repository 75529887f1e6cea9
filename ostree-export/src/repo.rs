//! An OSTree repository on disk: creating or opening one (`config`, `objects/`, `refs/`,
//! `tmp/`…), reading and writing loose objects by checksum (never rewriting one that exists),
//! and refs. Every path is opened beneath the repository's directory descriptor without
//! following links (`fsutil`), so nothing planted in the repository makes a write land
//! outside it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode as FsMode, OFlags, XattrFlags};

use crate::checksum::{loose_name, Checksum, ObjectType};
use crate::error::{sys, Error, Result};
use crate::fsutil::{self, TmpFile};

/// The two repository modes this crate writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `archive-z2` (alias `archive`): content objects are `.filez`, a header then raw deflate;
    /// owned by whoever writes, so any user can serve or pull from it.
    Archive,
    /// `bare-user`: content objects are plain files with their OSTree metadata in the
    /// `user.ostreemeta` xattr (needs a file system with user xattrs); checkouts can hardlink.
    BareUser,
}

impl Mode {
    /// The `mode=` value written to `config` (OSTree still writes `archive-z2` for archive).
    pub fn config_name(self) -> &'static str {
        match self {
            Mode::Archive => "archive-z2",
            Mode::BareUser => "bare-user",
        }
    }
}

/// Largest `config` file read.
const MAX_CONFIG_BYTES: u64 = 64 << 10;
/// Largest ref file read (64 hex digits and a newline, with room for whitespace).
const MAX_REF_BYTES: u64 = 1024;
/// Largest dirtree, dirmeta or commit object read: OSTree's own limit for metadata it pulls
/// (`OSTREE_MAX_METADATA_SIZE`).
pub const MAX_METADATA_BYTES: u64 = 128 << 20;
/// Largest detached metadata (`.commitmeta`) read: signatures, a few hundred bytes each.
pub const MAX_DETACHED_METADATA_BYTES: u64 = 16 << 20;

/// The directories of a repository, created in this order (OSTree's list).
const REPO_DIRS: [&str; 8] = [
    "tmp",
    "extensions",
    "state",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
    "objects",
];

/// An open OSTree repository.
#[derive(Debug)]
pub struct Repo {
    path: PathBuf,
    dir: OwnedFd,
    objects: OwnedFd,
    mode: Mode,
}

impl Repo {
    /// Opens the repository at `path`, creating it in `mode` when `path` does not exist or is
    /// an empty directory. An existing repository must be of `mode` (`ModeMismatch`); a
    /// non-empty directory without a `config` is refused (`NotARepository`).
    pub fn create_or_open(path: &Path, mode: Mode) -> Result<Repo> {
        Self::open_or_create(path, mode, true)
    }

    /// Like [`Repo::create_or_open`], but an existing repository of either mode is taken as it
    /// is; `mode` is only the mode of a repository created here.
    pub fn create_or_open_any(path: &Path, mode: Mode) -> Result<Repo> {
        Self::open_or_create(path, mode, false)
    }

    fn open_or_create(path: &Path, mode: Mode, same_mode: bool) -> Result<Repo> {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
        }
        let dir = open_root(path)?;
        if fsutil::exists(dir.as_fd(), "config")? {
            let repo = Self::from_dir(path, dir)?;
            if same_mode && repo.mode != mode {
                return Err(Error::ModeMismatch {
                    path: path.to_owned(),
                    found: repo.mode.config_name(),
                    wanted: mode.config_name(),
                });
            }
            return Ok(repo);
        }
        // Empty, or only the directories of a creation that stopped before its config: listed
        // through the descriptor just opened, not by path again.
        let listing =
            |e: rustix::io::Errno| Error::io(format!("listing {}", path.display()), e.into());
        let entries = rfs::Dir::read_from(&dir).map_err(listing)?;
        for entry in entries {
            let entry = entry.map_err(listing)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if !REPO_DIRS.iter().any(|d| d.as_bytes() == name) {
                return Err(Error::NotARepository(path.to_owned()));
            }
        }
        for d in REPO_DIRS {
            fsutil::open_dir_path(dir.as_fd(), d, true)?;
        }
        let tmp = fsutil::open_dir(dir.as_fd(), "tmp", false)?;
        if mode == Mode::BareUser {
            probe_user_xattrs(tmp.as_fd(), path)?;
        }
        // The config goes last: a repository with a config is complete.
        let config = format!("[core]\nrepo_version=1\nmode={}\n", mode.config_name());
        let mut f = TmpFile::create(tmp.as_fd())?;
        f.file
            .write_all(config.as_bytes())
            .and_then(|()| f.file.sync_all())
            .map_err(|e| Error::io("writing config", e))?;
        f.persist_replace(dir.as_fd(), "config")?;
        Self::from_dir(path, dir)
    }

    /// Opens an existing repository of either mode, for reading or writing.
    pub fn open(path: &Path) -> Result<Repo> {
        let dir = open_root(path)?;
        Self::from_dir(path, dir)
    }

    fn from_dir(path: &Path, dir: OwnedFd) -> Result<Repo> {
        let bad = |reason: &str| Error::BadConfig {
            path: path.join("config"),
            reason: reason.to_owned(),
        };
        let Some(mut f) = fsutil::open_regular(dir.as_fd(), "config")? else {
            return Err(Error::NotARepository(path.to_owned()));
        };
        let text = fsutil::read_bounded(&mut f, MAX_CONFIG_BYTES)
            .map_err(|e| Error::io("reading config", e))?
            .map_err(|_| bad("larger than 64 KiB"))?;
        let text = String::from_utf8(text).map_err(|_| bad("not UTF-8"))?;
        let (version, mode) = parse_core_config(&text);
        if version.as_deref() != Some("1") {
            return Err(bad("[core] repo_version is not 1"));
        }
        // OSTree's default when no mode is given is "bare", which this crate does not handle.
        let mode = match mode.as_deref().unwrap_or("bare") {
            "archive-z2" | "archive" => Mode::Archive,
            "bare-user" => Mode::BareUser,
            other => {
                return Err(Error::UnsupportedMode {
                    path: path.to_owned(),
                    found: other.chars().take(64).collect(),
                })
            }
        };
        let objects = fsutil::open_dir(dir.as_fd(), "objects", false)?;
        Ok(Repo {
            path: path.to_owned(),
            dir,
            objects,
            mode,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn tmp_dir(&self) -> Result<OwnedFd> {
        fsutil::open_dir(self.dir.as_fd(), "tmp", true)
    }

    fn archive(&self) -> bool {
        self.mode == Mode::Archive
    }

    /// Whether the object is present (anything at its loose path counts).
    pub fn has_object(&self, kind: ObjectType, checksum: &Checksum) -> Result<bool> {
        let (sub, name) = loose_name(checksum, kind, self.archive());
        match fsutil::open_dir_path(self.objects.as_fd(), &sub, false)? {
            Some(d) => fsutil::exists(d.as_fd(), &name),
            None => Ok(false),
        }
    }

    /// Opens an object's file (a regular file, never through a link).
    pub(crate) fn open_object(
        &self,
        kind: ObjectType,
        checksum: &Checksum,
    ) -> Result<Option<File>> {
        let (sub, name) = loose_name(checksum, kind, self.archive());
        match fsutil::open_dir_path(self.objects.as_fd(), &sub, false)? {
            Some(d) => fsutil::open_regular(d.as_fd(), &name),
            None => Ok(None),
        }
    }

    /// Reads a metadata object (dirtree, dirmeta, commit) whole and checks its checksum.
    pub(crate) fn read_metadata_bytes(
        &self,
        kind: ObjectType,
        checksum: &Checksum,
    ) -> Result<Vec<u8>> {
        let Some(mut f) = self.open_object(kind, checksum)? else {
            return Err(Error::MissingObject {
                kind,
                checksum: *checksum,
            });
        };
        let bytes = fsutil::read_bounded(&mut f, MAX_METADATA_BYTES)
            .map_err(|e| Error::io(format!("reading {kind} object {checksum}"), e))?
            .map_err(|size| Error::TooLarge {
                kind,
                checksum: *checksum,
                size,
                limit: MAX_METADATA_BYTES,
            })?;
        let actual = Checksum::of(&bytes);
        if actual != *checksum {
            return Err(Error::ChecksumMismatch {
                kind,
                expected: *checksum,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Writes a metadata object unless present; returns its checksum and whether it is new.
    pub(crate) fn write_metadata(
        &self,
        kind: ObjectType,
        bytes: &[u8],
    ) -> Result<(Checksum, bool)> {
        let checksum = Checksum::of(bytes);
        if self.has_object(kind, &checksum)? {
            return Ok((checksum, false));
        }
        let tmp_dir = self.tmp_dir()?;
        let mut f = TmpFile::create(tmp_dir.as_fd())?;
        f.file
            .write_all(bytes)
            .map_err(|e| Error::io(format!("writing {kind} object {checksum}"), e))?;
        let new = self.persist_object(f, kind, &checksum)?;
        Ok((checksum, new))
    }

    /// Moves a finished temporary file to the object's loose path unless one is there.
    pub(crate) fn persist_object(
        &self,
        f: TmpFile<'_>,
        kind: ObjectType,
        checksum: &Checksum,
    ) -> Result<bool> {
        let (sub, name) = loose_name(checksum, kind, self.archive());
        let dest = fsutil::open_dir(self.objects.as_fd(), &sub, true)?;
        f.persist_noreplace(dest.as_fd(), &name)
    }

    /// Writes (replacing) a commit's detached metadata.
    pub(crate) fn write_detached(&self, commit: &Checksum, bytes: &[u8]) -> Result<()> {
        let tmp_dir = self.tmp_dir()?;
        let mut f = TmpFile::create(tmp_dir.as_fd())?;
        f.file
            .write_all(bytes)
            .and_then(|()| f.file.sync_all())
            .map_err(|e| Error::io(format!("writing detached metadata of {commit}"), e))?;
        let (sub, name) = loose_name(commit, ObjectType::CommitMeta, self.archive());
        let dest = fsutil::open_dir(self.objects.as_fd(), &sub, true)?;
        f.persist_replace(dest.as_fd(), &name)
    }

    /// Points `refs/heads/NAME` at `commit`, atomically. Everything written before is flushed
    /// to disk first, so the ref never names objects a crash could lose; call it last.
    pub fn set_ref(&self, name: &str, commit: &Checksum) -> Result<()> {
        validate_ref(name)?;
        rfs::syncfs(&self.dir).map_err(sys("flushing the repository to disk"))?;
        let (parent, leaf) = match name.rsplit_once('/') {
            Some((p, l)) => (format!("refs/heads/{p}"), l),
            None => ("refs/heads".to_owned(), name),
        };
        let dest = fsutil::open_dir_path(self.dir.as_fd(), &parent, true)?
            .ok_or_else(|| Error::Protocol("refs directory vanished".into()))?;
        let tmp_dir = self.tmp_dir()?;
        let mut f = TmpFile::create(tmp_dir.as_fd())?;
        f.file
            .write_all(format!("{commit}\n").as_bytes())
            .and_then(|()| f.file.sync_all())
            .map_err(|e| Error::io(format!("writing ref {name}"), e))?;
        f.persist_replace(dest.as_fd(), leaf)?;
        rfs::fsync(&dest).map_err(sys(format!("flushing ref {name}")))?;
        Ok(())
    }

    /// The commit a ref names: `refs/heads/NAME`, else `refs/remotes/NAME` (`REMOTE/REF`);
    /// a 64-digit checksum names itself.
    pub fn resolve_ref(&self, name: &str) -> Result<Checksum> {
        if let Ok(c) = name.parse::<Checksum>() {
            return Ok(c);
        }
        validate_ref(name)?;
        for base in ["refs/heads", "refs/remotes"] {
            let (parent, leaf) = match name.rsplit_once('/') {
                Some((p, l)) => (format!("{base}/{p}"), l),
                None => (base.to_owned(), name),
            };
            let Some(dir) = fsutil::open_dir_path(self.dir.as_fd(), &parent, false)? else {
                continue;
            };
            let Some(mut f) = fsutil::open_regular(dir.as_fd(), leaf)? else {
                continue;
            };
            let bad = || Error::BadRef {
                name: name.to_owned(),
            };
            let bytes = fsutil::read_bounded(&mut f, MAX_REF_BYTES)
                .map_err(|e| Error::io(format!("reading ref {name}"), e))?
                .map_err(|_| bad())?;
            let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
            return text.trim_end().parse().map_err(|_| bad());
        }
        Err(Error::RefNotFound(name.to_owned()))
    }
}

/// The repository directory itself, never through a link at `path` (one planted there would
/// decide where root writes); the user names the directory a link points to instead.
fn open_root(path: &Path) -> Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FsMode::empty(),
    )
    .map_err(sys(format!(
        "opening repository {} (a symbolic link there is not followed: give the directory it points to)",
        path.display()
    )))
}

/// bare-user needs user xattrs; find out now rather than at the first object.
fn probe_user_xattrs(tmp: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let f = TmpFile::create(tmp)?;
    rfs::fsetxattr(&f.file, "user.ostreemeta", b"", XattrFlags::empty()).map_err(|e| {
        Error::NoUserXattrs {
            path: path.to_owned(),
            source: e.into(),
        }
    })
}

/// `repo_version` and `mode` of the `[core]` group of a GKeyFile-style config.
fn parse_core_config(text: &str) -> (Option<String>, Option<String>) {
    let mut in_core = false;
    let (mut version, mut mode) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            in_core = line == "[core]";
            continue;
        }
        if !in_core {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "repo_version" => version = Some(v.trim().to_owned()),
                "mode" => mode = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    (version, mode)
}

/// Longest ref name accepted.
const MAX_REF_NAME: usize = 1024;

/// A ref name OSTree accepts: `/`-separated parts, each `[A-Za-z0-9_][-._A-Za-z0-9_]*` (the
/// ASCII subset of OSTree's own pattern).
pub fn validate_ref(name: &str) -> Result<()> {
    let part_ok = |p: &str| {
        let mut bytes = p.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    if name.len() > MAX_REF_NAME || !name.split('/').all(part_ok) {
        return Err(Error::InvalidRef(name.chars().take(200).collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for ok in ["main", "ct/x86_64/app-1.2", "a", "_x", "1.0"] {
            validate_ref(ok).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "-a", ".a", "a/../b", "a b", "é", "a/.b",
        ] {
            assert!(validate_ref(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_parsing() {
        let (v, m) = parse_core_config(
            "# c\n[core]\nrepo_version = 1\nmode=bare-user\n[remote \"x\"]\nmode=archive\n",
        );
        assert_eq!(v.as_deref(), Some("1"));
        assert_eq!(m.as_deref(), Some("bare-user"));
    }

    #[test]
    fn create_open_and_refuse() {
        let td = tempfile::tempdir().unwrap();
        let p = td.path().join("r");
        let r = Repo::create_or_open(&p, Mode::Archive).unwrap();
        assert_eq!(r.mode(), Mode::Archive);
        let text = std::fs::read_to_string(p.join("config")).unwrap();
        assert_eq!(text, "[core]\nrepo_version=1\nmode=archive-z2\n");
        assert!(matches!(
            Repo::create_or_open(&p, Mode::BareUser),
            Err(Error::ModeMismatch { .. })
        ));
        assert_eq!(Repo::open(&p).unwrap().mode(), Mode::Archive);
        // Taken as it is when no mode is insisted on; created in the given one otherwise.
        let any = Repo::create_or_open_any(&p, Mode::BareUser).unwrap();
        assert_eq!(any.mode(), Mode::Archive);
        let q = td.path().join("q");
        let made = Repo::create_or_open_any(&q, Mode::BareUser).unwrap();
        assert_eq!(made.mode(), Mode::BareUser);
        std::fs::remove_dir_all(&q).unwrap();
        std::fs::write(td.path().join("other"), b"x").unwrap();
        assert!(matches!(
            Repo::create_or_open(td.path(), Mode::Archive),
            Err(Error::NotARepository(_))
        ));
        let c = Checksum([7; 32]);
        r.set_ref("a/b", &c).unwrap();
        assert_eq!(r.resolve_ref("a/b").unwrap(), c);
        assert!(matches!(r.resolve_ref("a/c"), Err(Error::RefNotFound(_))));
        assert!(matches!(r.set_ref("../x", &c), Err(Error::InvalidRef(_))));
    }
}
