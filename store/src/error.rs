//! Store errors: each says what failed and where (path, digest, bundle). The CLI maps `Io` to
//! exit 11, `Corrupt` to exit 1, `Busy`/`NotFound`/`Exists` to usage errors, `Unsafe` (a
//! store whose own directories are links or belong to someone else) to exit 11.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("store database at {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("{0}")]
    Corrupt(String),
    #[error("no bundle named {0:?} in the store")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Busy(String),
    /// The store's layout is not what ct made: a link, a directory owned by another user.
    #[error("unsafe store: {0}")]
    Unsafe(String),
}

impl StoreError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
