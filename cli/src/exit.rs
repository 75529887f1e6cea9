//! Exit codes (DESIGN §7, spec/exit-codes.md) and the one error type every command returns:
//! what failed, with context, and what to do next.

use cerro_core::bundle::BundleError;
use cerro_core::keys::KeyError;

pub const OK: u8 = 0;
pub const HASH_MISMATCH: u8 = 1;
pub const SIGNATURE_INVALID: u8 = 2;
pub const KEY_NOT_TRUSTED: u8 = 3;
pub const POLICY_REJECTED: u8 = 4;
pub const ATTESTATION_MISSING: u8 = 5;
pub const MALFORMED: u8 = 10;
pub const IO_ERROR: u8 = 11;
pub const NETWORK_ERROR: u8 = 12;
/// Usage errors; clap's own default of 2 would collide with "signature invalid".
pub const USAGE: u8 = 64;

/// A failed command: exit code, message, and an optional hint saying what to do next.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

pub type CmdResult<T = ()> = Result<T, Failure>;

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(MALFORMED, message)
    }
    pub fn io(context: impl std::fmt::Display, e: std::io::Error) -> Self {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => Some("check the path".to_string()),
            std::io::ErrorKind::PermissionDenied => {
                Some("check the file's permissions, or run as a user who may read it".to_string())
            }
            _ => None,
        };
        Self {
            code: IO_ERROR,
            message: format!("{context}: {e}"),
            hint,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// Prefix the message with where it happened (a bundle, a file).
    pub fn context(mut self, ctx: impl std::fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

impl From<BundleError> for Failure {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Malformed(m) => Failure::malformed(m),
            BundleError::Io { context, source } => Failure::io(context, source),
            BundleError::Mismatch(m) => Failure::new(HASH_MISMATCH, m),
        }
    }
}

impl From<KeyError> for Failure {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::WrongPassphrase(_) => Failure::usage(e.to_string()).hint("check the passphrase given by --passphrase-file, CT_PASSPHRASE or the prompt; nothing was written"),
            KeyError::Malformed(_) => Failure::malformed(e.to_string()),
            KeyError::Random(_) => Failure::new(IO_ERROR, e.to_string()),
        }
    }
}
