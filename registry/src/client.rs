//! An OCI distribution API client over `ureq`: picks https (or http for loopback and with
//! `--tls-verify=false`), authenticates (anonymous, basic, bearer token through the
//! `WWW-Authenticate` challenge), retries 429/5xx and dropped connections with bounded back-off,
//! and turns every other failure into a typed error (network, auth, not found) naming the registry, the request and the HTTP status.

use crate::auth::{self, Challenge, Credentials};
pub use crate::error::net_failure;
use crate::error::{Error, ErrorKind, Result};
use crate::reference::Reference;
use crate::transport::{build_agent, is_loopback, Origin};
pub use crate::transport::{
    error_detail, header, query_escape, with_query, Body, RegionReader, RegistryOptions,
    SMALL_BODY_MAX,
};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{self, Method, Response};

/// Attempts per request for retryable failures (429, 5xx, dropped connections).
const MAX_ATTEMPTS: u32 = 4;
/// Back-off before attempt 2, 3, 4 (grows; total well under 30 s even with Retry-After).
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_millis(1500),
    Duration::from_secs(4),
];
/// Longest `Retry-After` honoured (seconds); longer waits are cut to this.
const MAX_RETRY_AFTER_SECS: u64 = 8;
/// One request. `retry: false` for requests that must not be repeated blindly (chunk PATCHes,
/// whose caller resumes from the registry's upload offset instead).
pub struct Req<'a> {
    pub method: Method,
    /// A path (`/v2/…`) on this registry, or an absolute URL from a `Location` header.
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub retry: bool,
}

impl<'a> Req<'a> {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: vec![],
            body: Body::Empty,
            retry: true,
        }
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    pub fn body(mut self, b: Body<'a>) -> Self {
        self.body = b;
        self
    }
    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

#[derive(Debug, Clone)]
enum AuthState {
    /// Anonymous (the registry did not ask, or has not yet).
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        token: Option<String>,
    },
}

/// A connection to one registry, authorised for a set of scopes.
pub struct Client {
    agent: ureq::Agent,
    /// The registry as the user wrote it (for messages).
    pub registry: String,
    /// `https://HOST` or `http://HOST`, chosen when connecting.
    base: String,
    creds: Option<Credentials>,
    searched: Vec<PathBuf>,
    scopes: Vec<String>,
    state: Mutex<AuthState>,
    /// The user allowed this registry to be insecure: `--tls-verify=false`, or a loopback
    /// address (as Docker treats 127.0.0.0/8). Only then may credentials travel over plain
    /// http, or to a token service the registry names on another origin.
    insecure_ok: bool,
    /// Why credentials were not sent to the token service, for the hint if it then refuses.
    withheld: Mutex<Option<String>>,
}

/// Token services on another origin that are known to belong to their registry, over https:
/// Docker Hub's registry hands out tokens from `auth.docker.io`.
const KNOWN_TOKEN_HOSTS: [(&str, &str); 3] = [
    ("registry-1.docker.io", "auth.docker.io"),
    ("index.docker.io", "auth.docker.io"),
    ("docker.io", "auth.docker.io"),
];

/// The scope a bearer token must grant for `repository` (`pull` or `pull,push`).
pub fn repo_scope(repository: &str, push: bool) -> String {
    format!(
        "repository:{repository}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

impl Client {
    /// Connect to the registry of `r`: pick the scheme, find credentials, and learn how the
    /// registry wants to be authenticated (`GET /v2/`). `scopes` are the token scopes needed.
    pub fn connect(r: &Reference, opts: &RegistryOptions, scopes: Vec<String>) -> Result<Self> {
        let agent = build_agent(opts)?;
        let (creds, searched) = match &opts.creds {
            Some(c) => (Some(Credentials::from_flag(c)?), vec![]),
            None => {
                let files = match &opts.authfile {
                    Some(f) => {
                        if !f.exists() {
                            return Err(Error::usage(format!(
                                "--authfile {} does not exist",
                                f.display()
                            )));
                        }
                        vec![f.clone()]
                    }
                    None => auth::default_auth_files(),
                };
                (auth::lookup(&files, &r.registry, &r.repository)?, files)
            }
        };
        let host = r.api_host().to_string();
        let mut client = Self {
            agent,
            registry: r.registry.clone(),
            base: format!("https://{host}"),
            creds,
            searched,
            scopes,
            state: Mutex::new(AuthState::None),
            insecure_ok: !opts.tls_verify || is_loopback(&host),
            withheld: Mutex::new(None),
        };
        let plain_http_ok = client.insecure_ok;
        let first = client.ping();
        let resp = match first {
            Ok(r) => r,
            Err(e) if plain_http_ok => {
                client.base = format!("http://{host}");
                let r = client.ping().map_err(|e2| {
                    net_failure(
                        &client.registry,
                        format!("cannot reach it over https ({e}) nor http ({e2})"),
                    )
                    .hint(HINT_UNREACHABLE)
                })?;
                if r.status().as_u16() == 400 {
                    // An https-only server answers plain http with 400: the https error is the story.
                    return Err(net_failure(&client.registry, format!("https://{host}/v2/: {e}"))
                        .hint("for a registry without valid TLS pass --tls-verify=false, or --cert-dir DIR with its CA certificate"));
                }
                r
            }
            Err(e) => {
                return Err(net_failure(&client.registry, format!("cannot reach https://{host}/v2/: {e}"))
                    .hint("check that the registry is running and reachable; for a registry without valid TLS pass --tls-verify=false (or --cert-dir DIR with its CA certificate)"))
            }
        };
        match resp.status().as_u16() {
            200..=299 => {}
            401 => {
                let challenges = challenges_of(&resp);
                client.adopt_challenge(&challenges, "GET /v2/")?;
                client.check_credentials()?;
            }
            s => {
                return Err(client.status_failure("GET /v2/", resp).hint(if s == 404 {
                    "this does not look like an OCI registry (GET /v2/ is not found)"
                } else {
                    HINT_UNREACHABLE
                }))
            }
        }
        Ok(client)
    }

    /// Fail early, with a clear message, when the registry wants credentials we do not have or
    /// refuses the ones we have (instead of on the first blob).
    fn check_credentials(&self) -> Result {
        let st = self.state.lock().expect("auth state lock").clone();
        match st {
            AuthState::Basic => {
                let Some(c) = &self.creds else {
                    return Err(net_failure(&self.registry, "GET /v2/ answered 401 Unauthorized: the registry requires a user name and password")
                        .with_kind(ErrorKind::Auth).hint(self.creds_hint()));
                };
                let req = http::Request::builder()
                    .method(Method::GET)
                    .uri(format!("{}/v2/", self.base))
                    .header("authorization", c.basic_header())
                    .body(())
                    .expect("static request is valid");
                let resp = self.agent.run(req).map_err(|e| {
                    net_failure(&self.registry, format!("GET /v2/ failed: {e}"))
                        .hint(HINT_UNREACHABLE)
                })?;
                if resp.status().as_u16() == 401 {
                    return Err(self
                        .status_failure("GET /v2/ (with credentials)", resp)
                        .with_kind(ErrorKind::Auth)
                        .hint(self.creds_hint()));
                }
                Ok(())
            }
            // A token for our scopes now: the token service checks the credentials (or grants
            // anonymous access) once, and every request reuses the token.
            AuthState::Bearer { .. } => self.fetch_token(None),
            AuthState::None => Ok(()),
        }
    }

    fn ping(&self) -> Result<Response<ureq::Body>, ureq::Error> {
        let req = http::Request::builder()
            .method(Method::GET)
            .uri(format!("{}/v2/", self.base))
            .body(())
            .expect("static request is valid");
        self.agent.run(req)
    }

    fn abs(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        }
    }

    /// Resolve a `Location` header (absolute or relative to the registry).
    pub fn location(&self, resp: &Response<ureq::Body>, what: &str) -> Result<String> {
        let loc = header(resp, "location").ok_or_else(|| {
            net_failure(
                &self.registry,
                format!("{what}: the answer has no Location header"),
            )
        })?;
        Ok(self.abs(&loc))
    }

    fn adopt_challenge(&self, challenges: &[Challenge], what: &str) -> Result {
        let mut st = self.state.lock().expect("auth state lock");
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = c.params.get("realm").cloned().ok_or_else(|| {
                net_failure(
                    &self.registry,
                    format!("{what}: a Bearer challenge without realm"),
                )
            })?;
            let prev_token = match &*st {
                AuthState::Bearer { token, .. } => token.clone(),
                _ => None,
            };
            *st = AuthState::Bearer {
                realm,
                service: c.params.get("service").cloned(),
                token: prev_token,
            };
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            *st = AuthState::Basic;
            return Ok(());
        }
        Err(net_failure(
            &self.registry,
            format!(
                "{what}: 401 Unauthorized with no authentication scheme ct supports (Basic or Bearer){}",
                if challenges.is_empty() { String::new() } else { format!("; offered: {}", challenges.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>().join(", ")) }
            ),
        ))
    }

    /// Get a bearer token for our scopes (plus any the challenge names).
    fn fetch_token(&self, challenge_scope: Option<&str>) -> Result<()> {
        let (realm, service) = match &*self.state.lock().expect("auth state lock") {
            AuthState::Bearer { realm, service, .. } => (realm.clone(), service.clone()),
            _ => return Ok(()),
        };
        let mut scopes: Vec<String> = self.scopes.clone();
        if let Some(s) = challenge_scope {
            for s in s.split(' ') {
                if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        let mut url = realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = &service {
            url.push_str(&format!("{sep}service={}", query_escape(s)));
            sep = '&';
        }
        for s in &scopes {
            url.push_str(&format!("{sep}scope={}", query_escape(s)));
            sep = '&';
        }
        let mut b = http::Request::builder().method(Method::GET).uri(&url);
        if let Some(c) = &self.creds {
            let refusal = self.realm_refusal(&realm);
            if refusal.is_none() {
                b = b.header("authorization", c.basic_header());
            }
            // Without them the token is asked for anonymously (enough for public images); the
            // hint says why if the token service then refuses.
            *self.withheld.lock().expect("withheld lock") = refusal;
        }
        let req = b.body(()).map_err(|e| {
            net_failure(
                &self.registry,
                format!("token realm {realm:?} is not a usable URL: {e}"),
            )
        })?;
        let mut resp = self.agent.run(req).map_err(|e| {
            net_failure(&self.registry, format!("getting a token from {realm}: {e}"))
                .hint(HINT_UNREACHABLE)
        })?;
        let status = resp.status();
        if !status.is_success() {
            let mut f = net_failure(
                &self.registry,
                format!(
                    "the token service {realm} answered {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            );
            if status.as_u16() == 401 {
                f = f.with_kind(ErrorKind::Auth).hint(self.creds_hint());
            }
            return Err(f);
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(SMALL_BODY_MAX)
            .read_to_vec()
            .map_err(|e| {
                net_failure(
                    &self.registry,
                    format!("reading the answer of the token service {realm}: {e}"),
                )
            })?;
        let token = cerro_core::registry::answers::token_from_json(&body).map_err(|e| {
            net_failure(
                &self.registry,
                format!("the token service {realm} sent {e}"),
            )
        })?;
        if let AuthState::Bearer { token: t, .. } =
            &mut *self.state.lock().expect("auth state lock")
        {
            *t = Some(token);
        }
        Ok(())
    }

    /// The origin of the registry's own API (scheme, host, port).
    fn origin(&self) -> Option<Origin> {
        Origin::of(&self.base)
    }

    /// Why Basic credentials must not go to the token service at `realm`, or `None` when they
    /// may: over https to the registry's own origin (or Docker Hub's known token host); to any
    /// realm the registry names only when the user allowed the registry to be insecure.
    fn realm_refusal(&self, realm: &str) -> Option<String> {
        let Some(r) = Origin::of(realm) else {
            return Some(format!("its address {realm:?} is not a plain http(s) URL"));
        };
        if self.insecure_ok {
            return None;
        }
        if !r.is_https() {
            return Some(format!(
                "it is plain http ({r}); pass --tls-verify=false only if you accept sending them \
                 unencrypted"
            ));
        }
        let own = self.origin();
        let known = own.as_ref().is_some_and(|o| {
            KNOWN_TOKEN_HOSTS
                .iter()
                .any(|(reg, tok)| o.host == *reg && r.host == *tok && r.port == 443)
        });
        if own.as_ref() == Some(&r) || known {
            return None;
        }
        Some(format!(
            "it is on another origin ({r}) than the registry ({})",
            own.map_or_else(|| self.base.clone(), |o| o.to_string())
        ))
    }

    fn creds_hint(&self) -> String {
        if let Some(why) = self.withheld.lock().expect("withheld lock").clone() {
            return format!(
                "ct did not send your credentials to the registry's token service: {why}"
            );
        }
        match &self.creds {
            Some(c) => format!(
                "the registry refused user {:?} (credentials from {}); check them, or pass --creds USER:PASSWORD",
                c.username, c.origin
            ),
            None => {
                let files: Vec<String> = self.searched.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "no credentials for {} were found{}; pass --creds USER:PASSWORD or --authfile FILE (as written by `podman login` / `skopeo login` / `docker login`)",
                    self.registry,
                    if files.is_empty() { String::new() } else { format!(" (searched {})", files.join(", ")) }
                )
            }
        }
    }

    fn auth_header(&self, url: &str) -> Option<String> {
        // Credentials go only to the registry itself — the same scheme, host and port — never
        // to a `Location` elsewhere (another host, port or scheme, or `user@host` tricks).
        if Origin::of(url).is_none() || Origin::of(url) != self.origin() {
            return None;
        }
        match &*self.state.lock().expect("auth state lock") {
            AuthState::None => None,
            AuthState::Basic => self.creds.as_ref().map(Credentials::basic_header),
            AuthState::Bearer { token, .. } => token.as_ref().map(|t| format!("Bearer {t}")),
        }
    }

    fn describe(&self, req: &Req<'_>) -> String {
        let url = self.abs(&req.url);
        let path = url
            .strip_prefix(&self.base)
            .unwrap_or(&url)
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        format!("{} {path}", req.method)
    }

    /// Send a request: authenticate on 401, retry on 429/5xx and dropped connections (when
    /// `req.retry`). Returns any other response for the caller to judge.
    pub fn send(&self, req: &Req<'_>) -> Result<Response<ureq::Body>> {
        let url = self.abs(&req.url);
        let what = self.describe(req);
        let mut attempt = 0u32;
        let mut auth_rounds = 0u32;
        loop {
            attempt += 1;
            let mut b = http::Request::builder()
                .method(req.method.clone())
                .uri(&url);
            for (k, v) in &req.headers {
                b = b.header(*k, v.as_str());
            }
            if let Some(a) = self.auth_header(&url) {
                b = b.header("authorization", a);
            }
            let has_body = matches!(req.method, Method::PUT | Method::POST | Method::PATCH);
            if has_body {
                b = b.header("content-length", req.body.size().to_string());
            }
            let noop = |_| {};
            let result = match req.body {
                Body::Empty if has_body => self.agent.run(
                    b.body(&[][..])
                        .map_err(|e| net_failure(&self.registry, format!("{what}: {e}")))?,
                ),
                Body::Empty => self.agent.run(
                    b.body(())
                        .map_err(|e| net_failure(&self.registry, format!("{what}: {e}")))?,
                ),
                Body::Bytes(bytes) => self.agent.run(
                    b.body(bytes)
                        .map_err(|e| net_failure(&self.registry, format!("{what}: {e}")))?,
                ),
                Body::Region {
                    file,
                    offset,
                    len,
                    progress,
                } => {
                    // A retried upload must not count its bytes twice.
                    let p: &(dyn Fn(u64) + Sync) = if attempt == 1 { progress } else { &noop };
                    let mut r = RegionReader::new(file, offset, len, p);
                    let body = ureq::SendBody::from_reader(&mut r);
                    self.agent.run(
                        b.body(body)
                            .map_err(|e| net_failure(&self.registry, format!("{what}: {e}")))?,
                    )
                }
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    if req.retry && attempt < MAX_ATTEMPTS && retryable_error(&e) {
                        std::thread::sleep(BACKOFF[(attempt - 1) as usize]);
                        continue;
                    }
                    return Err(net_failure(
                        &self.registry,
                        format!("{what} failed{}: {e}", tries(attempt)),
                    )
                    .hint(HINT_UNREACHABLE));
                }
            };
            let status = resp.status().as_u16();
            if status == 401 && auth_rounds < 2 {
                auth_rounds += 1;
                attempt -= 1; // authentication is not a failed attempt
                let challenges = challenges_of(&resp);
                let had_auth = self.auth_header(&url).is_some();
                self.adopt_challenge(&challenges, &what)?;
                let bearer_scope = challenges
                    .iter()
                    .find(|c| c.scheme == "bearer")
                    .and_then(|c| c.params.get("scope").cloned());
                let st = self.state.lock().expect("auth state lock").clone();
                match st {
                    AuthState::Basic if self.creds.is_some() && !had_auth => continue,
                    AuthState::Bearer { .. } if auth_rounds == 1 || !had_auth => {
                        self.fetch_token(bearer_scope.as_deref())?;
                        continue;
                    }
                    _ => {}
                }
                return Err(self
                    .status_failure(&what, resp)
                    .with_kind(ErrorKind::Auth)
                    .hint(self.creds_hint()));
            }
            if status == 401 {
                return Err(self
                    .status_failure(&what, resp)
                    .with_kind(ErrorKind::Auth)
                    .hint(self.creds_hint()));
            }
            if req.retry
                && attempt < MAX_ATTEMPTS
                && (status == 429 || (500..=599).contains(&status) && status != 501)
            {
                let wait = header(&resp, "retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER_SECS)))
                    .unwrap_or(BACKOFF[(attempt - 1) as usize]);
                drop(resp);
                std::thread::sleep(wait);
                continue;
            }
            if req.retry && attempt > 1 && (status == 429 || status >= 500) {
                return Err(self.status_failure(&format!("{what}{}", tries(attempt)), resp));
            }
            return Ok(resp);
        }
    }

    /// A network error (not found for 404) naming the registry, the request and the HTTP status (with the registry's error
    /// code and message when it sent the standard error JSON).
    pub fn status_failure(&self, what: &str, mut resp: Response<ureq::Body>) -> Error {
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(SMALL_BODY_MAX)
            .read_to_vec()
            .unwrap_or_default();
        let detail = error_detail(&body);
        let mut f = net_failure(
            &self.registry,
            format!(
                "{what} answered {} {}{}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        );
        if status.as_u16() == 429 || status.is_server_error() {
            f = f.hint("the registry is overloaded or failing; try again later");
        }
        if status.as_u16() == 404 {
            f = f.with_kind(ErrorKind::NotFound);
        }
        f
    }
}

const HINT_UNREACHABLE: &str =
    "check that the registry is running and reachable from here (address, port, proxy, firewall), then try again";

fn tries(attempt: u32) -> String {
    if attempt > 1 {
        format!(" (after {attempt} attempts)")
    } else {
        String::new()
    }
}

fn retryable_error(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | BrokenPipe
                | UnexpectedEof
                | TimedOut
                | Interrupted
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

fn challenges_of(resp: &Response<ureq::Body>) -> Vec<Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(auth::parse_challenges)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{serve, serve_on, Answer};
    use base64::Engine as _;
    use std::net::TcpListener;
    use std::sync::Arc;

    /// Request paths with their Authorization header, as the fake server saw them.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    /// A fake registry with a bearer token service on one loopback port: `/v2/…` wants
    /// `Bearer tok`, `/token` hands out `tok` for basic `u:p`.
    fn fake_token_registry() -> (u16, Seen) {
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let port_cell = Arc::new(Mutex::new(0u16));
        let pc = port_cell.clone();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:p")
        );
        let port = serve(move |r| {
            let auth = r.header("authorization").unwrap_or("").to_string();
            log.lock().unwrap().push((r.path.clone(), auth.clone()));
            if r.path.starts_with("/token") {
                return if auth == basic {
                    Answer::new(200).body(r#"{"token":"tok"}"#)
                } else {
                    Answer::new(401)
                };
            }
            if auth == "Bearer tok" {
                return Answer::new(200).body("{}");
            }
            let port = *pc.lock().unwrap();
            Answer::new(401).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#),
            )
        });
        *port_cell.lock().unwrap() = port;
        (port, seen)
    }

    #[test]
    fn bearer_challenge_gets_a_scoped_token_with_basic_credentials() {
        let (port, seen) = fake_token_registry();
        let r = Reference::parse(&format!("127.0.0.1:{port}/team/app:1")).unwrap();
        let opts = RegistryOptions {
            creds: Some("u:p".into()),
            tls_verify: true,
            ..Default::default()
        };
        let c = Client::connect(&r, &opts, vec![repo_scope("team/app", true)]).unwrap();
        let resp = c
            .send(&Req::new(Method::GET, "/v2/team/app/manifests/1"))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let seen = seen.lock().unwrap().clone();
        let token_req = seen
            .iter()
            .find(|(p, _)| p.starts_with("/token"))
            .expect("a token request");
        assert!(token_req.0.contains("service=fake"), "{token_req:?}");
        assert!(
            token_req
                .0
                .contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
            "{token_req:?}"
        );
        // The token is fetched once and every later request carries it.
        assert_eq!(
            seen.iter().filter(|(p, _)| p.starts_with("/token")).count(),
            1,
            "{seen:?}"
        );
        assert_eq!(
            seen.last().unwrap(),
            &(
                "/v2/team/app/manifests/1".to_string(),
                "Bearer tok".to_string()
            )
        );
    }

    #[test]
    fn a_token_service_refusing_the_credentials_is_an_auth_error() {
        let (port, _) = fake_token_registry();
        let r = Reference::parse(&format!("127.0.0.1:{port}/x:1")).unwrap();
        let opts = RegistryOptions {
            creds: Some("u:wrong".into()),
            tls_verify: true,
            ..Default::default()
        };
        let f = Client::connect(&r, &opts, vec![repo_scope("x", false)])
            .err()
            .expect("refused");
        assert_eq!(f.kind, ErrorKind::Auth);
        assert!(
            f.message.contains("token service") && f.message.contains("401"),
            "{}",
            f.message
        );
        assert!(f.hint.unwrap().contains("--creds"));
    }

    #[test]
    fn server_errors_are_retried_then_reported_with_the_status() {
        let hits = Arc::new(Mutex::new(0));
        let h = hits.clone();
        let port = serve(move |r| {
            if r.path == "/v2/" {
                return Answer::new(200);
            }
            *h.lock().unwrap() += 1;
            Answer::new(503).body(r#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#)
        });
        let r = Reference::parse(&format!("127.0.0.1:{port}/x:1")).unwrap();
        let c = Client::connect(&r, &RegistryOptions::default(), vec![]).unwrap();
        let started = std::time::Instant::now();
        let f = c
            .send(&Req::new(Method::GET, "/v2/x/manifests/1"))
            .expect_err("fails");
        assert_eq!(*hits.lock().unwrap(), MAX_ATTEMPTS as usize);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(f.kind, ErrorKind::Network);
        for needle in [
            "503",
            "UNAVAILABLE: busy",
            "after 4 attempts",
            "GET /v2/x/manifests/1",
        ] {
            assert!(f.message.contains(needle), "{needle}: {}", f.message);
        }
    }

    /// A client for `base` as `connect` would make it, without the network.
    fn offline(base: &str, insecure_ok: bool) -> Client {
        let opts = RegistryOptions {
            creds: Some("u:p".into()),
            tls_verify: !insecure_ok,
            ..Default::default()
        };
        Client {
            agent: build_agent(&opts).unwrap(),
            registry: base.rsplit('/').next().unwrap().into(),
            base: base.into(),
            creds: Some(Credentials::from_flag("u:p").unwrap()),
            searched: vec![],
            scopes: vec![],
            state: Mutex::new(AuthState::Basic),
            insecure_ok,
            withheld: Mutex::new(None),
        }
    }

    #[test]
    fn credentials_go_only_to_the_registrys_exact_origin() {
        let c = offline("https://reg.example", false);
        assert!(c
            .auth_header("https://reg.example/v2/x/blobs/uploads/1")
            .is_some());
        assert!(c.auth_header("https://REG.example:443/v2/").is_some());
        for elsewhere in [
            "https://reg.example.evil.com/v2/",
            "https://reg.example@evil.com/v2/",
            "https://reg.example:8443/v2/",
            "http://reg.example/v2/",
            "https://evil.com/?https://reg.example",
        ] {
            assert_eq!(c.auth_header(elsewhere), None, "{elsewhere}");
        }
    }

    #[test]
    fn basic_credentials_reach_a_token_service_only_where_the_rules_allow() {
        let c = offline("https://reg.example", false);
        assert_eq!(c.realm_refusal("https://reg.example/token"), None);
        assert_eq!(c.realm_refusal("https://reg.example:443/auth?x=1"), None);
        for (realm, why) in [
            ("http://reg.example/token", "plain http"),
            ("https://auth.evil.com/token", "another origin"),
            ("https://reg.example:8443/token", "another origin"),
            (
                "https://reg.example@evil.com/token",
                "not a plain http(s) URL",
            ),
            ("token", "not a plain http(s) URL"),
        ] {
            let got = c.realm_refusal(realm).unwrap_or_default();
            assert!(got.contains(why), "{realm}: {got:?}");
        }
        // Docker Hub's registry and its token service.
        let hub = offline("https://registry-1.docker.io", false);
        assert_eq!(hub.realm_refusal("https://auth.docker.io/token"), None);
        assert!(hub.realm_refusal("http://auth.docker.io/token").is_some());
        // A registry the user allowed to be insecure (--tls-verify=false, or loopback) may name
        // any token service.
        let insecure = offline("http://reg.example", true);
        assert_eq!(
            insecure.realm_refusal("http://auth.elsewhere:5001/token"),
            None
        );
    }

    /// A fake registry wanting Basic `u:p`, and a server that records what reaches it.
    fn basic_registry_and_listener(registry: TcpListener, other: TcpListener) -> (u16, u16, Seen) {
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let other = serve_on(other, move |r| {
            let auth = r.header("authorization").unwrap_or("").to_string();
            log.lock().unwrap().push((r.path.clone(), auth));
            Answer::new(201)
        });
        let basic = basic_u_p();
        let port = serve_on(registry, move |r| {
            if r.header("authorization") != Some(basic.as_str()) {
                return Answer::new(401).header("WWW-Authenticate", r#"Basic realm="x""#);
            }
            Answer::new(200).body("{}")
        });
        (port, other, seen)
    }

    fn basic_u_p() -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:p")
        )
    }

    fn creds_u_p() -> RegistryOptions {
        RegistryOptions {
            creds: Some("u:p".into()),
            tls_verify: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_location_on_a_port_that_merely_starts_like_the_registrys_gets_no_credentials() {
        // The registry on port P, another server on port P·10+1: `http://127.0.0.1:P` is a
        // string prefix of `http://127.0.0.1:P1/…`, which the old check took for the registry.
        let (registry, other) = (4100..6000)
            .find_map(|p: u16| {
                let a = TcpListener::bind(("127.0.0.1", p)).ok()?;
                let b = TcpListener::bind(("127.0.0.1", p * 10 + 1)).ok()?;
                Some((a, b))
            })
            .expect("a free pair of ports");
        let (port, other, seen) = basic_registry_and_listener(registry, other);
        assert_eq!(other, port * 10 + 1);
        let r = Reference::parse(&format!("127.0.0.1:{port}/x:1")).unwrap();
        let c = Client::connect(&r, &creds_u_p(), vec![]).unwrap();
        let elsewhere = format!("http://127.0.0.1:{other}/upload");
        assert!(elsewhere.starts_with(&c.base));
        let resp = c
            .send(&Req::new(Method::PUT, elsewhere).body(Body::Bytes(b"x")))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].1, "", "credentials leaked to another port");
    }

    #[test]
    fn a_location_with_user_information_gets_no_credentials() {
        // `http://localhost:P@127.0.0.1:Q/…` starts with the registry's `http://localhost:P`
        // but goes to port Q. (The HTTP client sends the URL's own user information as Basic
        // auth; that is the registry's text, never the user's credentials.)
        let (port, other, seen) = basic_registry_and_listener(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let r = Reference::parse(&format!("localhost:{port}/x:1")).unwrap();
        let c = Client::connect(&r, &creds_u_p(), vec![]).unwrap();
        let sneaky = format!("http://localhost:{port}@127.0.0.1:{other}/upload");
        let resp = c
            .send(&Req::new(Method::PUT, sneaky).body(Body::Bytes(b"x")))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_ne!(
            seen[0].1,
            basic_u_p(),
            "credentials leaked to another origin"
        );
    }
}
