//! Errors of layer application. The rules, once: every refusal names the layer and the entry
//! (its path and the byte offset of its header in the decompressed tar stream); `Refused` is
//! malformed or hostile input (exit 10), `Io` is failing to read the layer (exit 11), `Sink` is
//! failing to store a file (exit 11). `Refusal::class` is the stable name used by the vectors.

use std::fmt;
use std::io;

/// Why a layer was refused. Each variant is one rule of spec/rootfs.md §3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the path has a \"..\" component")]
    DotDot,
    #[error("the path goes through the symbolic link {link} (made by an earlier entry)")]
    ThroughSymlink { link: String },
    #[error("the parent {parent} is not a directory")]
    ParentNotDirectory { parent: String },
    #[error("hard link to {target}: {reason}")]
    HardLink {
        target: String,
        reason: &'static str,
    },
    #[error("whiteout: {reason}")]
    Whiteout { reason: &'static str },
    #[error("truncated: {what}")]
    Truncated { what: &'static str },
    #[error("bad tar header: {reason}")]
    BadHeader { reason: String },
    #[error("a name or link target contains a NUL byte")]
    NulInName,
    #[error("bad name: {reason}")]
    BadName { reason: String },
    #[error("unsupported: {what}")]
    Unsupported { what: String },
    #[error("limit exceeded: {what}")]
    Limit { what: String },
    #[error("corrupt compressed stream: {detail}")]
    Compression { detail: String },
}

impl Refusal {
    /// Stable class name (spec/rootfs.md §3.6; `spec/vectors/rootfs/hostile/expected.json`).
    pub fn class(&self) -> &'static str {
        match self {
            Self::DotDot => "dotdot",
            Self::ThroughSymlink { .. } => "through_symlink",
            Self::ParentNotDirectory { .. } => "parent_not_directory",
            Self::HardLink { .. } => "hard_link",
            Self::Whiteout { .. } => "whiteout",
            Self::Truncated { .. } => "truncated",
            Self::BadHeader { .. } => "bad_header",
            Self::NulInName => "nul_in_name",
            Self::BadName { .. } => "bad_name",
            Self::Unsupported { .. } => "unsupported",
            Self::Limit { .. } => "limit",
            Self::Compression { .. } => "compression",
        }
    }
}

/// Which tar entry an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// The entry's path as written in the layer (escaped for display), if it was read.
    pub path: Option<Vec<u8>>,
    /// Byte offset of its header in the decompressed tar stream.
    pub offset: u64,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "entry {} (header at byte {})", show(p), self.offset),
            None => write!(f, "header at byte {}", self.offset),
        }
    }
}

/// Show a path from a layer: quoted, control characters and non-UTF-8 bytes as `\xNN`, cut
/// to a readable length (`crate::text::show_name`).
pub fn show(bytes: &[u8]) -> String {
    crate::text::show_name(bytes)
}

/// Why applying a layer failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}, {entry}: {problem}")]
    Refused {
        layer: usize,
        entry: EntryRef,
        problem: Refusal,
    },
    #[error("layer {layer}: reading the layer failed at byte {offset}: {source}")]
    Io {
        layer: usize,
        offset: u64,
        source: io::Error,
    },
    #[error("layer {layer}, {entry}: storing the file failed: {source}")]
    Sink {
        layer: usize,
        entry: EntryRef,
        source: io::Error,
    },
}

impl LayerError {
    /// The refusal, when the layer itself was at fault (exit 10).
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// What went wrong below the entry level, before layer and entry are attached.
#[derive(Debug)]
pub(crate) enum Fail {
    Refused(Refusal),
    /// Reading the layer failed.
    Io(io::Error),
    /// The content sink failed (storing, not reading).
    Sink(io::Error),
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

pub(crate) fn bad_header(reason: impl Into<String>) -> Refusal {
    Refusal::BadHeader {
        reason: reason.into(),
    }
}

pub(crate) fn bad_name(reason: impl Into<String>) -> Refusal {
    Refusal::BadName {
        reason: reason.into(),
    }
}
