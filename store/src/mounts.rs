//! Registrations of live mounts, so that `ct mounts` can list them, `ct umount` can find their
//! daemons, and `gc` never removes what a mount still reads.
//!
//! ```text
//! STORE/mounts/<id>.json   one per mount; <id> = first 16 hex of SHA-256(mountpoint)
//!                          {"format":"cerro-torre/mount/v1", "mountpoint", "pid", "kind",
//!                           "records": [BundleRecord…], "log", "started_at", "allow_other"}
//! ```
//! The daemon holds an exclusive `flock` on its file for as long as it serves the mount; the
//! kernel drops it when the process dies, so a file whose lock is free belongs to a dead
//! daemon (its mount, if still there, is broken: "Transport endpoint is not connected").

use crate::db::bundles::BundleRecord;
use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MOUNTS_DIR: &str = "mounts";
pub const MOUNT_FORMAT_V1: &str = "cerro-torre/mount/v1";
/// Largest registration read back (untrusted at rest: bounds memory).
const MAX_REGISTRATION_BYTES: u64 = 64 << 20;

/// What a mount is and what it references.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountInfo {
    pub format: String,
    pub mountpoint: PathBuf,
    pub pid: u32,
    /// `bundle` (`ct mount`) or `store` (`ct store mount`).
    pub kind: String,
    /// The bundle records the mount serves (kept here so `gc` keeps their objects even after
    /// `ct store rm`).
    pub records: Vec<BundleRecord>,
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

pub fn registration_path(store: &Path, mountpoint: &Path) -> PathBuf {
    store
        .join(MOUNTS_DIR)
        .join(format!("{}.json", id_for(mountpoint)))
}

/// A registration held by a live daemon. Dropping it removes the file.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
    _file: File,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Register a mount (called by its daemon, which keeps the result alive while it serves).
pub fn register(store: &Path, info: &MountInfo) -> Result<Registration> {
    let dir = store.join(MOUNTS_DIR);
    fs::create_dir_all(&dir)
        .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let path = registration_path(store, &info.mountpoint);
    let tmp = dir.join(format!(".{}.{}.tmp", id_for(&info.mountpoint), info.pid));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
    // Locked before it is visible under its name, so nobody ever sees it unlocked while alive.
    f.lock()
        .map_err(|e| StoreError::io(format!("locking {}", tmp.display()), e))?;
    f.write_all(&serde_json::to_vec(info).expect("mount info serializes"))
        .and_then(|_| f.sync_data())
        .map_err(|e| StoreError::io(format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, &path)
        .map_err(|e| StoreError::io(format!("publishing {}", path.display()), e))?;
    Ok(Registration { path, _file: f })
}

/// One registration found on disk.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub info: Result<MountInfo>,
    /// True while its daemon holds the lock.
    pub alive: bool,
}

/// Every registration, live or left by a dead daemon.
pub fn list(store: &Path) -> Result<Vec<Found>> {
    let dir = store.join(MOUNTS_DIR);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(StoreError::io(format!("reading {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        let path = ent.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        let alive = matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock));
        let info = read_info(&path, &f);
        out.push(Found { path, info, alive });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn read_info(path: &Path, f: &File) -> Result<MountInfo> {
    use std::io::Read;
    let mut bytes = Vec::new();
    f.take(MAX_REGISTRATION_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
    let info: MountInfo = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("mount registration {}: {e}", path.display())))?;
    if info.format != MOUNT_FORMAT_V1 {
        return Err(StoreError::Corrupt(format!(
            "mount registration {} has format {:?}",
            path.display(),
            info.format
        )));
    }
    Ok(info)
}

/// The registration of `mountpoint`, if any.
pub fn find(store: &Path, mountpoint: &Path) -> Result<Option<Found>> {
    let want = registration_path(store, mountpoint);
    Ok(list(store)?.into_iter().find(|f| f.path == want))
}

/// Remove a registration left by a dead daemon (never one whose daemon is alive).
pub fn remove_stale(found: &Found) -> Result<()> {
    if found.alive {
        return Err(StoreError::Busy(format!(
            "{} belongs to a running mount daemon",
            found.path.display()
        )));
    }
    match fs::remove_file(&found.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(
            format!("removing {}", found.path.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_is_alive_while_held_and_gone_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let info = MountInfo {
            format: MOUNT_FORMAT_V1.into(),
            mountpoint: "/mnt/x".into(),
            pid: std::process::id(),
            kind: "bundle".into(),
            records: vec![],
            log: "/dev/null".into(),
            started_at: 0,
            allow_other: false,
        };
        let r = register(d.path(), &info).unwrap();
        let l = list(d.path()).unwrap();
        assert_eq!(l.len(), 1);
        assert!(l[0].alive);
        assert_eq!(l[0].info.as_ref().unwrap().mountpoint, info.mountpoint);
        assert!(remove_stale(&l[0]).is_err());
        drop(r);
        assert!(list(d.path()).unwrap().is_empty());
        // A file left by a dead daemon is stale and may be removed.
        fs::write(
            registration_path(d.path(), Path::new("/mnt/y")),
            serde_json::to_vec(&info).unwrap(),
        )
        .unwrap();
        let l = list(d.path()).unwrap();
        assert!(!l[0].alive);
        remove_stale(&l[0]).unwrap();
        assert!(list(d.path()).unwrap().is_empty());
    }
}
