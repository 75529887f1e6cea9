//! The store lock: an advisory `flock` on `STORE/lock`. Imports and readers share it; gc, rm and
//! repair take it exclusively. The kernel releases it when the process dies, so a killed import
//! never leaves the store locked.

use crate::error::{Result, StoreError};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// How the lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: Option<File>,
    pub mode: LockMode,
}

impl StoreLock {
    /// No lock at all, for readers that only ever read verified data (see `Store::open_reader`).
    pub fn none() -> Self {
        Self {
            _file: None,
            mode: LockMode::Shared,
        }
    }

    /// Take the lock, waiting for it unless `wait` is false (then a held lock is `Busy`).
    pub fn acquire(store: &Path, mode: LockMode, wait: bool) -> Result<Self> {
        let path = store.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        let res = match (mode, wait) {
            (LockMode::Shared, true) => file.lock_shared().map(|_| true),
            (LockMode::Exclusive, true) => file.lock().map(|_| true),
            (LockMode::Shared, false) => match file.try_lock_shared() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            },
            (LockMode::Exclusive, false) => match file.try_lock() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            },
        };
        match res {
            Ok(true) => Ok(Self {
                _file: Some(file),
                mode,
            }),
            Ok(false) => Err(StoreError::Busy(format!(
                "the store at {} is in use by another ct process",
                store.display()
            ))),
            Err(e) => Err(StoreError::io(format!("locking {}", path.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_exclusive_excludes() {
        let d = tempfile::tempdir().unwrap();
        let a = StoreLock::acquire(d.path(), LockMode::Shared, false).unwrap();
        let _b = StoreLock::acquire(d.path(), LockMode::Shared, false).unwrap();
        assert!(matches!(
            StoreLock::acquire(d.path(), LockMode::Exclusive, false),
            Err(StoreError::Busy(_))
        ));
        drop(a);
        drop(_b);
        let _c = StoreLock::acquire(d.path(), LockMode::Exclusive, false).unwrap();
        assert!(matches!(
            StoreLock::acquire(d.path(), LockMode::Shared, false),
            Err(StoreError::Busy(_))
        ));
    }
}
