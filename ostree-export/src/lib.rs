//! OSTree repositories, written and read without libostree: `ct export --format ostree`
//! writes a verified tree as an OSTree commit, `ct verify ostree:REPO:REF` reads one back and
//! checks every object against its checksum.
//!
//! - [`export`]: core's verified walk of a bundle's rootfs into a commit whose metadata carries
//!   the signed manifest, its signatures and the signed tree ([`signed_tree`]: what OSTree
//!   cannot hold); [`verify`]: a commit checked against the bundle it carries, its rootfs
//!   digest re-derived from the commit's own tree (spec/ostree.md).
//! - The rest, below: the repository, its objects, and reading and writing them.
//!
//! # What is written
//!
//! A repository (`Repo::create_or_open`) is a directory with `config` (`[core]`,
//! `repo_version=1`, `mode=archive-z2` or `mode=bare-user`), `objects/`, `refs/heads/`,
//! `refs/remotes/`, `refs/mirrors/`, `tmp/`, `state/` and `extensions/`. Objects live at
//! `objects/XX/REST.EXT`, named by the SHA-256 checksum `XXREST` in hex:
//!
//! - `.dirmeta`: a directory's owner and mode, GVariant `(uuua(ayay))` — uid, gid, mode
//!   (with `S_IFDIR`), xattrs as (name with its trailing NUL, value) sorted by name.
//! - `.dirtree`: a directory listing, `(a(say)a(sayay))` — files (name, content checksum) and
//!   subdirectories (name, dirtree checksum, dirmeta checksum), each list sorted by name bytes.
//! - `.commit`: `(a{sv}aya(say)sstayay)` — metadata, parent checksum (empty for none), related
//!   objects (empty), subject, body, timestamp (seconds), root dirtree, root dirmeta.
//! - `.commitmeta`: detached metadata `a{sv}`, not hashed; Ed25519 signatures over the commit
//!   object's bytes go in `ostree.sign.ed25519` (`aay`).
//! - content objects (regular files and symlinks). Their checksum is SHA-256 of a header —
//!   a big-endian u32 length, four zero bytes, then `(uuuusa(ayay))`: uid, gid, mode (with
//!   `S_IFREG` or `S_IFLNK`), rdev 0, symlink target (empty for files), xattrs — followed by
//!   the file's bytes. In an archive repository the object is `.filez`: the same kind of
//!   length-prefixed header but `(tuuuusa(ayay))`, the uncompressed size first, then the
//!   content as raw deflate (level 6). In a bare-user repository it is `.file`, the content
//!   itself (a symlink: its target and a NUL) with `(uuua(ayay))` in the `user.ostreemeta`
//!   xattr; the file's own mode is the object's `& 0o775 | 0o400` (no set-id bits in the
//!   repository), a symlink's 0644.
//!
//! All GVariants are in normal form, little-endian, except the numbers OSTree stores
//! byte-swapped: uid, gid, mode and rdev, the commit timestamp and the archive size are
//! big-endian inside them; so are the numbers of commit metadata (`MetaValue::U64` …), as
//! Flatpak writes them and as `ostree show` prints them.
//!
//! The writer (`Repo::begin_commit`, `CommitBuilder`) is deterministic: no clock, no random
//! input; the same tree and `CommitInfo` give byte-identical objects and the same commit
//! checksum. It never rewrites an object that exists and reports how many it wrote
//! (`WriteStats`). `Repo::set_ref` flushes the file system and then moves the ref into place:
//! call it last.
//!
//! # What OSTree cannot hold
//!
//! The caller must record these facts itself (for example in commit metadata):
//!
//! - only directories, regular files and symlinks: no device nodes, FIFOs or sockets;
//! - no timestamps: checkouts get mtime 0 (bare) or the time of checkout;
//! - no hard links: identical files share one object, so a checkout hardlinks every
//!   identical file together (bare-user) or copies each (archive), whatever the source had;
//! - names, symlink targets and metadata strings are GVariant strings: UTF-8 without NUL
//!   (`Error::NotRepresentable` otherwise); a symlink target is 1 to 4095 bytes;
//! - only `mode & 0o7777`; a bare-user checkout in user mode (`ostree checkout -U`) drops the
//!   set-id bits and world write, and neither user-mode checkout restores owners or xattrs;
//! - xattrs with an empty value are kept here (and restored by `ostree checkout`), but
//!   `ostree commit` of the same tree leaves them out, so its checksums differ on such trees.
//!
//! # Reading
//!
//! The reader treats the repository as hostile: objects are opened without following links,
//! sizes are bounded (`MAX_METADATA_BYTES`, `MAX_FILE_HEADER_BYTES`, `MAX_DIR_ENTRIES`), every
//! metadata object is checked against its checksum and decoded strictly (normal form, sorted
//! names, valid modes), and a content object's checksum is checked when its content has been
//! read to the end (`ContentReader`). Errors are typed (`Error`); no input panics.
//!
//! A verifier walks `Repo::resolve_ref` → `read_commit` (metadata, root tree and meta) →
//! `read_dirtree` / `read_dirmeta` → `open_file` for each entry, reading each content to its
//! end; `ed25519_signatures` / `verify_commit_ed25519` check the detached signatures.

mod checksum;
mod error;
pub mod export;
mod fsutil;
mod gvariant;
mod objects;
mod reader;
mod repo;
mod sign;
pub mod signed_tree;
pub mod verify;
mod writer;

pub use checksum::{Checksum, ChecksumParseError, ObjectType};
pub use error::{Error, Result};
pub use objects::{
    validate_name, Attrs, Commit, DirMeta, DirTree, DirTreeDir, FileKind, FileMeta, MetaValue,
    MAX_DIR_ENTRIES, MAX_SYMLINK_TARGET, PERMISSION_BITS,
};
pub use reader::{into_error, ContentReader, FileObject};
pub use repo::{validate_ref, Mode, Repo, MAX_DETACHED_METADATA_BYTES, MAX_METADATA_BYTES};
pub use sign::ED25519_KEY;
pub use writer::{CommitBuilder, CommitInfo, Committed, WriteStats, MAX_FILE_HEADER_BYTES};

/// Entry points for `tools/fuzz` (target `ostree_objects`): every decoder of bytes read from a
/// repository. Not API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode `data` as the object kind its first byte picks; errors are fine, panics are bugs.
    pub fn decode(data: &[u8]) {
        let Some((&which, rest)) = data.split_first() else {
            return;
        };
        match which % 7 {
            0 => {
                let _ = crate::objects::decode_commit(rest);
            }
            1 => {
                let _ = crate::objects::decode_dirtree(rest);
            }
            2 => {
                let _ = crate::objects::decode_dirmeta(rest);
            }
            3 => {
                let _ = crate::objects::decode_meta_dict(rest);
            }
            4 => {
                let _ = crate::objects::decode_archive_header(rest);
            }
            5 => {
                let _ = crate::objects::decode_bareuser_meta(rest);
            }
            _ => {
                let _ = crate::signed_tree::SignedTree::decode(rest);
            }
        }
    }
}
