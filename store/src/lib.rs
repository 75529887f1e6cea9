//! Cerro Torre's content-addressed store (DESIGN §4): verbatim OCI blobs by SHA-256, file
//! objects by BLAKE3 root, and a RocksDB database for directory nodes, outboards and bundle
//! records. Everything on disk is treated as attacker-writable: readers re-verify, `fsck` re-hashes.
//!
//! ```text
//! STORE/
//!   lock                      flock: shared for imports/readers, exclusive for gc/rm/repair
//!   blobs/sha256/<hex>        verbatim OCI blobs (what signatures cover)
//!   objects/<2 hex>/<62 hex>  file contents by BLAKE3 root (decompressed, stored once)
//!   db/                       RocksDB: one column family per record type (see db/)
//!   tmp/                      staging for imports in progress (removed when abandoned)
//!   log/                      logs of long-running processes (mount daemons)
//!   mounts/<id>.json          live mounts, each locked by its daemon (see mounts.rs)
//! ```
#![forbid(unsafe_code)]

pub mod db;
pub mod du;
pub mod error;
pub mod fsck;
pub mod gc;
pub mod import;
pub mod lock;
pub mod mounts;
pub mod objects;
pub mod store;
pub mod tree;
pub mod walk;

pub use error::StoreError;
pub use lock::LockMode;
pub use store::Store;

use std::path::{Path, PathBuf};

/// Environment variable that overrides the store location.
pub const STORE_ENV: &str = "CT_STORE";
/// The system store, used by root.
pub const SYSTEM_STORE: &str = "/var/lib/cerro";

/// Where the store lives: `--store DIR`, else `CT_STORE`, else `/var/lib/cerro` for root, else
/// `$XDG_DATA_HOME/cerro` (or `~/.local/share/cerro`).
pub fn resolve_location(
    flag: Option<&Path>,
    env: Option<&str>,
    is_root: bool,
    xdg_data_home: Option<&str>,
    home: Option<&str>,
) -> PathBuf {
    if let Some(f) = flag {
        return f.to_path_buf();
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return PathBuf::from(e);
    }
    if is_root {
        return PathBuf::from(SYSTEM_STORE);
    }
    match (xdg_data_home.filter(|x| !x.is_empty()), home) {
        (Some(x), _) => Path::new(x).join("cerro"),
        (None, Some(h)) => Path::new(h).join(".local/share/cerro"),
        (None, None) => PathBuf::from(SYSTEM_STORE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let p = |f: Option<&str>, e: Option<&str>, root: bool, x: Option<&str>| {
            resolve_location(f.map(Path::new), e, root, x, Some("/home/u"))
        };
        assert_eq!(p(Some("/s"), Some("/e"), true, None), PathBuf::from("/s"));
        assert_eq!(p(None, Some("/e"), true, None), PathBuf::from("/e"));
        assert_eq!(p(None, Some(""), true, None), PathBuf::from(SYSTEM_STORE));
        assert_eq!(p(None, None, false, Some("/x")), PathBuf::from("/x/cerro"));
        assert_eq!(
            p(None, None, false, None),
            PathBuf::from("/home/u/.local/share/cerro")
        );
    }
}
