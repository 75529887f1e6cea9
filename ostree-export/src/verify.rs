//! Checking an OSTree commit against the bundle it claims to be (`ct verify ostree:REPO:REF`).
//! [`read_claim`] takes the signed manifest and its signatures from the commit's metadata (the
//! caller checks them like any bundle's: signatures, trust, policy). [`check_tree`] then
//! re-derives the rootfs digest from the commit's own tree — every content object read to its
//! end and checked against its OSTree checksum, every file's content root recomputed — taking
//! from the signed tree in the metadata only what OSTree cannot hold (mtimes, hard-link groups,
//! device and FIFO entries), and answers the first path where the commit differs from the
//! signed tree. The signed tree itself is believed only as far as it hashes to the signed
//! rootfs digest.

use crate::export::{META_MANIFEST, META_SIGNATURE_PREFIX, META_SKIPPED, META_TREE};
use crate::signed_tree::SignedTree;
use crate::{Attrs, Checksum, Commit, DirTree, Error as OstreeError, FileKind, MetaValue, Repo};
use cerro_core::rootfs::{
    Blake3Root, DirDigest, DirEntry, DirNode, Link, Metadata, Payload, RootRecord, RootfsDigest,
    VerifiedTree,
};
use cerro_core::{KeyId, SignatureSet};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

/// What a commit claims: the bundle's signed manifest and signatures.
#[derive(Debug)]
pub struct Claim {
    pub commit: Checksum,
    pub manifest_bytes: Vec<u8>,
    pub signatures: SignatureSet,
    /// The commit object as read (verified against its checksum).
    pub object: Commit,
}

/// Why a commit is not the signed bundle, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The repository failed, or one of its objects is missing, corrupt or malformed.
    #[error("{0}")]
    Ostree(#[from] OstreeError),
    /// The commit carries no bundle (not exported by ct), or its record of one is malformed.
    #[error("commit {commit}: {why}")]
    NotABundle { commit: Checksum, why: String },
    /// The commit's tree differs from the signed tree, first at `path`.
    #[error("{path}: {what}")]
    Differs { path: String, what: String },
}

/// Read the commit `reference` names (a ref, or a full checksum) and the bundle it carries.
pub fn read_claim(repo: &Repo, reference: &str) -> Result<Claim, CheckError> {
    let commit = match reference.parse::<Checksum>() {
        Ok(c) => c,
        Err(_) => repo.resolve_ref(reference)?,
    };
    let object = repo.read_commit(&commit)?;
    let not = |why: String| CheckError::NotABundle { commit, why };
    let manifest_bytes = object
        .meta_bytes(META_MANIFEST)
        .ok_or_else(|| {
            not(format!(
                "no {META_MANIFEST} in its metadata: not exported by ct"
            ))
        })?
        .to_vec();
    let mut signatures = SignatureSet::new();
    for (key, value) in &object.metadata {
        let Some(id) = key.strip_prefix(META_SIGNATURE_PREFIX) else {
            continue;
        };
        let id = KeyId::new(id).map_err(|e| not(format!("metadata key {key:?}: {e}")))?;
        let MetaValue::Bytes(sig) = value else {
            return Err(not(format!("metadata key {key:?} is not a byte string")));
        };
        signatures.insert(id, sig.clone());
    }
    Ok(Claim {
        commit,
        manifest_bytes,
        signatures,
        object,
    })
}

/// What [`check_tree`] looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub files: u64,
    pub bytes: u64,
    /// The device nodes and FIFOs taken from the signed tree (OSTree holds none), sorted; the
    /// commit's `cerro.skipped` names exactly these.
    pub skipped: Vec<String>,
}

/// Re-derive the rootfs digest of `claim`'s tree and compare it with `signed` (the rootfs
/// digest of the manifest the caller verified). `progress` hears bytes of content read.
pub fn check_tree(
    repo: &Repo,
    claim: &Claim,
    signed: &RootfsDigest,
    progress: &mut dyn FnMut(u64),
) -> Result<Checked, CheckError> {
    let commit = claim.commit;
    let not = |why: String| CheckError::NotABundle { commit, why };
    let bytes = claim
        .object
        .meta_bytes(META_TREE)
        .ok_or_else(|| not(format!("no {META_TREE} in its metadata")))?;
    let tree = SignedTree::decode(bytes).map_err(|e| not(format!("{META_TREE}: {e}")))?;
    if tree.root.digest() != *signed {
        return Err(CheckError::Differs {
            path: "/".into(),
            what: format!(
                "the commit's record of the signed tree has root {}, but the signed manifest names rootfs {signed}",
                tree.root.digest()
            ),
        });
    }
    let root = tree.root.clone();
    let signed_tree = VerifiedTree::new(Arc::new(tree));
    let mut d = Deriver {
        repo,
        signed: &signed_tree,
        checked: Checked::default(),
        progress,
    };
    let root_meta = repo.read_dirmeta(&claim.object.root_meta)?;
    let meta = d.meta("/", &root_meta, &root.meta)?;
    let dir = d.dir("/", &claim.object.root_tree, &root.dir)?;
    let derived = RootRecord { meta, dir }.digest();
    let mut listed = claim
        .object
        .meta_str_list(META_SKIPPED)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    listed.sort();
    d.checked.skipped.sort();
    if listed != d.checked.skipped {
        return Err(differs(
            "/",
            format!(
                "the commit's {META_SKIPPED} names [{}], but the signed tree has [{}] where the \
                 commit holds nothing",
                listed.join(", "),
                d.checked.skipped.join(", ")
            ),
        ));
    }
    if derived != *signed {
        // Every entry matched, yet the digests differ: cannot happen unless the format does.
        return Err(CheckError::Differs {
            path: "/".into(),
            what: format!("the commit's tree gives rootfs {derived}, the signed one is {signed}"),
        });
    }
    Ok(d.checked)
}

struct Deriver<'a> {
    repo: &'a Repo,
    signed: &'a VerifiedTree<SignedTree>,
    checked: Checked,
    progress: &'a mut dyn FnMut(u64),
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn differs(path: &str, what: impl Into<String>) -> CheckError {
    CheckError::Differs {
        path: path.into(),
        what: what.into(),
    }
}

impl Deriver<'_> {
    /// The metadata of an entry: owner, mode and xattrs from the commit, the mtime from the
    /// signed entry (OSTree keeps none). Differences in what the commit holds are named.
    fn meta(&self, path: &str, held: &Attrs, signed: &Metadata) -> Result<Metadata, CheckError> {
        let derived = Metadata {
            mode: held.mode,
            uid: held.uid,
            gid: held.gid,
            mtime: signed.mtime,
            xattrs: held.xattrs.clone(),
        };
        if (derived.uid, derived.gid) != (signed.uid, signed.gid) {
            return Err(differs(
                path,
                format!(
                    "owner {}:{} in the commit, {}:{} signed",
                    derived.uid, derived.gid, signed.uid, signed.gid
                ),
            ));
        }
        if derived.mode != signed.mode {
            return Err(differs(
                path,
                format!(
                    "mode {:o} in the commit, {:o} signed",
                    derived.mode, signed.mode
                ),
            ));
        }
        if derived.xattrs != signed.xattrs {
            return Err(differs(
                path,
                "extended attributes differ from the signed ones",
            ));
        }
        Ok(derived)
    }

    /// Derive the node of the directory at `path` from the commit's dirtree `tree`, the signed
    /// node `signed` supplying what OSTree cannot hold; answers its digest.
    fn dir(
        &mut self,
        path: &str,
        tree: &Checksum,
        signed: &DirDigest,
    ) -> Result<DirDigest, CheckError> {
        let listing: DirTree = self.repo.read_dirtree(tree)?;
        let node = self.signed.dir(signed).map_err(|e| {
            differs(
                path,
                format!("the commit's signed tree does not verify: {e}"),
            )
        })?;
        let mut signed_entries: BTreeMap<Vec<u8>, DirEntry> = node
            .entries
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        let mut entries: Vec<DirEntry> = Vec::new();
        for (name, content) in &listing.files {
            let p = join(path, name);
            let signed = signed_entries
                .remove(name.as_bytes())
                .ok_or_else(|| differs(&p, "is in the commit but not in the signed tree"))?;
            entries.push(self.file(&p, content, signed)?);
        }
        for sub in &listing.dirs {
            let p = join(path, &sub.name);
            let signed = signed_entries
                .remove(sub.name.as_bytes())
                .ok_or_else(|| differs(&p, "is in the commit but not in the signed tree"))?;
            let Payload::Directory { digest } = signed.payload else {
                return Err(differs(
                    &p,
                    "is a directory in the commit, not in the signed tree",
                ));
            };
            let held = self.repo.read_dirmeta(&sub.meta)?;
            let meta = self.meta(&p, &held, &signed.meta)?;
            let derived = self.dir(&p, &sub.tree, &digest)?;
            entries.push(DirEntry {
                name: signed.name,
                meta,
                payload: Payload::Directory { digest: derived },
            });
        }
        // What OSTree cannot hold comes from the signed tree; anything else missing differs.
        for (name, e) in signed_entries {
            match e.payload {
                Payload::CharDevice { .. } | Payload::BlockDevice { .. } | Payload::Fifo { .. } => {
                    let mut full = path.as_bytes().to_vec();
                    if path != "/" {
                        full.push(b'/');
                    }
                    full.extend_from_slice(&name);
                    self.checked
                        .skipped
                        .push(cerro_core::text::escape_bytes(&full));
                    entries.push(e)
                }
                _ => {
                    let p = join(path, &String::from_utf8_lossy(&name));
                    return Err(differs(
                        &p,
                        "is in the signed tree but missing from the commit",
                    ));
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let derived = DirNode { entries }.digest();
        if derived != *signed {
            return Err(differs(
                path,
                format!("the directory gives {derived} from the commit, {signed} signed"),
            ));
        }
        Ok(derived)
    }

    /// A content object as the entry the signed tree would list: content root recomputed from
    /// the bytes (which are checked against the object's checksum on the way).
    fn file(
        &mut self,
        path: &str,
        content: &Checksum,
        signed: DirEntry,
    ) -> Result<DirEntry, CheckError> {
        let mut obj = self.repo.open_file(content).map_err(|e| at_path(path, e))?;
        let meta = self.meta(path, &obj.meta, &signed.meta)?;
        let link = signed.payload.link().unwrap_or(Link::SINGLE);
        let payload = match (&obj.kind, &signed.payload) {
            (FileKind::Regular { size }, Payload::File { root, .. }) => {
                let derived = self.hash(&mut obj.content, *content).map_err(|e| match e {
                    CheckError::Ostree(o) => at_path(path, o),
                    other => other,
                })?;
                if derived != *root || *size != signed_size(&signed.payload) {
                    return Err(differs(
                        path,
                        format!(
                            "content {derived} ({size} bytes) in the commit, {root} ({} bytes) signed",
                            signed_size(&signed.payload)
                        ),
                    ));
                }
                self.checked.files += 1;
                Payload::File {
                    size: *size,
                    root: derived,
                    link,
                }
            }
            (FileKind::Symlink { target }, Payload::Symlink { target: t, .. }) => {
                if target.as_bytes() != t.as_slice() {
                    return Err(differs(
                        path,
                        format!(
                            "links to {target:?} in the commit, to {:?} signed",
                            String::from_utf8_lossy(t)
                        ),
                    ));
                }
                self.checked.files += 1;
                Payload::Symlink {
                    target: t.clone(),
                    link,
                }
            }
            (kind, _) => {
                let held = match kind {
                    FileKind::Regular { .. } => "a regular file",
                    FileKind::Symlink { .. } => "a symlink",
                };
                return Err(differs(
                    path,
                    format!("is {held} in the commit but not in the signed tree"),
                ));
            }
        };
        Ok(DirEntry {
            name: signed.name,
            meta,
            payload,
        })
    }

    /// BLAKE3 of a content object's bytes, read to the end (where its OSTree checksum is
    /// checked).
    fn hash(
        &mut self,
        content: &mut crate::ContentReader,
        checksum: Checksum,
    ) -> Result<Blake3Root, CheckError> {
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    self.checked.bytes += n as u64;
                    (self.progress)(n as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(crate::into_error(e, checksum).into()),
            }
        }
        Ok(hasher.finalize().into())
    }
}

/// A content object that is missing, malformed or not what its checksum says is a difference of
/// the commit's tree at `path` (an object edited in place, say); a failing read stays an error.
fn at_path(path: &str, e: OstreeError) -> CheckError {
    match e {
        OstreeError::Io { .. } => CheckError::Ostree(e),
        other => differs(path, other.to_string()),
    }
}

fn signed_size(p: &Payload) -> u64 {
    match p {
        Payload::File { size, .. } => *size,
        _ => 0,
    }
}
