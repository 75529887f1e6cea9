//! Containers by name, detached runs and `ct stop`. Every `ct run` claims its container's name
//! with a record `RUN_DIR/containers/NAME` that it holds an exclusive flock on for as long as it
//! runs (a record nobody holds is left over from a killed run and is simply claimed again).
//! `ct run -d` starts `ct run` again in the background, in its own session, with its output in
//! `RUN_DIR/logs/NAME.log`, and returns once that process reports the container started (or
//! why it could not). `ct stop NAME` sends SIGTERM to the `ct run` holding NAME — through a
//! pidfd, checked against the lock, so never to a recycled pid — and waits for it to exit,
//! which it does only after taking down the container, its network, mounts and namespace.

use super::options::check_name;
use super::signals::STOP_GRACE;
use super::stage;
use super::Ctx;
use crate::app::StopArgs;
use crate::exit::{CmdResult, Failure, IO_ERROR};
use crate::steps::report::{self, Heard};
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The hidden flag `ct run -d` passes to the `ct run` it starts in the background.
const CHILD_FLAG: &str = "--detached-child";
/// Longest wait for a detached run to report: it may be importing a large bundle first.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest wait in `ct stop` beyond the grace period: the runtime's cleanup and the unmounts.
const STOP_SLACK: Duration = Duration::from_secs(20);
/// Largest record read.
const MAX_RECORD_BYTES: u64 = 64 << 10;

/// What a record says about the container that holds it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// The `ct run` process that supervises it.
    pub pid: u32,
    pub bundle: String,
    pub runtime: String,
    pub log: Option<PathBuf>,
    pub started_at: i64,
}

/// A claimed name: the record file, locked; unlinked and unlocked on drop.
pub struct Claim {
    path: PathBuf,
    file: File,
}

impl Claim {
    /// Claim `name`, or fail (64) when a running container has it.
    pub fn take(run_dir: &Path, name: &str) -> CmdResult<Claim> {
        check_name(name)?;
        let dir = stage::sub_dir(run_dir, "containers")?;
        let path = dir.join(name);
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| Failure::io(format!("opening {}", path.display()), e))?;
            if rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
                return Err(
                    Failure::usage(format!("a container named {name} is running"))
                        .hint(format!("`ct stop {name}`, or choose another --name")),
                );
            }
            // The file may have been unlinked by the run that held it between our open and
            // our lock: only the file that is still at `path` counts.
            let held = file.metadata().ok().map(|m| (m.dev(), m.ino()));
            let there = std::fs::symlink_metadata(&path)
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if held.is_some() && held == there {
                return Ok(Claim { path, file });
            }
        }
    }

    pub fn write(&mut self, r: &Record) -> CmdResult {
        self.file
            .set_len(0)
            .and_then(|_| {
                use std::io::Seek;
                self.file.seek(std::io::SeekFrom::Start(0))?;
                self.file
                    .write_all(&serde_json::to_vec(r).expect("serializes"))
            })
            .map_err(|e| Failure::io(format!("writing {}", self.path.display()), e))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Unlinked while still locked; the lock goes when the file closes.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `RUN_DIR/logs/NAME.log` for a detached container.
pub fn log_path(run_dir: &Path, name: &str) -> CmdResult<PathBuf> {
    Ok(stage::sub_dir(run_dir, "logs")?.join(format!("{name}.log")))
}

/// The one line a detached run writes to `ct run -d`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Report {
    Started {
        name: String,
        pid: u32,
        log: PathBuf,
    },
    Failed {
        code: u8,
        message: String,
        hint: Option<String>,
    },
}

/// The detached run's side: its report channel (what was its stdout), kept apart from its
/// output, which goes to /dev/null until the log is open, then to the log.
pub struct Reporter {
    channel: Option<File>,
}

impl Reporter {
    /// Take the report channel and leave the terminal's session.
    pub fn take() -> CmdResult<Reporter> {
        let _ = nix::unistd::setsid();
        let channel = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|e| Failure::io("keeping the report channel", e))?;
        let null = File::options()
            .write(true)
            .open("/dev/null")
            .map_err(|e| Failure::io("opening /dev/null", e))?;
        nix::unistd::dup2_stdout(&null)
            .map_err(|e| Failure::io("redirecting stdout", std::io::Error::from(e)))?;
        Ok(Reporter {
            channel: Some(channel),
        })
    }

    /// From here on, stdout and stderr (ct's and the container's) go to `log` (a new file, or
    /// the last run's of this name, truncated).
    pub fn log_to(&self, log: &Path) -> CmdResult {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(log)
            .map_err(|e| Failure::io(format!("opening the log {}", log.display()), e))?;
        nix::unistd::dup2_stdout(&f)
            .and_then(|_| nix::unistd::dup2_stderr(&f))
            .map_err(|e| Failure::io("redirecting output to the log", std::io::Error::from(e)))
    }

    fn send(&mut self, r: &Report) {
        if let Some(mut c) = self.channel.take() {
            let _ = writeln!(c, "{}", serde_json::to_string(r).expect("serializes"));
        }
    }

    pub fn started(&mut self, name: &str, log: &Path) {
        self.send(&Report::Started {
            name: name.to_string(),
            pid: std::process::id(),
            log: log.to_path_buf(),
        });
    }

    pub fn failed(&mut self, f: &Failure) {
        self.send(&Report::Failed {
            code: f.code,
            message: f.message.clone(),
            hint: f.hint.clone(),
        });
    }
}

/// `ct run -d`: start this same command line again in the background (with [`CHILD_FLAG`])
/// and report what it reports.
pub fn spawn(ctx: &Ctx) -> CmdResult<u8> {
    let exe = std::env::current_exe().map_err(|e| Failure::io("finding the ct executable", e))?;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.insert(at, CHILD_FLAG.into());
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("NO_COLOR", "1")
        .env_remove("CT_PASSPHRASE")
        .spawn()
        .map_err(|e| Failure::io("starting ct run in the background", e))?;
    let heard = report::await_report::<Report>(&mut child, START_TIMEOUT);
    match heard {
        Heard::Report(Report::Started { name, pid, log }) => {
            // It stays, in its own session; nothing to reap.
            std::mem::forget(child);
            ctx.out.json_doc(&serde_json::json!({
                "ok": true, "name": name, "pid": pid, "log": log,
            }));
            if !ctx.out.json {
                println!("{name}");
                if !ctx.out.quiet {
                    eprintln!(
                        "ct run: {name} runs in the background (ct run pid {pid}); output in {}; \
                         `ct stop {name}` stops it",
                        log.display()
                    );
                }
            }
            Ok(0)
        }
        Heard::Report(Report::Failed {
            code,
            message,
            hint,
        }) => {
            let _ = child.wait();
            let mut f = Failure::new(code, message);
            f.hint = hint;
            Err(f)
        }
        Heard::Nothing | Heard::TimedOut => {
            let _ = child.kill();
            let status = child.wait().ok();
            Err(Failure::new(
                IO_ERROR,
                format!(
                    "the background ct run ended ({}) without starting the container",
                    status.map_or("no status".into(), |s| s.to_string())
                ),
            ))
        }
    }
}

/// Read NAME's record if a running `ct run` holds it (None: nothing runs under that name).
fn running(dir: &Path, name: &str) -> CmdResult<Option<Record>> {
    let path = dir.join(name);
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::io(format!("opening {}", path.display()), e)),
    };
    if rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockShared).is_ok() {
        return Ok(None); // left over from a run that was killed
    }
    let mut text = String::new();
    (&file)
        .take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Failure::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Failure::malformed(format!("{}: {e}", path.display())))
}

/// `ct stop NAME…`.
pub fn stop(ctx: &Ctx, a: StopArgs) -> CmdResult<u8> {
    // Root's containers are under root's run directory, a user's under theirs.
    let run_dir = match nix::unistd::geteuid().is_root() {
        true => stage::run_dir()?,
        false => super::rootless::run_dir()?,
    };
    let dir = stage::sub_dir(&run_dir, "containers")?;
    let mut stopped = Vec::new();
    for name in &a.names {
        check_name(name)?;
        let not_running = || {
            Failure::usage(format!("no container named {name} is running"))
                .hint("names are those `ct run -d` printed, or --name gave")
        };
        let rec = running(&dir, name)?.ok_or_else(not_running)?;
        let pid = rustix::process::Pid::from_raw(rec.pid as i32).ok_or_else(not_running)?;
        let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(_) => return Err(not_running()),
        };
        // The pidfd names whatever has that pid now: it is our ct run only if the record
        // still names it and is still held.
        match running(&dir, name)? {
            Some(again) if again.pid == rec.pid => {}
            _ => return Err(not_running()),
        }
        rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::TERM)
            .map_err(|e| Failure::io(format!("stopping {name} (pid {})", rec.pid), e.into()))?;
        let limit = STOP_GRACE + STOP_SLACK;
        let timeout = rustix::event::Timespec {
            tv_sec: limit.as_secs() as i64,
            tv_nsec: 0,
        };
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let ready = rustix::event::poll(&mut fds, Some(&timeout)).unwrap_or(0);
        if ready == 0 {
            return Err(Failure::new(
                IO_ERROR,
                format!("{name} did not stop within {}s", limit.as_secs()),
            )
            .hint(match &rec.log {
                Some(l) => format!("its log is {}", l.display()),
                None => format!("its ct run is pid {}", rec.pid),
            }));
        }
        ctx.out.line(format!("stopped {name}"));
        stopped.push(name.clone());
    }
    ctx.out
        .json_doc(&serde_json::json!({"ok": true, "stopped": stopped}));
    Ok(0)
}
