//! The store as a [`TreeStore`]: directory nodes, outboards and small files' contents from the
//! database, other file contents from the object files. It only fetches bytes; `cerro_core::rootfs::VerifiedTree` checks every
//! one of them against the signed tree before anything is released.

use crate::db::nodes;
use crate::store::Store;
use cerro_core::rootfs::{Blake3Root, ContentReader, DirDigest, TreeStore};
use std::io;
use std::sync::Arc;

impl TreeStore for Store {
    fn dir_node(&self, digest: &DirDigest) -> io::Result<Option<Vec<u8>>> {
        nodes::get_dir(self.db(), digest).map_err(|e| io::Error::other(e.to_string()))
    }

    fn outboard(&self, root: &Blake3Root) -> io::Result<Option<Vec<u8>>> {
        nodes::get_outboard(self.db(), root).map_err(|e| io::Error::other(e.to_string()))
    }

    /// A small file's bytes from the database, or the object file, opened through the store's
    /// descriptors: never through a link, never a FIFO or device (which could hang or feed a
    /// reader forever); exactly `size` bytes either way.
    fn open_content(&self, root: &Blake3Root, size: u64) -> io::Result<Arc<dyn ContentReader>> {
        Ok(Arc::new(self.open_file_content(root, size)?))
    }
}
