//! OSTree's object formats as typed values: directory metadata, directory trees, commits, the
//! content-object headers (the one hashed for a content checksum, the archive `.filez` one, and
//! bare-user's `user.ostreemeta` xattr), and `a{sv}` metadata. Encoding gives OSTree's exact
//! bytes; decoding accepts only what encoding would give back (normal form, sorted, valid
//! modes), so one tree has one encoding.

use std::collections::BTreeMap;

use crate::checksum::Checksum;
use crate::gvariant::{self, decode_str, split_array, split_tuple, GvError, Type, Value};

/// File type bits of `st_mode`.
pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFDIR: u32 = 0o040000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFLNK: u32 = 0o120000;
/// Permission bits, with set-uid, set-gid and sticky: all OSTree keeps besides the type.
pub const PERMISSION_BITS: u32 = 0o7777;

/// Largest symlink target stored (Linux's PATH_MAX less the NUL).
pub const MAX_SYMLINK_TARGET: usize = 4095;

/// Metadata of a directory or a content object: owner, permission bits (`mode & 0o7777`; the
/// file type is implied by where it is used) and extended attributes (full names such as
/// `user.x` or `security.capability`, without a trailing NUL, to raw values).
///
/// OSTree keeps no timestamps: every checkout gets mtime 0 (bare) or the time of checkout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A directory's metadata (`.dirmeta`).
pub type DirMeta = Attrs;
/// A regular file's or symlink's metadata (in its content object's header).
pub type FileMeta = Attrs;

/// What a content object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    Regular { size: u64 },
    Symlink { target: String },
}

/// One subdirectory of a `DirTree`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirTreeDir {
    pub name: String,
    pub tree: Checksum,
    pub meta: Checksum,
}

/// A directory listing (`.dirtree`): content objects and subdirectories, each sorted by name
/// bytes; no name appears twice across the two lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirTree {
    pub files: Vec<(String, Checksum)>,
    pub dirs: Vec<DirTreeDir>,
}

/// A value in commit metadata or detached metadata (`a{sv}`).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// `s`
    Str(String),
    /// `ay`
    Bytes(Vec<u8>),
    /// `t`. Numbers in metadata are stored big-endian, as Flatpak stores its sizes and as
    /// `ostree show` (which byte-swaps what it prints) expects.
    U64(u64),
    /// `u`, big-endian like `U64`.
    U32(u32),
    /// `x`, big-endian like `U64`.
    I64(i64),
    /// `b`
    Bool(bool),
    /// `as`
    StrList(Vec<String>),
    /// `aay` (OSTree's signature lists)
    BytesList(Vec<Vec<u8>>),
    /// Any other type, kept as its GVariant type string and normal-form serialisation (read
    /// from another writer's commit, or kept when rewriting detached metadata).
    Other { type_string: String, data: Vec<u8> },
}

/// A commit (`.commit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// Keys are unique and non-empty; this writer sorts them.
    pub metadata: Vec<(String, MetaValue)>,
    pub parent: Option<Checksum>,
    /// "Related objects", unused by this writer (always empty), kept when read.
    pub related: Vec<(String, Checksum)>,
    pub subject: String,
    pub body: String,
    /// Seconds since the Unix epoch, UTC.
    pub timestamp: u64,
    pub root_tree: Checksum,
    pub root_meta: Checksum,
}

impl Commit {
    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn meta_str(&self, key: &str) -> Option<&str> {
        match self.meta(key)? {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn meta_u64(&self, key: &str) -> Option<u64> {
        match self.meta(key)? {
            MetaValue::U64(v) => Some(*v),
            _ => None,
        }
    }

    pub fn meta_bytes(&self, key: &str) -> Option<&[u8]> {
        match self.meta(key)? {
            MetaValue::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn meta_str_list(&self, key: &str) -> Option<&[String]> {
        match self.meta(key)? {
            MetaValue::StrList(l) => Some(l),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Types

pub(crate) fn ty(s: &str) -> Type {
    // Only ever called with the constant type strings below, all valid.
    Type::parse(s).unwrap_or(Type::Tuple(Vec::new()))
}

pub(crate) const DIRMETA_TYPE: &str = "(uuua(ayay))";
pub(crate) const DIRTREE_TYPE: &str = "(a(say)a(sayay))";
pub(crate) const COMMIT_TYPE: &str = "(a{sv}aya(say)sstayay)";
pub(crate) const FILE_HEADER_TYPE: &str = "(uuuusa(ayay))";
pub(crate) const ARCHIVE_HEADER_TYPE: &str = "(tuuuusa(ayay))";
pub(crate) const META_DICT_TYPE: &str = "a{sv}";

// ---------------------------------------------------------------------------------------------
// Validation shared by both directions

/// A directory entry name OSTree accepts: UTF-8 (GVariant `s`), not empty, not `.` or `..`,
/// no `/` and no NUL.
pub fn validate_name(name: &[u8]) -> Result<&str, String> {
    let s = std::str::from_utf8(name)
        .map_err(|_| format!("the name {:?} is not UTF-8", String::from_utf8_lossy(name)))?;
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(format!("the name {s:?} is not a valid file name"));
    }
    Ok(s)
}

fn validate_perms(mode: u32) -> Result<(), String> {
    if mode & !PERMISSION_BITS != 0 {
        return Err(format!(
            "mode {mode:#o} has bits beyond the permission bits"
        ));
    }
    Ok(())
}

fn xattrs_value(xattrs: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<Value, String> {
    let mut items = Vec::with_capacity(xattrs.len());
    for (name, value) in xattrs {
        if name.is_empty() || name.contains(&0) {
            return Err(format!(
                "the xattr name {:?} is empty or holds a NUL",
                String::from_utf8_lossy(name)
            ));
        }
        // OSTree stores xattr names as GLib byte strings: with their trailing NUL.
        let mut n = name.clone();
        n.push(0);
        items.push(Value::Tuple(vec![
            Value::Bytes(n),
            Value::Bytes(value.clone()),
        ]));
    }
    Ok(Value::Array(ty("(ayay)"), items))
}

/// Most xattrs one object may carry (ct's own rootfs format allows 1024).
const MAX_XATTRS: usize = 1 << 16;

fn xattrs_from(parts: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    let elem = ty("(ayay)");
    let mut out = BTreeMap::new();
    let mut previous: Option<Vec<u8>> = None;
    for item in split_array(&elem, parts, MAX_XATTRS).map_err(gv)? {
        let kv = split_tuple(
            &elem,
            &[
                &Type::Array(Box::new(Type::Byte)),
                &Type::Array(Box::new(Type::Byte)),
            ],
            item,
        )
        .map_err(gv)?;
        let name = match kv[0].split_last() {
            Some((0, n)) if !n.is_empty() && !n.contains(&0) => n.to_vec(),
            _ => return Err("xattr name empty or not NUL-terminated".into()),
        };
        if let Some(p) = &previous {
            if *p >= name {
                return Err("xattrs not sorted by name, or a name repeated".into());
            }
        }
        previous = Some(name.clone());
        out.insert(name, kv[1].to_vec());
    }
    Ok(out)
}

fn gv(e: GvError) -> String {
    e.to_string()
}

fn checksum_value(c: &Checksum) -> Value {
    Value::Bytes(c.0.to_vec())
}

fn checksum_from(bytes: &[u8], what: &str) -> Result<Checksum, String> {
    Checksum::from_slice(bytes).ok_or_else(|| format!("{what} is {} bytes, not 32", bytes.len()))
}

fn be32(bytes: &[u8]) -> Result<u32, String> {
    Ok(u32::from_be_bytes(
        bytes.try_into().map_err(|_| "bad u32".to_string())?,
    ))
}

/// Checks a full `st_mode` read from an object: type `want_type`, only permission bits besides.
fn split_mode(mode: u32, allowed_types: &[u32]) -> Result<u32, String> {
    if !allowed_types.contains(&(mode & S_IFMT)) {
        return Err(format!("mode {mode:#o} is not of an allowed file type"));
    }
    if mode & !(S_IFMT | PERMISSION_BITS) != 0 {
        return Err(format!("mode {mode:#o} has invalid bits"));
    }
    Ok(mode & PERMISSION_BITS)
}

// ---------------------------------------------------------------------------------------------
// dirmeta and the bare-user file metadata xattr: (uuua(ayay)), numbers big-endian

fn encode_uuua(a: &Attrs, type_bits: u32) -> Result<Vec<u8>, String> {
    validate_perms(a.mode)?;
    let v = Value::Tuple(vec![
        Value::U32(a.uid.swap_bytes_le_to_be()),
        Value::U32(a.gid.swap_bytes_le_to_be()),
        Value::U32((a.mode | type_bits).swap_bytes_le_to_be()),
        xattrs_value(&a.xattrs)?,
    ]);
    gvariant::encode(&ty(DIRMETA_TYPE), &v).map_err(gv)
}

fn decode_uuua(data: &[u8], allowed: &[u32]) -> Result<(Attrs, u32), String> {
    let t = ty(DIRMETA_TYPE);
    let u = Type::U32;
    let xa = ty("a(ayay)");
    let p = split_tuple(&t, &[&u, &u, &u, &xa], data).map_err(gv)?;
    let mode = be32(p[2])?;
    let attrs = Attrs {
        uid: be32(p[0])?,
        gid: be32(p[1])?,
        mode: split_mode(mode, allowed)?,
        xattrs: xattrs_from(p[3])?,
    };
    check_reencodes(encode_uuua(&attrs, mode & S_IFMT)?, data)?;
    Ok((attrs, mode & S_IFMT))
}

/// A `.dirmeta` object's bytes.
pub(crate) fn encode_dirmeta(a: &DirMeta) -> Result<Vec<u8>, String> {
    encode_uuua(a, S_IFDIR)
}

pub(crate) fn decode_dirmeta(data: &[u8]) -> Result<DirMeta, String> {
    Ok(decode_uuua(data, &[S_IFDIR])?.0)
}

/// The `user.ostreemeta` xattr of a bare-user content object.
pub(crate) fn encode_bareuser_meta(a: &FileMeta, symlink: bool) -> Result<Vec<u8>, String> {
    encode_uuua(a, if symlink { S_IFLNK } else { S_IFREG })
}

/// Returns the metadata and whether the object is a symlink.
pub(crate) fn decode_bareuser_meta(data: &[u8]) -> Result<(FileMeta, bool), String> {
    let (a, t) = decode_uuua(data, &[S_IFREG, S_IFLNK])?;
    Ok((a, t == S_IFLNK))
}

fn check_reencodes(again: Vec<u8>, data: &[u8]) -> Result<(), String> {
    if again != data {
        return Err("not in normal form".into());
    }
    Ok(())
}

/// Numbers OSTree stores byte-swapped inside little-endian GVariants: the variant holds
/// the value whose little-endian bytes are `x`'s big-endian ones (its own inverse).
trait BigEndianInside {
    fn swap_bytes_le_to_be(self) -> Self;
}
impl BigEndianInside for u32 {
    fn swap_bytes_le_to_be(self) -> u32 {
        u32::from_le_bytes(self.to_be_bytes())
    }
}
impl BigEndianInside for u64 {
    fn swap_bytes_le_to_be(self) -> u64 {
        u64::from_le_bytes(self.to_be_bytes())
    }
}
impl BigEndianInside for i64 {
    fn swap_bytes_le_to_be(self) -> i64 {
        i64::from_le_bytes(self.to_be_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// Content object headers

/// The header OSTree hashes before a content object's data: the `(uuuusa(ayay))` variant
/// preceded by its length (u32, big-endian) and four zero bytes.
pub(crate) fn encode_file_header(a: &FileMeta, kind: &FileKind) -> Result<Vec<u8>, String> {
    let (type_bits, target) = kind_parts(kind)?;
    validate_perms(a.mode)?;
    let v = Value::Tuple(vec![
        Value::U32(a.uid.swap_bytes_le_to_be()),
        Value::U32(a.gid.swap_bytes_le_to_be()),
        Value::U32((a.mode | type_bits).swap_bytes_le_to_be()),
        Value::U32(0), // rdev: always 0
        Value::Str(target.to_owned()),
        xattrs_value(&a.xattrs)?,
    ]);
    length_prefixed(gvariant::encode(&ty(FILE_HEADER_TYPE), &v).map_err(gv)?)
}

/// The header of an archive `.filez` object: `(tuuuusa(ayay))` with the uncompressed size
/// (big-endian inside) in front, length-prefixed like the hashed header; raw deflate follows.
pub(crate) fn encode_archive_header(a: &FileMeta, kind: &FileKind) -> Result<Vec<u8>, String> {
    let (type_bits, target) = kind_parts(kind)?;
    validate_perms(a.mode)?;
    let size = match kind {
        FileKind::Regular { size } => *size,
        FileKind::Symlink { .. } => 0,
    };
    let v = Value::Tuple(vec![
        Value::U64(size.swap_bytes_le_to_be()),
        Value::U32(a.uid.swap_bytes_le_to_be()),
        Value::U32(a.gid.swap_bytes_le_to_be()),
        Value::U32((a.mode | type_bits).swap_bytes_le_to_be()),
        Value::U32(0),
        Value::Str(target.to_owned()),
        xattrs_value(&a.xattrs)?,
    ]);
    length_prefixed(gvariant::encode(&ty(ARCHIVE_HEADER_TYPE), &v).map_err(gv)?)
}

/// Decodes an archive header variant (without its 8-byte prefix).
pub(crate) fn decode_archive_header(data: &[u8]) -> Result<(FileMeta, FileKind), String> {
    let t = ty(ARCHIVE_HEADER_TYPE);
    let (u, s, xa) = (Type::U32, Type::Str, ty("a(ayay)"));
    let p = split_tuple(&t, &[&Type::U64, &u, &u, &u, &u, &s, &xa], data).map_err(gv)?;
    let size = u64::from_be_bytes(p[0].try_into().map_err(|_| "bad size".to_string())?);
    let mode = be32(p[3])?;
    if be32(p[4])? != 0 {
        return Err("rdev is not 0".into());
    }
    let perms = split_mode(mode, &[S_IFREG, S_IFLNK])?;
    let target = decode_str(p[5]).map_err(gv)?;
    let kind = if mode & S_IFMT == S_IFLNK {
        if size != 0 {
            return Err("a symlink with a non-zero size".into());
        }
        FileKind::Symlink {
            target: validate_target(target)?.to_owned(),
        }
    } else {
        if !target.is_empty() {
            return Err("a regular file with a symlink target".into());
        }
        FileKind::Regular { size }
    };
    let meta = Attrs {
        uid: be32(p[1])?,
        gid: be32(p[2])?,
        mode: perms,
        xattrs: xattrs_from(p[6])?,
    };
    let again = encode_archive_header(&meta, &kind)?;
    check_reencodes(again[8..].to_vec(), data)?;
    Ok((meta, kind))
}

/// A symlink target as OSTree holds it: UTF-8 without NUL, 1 to 4095 bytes.
pub fn validate_symlink_target(t: &[u8]) -> Result<&str, String> {
    let s = std::str::from_utf8(t).map_err(|_| {
        format!(
            "the symlink target {:?} is not UTF-8",
            String::from_utf8_lossy(t)
        )
    })?;
    if s.contains('\0') {
        return Err("a symlink target holds a NUL".into());
    }
    validate_target(s)
}

fn validate_target(t: &str) -> Result<&str, String> {
    if t.is_empty() || t.len() > MAX_SYMLINK_TARGET {
        return Err(format!("symlink target of {} bytes", t.len()));
    }
    Ok(t)
}

fn kind_parts(kind: &FileKind) -> Result<(u32, &str), String> {
    Ok(match kind {
        FileKind::Regular { .. } => (S_IFREG, ""),
        FileKind::Symlink { target } => {
            if target.contains('\0') {
                return Err("a symlink target holds a NUL".into());
            }
            (S_IFLNK, validate_target(target)?)
        }
    })
}

fn length_prefixed(variant: Vec<u8>) -> Result<Vec<u8>, String> {
    let len = u32::try_from(variant.len()).map_err(|_| "file header above 4 GiB".to_string())?;
    let mut out = Vec::with_capacity(variant.len() + 8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&variant);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// dirtree

pub(crate) fn encode_dirtree(t: &DirTree) -> Result<Vec<u8>, String> {
    let files = t
        .files
        .iter()
        .map(|(n, c)| Value::Tuple(vec![Value::Str(n.clone()), checksum_value(c)]))
        .collect();
    let dirs = t
        .dirs
        .iter()
        .map(|d| {
            Value::Tuple(vec![
                Value::Str(d.name.clone()),
                checksum_value(&d.tree),
                checksum_value(&d.meta),
            ])
        })
        .collect();
    let v = Value::Tuple(vec![
        Value::Array(ty("(say)"), files),
        Value::Array(ty("(sayay)"), dirs),
    ]);
    gvariant::encode(&ty(DIRTREE_TYPE), &v).map_err(gv)
}

/// Most entries one directory may have (files and subdirectories together), as in ct's own
/// rootfs format: a bound on the memory a hostile `.dirtree` can make the reader use.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;

pub(crate) fn decode_dirtree(data: &[u8]) -> Result<DirTree, String> {
    let t = ty(DIRTREE_TYPE);
    let (fe, de) = (ty("(say)"), ty("(sayay)"));
    let (fa, da) = (ty("a(say)"), ty("a(sayay)"));
    let ay = ty("ay");
    let p = split_tuple(&t, &[&fa, &da], data).map_err(gv)?;
    let file_parts = split_array(&fe, p[0], MAX_DIR_ENTRIES).map_err(gv)?;
    let dir_parts = split_array(&de, p[1], MAX_DIR_ENTRIES).map_err(gv)?;
    if file_parts.len().saturating_add(dir_parts.len()) > MAX_DIR_ENTRIES {
        return Err(format!("more than {MAX_DIR_ENTRIES} entries"));
    }
    let mut tree = DirTree::default();
    for f in file_parts {
        let q = split_tuple(&fe, &[&Type::Str, &ay], f).map_err(gv)?;
        let name = entry_name(q[0])?;
        tree.files
            .push((name, checksum_from(q[1], "a file checksum")?));
    }
    for d in dir_parts {
        let q = split_tuple(&de, &[&Type::Str, &ay, &ay], d).map_err(gv)?;
        tree.dirs.push(DirTreeDir {
            name: entry_name(q[0])?,
            tree: checksum_from(q[1], "a dirtree checksum")?,
            meta: checksum_from(q[2], "a dirmeta checksum")?,
        });
    }
    let sorted = |names: Vec<&str>| names.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes());
    if !sorted(tree.files.iter().map(|(n, _)| n.as_str()).collect())
        || !sorted(tree.dirs.iter().map(|d| d.name.as_str()).collect())
    {
        return Err("entries not sorted by name, or a name repeated".into());
    }
    let mut all: Vec<&str> = tree.files.iter().map(|(n, _)| n.as_str()).collect();
    all.extend(tree.dirs.iter().map(|d| d.name.as_str()));
    all.sort_unstable();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err("a name is both a file and a directory".into());
    }
    check_reencodes(encode_dirtree(&tree)?, data)?;
    Ok(tree)
}

fn entry_name(raw: &[u8]) -> Result<String, String> {
    let s = decode_str(raw).map_err(gv)?;
    Ok(validate_name(s.as_bytes())?.to_owned())
}

// ---------------------------------------------------------------------------------------------
// a{sv} metadata

fn meta_to_value(v: &MetaValue) -> Result<(Type, Value), String> {
    Ok(match v {
        MetaValue::Str(s) => (Type::Str, Value::Str(s.clone())),
        MetaValue::Bytes(b) => (ty("ay"), Value::Bytes(b.clone())),
        MetaValue::U64(n) => (Type::U64, Value::U64(n.swap_bytes_le_to_be())),
        MetaValue::U32(n) => (Type::U32, Value::U32(n.swap_bytes_le_to_be())),
        MetaValue::I64(n) => (Type::I64, Value::I64(n.swap_bytes_le_to_be())),
        MetaValue::Bool(b) => (Type::Bool, Value::Bool(*b)),
        MetaValue::StrList(l) => (
            ty("as"),
            Value::Array(Type::Str, l.iter().map(|s| Value::Str(s.clone())).collect()),
        ),
        MetaValue::BytesList(l) => (
            ty("aay"),
            Value::Array(
                ty("ay"),
                l.iter().map(|b| Value::Bytes(b.clone())).collect(),
            ),
        ),
        MetaValue::Other { type_string, data } => {
            let t = Type::parse(type_string).map_err(gv)?;
            let v = gvariant::decode(&t, data).map_err(gv)?;
            (t, v)
        }
    })
}

fn meta_from_value(t: &Type, v: Value) -> Result<MetaValue, String> {
    Ok(match v {
        Value::Str(s) if *t == Type::Str => MetaValue::Str(s),
        Value::Bytes(b) => MetaValue::Bytes(b),
        Value::U64(n) => MetaValue::U64(n.swap_bytes_le_to_be()),
        Value::U32(n) => MetaValue::U32(n.swap_bytes_le_to_be()),
        Value::I64(n) => MetaValue::I64(n.swap_bytes_le_to_be()),
        Value::Bool(b) => MetaValue::Bool(b),
        Value::Array(Type::Str, items) => MetaValue::StrList(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Str(s) => Ok(s),
                    _ => Err("as holds a non-string".to_string()),
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Array(e, items) if e == ty("ay") => MetaValue::BytesList(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Bytes(b) => Ok(b),
                    _ => Err("aay holds a non-bytes".to_string()),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => MetaValue::Other {
            type_string: t.to_type_string(),
            data: gvariant::encode(t, &other).map_err(gv)?,
        },
    })
}

fn meta_dict_value(entries: &[(String, MetaValue)]) -> Result<Value, String> {
    let mut items = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if k.is_empty() {
            return Err("an empty metadata key".into());
        }
        let (t, val) = meta_to_value(v)?;
        items.push(Value::DictEntry(
            Box::new(Value::Str(k.clone())),
            Box::new(Value::Variant(t, Box::new(val))),
        ));
    }
    Ok(Value::Array(ty("{sv}"), items))
}

fn meta_dict_from(v: Value) -> Result<Vec<(String, MetaValue)>, String> {
    let Value::Array(_, items) = v else {
        return Err("metadata is not an array".into());
    };
    let mut out: Vec<(String, MetaValue)> = Vec::with_capacity(items.len());
    for item in items {
        let Value::DictEntry(k, v) = item else {
            return Err("metadata entry is not a dict entry".into());
        };
        let (Value::Str(k), Value::Variant(t, v)) = (*k, *v) else {
            return Err("metadata entry is not {sv}".into());
        };
        if k.is_empty() {
            return Err("an empty metadata key".into());
        }
        if out.iter().any(|(o, _)| *o == k) {
            return Err(format!("metadata key {k:?} repeated"));
        }
        out.push((k, meta_from_value(&t, *v)?));
    }
    Ok(out)
}

/// An `a{sv}` (detached metadata), entries in the given order.
pub(crate) fn encode_meta_dict(entries: &[(String, MetaValue)]) -> Result<Vec<u8>, String> {
    gvariant::encode(&ty(META_DICT_TYPE), &meta_dict_value(entries)?).map_err(gv)
}

pub(crate) fn decode_meta_dict(data: &[u8]) -> Result<Vec<(String, MetaValue)>, String> {
    meta_dict_from(gvariant::decode(&ty(META_DICT_TYPE), data).map_err(gv)?)
}

// ---------------------------------------------------------------------------------------------
// commit

pub(crate) fn encode_commit(c: &Commit) -> Result<Vec<u8>, String> {
    let related = c
        .related
        .iter()
        .map(|(n, cs)| Value::Tuple(vec![Value::Str(n.clone()), checksum_value(cs)]))
        .collect();
    let v = Value::Tuple(vec![
        meta_dict_value(&c.metadata)?,
        Value::Bytes(c.parent.map(|p| p.0.to_vec()).unwrap_or_default()),
        Value::Array(ty("(say)"), related),
        Value::Str(c.subject.clone()),
        Value::Str(c.body.clone()),
        Value::U64(c.timestamp.swap_bytes_le_to_be()),
        checksum_value(&c.root_tree),
        checksum_value(&c.root_meta),
    ]);
    gvariant::encode(&ty(COMMIT_TYPE), &v).map_err(gv)
}

pub(crate) fn decode_commit(data: &[u8]) -> Result<Commit, String> {
    let v = gvariant::decode(&ty(COMMIT_TYPE), data).map_err(gv)?;
    let Value::Tuple(items) = v else {
        return Err("commit is not a tuple".into());
    };
    let Ok::<[Value; 8], _>(
        [meta, Value::Bytes(parent), Value::Array(_, related), Value::Str(subject), Value::Str(body), Value::U64(ts), Value::Bytes(tree), Value::Bytes(dmeta)],
    ) = items.try_into()
    else {
        return Err("commit members of unexpected types".into());
    };
    let parent = match parent.len() {
        0 => None,
        _ => Some(checksum_from(&parent, "the parent checksum")?),
    };
    let mut rel = Vec::with_capacity(related.len());
    for r in related {
        let Value::Tuple(pair) = r else {
            return Err("related object is not a tuple".into());
        };
        let Ok::<[Value; 2], _>([Value::Str(n), Value::Bytes(c)]) = pair.try_into() else {
            return Err("related object of unexpected types".into());
        };
        rel.push((n, checksum_from(&c, "a related object checksum")?));
    }
    Ok(Commit {
        metadata: meta_dict_from(meta)?,
        parent,
        related: rel,
        subject,
        body,
        timestamp: ts.swap_bytes_le_to_be(),
        root_tree: checksum_from(&tree, "the root tree checksum")?,
        root_meta: checksum_from(&dmeta, "the root dirmeta checksum")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(mode: u32) -> Attrs {
        let mut xattrs = BTreeMap::new();
        xattrs.insert(b"user.b".to_vec(), b"2".to_vec());
        xattrs.insert(b"user.a".to_vec(), vec![]);
        Attrs {
            uid: 1000,
            gid: 100,
            mode,
            xattrs,
        }
    }

    #[test]
    fn dirmeta_layout_and_round_trip() {
        let a = Attrs {
            uid: 0,
            gid: 0,
            mode: 0o755,
            xattrs: BTreeMap::new(),
        };
        // uid, gid, mode big-endian, then an empty xattr array: 12 bytes, no offsets.
        assert_eq!(
            encode_dirmeta(&a).unwrap(),
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xed]
        );
        let b = attrs(0o1777);
        assert_eq!(decode_dirmeta(&encode_dirmeta(&b).unwrap()).unwrap(), b);
        assert!(encode_dirmeta(&attrs(0o10755)).is_err());
        let meta = encode_bareuser_meta(&b, true).unwrap();
        assert!(decode_dirmeta(&meta).is_err());
        assert_eq!(decode_bareuser_meta(&meta).unwrap(), (b, true));
    }

    #[test]
    fn archive_header_round_trips() {
        for kind in [
            FileKind::Regular { size: 1 << 40 },
            FileKind::Symlink {
                target: "../x".into(),
            },
        ] {
            let h = encode_archive_header(&attrs(0o644), &kind).unwrap();
            let len = u32::from_be_bytes(h[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 8, h.len());
            assert_eq!(&h[4..8], &[0; 4]);
            assert_eq!(
                decode_archive_header(&h[8..]).unwrap(),
                (attrs(0o644), kind)
            );
        }
        let bad = FileKind::Symlink { target: "".into() };
        assert!(encode_file_header(&attrs(0o777), &bad).is_err());
    }

    #[test]
    fn dirtree_refuses_unsorted_and_clashing_names() {
        let c = Checksum([1; 32]);
        let ok = DirTree {
            files: vec![("a".into(), c), ("b".into(), c)],
            dirs: vec![DirTreeDir {
                name: "c".into(),
                tree: c,
                meta: c,
            }],
        };
        assert_eq!(decode_dirtree(&encode_dirtree(&ok).unwrap()).unwrap(), ok);
        let mut unsorted = ok.clone();
        unsorted.files.reverse();
        assert!(decode_dirtree(&encode_dirtree(&unsorted).unwrap()).is_err());
        let mut clash = ok.clone();
        clash.dirs[0].name = "a".into();
        assert!(decode_dirtree(&encode_dirtree(&clash).unwrap()).is_err());
        let mut traversal = ok;
        traversal.dirs[0].name = "..".into();
        assert!(decode_dirtree(&encode_dirtree(&traversal).unwrap()).is_err());
    }

    #[test]
    fn commit_round_trips_with_metadata() {
        let c = Commit {
            metadata: vec![
                ("a.str".into(), MetaValue::Str("x".into())),
                (
                    "b.list".into(),
                    MetaValue::StrList(vec!["p".into(), "".into()]),
                ),
                ("c.bytes".into(), MetaValue::Bytes(vec![1, 2, 3])),
                ("d.u64".into(), MetaValue::U64(u64::MAX - 1)),
                ("e.sigs".into(), MetaValue::BytesList(vec![vec![9; 64]])),
                (
                    "f.other".into(),
                    MetaValue::Other {
                        type_string: "(us)".into(),
                        data: vec![1, 0, 0, 0, b'z', 0],
                    },
                ),
            ],
            parent: Some(Checksum([3; 32])),
            related: vec![],
            subject: "s".into(),
            body: "b".into(),
            timestamp: 1_700_000_000,
            root_tree: Checksum([4; 32]),
            root_meta: Checksum([5; 32]),
        };
        let bytes = encode_commit(&c).unwrap();
        assert_eq!(decode_commit(&bytes).unwrap(), c);
        // The timestamp is big-endian inside the little-endian tuple.
        let ts = 1_700_000_000u64.to_be_bytes();
        assert!(bytes.windows(8).any(|w| w == ts));
    }
}
