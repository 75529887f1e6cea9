//! Filesystem trees as comparable entry lists: [`walk_tree`] reads any directory tree from disk
//! (lstat, readlink, llistxattr/lgetxattr, BLAKE3 of regular files) and [`from_store_tree`]
//! reads what `ct store tree --json` reports, both into the same [`Entry`] per path, so that
//! [`compare`] can name every difference by path. Used to check `ct import` against
//! `umoci unpack`, and meant for checking a FUSE mount against the same rootfs.
//!
//! Paths are absolute within the tree (`/`, `/bin/sh`) and, like link targets and xattr names,
//! written with [`escape_bytes`] (the rule `ct store tree` documents). A hard-linked inode is
//! described by the smallest path that names it (`hardlink`), which both sides can compute
//! whatever their inode numbers or link ids are.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What kind of inode an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl Kind {
    /// The name `ct store tree --json` uses.
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Char => "char",
            Kind::Block => "block",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "file" => Kind::File,
            "dir" => Kind::Dir,
            "symlink" => Kind::Symlink,
            "char" => Kind::Char,
            "block" => Kind::Block,
            "fifo" => Kind::Fifo,
            other => panic!("unknown entry type {other:?}"),
        }
    }
}

/// One entry of a tree: everything a rootfs must get right about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// Link count (a directory's is 2 plus its subdirectories).
    pub nlink: u64,
    /// Regular files: size in bytes.
    pub size: Option<u64>,
    /// Regular files: `blake3:<hex>` of the contents (what `b3sum` prints).
    pub content: Option<String>,
    /// Symbolic links: the target, escaped.
    pub target: Option<String>,
    /// Devices: (major, minor).
    pub rdev: Option<(u32, u32)>,
    /// Extended attributes: escaped name → hex value.
    pub xattrs: BTreeMap<String, String>,
    /// Non-directories with more than one link: the smallest path naming the same inode.
    pub hardlink: Option<String>,
}

/// Show bytes as text: valid UTF-8 stays (a backslash doubled, a control character or a Unicode
/// bidirectional control as `\xNN` per byte), every byte outside a valid UTF-8 sequence becomes
/// `\xNN`. The same rule as `ct store tree`, implemented separately here on purpose.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                s.push_str("\\\\");
            } else if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    write!(s, "\\x{byte:02x}").unwrap();
                }
            } else {
                s.push(c);
            }
        }
        for byte in chunk.invalid() {
            write!(s, "\\x{byte:02x}").unwrap();
        }
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        write!(s, "{x:02x}").unwrap();
        s
    })
}

/// Linux `major()`/`minor()` of a device number (glibc's encoding).
fn dev_parts(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// BLAKE3 of a file's contents, streamed.
pub fn blake3_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("blake3:{}", h.finalize().to_hex())
}

fn xattrs_of(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 64 << 10];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return out,
        Err(e) => panic!("llistxattr {}: {e}", path.display()),
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 64 << 10];
        let len = rustix::fs::lgetxattr(path, name, &mut value[..])
            .unwrap_or_else(|e| panic!("lgetxattr {} {:?}: {e}", path.display(), name));
        out.insert(escape_bytes(name), hex(&value[..len]));
    }
    out
}

/// Read the tree rooted at `dir` (the root itself is the entry `/`), never following symlinks.
pub fn walk_tree(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut stack = vec![(dir.to_path_buf(), b"/".to_vec())];
    while let Some((p, rel)) = stack.pop() {
        let md = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_char_device() {
            Kind::Char
        } else if ft.is_block_device() {
            Kind::Block
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        };
        let path = escape_bytes(&rel);
        let e = Entry {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: (md.mtime(), md.mtime_nsec() as u32),
            nlink: md.nlink(),
            size: (kind == Kind::File).then(|| md.size()),
            content: (kind == Kind::File).then(|| blake3_file(&p)),
            target: (kind == Kind::Symlink)
                .then(|| escape_bytes(fs::read_link(&p).unwrap().as_os_str().as_bytes())),
            rdev: matches!(kind, Kind::Char | Kind::Block).then(|| dev_parts(md.rdev())),
            xattrs: xattrs_of(&p),
            hardlink: None,
        };
        if kind != Kind::Dir && md.nlink() > 1 {
            inodes
                .entry((md.dev(), md.ino()))
                .or_default()
                .push(path.clone());
        }
        out.insert(path, e);
        if kind == Kind::Dir {
            for ent in fs::read_dir(&p).unwrap() {
                let ent = ent.unwrap();
                let mut child = rel.clone();
                if child.len() > 1 {
                    child.push(b'/');
                }
                child.extend_from_slice(ent.file_name().as_bytes());
                stack.push((ent.path(), child));
            }
        }
    }
    set_hardlinks(&mut out, inodes.into_values());
    out
}

/// Give every path of each group of hard links the group's smallest path.
fn set_hardlinks(entries: &mut BTreeMap<String, Entry>, groups: impl Iterator<Item = Vec<String>>) {
    for g in groups {
        let first = g.iter().min().unwrap().clone();
        for p in g {
            entries.get_mut(&p).unwrap().hardlink = Some(first.clone());
        }
    }
}

/// The entries `ct store tree --json` reported (its whole JSON document).
pub fn from_store_tree(doc: &Value) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut groups: HashMap<u64, Vec<String>> = HashMap::new();
    let entries = doc["entries"]
        .as_array()
        .expect("ct store tree --json has an entries list");
    let u = |v: &Value, k: &str| -> u64 {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("entry field {k} is not a number: {v}"))
    };
    for v in entries {
        let path = v["path"].as_str().expect("path").to_string();
        let kind = Kind::parse(v["type"].as_str().expect("type"));
        let e = Entry {
            kind,
            mode: u(v, "mode") as u32,
            uid: u(v, "uid") as u32,
            gid: u(v, "gid") as u32,
            mtime: (
                v["mtime"].as_i64().expect("mtime"),
                u(v, "mtime_nsec") as u32,
            ),
            nlink: u(v, "nlink"),
            size: v["size"].as_u64(),
            content: v["content"].as_str().map(str::to_string),
            target: v["target"].as_str().map(str::to_string),
            rdev: v
                .get("rdev")
                .map(|r| (u(r, "major") as u32, u(r, "minor") as u32)),
            xattrs: v
                .get("xattrs")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            hardlink: None,
        };
        if let Some(g) = v["link_group"].as_u64() {
            groups.entry(g).or_default().push(path.clone());
        }
        assert!(
            out.insert(path.clone(), e).is_none(),
            "ct store tree lists {path} twice"
        );
    }
    set_hardlinks(&mut out, groups.into_values());
    out
}

/// Every difference between two trees, by path: entries only in one, and each field that
/// differs (`a` is the one under test, `b` the reference). Empty when they are equal.
pub fn compare(a: &BTreeMap<String, Entry>, b: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, x) in a {
        let Some(y) = b.get(p) else {
            out.push(format!("{p}: only in the first tree ({})", x.kind.name()));
            continue;
        };
        let mut diff = |field: &str, l: String, r: String| {
            if l != r {
                out.push(format!("{p}: {field} {l} != {r}"));
            }
        };
        diff("type", x.kind.name().into(), y.kind.name().into());
        diff("mode", format!("{:o}", x.mode), format!("{:o}", y.mode));
        diff("uid", x.uid.to_string(), y.uid.to_string());
        diff("gid", x.gid.to_string(), y.gid.to_string());
        diff(
            "mtime",
            format!("{}.{:09}", x.mtime.0, x.mtime.1),
            format!("{}.{:09}", y.mtime.0, y.mtime.1),
        );
        diff("nlink", x.nlink.to_string(), y.nlink.to_string());
        diff("size", format!("{:?}", x.size), format!("{:?}", y.size));
        diff(
            "content",
            format!("{:?}", x.content),
            format!("{:?}", y.content),
        );
        diff(
            "target",
            format!("{:?}", x.target),
            format!("{:?}", y.target),
        );
        diff("rdev", format!("{:?}", x.rdev), format!("{:?}", y.rdev));
        diff(
            "xattrs",
            format!("{:?}", x.xattrs),
            format!("{:?}", y.xattrs),
        );
        diff(
            "hard link",
            format!("{:?}", x.hardlink),
            format!("{:?}", y.hardlink),
        );
    }
    for (p, y) in b {
        if !a.contains_key(p) {
            out.push(format!("{p}: only in the second tree ({})", y.kind.name()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_like_glibc() {
        // makedev(1, 3) and makedev(259, 70000) in glibc's encoding.
        let mk = |ma: u64, mi: u64| {
            ((ma & 0xfffff000) << 32)
                | ((ma & 0xfff) << 8)
                | ((mi & 0xffffff00) << 12)
                | (mi & 0xff)
        };
        assert_eq!(dev_parts(mk(1, 3)), (1, 3));
        assert_eq!(dev_parts(mk(259, 70000)), (259, 70000));
    }

    #[test]
    fn walking_a_small_tree_sees_links_and_contents() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir(r.join("sub")).unwrap();
        fs::write(r.join("sub/a"), b"abc").unwrap();
        fs::hard_link(r.join("sub/a"), r.join("b")).unwrap();
        std::os::unix::fs::symlink("sub/a", r.join("s")).unwrap();
        let t = walk_tree(r);
        assert_eq!(t.len(), 5, "{t:?}");
        assert_eq!(t["/"].kind, Kind::Dir);
        assert_eq!(t["/"].nlink, 3);
        let a = &t["/sub/a"];
        assert_eq!(
            a.content.as_deref(),
            Some(&*format!("blake3:{}", blake3::hash(b"abc").to_hex()))
        );
        assert_eq!(a.hardlink.as_deref(), Some("/b"));
        assert_eq!(t["/b"].hardlink.as_deref(), Some("/b"));
        assert_eq!(t["/s"].target.as_deref(), Some("sub/a"));
        let mut other = t.clone();
        other.get_mut("/sub/a").unwrap().mode = 0o600;
        other.remove("/s");
        let diffs = compare(&other, &t);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].starts_with("/sub/a: mode 600 != "), "{diffs:?}");
        assert!(
            diffs[1].starts_with("/s: only in the second tree"),
            "{diffs:?}"
        );
    }
}
