//! Block-level verification of file content against its BLAKE3 root (spec/rootfs.md §4).
//!
//! A file is cut into verification blocks of [`VERIFY_BLOCK_SIZE_V1`] bytes (the last one may be
//! short). Each block is a complete BLAKE3 subtree, so the BLAKE3 tree above the blocks is a
//! binary tree whose left subtrees are complete. The *outboard* stores that tree's parent nodes
//! (left and right chaining value, 64 bytes each) in pre-order; a file of `n` blocks has `n - 1`
//! of them and an empty file or a file of one block has none. `verify_block` walks from the
//! root down to one block, checking every node before trusting the next, so any flipped byte in
//! a block or in the outboard fails exactly the blocks below the damaged node.
//!
//! Tree arithmetic is pure; `OutboardBuilder` is the only streaming part and holds 32 bytes per
//! block (0.05 % of the file at 64 KiB blocks), never the file.

use super::ids::{Blake3Root, BlockIndex};
use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use std::fmt;
use std::io::{self, Read};

/// Bytes per verification block. Changing this breaks the format: every stored outboard, and
/// the meaning of every block index, depends on it. Chosen by measurement (spec/rootfs.md §4.3).
pub const VERIFY_BLOCK_SIZE_V1: u64 = 64 * 1024;

/// Bytes per outboard record: a parent node's left and right chaining values.
pub const OUTBOARD_RECORD_LEN: usize = 64;

/// Smallest block size the tree arithmetic allows (one BLAKE3 chunk).
const MIN_BLOCK_SIZE: u64 = blake3::CHUNK_LEN as u64;

/// Read buffer for [`Outboard::compute`]: many blocks per read, so I/O calls stay rare.
const COMPUTE_BUF_LEN: usize = 1 << 20;

/// The parent nodes of a file's BLAKE3 tree above the verification blocks, in pre-order.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Outboard(Vec<u8>);

impl fmt::Debug for Outboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Outboard({} records)",
            self.0.len() / OUTBOARD_RECORD_LEN
        )
    }
}

impl Outboard {
    /// Hash everything `reader` yields; returns the content root, the outboard and the size.
    /// Memory: one read buffer plus 32 bytes per block.
    pub fn compute(reader: impl Read) -> io::Result<(Blake3Root, Outboard, u64)> {
        Self::compute_with_block_size(reader, VERIFY_BLOCK_SIZE_V1)
    }

    /// [`Outboard::compute`] at another block size. For measurement only: v1 uses
    /// [`VERIFY_BLOCK_SIZE_V1`] and nothing else.
    #[doc(hidden)]
    pub fn compute_with_block_size(
        mut reader: impl Read,
        block_size: u64,
    ) -> io::Result<(Blake3Root, Outboard, u64)> {
        let mut b = OutboardBuilder::with_block_size(block_size);
        let mut buf = vec![0u8; COMPUTE_BUF_LEN];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            b.update(&buf[..n]);
        }
        Ok(b.finalize())
    }

    /// Wrap stored outboard bytes (untrusted: `verify_block` checks every record it uses).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Number of verification blocks of a file of `size` bytes (an empty file has one, empty).
pub fn block_count(size: u64) -> u64 {
    block_count_at(size, VERIFY_BLOCK_SIZE_V1)
}

/// Exact outboard length for a file of `size` bytes.
pub fn outboard_len(size: u64) -> u64 {
    (block_count(size) - 1) * OUTBOARD_RECORD_LEN as u64
}

/// Byte offset and length of block `index` of a file of `size` bytes, or `None` past the end.
pub fn block_span(size: u64, index: BlockIndex) -> Option<(u64, u64)> {
    block_span_at(size, index, VERIFY_BLOCK_SIZE_V1)
}

fn block_count_at(size: u64, bs: u64) -> u64 {
    size.div_ceil(bs).max(1)
}

fn block_span_at(size: u64, index: BlockIndex, bs: u64) -> Option<(u64, u64)> {
    if index.0 >= block_count_at(size, bs) {
        return None;
    }
    let start = index.0 * bs;
    Some((start, (size - start).min(bs)))
}

/// Number of blocks in the left subtree of a node covering `count >= 2` blocks: the largest
/// power of two strictly below `count` (BLAKE3's rule, which keeps left subtrees complete).
fn left_blocks(count: u64) -> u64 {
    debug_assert!(count >= 2);
    1 << (63 - (count - 1).leading_zeros())
}

/// Streaming computation of a content root and its outboard, for callers that write the
/// content somewhere while hashing it (the store's import).
pub struct OutboardBuilder {
    block_size: u64,
    hasher: blake3::Hasher,
    in_block: u64,
    total: u64,
    cvs: Vec<ChainingValue>,
}

impl Default for OutboardBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboardBuilder {
    pub fn new() -> Self {
        Self::with_block_size(VERIFY_BLOCK_SIZE_V1)
    }

    /// For measurement only (see [`Outboard::compute_with_block_size`]). `block_size` must be a
    /// power of two of at least 1024 bytes.
    #[doc(hidden)]
    pub fn with_block_size(block_size: u64) -> Self {
        assert!(block_size.is_power_of_two() && block_size >= MIN_BLOCK_SIZE);
        Self {
            block_size,
            hasher: blake3::Hasher::new(),
            in_block: 0,
            total: 0,
            cvs: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.in_block == self.block_size {
                // More data follows a full block, so that block is not the root: seal it.
                self.cvs.push(self.hasher.finalize_non_root());
                self.hasher = blake3::Hasher::new();
                self.hasher.set_input_offset(self.total);
                self.in_block = 0;
            }
            let take = ((self.block_size - self.in_block) as usize).min(data.len());
            self.hasher.update(&data[..take]);
            self.in_block += take as u64;
            self.total += take as u64;
            data = &data[take..];
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.total
    }
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The content root, the outboard and the size.
    pub fn finalize(mut self) -> (Blake3Root, Outboard, u64) {
        if self.cvs.is_empty() {
            return (
                self.hasher.finalize().into(),
                Outboard::default(),
                self.total,
            );
        }
        self.cvs.push(self.hasher.finalize_non_root());
        let n = self.cvs.len();
        let mut out = vec![0u8; (n - 1) * OUTBOARD_RECORD_LEN];
        let p = left_blocks(n as u64) as usize;
        let mut pos = 1;
        let l = build_subtree(&self.cvs[..p], &mut out, &mut pos);
        let r = build_subtree(&self.cvs[p..], &mut out, &mut pos);
        debug_assert_eq!(pos, n - 1);
        write_record(&mut out, 0, &l, &r);
        let root = merge_subtrees_root(&l, &r, Mode::Hash);
        (root.into(), Outboard(out), self.total)
    }
}

fn write_record(out: &mut [u8], record: usize, l: &ChainingValue, r: &ChainingValue) {
    let at = record * OUTBOARD_RECORD_LEN;
    out[at..at + 32].copy_from_slice(l);
    out[at + 32..at + 64].copy_from_slice(r);
}

/// Write the pre-order records of the non-root subtree over `cvs` starting at record `*pos`;
/// returns its chaining value. Recursion depth is at most 64 (log2 of the block count).
fn build_subtree(cvs: &[ChainingValue], out: &mut [u8], pos: &mut usize) -> ChainingValue {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let me = *pos;
    *pos += 1;
    let p = left_blocks(cvs.len() as u64) as usize;
    let l = build_subtree(&cvs[..p], out, pos);
    let r = build_subtree(&cvs[p..], out, pos);
    write_record(out, me, &l, &r);
    merge_subtrees_non_root(&l, &r, Mode::Hash)
}

/// A 32-byte hash or chaining value shown in hex in errors.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashHex(pub [u8; 32]);

impl fmt::Display for HashHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for HashHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where in the tree a verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeNode {
    /// The block's own bytes did not hash to what the tree says.
    Block,
    /// Outboard record `n` (0 = the root's children) does not hash to its parent's value.
    OutboardRecord(u64),
}

impl fmt::Display for TreeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Block => f.write_str("block content"),
            Self::OutboardRecord(n) => write!(f, "outboard record {n}"),
        }
    }
}

/// Why a block was not verified. Every variant means: do not release these bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{block} does not exist in a file of {size} bytes")]
    NoSuchBlock { block: BlockIndex, size: u64 },
    #[error("{block} is {found} bytes long; a file of {size} bytes needs {expected}")]
    BlockLength {
        block: BlockIndex,
        size: u64,
        expected: u64,
        found: u64,
    },
    #[error("outboard is {found} bytes long; a file of {size} bytes needs {expected}")]
    OutboardLength {
        size: u64,
        expected: u64,
        found: u64,
    },
    #[error("{block} failed verification at {node}: expected {expected}, found {found}")]
    Mismatch {
        block: BlockIndex,
        node: TreeNode,
        expected: HashHex,
        found: HashHex,
    },
}

/// Check that `bytes` are block `index` of the file whose content root is `root` and whose size
/// is `size`, using the (untrusted) `outboard`. Cost: hashing the block plus one parent-node
/// compression per tree level (about log2 of the block count).
pub fn verify_block(
    root: &Blake3Root,
    size: u64,
    outboard: &[u8],
    index: BlockIndex,
    bytes: &[u8],
) -> Result<(), VerifyError> {
    verify_block_with_block_size(root, size, outboard, index, bytes, VERIFY_BLOCK_SIZE_V1)
}

/// [`verify_block`] at another block size. For measurement only.
#[doc(hidden)]
pub fn verify_block_with_block_size(
    root: &Blake3Root,
    size: u64,
    outboard: &[u8],
    index: BlockIndex,
    bytes: &[u8],
    bs: u64,
) -> Result<(), VerifyError> {
    assert!(bs.is_power_of_two() && bs >= MIN_BLOCK_SIZE);
    let n = block_count_at(size, bs);
    let (_, expected_len) =
        block_span_at(size, index, bs).ok_or(VerifyError::NoSuchBlock { block: index, size })?;
    if bytes.len() as u64 != expected_len {
        return Err(VerifyError::BlockLength {
            block: index,
            size,
            expected: expected_len,
            found: bytes.len() as u64,
        });
    }
    let want_ob = (n - 1) * OUTBOARD_RECORD_LEN as u64;
    if outboard.len() as u64 != want_ob {
        return Err(VerifyError::OutboardLength {
            size,
            expected: want_ob,
            found: outboard.len() as u64,
        });
    }
    let mismatch = |node, expected: [u8; 32], found: [u8; 32]| VerifyError::Mismatch {
        block: index,
        node,
        expected: HashHex(expected),
        found: HashHex(found),
    };
    if n == 1 {
        let found = *blake3::hash(bytes).as_bytes();
        return if &found == root.as_bytes() {
            Ok(())
        } else {
            Err(mismatch(TreeNode::Block, *root.as_bytes(), found))
        };
    }
    let (mut record, mut start, mut count) = (0u64, 0u64, n);
    let mut expected = *root.as_bytes();
    while count > 1 {
        let at = (record as usize) * OUTBOARD_RECORD_LEN;
        let l: ChainingValue = outboard[at..at + 32].try_into().expect("32 bytes");
        let r: ChainingValue = outboard[at + 32..at + 64].try_into().expect("32 bytes");
        let found = if record == 0 {
            *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
        } else {
            merge_subtrees_non_root(&l, &r, Mode::Hash)
        };
        if found != expected {
            return Err(mismatch(TreeNode::OutboardRecord(record), expected, found));
        }
        let p = left_blocks(count);
        if index.0 < start + p {
            expected = l;
            record += 1;
            count = p;
        } else {
            expected = r;
            record += p;
            start += p;
            count -= p;
        }
    }
    let found = blake3::Hasher::new()
        .set_input_offset(index.0 * bs)
        .update(bytes)
        .finalize_non_root();
    if found != expected {
        return Err(mismatch(TreeNode::Block, expected, found));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BS: u64 = VERIFY_BLOCK_SIZE_V1;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
            .collect()
    }

    fn blocks(d: &[u8]) -> Vec<&[u8]> {
        if d.is_empty() {
            vec![d]
        } else {
            d.chunks(BS as usize).collect()
        }
    }

    /// The records on the path of `block` (the only ones its verification reads).
    fn path_records(n: u64, block: u64) -> Vec<u64> {
        let (mut rec, mut start, mut count, mut out) = (0, 0, n, vec![]);
        while count > 1 {
            out.push(rec);
            let p = left_blocks(count);
            if block < start + p {
                rec += 1;
                count = p;
            } else {
                rec += p;
                start += p;
                count -= p;
            }
        }
        out
    }

    fn check_all(len: usize, seed: u8) {
        let d = data(len, seed);
        let (root, ob, size) = Outboard::compute(&d[..]).unwrap();
        assert_eq!(size, len as u64);
        assert_eq!(
            root,
            Blake3Root::of(&d),
            "root differs from blake3::hash, len {len}"
        );
        assert_eq!(ob.as_bytes().len() as u64, outboard_len(size));
        for (i, b) in blocks(&d).iter().enumerate() {
            verify_block(&root, size, ob.as_bytes(), BlockIndex(i as u64), b).unwrap();
        }
    }

    #[test]
    fn edge_sizes_match_blake3_and_verify() {
        let b = BS as usize;
        for len in [
            0,
            1,
            1023,
            1024,
            1025,
            b - 1,
            b,
            b + 1,
            2 * b,
            3 * b - 7,
            4 * b,
            5 * b + 1,
        ] {
            check_all(len, 7);
        }
    }

    #[test]
    fn builder_is_independent_of_write_sizes() {
        let d = data(3 * BS as usize + 500, 1);
        let want = Outboard::compute(&d[..]).unwrap();
        let mut b = OutboardBuilder::new();
        for piece in d.chunks(777) {
            b.update(piece);
        }
        assert_eq!(b.finalize(), want);
    }

    #[test]
    fn refuses_wrong_lengths_and_indexes() {
        let d = data(2 * BS as usize + 10, 3);
        let (root, ob, size) = Outboard::compute(&d[..]).unwrap();
        let last = &d[2 * BS as usize..];
        assert!(matches!(
            verify_block(&root, size, ob.as_bytes(), BlockIndex(3), last),
            Err(VerifyError::NoSuchBlock { .. })
        ));
        assert!(matches!(
            verify_block(&root, size, ob.as_bytes(), BlockIndex(2), &last[1..]),
            Err(VerifyError::BlockLength {
                expected: 10,
                found: 9,
                ..
            })
        ));
        assert!(matches!(
            verify_block(&root, size, &ob.as_bytes()[1..], BlockIndex(2), last),
            Err(VerifyError::OutboardLength { .. })
        ));
        // The size is part of what is verified: claiming a shorter file fails.
        assert!(verify_block(&root, size - 1, ob.as_bytes(), BlockIndex(2), &last[1..]).is_err());
    }

    #[test]
    fn mismatch_names_block_expected_and_found() {
        let mut d = data(BS as usize * 2, 9);
        let (root, ob, size) = Outboard::compute(&d[..]).unwrap();
        d[BS as usize + 5] ^= 1;
        let e =
            verify_block(&root, size, ob.as_bytes(), BlockIndex(1), &d[BS as usize..]).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("block 1 failed verification at block content: expected "));
        assert!(matches!(
            e,
            VerifyError::Mismatch {
                block: BlockIndex(1),
                node: TreeNode::Block,
                ..
            }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn root_equals_blake3_hash(len in 0usize..(9 * BS as usize), seed: u8) {
            check_all(len, seed);
        }

        #[test]
        fn tampering_fails_exactly_the_affected_blocks(
            nblocks in 1u64..12,
            tail in 0u64..BS,
            flip_in_outboard: bool,
            pick: u64,
            bit in 0u8..8,
        ) {
            let len = ((nblocks - 1) * BS + tail.max(1)) as usize;
            let mut d = data(len, 5);
            let (root, ob, size) = Outboard::compute(&d[..]).unwrap();
            let mut ob = ob.into_bytes();
            let n = block_count(size);
            let mut affected = vec![false; n as usize];
            if flip_in_outboard && !ob.is_empty() {
                let byte = (pick % ob.len() as u64) as usize;
                ob[byte] ^= 1 << bit;
                let rec = (byte / OUTBOARD_RECORD_LEN) as u64;
                for b in 0..n {
                    affected[b as usize] = path_records(n, b).contains(&rec);
                }
            } else {
                let byte = (pick % len as u64) as usize;
                d[byte] ^= 1 << bit;
                affected[byte / BS as usize] = true;
            }
            for (i, b) in blocks(&d).iter().enumerate() {
                let r = verify_block(&root, size, &ob, BlockIndex(i as u64), b);
                prop_assert_eq!(r.is_err(), affected[i], "block {} of {}", i, n);
            }
        }
    }
}
