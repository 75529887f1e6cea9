//! What OSTree cannot hold of a signed rootfs, carried in the commit's metadata: the root record
//! and every directory node of the signed tree (spec/rootfs.md §5–6), so that `ct verify
//! ostree:REPO:REF` can take mtimes, hard-link groups and device and FIFO entries from them and
//! re-derive the rootfs digest from the commit's tree. Nothing here is trusted when read: the
//! root record must hash to the signed rootfs digest and each node is read through
//! `VerifiedTree`, which checks it against the digest its parent names.
//!
//! ```text
//! signed tree = MAGIC (16) | root record len u32 | root record | count u32
//!               | (node len u32 | node) * count                 (nodes in digest order)
//! ```
//! Integers are big-endian.

use cerro_core::rootfs::node::dir_digest;
use cerro_core::rootfs::verified::MAX_STORED_VALUE_BYTES;
use cerro_core::rootfs::{Blake3Root, ContentReader, DirDigest, RootRecord, TreeStore};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// First bytes of the encoding. Changing this breaks the format.
pub const MAGIC: [u8; 16] = *b"cerro-tree-v1\0\0\0";
/// Most directory nodes read back (the rootfs format's own bound on entries per directory
/// keeps real trees far below it).
pub const MAX_NODES: usize = 1 << 22;

/// The root record and the directory nodes of one rootfs, by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTree {
    pub root: RootRecord,
    pub nodes: BTreeMap<DirDigest, Vec<u8>>,
}

impl SignedTree {
    pub fn encode(&self) -> Vec<u8> {
        let root = self.root.encode();
        let len: usize = self.nodes.values().map(|n| 4 + n.len()).sum();
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + root.len() + len);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(root.len() as u32).to_be_bytes());
        out.extend_from_slice(&root);
        out.extend_from_slice(&(self.nodes.len() as u32).to_be_bytes());
        for n in self.nodes.values() {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    /// Decode untrusted bytes: bounded, never panics. Each node is keyed by the digest of its
    /// bytes (nothing claims a digest); whether the root record is the signed one, and each
    /// node the one its parent names, is for the reader to check.
    pub fn decode(bytes: &[u8]) -> Result<SignedTree, String> {
        let mut r = bytes;
        let mut take = |n: usize, what: &str| -> Result<&[u8], String> {
            if r.len() < n {
                return Err(format!("cut short in {what}"));
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(MAGIC.len(), "the magic")? != MAGIC {
            return Err("not a cerro signed-tree record (bad magic)".into());
        }
        let u32_at = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let root_len = u32_at(take(4, "the root record length")?);
        let root = RootRecord::decode(take(root_len, "the root record")?)
            .map_err(|e| format!("root record: {e}"))?;
        let count = u32_at(take(4, "the node count")?);
        if count > MAX_NODES {
            return Err(format!(
                "{count} directory nodes, above the limit of {MAX_NODES}"
            ));
        }
        let mut nodes = BTreeMap::new();
        for i in 0..count {
            let len = u32_at(take(4, "a node length")?);
            if len > MAX_STORED_VALUE_BYTES {
                return Err(format!("node {i} is {len} bytes, above the limit"));
            }
            let node = take(len, "a node")?;
            nodes.insert(dir_digest(node), node.to_vec());
        }
        if !r.is_empty() {
            return Err(format!("{} bytes after the last node", r.len()));
        }
        Ok(SignedTree { root, nodes })
    }
}

/// The nodes as a tree store without file contents (the commit holds those).
impl TreeStore for SignedTree {
    fn dir_node(&self, digest: &DirDigest) -> io::Result<Option<Vec<u8>>> {
        Ok(self.nodes.get(digest).cloned())
    }
    fn outboard(&self, _: &Blake3Root) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn open_content(&self, root: &Blake3Root, _: u64) -> io::Result<Arc<dyn ContentReader>> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{root}: file contents are in the commit, not in its signed tree"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerro_core::rootfs::{DirNode, Metadata};

    fn sample() -> SignedTree {
        let a = DirNode::default();
        let root = RootRecord {
            meta: Metadata {
                mode: 0o755,
                ..Metadata::default()
            },
            dir: a.digest(),
        };
        SignedTree {
            root,
            nodes: [(a.digest(), a.encode())].into(),
        }
    }

    #[test]
    fn round_trip() {
        let t = sample();
        assert_eq!(SignedTree::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn hostile_bytes_are_refused_without_panic() {
        let good = sample().encode();
        for cut in 0..good.len() {
            assert!(SignedTree::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(SignedTree::decode(&extra).is_err());
        let mut huge = good.clone();
        let at = MAGIC.len() + 4 + sample().root.encode().len();
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(SignedTree::decode(&huge)
            .unwrap_err()
            .contains("above the limit"));
        // Arbitrary mutations: errors or values, never a panic.
        for i in 0..good.len() {
            for b in [0u8, 1, 0x7f, 0xff] {
                let mut m = good.clone();
                m[i] = b;
                let _ = SignedTree::decode(&m);
            }
        }
    }
}
