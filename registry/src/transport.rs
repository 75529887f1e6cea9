//! The HTTP transport under the registry client: the `ureq` agent (timeouts, no transparent
//! decompression, TLS with the system roots plus `--cert-dir`, or none with
//! `--tls-verify=false`), request bodies that can be sent again on a retry (bytes, or a region of
//! a file read with pread), and small helpers for headers, queries and the registry's error JSON.

use crate::error::{Error, Result};
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

fn tls_config(opts: &RegistryOptions) -> Result<ureq::tls::TlsConfig> {
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
            .map_err(|e| Error::io(format!("reading --cert-dir {}", dir.display()), e))?;
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        let mut client_cert = None;
        for p in &names {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            let read =
                || std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e));
            match ext {
                // As containers/image: *.crt are CA roots; NAME.cert with NAME.key is a client cert.
                "crt" => {
                    let certs = pem_certs(&read()?);
                    if certs.is_empty() {
                        return Err(Error::malformed(format!(
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
                        Error::io(
                            format!(
                                "reading {} (the key for {})",
                                key_path.display(),
                                p.display()
                            ),
                            e,
                        )
                    })?;
                    let key = PrivateKey::from_pem(&key_bytes)
                        .map_err(|e| Error::malformed(format!("{}: {e}", key_path.display())))?;
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

pub fn build_agent(opts: &RegistryOptions) -> Result<ureq::Agent> {
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

/// Where a URL points, for deciding where credentials may go: scheme, host and port, compared
/// exactly (never as a string prefix: `https://reg.example` is a prefix of
/// `https://reg.example.evil.com/` and of `https://reg.example@evil.com/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http` or `https` URL; `None` for anything else, including a
    /// URL with user information (`user@host`), which is never given credentials.
    pub fn of(url: &str) -> Option<Self> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(Self {
            port: authority.port_u16().unwrap_or(default_port),
            scheme,
            host,
        })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A response header as a string.
pub fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub use cerro_core::registry::answers::error_detail;

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
            error_detail(br#"{"errors":[{"code":"DENIED","message":"\u001b[2Jno\nway"}]}"#)
                .unwrap(),
            "DENIED: \\x1b[2Jno\\x0away"
        );
        for (url, origin) in [
            (
                "https://reg.example/v2/",
                Some(("https", "reg.example", 443)),
            ),
            (
                "HTTPS://Reg.Example:443/x",
                Some(("https", "reg.example", 443)),
            ),
            (
                "http://127.0.0.1:5000/token?x=1",
                Some(("http", "127.0.0.1", 5000)),
            ),
            ("https://[::1]:8443/", Some(("https", "[::1]", 8443))),
            ("https://reg.example@evil.com/", None),
            ("ftp://reg.example/", None),
            ("/v2/relative", None),
        ] {
            let got = Origin::of(url);
            let want = origin.map(|(s, h, p)| Origin {
                scheme: s.into(),
                host: h.into(),
                port: p,
            });
            assert_eq!(got, want, "{url}");
        }
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
