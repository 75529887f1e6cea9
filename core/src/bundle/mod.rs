//! The `.ctp` bundle: a deterministic tar that is also an `oci-archive` (spec/bundle.md).
//! `layout` names every path a bundle may hold, `writer` produces bundles byte for byte the
//! same from the same inputs, `reader` streams one through in constant memory, hashing every blob.

pub mod assemble;
pub mod file;
pub mod layout;
pub mod reader;
pub mod writer;

pub use reader::{scan_bundle, BlobSeen, RawBundle};
pub use writer::{write_bundle, BlobSource, BundleContents};

/// Why a bundle could not be read or written. `Malformed` is exit 10, `Io` exit 11, `Mismatch` 1.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Malformed(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Mismatch(String),
}

impl BundleError {
    pub fn malformed(s: impl Into<String>) -> Self {
        Self::Malformed(s.into())
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
