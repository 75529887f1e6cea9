//! The merged filesystem tree that layers are applied to (spec/rootfs.md §3.3–3.5), and its
//! conversion into directory nodes and the root record (§5–6).
//!
//! Paths name inodes; a directory's children are kept sorted by name bytes. Non-directory inodes
//! may be named by several paths (hard links) and carry a reference count. Each directory entry
//! remembers the layer that last wrote it, because a whiteout or opaque marker in layer N hides
//! only what layers below N wrote. Nothing here parses tar or hashes content.

use super::error::{bad_name, Refusal};
use super::ids::{Blake3Root, DirDigest};
use super::node::{
    dir_digest, DirEntry, DirNode, Link, Metadata, Payload, RootRecord, MAX_DIR_ENTRIES_V1,
};
use std::collections::{BTreeMap, HashMap};

/// Index of an inode in the arena.
type Ino = usize;
const ROOT: Ino = 0;

/// Mode of a directory created because an entry needs it as a parent (and of the root before
/// any layer sets it). Changing it breaks the format.
pub const IMPLICIT_DIR_MODE_V1: u32 = 0o755;

#[derive(Debug, Clone, Copy)]
struct Child {
    ino: Ino,
    /// The layer that last wrote this entry.
    layer: u32,
}

#[derive(Debug)]
enum Body {
    Dir(BTreeMap<Vec<u8>, Child>),
    File { size: u64, root: Blake3Root },
    Symlink(Vec<u8>),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
    Free,
}

#[derive(Debug)]
struct Inode {
    meta: Metadata,
    body: Body,
    /// Paths naming this inode (non-directories; directories always have one).
    refs: u32,
}

/// A new non-hard-link entry to put into the tree.
#[derive(Debug, Clone)]
pub enum NewNode {
    Dir,
    File { size: u64, root: Blake3Root },
    Symlink(Vec<u8>),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

/// The merged tree.
#[derive(Debug)]
pub struct Tree {
    inodes: Vec<Inode>,
    free: Vec<Ino>,
    live: u64,
    max_nodes: u64,
}

fn implicit_dir() -> Inode {
    Inode {
        meta: Metadata {
            mode: IMPLICIT_DIR_MODE_V1,
            ..Metadata::default()
        },
        body: Body::Dir(BTreeMap::new()),
        refs: 1,
    }
}

fn join(comps: &[Vec<u8>]) -> String {
    super::error::show(&comps.join(&b'/'))
}

impl Tree {
    pub fn new(max_nodes: u64) -> Self {
        Self {
            inodes: vec![implicit_dir()],
            free: Vec::new(),
            live: 1,
            max_nodes,
        }
    }

    fn alloc(&mut self, inode: Inode) -> Result<Ino, Refusal> {
        if self.live >= self.max_nodes {
            return Err(Refusal::Limit {
                what: format!("more than {} inodes in the rootfs", self.max_nodes),
            });
        }
        self.live += 1;
        Ok(match self.free.pop() {
            Some(i) => {
                self.inodes[i] = inode;
                i
            }
            None => {
                self.inodes.push(inode);
                self.inodes.len() - 1
            }
        })
    }

    /// Drop one path's reference to `ino`, freeing it (and a directory's whole subtree) when
    /// no path names it any more.
    fn release(&mut self, ino: Ino) {
        let node = &mut self.inodes[ino];
        node.refs -= 1;
        if node.refs > 0 {
            return;
        }
        let body = std::mem::replace(&mut node.body, Body::Free);
        node.meta = Metadata::default();
        self.free.push(ino);
        self.live -= 1;
        if let Body::Dir(children) = body {
            for c in children.values() {
                self.release(c.ino);
            }
        }
    }

    fn children(&self, dir: Ino) -> &BTreeMap<Vec<u8>, Child> {
        match &self.inodes[dir].body {
            Body::Dir(c) => c,
            _ => unreachable!("callers pass directories only"),
        }
    }

    fn children_mut(&mut self, dir: Ino) -> &mut BTreeMap<Vec<u8>, Child> {
        match &mut self.inodes[dir].body {
            Body::Dir(c) => c,
            _ => unreachable!("callers pass directories only"),
        }
    }

    /// Walk `comps` from the root, all of which must be directories. Missing ones are created
    /// (mode 0755, owner 0:0, mtime 0) when `create`, else the walk answers `None`.
    pub fn walk_dirs(
        &mut self,
        comps: &[Vec<u8>],
        create: bool,
        layer: u32,
    ) -> Result<Option<Ino>, Refusal> {
        let mut cur = ROOT;
        for (i, name) in comps.iter().enumerate() {
            let found = self.children(cur).get(name).copied();
            cur = match found {
                Some(c) => match self.inodes[c.ino].body {
                    Body::Dir(_) => c.ino,
                    Body::Symlink(_) => {
                        return Err(Refusal::ThroughSymlink {
                            link: join(&comps[..=i]),
                        })
                    }
                    _ => {
                        return Err(Refusal::ParentNotDirectory {
                            parent: join(&comps[..=i]),
                        })
                    }
                },
                None if create => {
                    self.check_dir_size(cur)?;
                    let ino = self.alloc(implicit_dir())?;
                    self.children_mut(cur)
                        .insert(name.clone(), Child { ino, layer });
                    ino
                }
                None => return Ok(None),
            };
        }
        Ok(Some(cur))
    }

    fn check_dir_size(&self, dir: Ino) -> Result<(), Refusal> {
        if self.children(dir).len() >= MAX_DIR_ENTRIES_V1 {
            return Err(Refusal::Limit {
                what: format!("more than {MAX_DIR_ENTRIES_V1} entries in one directory"),
            });
        }
        Ok(())
    }

    /// Set the root directory's metadata (a directory entry whose path is the root).
    pub fn set_root_meta(&mut self, meta: Metadata) {
        self.inodes[ROOT].meta = meta;
    }

    /// Put a new entry at `parent/name` (the parent from `walk_dirs`). A directory over an
    /// existing directory only replaces its metadata; anything else replaces what was there.
    pub fn put(
        &mut self,
        parent: Ino,
        name: &[u8],
        node: NewNode,
        meta: Metadata,
        layer: u32,
    ) -> Result<(), Refusal> {
        let existing = self.children(parent).get(name).copied();
        if let (NewNode::Dir, Some(old)) = (&node, existing) {
            if matches!(self.inodes[old.ino].body, Body::Dir(_)) {
                self.inodes[old.ino].meta = meta;
                self.children_mut(parent).insert(
                    name.to_vec(),
                    Child {
                        ino: old.ino,
                        layer,
                    },
                );
                return Ok(());
            }
        }
        let body = match node {
            NewNode::Dir => Body::Dir(BTreeMap::new()),
            NewNode::File { size, root } => Body::File { size, root },
            NewNode::Symlink(t) => Body::Symlink(t),
            NewNode::CharDevice(a, b) => Body::CharDevice(a, b),
            NewNode::BlockDevice(a, b) => Body::BlockDevice(a, b),
            NewNode::Fifo => Body::Fifo,
        };
        match existing {
            Some(old) => self.release(old.ino),
            None => self.check_dir_size(parent)?,
        }
        let ino = self.alloc(Inode {
            meta,
            body,
            refs: 1,
        })?;
        self.children_mut(parent)
            .insert(name.to_vec(), Child { ino, layer });
        Ok(())
    }

    /// Make `parent/name` another path of the inode at `target` (§3.4).
    pub fn hard_link(
        &mut self,
        parent: Ino,
        path: &[Vec<u8>],
        target: &[Vec<u8>],
        layer: u32,
    ) -> Result<(), Refusal> {
        let fail = |reason| Refusal::HardLink {
            target: join(target),
            reason,
        };
        let Some((tname, tdir)) = target.split_last() else {
            return Err(fail("the target is the root directory"));
        };
        if target.starts_with(path) {
            return Err(fail("the target is the entry itself or inside it"));
        }
        let tparent = match self.walk_dirs(tdir, false, layer) {
            Ok(Some(p)) => p,
            Ok(None) => return Err(fail("the target is not in the tree built so far")),
            Err(Refusal::ThroughSymlink { .. }) => {
                return Err(fail("the target's path goes through a symbolic link"))
            }
            Err(_) => return Err(fail("the target's parent is not a directory")),
        };
        let Some(t) = self.children(tparent).get(tname).copied() else {
            return Err(fail("the target is not in the tree built so far"));
        };
        if matches!(self.inodes[t.ino].body, Body::Dir(_)) {
            return Err(fail("the target is a directory"));
        }
        let name = path.last().expect("hard link path is not the root");
        let existing = self.children(parent).get(name).copied();
        self.inodes[t.ino].refs += 1;
        match existing {
            Some(old) => self.release(old.ino),
            None => self.check_dir_size(parent)?,
        }
        self.children_mut(parent)
            .insert(name.clone(), Child { ino: t.ino, layer });
        Ok(())
    }

    /// Whiteout `dir/name` in `layer`: hide what lower layers wrote there (§3.5). A missing
    /// directory or name is no error.
    pub fn whiteout(&mut self, dir: &[Vec<u8>], name: &[u8], layer: u32) -> Result<(), Refusal> {
        // Nothing exists under a missing path or a non-directory, so there is nothing to hide
        // (§3.5). umoci writes such whiteouts when a layer turns a directory into a file: the
        // file `d`, then `d/.wh.CHILD` for each child the directory had.
        let parent = match self.walk_dirs(dir, false, layer) {
            Ok(Some(p)) => p,
            Ok(None) | Err(Refusal::ParentNotDirectory { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(c) = self.children(parent).get(name).copied() {
            if !self.prune(c, layer) {
                self.children_mut(parent).remove(name);
                self.release(c.ino);
            }
        }
        Ok(())
    }

    /// Opaque marker in `dir` in `layer`: hide every child lower layers wrote (§3.5).
    pub fn opaque(&mut self, dir: &[Vec<u8>], layer: u32) -> Result<(), Refusal> {
        let d = self.walk_dirs(dir, true, layer)?.expect("created");
        self.prune_children(d, layer);
        Ok(())
    }

    /// Remove what layers below `layer` wrote under the entry `c`; answers whether `c` stays.
    fn prune(&mut self, c: Child, layer: u32) -> bool {
        let is_dir = matches!(self.inodes[c.ino].body, Body::Dir(_));
        if !is_dir {
            return c.layer == layer;
        }
        let any_left = self.prune_children(c.ino, layer);
        c.layer == layer || any_left
    }

    fn prune_children(&mut self, dir: Ino, layer: u32) -> bool {
        let children: Vec<(Vec<u8>, Child)> = self
            .children(dir)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut any = false;
        for (name, c) in children {
            if self.prune(c, layer) {
                any = true;
            } else {
                self.children_mut(dir).remove(&name);
                self.release(c.ino);
            }
        }
        any
    }

    /// Number of live inodes (directories included).
    pub fn inode_count(&self) -> u64 {
        self.live
    }

    /// Seal the tree: assign link groups (§5.3), encode every directory node bottom-up, and
    /// make the root record.
    pub fn seal(&self) -> (RootRecord, BTreeMap<DirDigest, Vec<u8>>) {
        // One pre-order walk, children in name order, descending into a directory when it is
        // met: it lists directories before their descendants and numbers link groups at first
        // sight. Iterative, because the tree may be 2000 levels deep.
        let mut order: Vec<Ino> = vec![ROOT];
        let mut link_ids: HashMap<Ino, u64> = HashMap::new();
        let mut stack: Vec<Vec<Child>> = vec![self.pending_children(ROOT)];
        while let Some(pending) = stack.last_mut() {
            let Some(c) = pending.pop() else {
                stack.pop();
                continue;
            };
            let node = &self.inodes[c.ino];
            match node.body {
                Body::Dir(_) => {
                    order.push(c.ino);
                    stack.push(self.pending_children(c.ino));
                }
                _ if node.refs > 1 => {
                    let next = link_ids.len() as u64 + 1;
                    link_ids.entry(c.ino).or_insert(next);
                }
                _ => {}
            }
        }
        let mut digests: HashMap<Ino, DirDigest> = HashMap::new();
        let mut nodes = BTreeMap::new();
        for &d in order.iter().rev() {
            let entries = self
                .children(d)
                .iter()
                .map(|(name, c)| {
                    let node = &self.inodes[c.ino];
                    let link = Link {
                        nlink: node.refs,
                        id: link_ids.get(&c.ino).copied().unwrap_or(0),
                    };
                    let payload = match &node.body {
                        Body::Dir(_) => Payload::Directory {
                            digest: digests[&c.ino],
                        },
                        Body::File { size, root } => Payload::File {
                            size: *size,
                            root: *root,
                            link,
                        },
                        Body::Symlink(t) => Payload::Symlink {
                            target: t.clone(),
                            link,
                        },
                        Body::CharDevice(a, b) => Payload::CharDevice {
                            major: *a,
                            minor: *b,
                            link,
                        },
                        Body::BlockDevice(a, b) => Payload::BlockDevice {
                            major: *a,
                            minor: *b,
                            link,
                        },
                        Body::Fifo => Payload::Fifo { link },
                        Body::Free => unreachable!("freed inodes are never named"),
                    };
                    DirEntry {
                        name: name.clone(),
                        meta: node.meta.clone(),
                        payload,
                    }
                })
                .collect();
            let bytes = DirNode { entries }.encode();
            let digest = dir_digest(&bytes);
            digests.insert(d, digest);
            nodes.insert(digest, bytes);
        }
        let root = RootRecord {
            meta: self.inodes[ROOT].meta.clone(),
            dir: digests[&ROOT],
        };
        (root, nodes)
    }

    /// A directory's children in reverse name order (so popping yields name order).
    fn pending_children(&self, dir: Ino) -> Vec<Child> {
        self.children(dir).values().rev().copied().collect()
    }
}

/// Check one path component from a layer (after `/` splitting).
pub fn check_component(c: &[u8]) -> Result<(), Refusal> {
    if c == b".." {
        return Err(Refusal::DotDot);
    }
    if c.len() > super::node::MAX_NAME_V1 {
        return Err(bad_name(format!(
            "a path component is {} bytes long (limit {})",
            c.len(),
            super::node::MAX_NAME_V1
        )));
    }
    Ok(())
}
