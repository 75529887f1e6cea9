//! The rootfs Merkle DAG (spec/rootfs.md): OCI layers applied in order give one merged tree;
//! each regular file is identified by its BLAKE3 content root (with an outboard for block-level
//! verification), each directory by the digest of its canonical listing, and the whole rootfs
//! by the digest of its root record. Pure code: no store, no database, no FUSE.
//!
//! - `tar`, `layer`, `tree`: reading layers and applying the OCI layer rules (§3);
//! - `sink`: where file contents go while a layer is read;
//! - `outboard`: block verification against a content root (§4);
//! - `node`: directory nodes and the root record, encoded, decoded and hashed (§5–6);
//! - `verified`: reading a stored tree through verification (the trait readers use);
//! - `walk`: the one walk of a verified tree, every entry with its path, in pre-order;
//! - `ids`, `error`: typed identifiers and errors.

pub mod error;
pub mod ids;
pub mod layer;
pub mod node;
pub mod outboard;
pub mod sink;
pub(crate) mod tar;
mod tree;
pub mod verified;
pub mod walk;

pub use error::{EntryRef, LayerError, Refusal};
pub use ids::{Blake3Root, BlockIndex, DirDigest, IdParseError, RootfsDigest};
pub use layer::{normalize_path, LayerStats, Limits, Rootfs, RootfsBuilder, SYMLINK_MODE_V1};
pub use node::{DecodeError, DirEntry, DirNode, Link, Metadata, Payload, RootRecord, Timestamp};
pub use outboard::{
    block_count, block_span, outboard_len, verify_block, Outboard, OutboardBuilder, VerifyError,
    VERIFY_BLOCK_SIZE_V1,
};
pub use sink::{hash_content, ContentSink, HashSink, MemorySink};
pub use tar::{MAX_DEV_MAJOR_V1, MAX_DEV_MINOR_V1, MAX_PATH_BYTES_V1, MAX_PAX_BYTES_V1};
pub use tree::IMPLICIT_DIR_MODE_V1;
#[cfg(any(test, feature = "testing"))]
pub use verified::MemoryTree;
pub use verified::{ContentReader, TreeError, TreeStore, VerifiedFile, VerifiedTree};
pub use walk::{Item as WalkItem, Walk, WalkError};
