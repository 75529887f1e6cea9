//! `Ctx`, what every command and step gets: the configuration, the output settings, and where
//! the store is.

use crate::config::Config;
use crate::output::Output;

/// What every command gets.
pub struct Ctx {
    pub cfg: Config,
    pub out: Output,
    /// Where the store is (`--store`, `CT_STORE`, or the default); opened only by commands that use it.
    pub store: std::path::PathBuf,
}

impl Ctx {
    /// The same context with other output settings (e.g. quiet, for a step inside a command).
    pub fn with_output(&self, out: Output) -> Ctx {
        Ctx {
            cfg: self.cfg.clone(),
            out,
            store: self.store.clone(),
        }
    }
}
