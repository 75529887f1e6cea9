//! The one error type of the crate: every refusal is a typed variant naming the object or path
//! it concerns. Untrusted text (ref names, modes read from a config) is shown `{:?}`-escaped.

use std::io;
use std::path::PathBuf;

use crate::checksum::{Checksum, ObjectType};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on the repository failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The reader handed to `CommitBuilder::file` failed.
    #[error("reading the content of {name:?}: {source}")]
    Input {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{0}: not an OSTree repository (no config) and not empty; refusing to create one there"
    )]
    NotARepository(PathBuf),
    #[error("{path}: bad repository config: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("{path}: repository mode {found:?} is not supported (this writer handles archive-z2 and bare-user)")]
    UnsupportedMode { path: PathBuf, found: String },
    #[error("{path}: the repository is {found}, not {wanted} as asked")]
    ModeMismatch {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("{path}: the file system refused the user.ostreemeta extended attribute a bare-user repository needs ({source}); use an archive repository")]
    NoUserXattrs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid ref name {0:?} (OSTree refs are /-separated parts of [A-Za-z0-9_][-._A-Za-z0-9_]*)")]
    InvalidRef(String),
    #[error("ref {0:?} does not exist in the repository")]
    RefNotFound(String),
    #[error("ref {name:?} does not hold a checksum")]
    BadRef { name: String },
    #[error("{kind} object {checksum} is not in the repository")]
    MissingObject {
        kind: ObjectType,
        checksum: Checksum,
    },
    #[error("{kind} object {checksum} is {size} bytes, above the limit of {limit}")]
    TooLarge {
        kind: ObjectType,
        checksum: Checksum,
        size: u64,
        limit: u64,
    },
    #[error("{kind} object {expected} is corrupt: its bytes hash to {actual}")]
    ChecksumMismatch {
        kind: ObjectType,
        expected: Checksum,
        actual: Checksum,
    },
    #[error("{kind} object {checksum} is malformed: {reason}")]
    Malformed {
        kind: ObjectType,
        checksum: Checksum,
        reason: String,
    },
    /// Something of the input tree that an OSTree commit cannot hold as given.
    #[error("cannot be stored in OSTree: {0}")]
    NotRepresentable(String),
    /// The caller broke the pre-order protocol of `CommitBuilder`.
    #[error("commit builder misuse: {0}")]
    Protocol(String),
    #[error("{name:?}: {declared} bytes were announced but the reader gave {}", if *.more { "more".to_string() } else { format!("only {}", .read) })]
    SizeMismatch {
        name: String,
        declared: u64,
        read: u64,
        more: bool,
    },
    #[error("commit {commit}: {reason}")]
    Signature { commit: Checksum, reason: String },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn malformed(kind: ObjectType, checksum: Checksum, reason: impl ToString) -> Error {
        Error::Malformed {
            kind,
            checksum,
            reason: reason.to_string(),
        }
    }
}

/// `rustix` errors into `io::Error` with context.
pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> Error {
    let what = what.into();
    move |e| Error::io(what, e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let more = Error::SizeMismatch {
            name: "f".into(),
            declared: 3,
            read: 4,
            more: true,
        };
        assert_eq!(
            more.to_string(),
            "\"f\": 3 bytes were announced but the reader gave more"
        );
        let less = Error::SizeMismatch {
            name: "f".into(),
            declared: 3,
            read: 1,
            more: false,
        };
        assert_eq!(
            less.to_string(),
            "\"f\": 3 bytes were announced but the reader gave only 1"
        );
        let e = Error::InvalidRef("a\nb".into());
        assert!(e.to_string().contains("\"a\\nb\""));
    }
}
