//! Mount and serve verified bundles: plan (lease and verify), mount through FUSE, report ready,
//! serve until the mount is taken down; and start that as a detached daemon for `ct mount`.
//!
//! The mount daemon is what `ct mount` starts (as `ct __mount-daemon`, in its own session, its
//! log in the store's `log/`) or runs in the foreground. It is told a bundle *digest* (or, for
//! `ct store mount`, to show every named bundle), takes a lease, obtains each record through
//! `Store::verified` — bound to its digest, signatures, trust, policy, root record, re-checked
//! now — registers the mount, mounts, reports ready on its stdout, and serves until the mount
//! is taken down (`ct umount`, SIGTERM, SIGINT or SIGHUP). It never serves a record by name.

use crate::app::Kind;
use crate::ctx::Ctx;
use crate::exit::{CmdResult, Failure, IO_ERROR};
use crate::steps::report::{self, Heard};
use crate::steps::stored::{record_failure, Checks, Opened};
use cerro_core::rootfs::VerifiedTree;
use cerro_core::Sha256Digest;
use cerro_fuse::mountinfo;
use cerro_fuse::{MountOptions, StoreBundle, TreeRoot, VerifiedFs, View};
use cerro_store::mounts::{self, MountedBundle};
use cerro_store::{Lease, Store, Target};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The hidden subcommand that runs a detached daemon.
pub const DAEMON_COMMAND: &str = "__mount-daemon";
/// Readahead asked of the kernel for the mount (sysfs `read_ahead_kb`), see `cerro_fuse`.
const READAHEAD_KB: u32 = 1024;

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
    /// A serving process under a supervisor: have the kernel re-send its predecessor's requests.
    pub resend: bool,
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

    /// How the mount is made.
    pub fn mount_options(&self) -> MountOptions {
        let label = self.label.clone().unwrap_or_else(|| "store".into());
        MountOptions {
            allow_other: self.allow_other,
            suid: self.suid,
            threads: self.threads.unwrap_or_else(cerro_fuse::default_threads),
            fsname: format!("cerro:{label}"),
        }
    }

    pub fn from_args(a: &crate::app::DaemonArgs) -> Self {
        Self {
            kind: a.kind,
            digest: a.digest,
            label: a.label.clone(),
            mountpoint: a.mountpoint.clone(),
            allow_other: a.allow_other,
            suid: a.suid,
            threads: a.threads,
            policy: a.policy.clone(),
            resend: a.resend,
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

/// Mount `view` of `store` at `mountpoint` through FUSE, every block verified when it is read:
/// the one place a verified mount is made (the mount daemon, `ct mount --foreground`, `ct run`).
/// `events` hears what the filesystem reports (a block or node that failed verification…).
pub fn mount_verified(
    store: Arc<Store>,
    view: &View,
    mountpoint: &Path,
    opts: &MountOptions,
    events: cerro_fuse::EventSink,
) -> CmdResult<cerro_fuse::Mounted> {
    let fs = VerifiedFs::new(
        VerifiedTree::new(store),
        view,
        events.clone(),
        cerro_fuse::DEFAULT_CACHE_BYTES,
    );
    let mounted =
        cerro_fuse::mount(fs, mountpoint, opts).map_err(|e| mount_failure(mountpoint, e))?;
    raise_readahead(mountpoint, &events);
    Ok(mounted)
}

/// Why a mount could not be made, with what to check.
pub fn mount_failure(mountpoint: &Path, e: std::io::Error) -> Failure {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        "mounting needs root, or for other users fusermount3 (Debian's fuse3) and a mount point they own; `ct doctor` checks this host"
    } else if e.kind() == std::io::ErrorKind::NotFound {
        "is /dev/fuse there? (`modprobe fuse`; containers need --device /dev/fuse)"
    } else {
        "see `ct doctor`"
    };
    Failure::io(format!("mounting {}", mountpoint.display()), e).hint(hint)
}

/// Raise the mount's readahead (root only), or log why it stays at the kernel's default.
pub fn raise_readahead(mountpoint: &Path, events: &cerro_fuse::EventSink) {
    if let Err(e) = cerro_fuse::set_readahead_kb(mountpoint, READAHEAD_KB) {
        events(&format!(
            "note: readahead stays at the kernel's default ({e})"
        ));
    }
}

/// After the daemon said it is ready: the kernel lists a FUSE mount at `mp`.
pub fn confirm_mounted(mp: &Path) -> CmdResult {
    match cerro_fuse::mountinfo::at(mp) {
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

pub fn log_line(msg: &str) {
    eprintln!(
        "{} ct-mount[{}]: {msg}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        std::process::id()
    );
}

/// Mount `plan` and serve it until the mount ends. `detached` is `Some` in the daemon (report
/// readiness on stdout, then let go of it), `None` in the foreground (say so on the terminal).
/// The signals that end a mount (its daemon, or `ct mount --foreground`).
pub fn ending_signals() -> nix::sys::signal::SigSet {
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

/// Register the mount `req` makes in the store (`ct mounts`, `ct umount`), for as long as the
/// returned registration lives (its lock says the daemon is alive).
pub fn register_mount(
    ctx: &Ctx,
    req: &Request,
    store: &Store,
    bundles: &[MountedBundle],
) -> CmdResult<mounts::Registration> {
    Ok(mounts::register(
        store.dirs(),
        &mounts::MountInfo {
            format: mounts::MOUNT_FORMAT_V2.into(),
            mountpoint: req.mountpoint.clone(),
            pid: std::process::id(),
            kind: req.kind.as_str().into(),
            bundles: bundles.to_vec(),
            log: log_path(&ctx.store, &req.mountpoint),
            started_at: chrono::Utc::now().timestamp(),
            allow_other: req.allow_other,
        },
    )?)
}

/// Say on the terminal, and to a service manager, that a foreground mount answers.
pub fn report_foreground(ctx: &Ctx, req: &Request, bundles: &[MountedBundle]) {
    report_mounted(
        ctx,
        req,
        bundles,
        std::process::id(),
        Path::new("(this terminal)"),
    );
    ctx.out
        .line("  running in the foreground: Ctrl-C (or `ct umount`) unmounts");
    // Under systemd (Type=notify, tools/systemd/ct-mount@.service): the mount answers.
    sd_notify(&format!(
        "READY=1\nSTATUS=serving {}",
        req.mountpoint.display()
    ));
}

/// Tell `ct mount`, waiting on this daemon's stdout, that the mount answers; then let go of
/// stdout.
pub fn report_ready() {
    let line = serde_json::to_string(&DaemonReport::Ready {
        pid: std::process::id(),
    })
    .expect("serializes");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    drop(out);
    // Nobody reads our stdout any more: point it at /dev/null so a stray write can never fail
    // the daemon.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
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
    let registration = register_mount(ctx, req, &store, &bundles)?;
    let opts = req.mount_options();
    let mut mounted = mount_verified(store, &view, &req.mountpoint, &opts, Arc::new(log_line))?;
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
        Some(()) => report_ready(),
        None => report_foreground(ctx, req, &bundles),
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

/// Longest wait for a daemon to report its mount ready (verification of a large store view
/// included); a daemon that takes longer is killed and the mount refused.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The mount point as an absolute, normalised path, without touching it (a broken FUSE mount
/// cannot even be stat'ed).
pub fn absolute(p: &Path) -> CmdResult<PathBuf> {
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

/// What an ordinary user's mount needs, checked before anything is started: `fusermount3`,
/// a `/dev/fuse` this user may open (fusermount3 opens it as the user), and for `--allow-other`
/// the administrator's consent (`user_allow_other` in /etc/fuse.conf). Nothing for root.
pub fn check_unprivileged(allow_other: bool) -> CmdResult {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let helper = ["/usr/bin/fusermount3", "/bin/fusermount3"]
        .iter()
        .any(|p| Path::new(p).is_file());
    if !helper {
        return Err(Failure::new(
            IO_ERROR,
            "mounting without root needs fusermount3, which is not installed",
        )
        .hint("install Debian's fuse3 package (it installs fusermount3 setuid root)"));
    }
    use nix::unistd::{access, AccessFlags};
    if access("/dev/fuse", AccessFlags::R_OK | AccessFlags::W_OK).is_err() {
        return Err(Failure::new(
            IO_ERROR,
            "/dev/fuse is not open to this user, and fusermount3 opens it as the user",
        )
        .hint("the kernel's own mode for /dev/fuse is 0666; as root: `chmod 0666 /dev/fuse` (ct's tools/setup does it), or mount as root"));
    }
    if allow_other
        && !user_allow_other(&std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default())
    {
        return Err(Failure::usage(
            "--allow-other without root needs the administrator's consent: /etc/fuse.conf has no user_allow_other",
        )
        .hint("as root, add a line `user_allow_other` to /etc/fuse.conf, or mount without --allow-other"));
    }
    Ok(())
}

/// Whether /etc/fuse.conf's text allows ordinary users `allow_other`.
pub fn user_allow_other(conf: &str) -> bool {
    conf.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .any(|l| l == "user_allow_other")
}

/// Check that `mp` can be mounted on: an empty-or-not directory that is not mounted on already
/// (created when missing). Returns its canonical path.
pub fn prepare_mountpoint(mp: &Path) -> CmdResult<PathBuf> {
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
    if std::fs::symlink_metadata(&mp).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Failure::usage(format!(
            "{} is a symbolic link; ct mounts on a directory, never through a link",
            mp.display()
        ))
        .hint("give the directory the link points to, if that is where you mean to mount"));
    }
    match std::fs::metadata(&mp) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(Failure::usage(format!(
                "{} is not a directory",
                mp.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_mountpoint(&mp)?,
        Err(e) => {
            return Err(Failure::io(
                format!("checking the mount point {}", mp.display()),
                e,
            ))
        }
    }
    let mp = std::fs::canonicalize(&mp)
        .map_err(|e| Failure::io(format!("resolving {}", mp.display()), e))?;
    if nix::unistd::geteuid().is_root() {
        check_not_swappable(&mp)?;
    }
    Ok(mp)
}

/// Create the missing directories of the absolute path `mp`, one at a time beneath its nearest
/// existing ancestor: each made exclusively (mode 0755) and opened without following a link, so
/// a link planted meanwhile is an error, never a place to create in. As root the ancestor is
/// checked first ([`check_not_swappable`]): nothing is created inside a directory another user
/// could change.
fn create_mountpoint(mp: &Path) -> CmdResult {
    use rustix::fs::{mkdirat, openat, Mode, OFlags, CWD};
    let mut base = mp;
    let mut missing = Vec::new();
    while std::fs::symlink_metadata(base).is_err() {
        missing.push(base.file_name().ok_or_else(|| {
            Failure::usage(format!("{}: not a path ct can create", mp.display()))
        })?);
        base = base.parent().unwrap_or(Path::new("/"));
    }
    let base = std::fs::canonicalize(base)
        .map_err(|e| Failure::io(format!("resolving {}", base.display()), e))?;
    if nix::unistd::geteuid().is_root() {
        check_not_swappable(&base)?;
    }
    let failed = |e: rustix::io::Errno| {
        Failure::io(
            format!("creating the mount point {}", mp.display()),
            e.into(),
        )
    };
    let dir_flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = openat(CWD, &base, dir_flags, Mode::empty()).map_err(failed)?;
    for name in missing.iter().rev() {
        mkdirat(&dir, *name, Mode::from_raw_mode(0o755)).map_err(failed)?;
        dir = openat(&dir, *name, dir_flags, Mode::empty()).map_err(failed)?;
    }
    Ok(())
}

/// The mount is made by path, later, by the daemon: as root, no other user may be able to put
/// a link (or another directory) in the place of the mount point or of any directory above it
/// meanwhile, or they would choose where root mounts. So every directory on the way is owned
/// by root or the caller, and one that others can write to is sticky with the next entry
/// owned by root or the caller (as `/tmp/mnt` made by root is).
fn check_not_swappable(mp: &Path) -> CmdResult {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let ours = |uid: u32| uid == 0 || uid == me;
    let mut child: Option<(PathBuf, u32)> = None;
    for dir in mp.ancestors() {
        let md = std::fs::symlink_metadata(dir)
            .map_err(|e| Failure::io(format!("checking {}", dir.display()), e))?;
        let others_write = md.mode() & 0o022 != 0;
        let sticky = md.mode() & 0o1000 != 0;
        let unsafe_for_child = match &child {
            Some((_, child_uid)) => {
                !ours(md.uid()) || (others_write && !(sticky && ours(*child_uid)))
            }
            None => !ours(md.uid()),
        };
        if unsafe_for_child {
            let what = child.map_or(dir.to_path_buf(), |(p, _)| p);
            return Err(Failure::usage(format!(
                "mount point {}: {} could be replaced by another user while ct mounts it",
                mp.display(),
                what.display()
            ))
            .hint("mount on a directory that only root (or you) can change, all the way up"));
        }
        child = Some((dir.to_path_buf(), md.uid()));
    }
    Ok(())
}

/// Serve `plan` (checked already, so a refusal was reported here with its exit code): in this
/// process with `--foreground`, else in a detached daemon, returning once it is ready. The
/// plan's lease is held until the daemon has answered (it takes its own first).
pub fn start(ctx: &Ctx, req: &Request, plan: Plan, foreground: bool) -> CmdResult<u8> {
    if foreground {
        if crate::steps::supervise::applies(req) {
            return crate::steps::supervise::supervise(ctx, req, plan, false);
        }
        return serve(ctx, req, plan, None);
    }
    let bundles = plan.bundles.clone();
    // The log is opened through the store's descriptors: never through a link.
    let log = log_path(&ctx.store, &req.mountpoint);
    let logf = plan
        .store
        .dirs()
        .open_append("log", &log_name(&req.mountpoint))
        .map_err(|e| Failure::from(e).context(format!("opening the log {}", log.display())))?;
    let exe = std::env::current_exe().map_err(|e| Failure::io("finding the ct executable", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--store")
        .arg(&ctx.store)
        .arg("--config-dir")
        .arg(&ctx.cfg.dir)
        .arg(DAEMON_COMMAND)
        .args(req.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logf))
        .env("NO_COLOR", "1")
        .env_remove("CT_PASSPHRASE");
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::io("starting the mount daemon", e))?;
    let report = match report::await_report::<DaemonReport>(&mut child, READY_TIMEOUT) {
        Heard::Report(r) => Some(r),
        Heard::Nothing => None,
        Heard::TimedOut => {
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
    match report {
        Some(DaemonReport::Ready { pid }) => {
            if let Err(f) = confirm_mounted(&req.mountpoint) {
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

/// Tell the service manager something (`READY=1`…), as sd_notify(3) does: one datagram to
/// `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`). Nothing when it is
/// not set; a failure is logged, not fatal (the mount serves either way).
pub fn sd_notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| {
        let target = match addr.as_bytes().strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&addr)?,
        };
        sock.send_to_addr(state.as_bytes(), &target)
    });
    if let Err(e) = sent {
        log_line(&format!("notifying the service manager: {e}"));
    }
}

/// Say what was mounted, where, and how to take it down.
pub fn report_mounted(ctx: &Ctx, req: &Request, bundles: &[MountedBundle], pid: u32, log: &Path) {
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

/// Unmount `mp` (lazily: detach it now, even while busy); without root, through fusermount3.
pub fn unmount_path(mp: &Path, lazy: bool) -> CmdResult {
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
