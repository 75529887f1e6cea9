//! The store lock: an advisory `flock` on `STORE/lock`. Imports and readers share it; gc, rm and
//! repair take it exclusively. The kernel releases it when the process dies, so a killed import
//! never leaves the store locked.

use crate::dirs::StoreDirs;
use crate::error::{Result, StoreError};
use std::fs::File;

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
    pub fn acquire(dirs: &StoreDirs, mode: LockMode, wait: bool) -> Result<Self> {
        let path = dirs.join("lock");
        let store = dirs.path();
        // Never through a link, always a regular file (see dirs.rs).
        let file = dirs.open_append(".", "lock")?;
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
        let t = tempfile::tempdir().unwrap();
        let d = StoreDirs::create(t.path()).unwrap();
        let a = StoreLock::acquire(&d, LockMode::Shared, false).unwrap();
        let _b = StoreLock::acquire(&d, LockMode::Shared, false).unwrap();
        assert!(matches!(
            StoreLock::acquire(&d, LockMode::Exclusive, false),
            Err(StoreError::Busy(_))
        ));
        drop(a);
        drop(_b);
        let _c = StoreLock::acquire(&d, LockMode::Exclusive, false).unwrap();
        assert!(matches!(
            StoreLock::acquire(&d, LockMode::Shared, false),
            Err(StoreError::Busy(_))
        ));
    }
}
