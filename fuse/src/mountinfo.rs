//! Reading `/proc/self/mountinfo`: which paths are mount points, of what type, from what source,
//! and which of them are Cerro's (ct names each mount's source `cerro:NAME`).
//! `ct mount` refuses a busy mount point, `ct umount` only unmounts Cerro's own mounts, and
//! `ct mounts` shows Cerro mounts no registration knows of.

use std::path::{Path, PathBuf};

/// Source of Cerro's mounts as the kernel lists them (`cerro:NAME`; the type is `fuse`, or
/// `fuse.cerro` where the subtype reaches the kernel).
pub const CERRO_SOURCE_PREFIX: &str = "cerro:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub source: String,
}

impl MountEntry {
    /// True for a mount made by ct (`ct mount`, `ct store mount`).
    pub fn is_cerro(&self) -> bool {
        (self.fstype == "fuse" || self.fstype.starts_with("fuse."))
            && self.source.starts_with(CERRO_SOURCE_PREFIX)
    }
}

/// Undo the kernel's octal escapes (`\040` for a space, and so on).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let source = r.next().unwrap_or("");
            Some(MountEntry {
                mountpoint: PathBuf::from(unescape(mountpoint)),
                fstype: fstype.to_string(),
                source: unescape(source),
            })
        })
        .collect()
}

/// The mounts of this process's namespace.
pub fn read() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// The topmost mount at exactly `path`, if any.
pub fn at(path: &Path) -> Option<MountEntry> {
    read().into_iter().rev().find(|m| m.mountpoint == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fuse_entries_with_escapes() {
        let t = "36 35 98:0 / /mnt/a\\040b rw,nosuid - fuse.cerro cerro:busybox ro,user_id=0\n\
                 37 35 0:5 / /proc rw shared:1 - proc proc rw\n";
        let m = parse(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt/a b"));
        assert!(m[0].is_cerro());
        assert!(!m[1].is_cerro());
        assert_eq!(m[0].source, "cerro:busybox");
        assert_eq!(m[1].fstype, "proc");
    }
}
