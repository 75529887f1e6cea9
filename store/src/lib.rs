//! Cerro Torre's content-addressed store: verbatim OCI blobs by SHA-256, file
//! objects by BLAKE3 root, and a RocksDB database for directory nodes, outboards and bundle
//! records. Everything on disk is treated as attacker-writable: readers re-verify, `fsck` re-hashes.
//!
//! ```text
//! STORE/                      mode 0700 when ct creates it; every directory below must be a
//!                             real directory owned by the store's owner (dirs.rs)
//!   lock                      flock: shared for imports/readers, exclusive for gc/rm/repair
//!   blobs/sha256/<hex>        verbatim OCI blobs (what signatures cover)
//!   objects/<2 hex>/<62 hex>  contents of files over 64 KiB by BLAKE3 root (decompressed,
//!                             stored once)
//!   db/                       RocksDB: records by bundle digest, names, nodes, and the
//!                             contents of files of at most 64 KiB (see db/)
//!   tmp/                      staging for imports in progress (removed when abandoned)
//!   log/                      logs of long-running processes (mount daemons)
//!   mounts/<id>.json          live mounts, each locked by its daemon (see mounts.rs)
//!   leases/<id>.json          what live readers use; gc keeps it (see lease.rs)
//! ```
//! Records are addressed by bundle digest and names are references (spec/store.md); the only
//! way to a record that serving code accepts is [`Store::verified`], which re-verifies it.

pub mod db;
pub mod dirs;
pub mod du;
pub mod error;
pub mod extract;
pub mod fsck;
pub mod gc;
pub mod import;
pub mod lease;
pub mod lock;
pub mod mounts;
pub mod objects;
pub mod outdir;
pub mod store;
pub mod tree;
pub mod walk;

pub use error::StoreError;
pub use lease::Lease;
pub use lock::LockMode;
pub use store::{FileContent, RecordError, Store, Target};

/// Bytes from the store as they may appear in a message: quoted, control characters and
/// non-UTF-8 bytes escaped, cut to a readable length.
pub fn shown(b: &[u8]) -> String {
    const MAX: usize = 80;
    let cut = &b[..b.len().min(MAX)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if b.len() > MAX {
        s.push_str(&format!(" (… {} bytes)", b.len()));
    }
    s
}

/// Mutation helpers for the "random bytes never panic" tests of every decoder.
#[cfg(test)]
pub(crate) mod testing {
    /// Call `f` with `n` variants of `good`: bit flips, truncations, random bytes.
    pub fn mutations(good: &[u8], n: usize, mut f: impl FnMut(&[u8])) {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut v = match i % 3 {
                0 => good.to_vec(),
                1 => good[..(x as usize) % (good.len() + 1)].to_vec(),
                _ => (0..(x % 300)).map(|j| (x >> (j % 56)) as u8).collect(),
            };
            if !v.is_empty() {
                let len = v.len();
                v[(x as usize) % len] ^= (x >> 8) as u8;
            }
            f(&v);
        }
    }
}

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
