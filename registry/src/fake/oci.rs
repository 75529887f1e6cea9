//! An in-memory OCI registry on the fake server, for tests of push, fetch and pull without a
//! real registry: blobs (monolithic and chunked uploads, cross-repository mounts, digest checked
//! on the final `PUT`), manifests by tag and digest, and — when asked for — the OCI 1.1
//! referrers API. Tests can reach into its state to tamper with what it serves.

use super::{serve_scoped, Answer, Request, Server};
use cerro_core::Sha256Digest;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the registry holds.
#[derive(Default)]
pub struct State {
    /// Blobs by digest (`sha256:…`), one store for every repository; `links` says which
    /// repositories hold each.
    pub blobs: BTreeMap<String, Vec<u8>>,
    pub links: BTreeMap<(String, String), ()>,
    /// Manifests by (repository, tag or digest): media type and bytes.
    pub manifests: BTreeMap<(String, String), (String, Vec<u8>)>,
    uploads: BTreeMap<u64, (String, Vec<u8>)>,
    next_upload: u64,
    /// Requests seen, as `METHOD PATH`.
    pub log: Vec<String>,
}

/// A running in-memory registry; stops when dropped.
pub struct FakeRegistry {
    pub state: Arc<Mutex<State>>,
    server: Server,
}

impl FakeRegistry {
    /// Start one; with `referrers_api`, it offers `GET /v2/<repo>/referrers/<digest>`.
    pub fn start(referrers_api: bool) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let server = serve_scoped(move |r| {
            let mut st = st.lock().expect("fake registry lock");
            st.log.push(format!("{} {}", r.method, r.path));
            handle(&mut st, r, referrers_api)
        });
        Self { state, server }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }
}

fn split(path: &str) -> (&str, BTreeMap<String, String>) {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), unescape(v)))
        .collect();
    (p, query)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error(status: u16, code: &str) -> Answer {
    Answer::new(status).body(json!({"errors": [{"code": code, "message": code}]}).to_string())
}

fn handle(st: &mut State, r: &Request, referrers_api: bool) -> Answer {
    let (path, query) = split(&r.path);
    if path == "/v2/" {
        return Answer::new(200);
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(404, "NAME_UNKNOWN");
    };
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let repo = rest[..i].to_string();
        let id = &rest[i + "/blobs/uploads/".len()..];
        return upload(st, r, repo, id, &query);
    }
    if let Some(i) = rest.rfind("/blobs/") {
        let (repo, digest) = (&rest[..i], &rest[i + "/blobs/".len()..]);
        if !st
            .links
            .contains_key(&(repo.to_string(), digest.to_string()))
        {
            return error(404, "BLOB_UNKNOWN");
        }
        let body = st.blobs[digest].clone();
        return match r.method.as_str() {
            "HEAD" => Answer::new(200),
            _ => Answer::new(200).body(body),
        };
    }
    if let Some(i) = rest.rfind("/referrers/") {
        if !referrers_api {
            return error(404, "NAME_UNKNOWN");
        }
        let (repo, subject) = (&rest[..i], &rest[i + "/referrers/".len()..]);
        let mut list = Vec::new();
        for ((rp, reference), (mt, bytes)) in &st.manifests {
            if rp != repo || !reference.starts_with("sha256:") {
                continue;
            }
            let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            if v["subject"]["digest"].as_str() == Some(subject) {
                list.push(
                    json!({"mediaType": mt, "digest": reference, "size": bytes.len(),
                    "artifactType": v["artifactType"]}),
                );
            }
        }
        return Answer::new(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(
                json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": list})
                .to_string(),
            );
    }
    if let Some(i) = rest.rfind("/manifests/") {
        let (repo, reference) = (
            rest[..i].to_string(),
            rest[i + "/manifests/".len()..].to_string(),
        );
        return match r.method.as_str() {
            "PUT" => {
                let digest = Sha256Digest::of(&r.body).to_string();
                let mt = r.header("content-type").unwrap_or("").to_string();
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let entry = (mt, r.body.clone());
                st.manifests
                    .insert((repo.clone(), reference), entry.clone());
                st.manifests.insert((repo, digest.clone()), entry);
                let mut a = Answer::new(201).header("Docker-Content-Digest", digest);
                if referrers_api {
                    if let Some(s) = v["subject"]["digest"].as_str() {
                        a = a.header("OCI-Subject", s);
                    }
                }
                a
            }
            method => match st.manifests.get(&(repo, reference)) {
                None => error(404, "MANIFEST_UNKNOWN"),
                Some((mt, bytes)) => {
                    let a = Answer::new(200)
                        .header("Content-Type", mt.clone())
                        .header("Docker-Content-Digest", Sha256Digest::of(bytes).to_string());
                    if method == "HEAD" {
                        a
                    } else {
                        a.body(bytes.clone())
                    }
                }
            },
        };
    }
    error(404, "NAME_UNKNOWN")
}

fn upload(
    st: &mut State,
    r: &Request,
    repo: String,
    id: &str,
    query: &BTreeMap<String, String>,
) -> Answer {
    if r.method == "POST" {
        if let (Some(d), Some(from)) = (query.get("mount"), query.get("from")) {
            if st.links.contains_key(&(from.clone(), d.clone())) {
                st.links.insert((repo, d.clone()), ());
                return Answer::new(201);
            }
        }
        st.next_upload += 1;
        let n = st.next_upload;
        st.uploads.insert(n, (repo.clone(), Vec::new()));
        return Answer::new(202)
            .header("Location", format!("/v2/{repo}/blobs/uploads/{n}"))
            .header("Range", "0-0");
    }
    let Some(n) = id
        .parse::<u64>()
        .ok()
        .filter(|n| st.uploads.contains_key(n))
    else {
        return error(404, "BLOB_UPLOAD_UNKNOWN");
    };
    let buf = &mut st.uploads.get_mut(&n).expect("checked").1;
    buf.extend_from_slice(&r.body);
    let len = buf.len();
    match r.method.as_str() {
        "PATCH" => Answer::new(202)
            .header("Location", format!("/v2/{repo}/blobs/uploads/{n}"))
            .header("Range", format!("0-{}", len.saturating_sub(1))),
        "PUT" => {
            let (_, bytes) = st.uploads.remove(&n).expect("checked");
            let digest = Sha256Digest::of(&bytes).to_string();
            if query.get("digest") != Some(&digest) {
                return error(400, "DIGEST_INVALID");
            }
            st.links.insert((repo, digest.clone()), ());
            st.blobs.insert(digest.clone(), bytes);
            Answer::new(201).header("Docker-Content-Digest", digest)
        }
        _ => error(405, "UNSUPPORTED"),
    }
}
