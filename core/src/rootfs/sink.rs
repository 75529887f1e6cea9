//! Where regular-file contents go while a layer is applied. The layer reader hands each file to a
//! [`ContentSink`] as a bounded reader, so the store can write the object while hashing it and
//! no file is ever held whole in memory by the reader. `HashSink` only hashes (`ct pack`,
//! `ct verify --deep`); `MemorySink` keeps contents (tests and small tools).

use super::ids::Blake3Root;
use std::collections::HashMap;
use std::io::{self, Read};

/// Read size for hashing: large enough for BLAKE3's SIMD paths to run at full speed.
const HASH_BUF_LEN: usize = 256 * 1024;

/// Receives the contents of regular files.
pub trait ContentSink {
    /// Read exactly `size` bytes from `content` (it yields no more) and return their BLAKE3
    /// content root. A read error from `content` must be returned as is: it may be a refusal
    /// of the layer (truncation, size limit) that the caller reports instead.
    fn file(&mut self, content: &mut dyn Read, size: u64) -> io::Result<Blake3Root>;

    /// [`ContentSink::file`] for the regular file at `path` (its normalised components joined
    /// by `/`, no leading `/`), for sinks that care where a file is (the SBOM's package
    /// databases); by default the path is ignored.
    fn file_at(
        &mut self,
        _path: &[u8],
        content: &mut dyn Read,
        size: u64,
    ) -> io::Result<Blake3Root> {
        self.file(content, size)
    }
}

/// Hash `content` to its end, checking it is `size` bytes long.
pub fn hash_content(content: &mut dyn Read, size: u64) -> io::Result<Blake3Root> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; HASH_BUF_LEN.min(size.max(1) as usize)];
    let mut total = 0u64;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    if total != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file content is {total} bytes, expected {size}"),
        ));
    }
    Ok(hasher.finalize().into())
}

/// Hashes contents and keeps nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct HashSink;

impl ContentSink for HashSink {
    fn file(&mut self, content: &mut dyn Read, size: u64) -> io::Result<Blake3Root> {
        hash_content(content, size)
    }
}

/// Keeps every file's bytes by content root. Holds whole files: for tests and small inputs.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    pub files: HashMap<Blake3Root, Vec<u8>>,
}

impl ContentSink for MemorySink {
    fn file(&mut self, content: &mut dyn Read, size: u64) -> io::Result<Blake3Root> {
        let mut v = Vec::new();
        content.read_to_end(&mut v)?;
        if v.len() as u64 != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file content is {} bytes, expected {size}", v.len()),
            ));
        }
        let root = Blake3Root::of(&v);
        self.files.insert(root, v);
        Ok(root)
    }
}
