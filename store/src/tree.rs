//! The store as a [`TreeStore`]: directory nodes and outboards from the database, file contents
//! from the object files. It only fetches bytes; `cerro_core::rootfs::VerifiedTree` checks every
//! one of them against the signed tree before anything is released.

use crate::db::nodes;
use crate::objects::ObjectId;
use crate::store::Store;
use cerro_core::rootfs::{Blake3Root, ContentReader, DirDigest, TreeStore};
use std::io;
use std::sync::Arc;

impl TreeStore for Store {
    fn dir_node(&self, digest: &DirDigest) -> io::Result<Option<Vec<u8>>> {
        nodes::get_dir(self.db(), digest.as_bytes()).map_err(|e| io::Error::other(e.to_string()))
    }

    fn outboard(&self, root: &Blake3Root) -> io::Result<Option<Vec<u8>>> {
        nodes::get_outboard(self.db(), root.as_bytes()).map_err(|e| io::Error::other(e.to_string()))
    }

    fn open_content(&self, root: &Blake3Root) -> io::Result<Arc<dyn ContentReader>> {
        let f = std::fs::File::open(self.object_path(&ObjectId::File(root.hex())))?;
        Ok(Arc::new(f))
    }
}
