//! OSTree repositories as commands see them: the one mapping of the repository library's
//! refusals to exit codes and hints (`ct export --format ostree`, `ct verify ostree:…`).

use crate::exit::{Failure, HASH_MISMATCH, IO_ERROR};
use cerro_ostree_export::Error as OstreeError;

/// The repository's refusals: what the user pointed at is not usable (64), it failed (11), or
/// an object in it is not what its name says (1).
pub fn ostree_failure(e: OstreeError) -> Failure {
    use OstreeError as E;
    let msg = e.to_string();
    match e {
        E::NotARepository(_)
        | E::BadConfig { .. }
        | E::UnsupportedMode { .. }
        | E::ModeMismatch { .. }
        | E::InvalidRef(_)
        | E::RefNotFound(_) => Failure::usage(msg),
        E::NoUserXattrs { .. } => Failure::new(IO_ERROR, msg)
            .hint("pass --mode archive, or a repository on another file system"),
        E::Io { .. } | E::Input { .. } => Failure::new(IO_ERROR, msg),
        _ => Failure::new(HASH_MISMATCH, msg).hint(
            "the repository holds an object that is not what its name says: run `ostree fsck`",
        ),
    }
}
