//! The container's network for runc and crun: a network namespace made by ct (bound to a file
//! in the staging directory, so it exists before the container does), slirp4netns attached to
//! it for `--network private` (outbound NAT, published ports on the host through its API
//! socket, the host's loopback out of reach), and the /etc/hosts, /etc/hostname and
//! /etc/resolv.conf the container gets. podman does all of this itself (`podman run --network
//! slirp4netns -p …`).

use super::options::{Network, Publish};
use super::stage::Stage;
use crate::exit::{CmdResult, Failure, IO_ERROR};
use nix::mount::MsFlags;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// slirp4netns's addresses (its defaults): the container's, and its DNS forwarder.
const GUEST_ADDR: &str = "10.0.2.100";
const DNS_ADDR: &str = "10.0.2.3";
/// The MTU podman gives slirp4netns (fewer, larger packets through the user-space stack).
const MTU: &str = "65520";
/// Longest wait for slirp4netns to configure the namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long slirp4netns gets to exit after its exit pipe closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Lines of slirp4netns's output kept to explain a failure.
const MAX_NOTES: usize = 20;
/// Largest host file copied into the container (/etc/hosts, /etc/resolv.conf).
const MAX_ETC_BYTES: u64 = 1 << 20;

/// A new network namespace with nothing in it (lo is down), bound to `STAGE/netns`: made in a
/// thread of ours that unshares its network namespace and exits; the bind mount (in ct run's
/// private mount namespace, taken down with the stage) keeps it.
pub fn create_netns(stage: &mut Stage) -> CmdResult<PathBuf> {
    let path = stage.dir.join("netns");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Failure::io(format!("creating {}", path.display()), e))?;
    let target = path.clone();
    let made = std::thread::spawn(move || -> nix::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .join()
    .expect("the network namespace thread does not panic");
    made.map_err(|e| {
        Failure::io(
            "creating the container's network namespace",
            std::io::Error::from(e),
        )
    })?;
    stage.adopt_mount(&path);
    Ok(path)
}

/// A running slirp4netns. Dropping it closes its exit pipe (it exits at once), then reaps it;
/// if ct run dies instead, the pipe closes all the same.
pub struct Slirp {
    child: Child,
    exit_pipe: Option<ChildStdin>,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        drop(self.exit_pipe.take());
        let deadline = Instant::now() + EXIT_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start slirp4netns on `netns` (configured: lo and tap0 up, a default route, DNS at
/// 10.0.2.3; `--disable-host-loopback`: the container cannot reach the host's 127.0.0.1;
/// sandboxed, with seccomp, as podman runs it), wait until it says the namespace is ready,
/// and publish `ports` through its API socket at `api`.
pub fn start_slirp(netns: &Path, api: &Path, ports: &[Publish]) -> CmdResult<Slirp> {
    let mut child = Command::new("slirp4netns")
        .args([
            "--configure",
            "--mtu",
            MTU,
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            "--netns-type=path",
            // Readiness on stdout, and exit when stdin closes: no other descriptor is passed.
            "--ready-fd=1",
            "--exit-fd=0",
            "--api-socket",
        ])
        .arg(api)
        .arg(netns)
        .arg("tap0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("CT_PASSPHRASE")
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Failure::usage("--network private needs slirp4netns, which is not installed")
                    .hint("apt-get install slirp4netns (tools/setup does); `ct doctor` checks")
            } else {
                Failure::io("starting slirp4netns", e)
            }
        })?;
    let exit_pipe = child.stdin.take();
    let mut ready = child.stdout.take().expect("piped");
    let chatter = child.stderr.take().expect("piped");
    let slirp = Slirp { child, exit_pipe };
    // slirp4netns talks on both outputs ("sent tapfd=5 for tap0", "WARNING: Support for
    // seccomp is experimental", "do_slirp is exiting"): kept (the last few lines) to explain a
    // failure, not shown otherwise. Both are drained for as long as it runs, so it never blocks
    // on a full pipe. Its stdout ends with the ready mark, a lone "1" after the lines.
    let notes = Arc::new(Mutex::new(VecDeque::new()));
    let note = |notes: &Arc<Mutex<VecDeque<String>>>, line: &[u8]| {
        let mut n = notes.lock().expect("notes");
        if n.len() == MAX_NOTES {
            n.pop_front();
        }
        n.push_back(String::from_utf8_lossy(line).trim_end().to_string());
    };
    let from_stderr = notes.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(chatter).split(b'\n').map_while(Result::ok) {
            note(&from_stderr, &line);
        }
    });
    let from_stdout = notes.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        let mut tx = Some(tx);
        loop {
            let n = match ready.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                note(&from_stdout, &line);
            }
            if pending.first() == Some(&b'1') {
                pending.remove(0);
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    if rx.recv_timeout(READY_TIMEOUT).is_err() {
        let said: Vec<String> = notes.lock().expect("notes").iter().cloned().collect();
        return Err(Failure::new(
            IO_ERROR,
            format!(
                "slirp4netns did not configure the container's network{}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", said.join(" / "))
                }
            ),
        )
        .hint("`ct doctor` checks slirp4netns"));
    }
    for p in ports {
        publish(api, p)?;
    }
    Ok(slirp)
}

/// Ask slirp4netns (through its API socket) to forward `p.addr:p.host_port` on the host to
/// the container's port.
fn publish(api: &Path, p: &Publish) -> CmdResult {
    let what = format!(
        "publishing {}:{} to the container's port {}/{}",
        p.addr,
        p.host_port,
        p.container_port,
        p.proto.as_str()
    );
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": p.proto.as_str(),
            "host_addr": p.addr.to_string(),
            "host_port": p.host_port,
            "guest_addr": GUEST_ADDR,
            "guest_port": p.container_port,
        }
    });
    let mut sock = std::os::unix::net::UnixStream::connect(api)
        .map_err(|e| Failure::io(format!("{what}: slirp4netns's API socket"), e))?;
    sock.set_read_timeout(Some(READY_TIMEOUT))
        .and_then(|_| sock.write_all(request.to_string().as_bytes()))
        .and_then(|_| sock.shutdown(std::net::Shutdown::Write))
        .map_err(|e| Failure::io(&what, e))?;
    let mut reply = String::new();
    (&mut sock)
        .take(64 << 10)
        .read_to_string(&mut reply)
        .map_err(|e| Failure::io(&what, e))?;
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
    if v.get("return").is_some() {
        return Ok(());
    }
    Err(Failure::new(
        IO_ERROR,
        format!(
            "{what}: slirp4netns refused it ({})",
            v["error"]["desc"].as_str().unwrap_or(reply.trim())
        ),
    )
    .hint(format!(
        "is {}:{} in use already? (`ss -ltnup`) Choose another host port",
        p.addr, p.host_port
    )))
}

/// A host file's text, bounded (empty when it is missing).
fn host_file(path: &str) -> String {
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_ETC_BYTES).read_to_string(&mut s);
    }
    s
}

/// Write /etc/hosts, /etc/hostname and (with a network) /etc/resolv.conf for the container
/// into `dir`; returns (path in the container, file) pairs to bind-mount, as podman does.
pub fn etc_files(dir: &Path, hostname: &str, net: Network) -> CmdResult<Vec<(String, PathBuf)>> {
    let mut hosts = String::new();
    let mut resolv = None;
    match net {
        Network::None => {
            hosts.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
            hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
        }
        Network::Private => {
            hosts.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
            hosts.push_str(&format!("{GUEST_ADDR}\t{hostname}\n"));
            resolv = Some(format!("nameserver {DNS_ADDR}\n"));
        }
        Network::Host => {
            hosts = host_file("/etc/hosts");
            if !hosts.is_empty() && !hosts.ends_with('\n') {
                hosts.push('\n');
            }
            hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
            resolv = Some(host_file("/etc/resolv.conf"));
        }
    }
    let mut files = vec![
        ("/etc/hosts", hosts),
        ("/etc/hostname", format!("{hostname}\n")),
    ];
    if let Some(r) = resolv {
        files.push(("/etc/resolv.conf", r));
    }
    let mut out = Vec::new();
    for (dest, text) in files {
        let path = dir.join(dest.trim_start_matches("/etc/"));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Failure::io(format!("writing {}", path.display()), e))?;
        out.push((dest.to_string(), path));
    }
    Ok(out)
}
