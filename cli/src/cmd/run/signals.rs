//! Signals during `ct run`: SIGINT, SIGTERM and SIGHUP are blocked in every thread from the
//! start, and one thread takes them and acts by [`Phase`]: before anything is mounted they end
//! ct at once; while mounts are made they cancel the run; once the container runs they are
//! passed to the runtime (which forwards them to the container), with a kill after a grace
//! period. `ct stop NAME` is a SIGTERM to this process.

use crate::exit::{CmdResult, Failure};
use nix::sys::signal::{SigSet, Signal};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a container may take to exit after the first Ctrl-C / SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the run is, for the signal thread.
pub enum Phase {
    /// Verifying and importing: nothing is mounted, so a signal ends ct at once, with the
    /// signal's default action (an import killed half-way loses nothing; the next one cleans),
    /// after removing the (still empty) staging directory.
    Preparing { remove: Option<PathBuf> },
    /// Mounts are being made: a signal cancels the run before the container starts, and the
    /// guard takes them down.
    Staging { cancelled: bool },
    /// The runtime runs: its pid, and the command that kills the container.
    Running(nix::unistd::Pid, Vec<String>),
}

pub type Shared = Arc<Mutex<Phase>>;

/// Block the signals in this thread (before any other starts, so every thread inherits the
/// mask; the runtime starts with an empty one, std resets it for children) and start the
/// thread that takes them. A container's PID 1 ignores signals it has no handler for, so if it
/// is still running STOP_GRACE after the first one, or a second comes more than a second later
/// (a terminal's Ctrl-C reaches ct and the runtime at once; that is not a second request), it
/// is killed.
pub fn watch() -> CmdResult<Shared> {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| Failure::io("blocking signals", std::io::Error::from(e)))?;
    let state = Arc::new(Mutex::new(Phase::Preparing { remove: None }));
    let shared = state.clone();
    let kill = |cmd: &[String]| {
        let _ = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            while let Ok(sig) = signals.wait() {
                let mut st = shared.lock().expect("signal state");
                let (pid, killer) = match &mut *st {
                    Phase::Preparing { remove } => {
                        if let Some(dir) = remove {
                            for d in ["lower", "rw", "rootfs", "bundle", ""] {
                                let _ = std::fs::remove_dir(dir.join(d));
                            }
                        }
                        // Our disposition is the default one (blocked, never handled), so
                        // unblocking it here and raising it ends the process as it would
                        // have without ct's handling.
                        let mut one = SigSet::empty();
                        one.add(sig);
                        let _ = one.thread_unblock();
                        let _ = nix::sys::signal::raise(sig);
                        continue;
                    }
                    Phase::Staging { cancelled } => {
                        *cancelled = true;
                        continue;
                    }
                    Phase::Running(pid, killer) => (*pid, killer.clone()),
                };
                drop(st);
                match first {
                    None => {
                        first = Some(Instant::now());
                        let _ = nix::sys::signal::kill(pid, sig);
                        std::thread::spawn(move || {
                            std::thread::sleep(STOP_GRACE);
                            kill(&killer);
                        });
                    }
                    Some(t) if t.elapsed() > Duration::from_secs(1) => kill(&killer),
                    Some(_) => {}
                }
            }
        })
        .map_err(|e| Failure::io("starting the signal thread", e))?;
    Ok(state)
}
