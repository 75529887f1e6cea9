//! Write a bundle and read it back in the same pass: the deterministic bundle writer (the one
//! `ct pack` uses, so the result is byte for byte the original) writes into the caller's file
//! while the bundle reader scans the very bytes written, on a second thread, so that what is
//! verified is what was written. Memory stays constant (a few MiB in flight between threads).

use super::{scan_bundle, write_bundle, BlobSource, BundleContents, BundleError, RawBundle};
use crate::digest::{HashingReader, Sha256Digest};
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes handed to the verifier thread at a time.
pub const CHUNK: usize = 1 << 20;
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

/// Why [`write_and_scan`] stopped.
#[derive(Debug)]
pub enum AssembleError {
    /// The writer failed: the blob source, a blob that did not match its digest, or the output.
    Write(BundleError),
    /// The bytes written did not read back as a bundle.
    Rescan(BundleError),
}

/// Write the bundle for `contents` (blobs from `src`) into `out`, while a second thread scans
/// the same bytes with the bundle reader; with `file_digest`, that thread also hashes the whole
/// stream. Answers the bundle as read back (for `verify`) and, when asked, its SHA-256.
pub fn write_and_scan<W: Write>(
    out: W,
    contents: &BundleContents<'_>,
    src: &mut dyn BlobSource,
    progress: &mut dyn FnMut(u64),
    file_digest: bool,
) -> Result<(RawBundle, Option<Sha256Digest>), AssembleError> {
    let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
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
            out,
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
        };
        let written = write_bundle(tee, contents, src, progress).and_then(|mut tee| {
            tee.flush()
                .map_err(|e| BundleError::io("writing the bundle", e))?;
            tee.tx = None; // end of stream for the scanner
            Ok(())
        });
        // On failure the tee (and its sender) is already dropped, so the scanner ends.
        let scanned = scanner.join().expect("the scanner thread does not panic");
        (written, scanned)
    });
    written.map_err(AssembleError::Write)?;
    scanned.map_err(AssembleError::Rescan)
}
