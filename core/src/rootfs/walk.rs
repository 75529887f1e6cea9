//! The one walk of a verified rootfs (spec/rootfs.md §5): pre-order, each directory's entries in
//! name byte order, each directory followed by its contents and then its end. Every reader that
//! goes through a whole tree — `ct store tree`, `fsck`, `gc`, `du`, the rootfs writer of
//! `ct unpack`, the OSTree exporter — walks it with [`Walk`], so each rule lives here once:
//!
//! - each directory node is fetched and verified by [`VerifiedTree::dir`] exactly once per
//!   walk, however many paths name it (identical subtrees share a digest);
//! - hard links are resolved: the first path of a link group (in walk order) is the one that
//!   carries the inode, every later path names it in [`Entry::first_link`];
//! - a directory node that is missing, corrupt or does not decode is an [`Item::Error`] naming
//!   its path, after which the walk goes on with the directory's siblings — callers that must
//!   stop (a writer, an exporter) stop at the first error, `fsck` lists them all.
//!
//! Pure: no store, no file system; it reads through a [`TreeStore`].

use super::ids::DirDigest;
use super::node::{DirEntry, DirNode, Metadata, Payload, RootRecord};
use super::verified::{TreeError, TreeStore, VerifiedTree};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One entry met by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `/` for the root, else `/`-joined names with a leading `/` (raw bytes: names need not be
    /// UTF-8).
    pub path: Vec<u8>,
    /// 0 for the root, 1 for its entries, and so on.
    pub depth: usize,
    /// The entry as its directory node lists it (the root: an empty name, the root record's
    /// metadata, and the root directory's digest).
    pub entry: DirEntry,
    /// For the second and later paths of a hard-link group: the path met first, which holds
    /// the inode. `None` for the first path and for entries that are not hard links.
    pub first_link: Option<Vec<u8>>,
}

impl Entry {
    pub fn name(&self) -> &[u8] {
        &self.entry.name
    }
    pub fn meta(&self) -> &Metadata {
        &self.entry.meta
    }
    pub fn payload(&self) -> &Payload {
        &self.entry.payload
    }
    pub fn is_dir(&self) -> bool {
        matches!(self.entry.payload, Payload::Directory { .. })
    }
}

/// A directory whose listing could not be read verified. Its contents are not walked.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", String::from_utf8_lossy(path))]
pub struct WalkError {
    /// The directory's path.
    pub path: Vec<u8>,
    /// The digest its parent (or the root record) names.
    pub dir: DirDigest,
    #[source]
    pub source: Box<TreeError>,
}

/// What the walk yields, in order.
#[derive(Debug)]
pub enum Item {
    /// An entry. A directory's entry is followed by its contents (or an error), then `DirEnd`.
    Entry(Entry),
    /// The end of a directory whose `Entry` came earlier: all its contents have been yielded.
    /// It carries that entry again, so a writer can set a directory's metadata last.
    DirEnd(Entry),
    /// A directory whose node could not be read verified; `DirEnd` for it follows.
    Error(WalkError),
}

struct Frame {
    dir: Entry,
    node: Option<Arc<DirNode>>,
    next: usize,
}

/// The walk of one tree. An iterator of [`Item`]s.
pub struct Walk<'a, S: TreeStore + ?Sized> {
    tree: &'a VerifiedTree<S>,
    /// The root's entry, until it is yielded.
    start: Option<Entry>,
    stack: Vec<Frame>,
    /// Directory nodes verified in this walk, by digest.
    nodes: HashMap<DirDigest, Arc<DirNode>>,
    /// Link group id → the path met first.
    links: HashMap<u64, Vec<u8>>,
    /// Directories already walked (possibly by an earlier walk): not entered again.
    once: Option<&'a mut HashSet<DirDigest>>,
    /// An error to yield right after the directory entry it belongs to.
    pending: Option<WalkError>,
}

impl<'a, S: TreeStore + ?Sized> Walk<'a, S> {
    /// Walk the tree whose (verified) root record is `root`.
    pub fn new(tree: &'a VerifiedTree<S>, root: &RootRecord) -> Self {
        Self::from_dir(tree, root.meta.clone(), root.dir)
    }

    /// Walk the directory `dir` as a root whose own metadata is `meta`.
    pub fn from_dir(tree: &'a VerifiedTree<S>, meta: Metadata, dir: DirDigest) -> Self {
        Self {
            tree,
            start: Some(Entry {
                path: b"/".to_vec(),
                depth: 0,
                entry: DirEntry {
                    name: Vec::new(),
                    meta,
                    payload: Payload::Directory { digest: dir },
                },
                first_link: None,
            }),
            stack: Vec::new(),
            nodes: HashMap::new(),
            links: HashMap::new(),
            once: None,
            pending: None,
        }
    }

    /// Enter each directory digest at most once, across this walk and any other walk given the
    /// same set (what `gc`, `du` and `fsck` want over many bundles sharing subtrees): a
    /// directory already in `seen` is yielded, then ended at once. Link groups are resolved
    /// within one walk only.
    pub fn once_per_dir(mut self, seen: &'a mut HashSet<DirDigest>) -> Self {
        self.once = Some(seen);
        self
    }

    /// Open a directory entry just yielded: push its frame with its verified node, or answer
    /// the error (the frame is pushed empty, so its `DirEnd` still comes).
    fn enter(&mut self, dir: Entry) -> Option<WalkError> {
        let Payload::Directory { digest } = dir.entry.payload else {
            unreachable!("only directories are entered")
        };
        let fresh = self.once.as_mut().is_none_or(|seen| seen.insert(digest));
        let (node, err) = if !fresh {
            (None, None)
        } else if let Some(n) = self.nodes.get(&digest) {
            (Some(n.clone()), None)
        } else {
            match self.tree.dir(&digest) {
                Ok(n) => {
                    let n = Arc::new(n);
                    self.nodes.insert(digest, n.clone());
                    (Some(n), None)
                }
                Err(source) => (
                    None,
                    Some(WalkError {
                        path: dir.path.clone(),
                        dir: digest,
                        source: Box::new(source),
                    }),
                ),
            }
        };
        self.stack.push(Frame { dir, node, next: 0 });
        err
    }
}

/// The walk's entry for `e`, listed by the directory at `parent` (depth `depth`), its link
/// group resolved against the groups met so far.
fn child(links: &mut HashMap<u64, Vec<u8>>, parent: &[u8], depth: usize, e: &DirEntry) -> Entry {
    let mut path = Vec::with_capacity(parent.len() + 1 + e.name.len());
    path.extend_from_slice(parent);
    if depth > 0 {
        path.push(b'/');
    }
    path.extend_from_slice(&e.name);
    let first_link = match e.payload.link() {
        Some(l) if l.nlink > 1 => match links.get(&l.id) {
            Some(first) => Some(first.clone()),
            None => {
                links.insert(l.id, path.clone());
                None
            }
        },
        _ => None,
    };
    Entry {
        path,
        depth: depth + 1,
        entry: e.clone(),
        first_link,
    }
}

impl<S: TreeStore + ?Sized> Iterator for Walk<'_, S> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(err) = self.pending.take() {
            return Some(Item::Error(err));
        }
        if let Some(root) = self.start.take() {
            self.pending = self.enter(root.clone());
            return Some(Item::Entry(root));
        }
        let top = self.stack.last_mut()?;
        let Some(e) = top.node.as_ref().and_then(|n| n.entries.get(top.next)) else {
            let done = self.stack.pop().expect("a frame");
            return Some(Item::DirEnd(done.dir));
        };
        top.next += 1;
        let entry = child(&mut self.links, &top.dir.path, top.dir.depth, e);
        if entry.is_dir() {
            self.pending = self.enter(entry.clone());
        }
        Some(Item::Entry(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::verified::{ContentReader, MemoryTree};
    use crate::rootfs::{Blake3Root, Limits, MemorySink, RootfsBuilder};
    use crate::source::Compression;
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A layer from `PATH [KIND]` lines: `d` directory, `f` (the default) file whose content is
    /// its name, `l:T` hard link to T.
    fn layer(entries: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for spec in entries {
            let (path, what) = spec.split_once(' ').unwrap_or((spec, "f"));
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o755);
            h.set_mtime(1);
            h.set_size(0);
            match what {
                "d" => {
                    h.set_entry_type(tar::EntryType::Directory);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
                "f" => {
                    h.set_entry_type(tar::EntryType::Regular);
                    let name = path.rsplit('/').next().unwrap();
                    h.set_size(name.len() as u64);
                    b.append_data(&mut h, path, name.as_bytes()).unwrap();
                }
                link => {
                    h.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut h, path, link.strip_prefix("l:").unwrap())
                        .unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// A tree store that counts directory node fetches.
    struct Counting {
        inner: MemoryTree,
        fetches: AtomicUsize,
    }

    impl TreeStore for Counting {
        fn dir_node(&self, d: &DirDigest) -> io::Result<Option<Vec<u8>>> {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            self.inner.dir_node(d)
        }
        fn outboard(&self, r: &Blake3Root) -> io::Result<Option<Vec<u8>>> {
            self.inner.outboard(r)
        }
        fn open_content(&self, r: &Blake3Root, size: u64) -> io::Result<Arc<dyn ContentReader>> {
            self.inner.open_content(r, size)
        }
    }

    fn tree(entries: &[&str]) -> (VerifiedTree<Counting>, Arc<Counting>, RootRecord) {
        let mut builder = RootfsBuilder::new(Limits::default());
        let mut sink = MemorySink::default();
        builder
            .apply_layer(&layer(entries)[..], Compression::None, &mut sink)
            .unwrap();
        let rootfs = builder.finish();
        let store = Arc::new(Counting {
            inner: MemoryTree::new(&rootfs, &sink.files),
            fetches: AtomicUsize::new(0),
        });
        (VerifiedTree::new(store.clone()), store, rootfs.root)
    }

    /// The walk as lines: `+path` entry, `-path` end of directory, `!path` error.
    fn lines<S: TreeStore + ?Sized>(w: Walk<'_, S>) -> Vec<String> {
        w.map(|i| match i {
            Item::Entry(e) => format!("+{}", String::from_utf8_lossy(&e.path)),
            Item::DirEnd(e) => format!("-{}", String::from_utf8_lossy(&e.path)),
            Item::Error(e) => format!("!{}", String::from_utf8_lossy(&e.path)),
        })
        .collect()
    }

    const SHARED: &[&str] = &[
        "a d", "a/e d", "a/e/f", "a/g", "a-b", "z d", "z/e d", "z/e/f",
    ];

    #[test]
    fn pre_order_with_ends_and_shared_nodes_fetched_once() {
        let (t, store, root) = tree(SHARED);
        assert_eq!(
            lines(Walk::new(&t, &root)),
            [
                "+/", "+/a", "+/a/e", "+/a/e/f", "-/a/e", "+/a/g", "-/a", "+/a-b", "+/z", "+/z/e",
                "+/z/e/f", "-/z/e", "-/z", "-/"
            ]
        );
        // Four paths are directories, but /a/e and /z/e are one node: three distinct nodes
        // besides the root, each fetched and verified once.
        assert_eq!(store.fetches.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn hard_links_name_the_path_met_first() {
        let (t, _, root) = tree(&["b d", "b/x", "a d", "a/y l:b/x", "c l:b/x"]);
        let links: Vec<(String, Option<String>)> = Walk::new(&t, &root)
            .filter_map(|i| match i {
                Item::Entry(e) if !e.is_dir() => Some((
                    String::from_utf8_lossy(&e.path).into_owned(),
                    e.first_link
                        .map(|p| String::from_utf8_lossy(&p).into_owned()),
                )),
                _ => None,
            })
            .collect();
        // Walk order decides which path holds the inode: /a/y comes before /b/x.
        assert_eq!(
            links,
            [
                ("/a/y".into(), None),
                ("/b/x".into(), Some("/a/y".into())),
                ("/c".into(), Some("/a/y".into())),
            ]
        );
    }

    #[test]
    fn a_tampered_or_missing_node_is_an_error_item_and_the_walk_goes_on() {
        let (t, store, root) = tree(SHARED);
        let e = Walk::new(&t, &root)
            .find_map(|i| match i {
                Item::Entry(e) if e.path == b"/a/e" => match e.entry.payload {
                    Payload::Directory { digest } => Some(digest),
                    _ => None,
                },
                _ => None,
            })
            .unwrap();
        let forged = DirNode::default().encode();
        store.inner.dirs.write().unwrap().insert(e, forged);
        let items: Vec<Item> = Walk::new(&t, &root).collect();
        let errs: Vec<&WalkError> = items
            .iter()
            .filter_map(|i| match i {
                Item::Error(e) => Some(e),
                _ => None,
            })
            .collect();
        // Both paths that name the node say so; nothing below them is yielded.
        assert_eq!(errs.len(), 2);
        assert!(errs
            .iter()
            .all(|e| e.dir == e.dir && e.source.is_corruption()));
        assert_eq!(errs[0].path, b"/a/e");
        assert!(
            errs[0].to_string().starts_with("/a/e: directory node"),
            "{}",
            errs[0]
        );
        assert_eq!(
            lines(Walk::new(&t, &root)),
            [
                "+/", "+/a", "+/a/e", "!/a/e", "-/a/e", "+/a/g", "-/a", "+/a-b", "+/z", "+/z/e",
                "!/z/e", "-/z/e", "-/z", "-/"
            ]
        );
        store.inner.dirs.write().unwrap().remove(&e);
        let missing: Vec<String> = Walk::new(&t, &root)
            .filter_map(|i| match i {
                Item::Error(e) => Some(e.source.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(missing.len(), 2);
        assert!(
            missing[0].ends_with("is missing from the store"),
            "{missing:?}"
        );
        // A tampered root: the root entry, its error, its end.
        store.inner.dirs.write().unwrap().remove(&root.dir);
        assert_eq!(lines(Walk::new(&t, &root)), ["+/", "!/", "-/"]);
    }

    #[test]
    fn deep_and_wide_trees() {
        let mut specs: Vec<String> = Vec::new();
        let mut deep = String::from("deep");
        specs.push(format!("{deep} d"));
        for i in 0..200 {
            deep.push_str(&format!("/d{i}"));
            specs.push(format!("{deep} d"));
        }
        specs.push(format!("{deep}/bottom"));
        specs.push("wide d".into());
        for i in 0..5000 {
            specs.push(format!("wide/e{i:04}"));
        }
        let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let (t, _, root) = tree(&refs);
        let mut entries = 0;
        let mut ends = 0;
        let mut max_depth = 0;
        let mut last_wide = Vec::new();
        for i in Walk::new(&t, &root) {
            match i {
                Item::Entry(e) => {
                    entries += 1;
                    max_depth = max_depth.max(e.depth);
                    if e.path.starts_with(b"/wide/") {
                        assert!(e.path > last_wide, "name order within a directory");
                        last_wide = e.path;
                    }
                }
                Item::DirEnd(_) => ends += 1,
                Item::Error(e) => panic!("{e}"),
            }
        }
        assert_eq!(entries, 1 + 201 + 1 + 1 + 5000);
        assert_eq!(ends, 1 + 201 + 1);
        assert_eq!(max_depth, 202, "/deep/d0/…/d199/bottom");
    }

    #[test]
    fn once_per_dir_enters_each_directory_once_across_walks() {
        let (t, _, root) = tree(SHARED);
        let mut seen = HashSet::new();
        let first = lines(Walk::new(&t, &root).once_per_dir(&mut seen));
        // /z/e is the node /a/e already walked: yielded, not entered.
        assert!(first.contains(&"+/z/e".to_string()) && !first.contains(&"+/z/e/f".into()));
        assert_eq!(
            lines(Walk::new(&t, &root).once_per_dir(&mut seen)),
            ["+/", "-/"]
        );
    }
}
