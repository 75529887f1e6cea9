//! Cerro Torre's content-addressed store (DESIGN §4). This crate so far decides only *where* the
//! store lives; objects, the RocksDB index, import, gc and fsck arrive with the store issue.
#![forbid(unsafe_code)]

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
