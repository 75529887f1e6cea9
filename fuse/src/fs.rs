//! The `fuser::Filesystem` implementation: each method is a thin shim over an inner function
//! that returns `Result`, and [`FsError::errno`] maps every error once. Read-only: every call
//! that would change anything answers EROFS. A block that fails verification is never sent:
//! the read fails with EIO and the event is logged once with bundle, path, block and hashes.

use crate::cache::BlockCache;
use crate::inodes::{Attr, Body, Ino, Kind, LoadError, Node, Table, ROOT_INO};
use crate::view::View;
use cerro_core::rootfs::{TreeError, TreeStore, VerifiedFile, VerifiedTree, VERIFY_BLOCK_SIZE_V1};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Extended attributes that steer the kernel's overlayfs when a directory is an overlay lower
/// layer (opaque directories, redirects, metacopy, origin): `trusted.overlay.*`, and
/// `user.overlay.*` for overlays mounted with `userxattr`. An image must not control how the
/// overlay `ct run` (or podman) puts on the mount resolves paths, so these are never served;
/// they stay in the signed rootfs, and `ct store tree` shows them (spec/rootfs.md §5.5).
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// Whether the mount serves the extended attribute `name` (see [`OVERLAY_XATTR_PREFIXES`]).
pub fn served_xattr(name: &[u8]) -> bool {
    !OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// How long the kernel may keep entries and attributes: the tree never changes while mounted.
const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Largest readahead asked of the kernel (it may offer less). Measured here: 1 MiB requests
/// lift plain FUSE reads from about 2.5 to 3.6 GB/s (FIELD-NOTES).
const MAX_READAHEAD: u32 = 1 << 20;

thread_local! {
    /// Each serving thread's read buffer, grown to the largest request it has served (at most
    /// the kernel's largest read, 1 MiB) and reused: only verified bytes are ever replied from
    /// it, and only the range just read and verified.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// `st_blksize`: the verification block, the natural unit of reads.
const BLKSIZE: u32 = VERIFY_BLOCK_SIZE_V1 as u32;
/// Files kept open (object descriptor and outboard) for reads, least recently used evicted.
/// Opens never reach the daemon (see [`Filesystem::open`]), so this cache is what bounds them.
const OPEN_FILES: usize = 256;
/// Default bound of the verified-block cache.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;
/// Files of at most this size are read ahead (files of one verification block).
const READ_AHEAD_FILE_MAX: u64 = VERIFY_BLOCK_SIZE_V1;
/// Bytes read ahead per directory, at most.
const READ_AHEAD_DIR_BYTES: u64 = 4 << 20;

/// Why a request failed.
#[derive(Debug)]
pub enum FsError {
    NoEnt,
    NotDir,
    IsDir,
    ReadOnly,
    /// Verification failed or the store could not be read (already logged).
    Io,
    NoData,
    Range,
    Access,
    Inval,
}

impl FsError {
    pub fn errno(&self) -> Errno {
        match self {
            FsError::NoEnt => Errno::ENOENT,
            FsError::NotDir => Errno::ENOTDIR,
            FsError::IsDir => Errno::EISDIR,
            FsError::ReadOnly => Errno::EROFS,
            FsError::Io => Errno::EIO,
            FsError::NoData => Errno::NO_XATTR,
            FsError::Range => Errno::ERANGE,
            FsError::Access => Errno::EACCES,
            FsError::Inval => Errno::EINVAL,
        }
    }
}

type FsResult<T> = Result<T, FsError>;

/// Where verification failures and other events go (the daemon's log by default).
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

enum Open {
    Tree(VerifiedFile),
    Memory(Arc<Vec<u8>>),
}

impl From<INodeNo> for Ino {
    fn from(n: INodeNo) -> Self {
        Ino::from_kernel(n.0)
    }
}
impl From<Ino> for INodeNo {
    fn from(i: Ino) -> Self {
        INodeNo(i.get())
    }
}

/// The verified, read-only filesystem over a tree store.
pub struct VerifiedFs<S: ?Sized> {
    table: Table<S>,
    cache: BlockCache,
    /// Open files by inode, with the tick of their last use.
    files: Mutex<HashMap<Ino, (Arc<Open>, u64)>>,
    tick: AtomicU64,
    logged: Mutex<HashSet<(Ino, Option<u64>)>>,
    events: EventSink,
    /// Verification failures so far (for statistics and tests).
    pub failures: AtomicU64,
    read_ahead: ReadAhead,
}

/// Verified read-ahead of a directory's small files. A cold pass such as `tar` or a container's
/// start reads one small file after another, each a FUSE round trip the reader waits for (over
/// 8,000 for Debian, most of the time of a cold `tar`; README "Where the time goes"). When two
/// files of one directory have been read from their start, the serving thread, after replying,
/// reads the directory's other small files, verifies each exactly as a read would, and hands the
/// verified bytes to the kernel's page cache (`FUSE_NOTIFY_STORE`): the reader then finds them
/// there. A file that fails verification is skipped, so the kernel asks for it and gets EIO.
/// Each directory is read ahead once, and at most [`READ_AHEAD_DIR_BYTES`] of it.
struct ReadAhead {
    /// Set by whoever runs the session (`read_ahead_notifier`); without one, nothing is read
    /// ahead.
    notifier: Arc<OnceLock<fuser::Notifier>>,
    state: Mutex<ReadAheadState>,
}

#[derive(Default)]
struct ReadAheadState {
    /// The directory of the last small file read from its start.
    last_parent: Option<Ino>,
    /// Directories read ahead already.
    done: HashSet<Ino>,
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
        Kind::Fifo => FileType::NamedPipe,
    }
}

fn fuse_attr(ino: Ino, a: &Attr) -> FileAttr {
    FileAttr {
        ino: ino.into(),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: BLKSIZE,
        flags: 0,
    }
}

impl<S: TreeStore + ?Sized> VerifiedFs<S> {
    pub fn new(tree: VerifiedTree<S>, view: &View, events: EventSink, cache_bytes: usize) -> Self {
        Self {
            table: Table::new(tree, view),
            cache: BlockCache::new(cache_bytes),
            files: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
            logged: Mutex::new(HashSet::new()),
            events,
            failures: AtomicU64::new(0),
            read_ahead: ReadAhead {
                notifier: Arc::new(OnceLock::new()),
                state: Mutex::new(ReadAheadState::default()),
            },
        }
    }

    pub fn table(&self) -> &Table<S> {
        &self.table
    }

    /// Number the inodes exactly as a table that made `records` did (see
    /// [`crate::LoadRecord`]); an error means this filesystem must not serve that mount.
    pub fn replay(&self, records: &[crate::LoadRecord]) -> Result<(), crate::ReplayError> {
        self.table.replay(records)
    }

    /// Hear every directory load from now on, before its inode numbers reach the kernel.
    pub fn on_load(&self, hook: crate::LoadHook) {
        self.table.set_load_hook(hook);
    }

    /// Log a failure once per (inode, block).
    fn report(&self, ino: Ino, node: Option<&Node>, block: Option<u64>, e: &TreeError) {
        if e.is_corruption() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if !self.logged.lock().expect("log lock").insert((ino, block)) {
            return;
        }
        let label = node.map(|n| self.table.label(n)).unwrap_or("?");
        let path = self.table.path(ino);
        let what = if e.is_corruption() {
            "VERIFICATION FAILED"
        } else {
            "READ FAILED"
        };
        let at = block.map(|b| format!(" block={b}")).unwrap_or_default();
        (self.events)(&format!(
            "{what}: bundle={label} path={path}{at}: {e}; the read was refused (EIO); run `ct store fsck`"
        ));
    }

    fn load_error(&self, ino: Ino, e: LoadError) -> FsError {
        match e {
            LoadError::NotFound => FsError::NoEnt,
            LoadError::NotDir => FsError::NotDir,
            LoadError::Tree(error) => {
                let node = self.table.get(ino);
                self.report(ino, node.as_deref(), None, &error);
                FsError::Io
            }
        }
    }

    fn attr_of(&self, ino: Ino) -> FsResult<(Arc<Node>, FileAttr)> {
        let (n, a) = self.table.attr(ino).map_err(|e| self.load_error(ino, e))?;
        Ok((n, fuse_attr(ino, &a)))
    }

    fn lookup_inner(&self, parent: Ino, name: &OsStr) -> FsResult<FileAttr> {
        let c = self
            .table
            .children(parent)
            .map_err(|e| self.load_error(parent, e))?;
        let ino = c.find(name.as_bytes()).ok_or(FsError::NoEnt)?;
        Ok(self.attr_of(ino)?.1)
    }

    /// Where the session's notifier goes once the session exists (before it serves): verified
    /// read-ahead hands bytes to the kernel through it.
    pub fn read_ahead_notifier(&self) -> Arc<OnceLock<fuser::Notifier>> {
        self.read_ahead.notifier.clone()
    }

    /// After `ino` was read from its start: when it is the second small file of its directory
    /// in a row, read the directory's other small files ahead (see [`ReadAhead`]).
    fn read_ahead_after(&self, ino: Ino) {
        let Some(notifier) = self.read_ahead.notifier.get() else {
            return;
        };
        let Some(node) = self.table.get(ino) else {
            return;
        };
        if !matches!(node.body, Body::File { size, .. } if size <= READ_AHEAD_FILE_MAX) {
            return;
        }
        let parent = node.parent;
        {
            let mut st = self.read_ahead.state.lock().expect("read-ahead lock");
            let again = st.last_parent.replace(parent) == Some(parent);
            if !again || !st.done.insert(parent) {
                return;
            }
        }
        let Ok(children) = self.table.children(parent) else {
            return;
        };
        let mut budget = READ_AHEAD_DIR_BYTES;
        let mut buf = Vec::new();
        // From the end backwards: the reader goes forwards (the listing's order), and the two
        // meet in the middle instead of racing for the same next file.
        for (_, child) in children.entries.iter().rev() {
            if *child == ino {
                continue;
            }
            let Some(n) = self.table.get(*child) else {
                continue;
            };
            let Body::File { root, size } = &n.body else {
                continue;
            };
            if *size == 0 || *size > READ_AHEAD_FILE_MAX || *size > budget {
                continue;
            }
            budget -= size;
            // Verified here as for a read (one block: these files have one); a failure is
            // left for the kernel's own read to meet, and report.
            let Ok(f) = self.table.tree().open_file(root, *size) else {
                continue;
            };
            if f.read_blocks(0, 0, &mut buf).is_ok() {
                let _ = notifier.store((*child).into(), 0, &buf);
            }
        }
    }

    /// The open file of `ino`, from the cache or opened now (object file and outboard; a
    /// missing or malformed outboard or object fails here, with EIO, logged).
    fn file(&self, ino: Ino) -> FsResult<Arc<Open>> {
        let now = self.tick.fetch_add(1, Ordering::Relaxed);
        if let Some((f, used)) = self.files.lock().expect("files lock").get_mut(&ino) {
            *used = now;
            return Ok(f.clone());
        }
        let node = self.table.get(ino).ok_or(FsError::NoEnt)?;
        let open = Arc::new(match &node.body {
            Body::File { root, size } => match self.table.tree().open_file(root, *size) {
                Ok(f) => Open::Tree(f),
                Err(e) => {
                    self.report(ino, Some(&node), None, &e);
                    return Err(FsError::Io);
                }
            },
            Body::Memory(b) => Open::Memory(b.clone()),
            Body::Dir { .. } => return Err(FsError::IsDir),
            _ => return Err(FsError::Inval),
        });
        let mut files = self.files.lock().expect("files lock");
        if files.len() >= OPEN_FILES {
            let oldest = files
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                files.remove(&k);
            }
        }
        files.insert(ino, (open.clone(), now));
        Ok(open)
    }

    /// Serve `size` bytes at `offset`: every covering block verified before any is copied out.
    fn read_inner(
        &self,
        ino: Ino,
        offset: u64,
        size: u32,
        reply: impl FnOnce(&[u8]),
    ) -> FsResult<()> {
        let open = self.file(ino)?;
        let f = match open.as_ref() {
            Open::Memory(b) => {
                let s = (offset.min(b.len() as u64)) as usize;
                let e = (s + size as usize).min(b.len());
                reply(&b[s..e]);
                return Ok(());
            }
            Open::Tree(f) => f,
        };
        let Some((first, last)) = f.blocks_for(offset, size as u64) else {
            reply(&[]);
            return Ok(());
        };
        let bs = VERIFY_BLOCK_SIZE_V1;
        let end = offset.saturating_add(size as u64).min(f.size());
        let base = first * bs;
        let (lo, hi) = ((offset - base) as usize, (end - base) as usize);
        if first == last {
            let block_end = ((first + 1) * bs).min(f.size());
            let partial = offset != base || end != block_end;
            if partial {
                if let Some(b) = self.cache.get(f.root(), first) {
                    reply(&b[lo..hi]);
                    return Ok(());
                }
            }
            let mut buf = Vec::new();
            self.read_verified(ino, f, first, first, &mut buf)?;
            reply(&buf[lo..hi]);
            if partial {
                self.cache.put(f.root(), first, Arc::new(buf));
            }
            return Ok(());
        }
        // Whole blocks, or several: read into this thread's buffer (kept between requests, so
        // no allocation and no zero-filling per read), verified before any byte is replied.
        READ_BUF.with(|b| {
            let mut b = b.borrow_mut();
            let need = f.span_len(first, last).ok_or(FsError::Inval)?;
            if b.len() < need {
                b.resize(need, 0);
            }
            let n = f
                .read_blocks_into(first, last, &mut b[..need])
                .map_err(|e| self.read_failed(ino, e))?;
            reply(&b[lo..hi.min(n)]);
            Ok(())
        })
    }

    fn read_verified(
        &self,
        ino: Ino,
        f: &VerifiedFile,
        first: u64,
        last: u64,
        buf: &mut Vec<u8>,
    ) -> FsResult<()> {
        f.read_blocks(first, last, buf)
            .map_err(|e| self.read_failed(ino, e))
    }

    /// Report a read that failed verification (or could not be done), and answer EIO.
    fn read_failed(&self, ino: Ino, e: TreeError) -> FsError {
        let block = match &e {
            TreeError::Corrupt { block, .. } => block.map(|b| b.0),
            _ => None,
        };
        let node = self.table.get(ino);
        self.report(ino, node.as_deref(), block, &e);
        FsError::Io
    }

    fn readlink_inner(&self, ino: Ino) -> FsResult<Vec<u8>> {
        match &self.table.get(ino).ok_or(FsError::NoEnt)?.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(FsError::Inval),
        }
    }

    /// `(ino, kind, name)` of directory entries from `offset` on ("." and ".." first).
    fn dir_entries(&self, ino: Ino, offset: u64) -> FsResult<Vec<(Ino, u64, Vec<u8>)>> {
        let node = self.table.get(ino).ok_or(FsError::NoEnt)?;
        let c = self
            .table
            .children(ino)
            .map_err(|e| self.load_error(ino, e))?;
        let parent = if ino == ROOT_INO {
            ROOT_INO
        } else {
            node.parent
        };
        let mut out = Vec::new();
        let all = [(ino, b".".to_vec()), (parent, b"..".to_vec())]
            .into_iter()
            .chain(c.entries.iter().map(|(n, i)| (*i, n.clone())));
        for (i, (child, name)) in all.enumerate().skip(offset as usize) {
            out.push((child, i as u64 + 1, name));
        }
        Ok(out)
    }

    fn xattr_reply(data: &[u8], size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(data.len() as u32);
        } else if data.len() > size as usize {
            reply.error(Errno::ERANGE);
        } else {
            reply.data(data);
        }
    }

    fn access_inner(&self, req: &Request, ino: Ino, mask: AccessFlags) -> FsResult<()> {
        let (_, a) = self.table.attr(ino).map_err(|e| self.load_error(ino, e))?;
        if mask.contains(AccessFlags::W_OK) {
            return Err(FsError::ReadOnly);
        }
        if req.uid() == 0 {
            let any_x = a.perm & 0o111 != 0 || a.kind == Kind::Dir;
            return if mask.contains(AccessFlags::X_OK) && !any_x {
                Err(FsError::Access)
            } else {
                Ok(())
            };
        }
        let shift = if req.uid() == a.uid {
            6
        } else if req.gid() == a.gid {
            3
        } else {
            0
        };
        let bits = (a.perm >> shift) & 7;
        let want = (mask.bits() & 7) as u16;
        if bits & want == want {
            Ok(())
        } else {
            Err(FsError::Access)
        }
    }
}

impl<S: TreeStore + ?Sized + 'static> Filesystem for VerifiedFs<S> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_MAX_PAGES,
        ] {
            let _ = config.add_capabilities(cap);
        }
        let _ = config
            .set_max_readahead(MAX_READAHEAD)
            .or_else(|max| config.set_max_readahead(max));
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.lookup_inner(parent.into(), name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(ino.into()) {
            Ok((_, a)) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.readlink_inner(ino.into()) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e.errno()),
        }
    }

    /// ENOSYS: the kernel then never sends an open, flush or release again for this mount
    /// ("no_open") and keeps every file's page cache across opens (FOPEN_KEEP_CACHE is its
    /// default then). Nothing is lost: the mount is read-only, so the VFS refuses opens for
    /// writing (EROFS) before they would reach us, the kernel checks permissions itself
    /// (default_permissions), and reads verify every block, by inode, whatever the handle.
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut reply = Some(reply);
        let r = self.read_inner(ino.into(), offset, size, |d| {
            if let Some(r) = reply.take() {
                r.data(d)
            }
        });
        match (r, reply) {
            (Err(e), Some(r)) => r.error(e.errno()),
            // Replied: the reader goes on while this thread reads ahead.
            (Ok(()), None) if offset == 0 => self.read_ahead_after(ino.into()),
            _ => {}
        }
    }

    /// ENOSYS, as for [`Filesystem::open`]: the kernel stops sending opendir and releasedir
    /// ("no_opendir") and caches listings across opens (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE is
    /// its default then). A directory node is still verified when first looked up or listed.
    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.dir_entries(ino.into(), offset) {
            Ok(list) => {
                for (child, off, name) in list {
                    let kind = self
                        .table
                        .get(child)
                        .map_or(FileType::RegularFile, |n| file_type(n.attr.kind));
                    if reply.add(child.into(), off, kind, OsStr::from_bytes(&name)) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.dir_entries(ino.into(), offset) {
            Ok(list) => {
                for (child, off, name) in list {
                    // A child directory whose node fails verification is still listed, with
                    // its parent's facts and no caching (TTL 0), so that the listing works and
                    // the lookup of that one directory fails with EIO, as it must.
                    let (attr, ttl) = match self.attr_of(child) {
                        Ok((_, a)) => (a, TTL),
                        Err(FsError::Io) => match self.table.get(child) {
                            Some(n) => (fuse_attr(child, &n.attr), Duration::ZERO),
                            None => return reply.error(Errno::EIO),
                        },
                        Err(e) => return reply.error(e.errno()),
                    };
                    if reply.add(
                        child.into(),
                        off,
                        OsStr::from_bytes(&name),
                        &ttl,
                        &attr,
                        Generation(0),
                    ) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Read-only: nothing free. `files` counts the inodes reached so far (loading is lazy).
        let files = self.table.len() as u64;
        reply.statfs(0, 0, 0, files, 0, BLKSIZE, 255, BLKSIZE);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.table.get(ino.into()) {
            None => reply.error(Errno::ENOENT),
            Some(n) => match n.xattrs.get(name.as_bytes()) {
                Some(v) if served_xattr(name.as_bytes()) => Self::xattr_reply(v, size, reply),
                _ => reply.error(FsError::NoData.errno()),
            },
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.table.get(ino.into()) {
            None => reply.error(Errno::ENOENT),
            Some(n) => {
                let mut list = Vec::new();
                for k in n.xattrs.keys().filter(|k| served_xattr(k)) {
                    list.extend_from_slice(k);
                    list.push(0);
                }
                Self::xattr_reply(&list, size, reply);
            }
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.access_inner(req, ino.into(), mask) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.errno()),
        }
    }

    // ---- everything that writes: EROFS -------------------------------------------------

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }
    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }
    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }
    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }
    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }
    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }
    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }
}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod memory_tests;

#[cfg(test)]
mod tests {
    use super::served_xattr;

    #[test]
    fn overlay_control_xattrs_are_not_served() {
        for name in [
            &b"trusted.overlay.opaque"[..],
            b"trusted.overlay.redirect",
            b"trusted.overlay.metacopy",
            b"user.overlay.opaque",
        ] {
            assert!(!served_xattr(name), "{}", String::from_utf8_lossy(name));
        }
        for name in [
            &b"user.note"[..],
            b"security.capability",
            b"trusted.other",
            b"trusted.overlayish",
        ] {
            assert!(served_xattr(name), "{}", String::from_utf8_lossy(name));
        }
    }
}
