//! Applying OCI layers in order to build one rootfs (spec/rootfs.md §3): decompress, read tar
//! entries, normalise names, refuse hostile entries, stream file contents to a [`ContentSink`],
//! and merge into the tree; then seal the tree into directory nodes and a rootfs digest.
//!
//! Memory: the tree (one small record per inode) plus bounded header buffers; file contents
//! pass through in 256 KiB reads. Every refusal names the layer and the entry.

use super::error::{bad_name, EntryRef, Fail, LayerError, Refusal};
use super::ids::{DirDigest, RootfsDigest};
use super::node::{DirEntry, Metadata, RootRecord, Timestamp, MAX_XATTRS_V1, MODE_MASK};
use super::sink::ContentSink;
use super::tar::{Input, TarEntry, TarKind, TarReader, MAX_PATH_BYTES_V1};
use super::tree::{check_component, NewNode, Tree};
use crate::source::Compression;
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Mode recorded for every symlink: Linux ignores and reports 0777 whatever the header says.
pub const SYMLINK_MODE_V1: u32 = 0o777;

/// Bounds on untrusted layers. Exceeding one refuses the layer (class `limit`, exit 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes of one layer's tar stream (a decompression bomb stops here).
    pub max_layer_bytes: u64,
    /// Tar headers in one layer (entries and extension headers alike).
    pub max_layer_entries: u64,
    /// Inodes alive in the merged tree at any time.
    pub max_inodes: u64,
}

impl Default for Limits {
    /// Generous but finite: 64 GiB per layer, 2^21 entries per layer, 2^22 inodes.
    fn default() -> Self {
        Self {
            max_layer_bytes: 64 << 30,
            max_layer_entries: 1 << 21,
            max_inodes: 1 << 22,
        }
    }
}

/// What applying one layer saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub files: u64,
    pub file_bytes: u64,
    pub tar_bytes: u64,
}

/// A sealed rootfs: its digest, its root record, and every directory node by digest.
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub digest: RootfsDigest,
    pub root: RootRecord,
    /// Canonical encodings of all directory nodes (identical directories appear once).
    pub dirs: BTreeMap<DirDigest, Vec<u8>>,
    pub inodes: u64,
}

impl Rootfs {
    /// Every entry with its full path (`/`-joined, no leading `/`), sorted by path: the
    /// verified walk ([`super::walk::Walk`]) over `dirs`. Fails only if `dirs` lacks a node or
    /// holds one that does not match its digest or decode (never for what `finish` made).
    pub fn walk(&self) -> Result<Vec<(Vec<u8>, DirEntry)>, super::walk::WalkError> {
        let tree = super::verified::VerifiedTree::new(std::sync::Arc::new(NodesOnly(&self.dirs)));
        let mut out = Vec::new();
        for item in super::walk::Walk::new(&tree, &self.root) {
            match item {
                super::walk::Item::Entry(e) if e.depth > 0 => {
                    out.push((e.path[1..].to_vec(), e.entry));
                }
                super::walk::Item::Error(e) => return Err(e),
                _ => {}
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The directory nodes of a sealed rootfs as a tree store without file contents.
struct NodesOnly<'a>(&'a BTreeMap<DirDigest, Vec<u8>>);

impl super::verified::TreeStore for NodesOnly<'_> {
    fn dir_node(&self, digest: &DirDigest) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.0.get(digest).cloned())
    }
    fn outboard(&self, _: &super::ids::Blake3Root) -> std::io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn open_content(
        &self,
        root: &super::ids::Blake3Root,
        _: u64,
    ) -> std::io::Result<std::sync::Arc<dyn super::verified::ContentReader>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            root.to_string(),
        ))
    }
}

/// Chunks of decompressed layer a decoding thread may have ready ahead of the tar reader
/// (with [`DECODE_CHUNK`], at most 1 MiB in flight: a decompression bomb is stopped by the
/// reader's byte limit, and the decoder never runs further ahead than this).
pub const DECODE_AHEAD: usize = 4;
/// Bytes decompressed per chunk.
const DECODE_CHUNK: usize = 256 << 10;

/// The decoding thread: decompress `r` in chunks until its end, an error (sent on, then stop),
/// or the reader hanging up.
fn decode(mut r: Box<dyn Read + Send + '_>, tx: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut buf = vec![0u8; DECODE_CHUNK];
        let mut filled = 0;
        // Fill the chunk (decoders return short reads), so chunks stay large.
        let end = loop {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break true,
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if filled > 0 {
                        buf.truncate(filled);
                        let _ = tx.send(Ok(buf));
                    }
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        };
        buf.truncate(filled);
        if (!buf.is_empty() && tx.send(Ok(buf)).is_err()) || end {
            return;
        }
    }
}

/// The tar reader's side of the decoding thread: its chunks as one stream; the thread's error
/// as this reader's; the end when the thread is done.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    fn new(rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Applies layers in order. After an error the builder is unusable: drop it.
pub struct RootfsBuilder {
    tree: Tree,
    limits: Limits,
    layers: usize,
}

/// Split a tar path into components: leading `/` and `./`, empty and `.` components are
/// dropped; `..` is refused (§3.2). An empty result is the root.
pub fn normalize_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    if raw.len() > MAX_PATH_BYTES_V1 {
        return Err(bad_name(format!(
            "the path is {} bytes long (limit {MAX_PATH_BYTES_V1})",
            raw.len()
        )));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        check_component(c)?;
        out.push(c.to_vec());
    }
    Ok(out)
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

/// The data of the current tar entry, as a reader for the sink. A failure of the layer stream
/// is kept in `failed` so it is reported as what it is, whatever the sink makes of it.
struct EntryData<'a, R> {
    tar: &'a mut TarReader<R>,
    failed: &'a mut Option<Fail>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tar.data(buf).map_err(|f| {
            let msg = match &f {
                Fail::Refused(r) => r.to_string(),
                Fail::Io(e) | Fail::Sink(e) => e.to_string(),
            };
            *self.failed = Some(f);
            io::Error::other(msg)
        })
    }
}

impl RootfsBuilder {
    pub fn new(limits: Limits) -> Self {
        Self {
            tree: Tree::new(limits.max_inodes),
            limits,
            layers: 0,
        }
    }

    /// Apply the next layer (layers are numbered from 0 in the order applied). A compressed
    /// layer is decompressed on a second thread, at most [`DECODE_AHEAD`] chunks ahead of the
    /// tar reader, so decompression (and whatever `blob` does as it is read, such as hashing the
    /// blob) overlaps hashing and storing file contents here.
    pub fn apply_layer(
        &mut self,
        blob: impl Read + Send,
        compression: Compression,
        sink: &mut dyn ContentSink,
    ) -> Result<LayerStats, LayerError> {
        let layer = self.layers;
        self.layers += 1;
        let decoded: Box<dyn Read + Send + '_> = match compression {
            Compression::None => return self.read_layer(layer, Box::new(blob), false, sink),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Compression::Zstd => match zstd::stream::read::Decoder::new(blob) {
                Ok(d) => Box::new(d),
                Err(source) => {
                    return Err(LayerError::Io {
                        layer,
                        offset: 0,
                        source,
                    })
                }
            },
        };
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel(DECODE_AHEAD);
            s.spawn(move || decode(decoded, tx));
            // The reader owns the receiving end: when the layer is read (or refused) it is
            // dropped, and the decoding thread stops at its next chunk.
            self.read_layer(layer, Box::new(ChunkReader::new(rx)), true, sink)
        })
    }

    fn read_layer(
        &mut self,
        layer: usize,
        decoded: Box<dyn Read + '_>,
        compressed: bool,
        sink: &mut dyn ContentSink,
    ) -> Result<LayerStats, LayerError> {
        let input = Input::new(decoded, self.limits.max_layer_bytes, compressed);
        let mut tar = TarReader::new(input, self.limits.max_layer_entries);
        let mut stats = LayerStats::default();
        let lay = layer as u32;
        loop {
            let e = match tar.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err((offset, path, f)) => return Err(fail(layer, EntryRef { path, offset }, f)),
            };
            let at = EntryRef {
                path: Some(e.path.clone()),
                offset: e.offset,
            };
            stats.entries += 1;
            if e.kind == TarKind::Regular {
                stats.files += 1;
                stats.file_bytes = stats.file_bytes.saturating_add(e.size);
            }
            self.apply_entry(e, lay, &mut tar, sink)
                .map_err(|f| fail(layer, at, f))?;
        }
        stats.tar_bytes = tar.input.pos();
        Ok(stats)
    }

    fn apply_entry<R: Read>(
        &mut self,
        e: TarEntry,
        layer: u32,
        tar: &mut TarReader<R>,
        sink: &mut dyn ContentSink,
    ) -> Result<(), Fail> {
        let comps = normalize_path(&e.path)?;
        if let Some((last, dirs)) = comps.split_last() {
            if dirs.iter().any(|c| c.starts_with(WHITEOUT_PREFIX)) {
                return Err(bad_name(
                    "a directory name starts with \".wh.\" (reserved for whiteouts)",
                )
                .into());
            }
            if last == OPAQUE_MARKER {
                return Ok(self.tree.opaque(dirs, layer)?);
            }
            if last.starts_with(WHITEOUT_META_PREFIX) {
                return Ok(()); // other `.wh..wh.` names: whiteout metadata, ignored (§3.5)
            }
            if let Some(name) = last.strip_prefix(WHITEOUT_PREFIX) {
                if name.is_empty() || name == b"." || name == b".." {
                    return Err(Refusal::Whiteout {
                        reason: "it names the root, its own directory or a path outside the tree",
                    }
                    .into());
                }
                return Ok(self.tree.whiteout(dirs, name, layer)?);
            }
        }
        let meta = metadata(&e)?;
        let Some((name, dirs)) = comps.split_last() else {
            return match e.kind {
                TarKind::Directory => {
                    self.tree.set_root_meta(meta);
                    Ok(())
                }
                _ => {
                    Err(bad_name("the root directory can only be set by a directory entry").into())
                }
            };
        };
        // Parents are checked (and created) before any content is read.
        let parent = self.tree.walk_dirs(dirs, true, layer)?.expect("created");
        let node = match e.kind {
            TarKind::Directory => NewNode::Dir,
            TarKind::Regular => {
                let mut failed = None;
                let result = sink.file_at(
                    &comps.join(&b'/'),
                    &mut EntryData {
                        tar,
                        failed: &mut failed,
                    },
                    e.size,
                );
                if let Some(f) = failed {
                    return Err(f);
                }
                let root = result.map_err(Fail::Sink)?;
                if tar.remaining() != 0 {
                    return Err(Fail::Sink(io::Error::other(
                        "the sink did not read the whole file",
                    )));
                }
                NewNode::File { size: e.size, root }
            }
            TarKind::HardLink => {
                let target = normalize_path(&e.link).map_err(|r| match r {
                    Refusal::DotDot => Refusal::HardLink {
                        target: super::error::show(&e.link),
                        reason: "the target is outside the tree (a \"..\" component)",
                    },
                    other => other,
                })?;
                return Ok(self.tree.hard_link(parent, &comps, &target, layer)?);
            }
            TarKind::Symlink => {
                if e.link.is_empty() {
                    return Err(bad_name("a symbolic link with an empty target").into());
                }
                if e.link.len() > MAX_PATH_BYTES_V1 {
                    return Err(bad_name("a symbolic link target over 4095 bytes").into());
                }
                NewNode::Symlink(e.link.clone())
            }
            TarKind::CharDevice => NewNode::CharDevice(e.rdev.0, e.rdev.1),
            TarKind::BlockDevice => NewNode::BlockDevice(e.rdev.0, e.rdev.1),
            TarKind::Fifo => NewNode::Fifo,
        };
        let meta = if e.kind == TarKind::Symlink {
            Metadata {
                mode: SYMLINK_MODE_V1,
                ..meta
            }
        } else {
            meta
        };
        Ok(self.tree.put(parent, name, node, meta, layer)?)
    }

    /// Number of layers applied so far.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Seal the merged tree: directory nodes, root record and rootfs digest.
    pub fn finish(self) -> Rootfs {
        let (root, dirs) = self.tree.seal();
        Rootfs {
            digest: root.digest(),
            root,
            dirs,
            inodes: self.tree.inode_count(),
        }
    }
}

fn fail(layer: usize, entry: EntryRef, f: Fail) -> LayerError {
    match f {
        Fail::Refused(problem) => LayerError::Refused {
            layer,
            entry,
            problem,
        },
        Fail::Io(source) => LayerError::Io {
            layer,
            offset: entry.offset,
            source,
        },
        Fail::Sink(source) => LayerError::Sink {
            layer,
            entry,
            source,
        },
    }
}

fn metadata(e: &TarEntry) -> Result<Metadata, Refusal> {
    if e.xattrs.len() > MAX_XATTRS_V1 {
        return Err(Refusal::Limit {
            what: format!(
                "{} xattrs on one entry (limit {MAX_XATTRS_V1})",
                e.xattrs.len()
            ),
        });
    }
    Ok(Metadata {
        mode: e.mode & MODE_MASK,
        uid: e.uid,
        gid: e.gid,
        mtime: Timestamp {
            secs: e.mtime.0,
            nanos: e.mtime.1,
        },
        xattrs: e.xattrs.clone(),
    })
}
