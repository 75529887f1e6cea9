//! A streaming, bounded tar reader for OCI layers (spec/rootfs.md §3.1) and for ct's own outer
//! archives, bundles and export archives (spec/bundle.md §2.2): ustar, pax (`x`, `g`) and GNU
//! (`L`, `K`) headers. It is our own rather than the `tar` crate's because every extension
//! header here has a size bound (the crate reads long names and pax headers whole, however large
//! they claim to be: a 1.5 GiB sparse file made it allocate 11 GiB), and so that each
//! accept/refuse rule is exactly the spec's.
//!
//! Guarantees: memory is bounded by `MAX_PAX_BYTES_V1` whatever the input; every read of the
//! underlying stream counts towards the decompressed-size limit; entry data is never buffered,
//! the caller reads it through [`TarReader::data`] or it is skipped (by seeking, for a file).

use super::error::{bad_header, bad_name, Fail, Refusal};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Size of a tar block. Part of the tar format.
pub const BLOCK: usize = 512;
/// Largest pax extended header (`x` or `g`) accepted. Changing it changes which layers are
/// accepted (v1). Generous: it holds every xattr an inode can carry.
pub const MAX_PAX_BYTES_V1: u64 = 1 << 20;
/// Longest path or link target accepted, in bytes (Linux PATH_MAX less its NUL).
pub const MAX_PATH_BYTES_V1: usize = 4095;
/// Largest device major number Linux represents (12 bits of `dev_t`, and of FUSE's `rdev`).
pub const MAX_DEV_MAJOR_V1: u32 = (1 << 12) - 1;
/// Largest device minor number Linux represents (20 bits).
pub const MAX_DEV_MINOR_V1: u32 = (1 << 20) - 1;

/// Which rules a tar stream is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An OCI layer (spec/rootfs.md §3.1): every extension header, the stream may end right
    /// after the last entry's data (without padding or end-of-archive blocks).
    Layer,
    /// A bundle or export archive (spec/bundle.md §2.2): `x` and `L` headers only, every entry's
    /// padding present and an end-of-archive block at the end.
    Archive,
}

/// The kind of a (non-extension) tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

impl TarKind {
    /// What the kind is called in messages.
    pub const fn describe(self) -> &'static str {
        match self {
            TarKind::Regular => "regular file",
            TarKind::HardLink => "hard link",
            TarKind::Symlink => "symbolic link",
            TarKind::CharDevice => "character device",
            TarKind::BlockDevice => "block device",
            TarKind::Directory => "directory",
            TarKind::Fifo => "FIFO",
        }
    }
}

/// One entry, with pax and GNU extensions already applied. Paths are raw bytes.
#[derive(Debug, Clone)]
pub struct TarEntry {
    pub offset: u64,
    pub kind: TarKind,
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, u32),
    pub rdev: (u32, u32),
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Moves a seekable stream forward by `n` bytes without reading them.
type SeekFn<R> = fn(&mut R, u64) -> io::Result<()>;

/// The decompressed stream with a byte count and a limit.
pub(crate) struct Input<R> {
    inner: R,
    pos: u64,
    limit: u64,
    compressed: bool,
    /// For a file of known length: data is skipped by seeking, never past `len`.
    seek: Option<(SeekFn<R>, u64)>,
}

fn seek_forward<R: io::Seek>(r: &mut R, n: u64) -> io::Result<()> {
    let n = i64::try_from(n).map_err(|_| io::Error::other("seek beyond 2^63"))?;
    r.seek(io::SeekFrom::Current(n)).map(|_| ())
}

impl<R: Read + io::Seek> Input<R> {
    /// A file of `len` bytes, read from its current position (which must be 0): skipped data is
    /// sought over, and a skip past `len` is a truncation.
    pub fn seekable(inner: R, len: u64) -> Self {
        Self {
            inner,
            pos: 0,
            limit: u64::MAX,
            compressed: false,
            seek: Some((seek_forward::<R>, len)),
        }
    }
}

impl<R: Read> Input<R> {
    pub fn new(inner: R, limit: u64, compressed: bool) -> Self {
        Self {
            inner,
            pos: 0,
            limit,
            compressed,
            seek: None,
        }
    }
    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Fail> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    if self.pos > self.limit {
                        return Err(Refusal::Limit {
                            what: format!(
                                "the layer decompresses to more than {} bytes",
                                self.limit
                            ),
                        }
                        .into());
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify(e)),
            }
        }
    }

    /// Decoder errors about the data are refusals; anything else is an I/O failure.
    fn classify(&self, e: io::Error) -> Fail {
        use io::ErrorKind::*;
        if self.compressed && matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof) {
            Fail::Refused(Refusal::Compression {
                detail: e.to_string(),
            })
        } else {
            Fail::Io(e)
        }
    }

    /// Fill `buf`; returns how many bytes were read (fewer only at the end of the stream).
    pub fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, Fail> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(got)
    }

    /// Read and drop `n` bytes; `what` names the truncation if the stream ends first.
    pub fn skip(&mut self, mut n: u64, what: &'static str) -> Result<(), Fail> {
        if let Some((seek, len)) = self.seek {
            if n > 0 {
                let to = self.pos.checked_add(n).filter(|&to| to <= len);
                let Some(to) = to else {
                    return Err(Refusal::Truncated { what }.into());
                };
                seek(&mut self.inner, n).map_err(Fail::Io)?;
                self.pos = to;
            }
            return Ok(());
        }
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.read(&mut buf[..want])?;
            if got == 0 {
                return Err(Refusal::Truncated { what }.into());
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Read and drop up to `n` bytes, stopping quietly where the stream ends.
    fn skip_to_end(&mut self, mut n: u64) -> Result<(), Fail> {
        let mut buf = [0u8; BLOCK];
        while n > 0 {
            let want = n.min(BLOCK as u64) as usize;
            let got = self.read(&mut buf[..want])?;
            if got == 0 {
                return Ok(());
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Read to the end of the stream (so the decoder checks its trailer), dropping the bytes.
    pub fn drain(&mut self) -> Result<(), Fail> {
        if self.seek.is_some() {
            return Ok(()); // a file: what follows the end-of-archive marker is never read
        }
        let mut buf = vec![0u8; 64 * 1024];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }
}

/// Pending extension data for the next entry.
#[derive(Default)]
struct Pending {
    pax: Option<Vec<u8>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl Pending {
    fn any(&self) -> bool {
        self.pax.is_some() || self.long_name.is_some() || self.long_link.is_some()
    }
}

/// Reads entries one at a time; the data of the current entry is read through `data`.
pub(crate) struct TarReader<R> {
    pub input: Input<R>,
    /// Data bytes of the current entry not yet read, then its padding.
    remaining: u64,
    padding: u64,
    headers: u64,
    max_headers: u64,
    dialect: Dialect,
    ended: bool,
    /// The last entry returned (path, header offset): a header that does not parse right after
    /// it usually means its data ran past what its header claimed, so errors name it too.
    prev: Option<(Vec<u8>, u64)>,
}

/// Where a header error happened: the header offset and, once known, the entry path.
pub(crate) type HeaderFail = (u64, Option<Vec<u8>>, Fail);

impl<R: Read> TarReader<R> {
    pub fn new(input: Input<R>, max_headers: u64) -> Self {
        Self::with_dialect(input, max_headers, Dialect::Layer)
    }

    pub fn with_dialect(input: Input<R>, max_headers: u64, dialect: Dialect) -> Self {
        Self {
            input,
            remaining: 0,
            padding: 0,
            headers: 0,
            max_headers,
            dialect,
            prev: None,
            ended: false,
        }
    }

    /// Where the current entry's data starts in the stream (right after `next_entry`).
    pub fn data_offset(&self) -> u64 {
        self.input.pos()
    }

    /// Bytes of the current entry's data not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Read up to `buf.len()` bytes of the current entry's data. The stream ending early is a
    /// truncation.
    pub fn data(&mut self, buf: &mut [u8]) -> Result<usize, Fail> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.input.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Refusal::Truncated {
                what: "the stream ends inside the entry's data (the header claims more bytes)",
            }
            .into());
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn finish_entry(&mut self) -> Result<(), Fail> {
        let (data, padding) = (self.remaining, self.padding);
        self.remaining = 0;
        self.padding = 0;
        self.input.skip(
            data,
            "the stream ends inside the entry's data (the header claims more bytes)",
        )?;
        match self.dialect {
            // A layer may end right after its last entry's data, or inside the padding
            // (`umoci insert` 0.4.7 writes such layers; Go's archive/tar accepts them). What
            // follows, if anything, is read as the next header.
            Dialect::Layer => self.input.skip_to_end(padding),
            Dialect::Archive => self.input.skip(
                padding,
                "the stream ends inside the padding after an entry's data",
            ),
        }
    }

    /// The next entry, or `None` at the end of the archive (after which the stream has been
    /// read to its end).
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, HeaderFail> {
        if self.ended {
            return Ok(None);
        }
        let here = self.input.pos();
        self.finish_entry().map_err(|f| (here, None, f))?;
        let mut pending = Pending::default();
        loop {
            let offset = self.input.pos();
            let at = |f: Fail| (offset, None, f);
            let mut block = [0u8; BLOCK];
            let got = self.input.read_full(&mut block).map_err(at)?;
            if got > 0 && got < BLOCK {
                return Err(at(Refusal::Truncated {
                    what: "the stream ends inside a header",
                }
                .into()));
            }
            if got == 0 && self.dialect == Dialect::Archive {
                return Err(at(Refusal::Truncated {
                    what: "the stream ends without an end-of-archive block",
                }
                .into()));
            }
            if got == 0 || block.iter().all(|&b| b == 0) {
                if got == BLOCK {
                    // Zero block: the end-of-archive marker; a second one may follow.
                    let got2 = self.input.read_full(&mut block).map_err(at)?;
                    if got2 != 0 && got2 != BLOCK {
                        return Err(at(Refusal::Truncated {
                            what: "the stream ends inside a header",
                        }
                        .into()));
                    }
                    if got2 == BLOCK && block.iter().any(|&b| b != 0) {
                        return Err(at(bad_header(
                            "a zero block is followed by a header (end-of-archive marker cut short)",
                        )
                        .into()));
                    }
                }
                if pending.any() {
                    return Err(at(Refusal::Truncated {
                        what: "an extension header is not followed by the entry it describes",
                    }
                    .into()));
                }
                self.input.drain().map_err(at)?;
                self.ended = true;
                return Ok(None);
            }
            self.headers += 1;
            if self.headers > self.max_headers {
                return Err(at(Refusal::Limit {
                    what: format!("more than {} entries in one layer", self.max_headers),
                }
                .into()));
            }
            let prev = &self.prev;
            let h = Header::parse(&block).map_err(|r| match (r, prev) {
                (Refusal::BadHeader { reason }, Some((path, at_byte))) => at(bad_header(format!(
                    "{reason}; the entry before it, {} (header at byte {at_byte}), may hold more \
                     data than its header claims",
                    super::error::show(path)
                ))
                .into()),
                (r, _) => at(r.into()),
            })?;
            if self.dialect == Dialect::Archive && matches!(h.typeflag, b'g' | b'K') {
                let what = if h.typeflag == b'g' {
                    "a pax global header ('g')"
                } else {
                    "a GNU long link name ('K')"
                };
                return Err(at(bad_header(format!(
                    "{what} has no place in a bundle or export archive (only 'x' and 'L' \
                     extension headers are read)"
                ))
                .into()));
            }
            match h.typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    let max = if matches!(h.typeflag, b'x' | b'g') {
                        MAX_PAX_BYTES_V1
                    } else {
                        MAX_PATH_BYTES_V1 as u64 + 1
                    };
                    if h.size > max {
                        let r = if max == MAX_PAX_BYTES_V1 {
                            Refusal::Limit {
                                what: format!("a pax header of {} bytes (limit {max})", h.size),
                            }
                        } else {
                            bad_name(format!("a GNU long name of {} bytes (limit {max})", h.size))
                        };
                        return Err(at(r.into()));
                    }
                    let mut data = vec![0u8; h.size as usize];
                    let n = self.input.read_full(&mut data).map_err(at)?;
                    if n < data.len() {
                        return Err(at(Refusal::Truncated {
                            what: "the stream ends inside an extension header",
                        }
                        .into()));
                    }
                    self.input
                        .skip(pad(h.size), "the stream ends inside an extension header")
                        .map_err(at)?;
                    let slot = match h.typeflag {
                        b'x' => &mut pending.pax,
                        b'L' => &mut pending.long_name,
                        b'K' => &mut pending.long_link,
                        _ => {
                            // Global pax header: checked for syntax, then ignored (§3.1).
                            parse_pax(&data).map_err(|r| at(r.into()))?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(at(bad_header(format!(
                            "two '{}' extension headers for one entry",
                            h.typeflag as char
                        ))
                        .into()));
                    }
                    *slot = Some(data);
                }
                _ => {
                    let e = self.entry(h, pending, offset)?;
                    self.remaining = e.size;
                    self.padding = pad(e.size);
                    self.prev = Some((e.path.clone(), offset));
                    return Ok(Some(e));
                }
            }
        }
    }

    fn entry(&mut self, h: Header, p: Pending, offset: u64) -> Result<TarEntry, HeaderFail> {
        let mut path = h.name.clone();
        let mut link = h.linkname.clone();
        let fail = |path: &[u8], r: Refusal| (offset, Some(path.to_vec()), Fail::Refused(r));
        // Pax records: when a key repeats, the last record wins; an empty value then means "no
        // override" (the header field stands), as POSIX and Go's archive/tar read it.
        let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        if let Some(data) = &p.pax {
            for (k, v) in parse_pax(data).map_err(|r| fail(&h.name, r))? {
                pax.insert(k, v);
            }
        }
        let pax_path = pax.get(&b"path"[..]).filter(|v| !v.is_empty());
        let pax_link = pax.get(&b"linkpath"[..]).filter(|v| !v.is_empty());
        // A GNU long name and a pax path for one entry: readers disagree on which wins (Go's
        // archive/tar takes the GNU name, others the pax path), so the entry is refused.
        if p.long_name.is_some() && pax_path.is_some() {
            return Err(fail(
                &h.name,
                bad_header("both a GNU long name ('L') and a pax path name this entry"),
            ));
        }
        if p.long_link.is_some() && pax_link.is_some() {
            return Err(fail(
                &h.name,
                bad_header("both a GNU long link name ('K') and a pax linkpath name this entry"),
            ));
        }
        if let Some(n) = p.long_name {
            path = gnu_long(&n).map_err(|r| fail(&h.name, r))?;
        }
        if let Some(n) = p.long_link {
            link = gnu_long(&n).map_err(|r| fail(&path, r))?;
        }
        if let Some(v) = pax_path {
            path = v.clone();
        }
        if let Some(v) = pax_link {
            link = v.clone();
        }
        if path.len() > MAX_PATH_BYTES_V1 {
            return Err(fail(
                &path,
                bad_name(format!(
                    "the path is {} bytes long (limit {MAX_PATH_BYTES_V1})",
                    path.len()
                )),
            ));
        }
        if link.len() > MAX_PATH_BYTES_V1 {
            return Err(fail(
                &path,
                bad_name(format!(
                    "the link target is {} bytes long (limit {MAX_PATH_BYTES_V1})",
                    link.len()
                )),
            ));
        }
        let mut size = h.size;
        let (mut uid, mut gid, mut mtime) = (h.uid, h.gid, (h.mtime, 0u32));
        let mut xattrs = BTreeMap::new();
        for (k, v) in pax {
            let num = |what: &str| -> Result<u64, Refusal> {
                parse_decimal(&v)
                    .ok_or_else(|| bad_header(format!("pax {what} {:?}", show_lossy(&v))))
            };
            match k.as_slice() {
                b"path" | b"linkpath" => {}
                b"size" if !v.is_empty() => size = num("size").map_err(|r| fail(&path, r))?,
                b"uid" if !v.is_empty() => uid = id(num("uid")).map_err(|r| fail(&path, r))?,
                b"gid" if !v.is_empty() => gid = id(num("gid")).map_err(|r| fail(&path, r))?,
                b"mtime" if !v.is_empty() => {
                    mtime = parse_pax_time(&v).map_err(|r| fail(&path, r))?
                }
                _ if k.starts_with(b"SCHILY.xattr.") => {
                    let name = &k[b"SCHILY.xattr.".len()..];
                    if name.is_empty() || name.len() > super::node::MAX_XATTR_NAME_V1 {
                        return Err(fail(
                            &path,
                            bad_name("an xattr name is empty or longer than 255 bytes"),
                        ));
                    }
                    if v.len() > super::node::MAX_XATTR_VALUE_V1 {
                        return Err(fail(
                            &path,
                            Refusal::Limit {
                                what: "an xattr value over 65536 bytes".into(),
                            },
                        ));
                    }
                    xattrs.insert(name.to_vec(), v);
                }
                _ if k.starts_with(b"GNU.sparse.") => {
                    return Err(fail(
                        &path,
                        Refusal::Unsupported {
                            what: "sparse files (pax GNU.sparse)".into(),
                        },
                    ))
                }
                _ => {}
            }
        }
        if size > i64::MAX as u64 {
            return Err(fail(&path, bad_header("size over 2^63-1")));
        }
        if path.contains(&0) || link.contains(&0) {
            return Err(fail(&path, Refusal::NulInName));
        }
        let kind = match h.typeflag {
            b'0' | b'7' => TarKind::Regular,
            0 if path.ends_with(b"/") => TarKind::Directory,
            0 => TarKind::Regular,
            b'1' => TarKind::HardLink,
            b'2' => TarKind::Symlink,
            b'3' => TarKind::CharDevice,
            b'4' => TarKind::BlockDevice,
            b'5' => TarKind::Directory,
            b'6' => TarKind::Fifo,
            b'S' => {
                return Err(fail(
                    &path,
                    Refusal::Unsupported {
                        what: "GNU sparse files".into(),
                    },
                ))
            }
            t => {
                return Err(fail(
                    &path,
                    Refusal::Unsupported {
                        what: format!("entry type {:?}", t as char),
                    },
                ))
            }
        };
        if kind != TarKind::Regular && size != 0 {
            return Err(fail(
                &path,
                bad_header(format!(
                    "a {} entry carries {size} data bytes (only regular files have data)",
                    kind.describe()
                )),
            ));
        }
        let rdev = match kind {
            TarKind::CharDevice | TarKind::BlockDevice => (h.devmajor, h.devminor),
            _ => (0, 0),
        };
        if rdev.0 > MAX_DEV_MAJOR_V1 || rdev.1 > MAX_DEV_MINOR_V1 {
            // Linux's dev_t (and FUSE's rdev) hold a 12-bit major and a 20-bit minor: a larger
            // number would be served, or created, as another device.
            return Err(fail(
                &path,
                Refusal::Unsupported {
                    what: format!(
                        "device number {},{} (Linux allows major <= {MAX_DEV_MAJOR_V1}, \
                         minor <= {MAX_DEV_MINOR_V1})",
                        rdev.0, rdev.1
                    ),
                },
            ));
        }
        Ok(TarEntry {
            offset,
            kind,
            path,
            link,
            size,
            mode: h.mode,
            uid,
            gid,
            mtime,
            rdev,
            xattrs,
        })
    }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn show_lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned()
}

fn id(v: Result<u64, Refusal>) -> Result<u32, Refusal> {
    let v = v?;
    u32::try_from(v).map_err(|_| bad_header(format!("uid/gid {v} does not fit 32 bits")))
}

/// GNU long name data: the name, then one or more NULs (only NULs) or nothing.
fn gnu_long(data: &[u8]) -> Result<Vec<u8>, Refusal> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    if data[end..].iter().any(|&b| b != 0) {
        return Err(Refusal::NulInName);
    }
    Ok(data[..end].to_vec())
}

/// The fields of one 512-byte header that ct uses.
struct Header {
    typeflag: u8,
    name: Vec<u8>,
    linkname: Vec<u8>,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    devmajor: u32,
    devminor: u32,
}

fn cstr(field: &[u8]) -> &[u8] {
    &field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())]
}

impl Header {
    fn parse(b: &[u8; BLOCK]) -> Result<Self, Refusal> {
        let stored = parse_numeric(&b[148..156], "checksum")?;
        let unsigned: i64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    x as i64
                }
            })
            .sum();
        let signed: i64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    x as i8 as i64
                }
            })
            .sum();
        if stored != unsigned && stored != signed {
            return Err(bad_header("checksum mismatch (not a tar header)"));
        }
        let magic = &b[257..263];
        let version = &b[263..265];
        let ustar = magic == b"ustar\0" && version == b"00";
        let gnu = magic == b"ustar " && version == b" \0";
        let mut name = cstr(&b[0..100]).to_vec();
        if ustar {
            let prefix = cstr(&b[345..500]);
            if !prefix.is_empty() {
                let mut full = prefix.to_vec();
                full.push(b'/');
                full.extend_from_slice(&name);
                name = full;
            }
        }
        let u32_field = |range: std::ops::Range<usize>, what: &str| -> Result<u32, Refusal> {
            let v = parse_numeric(&b[range], what)?;
            u32::try_from(v).map_err(|_| bad_header(format!("{what} {v} does not fit 32 bits")))
        };
        let size = parse_numeric(&b[124..136], "size")?;
        let mode = parse_numeric(&b[100..108], "mode")?;
        if size < 0 || mode < 0 {
            return Err(bad_header("negative size or mode"));
        }
        let (devmajor, devminor) = if ustar || gnu {
            (
                u32_field(329..337, "devmajor")?,
                u32_field(337..345, "devminor")?,
            )
        } else {
            (0, 0)
        };
        Ok(Self {
            typeflag: b[156],
            name,
            linkname: cstr(&b[157..257]).to_vec(),
            size: size as u64,
            mode: (mode & 0o7777) as u32,
            uid: u32_field(108..116, "uid")?,
            gid: u32_field(116..124, "gid")?,
            mtime: parse_numeric(&b[136..148], "mtime")?,
            devmajor,
            devminor,
        })
    }
}

/// A numeric header field: octal digits padded with spaces or NULs on either side (empty is
/// 0), or GNU base-256 (first byte 0x80 positive, 0xFF negative, big-endian two's complement).
fn parse_numeric(field: &[u8], what: &str) -> Result<i64, Refusal> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            let inv: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
            let mut x: u64 = 0;
            for (i, &c) in field.iter().enumerate() {
                let mut c = c ^ inv;
                if i == 0 {
                    c &= 0x7f;
                }
                if x >> 56 != 0 {
                    return Err(bad_header(format!("{what}: base-256 value overflows")));
                }
                x = x << 8 | c as u64;
            }
            if x >> 63 != 0 {
                return Err(bad_header(format!("{what}: base-256 value overflows")));
            }
            return Ok(if inv == 0xff { !(x as i64) } else { x as i64 });
        }
    }
    let start = field.iter().position(|&b| b != b' ' && b != 0);
    let Some(start) = start else { return Ok(0) };
    let end = field
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .unwrap_or(start)
        + 1;
    let digits = &field[start..end];
    let mut v: i64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err(bad_header(format!("{what} field is not octal")));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add((d - b'0') as i64))
            .ok_or_else(|| bad_header(format!("{what} field overflows")))?;
    }
    Ok(v)
}

/// Decimal digits only, no sign, fits u64.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Pax `mtime`: `-?DIGITS(.DIGITS)?`; fraction digits past 9 are dropped, negative values with
/// a fraction are normalised (`-1.5` is seconds -2, nanoseconds 500000000).
pub(crate) fn parse_pax_time(v: &[u8]) -> Result<(i64, u32), Refusal> {
    let err = || bad_header(format!("pax mtime {:?}", show_lossy(v)));
    let (neg, rest) = match v.strip_prefix(b"-") {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (int, frac) = match rest.iter().position(|&b| b == b'.') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    if int.is_empty() || int.len() > 19 || !int.iter().all(u8::is_ascii_digit) {
        return Err(err());
    }
    if !frac.iter().all(u8::is_ascii_digit) || (rest.contains(&b'.') && frac.is_empty()) {
        return Err(err());
    }
    let secs: i64 = std::str::from_utf8(int)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(err)?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| (d - b'0') as u32);
    }
    if !neg {
        return Ok((secs, nanos));
    }
    if nanos == 0 {
        Ok((-secs, 0))
    } else {
        Ok((-secs - 1, 1_000_000_000 - nanos))
    }
}

/// One pax record: key and value bytes.
pub(crate) type PaxRecord = (Vec<u8>, Vec<u8>);

/// Pax records `LEN KEY=VALUE\n`, LEN counting the whole record. Keys must not contain NUL;
/// `path`, `linkpath`, `uname` and `gname` values must not either.
pub(crate) fn parse_pax(mut data: &[u8]) -> Result<Vec<PaxRecord>, Refusal> {
    let mut out = Vec::new();
    // POSIX pads a pax header with NULs only when writers misbehave; tolerate trailing NULs.
    while !data.is_empty() && !data.iter().all(|&b| b == 0) {
        let sp = data
            .iter()
            .take(21)
            .position(|&b| b == b' ')
            .ok_or_else(|| bad_header("pax record without a length"))?;
        let len = parse_decimal(&data[..sp])
            .filter(|&n| n as usize > sp + 1 && n as usize <= data.len())
            .ok_or_else(|| bad_header("pax record length is wrong"))? as usize;
        let rec = &data[sp + 1..len];
        data = &data[len..];
        let rec = rec
            .strip_suffix(b"\n")
            .ok_or_else(|| bad_header("pax record does not end with a newline"))?;
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad_header("pax record without '='"))?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        if k.is_empty() {
            return Err(bad_header("pax record with an empty key"));
        }
        if k.contains(&0) {
            return Err(Refusal::NulInName);
        }
        if matches!(k, b"path" | b"linkpath" | b"uname" | b"gname") && v.contains(&0) {
            return Err(Refusal::NulInName);
        }
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_numeric(b"0000644\0", "m").unwrap(), 0o644);
        assert_eq!(parse_numeric(b"  644 \0", "m").unwrap(), 0o644);
        assert_eq!(parse_numeric(b"\0\0\0\0", "m").unwrap(), 0);
        assert!(parse_numeric(b"0009\0", "m").is_err());
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 5;
        assert_eq!(parse_numeric(&big, "s").unwrap(), 5);
        let neg = [0xffu8; 12];
        assert_eq!(parse_numeric(&neg, "t").unwrap(), -1);
        assert!(parse_numeric(&[0x80, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "s").is_err());
    }

    #[test]
    fn pax_time() {
        assert_eq!(parse_pax_time(b"1700000000").unwrap(), (1_700_000_000, 0));
        assert_eq!(parse_pax_time(b"1.5").unwrap(), (1, 500_000_000));
        assert_eq!(parse_pax_time(b"1.1234567891").unwrap(), (1, 123_456_789));
        assert_eq!(parse_pax_time(b"-1.5").unwrap(), (-2, 500_000_000));
        assert_eq!(parse_pax_time(b"-3").unwrap(), (-3, 0));
        for bad in [
            &b""[..],
            b"1.",
            b".5",
            b"1e3",
            b"--1",
            b"99999999999999999999",
        ] {
            assert!(parse_pax_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pax_records() {
        let r = parse_pax(b"9 path=a\n14 mtime=1.25\n").unwrap();
        assert_eq!(r[0], (b"path".to_vec(), b"a".to_vec()));
        assert_eq!(r[1], (b"mtime".to_vec(), b"1.25".to_vec()));
        assert_eq!(parse_pax(b"12 path=a\0b\n"), Err(Refusal::NulInName));
        assert!(parse_pax(b"99 path=a\n").is_err());
        assert!(parse_pax(b"8 path=a").is_err());
        // Binary xattr values may hold NUL and newlines.
        let r = parse_pax(b"26 SCHILY.xattr.user.x=\0\n\n").unwrap();
        assert_eq!(r[0].1, b"\0\n".to_vec());
    }
}
