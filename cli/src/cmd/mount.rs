//! `ct mount`, `ct store mount`, `ct umount` and `ct mounts`: verify, import if needed, start
//! the mount daemon and return once the mount answers; end mounts cleanly, also those whose
//! daemon died. The daemon itself (what serves the mount) is `super::daemon`.

use super::daemon::{self, DaemonReport, Kind};
use super::store::import_bundle_named;
use super::Ctx;
use crate::app::{BundleSource, MountArgs, StoreMountArgs, UmountArgs};
use crate::exit::{CmdResult, Failure};
use crate::mountinfo;
use cerro_store::mounts;
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

/// `ct mount BUNDLE|NAME MOUNTPOINT`.
pub fn mount(ctx: &Ctx, a: MountArgs) -> CmdResult<u8> {
    let mp = prepare_mountpoint(&a.mountpoint)?;
    let name = resolve_bundle(ctx, &a.source)?;
    start(
        ctx,
        &daemon::Request {
            kind: Kind::Bundle,
            name: Some(name),
            mountpoint: mp,
            allow_other: a.allow_other,
            suid: false,
            threads: a.threads,
            policy: a.source.policy.clone(),
        },
        a.foreground,
    )
}

/// The store name of `bundle`: a .ctp file is verified and imported (its verify exit code if
/// it fails), anything else is taken as a name in the store.
pub fn resolve_bundle(ctx: &Ctx, src: &BundleSource) -> CmdResult<String> {
    let (bundle, name, policy) = (&src.bundle, src.name.as_deref(), src.policy.as_deref());
    let target = Path::new(bundle);
    let name = if target.is_file() {
        // A bundle file: verify it and import it (nothing happens if the store has it already).
        let quiet = ctx.with_output(crate::output::Output {
            json: false,
            quiet: ctx.out.quiet || ctx.out.json,
            ..ctx.out.clone()
        });
        match import_bundle_named(&quiet, target, name, policy)? {
            Ok(name) => name,
            Err(code) => {
                return Err(Failure::new(
                    code,
                    format!("{} did not verify; nothing was mounted", target.display()),
                )
                .hint(format!(
                    "`ct verify {}` shows the full report",
                    target.display()
                )))
            }
        }
    } else if bundle.contains('/') || bundle.ends_with(".ctp") {
        return Err(Failure::usage(format!(
            "{} is not a bundle file (and not a bundle name in the store)",
            bundle
        ))
        .hint("check the path, or see `ct store ls` for the names in the store"));
    } else {
        bundle.to_string()
    };
    Ok(name)
}

/// `ct store mount MOUNTPOINT`.
pub fn store_mount(ctx: &Ctx, a: StoreMountArgs) -> CmdResult<u8> {
    let mp = prepare_mountpoint(&a.mountpoint)?;
    start(
        ctx,
        &daemon::Request {
            kind: Kind::Store,
            name: None,
            mountpoint: mp,
            allow_other: a.allow_other,
            suid: false,
            threads: a.threads,
            policy: a.policy.clone(),
        },
        a.foreground,
    )
}

/// Check what will be mounted (so a refusal is reported here, with its exit code), then run
/// the daemon: in this process with `--foreground`, else detached, returning once it is ready.
fn start(ctx: &Ctx, req: &daemon::Request, foreground: bool) -> CmdResult<u8> {
    let plan = daemon::plan(ctx, req)?;
    if foreground {
        return daemon::serve(ctx, req, plan, None);
    }
    drop(plan);
    let exe = std::env::current_exe().map_err(|e| Failure::io("finding the ct executable", e))?;
    let log = daemon::log_path(&ctx.store, &req.mountpoint);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::io(format!("creating {}", dir.display()), e))?;
    }
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| Failure::io(format!("opening the log {}", log.display()), e))?;
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
            report_mounted(ctx, req, pid, &log);
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

pub fn report_mounted(ctx: &Ctx, req: &daemon::Request, pid: u32, log: &Path) {
    let what = match &req.name {
        Some(n) => n.clone(),
        None => "the store".to_string(),
    };
    ctx.out.json_doc(&serde_json::json!({
        "ok": true, "mountpoint": req.mountpoint, "bundle": req.name, "kind": req.kind.as_str(),
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
    let reg = mounts::find(&ctx.store, &mp)?;
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
    while let Some(r) = &reg {
        if !r.alive {
            let _ = mounts::remove_stale(r);
            break;
        }
        if Instant::now() >= deadline {
            if let Ok(info) = &r.info {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(info.pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        reg = mounts::find(&ctx.store, &mp)?;
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

/// `ct mounts`.
pub fn list(ctx: &Ctx) -> CmdResult<u8> {
    let regs = mounts::list(&ctx.store)?;
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
            "bundles": info.records.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
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
