//! `ct mount`, `ct store mount`, `ct umount` and `ct mounts`: verify, import if needed, start
//! the mount daemon and return once the mount answers; end mounts cleanly, also those whose
//! daemon died. The daemon itself (what serves the mount) is `super::daemon`.

use super::daemon::{self, DaemonReport, Kind};
use super::stored::{open_bundle, Checks};
use super::Ctx;
use crate::app::{MountArgs, StoreMountArgs, UmountArgs};
use crate::exit::{CmdResult, Failure};
use crate::mountinfo;
use cerro_store::dirs::StoreDirs;
use cerro_store::mounts::{self, MountedBundle};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a daemon to report its mount ready (verification of a large store view
/// included); a daemon that takes longer is killed and the mount refused.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a daemon to exit after its mount was taken down.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The mount point as an absolute, normalised path, without touching it (a broken FUSE mount
/// cannot even be stat'ed).
fn absolute(p: &Path) -> CmdResult<PathBuf> {
    let abs =
        std::path::absolute(p).map_err(|e| Failure::io(format!("resolving {}", p.display()), e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Check that `mp` can be mounted on: an empty-or-not directory that is not mounted on already
/// (created when missing). Returns its canonical path.
fn prepare_mountpoint(mp: &Path) -> CmdResult<PathBuf> {
    let mp = absolute(mp)?;
    if let Some(m) = mountinfo::at(&mp) {
        let hint = if m.is_cerro() {
            format!("`ct umount {}` first", mp.display())
        } else {
            "choose another mount point".to_string()
        };
        return Err(Failure::usage(format!(
            "{} is already a mount point ({} from {})",
            mp.display(),
            m.fstype,
            m.source
        ))
        .hint(hint));
    }
    match std::fs::metadata(&mp) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(Failure::usage(format!(
                "{} is not a directory",
                mp.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&mp)
            .map_err(|e| Failure::io(format!("creating the mount point {}", mp.display()), e))?,
        Err(e) => {
            return Err(Failure::io(
                format!("checking the mount point {}", mp.display()),
                e,
            ))
        }
    }
    std::fs::canonicalize(&mp).map_err(|e| Failure::io(format!("resolving {}", mp.display()), e))
}

/// `ct mount BUNDLE|NAME MOUNTPOINT`: the bundle is resolved (a file verified and imported if
/// needed) and verified here, once, so a refusal has its exit code; the daemon is then told the
/// bundle's digest, and serves exactly that bundle after verifying it again itself.
pub fn mount(ctx: &Ctx, a: MountArgs) -> CmdResult<u8> {
    if a.foreground {
        // Before the store starts any thread: this process will serve the mount.
        daemon::block_ending_signals()?;
    }
    let mp = prepare_mountpoint(&a.mountpoint)?;
    let checks = Checks::load(ctx, a.source.policy.as_deref(), false)?;
    let opened = open_bundle(
        ctx,
        &a.source,
        &checks,
        &format!("mount {}", mp.display()),
        "mounted",
    )?;
    let req = daemon::Request {
        kind: Kind::Bundle,
        digest: Some(opened.bundle.digest()),
        label: Some(opened.label()),
        mountpoint: mp,
        allow_other: a.allow_other,
        suid: false,
        threads: a.threads,
        policy: a.source.policy.clone(),
    };
    // The plan keeps this lease until the daemon has taken its own.
    start(ctx, &req, daemon::plan_opened(opened)?, a.foreground)
}

/// `ct store mount MOUNTPOINT`.
pub fn store_mount(ctx: &Ctx, a: StoreMountArgs) -> CmdResult<u8> {
    if a.foreground {
        daemon::block_ending_signals()?;
    }
    let mp = prepare_mountpoint(&a.mountpoint)?;
    let req = daemon::Request {
        kind: Kind::Store,
        digest: None,
        label: None,
        mountpoint: mp,
        allow_other: a.allow_other,
        suid: false,
        threads: a.threads,
        policy: a.policy.clone(),
    };
    // Checked here too, so that what is left out is reported on this terminal.
    let plan = daemon::plan(ctx, &req)?;
    start(ctx, &req, plan, a.foreground)
}

/// Serve `plan` (checked already, so a refusal was reported here with its exit code): in this
/// process with `--foreground`, else in a detached daemon, returning once it is ready. The
/// plan's lease is held until the daemon has answered (it takes its own first).
fn start(ctx: &Ctx, req: &daemon::Request, plan: daemon::Plan, foreground: bool) -> CmdResult<u8> {
    if foreground {
        return daemon::serve(ctx, req, plan, None);
    }
    let bundles = plan.bundles.clone();
    // The log is opened through the store's descriptors: never through a link.
    let log = daemon::log_path(&ctx.store, &req.mountpoint);
    let logf = plan
        .store
        .dirs()
        .open_append("log", &daemon::log_name(&req.mountpoint))
        .map_err(|e| Failure::from(e).context(format!("opening the log {}", log.display())))?;
    let exe = std::env::current_exe().map_err(|e| Failure::io("finding the ct executable", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--store")
        .arg(&ctx.store)
        .arg("--config-dir")
        .arg(&ctx.cfg.dir)
        .arg(daemon::DAEMON_COMMAND)
        .args(req.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logf))
        .env("NO_COLOR", "1")
        .env_remove("CT_PASSPHRASE");
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::io("starting the mount daemon", e))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::new(
                crate::exit::IO_ERROR,
                format!(
                    "the mount daemon did not report ready within {}s; it was stopped",
                    READY_TIMEOUT.as_secs()
                ),
            )
            .hint(format!("its log is {}", log.display())));
        }
    };
    let report: Option<DaemonReport> = serde_json::from_str(line.trim()).ok();
    match report {
        Some(DaemonReport::Ready { pid }) => {
            if let Err(f) = daemon::confirm_mounted(&req.mountpoint) {
                let _ = child.kill();
                let _ = child.wait();
                if mountinfo::at(&req.mountpoint).is_some() {
                    let _ = unmount_path(&req.mountpoint, true);
                }
                return Err(f);
            }
            // The daemon stays; reap nothing (it is in its own session and outlives us).
            std::mem::forget(child);
            report_mounted(ctx, req, &bundles, pid, &log);
            Ok(0)
        }
        Some(DaemonReport::Failed {
            code,
            message,
            hint,
        }) => {
            let _ = child.wait();
            let mut f = Failure::new(code, message);
            f.hint = hint;
            Err(f)
        }
        None => {
            let status = child.wait().ok();
            Err(Failure::new(
                crate::exit::IO_ERROR,
                format!(
                    "the mount daemon exited ({}) without mounting",
                    status.map_or("unknown status".into(), |s| s.to_string())
                ),
            )
            .hint(format!("its log is {}", log.display())))
        }
    }
}

pub fn report_mounted(
    ctx: &Ctx,
    req: &daemon::Request,
    bundles: &[MountedBundle],
    pid: u32,
    log: &Path,
) {
    let what = match (&req.label, bundles) {
        (Some(n), [b]) => format!("{n} {} ({})", b.version, b.digest),
        (Some(n), _) => n.clone(),
        (None, b) => format!("the store ({} bundle(s))", b.len()),
    };
    ctx.out.json_doc(&serde_json::json!({
        "ok": true, "mountpoint": req.mountpoint, "bundle": req.label, "kind": req.kind.as_str(),
        "bundle_digest": req.digest, "bundles": bundles,
        "pid": pid, "log": log, "allow_other": req.allow_other,
    }));
    ctx.out.line(format!(
        "{} {} at {} (read-only; every block is verified when read)",
        ctx.out.good("mounted"),
        ctx.out.bold(&what),
        req.mountpoint.display()
    ));
    ctx.out.line(format!(
        "  daemon pid {pid}, log {}; unmount with `ct umount {}`",
        log.display(),
        req.mountpoint.display()
    ));
}

/// `ct umount MOUNTPOINT`.
pub fn umount(ctx: &Ctx, a: UmountArgs) -> CmdResult<u8> {
    let mp = absolute(&a.mountpoint)?;
    let dirs = store_dirs(ctx)?;
    let reg = match &dirs {
        Some(d) => mounts::find(d, &mp)?,
        None => None,
    };
    let entry = mountinfo::at(&mp);
    match &entry {
        Some(m) if !m.is_cerro() => {
            return Err(Failure::usage(format!(
                "{} is a {} mount, not one of ct's; ct leaves it alone",
                mp.display(),
                m.fstype
            ))
            .hint("use umount(8) for mounts ct did not make"))
        }
        None if reg.is_none() => {
            return Err(Failure::usage(format!("{} is not mounted", mp.display()))
                .hint("`ct mounts` lists what ct has mounted"))
        }
        _ => {}
    }
    let was_broken = reg.as_ref().is_some_and(|r| !r.alive) && entry.is_some();
    if entry.is_some() {
        unmount_path(&mp, a.lazy)?;
    }
    // The daemon sees its session end and exits; wait for its registration lock to go.
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let mut reg = reg;
    while let (Some(r), Some(d)) = (&reg, &dirs) {
        if !r.alive {
            let _ = mounts::remove_stale(d, r);
            break;
        }
        if Instant::now() >= deadline {
            // Only a pid the kernel names as the holder of the registration's lock is the
            // mount's daemon; the pid written in the file is never believed on its own.
            match r.holder {
                Some(pid) if r.info.as_ref().is_ok_and(|i| i.pid == pid) => {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                _ => eprintln!(
                    "warning: the daemon of {} did not exit, and its registration names no process that holds it; nothing was signalled",
                    mp.display()
                ),
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        reg = mounts::find(d, &mp)?;
    }
    ctx.out
        .json_doc(&serde_json::json!({"ok": true, "unmounted": mp, "was_broken": was_broken}));
    ctx.out.line(format!(
        "{} {}{}",
        ctx.out.good("unmounted"),
        mp.display(),
        if was_broken {
            " (its daemon had died; the broken mount was cleaned up)"
        } else {
            ""
        }
    ));
    Ok(0)
}

fn unmount_path(mp: &Path, lazy: bool) -> CmdResult {
    use nix::mount::{umount2, MntFlags};
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    match umount2(mp, flags) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => Err(Failure::new(
            crate::exit::IO_ERROR,
            format!("{} is busy: a process is using a file in it", mp.display()),
        )
        .hint(format!(
            "stop what uses it (`fuser -vm {}`), or detach it now with `ct umount --lazy {}`",
            mp.display(),
            mp.display()
        ))),
        Err(nix::errno::Errno::EPERM) if !nix::unistd::geteuid().is_root() => {
            // Unprivileged: let fusermount3 do it (setuid root, checks the mount is ours).
            let mut c = Command::new("fusermount3");
            c.env_remove("CT_PASSPHRASE").arg("-u");
            if lazy {
                c.arg("-z");
            }
            let st = c
                .arg(mp)
                .status()
                .map_err(|e| Failure::io("running fusermount3", e))?;
            if st.success() {
                Ok(())
            } else {
                Err(Failure::new(
                    crate::exit::IO_ERROR,
                    format!("fusermount3 -u {} failed ({st})", mp.display()),
                ))
            }
        }
        Err(e) => Err(Failure::io(
            format!("unmounting {}", mp.display()),
            std::io::Error::from(e),
        )),
    }
}

/// The store's directories, when there is a store (`ct umount` and `ct mounts` work without).
fn store_dirs(ctx: &Ctx) -> CmdResult<Option<StoreDirs>> {
    if !ctx.store.exists() {
        return Ok(None);
    }
    StoreDirs::open(&ctx.store)
        .map(Some)
        .map_err(|e| Failure::from(e).context(format!("store {}", ctx.store.display())))
}

/// `ct mounts`.
pub fn list(ctx: &Ctx) -> CmdResult<u8> {
    let regs = match store_dirs(ctx)? {
        Some(d) => mounts::list(&d)?,
        None => vec![],
    };
    let table = mountinfo::read();
    let mut rows = Vec::new();
    for r in &regs {
        let Ok(info) = &r.info else {
            rows.push(
                serde_json::json!({"registration": r.path, "status": "unreadable",
                "error": r.info.as_ref().err().map(|e| e.to_string())}),
            );
            continue;
        };
        let mounted = table
            .iter()
            .any(|m| m.mountpoint == info.mountpoint && m.is_cerro());
        let status = match (r.alive, mounted) {
            (true, true) => "ok",
            (false, true) => "broken",
            (true, false) => "starting",
            (false, false) => "stale",
        };
        rows.push(serde_json::json!({
            "mountpoint": info.mountpoint, "status": status, "kind": info.kind,
            "bundles": info.bundles.iter().map(|b| b.names.first().cloned().unwrap_or_else(|| b.digest.to_string())).collect::<Vec<_>>(),
            "bundle_digests": info.bundles.iter().map(|b| b.digest).collect::<Vec<_>>(),
            "pid": info.pid, "log": info.log, "started_at": info.started_at,
            "allow_other": info.allow_other,
        }));
    }
    // Cerro mounts without a registration in this store (another store, or a lost file).
    for m in table.iter().filter(|m| m.is_cerro()) {
        if !rows
            .iter()
            .any(|r| r["mountpoint"] == serde_json::json!(m.mountpoint))
        {
            rows.push(
                serde_json::json!({"mountpoint": m.mountpoint, "status": "unregistered",
                "source": m.source}),
            );
        }
    }
    ctx.out
        .json_doc(&serde_json::json!({"ok": true, "store": ctx.store, "mounts": rows}));
    if rows.is_empty() {
        ctx.out
            .line("no mounts (mount a bundle with `ct mount BUNDLE MOUNTPOINT`)");
    }
    for r in &rows {
        let status = r["status"].as_str().unwrap_or("?");
        let shown = match status {
            "ok" => ctx.out.good(status),
            _ => ctx.out.bad(status),
        };
        let what = r["bundles"]
            .as_array()
            .map(|b| {
                b.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        ctx.out.line(format!(
            "{:<10} {:<40} {} {}",
            shown,
            r["mountpoint"].as_str().unwrap_or("?"),
            r["kind"].as_str().unwrap_or(""),
            what
        ));
        if status == "broken" {
            ctx.out.line(format!(
                "           its daemon died; clean it up with `ct umount {}`",
                r["mountpoint"].as_str().unwrap_or("?")
            ));
        }
    }
    Ok(0)
}
