//! Shared by the rootfs tests and the vector generator (core/examples/gen_rootfs_vectors.rs):
//! a small layer writer on top of the `tar` crate (plus the raw headers it cannot write: pax
//! records, NUL bytes in names, truncations), compression helpers, and the listing format of
//! `spec/vectors/rootfs/*/expected.txt`.
#![allow(dead_code)]

use cerro_core::rootfs::{
    DirEntry, LayerError, Limits, MemorySink, Payload, Rootfs, RootfsBuilder,
};
use cerro_core::source::Compression;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Fixed mtime of generated entries (2023-11-14T22:13:20Z).
pub const MTIME: u64 = 1_700_000_000;

/// Writes one layer's tar stream.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(0);
    h
}

fn p(path: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(path))
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Complete);
        Self { b }
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.dir_owned(path, mode, 0, 0)
    }

    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.put(h, path.as_bytes(), None, &[]);
        self
    }

    /// Short names go into the header as given (leading `/`, `./`, any bytes); long ones
    /// through the `tar` crate, which writes GNU long-name and long-link headers.
    fn put(&mut self, mut h: tar::Header, path: &[u8], link: Option<&[u8]>, data: &[u8]) {
        if path.len() <= 100 && link.is_none_or(|l| l.len() <= 100) {
            h.as_old_mut().name[..path.len()].copy_from_slice(path);
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
            }
            h.set_size(data.len() as u64);
            h.set_cksum();
            self.b.append(&h, data).unwrap();
        } else if let Some(l) = link {
            self.b.append_link(&mut h, p(path), p(l)).unwrap();
        } else {
            h.set_size(data.len() as u64);
            self.b.append_data(&mut h, p(path), data).unwrap();
        }
    }

    pub fn file(&mut self, path: &[u8], mode: u32, data: &[u8]) -> &mut Self {
        let h = header(tar::EntryType::Regular, mode);
        self.put(h, path, None, data);
        self
    }

    pub fn symlink(&mut self, path: &[u8], target: &[u8]) -> &mut Self {
        let h = header(tar::EntryType::Symlink, 0o777);
        self.put(h, path, Some(target), &[]);
        self
    }

    pub fn hardlink(&mut self, path: &[u8], target: &[u8]) -> &mut Self {
        let h = header(tar::EntryType::Link, 0o644);
        self.put(h, path, Some(target), &[]);
        self
    }

    pub fn device(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = header(kind, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.put(h, path.as_bytes(), None, &[]);
        self
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        let h = header(tar::EntryType::Fifo, 0o600);
        self.put(h, path.as_bytes(), None, &[]);
        self
    }

    /// A pax extended header (`x`) for the next entry, records written as given.
    pub fn pax(&mut self, records: &[(&[u8], &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3; // ' ', '=', '\n'
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(k);
            data.push(b'=');
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_path("PaxHeaders/x").unwrap();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, &data[..]).unwrap();
        self
    }

    /// A header with any type flag and raw (up to 100-byte) name, for what builders refuse.
    pub fn raw_entry(&mut self, kind: u8, name: &[u8], link: &[u8], data: &[u8]) -> &mut Self {
        let mut h = header(tar::EntryType::new(kind), 0o644);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// One header block as bytes, with a size field that need not match any data.
    pub fn header_bytes(kind: u8, name: &[u8], size: u64) -> Vec<u8> {
        let mut h = header(tar::EntryType::new(kind), 0o644);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(size);
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    /// Bytes appended as they are (no header logic).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.b.get_mut().extend_from_slice(bytes);
        self
    }

    /// The stream so far, without the end-of-archive marker.
    pub fn unfinished(self) -> Vec<u8> {
        let mut b = self.b;
        std::mem::take(b.get_mut())
    }

    /// The complete stream with its end-of-archive marker.
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Compression from a layer file name (`.tar`, `.tar.gz`, `.tar.zst`).
pub fn compression_of(name: &str) -> Compression {
    if name.ends_with(".gz") {
        Compression::Gzip
    } else if name.ends_with(".zst") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Apply layers in order with an in-memory sink.
pub fn apply(layers: &[(Vec<u8>, Compression)], limits: Limits) -> Result<Rootfs, LayerError> {
    let mut b = RootfsBuilder::new(limits);
    let mut sink = MemorySink::default();
    for (bytes, c) in layers {
        b.apply_layer(&bytes[..], *c, &mut sink)?;
    }
    Ok(b.finish())
}

/// One line of an expected listing: path, kind, mode, owner, mtime, xattrs, payload.
pub fn listing_line(path: &[u8], e: &DirEntry) -> String {
    let m = &e.meta;
    let mut s = format!(
        "{} {:04o} {}:{} {}",
        path.escape_ascii(),
        m.mode,
        m.uid,
        m.gid,
        m.mtime
    );
    for (k, v) in &m.xattrs {
        s.push_str(&format!(" xattr:{}={}", k.escape_ascii(), hex::encode(v)));
    }
    let link = |l: cerro_core::rootfs::Link| {
        if l.nlink > 1 {
            format!(" nlink={} group={}", l.nlink, l.id)
        } else {
            String::new()
        }
    };
    match &e.payload {
        Payload::File {
            size,
            root,
            link: l,
        } => s.push_str(&format!(" file {size} {root}{}", link(*l))),
        Payload::Directory { digest } => s.push_str(&format!(" dir {digest}")),
        Payload::Symlink { target, link: l } => {
            s.push_str(&format!(" symlink {}{}", target.escape_ascii(), link(*l)))
        }
        Payload::CharDevice {
            major,
            minor,
            link: l,
        } => s.push_str(&format!(" char {major},{minor}{}", link(*l))),
        Payload::BlockDevice {
            major,
            minor,
            link: l,
        } => s.push_str(&format!(" block {major},{minor}{}", link(*l))),
        Payload::Fifo { link: l } => s.push_str(&format!(" fifo{}", link(*l))),
    }
    s
}

/// The expected.txt text of a rootfs: its digest, the root's metadata, then every entry.
pub fn listing(r: &Rootfs) -> String {
    let m = &r.root.meta;
    let mut out = format!(
        "rootfs {}\nroot {:04o} {}:{} {} dir {}\n",
        r.digest, m.mode, m.uid, m.gid, m.mtime, r.root.dir
    );
    for (path, e) in r.walk().unwrap() {
        out.push_str(&listing_line(&path, &e));
        out.push('\n');
    }
    out
}
