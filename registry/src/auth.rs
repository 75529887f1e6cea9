//! Registry credentials and authentication challenges. Credentials come from `--creds`, else the
//! auth files podman, skopeo and docker write (`--authfile`, `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`). Challenges are parsed from
//! `WWW-Authenticate` (RFC 7235): `Basic realm=…` and `Bearer realm=…,service=…,scope=…`.

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::path::{Path, PathBuf};

pub use cerro_core::registry::answers::{parse_challenges, Challenge};

/// Largest auth file read (they hold a few entries; a bound for a damaged file).
const AUTH_FILE_MAX_BYTES: u64 = 4 << 20;

/// A user name and password for one registry, and where they came from (for messages).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub origin: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        write!(f, "Credentials({} from {})", self.username, self.origin)
    }
}

impl Credentials {
    /// `USER:PASS` as given to `--creds`.
    pub fn from_flag(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Self {
                username: u.into(),
                password: p.into(),
                origin: "--creds".into(),
            }),
            _ => Err(Error::usage("--creds must be USER:PASSWORD")),
        }
    }

    /// The `Authorization` header value for basic authentication.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            B64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// The auth files searched, in order, when no `--authfile` is given.
pub fn default_auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        return vec![f];
    }
    let mut v = Vec::new();
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        v.push(d.join("containers/auth.json"));
    }
    let home = env("HOME");
    match env("XDG_CONFIG_HOME") {
        Some(c) => v.push(c.join("containers/auth.json")),
        None => {
            if let Some(h) = &home {
                v.push(h.join(".config/containers/auth.json"));
            }
        }
    }
    match env("DOCKER_CONFIG") {
        Some(d) => v.push(d.join("config.json")),
        None => {
            if let Some(h) = &home {
                v.push(h.join(".docker/config.json"));
            }
        }
    }
    v
}

/// Find credentials for `registry`/`repository` in `files` (the first file with an entry wins;
/// within a file the most specific key wins: `host/ns/repo`, `host/ns`, `host`, then legacy keys
/// with a scheme or `/v1/` path). Missing files are skipped; unreadable or invalid ones are errors.
pub fn lookup(files: &[PathBuf], registry: &str, repository: &str) -> Result<Option<Credentials>> {
    for f in files {
        let bytes = match read_bounded(f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("reading auth file {}", f.display()), e)),
        };
        if let Some(c) = lookup_in(&bytes, f, registry, repository)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn read_bounded(f: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(f)?
        .take(AUTH_FILE_MAX_BYTES)
        .read_to_end(&mut v)?;
    Ok(v)
}

fn lookup_in(
    bytes: &[u8],
    file: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>> {
    let bad = |why: String| {
        Error::malformed(format!("auth file {}: {why}", file.display()))
            .hint("fix or remove the file, or pass --creds USER:PASSWORD / --authfile FILE")
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    // Most specific first: host/ns/repo, host/ns, host.
    let mut keys = Vec::new();
    let mut path = format!("{registry}/{repository}");
    loop {
        keys.push(path.clone());
        match path.rsplit_once('/') {
            Some((p, _)) => path = p.to_string(),
            None => break,
        }
    }
    let legacy = |k: &str| -> String {
        let k = k
            .strip_prefix("https://")
            .or_else(|| k.strip_prefix("http://"))
            .unwrap_or(k);
        let host = k.split('/').next().unwrap_or(k);
        if host == "index.docker.io" || host == "registry-1.docker.io" {
            "docker.io".into()
        } else {
            host.into()
        }
    };
    let entry = keys
        .iter()
        .find_map(|k| auths.get(k.as_str()).map(|e| (k.clone(), e)))
        .or_else(|| {
            auths
                .iter()
                .find(|(k, _)| (k.contains("://") || k.contains("/v1")) && legacy(k) == registry)
                .map(|(k, e)| (k.clone(), e))
        });
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
        return Ok(None); // an entry for a credential helper: not supported, look further
    };
    if auth.is_empty() {
        return Ok(None);
    }
    let raw = B64
        .decode(auth.trim())
        .map_err(|_| bad(format!("auths.{key:?}.auth is not base64")))?;
    let s = String::from_utf8(raw).map_err(|_| bad(format!("auths.{key:?}.auth is not UTF-8")))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| bad(format!("auths.{key:?}.auth is not base64 of USER:PASSWORD")))?;
    Ok(Some(Credentials {
        username: u.into(),
        password: p.into(),
        origin: format!("{} (entry {key:?})", file.display()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_lookup_order_and_specificity() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth.json");
        let e = |s: &str| B64.encode(s);
        std::fs::write(
            &f,
            serde_json::json!({"auths": {
                "127.0.0.1:5000": {"auth": e("host:pw")},
                "127.0.0.1:5000/team": {"auth": e("team:pw")},
                "https://index.docker.io/v1/": {"auth": e("hub:pw")},
                "quay.io": {},
            }})
            .to_string(),
        )
        .unwrap();
        let files = vec![dir.path().join("missing.json"), f.clone()];
        let get = |r: &str, repo: &str| lookup(&files, r, repo).unwrap().map(|c| c.username);
        assert_eq!(get("127.0.0.1:5000", "other/x").as_deref(), Some("host"));
        assert_eq!(get("127.0.0.1:5000", "team/app").as_deref(), Some("team"));
        assert_eq!(get("docker.io", "library/busybox").as_deref(), Some("hub"));
        assert_eq!(get("quay.io", "x/y"), None);
        assert_eq!(get("example.org", "x"), None);
        std::fs::write(&f, "{not json").unwrap();
        assert_eq!(
            lookup(&files, "a", "b").unwrap_err().kind,
            crate::error::ErrorKind::Malformed
        );
    }

    #[test]
    fn creds_flag() {
        let c = Credentials::from_flag("u:p:q").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
        assert!(Credentials::from_flag("nopass").is_err());
        assert!(!format!("{c:?}").contains("p:q"));
    }
}
