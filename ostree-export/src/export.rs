//! A verified rootfs as an OSTree commit (`ct export --format ostree`): core's verified walk
//! feeds the commit builder, so every directory node and every block of every file written
//! was checked against the signed tree first; a damaged store object stops the export before a
//! ref is written. The commit is deterministic (timestamp from the signed `created`, no parent
//! unless asked) and carries what is needed to check it against the bundle's signature later:
//! the signed manifest, its signatures, and the signed tree ([`crate::signed_tree`]).

use crate::signed_tree::SignedTree;
use crate::{Attrs, Checksum, CommitInfo, Error as OstreeError, MetaValue, Repo, WriteStats};
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::walk::Entry;
use cerro_core::rootfs::{
    DirEntry, DirNode, Metadata, Payload, RootRecord, TreeError, TreeStore, VerifiedFile,
    VerifiedTree, Walk, WalkError, WalkItem,
};
use cerro_core::{Sha256Digest, SignatureSet};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Commit metadata keys. `version` is OSTree's own (shown by `ostree log`, used by rpm-ostree).
pub const META_VERSION: &str = "version";
/// The bundle's digest, `sha256:…` (of its signed manifest).
pub const META_BUNDLE: &str = "cerro.bundle";
/// The signed rootfs digest, `ctfs:…`.
pub const META_ROOTFS: &str = "cerro.rootfs";
/// The signed manifest's bytes (`ay`).
pub const META_MANIFEST: &str = "cerro.manifest";
/// Prefix of one key per signature file: `cerro.signature.KEYID` → its bytes (`ay`).
pub const META_SIGNATURE_PREFIX: &str = "cerro.signature.";
/// The signed tree's root record and directory nodes (`ay`, [`SignedTree`]).
pub const META_TREE: &str = "cerro.tree";
/// The paths of the entries left out of the commit's tree (`as`, escaped as `ct store tree`
/// shows paths, in walk order): device nodes and FIFOs, which OSTree cannot hold. Present only
/// when there are some; they stay in [`META_TREE`].
pub const META_SKIPPED: &str = "cerro.skipped";

/// The verified bundle being exported.
pub struct Bundle<'a> {
    pub manifest: &'a Manifest,
    /// The signed manifest's exact bytes.
    pub manifest_bytes: &'a [u8],
    pub signatures: &'a SignatureSet,
    /// Its verified root record (hashes to `manifest.rootfs.digest`).
    pub root: &'a RootRecord,
}

/// What the export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub commit: Checksum,
    pub stats: WriteStats,
    /// Regular files and symlinks written (each path once; hard links count per path).
    pub files: u64,
    /// Bytes of file content read verified.
    pub bytes: u64,
    /// Entries OSTree cannot hold (device nodes, FIFOs), left out of the commit's tree, named
    /// in [`META_SKIPPED`] and kept in its signed tree.
    pub skipped: Vec<String>,
}

/// How to export.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The commit's parent (none by default, so a bundle always gives the same commit).
    pub parent: Option<Checksum>,
    /// Leave device nodes and FIFOs out of the tree; without it the export stops at the first
    /// ([`ExportError::Special`]; [`preflight`] lists them all beforehand).
    pub skip_special: bool,
}

/// Why the export stopped. Objects already written stay in the repository (valid, and named
/// by no ref), so a second export after a repair writes only what is missing.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A directory node of the signed tree could not be read verified.
    #[error("{0}")]
    Walk(Box<WalkError>),
    /// A file's content could not be read verified.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<TreeError>,
    },
    /// A device node or FIFO, and the caller did not ask to skip them.
    #[error("{path}: OSTree cannot hold {kind}")]
    Special { path: String, kind: &'static str },
    /// Something OSTree cannot represent (a name or symlink target that is not UTF-8).
    #[error("{path}: OSTree cannot hold this entry: {why}")]
    NotRepresentable { path: String, why: String },
    /// The repository refused or failed.
    #[error("{0}")]
    Ostree(#[from] OstreeError),
}

/// The signed `created` as seconds since the epoch (the commit's timestamp).
fn created_secs(m: &Manifest) -> Result<u64, ExportError> {
    chrono::DateTime::parse_from_rfc3339(&m.package.created)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .ok_or_else(|| ExportError::NotRepresentable {
            path: "/".into(),
            why: format!(
                "the signed creation time {:?} is not a time after 1970",
                m.package.created
            ),
        })
}

fn attrs(m: &Metadata) -> Attrs {
    Attrs {
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
        xattrs: m.xattrs.clone(),
    }
}

/// The commit metadata of a bundle (sorted by the writer); `skipped` lists what was left out.
pub fn commit_metadata(
    b: &Bundle<'_>,
    tree: &SignedTree,
    skipped: &[String],
) -> Vec<(String, MetaValue)> {
    let mut meta = vec![
        (
            META_VERSION.to_string(),
            MetaValue::Str(b.manifest.package.version.clone()),
        ),
        (
            META_BUNDLE.to_string(),
            MetaValue::Str(Sha256Digest::of(b.manifest_bytes).to_string()),
        ),
        (
            META_ROOTFS.to_string(),
            MetaValue::Str(b.manifest.rootfs.digest.to_string()),
        ),
        (
            META_MANIFEST.to_string(),
            MetaValue::Bytes(b.manifest_bytes.to_vec()),
        ),
        (META_TREE.to_string(), MetaValue::Bytes(tree.encode())),
    ];
    if !skipped.is_empty() {
        meta.push((
            META_SKIPPED.to_string(),
            MetaValue::StrList(skipped.to_vec()),
        ));
    }
    for (id, sig) in b.signatures {
        meta.push((
            format!("{META_SIGNATURE_PREFIX}{id}"),
            MetaValue::Bytes(sig.clone()),
        ));
    }
    meta
}

/// A verified file as a reader; a verification failure is kept (typed) and reported as an I/O
/// error to the writer, which stops.
struct FileReader<'a> {
    file: &'a VerifiedFile,
    offset: u64,
    failed: Option<TreeError>,
    progress: &'a mut dyn FnMut(u64),
}

/// Bytes asked of a verified file per read (a multiple of the verification block).
const READ_CHUNK: u64 = 1 << 20;

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset >= self.file.size() || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(READ_CHUNK);
        match self.file.read_at(self.offset, want) {
            Ok(bytes) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                self.offset += bytes.len() as u64;
                (self.progress)(bytes.len() as u64);
                Ok(bytes.len())
            }
            Err(e) => {
                let shown = io::Error::other(e.to_string());
                self.failed = Some(e);
                Err(shown)
            }
        }
    }
}

fn shown(path: &[u8]) -> String {
    cerro_core::text::escape_bytes(path)
}

/// What OSTree cannot hold, as a phrase: "a FIFO", "a character device (1:3)".
pub fn special_kind(p: &Payload) -> Option<&'static str> {
    match p {
        Payload::CharDevice { .. } => Some("a character device"),
        Payload::BlockDevice { .. } => Some("a block device"),
        Payload::Fifo { .. } => Some("a FIFO"),
        _ => None,
    }
}

/// What an export would meet, found before anything is written: one pass over the verified
/// directory nodes (no file content is read) that answers every device node and FIFO, with
/// what it is, in walk order — or the first entry OSTree cannot hold at all (a name or symlink
/// target that is not UTF-8), so that the export can refuse before the repository is touched.
pub fn preflight<S: TreeStore + ?Sized>(
    tree: &VerifiedTree<S>,
    root: &RootRecord,
) -> Result<Vec<(String, &'static str)>, ExportError> {
    let mut found = Vec::new();
    for item in Walk::new(tree, root) {
        let e = match item {
            WalkItem::Error(e) => return Err(ExportError::Walk(Box::new(e))),
            WalkItem::DirEnd(_) => continue,
            WalkItem::Entry(e) => e,
        };
        if let Some(kind) = special_kind(e.payload()) {
            found.push((shown(&e.path), kind));
            continue;
        }
        let refused = |why: String| ExportError::NotRepresentable {
            path: shown(&e.path),
            why,
        };
        if e.depth > 0 {
            crate::objects::validate_name(e.name()).map_err(refused)?;
        }
        if let Payload::Symlink { target, .. } = e.payload() {
            crate::objects::validate_symlink_target(target).map_err(refused)?;
        }
    }
    Ok(found)
}

/// Write the bundle's tree as a commit in `repo` and answer it; no ref is touched (the caller
/// sets one last, once everything is written). `progress` hears bytes of content read.
pub fn export<S: TreeStore + ?Sized>(
    tree: &VerifiedTree<S>,
    bundle: &Bundle<'_>,
    repo: &Repo,
    options: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Exported, ExportError> {
    let timestamp = created_secs(bundle.manifest)?;
    let mut builder = repo.begin_commit(&attrs(&bundle.root.meta))?;
    let mut signed = SignedTree {
        root: bundle.root.clone(),
        nodes: BTreeMap::new(),
    };
    // The entries of each open directory, to rebuild its node for the signed tree.
    let mut open: Vec<Vec<DirEntry>> = Vec::new();
    let (mut files, mut bytes, mut skipped) = (0u64, 0u64, Vec::new());
    let not_representable = |e: &Entry, err: OstreeError| match err {
        OstreeError::NotRepresentable(why) => ExportError::NotRepresentable {
            path: shown(&e.path),
            why,
        },
        other => ExportError::Ostree(other),
    };
    for item in Walk::new(tree, bundle.root) {
        let e = match item {
            WalkItem::Error(err) => return Err(ExportError::Walk(Box::new(err))),
            WalkItem::DirEnd(e) => {
                let node = DirNode {
                    entries: open.pop().expect("an end closes an open directory"),
                };
                signed.nodes.insert(node.digest(), node.encode());
                if e.depth > 0 {
                    builder.dir_end()?;
                }
                continue;
            }
            WalkItem::Entry(e) => e,
        };
        if let Some(siblings) = open.last_mut() {
            siblings.push(e.entry.clone());
        }
        match e.payload() {
            Payload::Directory { .. } => {
                if e.depth > 0 {
                    builder
                        .dir_start(e.name(), &attrs(e.meta()))
                        .map_err(|err| not_representable(&e, err))?;
                }
                open.push(Vec::new());
            }
            Payload::File { size, root, .. } => {
                let file = tree
                    .open_file(root, *size)
                    .map_err(|source| ExportError::File {
                        path: shown(&e.path),
                        source: Box::new(source),
                    })?;
                let mut reader = FileReader {
                    file: &file,
                    offset: 0,
                    failed: None,
                    progress,
                };
                let written = builder.file(e.name(), &attrs(e.meta()), *size, &mut reader);
                if let Some(source) = reader.failed.take() {
                    return Err(ExportError::File {
                        path: shown(&e.path),
                        source: Box::new(source),
                    });
                }
                written.map_err(|err| not_representable(&e, err))?;
                files += 1;
                bytes += size;
            }
            Payload::Symlink { target, .. } => {
                builder
                    .symlink(e.name(), &attrs(e.meta()), target)
                    .map_err(|err| not_representable(&e, err))?;
                files += 1;
            }
            special @ (Payload::CharDevice { .. }
            | Payload::BlockDevice { .. }
            | Payload::Fifo { .. }) => {
                if !options.skip_special {
                    return Err(ExportError::Special {
                        path: shown(&e.path),
                        kind: special_kind(special).unwrap_or("this entry"),
                    });
                }
                skipped.push(shown(&e.path));
            }
        }
    }
    let info = CommitInfo {
        subject: format!(
            "{} {}",
            bundle.manifest.package.name, bundle.manifest.package.version
        ),
        body: format!(
            "Exported by ct from bundle {} (rootfs {}).",
            Sha256Digest::of(bundle.manifest_bytes),
            bundle.manifest.rootfs.digest
        ),
        timestamp,
        parent: options.parent,
        metadata: commit_metadata(bundle, &signed, &skipped),
    };
    let done = builder.finish(info)?;
    Ok(Exported {
        commit: done.commit,
        stats: done.stats,
        files,
        bytes,
        skipped,
    })
}
