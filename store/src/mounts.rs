//! Registrations of live mounts, so that `ct mounts` can list them and `ct umount` can find their
//! daemons. (What keeps a mount's content from `gc` is the daemon's lease, see lease.rs.)
//!
//! ```text
//! STORE/mounts/<id>.json   one per mount; <id> = first 16 hex of SHA-256(mountpoint)
//!                          {"format":"cerro-torre/mount/v2", "mountpoint", "pid", "kind",
//!                           "bundles": [{"digest", "names", "version"}…], "log",
//!                           "started_at", "allow_other"}
//! ```
//! The daemon holds an exclusive `flock` on its file for as long as it serves the mount; the
//! kernel drops it when the process dies, so a file whose lock is free belongs to a dead
//! daemon (its mount, if still there, is broken: "Transport endpoint is not connected"). It
//! also holds a POSIX record lock (`F_SETLK`) on it, whose holder `F_GETLK` names: that is how
//! `ct umount` proves a pid is the mount's daemon before it signals it — the pid written in the
//! file is never believed on its own. Files are created and read through descriptors
//! (dirs.rs): no link is followed.

use crate::dirs::StoreDirs;
use crate::error::{Result, StoreError};
use cerro_core::Sha256Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const MOUNTS_DIR: &str = "mounts";
pub const MOUNT_FORMAT_V2: &str = "cerro-torre/mount/v2";
/// Largest registration read back (untrusted at rest: bounds memory).
const MAX_REGISTRATION_BYTES: u64 = 16 << 20;

/// One bundle a mount serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountedBundle {
    pub digest: Sha256Digest,
    /// The names it was reached by (empty for `ct mount FILE` of a bundle no name refers to).
    pub names: Vec<String>,
    pub version: String,
}

/// What a mount is and what it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountInfo {
    pub format: String,
    pub mountpoint: PathBuf,
    pub pid: u32,
    /// `bundle` (`ct mount`) or `store` (`ct store mount`).
    pub kind: String,
    pub bundles: Vec<MountedBundle>,
    /// The daemon's log file.
    pub log: PathBuf,
    pub started_at: i64,
    pub allow_other: bool,
}

/// The registration id of a mountpoint.
pub fn id_for(mountpoint: &Path) -> String {
    let h = Sha256::digest(mountpoint.as_os_str().as_encoded_bytes());
    hex::encode(&h[..8])
}

fn file_name(mountpoint: &Path) -> String {
    format!("{}.json", id_for(mountpoint))
}

/// A registration held by a live daemon. Dropping it removes the file.
#[derive(Debug)]
pub struct Registration {
    dirs: StoreDirs,
    name: String,
    _file: File,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = self.dirs.remove_file(MOUNTS_DIR, &self.name);
    }
}

fn posix_lock(f: &File, kind: i32) -> nix::Result<nix::libc::flock> {
    let mut fl = nix::libc::flock {
        l_type: kind as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    if kind == nix::libc::F_WRLCK {
        nix::fcntl::fcntl(f, nix::fcntl::FcntlArg::F_SETLK(&fl))?;
    } else {
        fl.l_type = nix::libc::F_WRLCK as i16;
        nix::fcntl::fcntl(f, nix::fcntl::FcntlArg::F_GETLK(&mut fl))?;
    }
    Ok(fl)
}

/// Register a mount (called by its daemon, which keeps the result alive while it serves).
pub fn register(dirs: &StoreDirs, info: &MountInfo) -> Result<Registration> {
    let name = file_name(&info.mountpoint);
    let tmp = format!(".{}.{}.tmp", id_for(&info.mountpoint), info.pid);
    let _ = dirs.remove_file(MOUNTS_DIR, &tmp);
    let mut f = dirs.create_new(MOUNTS_DIR, &tmp)?;
    // Locked before it is visible under its name, so nobody ever sees it unlocked while alive.
    f.lock()
        .map_err(|e| StoreError::io(format!("locking {tmp}"), e))?;
    posix_lock(&f, nix::libc::F_WRLCK)
        .map_err(|e| StoreError::io(format!("locking {tmp}"), std::io::Error::from(e)))?;
    // Not synced: a registration means something only while its daemon holds the lock, and
    // no daemon outlives a crash of the machine (an empty file left by one lists as stale).
    f.write_all(&serde_json::to_vec(info).expect("mount info serializes"))
        .map_err(|e| StoreError::io(format!("writing {tmp}"), e))?;
    let d = dirs.open_dir(MOUNTS_DIR)?;
    StoreDirs::rename(&d, &tmp, &d, &name).map_err(|e| {
        StoreError::io(
            format!("publishing {}", dirs.join(MOUNTS_DIR).join(&name).display()),
            e,
        )
    })?;
    Ok(Registration {
        dirs: dirs.clone(),
        name,
        _file: f,
    })
}

/// One registration found on disk.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    name: String,
    pub info: Result<MountInfo>,
    /// True while its daemon holds the lock.
    pub alive: bool,
    /// The pid holding the registration's record lock: the daemon, proven by the kernel.
    pub holder: Option<u32>,
}

/// Every registration, live or left by a dead daemon.
pub fn list(dirs: &StoreDirs) -> Result<Vec<Found>> {
    let names = match dirs.list(MOUNTS_DIR) {
        Ok(n) => n,
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![])
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let Ok(Some(f)) = dirs.open_regular(MOUNTS_DIR, &name) else {
            continue;
        };
        let path = dirs.join(MOUNTS_DIR).join(&name);
        let alive = matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock));
        let holder = posix_lock(&f, nix::libc::F_UNLCK)
            .ok()
            .filter(|fl| fl.l_type != nix::libc::F_UNLCK as i16 && fl.l_pid > 0)
            .map(|fl| fl.l_pid as u32);
        let info = read_info(&path, &f);
        out.push(Found {
            path,
            name,
            info,
            alive,
            holder,
        });
    }
    Ok(out)
}

fn read_info(path: &Path, f: &File) -> Result<MountInfo> {
    let mut bytes = Vec::new();
    f.take(MAX_REGISTRATION_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
    let info: MountInfo = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("mount registration {}: {e}", path.display())))?;
    if info.format != MOUNT_FORMAT_V2 {
        return Err(StoreError::Corrupt(format!(
            "mount registration {} has format {}",
            path.display(),
            crate::shown(info.format.as_bytes())
        )));
    }
    Ok(info)
}

/// The registration of `mountpoint`, if any.
pub fn find(dirs: &StoreDirs, mountpoint: &Path) -> Result<Option<Found>> {
    let want = file_name(mountpoint);
    Ok(list(dirs)?.into_iter().find(|f| f.name == want))
}

/// Remove a registration left by a dead daemon (never one whose daemon is alive).
pub fn remove_stale(dirs: &StoreDirs, found: &Found) -> Result<()> {
    if found.alive {
        return Err(StoreError::Busy(format!(
            "{} belongs to a running mount daemon",
            found.path.display()
        )));
    }
    dirs.remove_file(MOUNTS_DIR, &found.name).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(mp: &str, pid: u32) -> MountInfo {
        MountInfo {
            format: MOUNT_FORMAT_V2.into(),
            mountpoint: mp.into(),
            pid,
            kind: "bundle".into(),
            bundles: vec![],
            log: "/dev/null".into(),
            started_at: 0,
            allow_other: false,
        }
    }

    #[test]
    fn a_registration_is_alive_while_held_and_gone_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let dirs = StoreDirs::create(d.path()).unwrap();
        let r = register(&dirs, &info("/mnt/x", std::process::id())).unwrap();
        let l = list(&dirs).unwrap();
        assert_eq!(l.len(), 1);
        assert!(l[0].alive);
        assert_eq!(l[0].info.as_ref().unwrap().mountpoint, Path::new("/mnt/x"));
        assert!(remove_stale(&dirs, &l[0]).is_err());
        drop(r);
        assert!(list(&dirs).unwrap().is_empty());
        // A file left by a dead daemon is stale and may be removed; it proves no pid.
        std::fs::write(
            d.path()
                .join(MOUNTS_DIR)
                .join(file_name(Path::new("/mnt/y"))),
            serde_json::to_vec(&info("/mnt/y", 1)).unwrap(),
        )
        .unwrap();
        let l = list(&dirs).unwrap();
        assert!(!l[0].alive);
        assert_eq!(l[0].holder, None);
        remove_stale(&dirs, &l[0]).unwrap();
        assert!(list(&dirs).unwrap().is_empty());
    }
}
