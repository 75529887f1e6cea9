//! Blob downloads. `get_blob_to_file` streams one blob to a file, hashing it as it goes (a
//! mismatch is a `DigestMismatch` error and the file is removed). `Downloads` is a `BlobSource` for the bundle
//! writer: the blob the writer asks for streams straight from the registry into the bundle, while
//! worker threads fetch the next small blobs (in the writer's order, up to 64 MiB each) to
//! temporary files — so a large layer is written once and many small layers travel several at a
//! time, always in constant memory. Dropped connections resume with a `Range` request.

use crate::client::{net_failure, Client, Req};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Bar, Progress};
use cerro_core::bundle::{BlobSource, BundleError};
use cerro_core::Sha256Digest;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use ureq::http::Method;

/// Blobs up to this size are fetched ahead by worker threads (to a temporary file); larger ones
/// are streamed straight into the bundle when the writer reaches them, so they are written once.
const PREFETCH_MAX_BYTES: u64 = 64 << 20;
/// Times a broken blob download is resumed (with `Range`) before it fails.
const MAX_RESUMES: u32 = 3;
/// Copy buffer size.
const BUF: usize = 1 << 20;

/// A reader over one blob that resumes after dropped connections. It does not check the digest:
/// its consumer does (the bundle writer, or `get_blob_to_file`).
pub struct BlobReader<'a> {
    client: &'a Client,
    repo: String,
    digest: Sha256Digest,
    size: u64,
    got: u64,
    body: Option<ureq::BodyReader<'static>>,
    resumes: u32,
    /// The network failure that ended the stream, for the caller to report.
    pub failure: Option<Error>,
}

impl<'a> BlobReader<'a> {
    pub fn open(client: &'a Client, repo: &str, digest: Sha256Digest, size: u64) -> Result<Self> {
        let mut r = Self {
            client,
            repo: repo.to_string(),
            digest,
            size,
            got: 0,
            body: None,
            resumes: 0,
            failure: None,
        };
        r.connect()?;
        Ok(r)
    }

    fn connect(&mut self) -> Result<()> {
        let path = format!("/v2/{}/blobs/{}", self.repo, self.digest);
        let mut req = Req::new(Method::GET, path.clone());
        if self.got > 0 {
            req = req.header("range", format!("bytes={}-", self.got));
        }
        let resp = self.client.send(&req)?;
        let status = resp.status().as_u16();
        let skip = match status {
            200 => self.got, // the registry ignored Range: skip what we already have
            206 if self.got > 0 => 0,
            _ => return Err(self.client.status_failure(&format!("GET {path}"), resp)),
        };
        let mut body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        if skip > 0 {
            io::copy(&mut (&mut body).take(skip), &mut io::sink())
                .map_err(|e| net_failure(&self.client.registry, format!("GET {path}: {e}")))?;
        }
        self.body = Some(body);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Err(io::Error::other(
                    self.failure
                        .as_ref()
                        .map_or("download failed".into(), |f| f.message.clone()),
                ));
            };
            // Never read past the declared size: a registry that sends more is caught by the
            // digest check of the consumer, which sees exactly `size` bytes.
            let want = buf.len().min((self.size - self.got) as usize);
            if want == 0 {
                return Ok(0);
            }
            match body.read(&mut buf[..want]) {
                Ok(0) => return Ok(0), // short: the consumer reports the size mismatch
                Ok(n) => {
                    self.got += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.body = None;
                    self.resumes += 1;
                    let fail = net_failure(
                        &self.client.registry,
                        format!(
                            "downloading blob {} broke off after {} of {} bytes: {e}",
                            self.digest, self.got, self.size
                        ),
                    );
                    if self.resumes > MAX_RESUMES {
                        self.failure = Some(fail);
                        continue;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(
                        500 * u64::from(self.resumes),
                    ));
                    if let Err(f) = self.connect() {
                        self.failure = Some(f);
                    }
                }
            }
        }
    }
}

/// Download blob `digest` (`size` bytes) of `repo` to `path`, checking size and digest as it
/// streams. On any failure the file is removed. `progress` gets byte counts.
pub fn get_blob_to_file(
    c: &Client,
    repo: &str,
    digest: &Sha256Digest,
    size: u64,
    path: &Path,
    progress: &dyn Fn(u64),
) -> Result<()> {
    let result = (|| {
        let mut r = BlobReader::open(c, repo, *digest, size)?;
        let f =
            File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let mut w = BufWriter::with_capacity(BUF, f);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; BUF];
        let mut total = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(r.failure.take().unwrap_or_else(|| {
                        net_failure(&c.registry, format!("downloading blob {digest}: {e}"))
                    }))
                }
            };
            h.update(&buf[..n]);
            w.write_all(&buf[..n])
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            total += n as u64;
            progress(n as u64);
        }
        w.flush()
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        let got = Sha256Digest::from_bytes(h.finalize().into());
        if total != size || got != *digest {
            return Err(mismatch(&c.registry, repo, digest, size, total, &got));
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// A digest mismatch: the registry served other bytes than the digest names.
pub fn mismatch(
    registry: &str,
    repo: &str,
    digest: &Sha256Digest,
    size: u64,
    got_size: u64,
    got: &Sha256Digest,
) -> Error {
    Error::new(
        ErrorKind::DigestMismatch,
        format!("registry {registry}: blob {digest} of {repo} arrived as {got_size} bytes hashing to {got} (expected {size} bytes with that digest)"),
    )
    .hint(MISMATCH_HINT)
}

/// What to do about a blob the registry serves with the wrong bytes.
pub const MISMATCH_HINT: &str =
    "the registry's copy is damaged or was tampered with; nothing was written. Ask its operator to repair it, or push the bundle again";

enum Slot {
    Pending,
    /// Streaming straight into the bundle (the writer's current blob).
    Streaming,
    Downloading,
    Done(PathBuf),
    Failed,
}

struct Shared {
    slots: Vec<Slot>,
    /// Index of the blob the writer is on; workers fetch only blobs after it.
    cursor: usize,
    cancelled: bool,
}

/// The bundle writer's blob source during `ct fetch` (see the module header).
pub struct Downloads<'a> {
    client: &'a Client,
    repo: String,
    /// Blobs in the order the writer asks for them.
    order: Vec<(Sha256Digest, u64)>,
    index: BTreeMap<Sha256Digest, usize>,
    /// Blobs already in memory (the image manifest).
    memory: BTreeMap<Sha256Digest, Vec<u8>>,
    dir: PathBuf,
    shared: Mutex<Shared>,
    changed: Condvar,
    progress: &'a dyn Progress,
    /// The first failure (a network error or a digest mismatch) — the writer only
    /// sees an I/O error, so the caller reports this instead.
    pub failure: Mutex<Option<Error>>,
}

impl<'a> Downloads<'a> {
    /// `order`: every blob (digest, size) the writer will ask for, in its order. Temporary files
    /// go to `dir`.
    pub fn new(
        client: &'a Client,
        repo: &str,
        order: Vec<(Sha256Digest, u64)>,
        memory: BTreeMap<Sha256Digest, Vec<u8>>,
        dir: &Path,
        progress: &'a dyn Progress,
    ) -> Self {
        let index = order
            .iter()
            .enumerate()
            .map(|(i, (d, _))| (*d, i))
            .collect();
        let slots = order
            .iter()
            .map(|(d, _)| {
                if memory.contains_key(d) {
                    Slot::Done(PathBuf::new())
                } else {
                    Slot::Pending
                }
            })
            .collect();
        Self {
            client,
            repo: repo.to_string(),
            order,
            index,
            memory,
            dir: dir.to_path_buf(),
            shared: Mutex::new(Shared {
                slots,
                cursor: 0,
                cancelled: false,
            }),
            changed: Condvar::new(),
            progress,
            failure: Mutex::new(None),
        }
    }

    fn record(&self, f: Error) {
        let mut g = self.failure.lock().expect("failure lock");
        if g.is_none() {
            *g = Some(f);
        }
    }

    /// A prefetching worker: runs until every blob is claimed or `cancel` is called.
    pub fn worker(&self) {
        loop {
            let i = {
                let mut st = self.shared.lock().expect("downloads lock");
                loop {
                    if st.cancelled {
                        return;
                    }
                    // Blobs after the writer's current one, small enough to be worth staging
                    // (a large blob is streamed straight into the bundle when its turn comes).
                    let next = (st.cursor + 1..st.slots.len()).find(|&i| {
                        matches!(st.slots[i], Slot::Pending)
                            && self.order[i].1 <= PREFETCH_MAX_BYTES
                    });
                    match next {
                        Some(i) => {
                            st.slots[i] = Slot::Downloading;
                            break i;
                        }
                        None if !st.slots.iter().zip(&self.order).any(|(s, (_, size))| {
                            matches!(s, Slot::Pending) && *size <= PREFETCH_MAX_BYTES
                        }) =>
                        {
                            return
                        }
                        None => st = self.changed.wait(st).expect("downloads lock"),
                    }
                }
            };
            let (d, size) = self.order[i];
            let path = self.dir.join(d.hex());
            let bar = self.progress.bar(format!("blob {}", short(&d)), size);
            let r = get_blob_to_file(self.client, &self.repo, &d, size, &path, &|n| bar.add(n));
            bar.finish();
            let mut st = self.shared.lock().expect("downloads lock");
            st.slots[i] = match r {
                Ok(()) => Slot::Done(path),
                Err(f) => {
                    self.record(f);
                    st.cancelled = true;
                    Slot::Failed
                }
            };
            self.changed.notify_all();
        }
    }

    /// Stop the workers (after the writer finished or failed).
    pub fn cancel(&self) {
        self.shared.lock().expect("downloads lock").cancelled = true;
        self.changed.notify_all();
    }
}

/// `sha256:` and the first 12 hex digits, for progress labels.
pub fn short(d: &Sha256Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

/// Streams a blob into the writer and shows progress; keeps a network failure for the caller.
struct Streamed<'b> {
    inner: BlobReader<'b>,
    owner: &'b Downloads<'b>,
    bar: Box<dyn Bar + 'b>,
}

impl Read for Streamed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bar.add(n as u64);
                if n == 0 {
                    self.bar.finish();
                }
                Ok(n)
            }
            Err(e) => {
                if let Some(f) = self.inner.failure.take() {
                    self.owner.record(f);
                }
                Err(e)
            }
        }
    }
}

/// The bundle writer's handle on a `Downloads` (the workers share it at the same time).
pub struct Feed<'d, 'a>(pub &'d Downloads<'a>);

impl BlobSource for Feed<'_, '_> {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        self.0.open(digest, size)
    }
}

impl<'a> Downloads<'a> {
    fn open(
        &self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        if let Some(v) = self.memory.get(digest) {
            return Ok(Box::new(&v[..]));
        }
        let Some(&i) = self.index.get(digest) else {
            return Err(BundleError::malformed(format!(
                "blob {digest} is not part of this download"
            )));
        };
        if self.failure.lock().expect("failure lock").is_some() {
            // A worker already failed: stop instead of downloading more.
            return Err(BundleError::io(
                format!("fetching blob {digest}"),
                io::Error::other("another download failed"),
            ));
        }
        let mut st = self.shared.lock().expect("downloads lock");
        st.cursor = st.cursor.max(i);
        loop {
            match &st.slots[i] {
                Slot::Pending => {
                    st.slots[i] = Slot::Streaming;
                    drop(st);
                    self.changed.notify_all();
                    let this: &Downloads<'a> = self;
                    let reader =
                        BlobReader::open(this.client, &this.repo, *digest, size).map_err(|f| {
                            let msg = f.message.clone();
                            this.record(f);
                            BundleError::io(
                                format!("fetching blob {digest}"),
                                io::Error::other(msg),
                            )
                        })?;
                    let bar = this.progress.bar(format!("blob {}", short(digest)), size);
                    return Ok(Box::new(Streamed {
                        inner: reader,
                        owner: this,
                        bar,
                    }));
                }
                Slot::Downloading => st = self.changed.wait(st).expect("downloads lock"),
                Slot::Done(path) => {
                    let path = path.clone();
                    drop(st);
                    let f = File::open(&path)
                        .map_err(|e| BundleError::io(format!("opening {}", path.display()), e))?;
                    // Unlinked now, freed when the writer is done with it.
                    let _ = std::fs::remove_file(&path);
                    return Ok(Box::new(f));
                }
                Slot::Failed | Slot::Streaming => {
                    return Err(BundleError::io(
                        format!("fetching blob {digest}"),
                        io::Error::other("the download failed"),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{serve, Answer};

    fn data() -> Vec<u8> {
        (0..2_000_000u32).map(|i| (i * 13 % 253) as u8).collect()
    }

    /// A blob whose first answer breaks off part-way is finished with a `Range` request, and the
    /// file gets exactly the blob; a registry serving other bytes is a digest mismatch and leaves no file.
    #[test]
    fn broken_downloads_resume_and_wrong_bytes_are_refused() {
        let blob = data();
        let digest = Sha256Digest::of(&blob);
        let served = blob.clone();
        let port = serve(move |r| match r.header("range") {
            _ if r.path == "/v2/" => Answer::new(200),
            None if r.path.contains("/bad/") => {
                let mut b = served.clone();
                b[5] ^= 1;
                Answer::new(200).body(b)
            }
            None => Answer {
                cut_after: Some(700_000),
                ..Answer::new(200).body(served.clone())
            },
            Some(range) => {
                let from: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Answer::new(206).body(served[from..].to_vec())
            }
        });
        let c = crate::fake::client(port);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("blob");
        get_blob_to_file(&c, "x", &digest, blob.len() as u64, &out, &|_| {}).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), blob);

        let bad = dir.path().join("bad");
        let f = get_blob_to_file(&c, "bad", &digest, blob.len() as u64, &bad, &|_| {}).unwrap_err();
        assert_eq!(f.kind, ErrorKind::DigestMismatch);
        assert!(f.message.contains(&digest.to_string()), "{}", f.message);
        assert!(!bad.exists());
    }
}
