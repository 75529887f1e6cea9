//! A tiny HTTP/1.1 server on 127.0.0.1 for tests of the registry client: each request
//! (method, path, headers, body) goes to a handler that answers with a status, headers and a
//! body — or cuts the connection part-way through the body, to test resumption. One connection
//! per request (`Connection: close`); the server thread ends with the test process, or when its
//! [`Server`] is dropped. `fake::oci` builds an in-memory OCI registry on it.

pub mod oci;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A client of the fake registry on `port` (repository `x`, no credentials, no scopes).
pub fn client(port: u16) -> crate::Client {
    let r = crate::Reference::parse(&format!("127.0.0.1:{port}/x:1")).expect("a valid reference");
    crate::Client::connect(
        &r,
        &crate::RegistryOptions {
            tls_verify: true,
            ..Default::default()
        },
        vec![],
    )
    .expect("the fake registry answers")
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send only this many body bytes (after a full Content-Length), then hang up.
    pub cut_after: Option<usize>,
}

impl Answer {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: vec![],
            cut_after: None,
        }
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
}

/// Start a server; returns its port.
pub fn serve(handler: impl Fn(&Request) -> Answer + Send + 'static) -> u16 {
    serve_on(
        TcpListener::bind("127.0.0.1:0").expect("bind loopback"),
        handler,
    )
}

/// Start a server on a listener the caller bound (to choose its port).
pub fn serve_on(l: TcpListener, handler: impl Fn(&Request) -> Answer + Send + 'static) -> u16 {
    let port = l.local_addr().unwrap().port();
    spawn(l, handler, Arc::new(AtomicBool::new(false)));
    port
}

/// A server that stops when dropped.
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

/// Start a server on a free loopback port that stops when the returned [`Server`] is dropped.
pub fn serve_scoped(handler: impl Fn(&Request) -> Answer + Send + 'static) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    spawn(l, handler, stop.clone());
    Server { port, stop }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn spawn(
    l: TcpListener,
    handler: impl Fn(&Request) -> Answer + Send + 'static,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
                continue; // not HTTP (a TLS hello): hang up
            };
            let (method, path) = (method.to_string(), path.to_string());
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let mut req = Request {
                method,
                path,
                headers,
                body: vec![],
            };
            let len: usize = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            req.body = body;
            let a = handler(&req);
            let mut head = format!("HTTP/1.1 {} X\r\n", a.status);
            for (k, v) in &a.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                a.body.len()
            ));
            let _ = s.write_all(head.as_bytes());
            let n = a.cut_after.unwrap_or(a.body.len()).min(a.body.len());
            let _ = s.write_all(&a.body[..n]);
            let _ = s.flush();
            // Dropping the stream closes it (mid-body when cut).
        }
    });
}
