//! Leases: what a reader holds so that `gc` never removes the bundles it reads. A lease is taken
//! *before* the reader resolves its record, under the store lock (shared), so `gc` — which holds
//! the lock exclusively for its whole run — either ran before (and the reader finds what is
//! left) or waits for the lease to exist (and keeps what it covers).
//!
//! ```text
//! STORE/leases/<pid>-<n>-<nanos>.json   {"format":"cerro-torre/lease/v1", "pid", "purpose",
//!                                         "digests": ["sha256:…", …]}
//! ```
//! The holder keeps an exclusive `flock` on its file for as long as it reads; the kernel drops it
//! when the process dies, so a file whose lock is free is stale and `gc` removes it. Files are
//! created `O_CREAT|O_EXCL|O_NOFOLLOW` in a directory the store checked (see `dirs`), and only
//! names of this form are ever read or removed.

use crate::dirs::StoreDirs;
use crate::error::{Result, StoreError};
use cerro_core::Sha256Digest;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

pub const LEASES_DIR: &str = "leases";
pub const LEASE_FORMAT_V1: &str = "cerro-torre/lease/v1";
/// Largest lease file read back (a store view of many bundles stays far below).
const LEASE_MAX_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseInfo {
    pub format: String,
    pub pid: u32,
    pub purpose: String,
    pub digests: Vec<Sha256Digest>,
}

/// A held lease; dropping it releases the lock and removes the file.
#[derive(Debug)]
pub struct Lease {
    dirs: StoreDirs,
    name: String,
    _file: File,
    digests: Vec<Sha256Digest>,
    names: Vec<(String, Sha256Digest)>,
    skipped: Vec<String>,
}

impl Lease {
    /// Write a lease on `digests`. The caller holds the store lock (shared), so no `gc` runs.
    pub(crate) fn create(
        dirs: &StoreDirs,
        purpose: &str,
        digests: Vec<Sha256Digest>,
        names: Vec<(String, Sha256Digest)>,
        skipped: Vec<String>,
    ) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let info = LeaseInfo {
            format: LEASE_FORMAT_V1.into(),
            pid: std::process::id(),
            purpose: purpose.chars().take(200).collect(),
            digests: digests.clone(),
        };
        let name = format!(
            "{}-{}-{}.json",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            crate::objects::nanos()
        );
        let mut f = dirs.create_new(LEASES_DIR, &name)?;
        // Locked before anything can read it as live; written before the store lock is let go.
        f.lock()
            .map_err(|e| StoreError::io(format!("locking lease {name}"), e))?;
        f.write_all(&serde_json::to_vec(&info).expect("lease serializes"))
            .map_err(|e| StoreError::io(format!("writing lease {name}"), e))?;
        Ok(Self {
            dirs: dirs.clone(),
            name,
            _file: f,
            digests,
            names,
            skipped,
        })
    }

    /// The names resolved for this lease, with the digest each named then.
    pub fn names(&self) -> &[(String, Sha256Digest)] {
        &self.names
    }

    /// Names that could not be resolved (invalid keys or values), one message each.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The bundles this lease keeps.
    pub fn digests(&self) -> &[Sha256Digest] {
        &self.digests
    }

    pub fn covers(&self, d: &Sha256Digest) -> bool {
        self.digests.contains(d)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.dirs.remove_file(LEASES_DIR, &self.name);
    }
}

/// Whether `name` is a lease file name this store writes.
fn is_lease_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".json") else {
        return false;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 40 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// What `gc` must keep: every digest of every live lease. Stale leases (lock free) are removed.
/// A live lease that cannot be read is an error: its references are unknown.
pub(crate) fn live_digests(dirs: &StoreDirs) -> Result<Vec<Sha256Digest>> {
    let mut out = Vec::new();
    for name in dirs.list(LEASES_DIR)? {
        if !is_lease_name(&name) {
            continue;
        }
        let Some(f) = dirs.open_regular(LEASES_DIR, &name)? else {
            continue;
        };
        let live = matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock));
        if !live {
            drop(f);
            let _ = dirs.remove_file(LEASES_DIR, &name);
            continue;
        }
        let mut bytes = Vec::new();
        (&f).take(LEASE_MAX_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(format!("reading lease {name}"), e))?;
        let info: LeaseInfo = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("live lease {name} cannot be read: {e}")))?;
        if info.format != LEASE_FORMAT_V1 {
            return Err(StoreError::Corrupt(format!(
                "live lease {name} has an unknown format"
            )));
        }
        out.extend(info.digests);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_recognised_and_nothing_else() {
        assert!(is_lease_name("12-0-1733000000000000000.json"));
        for bad in [
            "x.json",
            "1-2.json",
            "1-2-3",
            "../1-2-3.json",
            "1-2-3.json.tmp",
            "1--3.json",
        ] {
            assert!(!is_lease_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_live_lease_is_seen_and_a_dropped_one_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let dirs = StoreDirs::create(d.path()).unwrap();
        let a = Sha256Digest::of(b"a");
        let l = Lease::create(&dirs, "test", vec![a], vec![], vec![]).unwrap();
        assert!(l.covers(&a));
        assert_eq!(live_digests(&dirs).unwrap(), vec![a]);
        drop(l);
        assert!(live_digests(&dirs).unwrap().is_empty());
        assert!(dirs.list(LEASES_DIR).unwrap().is_empty());
    }
}
