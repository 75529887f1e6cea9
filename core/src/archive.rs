//! The one bounded reader for the outer tar archives ct reads: bundles (spec/bundle.md §2.2),
//! export archives (spec/export.md §4) and `docker save` archives. It is the layer reader of
//! `rootfs::tar` (same header, pax and GNU rules, same bounds: extension headers at most 1 MiB,
//! names at most 4095 bytes), so a hostile archive cannot make ct allocate more than that, nor
//! print more than a cut, escaped name (`crate::text::show_name`).
//!
//! Entry data is never buffered: the caller reads it with [`ArchiveReader::read_data`], or it
//! is skipped — by seeking, for a file opened with [`ArchiveReader::seekable`], so indexing a
//! bundle of many GiB reads only its headers.

pub use crate::rootfs::tar::{Dialect, TarKind};
use crate::rootfs::tar::{Input, TarReader};
use crate::rootfs::{error::Fail, Refusal};
use std::fmt;
use std::io::{self, Read, Seek};

/// One entry of an archive, extensions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The name as written (raw bytes; at most 4095).
    pub name: Vec<u8>,
    pub kind: TarKind,
    /// Link target (symbolic and hard links; empty otherwise).
    pub link: Vec<u8>,
    /// Data bytes (0 for anything but a regular file).
    pub size: u64,
    /// Where the entry's header starts, and where its data starts, in the archive.
    pub header_offset: u64,
    pub data_offset: u64,
}

/// Why an archive could not be read.
#[derive(Debug)]
pub enum ArchiveError {
    /// The bytes break a rule (exit 10): the offset of the header concerned, the entry's name
    /// once known, and the rule. `problem.class()` is `truncated` when the stream ends early.
    Malformed {
        offset: u64,
        entry: Option<Vec<u8>>,
        problem: Refusal,
    },
    /// Reading the archive failed (exit 11).
    Io(io::Error),
}

impl ArchiveError {
    pub fn is_truncated(&self) -> bool {
        matches!(
            self,
            Self::Malformed {
                problem: Refusal::Truncated { .. },
                ..
            }
        )
    }
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed {
                offset,
                entry: Some(name),
                problem,
            } => write!(
                f,
                "entry {} (header at byte {offset}): {problem}",
                crate::text::show_name(name)
            ),
            Self::Malformed {
                offset,
                entry: None,
                problem,
            } => write!(f, "header at byte {offset}: {problem}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ArchiveError {}

/// Reads an outer archive entry by entry.
pub struct ArchiveReader<R> {
    tar: TarReader<R>,
    /// Header offset and name of the current entry, for errors while reading its data.
    current: Option<(u64, Vec<u8>)>,
}

impl<R: Read> ArchiveReader<R> {
    /// A stream read front to back (data that is not read is read and dropped).
    pub fn new(r: R, max_headers: u64, dialect: Dialect) -> Self {
        Self {
            tar: TarReader::with_dialect(Input::new(r, u64::MAX, false), max_headers, dialect),
            current: None,
        }
    }

    /// The next entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<ArchiveEntry>, ArchiveError> {
        self.current = None;
        match self.tar.next_entry() {
            Ok(None) => Ok(None),
            Ok(Some(e)) => {
                self.current = Some((e.offset, e.path.clone()));
                Ok(Some(ArchiveEntry {
                    name: e.path,
                    kind: e.kind,
                    link: e.link,
                    size: e.size,
                    header_offset: e.offset,
                    data_offset: self.tar.data_offset(),
                }))
            }
            Err((offset, entry, f)) => Err(from_fail(offset, entry, f)),
        }
    }

    /// Read the current entry's data; 0 at its end. The archive ending first is truncation.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        self.tar.data(buf).map_err(|f| {
            let (offset, name) = self.current.clone().unwrap_or_default();
            from_fail(offset, Some(name), f)
        })
    }

    /// Bytes of the archive consumed so far.
    pub fn position(&self) -> u64 {
        self.tar.input.pos()
    }
}

impl<R: Read + Seek> ArchiveReader<R> {
    /// A file of `len` bytes, positioned at its start: data that is not read is sought over.
    pub fn seekable(r: R, len: u64, max_headers: u64, dialect: Dialect) -> Self {
        Self {
            tar: TarReader::with_dialect(Input::seekable(r, len), max_headers, dialect),
            current: None,
        }
    }
}

impl<R: Read> Read for ArchiveReader<R> {
    /// The current entry's data (errors as `io::Error` carrying the [`ArchiveError`]).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_data(buf).map_err(|e| match e {
            ArchiveError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })
    }
}

fn from_fail(offset: u64, entry: Option<Vec<u8>>, f: Fail) -> ArchiveError {
    match f {
        Fail::Refused(problem) => ArchiveError::Malformed {
            offset,
            entry,
            problem,
        },
        Fail::Io(e) | Fail::Sink(e) => ArchiveError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header block (GNU magic when `gnu`), checksum set.
    fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        b[136..148].copy_from_slice(b"00000000000\0");
        b[156] = typeflag;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    fn entry(out: &mut Vec<u8>, name: &[u8], typeflag: u8, data: &[u8]) {
        out.extend_from_slice(&header(name, typeflag, data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }

    fn names(bytes: &[u8]) -> Result<Vec<(String, u64)>, ArchiveError> {
        let mut r = ArchiveReader::new(bytes, 100, Dialect::Archive);
        let mut v = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut data = Vec::new();
            r.read_to_end(&mut data).map_err(ArchiveError::Io)?;
            assert_eq!(data.len() as u64, e.size);
            v.push((String::from_utf8_lossy(&e.name).into_owned(), e.size));
        }
        Ok(v)
    }

    #[test]
    fn reads_files_dirs_and_long_names() {
        let mut t = Vec::new();
        entry(&mut t, b"d/", b'5', b"");
        entry(&mut t, b"d/f", b'0', b"hello");
        let long = format!("d/{}", "n".repeat(300));
        entry(&mut t, b"././@LongLink", b'L', long.as_bytes());
        entry(&mut t, b"d/short", b'0', b"x");
        t.extend_from_slice(&[0u8; 1024]);
        let v = names(&t).unwrap();
        assert_eq!(v[0], ("d/".into(), 0));
        assert_eq!(v[1], ("d/f".into(), 5));
        assert_eq!(v[2], (long, 1));
    }

    #[test]
    fn a_huge_long_name_is_refused_from_its_header() {
        // The header claims 1.5 GiB of long name; nothing past the header is needed to refuse.
        let mut t = header(b"././@LongLink", b'L', 3 << 29).to_vec();
        t.extend_from_slice(&[b'a'; 512]);
        let e = names(&t).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("GNU long name of 1610612736 bytes (limit 4096)"),
            "{msg}"
        );
        let mut t = header(b"PaxHeaders/x", b'x', 3 << 29).to_vec();
        t.extend_from_slice(&[b'a'; 512]);
        let msg = names(&t).unwrap_err().to_string();
        assert!(msg.contains("pax header of 1610612736 bytes"), "{msg}");
    }

    #[test]
    fn global_and_long_link_headers_have_no_place() {
        for flag in [b'g', b'K'] {
            let mut t = Vec::new();
            entry(&mut t, b"pax_global_header", flag, b"9 path=a\n");
            entry(&mut t, b"f", b'0', b"x");
            t.extend_from_slice(&[0u8; 1024]);
            let msg = names(&t).unwrap_err().to_string();
            assert!(msg.contains("has no place in a bundle"), "{msg}");
        }
    }

    #[test]
    fn an_archive_must_end_with_its_marker_and_padding() {
        let mut t = Vec::new();
        entry(&mut t, b"f", b'0', b"hello");
        // Without the end-of-archive block.
        let e = names(&t).unwrap_err();
        assert!(e.is_truncated(), "{e}");
        // Cut inside the padding.
        let e = names(&t[..600]).unwrap_err();
        assert!(e.is_truncated(), "{e}");
        assert!(e.to_string().contains("padding"), "{e}");
        t.extend_from_slice(&[0u8; 512]);
        assert_eq!(names(&t).unwrap().len(), 1);
    }

    #[test]
    fn names_in_errors_are_cut_and_escaped() {
        let mut name = b"\x1b]0;pwned\x07".to_vec();
        name.extend_from_slice(&[b'z'; 3000]);
        let mut t = Vec::new();
        entry(&mut t, b"././@LongLink", b'L', &name);
        // A symlink type with data: refused, naming the entry.
        let mut h = header(b"x", b'2', 5);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&x| u32::from(x)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        t.extend_from_slice(&h);
        t.extend_from_slice(&[0u8; 1536]);
        let msg = names(&t).unwrap_err().to_string();
        assert!(msg.contains("\\x1b]0;pwned\\x07"), "{msg}");
        assert!(msg.contains("(3010 bytes)"), "{msg}");
        assert!(msg.len() < 400, "{msg}");
        assert!(!msg.chars().any(|c| c.is_control()), "{msg}");
    }

    #[test]
    fn a_seekable_file_skips_data_and_sees_truncation() {
        let mut t = Vec::new();
        entry(&mut t, b"a", b'0', &[7u8; 5000]);
        entry(&mut t, b"b", b'0', b"bb");
        t.extend_from_slice(&[0u8; 1024]);
        let mut r =
            ArchiveReader::seekable(io::Cursor::new(&t), t.len() as u64, 10, Dialect::Archive);
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!((a.header_offset, a.data_offset, a.size), (0, 512, 5000));
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!(b.data_offset, 512 + 5120 + 512);
        assert!(r.next_entry().unwrap().is_none());
        // The same archive cut inside a's data: the skip past the end is a truncation.
        let cut = &t[..3000];
        let mut r = ArchiveReader::seekable(io::Cursor::new(cut), 3000, 10, Dialect::Archive);
        r.next_entry().unwrap();
        assert!(r.next_entry().unwrap_err().is_truncated());
    }
}
