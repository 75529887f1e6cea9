//! Blob uploads (OCI distribution spec, "pushing blobs"): `HEAD` first and skip what the
//! registry has; a cross-repository mount when the blob may already be in another repository of
//! the same registry; small blobs in one `POST` + `PUT`, large ones in chunked `PATCH`es that
//! resume from the registry's own upload offset after a failure. The registry checks the digest
//! on the final `PUT`; a blob whose bytes do not match is refused there (a digest mismatch).

use crate::client::{header, net_failure, with_query, Body, Client, Req};
use crate::error::{Error, ErrorKind, Result};
use cerro_core::Sha256Digest;
use std::fs::File;
use ureq::http::Method;

/// Blobs up to this size go in one request after the upload is opened.
pub const MONOLITHIC_MAX: u64 = 16 << 20;
/// Size of each `PATCH` of a chunked upload. Large, because every chunk costs a round trip and
/// the registry re-opens its upload file for each; small enough that a resume repeats little.
pub const CHUNK_SIZE: u64 = 64 << 20;
/// How many times a chunked upload resumes after failures before giving up.
const MAX_RESUMES: u32 = 4;

/// Where a blob's bytes are.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    Bytes(&'a [u8]),
    /// In a file (a bundle) at an offset.
    Region {
        file: &'a File,
        offset: u64,
    },
}

/// One blob to push.
pub struct Blob<'a> {
    pub digest: Sha256Digest,
    pub size: u64,
    pub data: Data<'a>,
    /// Another repository on the same registry that may hold it (cross-repository mount).
    pub mount_from: Option<String>,
}

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The registry already had it; nothing was sent.
    Present,
    /// Mounted from another repository; nothing was sent.
    Mounted,
    Uploaded,
}

fn body<'a>(d: Data<'a>, offset: u64, len: u64, progress: &'a (dyn Fn(u64) + Sync)) -> Body<'a> {
    match d {
        Data::Bytes(b) => Body::Bytes(&b[offset as usize..(offset + len) as usize]),
        Data::Region { file, offset: base } => Body::Region {
            file,
            offset: base + offset,
            len,
            progress,
        },
    }
}

/// Whether `repo` on the registry has blob `digest`.
pub fn blob_exists(c: &Client, repo: &str, digest: &Sha256Digest) -> Result<bool> {
    let what = format!("HEAD /v2/{repo}/blobs/{digest}");
    let resp = c.send(&Req::new(
        Method::HEAD,
        format!("/v2/{repo}/blobs/{digest}"),
    ))?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(c.status_failure(&what, resp)),
    }
}

/// Push one blob unless the registry has it. `progress` gets byte counts as they are sent.
pub fn push_blob(
    c: &Client,
    repo: &str,
    b: &Blob<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Outcome> {
    push_blob_with(c, repo, b, progress, MONOLITHIC_MAX, CHUNK_SIZE)
}

/// `push_blob` with the single-request limit and chunk size given (tests use small ones).
fn push_blob_with(
    c: &Client,
    repo: &str,
    b: &Blob<'_>,
    progress: &(dyn Fn(u64) + Sync),
    monolithic_max: u64,
    chunk_size: u64,
) -> Result<Outcome> {
    if blob_exists(c, repo, &b.digest)? {
        return Ok(Outcome::Present);
    }
    let uploads = format!("/v2/{repo}/blobs/uploads/");
    let start_url = match &b.mount_from {
        Some(from) => with_query(
            &with_query(&uploads, "mount", &b.digest.to_string()),
            "from",
            from,
        ),
        None => uploads.clone(),
    };
    let resp = c.send(&Req::new(Method::POST, start_url))?;
    let location = match resp.status().as_u16() {
        201 if b.mount_from.is_some() => return Ok(Outcome::Mounted),
        202 => c.location(&resp, &format!("POST {uploads}"))?,
        _ => return Err(c.status_failure(&format!("POST {uploads}"), resp)),
    };
    if b.size <= monolithic_max {
        let url = with_query(&location, "digest", &b.digest.to_string());
        let resp = c.send(
            &Req::new(Method::PUT, url)
                .header("content-type", "application/octet-stream")
                .body(body(b.data, 0, b.size, progress)),
        )?;
        return finish(c, repo, b, resp);
    }
    let mut location = location;
    let mut offset = 0u64;
    let mut resumes = 0u32;
    while offset < b.size {
        let len = chunk_size.min(b.size - offset);
        let req = Req::new(Method::PATCH, location.clone())
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{}", offset + len - 1))
            .body(body(b.data, offset, len, progress))
            .no_retry();
        let failure = match c.send(&req) {
            Ok(resp) if resp.status().as_u16() == 202 => {
                location = c.location(&resp, "PATCH (blob upload)")?;
                let confirmed = header(&resp, "range").and_then(|r| parse_range_end(&r));
                match confirmed {
                    Some(end) if end.checked_add(1) == Some(offset + len) => {
                        offset += len;
                        continue;
                    }
                    // The registry holds a different amount than we sent: ask and resume.
                    _ => net_failure(
                        &c.registry,
                        format!(
                            "the upload of blob {} stands at an unexpected offset",
                            b.digest
                        ),
                    ),
                }
            }
            Ok(resp) => c.status_failure(
                &format!("PATCH /v2/{repo}/blobs/uploads/… (blob {})", b.digest),
                resp,
            ),
            Err(f) => f,
        };
        resumes += 1;
        if resumes > MAX_RESUMES {
            return Err(Error {
                message: format!(
                    "{} (gave up after {MAX_RESUMES} resumed attempts)",
                    failure.message
                ),
                ..failure
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(500 * u64::from(resumes)));
        // Resume from what the registry says it has (OCI spec: GET on the upload URL).
        match upload_offset(c, &location)? {
            Some((loc, have)) if have <= b.size => {
                location = loc;
                offset = have;
            }
            _ => {
                // The session is gone (or its offset is ambiguous or past the blob's end):
                // start a fresh one.
                let resp = c.send(&Req::new(Method::POST, uploads.clone()))?;
                if resp.status().as_u16() != 202 {
                    return Err(c.status_failure(&format!("POST {uploads}"), resp));
                }
                location = c.location(&resp, &format!("POST {uploads}"))?;
                offset = 0;
            }
        }
    }
    let url = with_query(&location, "digest", &b.digest.to_string());
    let resp = c.send(&Req::new(Method::PUT, url).body(Body::Empty))?;
    finish(c, repo, b, resp)
}

/// How many bytes an upload session holds, from `Range: 0-<last>`; `None` when the session is
/// gone or the answer is ambiguous (`0-0` means 0 or 1 byte in distribution's answer).
fn upload_offset(c: &Client, location: &str) -> Result<Option<(String, u64)>> {
    let resp = c.send(&Req::new(Method::GET, location.to_string()))?;
    if resp.status().as_u16() != 204 {
        return Ok(None);
    }
    let loc = c
        .location(&resp, "GET (upload status)")
        .unwrap_or_else(|_| location.to_string());
    match header(&resp, "range").and_then(|r| parse_range_end(&r)) {
        Some(0) | None => Ok(None),
        // The registry's number is checked: `0-18446744073709551615` must not wrap to 0.
        Some(end) => Ok(end.checked_add(1).map(|n| (loc, n))),
    }
}

/// The last byte index of a `Range: 0-N` (or `bytes=0-N`) header.
fn parse_range_end(r: &str) -> Option<u64> {
    let r = r.trim().trim_start_matches("bytes=");
    let (start, end) = r.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse().ok()
}

fn finish(
    c: &Client,
    repo: &str,
    b: &Blob<'_>,
    resp: ureq::http::Response<ureq::Body>,
) -> Result<Outcome> {
    match resp.status().as_u16() {
        201 | 204 => {
            if let Some(d) = header(&resp, "docker-content-digest") {
                if d != b.digest.to_string() {
                    return Err(Error::new(
                        ErrorKind::DigestMismatch,
                        format!(
                            "registry {}: blob {} was stored as {d}",
                            c.registry, b.digest
                        ),
                    ));
                }
            }
            Ok(Outcome::Uploaded)
        }
        400 => {
            let f = c.status_failure(
                &format!("PUT /v2/{repo}/blobs/uploads/… (blob {})", b.digest),
                resp,
            );
            if f.message.contains("DIGEST_INVALID") || f.message.contains("SIZE_INVALID") {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!("blob {} ({} bytes): the registry computed a different digest or size for the bytes sent: {}", b.digest, b.size, f.message),
                )
                .hint("the bundle is damaged; check it with `ct verify BUNDLE` and obtain a good copy"));
            }
            Err(f)
        }
        _ => Err(c.status_failure(
            &format!("PUT /v2/{repo}/blobs/uploads/… (blob {})", b.digest),
            resp,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{serve, Answer};
    use std::sync::{Arc, Mutex};

    /// A chunked upload whose second PATCH fails half-way resumes from the offset the registry
    /// reports (GET on the upload URL) and ends with the right bytes and one final PUT.
    #[test]
    fn a_broken_chunk_resumes_from_the_registry_offset() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let digest = Sha256Digest::of(&data);
        let stored = Arc::new(Mutex::new(Vec::<u8>::new()));
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let (st, lg) = (stored.clone(), log.clone());
        let patches = Arc::new(Mutex::new(0));
        let port = serve(move |r| {
            lg.lock().unwrap().push(format!("{} {}", r.method, r.path));
            let mut have = st.lock().unwrap();
            let range = |n: usize| format!("0-{}", n.max(1) - 1);
            match (r.method.as_str(), r.path.as_str()) {
                ("GET", "/v2/") => Answer::new(200),
                ("HEAD", _) => Answer::new(404),
                ("POST", _) => Answer::new(202).header("Location", "/up/1"),
                ("PATCH", _) => {
                    let mut n = patches.lock().unwrap();
                    *n += 1;
                    if *n == 2 {
                        // Keep half of this chunk, then fail.
                        have.extend_from_slice(&r.body[..r.body.len() / 2]);
                        return Answer::new(500);
                    }
                    have.extend_from_slice(&r.body);
                    Answer::new(202)
                        .header("Location", "/up/1")
                        .header("Range", range(have.len()))
                }
                ("GET", p) if p.starts_with("/up/1") => Answer::new(204)
                    .header("Location", "/up/1")
                    .header("Range", range(have.len())),
                ("PUT", p) if p.contains("digest=") => {
                    if Sha256Digest::of(&have) == digest {
                        Answer::new(201).header("Docker-Content-Digest", digest.to_string())
                    } else {
                        Answer::new(400).body(
                            r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid"}]}"#,
                        )
                    }
                }
                _ => Answer::new(404),
            }
        });
        let c = crate::fake::client(port);
        let b = Blob {
            digest,
            size: data.len() as u64,
            data: Data::Bytes(&data),
            mount_from: None,
        };
        let out = push_blob_with(&c, "x", &b, &|_| {}, 1000, 100_000).unwrap();
        assert_eq!(out, Outcome::Uploaded);
        assert_eq!(*stored.lock().unwrap(), data);
        let log = log.lock().unwrap().clone();
        assert!(
            log.iter().any(|l| l == "GET /up/1"),
            "the upload status was asked for: {log:?}"
        );
        assert_eq!(
            log.iter().filter(|l| l.starts_with("PUT")).count(),
            1,
            "{log:?}"
        );
    }

    #[test]
    fn range_headers() {
        assert_eq!(parse_range_end("0-1023"), Some(1023));
        assert_eq!(parse_range_end("bytes=0-5"), Some(5));
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
