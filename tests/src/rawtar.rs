//! Read and write tar archives entry by entry, keeping each header as it was, so an unchanged
//! list re-assembles byte for byte and a changed one differs only where it was changed. Names and
//! link names are written raw (the `tar` crate would refuse `..` and absolute paths).

use std::path::Path;

/// One tar entry: its header (as read) and its data.
#[derive(Clone)]
pub struct Entry {
    pub header: tar::Header,
    pub data: Vec<u8>,
}

impl Entry {
    /// A fresh ustar entry like the ones ct writes (mode 0644/0755, uid/gid 0, mtime 0).
    pub fn new(name: &str, kind: tar::EntryType, data: &[u8]) -> Self {
        let mut header = tar::Header::new_ustar();
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        let mut e = Self {
            header,
            data: vec![],
        };
        e.set_name(name);
        e.set_data(data);
        e
    }
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self::new(name, tar::EntryType::Regular, data)
    }
    /// A symbolic link entry `name` → `target`.
    pub fn symlink(name: &str, target: &str) -> Self {
        let mut e = Self::new(name, tar::EntryType::Symlink, b"");
        let field = &mut e.header.as_old_mut().linkname;
        field.fill(0);
        field[..target.len()].copy_from_slice(target.as_bytes());
        e.header.set_cksum();
        e
    }
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.header.path_bytes()).into_owned()
    }
    /// Set the name field raw (ustar `name`, at most 100 bytes, no prefix).
    pub fn set_name(&mut self, name: &str) {
        assert!(name.len() <= 100, "test names fit the ustar name field");
        if let Some(u) = self.header.as_ustar_mut() {
            u.prefix.fill(0);
        }
        let field = &mut self.header.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        self.header.set_cksum();
    }
    pub fn set_data(&mut self, data: &[u8]) {
        self.data = data.to_vec();
        self.header.set_size(data.len() as u64);
        self.header.set_cksum();
    }
}

/// Every entry of the archive at `path`, in order.
pub fn read(path: &Path) -> Vec<Entry> {
    let f = std::fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(f);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let header = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push(Entry { header, data });
    }
    out
}

/// The archive bytes for `entries` (headers as given, data padded, two zero blocks at the end).
pub fn bytes(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        b.append(&e.header, e.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn write(path: &Path, entries: &[Entry]) {
    std::fs::write(path, bytes(entries)).unwrap();
}

/// Index of the entry named `name` (panics if absent).
pub fn find(entries: &[Entry], name: &str) -> usize {
    entries
        .iter()
        .position(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no entry {name:?} in the bundle"))
}

/// Offset in the archive file of the first data byte of entry `name`.
pub fn data_offset(path: &Path, name: &str) -> u64 {
    let f = std::fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(f);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            return e.raw_file_position();
        }
    }
    panic!("no entry {name:?} in {}", path.display());
}
