//! `ct mount`, `ct store mount`, `ct umount` and `ct mounts`: verify, import if needed, start
//! the mount daemon and return once the mount answers; end mounts cleanly, also those whose
//! daemon died. What serves a mount, and starts its daemon, is `steps::serve`.

use super::Ctx;
use crate::app::{Kind, MountArgs, StoreMountArgs, UmountArgs};
use crate::exit::{CmdResult, Failure};
use crate::steps::serve::{
    self as daemon, absolute, check_unprivileged, prepare_mountpoint, start, unmount_path,
};
use crate::steps::stored::{open_bundle, Checks};
use cerro_fuse::mountinfo;
use cerro_store::dirs::StoreDirs;
use cerro_store::mounts;
use std::time::{Duration, Instant};

/// `ct mount BUNDLE|NAME MOUNTPOINT`: the bundle is resolved (a file verified and imported if
/// needed) and verified here, once, so a refusal has its exit code; the daemon is then told the
/// bundle's digest, and serves exactly that bundle after verifying it again itself.
pub fn mount(ctx: &Ctx, a: MountArgs) -> CmdResult<u8> {
    if a.foreground {
        // Before the store starts any thread: this process will serve the mount.
        daemon::block_ending_signals()?;
    }
    check_unprivileged(a.allow_other)?;
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
        resend: false,
    };
    // The plan keeps this lease until the daemon has taken its own.
    start(ctx, &req, daemon::plan_opened(opened)?, a.foreground)
}

/// `ct store mount MOUNTPOINT`.
pub fn store_mount(ctx: &Ctx, a: StoreMountArgs) -> CmdResult<u8> {
    if a.foreground {
        daemon::block_ending_signals()?;
    }
    check_unprivileged(a.allow_other)?;
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
        resend: false,
    };
    // Checked here too, so that what is left out is reported on this terminal.
    let plan = daemon::plan(ctx, &req)?;
    start(ctx, &req, plan, a.foreground)
}

/// Longest wait for a daemon to exit after its mount was taken down.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

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
