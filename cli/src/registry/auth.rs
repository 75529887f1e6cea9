//! Registry credentials and authentication challenges. Credentials come from `--creds`, else the
//! auth files podman, skopeo and docker write (`--authfile`, `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`). Challenges are parsed from
//! `WWW-Authenticate` (RFC 7235): `Basic realm=…` and `Bearer realm=…,service=…,scope=…`.

use crate::exit::{CmdResult, Failure};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    pub fn from_flag(s: &str) -> CmdResult<Self> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Self {
                username: u.into(),
                password: p.into(),
                origin: "--creds".into(),
            }),
            _ => Err(Failure::usage("--creds must be USER:PASSWORD")),
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
pub fn lookup(
    files: &[PathBuf],
    registry: &str,
    repository: &str,
) -> CmdResult<Option<Credentials>> {
    for f in files {
        let bytes = match read_bounded(f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Failure::io(format!("reading auth file {}", f.display()), e)),
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
) -> CmdResult<Option<Credentials>> {
    let bad = |why: String| {
        Failure::malformed(format!("auth file {}: {why}", file.display()))
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

/// One authentication challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased scheme: `basic`, `bearer`, ….
    pub scheme: String,
    /// Parameters with lower-cased names.
    pub params: BTreeMap<String, String>,
}

/// Parse every challenge in a `WWW-Authenticate` value. Tolerant: unparsable parts are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < b.len() && !b" \t,=\"".contains(&b[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1;
            continue;
        }
        // A word followed by '=' is a parameter of the current challenge; else a new scheme.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Push whole UTF-8 characters.
                    let ch = header[i..].chars().next().unwrap_or('\u{fffd}');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1; // closing quote
                v
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_as_docker_hub_sends_it() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull,push");
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse_challenges(r#"Basic realm="cerro-test""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "cerro-test");
        let c = parse_challenges(
            r#"Basic realm="a b", Bearer realm="https://t/x",error="insufficient_scope", Negotiate"#,
        );
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[1].params["error"], "insufficient_scope");
        let c = parse_challenges(r#"Bearer realm=https://t/x , service = "s\"q""#);
        assert_eq!(c[0].params["realm"], "https://t/x");
        assert_eq!(c[0].params["service"], "s\"q");
        assert!(parse_challenges("").is_empty());
        let _ = parse_challenges("=\"=,,\"\\"); // never panics
    }

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
            lookup(&files, "a", "b").unwrap_err().code,
            crate::exit::MALFORMED
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
