//! The inode table: every path the kernel has reached, numbered once and for the life of the
//! mount. Directories are loaded lazily: a directory's node is fetched and verified the first
//! time anything needs its children (a lookup in it, a listing, or its own `nlink`), and all of
//! its entries get inode numbers then. Hard-linked entries (one link group of one rootfs) share
//! one inode number. Nodes never change once made, so readers clone an `Arc` and drop the lock.

use crate::view::{StoreBundle, TreeRoot, View};
use cerro_core::rootfs::{
    Blake3Root, DirDigest, Metadata, Payload, TreeError, TreeStore, VerifiedTree, MAX_DEV_MAJOR_V1,
    MAX_DEV_MINOR_V1,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An inode number of this mount: what the kernel names a node by. Numbers are given once, in
/// the order nodes are first reached, and never reused (the root is [`ROOT_INO`]); a number the
/// table never gave (the kernel's word is only a number) finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(u64);

impl Ino {
    /// The inode the kernel sent (`fuser::INodeNo`'s number).
    pub const fn from_kernel(n: u64) -> Self {
        Self(n)
    }
    /// The number the kernel is given.
    pub const fn get(self) -> u64 {
        self.0
    }
    /// The index of this inode's node in the table (`None` for 0, which is never an inode).
    fn index(self) -> Option<usize> {
        usize::try_from(self.0.checked_sub(1)?).ok()
    }
}

impl std::fmt::Display for Ino {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// FUSE inode number of the mount's root.
pub const ROOT_INO: Ino = Ino(1);
/// Tree index of synthetic nodes (the store view's own directories and files).
pub const SYNTHETIC: u32 = u32::MAX;
/// Size reported for directories (like most disk filesystems; no program relies on it).
const DIR_SIZE: u64 = 4096;

/// The kind of an inode, as `stat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// `stat` facts of an inode (a directory's `nlink` is filled in from its children).
#[derive(Debug, Clone)]
pub struct Attr {
    pub kind: Kind,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: SystemTime,
    pub nlink: u32,
    pub rdev: u32,
}

/// What an inode holds.
#[derive(Debug)]
pub enum Body {
    /// A directory of a rootfs (`digest`) or a synthetic one (`None`, children set at creation).
    Dir {
        digest: Option<DirDigest>,
        children: OnceLock<Arc<Children>>,
    },
    /// A regular file of a rootfs, read through verification.
    File {
        root: Blake3Root,
        size: u64,
    },
    /// A synthetic file held in memory (a signed manifest or signature file, already checked).
    Memory(Arc<Vec<u8>>),
    Symlink(Vec<u8>),
    /// Devices and FIFOs: nothing to read through the mount.
    Special,
}

/// A directory's entries, sorted by name.
#[derive(Debug, Default)]
pub struct Children {
    pub entries: Vec<(Vec<u8>, Ino)>,
    pub subdirs: u32,
}

impl Children {
    pub fn find(&self, name: &[u8]) -> Option<Ino> {
        self.entries
            .binary_search_by(|(n, _)| n.as_slice().cmp(name))
            .ok()
            .map(|i| self.entries[i].1)
    }
}

/// One inode.
#[derive(Debug)]
pub struct Node {
    pub parent: Ino,
    /// The name it was first reached by (for paths in logs).
    pub name: Vec<u8>,
    /// Which rootfs it belongs to (an index into the table's roots), or [`SYNTHETIC`].
    pub tree: u32,
    pub attr: Attr,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub body: Body,
}

/// Why a directory could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    NotFound,
    NotDir,
    /// The directory node failed verification or could not be read.
    Tree(Box<TreeError>),
}

pub struct Table<S: ?Sized> {
    tree: VerifiedTree<S>,
    nodes: RwLock<Vec<Arc<Node>>>,
    /// Inode of each link group seen so far, by (rootfs, link id).
    links: Mutex<HashMap<(u32, u64), Ino>>,
    /// Serialises directory loads, so two threads never number one directory twice.
    loading: Mutex<()>,
    labels: Vec<String>,
    /// Told of every directory load, in numbering order (see [`LoadRecord`]).
    on_load: OnceLock<LoadHook>,
}

/// One directory load, as the table numbered it: the children of `dir` got the inode numbers
/// `first .. first + count` (hard links to entries numbered before take none). Numbers depend
/// only on the order of loads, so a table that replays the same records in the same order
/// gives every node the same number: what lets a new serving process take over a mount whose
/// inode numbers the kernel already holds ([`Table::replay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadRecord {
    pub dir: u64,
    pub first: u64,
    pub count: u64,
}

impl LoadRecord {
    /// Size of [`LoadRecord::to_bytes`].
    pub const LEN: usize = 24;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.dir.to_le_bytes());
        b[8..16].copy_from_slice(&self.first.to_le_bytes());
        b[16..].copy_from_slice(&self.count.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::LEN] = b.try_into().ok()?;
        let n = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Some(Self {
            dir: n(0),
            first: n(8),
            count: n(16),
        })
    }
}

/// What hears each [`LoadRecord`]; called with the load lock held, before any number of the
/// load can reach the kernel, so what it keeps is never behind what the kernel was told.
pub type LoadHook = Box<dyn Fn(LoadRecord) + Send + Sync>;

/// Why a replay did not give the numbers recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("load {index}: directory inode {dir} could not be loaded ({reason})")]
    Load {
        index: usize,
        dir: u64,
        reason: String,
    },
    #[error("load {index}: directory inode {dir} numbered {got:?}, the record says {want:?}")]
    Differs {
        index: usize,
        dir: u64,
        got: (u64, u64),
        want: (u64, u64),
    },
}

fn time(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos as u64)
    }
}

fn meta_attr(m: &Metadata, kind: Kind, size: u64, nlink: u32, rdev: u32) -> Attr {
    Attr {
        kind,
        perm: (m.mode & 0o7777) as u16,
        uid: m.uid,
        gid: m.gid,
        size,
        mtime: time(m.mtime.secs, m.mtime.nanos),
        nlink,
        rdev,
    }
}

/// Linux's 32-bit device encoding (`new_encode_dev`), which FUSE's `rdev` carries and the
/// kernel decodes with `new_decode_dev`. Exact for every device a directory node can hold: the
/// node decoder refuses a major above 4095 or a minor above 2^20-1 (spec/rootfs.md §7), which
/// this encoding could only give as another device.
fn rdev(major: u32, minor: u32) -> u32 {
    debug_assert!(major <= MAX_DEV_MAJOR_V1 && minor <= MAX_DEV_MINOR_V1);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

fn synthetic_attr(kind: Kind, perm: u16, size: u64) -> Attr {
    Attr {
        kind,
        perm,
        uid: 0,
        gid: 0,
        size,
        mtime: UNIX_EPOCH,
        nlink: 1,
        rdev: 0,
    }
}

impl<S: TreeStore + ?Sized> Table<S> {
    /// A table whose root is `view`. Nothing is read from the store yet.
    pub fn new(tree: VerifiedTree<S>, view: &View) -> Self {
        let mut t = Self {
            tree,
            nodes: RwLock::new(Vec::new()),
            links: Mutex::new(HashMap::new()),
            loading: Mutex::new(()),
            labels: Vec::new(),
            on_load: OnceLock::new(),
        };
        match view {
            View::Rootfs(r) => {
                t.labels.push(r.label.clone());
                let root = t.push_tree_root(r, ROOT_INO, b"".to_vec());
                debug_assert_eq!(root, ROOT_INO);
            }
            View::Store(bundles) => t.build_store_view(bundles),
        }
        t
    }

    fn push(&self, node: Node) -> Ino {
        let mut nodes = self.nodes.write().expect("inode table lock");
        nodes.push(Arc::new(node));
        Ino(nodes.len() as u64)
    }

    fn push_tree_root(&mut self, r: &TreeRoot, parent: Ino, name: Vec<u8>) -> Ino {
        let tree = (self.labels.len() - 1) as u32;
        debug_assert_eq!(self.labels[tree as usize], r.label);
        self.push(Node {
            parent,
            name,
            tree,
            attr: meta_attr(&r.root.meta, Kind::Dir, DIR_SIZE, 2, 0),
            xattrs: r.root.meta.xattrs.clone(),
            body: Body::Dir {
                digest: Some(r.root.dir),
                children: OnceLock::new(),
            },
        })
    }

    fn synthetic_dir(&self, parent: Ino, name: &[u8]) -> Ino {
        self.push(Node {
            parent,
            name: name.to_vec(),
            tree: SYNTHETIC,
            attr: synthetic_attr(Kind::Dir, 0o555, DIR_SIZE),
            xattrs: BTreeMap::new(),
            body: Body::Dir {
                digest: None,
                children: OnceLock::new(),
            },
        })
    }

    fn synthetic_leaf(&self, parent: Ino, name: &[u8], kind: Kind, body: Body) -> Ino {
        let size = match &body {
            Body::Memory(b) => b.len() as u64,
            Body::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        let perm = if kind == Kind::Symlink { 0o777 } else { 0o444 };
        self.push(Node {
            parent,
            name: name.to_vec(),
            tree: SYNTHETIC,
            attr: synthetic_attr(kind, perm, size),
            xattrs: BTreeMap::new(),
            body,
        })
    }

    fn set_children(&self, dir: Ino, mut entries: Vec<(Vec<u8>, Ino)>) {
        entries.sort();
        let subdirs = entries
            .iter()
            .filter(|(_, i)| self.get(*i).is_some_and(|n| n.attr.kind == Kind::Dir))
            .count() as u32;
        if let Some(n) = self.get(dir) {
            if let Body::Dir { children, .. } = &n.body {
                let _ = children.set(Arc::new(Children { entries, subdirs }));
            }
        }
    }

    fn build_store_view(&mut self, bundles: &[StoreBundle]) {
        let root = self.synthetic_dir(ROOT_INO, b"");
        debug_assert_eq!(root, ROOT_INO);
        let bdir = self.synthetic_dir(root, b"bundles");
        let ddir = self.synthetic_dir(root, b"by-digest");
        let mut bentries = Vec::new();
        let mut dentries = Vec::new();
        for b in bundles {
            let Some(first) = b.names.first() else {
                continue;
            };
            let v = &b.bundle;
            for name in &b.names {
                let me = self.synthetic_dir(bdir, name.as_bytes());
                self.labels.push(name.clone());
                let rootfs = self.push_tree_root(
                    &TreeRoot {
                        label: name.clone(),
                        root: v.subject().root.clone(),
                    },
                    me,
                    b"rootfs".to_vec(),
                );
                let manifest = self.synthetic_leaf(
                    me,
                    b"manifest.toml",
                    Kind::File,
                    Body::Memory(Arc::new(v.manifest_bytes().to_vec())),
                );
                let sdir = self.synthetic_dir(me, b"signatures");
                let sigs: Vec<(Vec<u8>, Ino)> = v
                    .signatures()
                    .iter()
                    .map(|(k, bytes)| {
                        let name = format!("{k}.sig").into_bytes();
                        let ino = self.synthetic_leaf(
                            sdir,
                            &name,
                            Kind::File,
                            Body::Memory(Arc::new(bytes.clone())),
                        );
                        (name, ino)
                    })
                    .collect();
                self.set_children(sdir, sigs);
                self.set_children(
                    me,
                    vec![
                        (b"manifest.toml".to_vec(), manifest),
                        (b"rootfs".to_vec(), rootfs),
                        (b"signatures".to_vec(), sdir),
                    ],
                );
                bentries.push((name.as_bytes().to_vec(), me));
            }
            let hex = v.digest().hex();
            let target = format!("../bundles/{first}").into_bytes();
            let link =
                self.synthetic_leaf(ddir, hex.as_bytes(), Kind::Symlink, Body::Symlink(target));
            dentries.push((hex.into_bytes(), link));
        }
        self.set_children(bdir, bentries);
        self.set_children(ddir, dentries);
        self.set_children(
            root,
            vec![(b"bundles".to_vec(), bdir), (b"by-digest".to_vec(), ddir)],
        );
    }

    /// The node numbered `ino`.
    pub fn get(&self, ino: Ino) -> Option<Arc<Node>> {
        let i = ino.index()?;
        self.nodes.read().expect("inode table lock").get(i).cloned()
    }

    /// Number of inodes numbered so far.
    pub fn len(&self) -> usize {
        self.nodes.read().expect("inode table lock").len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label (bundle name) of a node's rootfs.
    pub fn label(&self, node: &Node) -> &str {
        self.labels
            .get(node.tree as usize)
            .map(String::as_str)
            .unwrap_or("store")
    }

    /// The path of `ino` from the mount's root (for logs), as text: names escaped (control
    /// characters and invalid UTF-8 as `\xNN`), so an image cannot forge or garble log lines.
    pub fn path(&self, ino: Ino) -> String {
        let mut parts = Vec::new();
        let mut cur = ino;
        for _ in 0..4096 {
            let Some(n) = self.get(cur) else { break };
            if cur == ROOT_INO {
                break;
            }
            parts.push(cerro_core::text::escape_bytes(&n.name));
            cur = n.parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The children of directory `ino`, loading (and verifying) its node on first use.
    pub fn children(&self, ino: Ino) -> Result<Arc<Children>, LoadError> {
        let node = self.get(ino).ok_or(LoadError::NotFound)?;
        let Body::Dir { digest, children } = &node.body else {
            return Err(LoadError::NotDir);
        };
        if let Some(c) = children.get() {
            return Ok(c.clone());
        }
        let _guard = self.loading.lock().expect("load lock");
        if let Some(c) = children.get() {
            return Ok(c.clone());
        }
        let digest = digest.expect("synthetic directories are filled at creation");
        let first = self.len() as u64 + 1;
        let dir = self
            .tree
            .dir(&digest)
            .map_err(|e| LoadError::Tree(Box::new(e)))?;
        let mut entries = Vec::with_capacity(dir.entries.len());
        let mut subdirs = 0;
        for e in dir.entries {
            let (kind, size, rdev_, body) = match e.payload {
                Payload::Directory { digest } => {
                    subdirs += 1;
                    (
                        Kind::Dir,
                        DIR_SIZE,
                        0,
                        Body::Dir {
                            digest: Some(digest),
                            children: OnceLock::new(),
                        },
                    )
                }
                Payload::File { size, root, .. } => {
                    (Kind::File, size, 0, Body::File { root, size })
                }
                Payload::Symlink { ref target, .. } => (
                    Kind::Symlink,
                    target.len() as u64,
                    0,
                    Body::Symlink(target.clone()),
                ),
                Payload::CharDevice { major, minor, .. } => {
                    (Kind::CharDevice, 0, rdev(major, minor), Body::Special)
                }
                Payload::BlockDevice { major, minor, .. } => {
                    (Kind::BlockDevice, 0, rdev(major, minor), Body::Special)
                }
                Payload::Fifo { .. } => (Kind::Fifo, 0, 0, Body::Special),
            };
            let link = e.payload.link().filter(|l| l.nlink > 1);
            if let Some(l) = link {
                if let Some(&existing) = self
                    .links
                    .lock()
                    .expect("links lock")
                    .get(&(node.tree, l.id))
                {
                    entries.push((e.name, existing));
                    continue;
                }
            }
            let nlink = link.map_or(if kind == Kind::Dir { 2 } else { 1 }, |l| l.nlink);
            let ino_new = self.push(Node {
                parent: ino,
                name: e.name.clone(),
                tree: node.tree,
                attr: meta_attr(&e.meta, kind, size, nlink, rdev_),
                xattrs: e.meta.xattrs,
                body,
            });
            if let Some(l) = link {
                self.links
                    .lock()
                    .expect("links lock")
                    .insert((node.tree, l.id), ino_new);
            }
            entries.push((e.name, ino_new));
        }
        let c = Arc::new(Children { entries, subdirs });
        let _ = children.set(c.clone());
        if let Some(hook) = self.on_load.get() {
            hook(LoadRecord {
                dir: ino.get(),
                first,
                count: self.len() as u64 + 1 - first,
            });
        }
        Ok(c)
    }

    /// Set what hears every later directory load (once; later calls are ignored).
    pub fn set_load_hook(&self, hook: LoadHook) {
        let _ = self.on_load.set(hook);
    }

    /// Load the directories of `records` in their order, checking that each gets exactly the
    /// numbers recorded: afterwards every inode number the kernel may hold names the node it
    /// named before. Any difference (a record out of order, a directory that no longer loads
    /// or verifies) is an error, and the table must not serve.
    pub fn replay(&self, records: &[LoadRecord]) -> Result<(), ReplayError> {
        for (index, r) in records.iter().enumerate() {
            let first = self.len() as u64 + 1;
            let loaded_before = self.get(Ino(r.dir)).is_some_and(
                |n| matches!(&n.body, Body::Dir { children, .. } if children.get().is_some()),
            );
            if loaded_before {
                return Err(ReplayError::Load {
                    index,
                    dir: r.dir,
                    reason: "it was loaded already".into(),
                });
            }
            self.children(Ino(r.dir)).map_err(|e| ReplayError::Load {
                index,
                dir: r.dir,
                reason: match e {
                    LoadError::NotFound => "no such inode".into(),
                    LoadError::NotDir => "not a directory".into(),
                    LoadError::Tree(t) => t.to_string(),
                },
            })?;
            let got = (first, self.len() as u64 + 1 - first);
            if got != (r.first, r.count) {
                return Err(ReplayError::Differs {
                    index,
                    dir: r.dir,
                    got,
                    want: (r.first, r.count),
                });
            }
        }
        Ok(())
    }

    /// The attributes of `ino`; for a directory this loads it, for its `nlink`.
    pub fn attr(&self, ino: Ino) -> Result<(Arc<Node>, Attr), LoadError> {
        let node = self.get(ino).ok_or(LoadError::NotFound)?;
        let mut a = node.attr.clone();
        if a.kind == Kind::Dir {
            a.nlink = 2 + self.children(ino)?.subdirs;
        }
        Ok((node, a))
    }

    pub fn tree(&self) -> &VerifiedTree<S> {
        &self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's `new_decode_dev` (include/linux/kdev_t.h), for the test.
    fn kernel_decode(dev: u32) -> (u32, u32) {
        ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
    }

    #[test]
    fn inode_numbers_index_the_table_and_zero_is_none() {
        assert_eq!(ROOT_INO.get(), 1);
        assert_eq!(ROOT_INO.index(), Some(0));
        assert_eq!(Ino::from_kernel(0).index(), None);
        assert_eq!(Ino::from_kernel(7).index(), Some(6));
        assert_eq!(Ino::from_kernel(u64::MAX).get(), u64::MAX);
        assert_eq!(ROOT_INO.to_string(), "1");
    }

    #[test]
    fn device_numbers_reach_the_kernel_unchanged() {
        for (major, minor) in [(0, 0), (1, 3), (8, 0), (259, 65536), (4095, (1 << 20) - 1)] {
            assert_eq!(kernel_decode(rdev(major, minor)), (major, minor));
        }
    }
}
