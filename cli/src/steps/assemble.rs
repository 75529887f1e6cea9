//! Reassemble a bundle and verify it in the same pass: the deterministic bundle writer (the one
//! `ct pack` uses, so the result is byte for byte the original) writes into a temporary file
//! while `ct verify`'s own reader scans the very bytes written, on a second thread. The caller
//! renames the file into place only when the verdict is good. Memory stays constant (a few MiB
//! in flight between the threads).

use crate::exit::{CmdResult, Failure};
use crate::output::{Output, Progress};
use cerro_core::bundle::{
    scan_bundle, write_bundle, BlobSource, BundleContents, BundleError, RawBundle,
};
use cerro_core::verify::{verify, VerifyContext, VerifyReport};
use cerro_core::Sha256Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes handed to the verifier thread at a time.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between writer and verifier (bounds memory: CHUNK × this).
const IN_FLIGHT: usize = 4;

/// Writes to the file and hands the same bytes to the verifier.
struct Tee<W: Write> {
    out: W,
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
}

impl<W: Write> Tee<W> {
    fn pass_on(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) => tx
                .send(chunk)
                .map_err(|_| io::Error::other("the verifier stopped reading")),
            None => Ok(()),
        }
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.out.write_all(data)?;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.pass_on()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.pass_on()
    }
}

/// Reads what the `Tee` sends; end of stream when the writer is gone.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(v) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }
    /// Read the rest (a tar reader stops at the end-of-archive marker), then give the digest
    /// and length of the whole stream.
    pub fn finish(mut self) -> io::Result<(Sha256Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Sha256Digest::from_bytes(self.hasher.finalize().into()),
            self.len,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// A bundle written to a temporary file and the verdict on its bytes.
pub struct Assembled {
    pub file: tempfile::NamedTempFile,
    pub report: VerifyReport,
    pub size: u64,
    /// SHA-256 of the whole bundle file (what `sha256sum` prints for it), when asked for.
    pub file_digest: Option<Sha256Digest>,
}

/// Write the bundle for `contents` (blobs from `src`) into a temporary file in `dir`, verifying
/// it as `ct verify` would with `vctx`; with `file_digest`, also hash the whole file (one more
/// SHA-256 pass, on the verifier's thread). An `Err` means the bundle could not be written at
/// all (the blob source failed, or a blob did not match its digest: exit 1).
pub fn write_verified(
    out: &Output,
    dir: &Path,
    contents: &BundleContents<'_>,
    src: &mut dyn BlobSource,
    vctx: &VerifyContext<'_>,
    label: &str,
    file_digest: bool,
) -> Result<Assembled, WriteError> {
    let tmp = tempfile::Builder::new()
        .prefix(".ct-bundle-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            WriteError::Failure(Failure::io(
                format!("creating a temporary file in {}", dir.display()),
                e,
            ))
        })?;
    let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let mut progress = Progress::new(out, label, contents.manifest.image_size());
    let (written, scanned) = std::thread::scope(|s| {
        let scanner = s.spawn(move || {
            let channel = ChannelReader {
                rx,
                cur: vec![],
                pos: 0,
            };
            if !file_digest {
                return scan_bundle(channel, &mut |_| {}).map(|raw| (raw, None));
            }
            let mut r = HashingReader::new(channel);
            let raw = scan_bundle(&mut r, &mut |_| {})?;
            let (digest, _) = r
                .finish()
                .map_err(|e| BundleError::io("reading the bundle", e))?;
            Ok::<_, BundleError>((raw, Some(digest)))
        });
        let tee = Tee {
            out: BufWriter::with_capacity(CHUNK, tmp.as_file()),
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
        };
        let written =
            write_bundle(tee, contents, src, &mut |n| progress.update(n)).and_then(|mut tee| {
                tee.flush()
                    .map_err(|e| BundleError::io("writing the bundle", e))?;
                tee.tx = None; // end of stream for the verifier
                Ok(())
            });
        // On failure the tee (and its sender) is already dropped, so the scanner ends.
        let scanned = scanner.join().expect("the verifier thread does not panic");
        (written, scanned)
    });
    progress.finish();
    written.map_err(WriteError::Bundle)?;
    let (raw, file_digest): (RawBundle, _) = scanned.map_err(|e| {
        WriteError::Failure(Failure::from(e).context("re-reading the bundle just written"))
    })?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| WriteError::Failure(Failure::io("writing the bundle", e)))?;
    let size = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Assembled {
        file: tmp,
        report: verify(&raw, vctx),
        size,
        file_digest,
    })
}

/// Why a bundle could not be written: the writer's own error (the caller may know better what
/// caused it, e.g. a network failure behind an I/O error), or another failure.
pub enum WriteError {
    Bundle(BundleError),
    Failure(Failure),
}

/// Move a verified bundle into place (readable like any file the user creates).
pub fn persist(a: Assembled, output: &Path) -> CmdResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(a.file.path(), std::fs::Permissions::from_mode(0o644));
    a.file
        .persist(output)
        .map_err(|e| Failure::io(format!("writing {}", output.display()), e.error))?;
    Ok(())
}
