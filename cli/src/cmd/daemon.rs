//! The mount daemon: what `ct mount` starts (as `ct __mount-daemon`, in its own session, its
//! log in the store's `log/`) or runs in the foreground. It checks what it serves itself — each
//! bundle record's signatures, trust and policy, and its root record against the signed
//! manifest — registers the mount (so `gc` keeps what it reads), mounts, reports ready on its
//! stdout, and serves until the mount is taken down (`ct umount`, SIGTERM, SIGINT or SIGHUP).

use super::verify::load_policy;
use super::Ctx;
use crate::app::DaemonArgs;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, IO_ERROR};
use cerro_core::rootfs::VerifiedTree;
use cerro_core::verify::{verify_signed_manifest, VerifyContext};
use cerro_fuse::{MountOptions, StoreBundle, TreeRoot, VerifiedFs, View};
use cerro_store::db::bundles::BundleRecord;
use cerro_store::{mounts, walk, Store};
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
    pub name: Option<String>,
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
        if let Some(n) = &self.name {
            a.extend(["--name".into(), n.into()]);
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
            name: a.name.clone(),
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

/// What will be served: checked records and the view made of them.
pub struct Plan {
    pub store: Store,
    pub view: View,
    pub records: Vec<BundleRecord>,
}

/// Where a mount's daemon logs.
pub fn log_path(store: &Path, mountpoint: &Path) -> PathBuf {
    store
        .join("log")
        .join(format!("mount-{}.log", mounts::id_for(mountpoint)))
}

/// Check each record to be served: signatures, trust, policy, and its root record against the
/// signed manifest. Nothing is mounted unless this passes.
pub fn plan(ctx: &Ctx, req: &Request) -> CmdResult<Plan> {
    plan_with(ctx, req, true)
}

/// [`plan`], with the signature, trust and policy checks skipped when `verify` is false (`ct run
/// --no-verify`). The root record is checked against the manifest either way, and every block
/// below it is still verified when read.
pub fn plan_with(ctx: &Ctx, req: &Request, verify: bool) -> CmdResult<Plan> {
    if !ctx.store.join("db").join("CURRENT").exists() {
        return Err(
            Failure::usage(format!("there is no store at {}", ctx.store.display())).hint(
                "import a bundle first (`ct import BUNDLE.ctp`), or point --store at your store",
            ),
        );
    }
    let store = Store::open_reader(&ctx.store)
        .map_err(|e| Failure::from(e).context(format!("store {}", ctx.store.display())))?;
    let policy = load_policy(ctx, req.policy.as_deref())?;
    let trust = ctx.cfg.trust_lookup()?;
    let vctx = VerifyContext {
        trust: &trust,
        policy: policy.as_ref().map(|(_, p)| p),
        now: chrono::Utc::now(),
    };
    let candidates: Vec<BundleRecord> = match (req.kind, &req.name) {
        (Kind::Bundle, Some(name)) => vec![store.bundle(name)?],
        (Kind::Bundle, None) => return Err(Failure::usage("no bundle name given")),
        (Kind::Store, _) => {
            let mut v = Vec::new();
            for (name, r) in store.bundles()? {
                match r {
                    Ok(r) => v.push(r),
                    Err(e) => eprintln!("warning: bundle {name} left out of the store view: {e}"),
                }
            }
            v
        }
    };
    let mut records = Vec::new();
    let mut bundles = Vec::new();
    for rec in candidates {
        let sigs = rec
            .signatures
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        let failure = if verify {
            verify_signed_manifest(rec.manifest.as_bytes(), &sigs, &vctx).failure
        } else {
            None
        };
        let checked = match failure {
            Some(f) => Err(Failure::new(
                f.exit_code,
                format!("bundle {} in the store: {}", rec.name, f.message),
            )
            .hint(f.hint)),
            None => walk::record_roots(&rec).map_err(|e| {
                Failure::new(HASH_MISMATCH, e.to_string())
                    .hint("run `ct store fsck`, then import the bundle again")
            }),
        };
        match (checked, req.kind) {
            (Ok((_, root)), _) => {
                bundles.push(StoreBundle {
                    name: rec.name.clone(),
                    digest_hex: rec.bundle_digest.trim_start_matches("sha256:").to_string(),
                    root,
                    manifest: rec.manifest.clone().into_bytes(),
                    signatures: sigs.into_iter().collect(),
                });
                records.push(rec);
            }
            (Err(f), Kind::Bundle) => return Err(f),
            (Err(f), Kind::Store) => {
                eprintln!(
                    "warning: {} — left out of the store view{}",
                    f.message,
                    f.hint.map(|h| format!(" ({h})")).unwrap_or_default()
                );
            }
        }
    }
    let view = match req.kind {
        Kind::Bundle => {
            let b = bundles.pop().expect("one bundle checked");
            View::Rootfs(TreeRoot {
                label: b.name,
                root: b.root,
            })
        }
        Kind::Store => View::Store(bundles),
    };
    Ok(Plan {
        store,
        view,
        records,
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

/// `ct __mount-daemon …`: detach, check, mount, report, serve.
pub fn daemon_main(ctx: &Ctx, a: DaemonArgs) -> CmdResult<u8> {
    // Its own session: no terminal signals from the shell that ran `ct mount`.
    let _ = nix::unistd::setsid();
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
pub fn serve(ctx: &Ctx, req: &Request, plan: Plan, detached: Option<()>) -> CmdResult<u8> {
    use nix::sys::signal::{SigSet, Signal};
    // Block the signals that end us in every thread (the FUSE threads inherit the mask); one
    // thread waits for them and unmounts, so the mount is never left broken by Ctrl-C.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| Failure::io("blocking signals", std::io::Error::from(e)))?;

    let Plan {
        store,
        view,
        records,
    } = plan;
    let label = req.name.clone().unwrap_or_else(|| "store".into());
    let registration = mounts::register(
        &ctx.store,
        &mounts::MountInfo {
            format: mounts::MOUNT_FORMAT_V1.into(),
            mountpoint: req.mountpoint.clone(),
            pid: std::process::id(),
            kind: req.kind.as_str().into(),
            records,
            log: log_path(&ctx.store, &req.mountpoint),
            started_at: chrono::Utc::now().timestamp(),
            allow_other: req.allow_other,
        },
    )?;
    let events: cerro_fuse::EventSink = Arc::new(|m: &str| log_line(m));
    let fs = VerifiedFs::new(
        VerifiedTree::new(Arc::new(store)),
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
