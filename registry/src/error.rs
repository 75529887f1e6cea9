//! The registry library's one error type: what kind of failure it is (network, authentication,
//! not found, digest mismatch, …), the message saying exactly what failed with its context
//! (registry, request, status, digest expected and found), and a hint saying what to do next.
//!
//! Rules: the message is complete on its own (callers print it as is and may prefix context);
//! the kind alone decides how a caller reacts (the `ct` binary maps it to an exit code in one
//! place, `cli/src/exit.rs`); a hint is advice for a person, never needed to understand the error.

use cerro_core::bundle::BundleError;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The registry could not be reached, broke off, or answered with an unexpected status.
    Network,
    /// The registry or its token service wants credentials we lack, or refuses the ones given.
    Auth,
    /// A manifest or blob the operation needs is not in the registry.
    NotFound,
    /// The registry served (or refused as not matching) other bytes than a digest names.
    DigestMismatch,
    /// The registry's answer, an artifact, an auth file or a certificate is not what it must be.
    Malformed,
    /// A local file could not be read or written.
    Io,
    /// The caller's input is wrong (a reference, `--creds`, a missing `--authfile`).
    Usage,
    /// A bundle's signature does not verify, or there is none.
    SignatureInvalid,
    /// No valid signature of a bundle is by a trusted key.
    KeyNotTrusted,
}

/// A registry operation that failed: its kind, message and an optional hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T = (), E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, message)
    }
    /// A local I/O failure, with the hint for its common causes.
    pub fn io(context: impl std::fmt::Display, e: std::io::Error) -> Self {
        let hint = cerro_core::text::io_hint(&e).map(str::to_string);
        Self {
            kind: ErrorKind::Io,
            message: format!("{context}: {e}"),
            hint,
        }
    }
    /// The same message and hint, as another kind (a 401 is an authentication failure).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Prefix the message with where it happened (an image, a blob).
    pub fn context(mut self, ctx: impl std::fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

/// A network failure naming the registry.
pub fn net_failure(registry: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Network, format!("registry {registry}: {msg}"))
}

impl From<BundleError> for Error {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Malformed(m) => Error::malformed(m),
            BundleError::Io { context, source } => Error::io(context, source),
            BundleError::Mismatch(m) => Error::new(ErrorKind::DigestMismatch, m),
        }
    }
}
