//! How the library reports transfer progress: one bar per blob in flight. The library only
//! counts bytes; drawing (or not) is the caller's business (`ct` draws per-blob lines on a
//! terminal). Implementations are shared by worker threads, so they must be `Sync`.

/// A set of progress bars, one per blob transfer.
pub trait Progress: Sync {
    /// A transfer of `total` bytes, described by `label` (e.g. `layer 1 sha256:0123456789ab`).
    fn bar(&self, label: String, total: u64) -> Box<dyn Bar + '_>;
    /// Every transfer is over: remove whatever was drawn.
    fn clear(&self) {}
}

/// One transfer's counter.
pub trait Bar: Send + Sync {
    /// `n` more bytes went through.
    fn add(&self, n: u64);
    /// The transfer ended (done or failed).
    fn finish(&self);
}

/// No progress at all (tests, quiet callers).
pub struct NoProgress;

struct NoBar;

impl Bar for NoBar {
    fn add(&self, _: u64) {}
    fn finish(&self) {}
}

impl Progress for NoProgress {
    fn bar(&self, _: String, _: u64) -> Box<dyn Bar + '_> {
        Box::new(NoBar)
    }
}
