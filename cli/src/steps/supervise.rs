//! A mount that survives its serving process. The detached daemon of `ct mount` is a small
//! supervisor: it verifies and leases the bundle, registers the mount, mounts, keeps the
//! `/dev/fuse` connection (`cerro_fuse::restart`), and starts a serving process on it — again
//! whenever one dies. Each serving process verifies the record itself, numbers its inodes as
//! its predecessors did (their directory loads, replayed and checked), does its handshake
//! against the saved INIT request, has the kernel re-send what the dead one had read, and
//! serves. Readers see a pause, never `ENOTCONN`.
//!
//! Supervisor and serving process talk over one `SOCK_SEQPACKET` socket, the serving process's
//! stdin. The supervisor sends the connection's descriptor ([`CONNECTION`], SCM_RIGHTS), the
//! directory loads so far ([`JOURNAL`] messages, then [`JOURNAL_END`]) and the INIT request;
//! the serving process answers with the INIT reply, then [`READY`], then one [`LOAD`] message
//! per directory load it makes.

use crate::ctx::Ctx;
use crate::exit::{CmdResult, Failure, IO_ERROR};
use crate::steps::serve::{
    self, log_line, mount_failure, plan, raise_readahead, register_mount, report_ready,
    unmount_path, DaemonReport, Request, DAEMON_COMMAND,
};
use cerro_core::rootfs::VerifiedTree;
use cerro_fuse::restart::{self, Connection, MAX_INIT};
use cerro_fuse::{LoadRecord, VerifiedFs};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The connection's `/dev/fuse` descriptor travels with this message.
const CONNECTION: u8 = b'F';
/// Directory loads so far: this tag, then whole [`LoadRecord`]s.
const JOURNAL: u8 = b'L';
/// No more loads follow; the INIT request is next.
const JOURNAL_END: u8 = b'E';
/// Load records per [`JOURNAL`] message (well under the socket's buffer).
const RECORDS_PER_MESSAGE: usize = 1024;
/// The serving process owns the connection and reads requests.
const READY: u8 = b'R';
/// A directory load: this tag, then [`LoadRecord::to_bytes`].
const LOAD: u8 = b'J';
/// Longest wait for a serving process to verify, replay and answer INIT.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Serving processes that fail to start in a row before the supervisor gives the mount up.
const MAX_FAILED_STARTS: u32 = 3;

/// Whether `req` is served by a supervisor: bundle mounts. A store view's bundle set is
/// resolved by name when it is planned, so a new serving process could see another set.
pub fn applies(req: &Request) -> bool {
    req.kind == crate::app::Kind::Bundle
}

/// How one serving process ended.
enum Ended {
    /// It exited with 0: the mount was taken down.
    Unmounted,
    /// It died or failed, having served (`true`) or before it could serve (`false`).
    Died { served: bool, how: String },
}

/// The supervisor: register, mount, and keep a serving process on the connection until the
/// mount is taken down, holding `plan`'s lease all along. `detached`: the daemon of `ct mount`
/// (readiness goes to its starter on stdout); else `ct mount --foreground` (readiness on the
/// terminal and to the service manager).
pub fn supervise(ctx: &Ctx, req: &Request, plan: serve::Plan, detached: bool) -> CmdResult<u8> {
    serve::block_ending_signals()?;
    let signals = serve::ending_signals();
    let registration = register_mount(ctx, req, &plan.store, &plan.bundles)?;
    let opts = req.mount_options();
    let conn =
        restart::connect(&req.mountpoint, &opts).map_err(|e| mount_failure(&req.mountpoint, e))?;
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let (stopping, mp) = (stopping.clone(), req.mountpoint.clone());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Ok(sig) = signals.wait() {
                    stopping.store(true, Ordering::SeqCst);
                    log_line(&format!("{sig:?}: unmounting {}", mp.display()));
                    if let Err(f) = unmount_path(&mp, true) {
                        log_line(&format!("unmounting {}: {}", mp.display(), f.message));
                    }
                }
            })
            .map_err(|e| Failure::io("starting the signal thread", e))?;
    }
    let resend = conn.kernel_resends();
    if !resend {
        log_line("this kernel does not re-send requests (FUSE_HAS_RESEND, Linux 6.9+): the mount ends if its serving process dies");
    }
    let mut sup = Supervisor {
        ctx,
        req,
        detached,
        bundles: plan.bundles.clone(),
        conn,
        journal: Vec::new(),
        init_reply: None,
        reported: false,
    };
    let mut failed_starts = 0;
    let result = loop {
        let restart = sup.init_reply.is_some();
        let started = Instant::now();
        let ended = sup.run_one(resend && restart);
        match ended {
            Err(f) => break Err(f),
            Ok(Ended::Unmounted) => break Ok(0),
            Ok(Ended::Died { .. }) if stopping.load(Ordering::SeqCst) => break Ok(0),
            Ok(Ended::Died { .. }) if cerro_fuse::mountinfo::at(&req.mountpoint).is_none() => {
                break Ok(0)
            }
            Ok(Ended::Died { served, how }) => {
                if sup.init_reply.is_some() && !resend {
                    break Err(Failure::new(
                        IO_ERROR,
                        format!("the serving process {how}, and this kernel cannot hand its requests to another"),
                    ));
                }
                failed_starts = if served { 0 } else { failed_starts + 1 };
                log_line(&format!(
                    "the serving process {how} after {} ms; starting another",
                    started.elapsed().as_millis()
                ));
                if failed_starts >= MAX_FAILED_STARTS {
                    break Err(Failure::new(
                        IO_ERROR,
                        format!("{failed_starts} serving processes in a row failed to start; the last {how}"),
                    )
                    .hint(format!("see {}", serve::log_path(&ctx.store, &req.mountpoint).display())));
                }
                if !served {
                    std::thread::sleep(Duration::from_millis(100 << failed_starts));
                }
            }
        }
    };
    if let Err(f) = &result {
        log_line(&format!("giving the mount up: {}", f.message));
        if sup.init_reply.is_none() && detached {
            let report = DaemonReport::Failed {
                code: f.code,
                message: f.message.clone(),
                hint: f.hint.clone(),
            };
            println!("{}", serde_json::to_string(&report).expect("serializes"));
        }
        if cerro_fuse::mountinfo::at(&req.mountpoint).is_some() {
            let _ = unmount_path(&req.mountpoint, true);
        }
    } else {
        log_line(&format!("unmounted {}", req.mountpoint.display()));
    }
    // Closing the connection ends whatever still waits on it.
    drop(sup);
    drop(registration);
    drop(plan);
    result
}

struct Supervisor<'a> {
    ctx: &'a Ctx,
    req: &'a Request,
    detached: bool,
    bundles: Vec<cerro_store::mounts::MountedBundle>,
    conn: Connection,
    /// Every directory load of every serving process so far, in order.
    journal: Vec<LoadRecord>,
    /// The first serving process's INIT reply, which the kernel got.
    init_reply: Option<Vec<u8>>,
    /// Whether readiness was reported (once, when the first serving process serves).
    reported: bool,
}

impl Supervisor<'_> {
    /// Start one serving process and follow it until it ends.
    fn run_one(&mut self, resend: bool) -> CmdResult<Ended> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Failure::io("making the serving process's socket", e.into()))?;
        let mut child = self.spawn(theirs, resend)?;
        let served = self.follow(&ours, &mut child);
        if served.is_err() {
            let _ = child.kill();
        }
        let status = child
            .wait()
            .map_err(|e| Failure::io("waiting for the serving process", e))?;
        let served = served?;
        if status.success() {
            return Ok(Ended::Unmounted);
        }
        Ok(Ended::Died {
            served,
            how: format!("(pid {}) ended: {status}", child.id()),
        })
    }

    fn spawn(&self, control: OwnedFd, resend: bool) -> CmdResult<Child> {
        let exe =
            std::env::current_exe().map_err(|e| Failure::io("finding the ct executable", e))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--store")
            .arg(&self.ctx.store)
            .arg("--config-dir")
            .arg(&self.ctx.cfg.dir)
            .arg(DAEMON_COMMAND)
            .args(self.req.to_args())
            .arg("--supervisor")
            .arg(std::process::id().to_string())
            .stdin(Stdio::from(control))
            .stdout(Stdio::null())
            .env("NO_COLOR", "1")
            .env_remove("CT_PASSPHRASE");
        if resend {
            cmd.arg("--resend");
        }
        cmd.spawn()
            .map_err(|e| Failure::io("starting the serving process", e))
    }

    /// Send the connection, the loads so far and the INIT request.
    fn hand_over(&self, sock: &OwnedFd) -> std::io::Result<()> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage};
        let fds = [self.conn.fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            sock,
            &[std::io::IoSlice::new(&[CONNECTION])],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        for chunk in self.journal.chunks(RECORDS_PER_MESSAGE) {
            let mut msg = Vec::with_capacity(1 + chunk.len() * LoadRecord::LEN);
            msg.push(JOURNAL);
            for r in chunk {
                msg.extend_from_slice(&r.to_bytes());
            }
            rustix::net::send(sock, &msg, SendFlags::NOSIGNAL)?;
        }
        rustix::net::send(sock, &[JOURNAL_END], SendFlags::NOSIGNAL)?;
        rustix::net::send(sock, self.conn.init_request(), SendFlags::NOSIGNAL)?;
        Ok(())
    }

    /// Hand the INIT request over, forward or check the reply, wait for readiness, then record
    /// directory loads until the serving process closes its end. Answers whether it served.
    fn follow(&mut self, sock: &OwnedFd, child: &mut Child) -> CmdResult<bool> {
        if self.hand_over(sock).is_err() {
            // It died before it read everything: its exit status says why.
            return Ok(false);
        }
        let mut buf = vec![0u8; MAX_INIT];
        let deadline = Instant::now() + START_TIMEOUT;
        let Some(n) = recv_until(sock, &mut buf, deadline)? else {
            return Ok(false);
        };
        let reply = &buf[..n];
        match &self.init_reply {
            None => {
                self.conn
                    .answer_init(reply)
                    .map_err(|e| Failure::io("answering the kernel's FUSE INIT", e))?;
                self.init_reply = Some(reply.to_vec());
            }
            Some(first) if first.as_slice() == reply => {}
            Some(_) => {
                let _ = child.kill();
                return Err(Failure::new(
                    IO_ERROR,
                    "a new serving process negotiated FUSE differently from the first",
                ));
            }
        }
        let Some(n) = recv_until(sock, &mut buf, deadline)? else {
            return Ok(false);
        };
        if buf[..n] != [READY] {
            let _ = child.kill();
            return Err(Failure::new(
                IO_ERROR,
                "the serving process sent something other than READY",
            ));
        }
        log_line(&format!(
            "serving process {} serves {} ({} directory loads replayed)",
            child.id(),
            self.req.mountpoint.display(),
            self.journal.len()
        ));
        if !self.reported {
            self.reported = true;
            raise_readahead(
                &self.req.mountpoint,
                &(Arc::new(log_line) as cerro_fuse::EventSink),
            );
            if self.detached {
                report_ready();
            } else {
                serve::report_foreground(self.ctx, self.req, &self.bundles);
            }
        }
        loop {
            let n = match rustix::net::recv(sock, &mut buf, RecvFlags::empty()) {
                Ok((0, _)) => return Ok(true),
                Ok((n, _)) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return Ok(true),
            };
            let rec = match buf[..n].split_first() {
                Some((&LOAD, rest)) => LoadRecord::from_bytes(rest),
                _ => None,
            };
            match rec {
                Some(r) => self.journal.push(r),
                None => {
                    let _ = child.kill();
                    return Err(Failure::new(
                        IO_ERROR,
                        "the serving process sent a malformed load record",
                    ));
                }
            }
        }
    }
}

/// One message from `sock`, waiting until `deadline`; `None` when the other end closed.
fn recv_until(sock: &OwnedFd, buf: &mut [u8], deadline: Instant) -> CmdResult<Option<usize>> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::new(
                IO_ERROR,
                format!(
                    "the serving process did not start within {}s",
                    START_TIMEOUT.as_secs()
                ),
            ));
        }
        let mut fds = [PollFd::new(sock, PollFlags::IN)];
        let timeout = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(Failure::io("waiting for the serving process", e.into())),
        }
        return match rustix::net::recv(sock, &mut *buf, RecvFlags::empty()) {
            Ok((0, _)) => Ok(None),
            Ok((n, _)) => Ok(Some(n)),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(_) => Ok(None),
        };
    }
}

/// The serving process a supervisor started (`supervisor` is its pid): die with the
/// supervisor, take the connection and the loads so far from it, verify, number inodes as
/// before, take the connection over, and serve until the mount ends.
pub fn serve_child(ctx: &Ctx, req: &Request, supervisor: u32) -> CmdResult<u8> {
    // Nobody may serve this connection without its supervisor (which holds the registration
    // and the lease): die with it; and if it died already, do not start.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| Failure::io("PR_SET_PDEATHSIG", e.into()))?;
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(supervisor) {
        return Err(Failure::new(IO_ERROR, "the supervisor is gone"));
    }
    let control = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::io("taking the supervisor's socket", e))?;
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    let (fuse, records) =
        receive_connection(&control).map_err(|e| Failure::io("taking the connection over", e))?;
    let plan = plan(ctx, req)?;
    let fs = VerifiedFs::new(
        VerifiedTree::new(plan.store.clone()),
        &plan.view,
        Arc::new(log_line),
        cerro_fuse::DEFAULT_CACHE_BYTES,
    );
    fs.replay(&records).map_err(|e| {
        Failure::new(
            crate::exit::HASH_MISMATCH,
            format!(
                "the mount's inode numbers cannot be restored, so this process must not serve it: {e}"
            ),
        )
    })?;
    let tell = control
        .try_clone()
        .map_err(|e| Failure::io("duplicating the control socket", e))?;
    let loads = tell
        .try_clone()
        .map_err(|e| Failure::io("duplicating the control socket", e))?;
    fs.on_load(Box::new(move |r: LoadRecord| {
        let mut msg = [0u8; 1 + LoadRecord::LEN];
        msg[0] = LOAD;
        msg[1..].copy_from_slice(&r.to_bytes());
        // A supervisor that is gone takes this process with it (PR_SET_PDEATHSIG).
        let _ = rustix::net::send(&loads, &msg, SendFlags::NOSIGNAL);
    }));
    let opts = req.mount_options();
    let served = restart::serve_connection(fs, fuse, control, &opts, req.resend, || {
        let _ = rustix::net::send(&tell, &[READY], SendFlags::NOSIGNAL);
    });
    drop(plan);
    match served {
        Ok(()) => Ok(0),
        Err(e) => Err(Failure::io(
            format!("serving {}", req.mountpoint.display()),
            e,
        )),
    }
}

/// Receive the connection's descriptor and the loads so far (up to [`JOURNAL_END`]); the INIT
/// request stays in the socket for the handshake.
fn receive_connection(sock: &OwnedFd) -> std::io::Result<(OwnedFd, Vec<LoadRecord>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage};
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut tag = [0u8; 1];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut tag)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fuse = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            fuse = fds.next();
        }
    }
    let fuse = match (msg.bytes, tag[0], fuse) {
        (1, CONNECTION, Some(fd)) => fd,
        _ => return Err(bad("the supervisor did not send the connection")),
    };
    let mut records = Vec::new();
    let mut buf = vec![0u8; 1 + RECORDS_PER_MESSAGE * LoadRecord::LEN];
    loop {
        let (n, _) = rustix::net::recv(sock, &mut buf, RecvFlags::empty())?;
        match buf[..n].split_first() {
            Some((&JOURNAL_END, [])) => return Ok((fuse, records)),
            Some((&JOURNAL, rest)) if rest.len() % LoadRecord::LEN == 0 => records.extend(
                rest.chunks_exact(LoadRecord::LEN)
                    .filter_map(LoadRecord::from_bytes),
            ),
            _ => return Err(bad("a malformed load journal")),
        }
    }
}
