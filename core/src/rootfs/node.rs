//! Directory nodes and the root record: their model, their one canonical byte encoding, their
//! digests (spec/rootfs.md §5–6), and a decoder for untrusted bytes (store values) that checks
//! every rule the encoder follows, with finite bounds, and never panics.
//!
//! ```text
//! directory node = DIR_MAGIC_V1 (8) | count u32 | entry * count        (entries sorted by name)
//! entry          = name_len u16 | name | kind u8 | metadata | payload
//! metadata       = mode u32 | uid u32 | gid u32 | mtime_s i64 | mtime_ns u32
//!                  | xattr_count u16 | (name_len u8 | name | value_len u32 | value) * count
//! payload        = file:      size u64 | content root (32) | nlink u32 | link_id u64
//!                  directory: child directory digest (32)
//!                  symlink:   target_len u16 | target | nlink u32 | link_id u64
//!                  char/block device: major u32 | minor u32 | nlink u32 | link_id u64
//!                  fifo:      nlink u32 | link_id u64
//! root record    = ROOT_MAGIC_V1 (8) | metadata | root directory digest (32)
//! ```
//! All integers are big-endian. Changing any of this breaks the format.

use super::ids::{Blake3Root, DirDigest, RootfsDigest};
use std::collections::BTreeMap;
use std::fmt;

/// First bytes of every directory node. Changing this breaks the format.
pub const DIR_MAGIC_V1: [u8; 8] = *b"ctdir\0\0\x01";
/// First bytes of the root record. Changing this breaks the format.
pub const ROOT_MAGIC_V1: [u8; 8] = *b"ctroot\0\x01";
/// BLAKE3 `derive_key` context for directory nodes. Changing this breaks the format.
pub const DIR_CONTEXT_V1: &str = "cerro-torre rootfs v1 directory node";
/// BLAKE3 `derive_key` context for the root record. Changing this breaks the format.
pub const ROOT_CONTEXT_V1: &str = "cerro-torre rootfs v1 root record";

/// Longest name of one directory entry (Linux NAME_MAX).
pub const MAX_NAME_V1: usize = 255;
/// Longest symlink target (Linux PATH_MAX less its NUL).
pub const MAX_SYMLINK_TARGET_V1: usize = 4095;
/// Most entries in one directory (untrusted-input bound; also refused at layer application).
pub const MAX_DIR_ENTRIES_V1: usize = 1 << 20;
/// Most xattrs on one entry.
pub const MAX_XATTRS_V1: usize = 1024;
/// Longest xattr name (Linux XATTR_NAME_MAX).
pub const MAX_XATTR_NAME_V1: usize = 255;
/// Longest xattr value (Linux XATTR_SIZE_MAX).
pub const MAX_XATTR_VALUE_V1: usize = 65536;
/// Permission bits kept in `mode` (rwx for all, setuid, setgid, sticky); the file type is `kind`.
pub const MODE_MASK: u32 = 0o7777;

/// Entry kind codes. Changing them breaks the format.
pub mod kind {
    pub const FILE: u8 = 1;
    pub const DIRECTORY: u8 = 2;
    pub const SYMLINK: u8 = 3;
    pub const CHAR_DEVICE: u8 = 4;
    pub const BLOCK_DEVICE: u8 = 5;
    pub const FIFO: u8 = 6;
}

/// Seconds and nanoseconds since the Unix epoch (`nanos < 10^9`; seconds may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// Inode metadata shared by every kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Permission bits only (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    /// Full xattr names (`security.capability`, `user.x`) to raw values, in name byte order.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Hard-link facts of a non-directory inode: how many paths name it in the whole rootfs and,
/// when more than one, the link group id they share (spec/rootfs.md §5.3). `id == 0` iff
/// `nlink == 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub nlink: u32,
    pub id: u64,
}

impl Link {
    pub const SINGLE: Link = Link { nlink: 1, id: 0 };
}

/// What an entry is, with its kind-specific payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    File {
        size: u64,
        root: Blake3Root,
        link: Link,
    },
    Directory {
        digest: DirDigest,
    },
    Symlink {
        target: Vec<u8>,
        link: Link,
    },
    CharDevice {
        major: u32,
        minor: u32,
        link: Link,
    },
    BlockDevice {
        major: u32,
        minor: u32,
        link: Link,
    },
    Fifo {
        link: Link,
    },
}

impl Payload {
    pub fn kind_code(&self) -> u8 {
        match self {
            Self::File { .. } => kind::FILE,
            Self::Directory { .. } => kind::DIRECTORY,
            Self::Symlink { .. } => kind::SYMLINK,
            Self::CharDevice { .. } => kind::CHAR_DEVICE,
            Self::BlockDevice { .. } => kind::BLOCK_DEVICE,
            Self::Fifo { .. } => kind::FIFO,
        }
    }
    pub fn link(&self) -> Option<Link> {
        match self {
            Self::Directory { .. } => None,
            Self::File { link, .. }
            | Self::Symlink { link, .. }
            | Self::CharDevice { link, .. }
            | Self::BlockDevice { link, .. }
            | Self::Fifo { link } => Some(*link),
        }
    }
}

/// One named entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub meta: Metadata,
    pub payload: Payload,
}

/// A directory's listing: entries in strictly increasing name byte order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirNode {
    pub entries: Vec<DirEntry>,
}

/// The record that identifies a rootfs: the root directory's own metadata and node digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRecord {
    pub meta: Metadata,
    pub dir: DirDigest,
}

/// Why bytes are not a valid node or root record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} at byte {offset}: {reason}")]
pub struct DecodeError {
    pub what: &'static str,
    pub offset: usize,
    pub reason: String,
}

/// True for a valid entry name: 1–255 bytes, no `/` or NUL, not `.` or `..`.
pub fn is_valid_name(n: &[u8]) -> bool {
    !n.is_empty()
        && n.len() <= MAX_NAME_V1
        && n != b"."
        && n != b".."
        && !n.iter().any(|&b| b == b'/' || b == 0)
}

// ---- encoding ----------------------------------------------------------------------------

fn put_meta(out: &mut Vec<u8>, m: &Metadata) {
    out.extend_from_slice(&m.mode.to_be_bytes());
    out.extend_from_slice(&m.uid.to_be_bytes());
    out.extend_from_slice(&m.gid.to_be_bytes());
    out.extend_from_slice(&m.mtime.secs.to_be_bytes());
    out.extend_from_slice(&m.mtime.nanos.to_be_bytes());
    out.extend_from_slice(&(m.xattrs.len() as u16).to_be_bytes());
    for (k, v) in &m.xattrs {
        out.push(k.len() as u8);
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
}

fn put_link(out: &mut Vec<u8>, l: &Link) {
    out.extend_from_slice(&l.nlink.to_be_bytes());
    out.extend_from_slice(&l.id.to_be_bytes());
}

impl DirNode {
    /// The canonical bytes. Defined only for nodes that `check` accepts (the builder only
    /// makes such nodes); a node decoded from bytes always re-encodes to the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.entries.len() * 64);
        out.extend_from_slice(&DIR_MAGIC_V1);
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.extend_from_slice(&(e.name.len() as u16).to_be_bytes());
            out.extend_from_slice(&e.name);
            out.push(e.payload.kind_code());
            put_meta(&mut out, &e.meta);
            match &e.payload {
                Payload::File { size, root, link } => {
                    out.extend_from_slice(&size.to_be_bytes());
                    out.extend_from_slice(root.as_bytes());
                    put_link(&mut out, link);
                }
                Payload::Directory { digest } => out.extend_from_slice(digest.as_bytes()),
                Payload::Symlink { target, link } => {
                    out.extend_from_slice(&(target.len() as u16).to_be_bytes());
                    out.extend_from_slice(target);
                    put_link(&mut out, link);
                }
                Payload::CharDevice { major, minor, link }
                | Payload::BlockDevice { major, minor, link } => {
                    out.extend_from_slice(&major.to_be_bytes());
                    out.extend_from_slice(&minor.to_be_bytes());
                    put_link(&mut out, link);
                }
                Payload::Fifo { link } => put_link(&mut out, link),
            }
        }
        out
    }

    /// Decode untrusted bytes, refusing anything `encode` would not have produced.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(bytes, "directory node");
        c.magic(&DIR_MAGIC_V1)?;
        let count = c.u32()? as usize;
        if count > MAX_DIR_ENTRIES_V1 {
            return Err(c.err(format!("{count} entries (limit {MAX_DIR_ENTRIES_V1})")));
        }
        // Each entry takes at least 40 bytes, so the input length bounds the allocation.
        let mut entries = Vec::with_capacity(count.min(bytes.len() / 40));
        for _ in 0..count {
            let name_at = c.pos;
            let name_len = c.u16()? as usize;
            let name = c.take(name_len)?.to_vec();
            if !is_valid_name(&name) {
                return Err(c.err_at(name_at, "invalid entry name"));
            }
            if let Some(prev) = entries.last().map(|e: &DirEntry| &e.name) {
                if prev.as_slice() >= name.as_slice() {
                    return Err(
                        c.err_at(name_at, "entries are not in strictly increasing name order")
                    );
                }
            }
            let kind_at = c.pos;
            let k = c.u8()?;
            let meta = c.meta()?;
            let payload = match k {
                kind::FILE => Payload::File {
                    size: c.u64()?,
                    root: Blake3Root::from_bytes(c.hash()?),
                    link: c.link()?,
                },
                kind::DIRECTORY => Payload::Directory {
                    digest: DirDigest::from_bytes(c.hash()?),
                },
                kind::SYMLINK => {
                    let at = c.pos;
                    let n = c.u16()? as usize;
                    let target = c.take(n)?.to_vec();
                    if target.is_empty()
                        || target.len() > MAX_SYMLINK_TARGET_V1
                        || target.contains(&0)
                    {
                        return Err(c.err_at(at, "invalid symlink target"));
                    }
                    Payload::Symlink {
                        target,
                        link: c.link()?,
                    }
                }
                kind::CHAR_DEVICE | kind::BLOCK_DEVICE => {
                    let dev_at = c.pos;
                    let (major, minor) = (c.u32()?, c.u32()?);
                    if major > super::tar::MAX_DEV_MAJOR_V1 || minor > super::tar::MAX_DEV_MINOR_V1
                    {
                        // Layer application never records these (§3.1): a node that holds one
                        // would be served as another device.
                        return Err(c.err_at(
                            dev_at,
                            format!("device number {major},{minor} does not fit Linux's dev_t"),
                        ));
                    }
                    let link = c.link()?;
                    if k == kind::CHAR_DEVICE {
                        Payload::CharDevice { major, minor, link }
                    } else {
                        Payload::BlockDevice { major, minor, link }
                    }
                }
                kind::FIFO => Payload::Fifo { link: c.link()? },
                other => return Err(c.err_at(kind_at, format!("unknown entry kind {other}"))),
            };
            entries.push(DirEntry {
                name,
                meta,
                payload,
            });
        }
        c.end()?;
        Ok(Self { entries })
    }

    /// The node's digest: BLAKE3 in `derive_key` mode with [`DIR_CONTEXT_V1`] over its encoding.
    pub fn digest(&self) -> DirDigest {
        dir_digest(&self.encode())
    }
}

/// The digest of an encoded directory node.
pub fn dir_digest(encoded: &[u8]) -> DirDigest {
    DirDigest::from_bytes(blake3::derive_key(DIR_CONTEXT_V1, encoded))
}

impl RootRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.extend_from_slice(&ROOT_MAGIC_V1);
        put_meta(&mut out, &self.meta);
        out.extend_from_slice(self.dir.as_bytes());
        out
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(bytes, "root record");
        c.magic(&ROOT_MAGIC_V1)?;
        let meta = c.meta()?;
        let dir = DirDigest::from_bytes(c.hash()?);
        c.end()?;
        Ok(Self { meta, dir })
    }
    /// The rootfs digest: BLAKE3 `derive_key` with [`ROOT_CONTEXT_V1`] over the encoding.
    pub fn digest(&self) -> RootfsDigest {
        RootfsDigest::from_bytes(blake3::derive_key(ROOT_CONTEXT_V1, &self.encode()))
    }
}

// ---- decoding ----------------------------------------------------------------------------

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Self { b, pos: 0, what }
    }
    fn err(&self, reason: impl Into<String>) -> DecodeError {
        self.err_at(self.pos, reason)
    }
    fn err_at(&self, offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            what: self.what,
            offset,
            reason: reason.into(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() - self.pos < n {
            return Err(self.err(format!("ends early (needs {n} more bytes)")));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn hash(&mut self) -> Result<[u8; 32], DecodeError> {
        self.array()
    }
    fn magic(&mut self, m: &[u8; 8]) -> Result<(), DecodeError> {
        if &self.array::<8>()? != m {
            return Err(self.err_at(0, "wrong magic (not this format or version)"));
        }
        Ok(())
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.pos != self.b.len() {
            return Err(self.err("trailing bytes"));
        }
        Ok(())
    }
    fn meta(&mut self) -> Result<Metadata, DecodeError> {
        let at = self.pos;
        let mode = self.u32()?;
        if mode & !MODE_MASK != 0 {
            return Err(self.err_at(at, format!("mode {mode:#o} has bits outside 0o7777")));
        }
        let uid = self.u32()?;
        let gid = self.u32()?;
        let secs = i64::from_be_bytes(self.array()?);
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(self.err_at(self.pos - 4, "mtime nanoseconds not below 10^9"));
        }
        let n = self.u16()? as usize;
        if n > MAX_XATTRS_V1 {
            return Err(self.err(format!("{n} xattrs (limit {MAX_XATTRS_V1})")));
        }
        let mut xattrs = BTreeMap::new();
        let mut prev: Option<&[u8]> = None;
        for _ in 0..n {
            let kat = self.pos;
            let kl = self.u8()? as usize;
            let k = self.take(kl)?;
            if k.is_empty() || k.contains(&0) {
                return Err(self.err_at(kat, "invalid xattr name"));
            }
            if prev.is_some_and(|p| p >= k) {
                return Err(self.err_at(kat, "xattrs are not in strictly increasing name order"));
            }
            prev = Some(k);
            let vl = self.u32()? as usize;
            if vl > MAX_XATTR_VALUE_V1 {
                return Err(self.err(format!("xattr value of {vl} bytes")));
            }
            let v = self.take(vl)?;
            xattrs.insert(k.to_vec(), v.to_vec());
        }
        Ok(Metadata {
            mode,
            uid,
            gid,
            mtime: Timestamp { secs, nanos },
            xattrs,
        })
    }
    fn link(&mut self) -> Result<Link, DecodeError> {
        let at = self.pos;
        let nlink = self.u32()?;
        let id = self.u64()?;
        if nlink == 0 || (nlink == 1) != (id == 0) {
            return Err(self.err_at(at, format!("link count {nlink} with link group {id}")));
        }
        Ok(Link { nlink, id })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> DirNode {
        let meta = |mode| Metadata {
            mode,
            uid: 1000,
            gid: 100,
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 5,
            },
            xattrs: BTreeMap::new(),
        };
        let mut cap = meta(0o755);
        cap.xattrs.insert(
            b"security.capability".to_vec(),
            vec![1, 0, 0, 2, 0x20, 0, 0, 0],
        );
        cap.xattrs.insert(b"user.a".to_vec(), vec![]);
        DirNode {
            entries: vec![
                DirEntry {
                    name: b"bin".to_vec(),
                    meta: meta(0o755),
                    payload: Payload::Directory {
                        digest: DirNode::default().digest(),
                    },
                },
                DirEntry {
                    name: b"dev-null".to_vec(),
                    meta: meta(0o666),
                    payload: Payload::CharDevice {
                        major: 1,
                        minor: 3,
                        link: Link::SINGLE,
                    },
                },
                DirEntry {
                    name: b"f".to_vec(),
                    meta: cap,
                    payload: Payload::File {
                        size: 3,
                        root: Blake3Root::of(b"abc"),
                        link: Link { nlink: 2, id: 1 },
                    },
                },
                DirEntry {
                    name: b"l\xff".to_vec(),
                    meta: meta(0o777),
                    payload: Payload::Symlink {
                        target: b"../x".to_vec(),
                        link: Link::SINGLE,
                    },
                },
                DirEntry {
                    name: b"p".to_vec(),
                    meta: meta(0o600),
                    payload: Payload::Fifo { link: Link::SINGLE },
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let n = sample();
        let bytes = n.encode();
        assert_eq!(DirNode::decode(&bytes).unwrap(), n);
        let r = RootRecord {
            meta: n.entries[0].meta.clone(),
            dir: n.digest(),
        };
        assert_eq!(RootRecord::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn domains_are_separate() {
        let empty = DirNode::default().encode();
        assert_ne!(
            dir_digest(&empty).as_bytes(),
            Blake3Root::of(&empty).as_bytes()
        );
        let r = RootRecord {
            meta: Metadata::default(),
            dir: dir_digest(&empty),
        };
        assert_ne!(r.digest().as_bytes(), dir_digest(&r.encode()).as_bytes());
    }

    #[test]
    fn refuses_non_canonical_variants() {
        let good = sample().encode();
        let mut swapped = sample();
        swapped.entries.swap(0, 1);
        assert!(DirNode::decode(&swapped.encode()).is_err(), "unsorted");
        let mut dup = sample();
        dup.entries[1].name = b"bin".to_vec();
        assert!(DirNode::decode(&dup.encode()).is_err(), "duplicate");
        let mut bad_mode = sample();
        bad_mode.entries[0].meta.mode = 0o40755;
        assert!(
            DirNode::decode(&bad_mode.encode()).is_err(),
            "type bits in mode"
        );
        let mut bad_link = sample();
        bad_link.entries[2].payload = Payload::Fifo {
            link: Link { nlink: 1, id: 4 },
        };
        assert!(
            DirNode::decode(&bad_link.encode()).is_err(),
            "link id with nlink 1"
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(DirNode::decode(&trailing).is_err());
        assert!(DirNode::decode(&good[..good.len() - 1]).is_err());
        let mut slash = sample();
        slash.entries[4].name = b"p/q".to_vec();
        assert!(DirNode::decode(&slash.encode()).is_err());
        let mut huge = DIR_MAGIC_V1.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(DirNode::decode(&huge).is_err());
        for (major, minor) in [(4096, 0), (0, 1 << 20)] {
            let mut dev = sample();
            dev.entries[1].payload = Payload::CharDevice {
                major,
                minor,
                link: Link::SINGLE,
            };
            let e = DirNode::decode(&dev.encode()).unwrap_err();
            assert!(e.to_string().contains("does not fit Linux's dev_t"), "{e}");
        }
        let mut max = sample();
        max.entries[1].payload = Payload::BlockDevice {
            major: 4095,
            minor: (1 << 20) - 1,
            link: Link::SINGLE,
        };
        assert_eq!(DirNode::decode(&max.encode()).unwrap(), max);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = DirNode::decode(&bytes);
            let _ = RootRecord::decode(&bytes);
        }

        #[test]
        fn mutated_nodes_never_panic_and_reencode_exactly(pos: usize, val: u8, cut: usize) {
            let mut b = sample().encode();
            let i = pos % b.len();
            b[i] = val;
            b.truncate(b.len() - cut % 4);
            if let Ok(n) = DirNode::decode(&b) {
                prop_assert_eq!(n.encode(), b);
            }
        }
    }
}
