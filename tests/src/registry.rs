//! A real registry for the tests: Debian's `docker-registry` (the CNCF distribution server)
//! on 127.0.0.1 with a free port, a temporary storage root and a config file written here —
//! anonymous, or with htpasswd basic authentication. Readiness is polled on `GET /v2/` (bounded);
//! the server is killed when the guard is dropped, also when a test fails. Its access log is
//! parsed so tests can count requests (e.g. blob uploads).

use crate::tool;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the registry may take to answer `GET /v2/` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at starting (a free port can be taken by someone else between probe and bind).
const START_ATTEMPTS: usize = 3;

/// One access-log line: method, path (with query), status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub status: u16,
}

/// A running registry; stopped (killed) on drop.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    /// `(user, password)` when started with basic authentication.
    pub creds: Option<(String, String)>,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// A registry that requires `user`/`password` (htpasswd, bcrypt, made with `htpasswd -Bbn`).
    pub fn start_with_basic_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some((user.to_string(), password.to_string())), None)
    }

    /// A registry with distribution's token authentication: it answers with a `Bearer`
    /// challenge naming `token`'s realm, and accepts only JWTs that service signs.
    pub fn start_with_token_auth(token: &TokenService) -> Self {
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {TOKEN_SERVICE}\n    \
             issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            token.port,
            token.cert.display()
        );
        Self::start_with(Some(token.creds.clone()), Some(auth))
    }

    fn start_with(creds: Option<(String, String)>, auth_yaml: Option<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir_in(crate::fixture_root())
            .expect("create the registry directory");
        let mut auth = auth_yaml.clone().unwrap_or_default();
        if let (Some((u, p)), None) = (&creds, &auth_yaml) {
            let line = tool("htpasswd", &["-Bbn", u, p]).stdout;
            let file = dir.path().join("htpasswd");
            fs::write(&file, line.trim_end().as_bytes()).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: cerro-test\n    path: {}\n",
                file.display()
            );
        }
        let log_path = dir.path().join("registry.log");
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: cerro-test-secret\n{auth}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = fs::File::create(&log_path).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry (Debian package docker-registry; run tools/setup)");
            if wait_ready(&mut child, port) {
                return Registry {
                    dir,
                    child: Some(child),
                    port,
                    creds,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not become ready in {START_ATTEMPTS} attempts; its log:\n{}",
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/REPO_TAG`.
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// The storage root (`…/docker/registry/v2/…` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps blob `sha256:<hex>` on disk.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Everything the registry logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The access log (combined format: `… "METHOD URI HTTP/1.1" STATUS …`), in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                let start = l.find('"')?;
                let rest = &l[start + 1..];
                let end = rest.find('"')?;
                let mut req = rest[..end].split(' ');
                let (method, uri) = (req.next()?.to_string(), req.next()?.to_string());
                let status = rest[end + 1..].split_whitespace().next()?.parse().ok()?;
                (req.next()?.starts_with("HTTP/")).then_some(Request {
                    method,
                    uri,
                    status,
                })
            })
            .collect()
    }

    /// Blob upload requests (`POST`, `PATCH` and `PUT` on `/v2/…/blobs/uploads/…`) among `reqs`.
    pub fn blob_uploads(reqs: &[Request]) -> Vec<Request> {
        reqs.iter()
            .filter(|r| {
                matches!(r.method.as_str(), "POST" | "PATCH" | "PUT")
                    && r.uri.contains("/blobs/uploads/")
            })
            .cloned()
            .collect()
    }

    /// Kill the server now (tests of an unreachable registry).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `--creds` flag value, when the registry has authentication.
    pub fn creds_arg(&self) -> Option<String> {
        self.creds.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The registry's own directory (config, log, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll `GET /v2/` until it answers 200 or 401, for at most [`READY_TIMEOUT`].
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false; // it exited (port taken, bad config)
        }
        if let Some(200 | 401) = http_status(port, "/v2/") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// The status of `GET PATH` on 127.0.0.1:PORT over plain HTTP/1.0, or `None` if nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An OCI layout at `dir` (tag `big`) whose one uncompressed layer holds a `mib` MiB file of
/// pseudo-random bytes (seeded, so the same arguments give the same image): big enough for
/// chunked uploads, incompressible, and quick to make.
pub fn big_layout(dir: &Path, mib: usize, seed: u64) -> PathBuf {
    use crate::{put_blob, sha256};
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut data = vec![0u8; mib << 20];
    let mut x = seed | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("random.bin").unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &data[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let layer_digest = put_blob(dir, &layer);
    let config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put_blob(dir, &manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "big"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    dir.to_path_buf()
}

/// The `service` and `issuer` of the test token service.
pub const TOKEN_SERVICE: &str = "cerro-test-registry";
pub const TOKEN_ISSUER: &str = "cerro-test-issuer";

/// A minimal token service for distribution's `auth.token`, on 127.0.0.1: `GET /token?service=…
/// &scope=…` with the right basic credentials answers `{"token": JWT}`, an RS256 JWT granting
/// exactly the scopes asked for, signed (with the `openssl` command) by a throwaway key whose
/// self-signed certificate is the registry's `rootcertbundle` and travels in the `x5c` header.
/// Anything else gets 401. Stopped on drop.
pub struct TokenService {
    pub port: u16,
    pub creds: (String, String),
    cert: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Every token request seen: (query, authorization header).
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    _dir: tempfile::TempDir,
}

impl TokenService {
    pub fn start(user: &str, password: &str) -> Self {
        use base64::Engine as _;
        let dir = tempfile::Builder::new()
            .prefix("token-")
            .tempdir_in(crate::fixture_root())
            .unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("root.crt"));
        tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=cerro-test-token-signer",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
        );
        let der = Command::new("openssl")
            .args(["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"])
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (stop2, seen2, key2) = (stop.clone(), seen.clone(), key.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let Some((path, auth)) = read_request(&mut s) else {
                    continue;
                };
                let query = path
                    .split_once('?')
                    .map(|(_, q)| q.to_string())
                    .unwrap_or_default();
                seen2.lock().unwrap().push((query.clone(), auth.clone()));
                let (status, body) = if path.starts_with("/token") && auth == basic {
                    let jwt = sign_jwt(&key2, &x5c, &query);
                    (
                        "200 OK",
                        format!(r#"{{"token":"{jwt}","access_token":"{jwt}","expires_in":3600}}"#),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"details":"bad credentials"}"#.to_string(),
                    )
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            creds: (user.to_string(), password.to_string()),
            cert,
            stop,
            seen,
            _dir: dir,
        }
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

/// The request path and Authorization header of one HTTP request.
fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut auth = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = v.trim().to_string();
            }
        }
    }
    Some((path, auth))
}

/// An RS256 JWT for distribution granting the `scope=` parameters of `query`.
fn sign_jwt(key: &Path, x5c: &str, query: &str) -> String {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let unescape = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            } else {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let access: Vec<serde_json::Value> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .flat_map(|s| unescape(s).split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|s| {
            let mut p = s.splitn(3, ':');
            let (kind, name, actions) = (p.next()?, p.next()?, p.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": "test", "aud": TOKEN_SERVICE, "exp": now + 3600,
        "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let sig = child.wait_with_output().unwrap().stdout;
    format!("{input}.{}", b64(&sig))
}
