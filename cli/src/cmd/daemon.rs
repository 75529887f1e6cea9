//! `ct __mount-daemon`, the hidden command `ct mount` starts: in its own session, it gives up
//! every capability it does not need, then plans and mounts, and reports ready — or why not —
//! on its stdout. A bundle mount is served by processes it supervises and replaces when they
//! die (`steps::supervise`; each is this command with `--supervisor`); a store view is served
//! by the daemon itself (`steps::serve`).

use crate::app::DaemonArgs;
use crate::ctx::Ctx;
use crate::exit::{CmdResult, Failure, IO_ERROR};
use crate::steps::serve::{block_ending_signals, log_line, plan, serve, DaemonReport, Request};
use crate::steps::supervise;
use std::path::Path;

/// Give up, before any thread exists (capabilities are per thread, and threads inherit them),
/// every capability the daemon does not need: it keeps CAP_SYS_ADMIN, to mount and unmount,
/// and — only when the store is not owned by this user — the file-access overrides it needs to
/// read and lease in someone else's store. No new privileges can be gained afterwards (no
/// setuid helper, no file capabilities), and the bounding set is emptied of the rest. Parsing
/// the attacker-writable store then happens without CAP_SYS_MODULE, CAP_SYS_PTRACE,
/// CAP_SETUID, CAP_NET_ADMIN, CAP_CHOWN and the like. Returns what it kept.
/// A serving process under a supervisor (`mount: false`) keeps not even CAP_SYS_ADMIN: it
/// mounts nothing.
fn drop_capabilities(store: &Path, mount: bool) -> Result<Vec<String>, String> {
    use caps::{CapSet, Capability, CapsHashSet};
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(vec![]);
    }
    let mut keep = CapsHashSet::new();
    if mount {
        keep.insert(Capability::CAP_SYS_ADMIN);
    }
    let owner = std::fs::metadata(store).map(|m| m.uid()).unwrap_or(0);
    if owner != 0 {
        keep.extend([
            Capability::CAP_DAC_OVERRIDE,
            Capability::CAP_DAC_READ_SEARCH,
        ]);
    }
    let e = |what: &str, err: caps::errors::CapsError| format!("{what}: {err}");
    for c in caps::all() {
        if !keep.contains(&c) {
            // Unknown to this kernel: nothing to drop.
            let _ = caps::drop(None, CapSet::Bounding, c);
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|err| e("clearing ambient capabilities", err))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|err| e("clearing inheritable capabilities", err))?;
    let have = caps::read(None, CapSet::Permitted).map_err(|err| e("reading capabilities", err))?;
    let kept: CapsHashSet = have.intersection(&keep).cloned().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|err| e("setting capabilities", err))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|err| e("setting capabilities", err))?;
    nix::sys::prctl::set_no_new_privs().map_err(|err| format!("no_new_privs: {err}"))?;
    let mut names: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
    names.sort();
    Ok(names)
}

/// `ct __mount-daemon …`: detach, give up privileges, check, mount, report, serve.
pub fn daemon_main(ctx: &Ctx, a: DaemonArgs) -> CmdResult<u8> {
    // Its own session: no terminal signals from the shell that ran `ct mount`.
    let _ = nix::unistd::setsid();
    block_ending_signals()?;
    match drop_capabilities(&ctx.store, a.supervisor.is_none()) {
        Ok(kept) if !kept.is_empty() => {
            log_line(&format!("capabilities kept: {}", kept.join(", ")))
        }
        Ok(_) => {}
        Err(e) => {
            let f = Failure::new(IO_ERROR, format!("giving up capabilities: {e}"));
            log_line(&format!("not mounted: {}", f.message));
            let report = DaemonReport::Failed {
                code: f.code,
                message: f.message.clone(),
                hint: None,
            };
            println!("{}", serde_json::to_string(&report).expect("serializes"));
            return Err(f);
        }
    }
    let req = Request::from_args(&a);
    let result = if let Some(pid) = a.supervisor {
        supervise::serve_child(ctx, &req, pid)
    } else if supervise::applies(&req) {
        plan(ctx, &req).and_then(|p| supervise::supervise(ctx, &req, p, true))
    } else {
        plan(ctx, &req).and_then(|p| serve(ctx, &req, p, Some(())))
    };
    if a.supervisor.is_some() {
        // A serving process reports to its supervisor, which logs; its stdout is not read.
        if let Err(f) = &result {
            log_line(&format!("not serving: {}", f.message));
        }
        return result;
    }
    if let Err(f) = &result {
        log_line(&format!("not mounted: {}", f.message));
        let report = DaemonReport::Failed {
            code: f.code,
            message: f.message.clone(),
            hint: f.hint.clone(),
        };
        println!("{}", serde_json::to_string(&report).expect("serializes"));
    }
    result
}
