//! The mount daemon: what `ct mount` starts (as `ct __mount-daemon`, in its own session, its
//! log in the store's `log/`) or runs in the foreground. It is told a bundle *digest* (or, for
//! `ct store mount`, to show every named bundle), takes a lease, obtains each record through
//! `Store::verified` — bound to its digest, signatures, trust, policy, root record, re-checked
//! now — registers the mount, mounts, reports ready on its stdout, and serves until the mount
//! is taken down (`ct umount`, SIGTERM, SIGINT or SIGHUP). It never serves a record by name.

use super::stored::{record_failure, Checks, Opened};
use super::Ctx;
use crate::app::DaemonArgs;
use crate::exit::{CmdResult, Failure, IO_ERROR};
use cerro_core::rootfs::VerifiedTree;
use cerro_core::Sha256Digest;
use cerro_fuse::{MountOptions, StoreBundle, TreeRoot, VerifiedFs, View};
use cerro_store::mounts::{self, MountedBundle};
use cerro_store::{Lease, Store, Target};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The hidden subcommand that runs a detached daemon.
pub const DAEMON_COMMAND: &str = "__mount-daemon";
/// Readahead asked of the kernel for the mount (sysfs `read_ahead_kb`), see `cerro_fuse`.
const READAHEAD_KB: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One bundle's rootfs.
    Bundle,
    /// The whole store.
    Store,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bundle => "bundle",
            Kind::Store => "store",
        }
    }
}

/// What to mount, and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    /// The bundle to serve (kind bundle): exactly this digest, nothing else.
    pub digest: Option<Sha256Digest>,
    /// The name it is shown and logged under.
    pub label: Option<String>,
    pub mountpoint: PathBuf,
    pub allow_other: bool,
    pub suid: bool,
    pub threads: Option<usize>,
    pub policy: Option<PathBuf>,
}

impl Request {
    /// The daemon's arguments for this request.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--kind".into(), self.kind.as_str().into()];
        if let Some(d) = &self.digest {
            a.extend(["--digest".into(), d.to_string().into()]);
        }
        if let Some(n) = &self.label {
            a.extend(["--label".into(), n.into()]);
        }
        a.extend(["--mountpoint".into(), self.mountpoint.clone().into()]);
        if self.allow_other {
            a.push("--allow-other".into());
        }
        if self.suid {
            a.push("--suid".into());
        }
        if let Some(t) = self.threads {
            a.extend(["--threads".into(), t.to_string().into()]);
        }
        if let Some(p) = &self.policy {
            a.extend(["--policy".into(), p.clone().into()]);
        }
        a
    }

    pub fn from_args(a: &DaemonArgs) -> Self {
        Self {
            kind: a.kind,
            digest: a.digest,
            label: a.label.clone(),
            mountpoint: a.mountpoint.clone(),
            allow_other: a.allow_other,
            suid: a.suid,
            threads: a.threads,
            policy: a.policy.clone(),
        }
    }
}

/// The one line a detached daemon writes on its stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DaemonReport {
    Ready {
        pid: u32,
    },
    Failed {
        code: u8,
        message: String,
        hint: Option<String>,
    },
}

/// What will be served: verified bundles, the view made of them, and the lease that keeps them.
pub struct Plan {
    pub store: Arc<Store>,
    pub lease: Lease,
    pub view: View,
    pub bundles: Vec<MountedBundle>,
}

/// Where a mount's daemon logs (file name under the store's `log/`).
pub fn log_name(mountpoint: &Path) -> String {
    format!("mount-{}.log", mounts::id_for(mountpoint))
}

/// Where a mount's daemon logs.
pub fn log_path(store: &Path, mountpoint: &Path) -> PathBuf {
    store.join("log").join(log_name(mountpoint))
}

/// Lease, resolve and verify what `req` asks for. Nothing is mounted unless this passes (for a
/// store view: bundles that fail are left out with a warning, never served).
pub fn plan(ctx: &Ctx, req: &Request) -> CmdResult<Plan> {
    if !ctx.store.join("db").join("CURRENT").exists() {
        return Err(
            Failure::usage(format!("there is no store at {}", ctx.store.display())).hint(
                "import a bundle first (`ct import BUNDLE.ctp`), or point --store at your store",
            ),
        );
    }
    let checks = Checks::load(ctx, req.policy.as_deref(), false)?;
    let target = match (req.kind, req.digest) {
        (Kind::Bundle, Some(d)) => Target::Digest(d),
        (Kind::Bundle, None) => return Err(Failure::usage("no bundle digest given")),
        (Kind::Store, _) => Target::AllNames,
    };
    let purpose = format!("mount {}", req.mountpoint.display());
    let (store, lease) = Store::open_leased(&ctx.store, &purpose, target)
        .map_err(|e| Failure::from(e).context(format!("store {}", ctx.store.display())))?;
    for w in lease.skipped() {
        eprintln!("warning: {w} — left out of the store view");
    }
    let mut bundles = Vec::new();
    let view = match req.kind {
        Kind::Bundle => {
            let d = req.digest.expect("checked above");
            let v = store
                .verified(&lease, &d, &checks.ctx())
                .map_err(record_failure)?;
            let names = store.names_of(&d).unwrap_or_default();
            let label = req
                .label
                .clone()
                .unwrap_or_else(|| v.manifest().package.name.clone());
            bundles.push(MountedBundle {
                digest: d,
                names,
                version: v.manifest().package.version.clone(),
            });
            View::Rootfs(TreeRoot::new(label, &v))
        }
        Kind::Store => {
            let mut shown = Vec::new();
            for d in lease.digests() {
                let names: Vec<String> = lease
                    .names()
                    .iter()
                    .filter(|(_, x)| x == d)
                    .map(|(n, _)| n.clone())
                    .collect();
                match store.verified(&lease, d, &checks.ctx()) {
                    Ok(v) => {
                        bundles.push(MountedBundle {
                            digest: *d,
                            names: names.clone(),
                            version: v.manifest().package.version.clone(),
                        });
                        shown.push(StoreBundle::new(names, v));
                    }
                    Err(e) => {
                        let f = record_failure(e);
                        eprintln!(
                            "warning: bundle {} ({d}): {} — left out of the store view{}",
                            names.join(", "),
                            f.message,
                            f.hint.map(|h| format!(" ({h})")).unwrap_or_default()
                        );
                    }
                }
            }
            View::Store(shown)
        }
    };
    Ok(Plan {
        store: Arc::new(store),
        lease,
        view,
        bundles,
    })
}

/// The plan for a bundle `ct mount` has already opened and verified: its store, lease and
/// verified record serve as they are (the command does not open and verify it a second time;
/// the daemon it starts does so once, itself).
pub fn plan_opened(opened: Opened) -> CmdResult<Plan> {
    let label = opened.label();
    let d = opened.bundle.digest();
    let names = opened
        .store
        .names_of(&d)
        .map_err(|e| Failure::from(e).context("reading the store's names"))?;
    let bundles = vec![MountedBundle {
        digest: d,
        names,
        version: opened.bundle.manifest().package.version.clone(),
    }];
    let view = View::Rootfs(TreeRoot::new(label, &opened.bundle));
    let (store, lease) = opened.into_store_and_lease();
    Ok(Plan {
        store,
        lease,
        view,
        bundles,
    })
}

/// After the daemon said it is ready: the kernel lists a FUSE mount at `mp`.
pub fn confirm_mounted(mp: &Path) -> CmdResult {
    match crate::mountinfo::at(mp) {
        Some(m) if m.is_cerro() => Ok(()),
        _ => Err(Failure::new(
            IO_ERROR,
            format!(
                "the mount daemon reported ready, but {} is not mounted",
                mp.display()
            ),
        )),
    }
}

fn log_line(msg: &str) {
    eprintln!(
        "{} ct-mount[{}]: {msg}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        std::process::id()
    );
}

/// Give up, before any thread exists (capabilities are per thread, and threads inherit them),
/// every capability the daemon does not need: it keeps CAP_SYS_ADMIN, to mount and unmount,
/// and — only when the store is not owned by this user — the file-access overrides it needs to
/// read and lease in someone else's store. No new privileges can be gained afterwards (no
/// setuid helper, no file capabilities), and the bounding set is emptied of the rest. Parsing
/// the attacker-writable store then happens without CAP_SYS_MODULE, CAP_SYS_PTRACE,
/// CAP_SETUID, CAP_NET_ADMIN, CAP_CHOWN and the like. Returns what it kept.
fn drop_capabilities(store: &Path) -> Result<Vec<String>, String> {
    use caps::{CapSet, Capability, CapsHashSet};
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(vec![]);
    }
    let mut keep: CapsHashSet = [Capability::CAP_SYS_ADMIN].into_iter().collect();
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
    match drop_capabilities(&ctx.store) {
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
    let result = plan(ctx, &req).and_then(|p| serve(ctx, &req, p, Some(())));
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

/// Mount `plan` and serve it until the mount ends. `detached` is `Some` in the daemon (report
/// readiness on stdout, then let go of it), `None` in the foreground (say so on the terminal).
/// The signals that end a mount (its daemon, or `ct mount --foreground`).
fn ending_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
}

/// Block the ending signals in this thread, and so in every thread started after: one thread
/// waits for them and unmounts, so the mount is never left broken. Called before anything
/// starts a thread (RocksDB starts its own when the store is opened; a signal delivered to one
/// of those would end the process with the mount still there).
pub fn block_ending_signals() -> CmdResult {
    ending_signals()
        .thread_block()
        .map_err(|e| Failure::io("blocking signals", std::io::Error::from(e)))
}

pub fn serve(ctx: &Ctx, req: &Request, plan: Plan, detached: Option<()>) -> CmdResult<u8> {
    block_ending_signals()?;
    let signals = ending_signals();

    let Plan {
        store,
        lease,
        view,
        bundles,
    } = plan;
    let label = req.label.clone().unwrap_or_else(|| "store".into());
    let registration = mounts::register(
        store.dirs(),
        &mounts::MountInfo {
            format: mounts::MOUNT_FORMAT_V2.into(),
            mountpoint: req.mountpoint.clone(),
            pid: std::process::id(),
            kind: req.kind.as_str().into(),
            bundles: bundles.clone(),
            log: log_path(&ctx.store, &req.mountpoint),
            started_at: chrono::Utc::now().timestamp(),
            allow_other: req.allow_other,
        },
    )?;
    let events: cerro_fuse::EventSink = Arc::new(|m: &str| log_line(m));
    let fs = VerifiedFs::new(
        VerifiedTree::new(store),
        &view,
        events,
        cerro_fuse::DEFAULT_CACHE_BYTES,
    );
    let opts = MountOptions {
        allow_other: req.allow_other,
        suid: req.suid,
        threads: req.threads.unwrap_or_else(cerro_fuse::default_threads),
        fsname: format!("cerro:{label}"),
    };
    let mut mounted = cerro_fuse::mount(fs, &req.mountpoint, &opts).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            "mounting needs root, or fusermount3 (Debian's fuse3) for other users"
        } else if e.kind() == std::io::ErrorKind::NotFound {
            "is /dev/fuse there? (`modprobe fuse`; containers need --device /dev/fuse)"
        } else {
            "see `ct doctor`"
        };
        Failure::io(format!("mounting {}", req.mountpoint.display()), e).hint(hint)
    })?;
    if let Err(e) = cerro_fuse::set_readahead_kb(&req.mountpoint, READAHEAD_KB) {
        log_line(&format!(
            "note: readahead stays at the kernel's default ({e})"
        ));
    }
    log_line(&format!(
        "mounted {label} at {} ({} threads{})",
        req.mountpoint.display(),
        opts.threads,
        if opts.allow_other {
            ", allow_other"
        } else {
            ""
        }
    ));
    match detached {
        Some(()) => {
            let line = serde_json::to_string(&DaemonReport::Ready {
                pid: std::process::id(),
            })
            .expect("serializes");
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|_| out.flush());
            drop(out);
            // Nobody reads our stdout any more: point it at /dev/null so a stray write can
            // never fail the daemon.
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stdout(&null);
            }
        }
        None => {
            super::mount::report_mounted(
                ctx,
                req,
                &bundles,
                std::process::id(),
                Path::new("(this terminal)"),
            );
            ctx.out
                .line("  running in the foreground: Ctrl-C (or `ct umount`) unmounts");
        }
    }
    if let Some(mut un) = mounted.take_unmounter() {
        let mp = req.mountpoint.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Ok(sig) = signals.wait() {
                    log_line(&format!("{sig:?}: unmounting {}", mp.display()));
                    if let Err(e) = un.unmount() {
                        log_line(&format!("unmounting {}: {e}", mp.display()));
                    }
                }
            })
            .map_err(|e| Failure::io("starting the signal thread", e))?;
    }
    let result = mounted.wait();
    drop(registration);
    drop(lease);
    match result {
        Ok(()) => {
            log_line(&format!("unmounted {}", req.mountpoint.display()));
            Ok(0)
        }
        Err(e) => {
            log_line(&format!("the FUSE session ended with an error: {e}"));
            Err(Failure::io(
                format!("serving {}", req.mountpoint.display()),
                e,
            ))
        }
    }
}
