//! The HTTP transport under the registry client: the `ureq` agent (timeouts, no transparent
//! decompression, TLS with the system roots plus `--cert-dir`, or none with
//! `--tls-verify=false`), request bodies that can be sent again on a retry (bytes, or a region of
//! a file read with pread), and small helpers for headers, queries and the registry's error JSON.

use crate::exit::{CmdResult, Failure};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;
use ureq::http::Response;

/// Connection set-up limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A stalled transfer (no byte in either direction for this long) is a failure.
const IO_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The registry may hash a whole blob before answering a PUT: allow it time.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest error body or token response read into memory.
pub const SMALL_BODY_MAX: u64 = 1 << 20;
/// The system CA bundle on Debian; `--cert-dir` adds to it.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

const USER_AGENT: &str = concat!("cerro-torre/", env!("CARGO_PKG_VERSION"), " (ct)");

/// How to reach registries: the `--creds`, `--authfile`, `--tls-verify`, `--cert-dir` flags.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub creds: Option<String>,
    pub authfile: Option<PathBuf>,
    pub tls_verify: bool,
    pub cert_dir: Option<PathBuf>,
}

/// A request body the client can send again on a retry.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset` (read with pread, so threads can share the file);
    /// `progress` is told of every chunk read.
    Region {
        file: &'a File,
        offset: u64,
        len: u64,
        progress: &'a (dyn Fn(u64) + Sync),
    },
}

impl Body<'_> {
    pub fn size(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Region { len, .. } => *len,
        }
    }
}

/// Reads a file region through `pread`.
pub struct RegionReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<'a> RegionReader<'a> {
    pub fn new(file: &'a File, offset: u64, len: u64, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        Self {
            file,
            pos: offset,
            end: offset + len,
            progress,
        }
    }
}

impl Read for RegionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the bundle file is shorter than its index says",
            ));
        }
        self.pos += n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }
}

pub fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn tls_config(opts: &RegistryOptions) -> CmdResult<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let mut b = TlsConfig::builder().disable_verification(!opts.tls_verify);
    if let Some(dir) = &opts.cert_dir {
        let mut roots: Vec<Certificate<'static>> = Vec::new();
        let pem_certs = |bytes: &[u8]| -> Vec<Certificate<'static>> {
            ureq::tls::parse_pem(bytes)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect()
        };
        if let Ok(bytes) = std::fs::read(SYSTEM_CA_BUNDLE) {
            roots.extend(pem_certs(&bytes));
        }
        let rd = std::fs::read_dir(dir)
            .map_err(|e| Failure::io(format!("reading --cert-dir {}", dir.display()), e))?;
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        let mut client_cert = None;
        for p in &names {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            let read =
                || std::fs::read(p).map_err(|e| Failure::io(format!("reading {}", p.display()), e));
            match ext {
                // As containers/image: *.crt are CA roots; NAME.cert with NAME.key is a client cert.
                "crt" => {
                    let certs = pem_certs(&read()?);
                    if certs.is_empty() {
                        return Err(Failure::malformed(format!(
                            "{} holds no PEM certificate",
                            p.display()
                        )));
                    }
                    roots.extend(certs);
                }
                "cert" => {
                    let key_path = p.with_extension("key");
                    let chain = pem_certs(&read()?);
                    let key_bytes = std::fs::read(&key_path).map_err(|e| {
                        Failure::io(
                            format!(
                                "reading {} (the key for {})",
                                key_path.display(),
                                p.display()
                            ),
                            e,
                        )
                    })?;
                    let key = PrivateKey::from_pem(&key_bytes)
                        .map_err(|e| Failure::malformed(format!("{}: {e}", key_path.display())))?;
                    client_cert = Some(ClientCert::new_with_certs(&chain, key.to_owned()));
                }
                _ => {}
            }
        }
        b = b
            .root_certs(RootCerts::new_with_certs(&roots))
            .client_cert(client_cert);
    }
    Ok(b.build())
}

pub fn build_agent(opts: &RegistryOptions) -> CmdResult<ureq::Agent> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(IO_STALL_TIMEOUT))
        .timeout_per_write(Some(IO_STALL_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .max_redirects(5)
        .max_idle_connections_per_host(8)
        .tls_config(tls_config(opts)?)
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// A response header as a string.
pub fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `CODE: message` from the distribution error JSON (`{"errors":[{"code","message"}]}`).
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errs
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            match (code.is_empty(), msg.is_empty()) {
                (false, false) => format!("{code}: {msg}"),
                (false, true) => code.to_string(),
                _ => msg.to_string(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
pub fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Append `k=v` to a URL that may already have a query.
pub fn with_query(url: &str, k: &str, v: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{k}={}", query_escape(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["registry.example.org", "10.0.0.1:5000", "quay.io"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn error_json_and_escaping() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":null}]}"#;
        assert_eq!(
            error_detail(b).unwrap(),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_detail(b"404 page not found"), None);
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            with_query("/x?_state=1", "digest", "sha256:ab"),
            "/x?_state=1&digest=sha256%3Aab"
        );
    }
}
