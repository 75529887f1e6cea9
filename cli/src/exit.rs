//! Exit codes (spec/exit-codes.md) and the one error type every command returns:
//! what failed, with context, and what to do next.

use cerro_core::bundle::BundleError;
use cerro_core::export::ExportError;
use cerro_core::keys::KeyError;

// The whole table is kept here as the reference; some codes are only produced through
// `cerro_core::verify::FailureKind` (checked against this table below) or by later commands.
pub const OK: u8 = 0;
pub const HASH_MISMATCH: u8 = 1;
pub const SIGNATURE_INVALID: u8 = 2;
pub const KEY_NOT_TRUSTED: u8 = 3;
pub const POLICY_REJECTED: u8 = 4;
#[allow(dead_code)]
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
        let hint = cerro_core::text::io_hint(&e).map(str::to_string);
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

impl From<ExportError> for Failure {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Malformed(m) => Failure::malformed(m),
            ExportError::Io { context, source } => Failure::io(context, source),
            ExportError::Mismatch(m) => Failure::new(HASH_MISMATCH, m),
            e @ (ExportError::IsBundle(_)
            | ExportError::SameManifest(..)
            | ExportError::SameFileName(..)) => Failure::usage(e.to_string()),
        }
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

impl From<cerro_store::StoreError> for Failure {
    fn from(e: cerro_store::StoreError) -> Self {
        use cerro_store::StoreError as E;
        match e {
            E::Io { context, source } => Failure::io(context, source),
            E::Db { .. } => Failure::new(IO_ERROR, e.to_string()).hint("the store database could not be opened or written; `ct store fsck` checks the store"),
            E::Corrupt(_) => Failure::new(HASH_MISMATCH, e.to_string()).hint("run `ct store fsck` to see what is damaged, and `ct store fsck --repair` to remove it"),
            E::NotFound(_) => Failure::usage(e.to_string()).hint("see `ct store ls`"),
            E::Exists(_) => Failure::usage(e.to_string()),
            E::Busy(_) => Failure::new(IO_ERROR, e.to_string()).hint("wait for the other ct process to finish"),
            E::Unsafe(_) => Failure::new(IO_ERROR, e.to_string()).hint("the store's directories must be real directories owned by the store's owner; remove what is in the way (it was not made by ct), or point --store elsewhere"),
        }
    }
}

impl From<cerro_store::outdir::OutputError> for Failure {
    fn from(e: cerro_store::outdir::OutputError) -> Self {
        use cerro_store::outdir::OutputError as E;
        match e {
            E::NoName(_) => Failure::usage(e.to_string()),
            E::Io { what, source } => Failure::io(what, source),
            E::Replaced(_) => Failure::new(IO_ERROR, e.to_string())
                .hint("another user can write to that directory; write the output elsewhere"),
        }
    }
}

impl From<cerro_store::import::ImportError> for Failure {
    fn from(e: cerro_store::import::ImportError) -> Self {
        use cerro_store::import::ImportError as E;
        match e {
            E::Store(s) => s.into(),
            E::Bundle(b) => b.into(),
            E::RootfsMismatch { .. } => Failure::new(HASH_MISMATCH, e.to_string()).hint("the store is unchanged; do not use this bundle"),
            E::InvalidName { .. } => Failure::usage(e.to_string()),
            E::Downgrade(_) => Failure::new(POLICY_REJECTED, e.to_string()).hint("a name never moves to an older bundle by itself (a rollback); pass --allow-downgrade to move it anyway, or import it under another name with --name NAME"),
        }
    }
}

/// The one place registry errors become exit codes: authentication and not-found failures are
/// network errors (exit 12), as every other failure to get an answer from the registry.
impl From<cerro_registry::Error> for Failure {
    fn from(e: cerro_registry::Error) -> Self {
        use cerro_registry::ErrorKind as K;
        let code = match e.kind {
            K::Network | K::Auth | K::NotFound => NETWORK_ERROR,
            K::DigestMismatch => HASH_MISMATCH,
            K::Malformed => MALFORMED,
            K::Io => IO_ERROR,
            K::Usage => USAGE,
            K::SignatureInvalid => SIGNATURE_INVALID,
            K::KeyNotTrusted => KEY_NOT_TRUSTED,
        };
        Failure {
            code,
            message: e.message,
            hint: e.hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerro_core::verify::FailureKind::*;

    #[test]
    fn core_failure_kinds_use_this_table() {
        assert_eq!(HashMismatch.exit_code(), HASH_MISMATCH);
        assert_eq!(SignatureInvalid.exit_code(), SIGNATURE_INVALID);
        assert_eq!(KeyNotTrusted.exit_code(), KEY_NOT_TRUSTED);
        assert_eq!(PolicyRejected.exit_code(), POLICY_REJECTED);
        assert_eq!(AttestationMissing.exit_code(), ATTESTATION_MISSING);
        assert_eq!(Malformed.exit_code(), MALFORMED);
        assert_ne!(
            USAGE, 2,
            "clap's default usage code collides with signature invalid"
        );
        assert_eq!(NETWORK_ERROR, 12);
    }

    #[test]
    fn registry_errors_keep_their_exit_codes() {
        use cerro_registry::{Error, ErrorKind as K};
        for (kind, code) in [
            (K::Network, NETWORK_ERROR),
            (K::Auth, NETWORK_ERROR),
            (K::NotFound, NETWORK_ERROR),
            (K::DigestMismatch, HASH_MISMATCH),
            (K::Malformed, MALFORMED),
            (K::Io, IO_ERROR),
            (K::Usage, USAGE),
            (K::SignatureInvalid, SIGNATURE_INVALID),
            (K::KeyNotTrusted, KEY_NOT_TRUSTED),
        ] {
            let f = Failure::from(Error::new(kind, "m").hint("h"));
            assert_eq!(
                (f.code, f.message.as_str(), f.hint.as_deref()),
                (code, "m", Some("h"))
            );
        }
    }
}
