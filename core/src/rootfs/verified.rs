//! Reading a rootfs through verification (ARCHITECTURE.md, spec/rootfs.md §4–5): the trait through
//! which `fuse`, `ostree-export` and `ct unpack` read a stored tree, and the one place that
//! checks what it hands out. A [`TreeStore`] gives raw, untrusted bytes (the store's database
//! and object files, or memory in tests); [`VerifiedTree`] checks every directory node against
//! the digest its parent (or the signed root record) names, and every block of file content
//! against the file's BLAKE3 root through its outboard, before releasing a single byte.
//!
//! Safe operations have the short names. Nothing here returns unverified content.

use super::ids::{Blake3Root, BlockIndex, DirDigest};
use super::node::{dir_digest, DecodeError, DirNode};
use super::outboard::{block_count, outboard_len, verify_block, VerifyError, VERIFY_BLOCK_SIZE_V1};
use std::fmt;
use std::io;
use std::sync::Arc;

/// Largest directory node or outboard accepted from a store (untrusted-input bound).
pub const MAX_STORED_VALUE_BYTES: usize = 64 << 20;

/// Raw access to a stored tree. Everything it returns is untrusted: implementations only fetch.
pub trait TreeStore: Send + Sync {
    /// The stored bytes of a directory node, or `None` when the store has none under `digest`.
    fn dir_node(&self, digest: &DirDigest) -> io::Result<Option<Vec<u8>>>;
    /// The stored outboard of a file, or `None` (files of at most one block have none).
    fn outboard(&self, root: &Blake3Root) -> io::Result<Option<Vec<u8>>>;
    /// Open a file's stored content, whose signed size is `size`, for positioned reads. A
    /// store that can tell the stored object is not what it should be (not a regular file, not
    /// `size` bytes) answers an error of kind `InvalidData`, which counts as corruption.
    fn open_content(&self, root: &Blake3Root, size: u64) -> io::Result<Arc<dyn ContentReader>>;
}

/// A borrowed store is a store (a walk over `&Store` needs no `Arc` of the store itself).
impl<T: TreeStore + ?Sized> TreeStore for &T {
    fn dir_node(&self, digest: &DirDigest) -> io::Result<Option<Vec<u8>>> {
        (**self).dir_node(digest)
    }
    fn outboard(&self, root: &Blake3Root) -> io::Result<Option<Vec<u8>>> {
        (**self).outboard(root)
    }
    fn open_content(&self, root: &Blake3Root, size: u64) -> io::Result<Arc<dyn ContentReader>> {
        (**self).open_content(root, size)
    }
}

/// Positioned reads of one stored file's content (a `std::fs::File`, or bytes in memory).
pub trait ContentReader: Send + Sync {
    /// Read up to `buf.len()` bytes at `offset`; fewer only at the end of what is stored.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ContentReader for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

impl ContentReader for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset.min(self.len() as u64)) as usize;
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Why something could not be read verified. Every variant means: nothing was released.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The store lacks what the signed tree names (a missing object or database value).
    #[error("{what} is missing from the store")]
    Missing { what: String },
    /// Stored bytes do not match the digest the signed tree names: tampering or corruption.
    #[error("{what} failed verification: expected {expected}, found {found}")]
    Corrupt {
        what: String,
        /// The block of file content that failed, when it is one.
        block: Option<BlockIndex>,
        expected: String,
        found: String,
        /// Why the block failed, as the outboard verifier said it (`None` for a directory
        /// node, an outboard or an object that is wrong as a whole).
        #[source]
        source: Option<Box<VerifyError>>,
    },
    /// Bytes that hash correctly but do not decode (cannot happen for what `ct` wrote).
    #[error("{what} does not decode: {source}")]
    Decode { what: String, source: DecodeError },
    /// Reading the store failed.
    #[error("reading {what}: {source}")]
    Io { what: String, source: io::Error },
    /// A read past the end of a file or of a block that does not exist.
    #[error("{0}")]
    OutOfRange(String),
}

impl TreeError {
    /// True when the store's bytes are wrong (as opposed to missing or unreadable).
    pub fn is_corruption(&self) -> bool {
        matches!(self, TreeError::Corrupt { .. } | TreeError::Decode { .. })
    }
    /// The outboard verifier's finding, when a block of file content failed verification.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            TreeError::Corrupt { source, .. } => source.as_deref(),
            _ => None,
        }
    }
}

/// A tree store read through verification.
pub struct VerifiedTree<S: ?Sized> {
    store: Arc<S>,
}

impl<S: ?Sized> Clone for VerifiedTree<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<S: TreeStore + ?Sized> VerifiedTree<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    /// The directory node named `digest`, checked against it and decoded.
    pub fn dir(&self, digest: &DirDigest) -> Result<DirNode, TreeError> {
        let what = || format!("directory node {digest}");
        let bytes = self
            .store
            .dir_node(digest)
            .map_err(|source| TreeError::Io {
                what: what(),
                source,
            })?
            .ok_or_else(|| TreeError::Missing { what: what() })?;
        if bytes.len() > MAX_STORED_VALUE_BYTES {
            return Err(TreeError::Corrupt {
                what: what(),
                block: None,
                expected: format!("at most {MAX_STORED_VALUE_BYTES} bytes"),
                found: format!("{} bytes", bytes.len()),
                source: None,
            });
        }
        let found = dir_digest(&bytes);
        if found != *digest {
            return Err(TreeError::Corrupt {
                what: what(),
                block: None,
                expected: digest.to_string(),
                found: found.to_string(),
                source: None,
            });
        }
        DirNode::decode(&bytes).map_err(|source| TreeError::Decode {
            what: what(),
            source,
        })
    }

    /// Open the file whose content root is `root` and whose signed size is `size`. Its outboard
    /// is fetched now (and checked, record by record, by every block read).
    pub fn open_file(&self, root: &Blake3Root, size: u64) -> Result<VerifiedFile, TreeError> {
        let ob = if outboard_len(size) == 0 {
            Vec::new()
        } else {
            let what = || format!("the outboard of {root}");
            let ob = self
                .store
                .outboard(root)
                .map_err(|source| TreeError::Io {
                    what: what(),
                    source,
                })?
                .ok_or_else(|| TreeError::Missing { what: what() })?;
            if ob.len() as u64 != outboard_len(size) {
                return Err(TreeError::Corrupt {
                    what: what(),
                    block: None,
                    expected: format!("{} bytes", outboard_len(size)),
                    found: format!("{} bytes", ob.len()),
                    source: None,
                });
            }
            ob
        };
        let content = self.store.open_content(root, size).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                TreeError::Missing {
                    what: format!("file object {root}"),
                }
            } else if source.kind() == io::ErrorKind::InvalidData {
                TreeError::Corrupt {
                    what: format!("file object {root}"),
                    block: None,
                    expected: format!("a regular file of {size} bytes"),
                    found: source.to_string(),
                    source: None,
                }
            } else {
                TreeError::Io {
                    what: format!("file object {root}"),
                    source,
                }
            }
        })?;
        Ok(VerifiedFile {
            root: *root,
            size,
            outboard: Arc::new(ob),
            content,
        })
    }
}

/// One open file: every read is verified block by block before it is returned.
#[derive(Clone)]
pub struct VerifiedFile {
    root: Blake3Root,
    size: u64,
    outboard: Arc<Vec<u8>>,
    content: Arc<dyn ContentReader>,
}

impl fmt::Debug for VerifiedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedFile({}, {} bytes)", self.root, self.size)
    }
}

impl VerifiedFile {
    pub fn root(&self) -> &Blake3Root {
        &self.root
    }
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Blocks `first..=last` covering bytes `offset..offset+len` (clamped to the file).
    pub fn blocks_for(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        if offset >= self.size || len == 0 {
            return None;
        }
        let end = offset.saturating_add(len).min(self.size);
        Some((
            offset / VERIFY_BLOCK_SIZE_V1,
            (end - 1) / VERIFY_BLOCK_SIZE_V1,
        ))
    }

    /// Read and verify blocks `first..=last` into `out` (cleared first): one positioned read,
    /// then each block checked before the next. On any error `out` holds nothing usable.
    pub fn read_blocks(&self, first: u64, last: u64, out: &mut Vec<u8>) -> Result<(), TreeError> {
        out.clear();
        let Some(len) = self.span_len(first, last) else {
            return Err(self.out_of_range(first, last));
        };
        out.resize(len, 0);
        let r = self.read_blocks_into(first, last, out);
        if r.is_err() {
            out.clear();
        }
        r.map(|_| ())
    }

    /// Bytes of blocks `first..=last` (None if they are not all in the file).
    pub fn span_len(&self, first: u64, last: u64) -> Option<usize> {
        let n = block_count(self.size);
        if first > last || last >= n {
            return None;
        }
        let bs = VERIFY_BLOCK_SIZE_V1;
        Some((((last + 1) * bs).min(self.size) - first * bs) as usize)
    }

    fn out_of_range(&self, first: u64, last: u64) -> TreeError {
        TreeError::OutOfRange(format!(
            "blocks {first}..={last} of a file of {} blocks",
            block_count(self.size)
        ))
    }

    /// [`VerifiedFile::read_blocks`] into a buffer the caller keeps (no allocation, no
    /// zero-filling: a reused buffer serves every read). `out` must hold at least
    /// [`VerifiedFile::span_len`] bytes; the verified bytes are `out[..n]` for the `n` returned.
    /// On an error nothing in `out` may be used: it can hold unverified bytes.
    pub fn read_blocks_into(
        &self,
        first: u64,
        last: u64,
        out: &mut [u8],
    ) -> Result<usize, TreeError> {
        let Some(len) = self.span_len(first, last) else {
            return Err(self.out_of_range(first, last));
        };
        if out.len() < len {
            return Err(TreeError::OutOfRange(format!(
                "a buffer of {} bytes for blocks {first}..={last} ({len} bytes)",
                out.len()
            )));
        }
        let out = &mut out[..len];
        let bs = VERIFY_BLOCK_SIZE_V1;
        let start = first * bs;
        let mut got = 0usize;
        while got < out.len() {
            match self.content.read_at(&mut out[got..], start + got as u64) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TreeError::Io {
                        what: format!("file object {}", self.root),
                        source,
                    });
                }
            }
        }
        if got < out.len() {
            // A short object: report the first block it cuts.
            let b = start / bs + got as u64 / bs;
            return Err(TreeError::Corrupt {
                what: format!("file object {}", self.root),
                block: Some(BlockIndex(b)),
                expected: format!("{} bytes", self.size),
                found: format!("{} bytes", start + got as u64),
                source: None,
            });
        }
        out.chunks(bs as usize)
            .zip(first..)
            .try_for_each(|(bytes, i)| self.verify(BlockIndex(i), bytes))?;
        Ok(len)
    }

    /// Read and verify one block.
    pub fn read_block(&self, index: BlockIndex) -> Result<Vec<u8>, TreeError> {
        let mut out = Vec::new();
        self.read_blocks(index.0, index.0, &mut out)?;
        Ok(out)
    }

    /// Read `len` bytes at `offset` (fewer at the end of the file), every covering block verified.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, TreeError> {
        let Some((first, last)) = self.blocks_for(offset, len) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        self.read_blocks(first, last, &mut out)?;
        let skip = (offset - first * VERIFY_BLOCK_SIZE_V1) as usize;
        let take = (len.min(self.size - offset)) as usize;
        out.drain(..skip);
        out.truncate(take);
        Ok(out)
    }

    fn verify(&self, index: BlockIndex, bytes: &[u8]) -> Result<(), TreeError> {
        verify_block(&self.root, self.size, &self.outboard, index, bytes).map_err(|e| match &e {
            VerifyError::Mismatch {
                block,
                node,
                expected,
                found,
            } => TreeError::Corrupt {
                what: format!("file object {} at {node}", self.root),
                block: Some(*block),
                expected: expected.to_string(),
                found: found.to_string(),
                source: Some(Box::new(e)),
            },
            other => TreeError::Corrupt {
                what: format!("file object {}", self.root),
                block: Some(index),
                expected: "a verifiable block".into(),
                found: other.to_string(),
                source: Some(Box::new(e)),
            },
        })
    }
}

/// A tree held in memory: the directory nodes of a sealed [`super::Rootfs`], the outboards
/// and contents of its files. For tests of readers (FUSE, export): entries can be tampered with
/// to exercise the failure paths. Not part of the public API: only with the `testing` feature.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemoryTree {
    pub dirs: std::sync::RwLock<std::collections::HashMap<DirDigest, Vec<u8>>>,
    pub outboards: std::sync::RwLock<std::collections::HashMap<Blake3Root, Vec<u8>>>,
    pub contents: std::sync::RwLock<std::collections::HashMap<Blake3Root, Arc<Vec<u8>>>>,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryTree {
    /// The tree of `rootfs` with file contents from `files` (as kept by a `MemorySink`).
    pub fn new(
        rootfs: &super::Rootfs,
        files: &std::collections::HashMap<Blake3Root, Vec<u8>>,
    ) -> Self {
        let t = Self::default();
        t.dirs
            .write()
            .expect("fresh lock")
            .extend(rootfs.dirs.iter().map(|(k, v)| (*k, v.clone())));
        for (root, data) in files {
            let (_, ob, _) = super::Outboard::compute(&data[..]).expect("memory reads");
            if !ob.as_bytes().is_empty() {
                t.outboards
                    .write()
                    .expect("fresh lock")
                    .insert(*root, ob.into_bytes());
            }
            t.contents
                .write()
                .expect("fresh lock")
                .insert(*root, Arc::new(data.clone()));
        }
        t
    }
}

#[cfg(any(test, feature = "testing"))]
impl TreeStore for MemoryTree {
    fn dir_node(&self, digest: &DirDigest) -> io::Result<Option<Vec<u8>>> {
        Ok(self.dirs.read().expect("lock").get(digest).cloned())
    }
    fn outboard(&self, root: &Blake3Root) -> io::Result<Option<Vec<u8>>> {
        Ok(self.outboards.read().expect("lock").get(root).cloned())
    }
    fn open_content(&self, root: &Blake3Root, _size: u64) -> io::Result<Arc<dyn ContentReader>> {
        match self.contents.read().expect("lock").get(root) {
            Some(c) => Ok(Arc::new(c.as_ref().clone())),
            None => Err(io::Error::new(io::ErrorKind::NotFound, root.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::node::{DirEntry, Link, Metadata, Payload};

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    fn tree_with(files: &[Vec<u8>]) -> (MemoryTree, Vec<(Blake3Root, u64)>) {
        let t = MemoryTree::default();
        let mut out = vec![];
        for d in files {
            let (root, ob, size) = crate::rootfs::Outboard::compute(&d[..]).unwrap();
            t.outboards.write().unwrap().insert(root, ob.into_bytes());
            t.contents
                .write()
                .unwrap()
                .insert(root, Arc::new(d.clone()));
            out.push((root, size));
        }
        (t, out)
    }

    #[test]
    fn reads_match_the_source_at_every_edge() {
        let bs = VERIFY_BLOCK_SIZE_V1 as usize;
        let sizes = [0, 1, bs - 1, bs, bs + 1, 3 * bs + 17];
        let files: Vec<Vec<u8>> = sizes.iter().map(|&n| data(n)).collect();
        let (t, roots) = tree_with(&files);
        let vt = VerifiedTree::new(Arc::new(t));
        for (d, (root, size)) in files.iter().zip(&roots) {
            let f = vt.open_file(root, *size).unwrap();
            for (off, len) in [(0, 1), (0, 10_000_000), (bs as u64 - 3, 7), (1, bs as u64)] {
                let got = f.read_at(off, len).unwrap();
                let s = (off as usize).min(d.len());
                let e = (off as usize + len as usize).min(d.len());
                assert_eq!(got, d[s..e], "size {size} off {off} len {len}");
            }
        }
    }

    #[test]
    fn a_flipped_byte_fails_only_its_block() {
        let bs = VERIFY_BLOCK_SIZE_V1 as usize;
        let d = data(4 * bs + 5);
        let (t, roots) = tree_with(std::slice::from_ref(&d));
        let (root, size) = roots[0];
        {
            let mut c = t.contents.write().unwrap();
            let mut bad = d.clone();
            bad[2 * bs + 9] ^= 1;
            c.insert(root, Arc::new(bad));
        }
        let vt = VerifiedTree::new(Arc::new(t));
        let f = vt.open_file(&root, size).unwrap();
        for b in 0..5u64 {
            let r = f.read_block(BlockIndex(b));
            if b == 2 {
                match r {
                    Err(TreeError::Corrupt { block, .. }) => assert_eq!(block, Some(BlockIndex(2))),
                    other => panic!("block 2 should fail, got {other:?}"),
                }
            } else {
                let s = b as usize * bs;
                assert_eq!(r.unwrap(), d[s..(s + bs).min(d.len())]);
            }
        }
        // A read spanning the bad block releases nothing at all.
        assert!(f.read_at(bs as u64, 3 * bs as u64).is_err());
    }

    #[test]
    fn a_failed_block_keeps_the_verifiers_finding_as_its_typed_source() {
        let bs = VERIFY_BLOCK_SIZE_V1 as usize;
        let d = data(4 * bs + 5);
        let (t, roots) = tree_with(std::slice::from_ref(&d));
        let (root, size) = roots[0];
        let mut bad = d.clone();
        bad[bs + 1] ^= 1;
        t.contents.write().unwrap().insert(root, Arc::new(bad));
        let vt = VerifiedTree::new(Arc::new(t));
        let e = vt
            .open_file(&root, size)
            .unwrap()
            .read_block(BlockIndex(1))
            .unwrap_err();
        assert!(e.is_corruption());
        match e.verify_error() {
            Some(VerifyError::Mismatch { block, .. }) => assert_eq!(*block, BlockIndex(1)),
            other => panic!("expected a mismatch of block 1, got {other:?}"),
        }
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), e.verify_error().unwrap().to_string());
        // Errors that are not about a block have none.
        let missing = vt
            .open_file(&Blake3Root::from_bytes([3; 32]), 1)
            .unwrap_err();
        assert!(missing.verify_error().is_none());
    }

    #[test]
    fn truncated_objects_and_outboards_are_refused() {
        let bs = VERIFY_BLOCK_SIZE_V1 as usize;
        let d = data(2 * bs + 1);
        let (t, roots) = tree_with(std::slice::from_ref(&d));
        let (root, size) = roots[0];
        t.contents
            .write()
            .unwrap()
            .insert(root, Arc::new(d[..bs + 10].to_vec()));
        let t = Arc::new(t);
        let vt = VerifiedTree::new(t.clone());
        let f = vt.open_file(&root, size).unwrap();
        assert!(f.read_block(BlockIndex(0)).is_ok());
        assert!(f.read_block(BlockIndex(1)).is_err());
        t.outboards.write().unwrap().get_mut(&root).unwrap().pop();
        assert!(matches!(
            vt.open_file(&root, size),
            Err(TreeError::Corrupt { .. })
        ));
        t.outboards.write().unwrap().remove(&root);
        assert!(matches!(
            vt.open_file(&root, size),
            Err(TreeError::Missing { .. })
        ));
    }

    #[test]
    fn directory_nodes_are_checked_against_their_digest() {
        let node = DirNode {
            entries: vec![DirEntry {
                name: b"f".to_vec(),
                meta: Metadata::default(),
                payload: Payload::File {
                    size: 0,
                    root: Blake3Root::of(b""),
                    link: Link::SINGLE,
                },
            }],
        };
        let bytes = node.encode();
        let digest = node.digest();
        let t = MemoryTree::default();
        t.dirs.write().unwrap().insert(digest, bytes.clone());
        let t = Arc::new(t);
        let vt = VerifiedTree::new(t.clone());
        assert_eq!(vt.dir(&digest).unwrap(), node);
        let mut bad = bytes;
        *bad.last_mut().unwrap() ^= 1;
        t.dirs.write().unwrap().insert(digest, bad);
        assert!(matches!(vt.dir(&digest), Err(TreeError::Corrupt { .. })));
        assert!(matches!(
            vt.dir(&DirNode::default().digest()),
            Err(TreeError::Missing { .. })
        ));
    }
}
