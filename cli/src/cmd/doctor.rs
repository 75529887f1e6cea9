//! `ct doctor`: checks what mounting, running and verifying need on this host — the FUSE device
//! and fusermount3, container runtimes, overlayfs, the store, the trust store and keys, the
//! default policy, the clock — and says how to fix each problem. Exit 0 when all is well, 1 if not.

use super::Ctx;
use crate::config::{KEYS_DIR, TRUST_DIR};
use crate::exit::CmdResult;
use crate::steps::validity::EXPIRY_WARNING_DAYS;
use crate::steps::verify::load_policy;
use serde::Serialize;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the FUSE device is unless `[doctor] fuse_device` says otherwise.
const FUSE_DEVICE: &str = "/dev/fuse";
/// Exit code when a check fails (the contract: 0 all well, 1 otherwise).
const PROBLEMS_FOUND: u8 = 1;
/// Earliest plausible clock (signatures and policies carry dates; a clock before this is wrong).
const EARLIEST_PLAUSIBLE: i64 = 1_704_067_200; // 2024-01-01

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    /// Not a problem yet, but it will be (a key about to expire): shown, exit code unchanged.
    warning: bool,
    /// What was found.
    detail: String,
    /// What to do, for a problem.
    fix: Option<String>,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok: true,
        warning: false,
        detail: detail.into(),
        fix: None,
    }
}

fn bad(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        ok: false,
        warning: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        ok: true,
        warning: true,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn runs(program: &Path, arg: &str) -> bool {
    Command::new(program)
        .env_remove("CT_PASSPHRASE")
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn check_fuse(ctx: &Ctx) -> Vec<Check> {
    let dev = ctx
        .cfg
        .file
        .doctor
        .as_ref()
        .and_then(|d| d.fuse_device.clone())
        .unwrap_or_else(|| PathBuf::from(FUSE_DEVICE));
    let mut out = Vec::new();
    out.push(match std::fs::metadata(&dev) {
        Err(e) => bad(
            "fuse device",
            format!("{}: {e}", dev.display()),
            "load the module (`modprobe fuse`); in a container, pass the device (--device /dev/fuse)",
        ),
        Ok(m) if !m.file_type().is_char_device() => bad(
            "fuse device",
            format!("{} is not a character device", dev.display()),
            "recreate it: `mknod -m 0666 /dev/fuse c 10 229`",
        ),
        Ok(_) => match std::fs::OpenOptions::new().read(true).write(true).open(&dev) {
            Ok(_) => ok("fuse device", format!("{} opens read-write", dev.display())),
            Err(e) => bad(
                "fuse device",
                format!("{} cannot be opened: {e}", dev.display()),
                "run as root, or make the device usable by your user (mode 0666 is Debian's default)",
            ),
        },
    });
    let root = nix::unistd::geteuid().is_root();
    out.push(match on_path("fusermount3") {
        Some(p) => ok("fusermount3", p.display().to_string()),
        None if root => ok(
            "fusermount3",
            "not installed; not needed as root (install Debian's fuse3 for mounts by other users)",
        ),
        None => bad(
            "fusermount3",
            "not found on PATH; users other than root cannot mount without it",
            "apt-get install fuse3",
        ),
    });
    if !root {
        // What an ordinary user's mount needs beyond the device: a setuid helper, and for
        // --allow-other the administrator's consent.
        if let Some(p) = on_path("fusermount3") {
            let setuid = std::fs::metadata(&p)
                .map(|m| {
                    m.permissions().mode() & 0o4000 != 0
                        && std::os::unix::fs::MetadataExt::uid(&m) == 0
                })
                .unwrap_or(false);
            if !setuid {
                out.push(bad(
                    "fusermount3 setuid",
                    format!(
                        "{} is not setuid root, so it cannot mount for you",
                        p.display()
                    ),
                    "reinstall Debian's fuse3 (`apt-get install --reinstall fuse3`)",
                ));
            }
        }
        let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
        out.push(if crate::steps::serve::user_allow_other(&conf) {
            ok("allow_other", "user_allow_other is set in /etc/fuse.conf: --allow-other works for you")
        } else {
            warn(
                "allow_other",
                "/etc/fuse.conf has no user_allow_other: your mounts are yours alone (--allow-other is refused)",
                "as root, add a line `user_allow_other` to /etc/fuse.conf if other users (or a container runtime) must read your mounts",
            )
        });
    }
    out
}

/// Whether the kernel re-sends FUSE requests a dead serving process had read
/// (`FUSE_NOTIFY_RESEND`, Linux 6.9): what lets a mount survive its serving process.
fn check_mount_restart() -> Check {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version >= (6, 9) {
        ok(
            "mount restarts",
            format!("Linux {release} re-sends FUSE requests: a mount survives its serving process"),
        )
    } else {
        warn(
            "mount restarts",
            format!("Linux {release} cannot re-send FUSE requests (6.9+): a mount ends with its serving process"),
            "a newer kernel; until then a mount whose serving process dies must be remounted",
        )
    }
}

/// What `ct run` without root needs: user namespaces, and a run directory.
fn check_rootless() -> Vec<Check> {
    if nix::unistd::geteuid().is_root() {
        return vec![];
    }
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut out = vec![match max {
        Some(0) => bad(
            "user namespaces",
            "user.max_user_namespaces is 0: ct run cannot run without root here",
            "as root: sysctl -w user.max_user_namespaces=15000",
        ),
        _ => ok("user namespaces", "ct run can make its own (rootless runs)"),
    }];
    let dir = std::env::var_os("CT_RUN_DIR")
        .map(|d| format!("CT_RUN_DIR={}", PathBuf::from(d).display()))
        .or_else(|| {
            std::env::var_os("XDG_RUNTIME_DIR")
                .map(|d| format!("{}/cerro/run", PathBuf::from(d).display()))
        });
    out.push(match dir {
        Some(d) => ok("run directory", format!("rootless runs keep their state in {d}")),
        None => warn(
            "run directory",
            "neither XDG_RUNTIME_DIR nor CT_RUN_DIR is set: ct run without root refuses to start",
            "log in through a session that sets XDG_RUNTIME_DIR, or set CT_RUN_DIR to a directory only you can write",
        ),
    });
    out
}

fn check_runtimes() -> Vec<Check> {
    let runc = on_path("runc");
    let crun = on_path("crun");
    let mut out = Vec::new();
    match &runc {
        Some(p) if runs(p, "--version") => out.push(ok("runc", p.display().to_string())),
        Some(p) => out.push(bad(
            "runc",
            format!("{} does not run (`runc --version` failed)", p.display()),
            "reinstall it: apt-get install --reinstall runc",
        )),
        None => {}
    }
    if let Some(p) = &crun {
        let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        out.push(if unified {
            ok("crun", p.display().to_string())
        } else {
            ok(
                "crun",
                format!(
                    "{} (this host's cgroups are not unified: crun 1.8 refuses them unless run in a \
                     private mount namespace with cgroup2 mounted; prefer runc here)",
                    p.display()
                ),
            )
        });
    }
    let podman = on_path("podman");
    if let Some(p) = &podman {
        out.push(if runs(p, "--version") {
            ok("podman", p.display().to_string())
        } else {
            bad(
                "podman",
                format!("{} does not run (`podman --version` failed)", p.display()),
                "reinstall it: apt-get install --reinstall podman",
            )
        });
    }
    if runc.is_none() && crun.is_none() && podman.is_none() {
        out.push(bad(
            "container runtime",
            "none of runc, crun, podman is on PATH",
            "apt-get install runc",
        ));
    }
    // `ct run --network private` and `-p` with runc or crun (podman's slirp4netns mode too).
    out.push(match on_path("slirp4netns") {
        Some(p) if runs(&p, "--version") => ok("slirp4netns", p.display().to_string()),
        Some(p) => bad(
            "slirp4netns",
            format!(
                "{} does not run (`slirp4netns --version` failed)",
                p.display()
            ),
            "reinstall it: apt-get install --reinstall slirp4netns",
        ),
        None => bad(
            "slirp4netns",
            "not on PATH: `ct run -p` and `--network private` need it",
            "apt-get install slirp4netns (tools/setup installs it)",
        ),
    });
    let overlay = std::fs::read_to_string("/proc/filesystems")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false);
    out.push(if overlay {
        ok("overlayfs", "the kernel has overlay")
    } else {
        bad(
            "overlayfs",
            "overlay is not in /proc/filesystems",
            "load it: `modprobe overlay`",
        )
    });
    out
}

fn check_store(ctx: &Ctx, quick: bool) -> Vec<Check> {
    let st = &ctx.store;
    if !st.join("db").join("CURRENT").exists() {
        return vec![ok(
            "store",
            format!(
                "{} does not exist yet (it is made by the first `ct import`)",
                st.display()
            ),
        )];
    }
    let store = match cerro_store::Store::open_reader(st) {
        Ok(s) => s,
        Err(e) => {
            return vec![bad(
                "store",
                format!("{}: {e}", st.display()),
                "run `ct store fsck`; if the database itself is damaged, move the store aside and import your bundles again",
            )]
        }
    };
    let mut out = Vec::new();
    out.push(
        match cerro_store::lock::StoreLock::acquire(
            store.dirs(),
            cerro_store::LockMode::Exclusive,
            false,
        ) {
            Ok(_) => ok("store lock", "free"),
            Err(cerro_store::StoreError::Busy(_)) => ok(
                "store lock",
                "held by another ct process right now (an import, gc or fsck)",
            ),
            Err(e) => bad(
                "store lock",
                e.to_string(),
                "check the permissions of the store directory",
            ),
        },
    );
    if quick {
        out.push(ok("store", format!("{} opens", st.display())));
        return out;
    }
    // Quick consistency: every record decodes and its root record matches its signed manifest.
    let mut problems = Vec::new();
    let mut n = 0;
    match store.records() {
        Ok(list) => {
            for e in list {
                n += 1;
                let checked = match (e.digest, e.record) {
                    (Some(d), Ok(r)) => cerro_store::walk::record_roots(&d, &r).map(|_| ()),
                    (None, _) => Err(cerro_store::StoreError::Corrupt(format!(
                        "a record under a key that is not a digest ({})",
                        cerro_store::shown(&e.key)
                    ))),
                    (_, Err(err)) => Err(err),
                };
                if let Err(err) = checked {
                    problems.push(err.to_string());
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    if let Ok(names) = store.names() {
        for (k, r) in names {
            if let Err(e) = r {
                problems.push(format!("name {}: {e}", cerro_store::shown(&k)));
            }
        }
    }
    out.push(if problems.is_empty() {
        ok(
            "store",
            format!("{} opens; {n} bundle record(s) consistent", st.display()),
        )
    } else {
        bad(
            "store",
            problems.join("; "),
            "run `ct store fsck` for the details and `ct store fsck --repair` to remove what is damaged",
        )
    });
    out
}

fn mode_of(p: &Path) -> Option<u32> {
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

fn check_keys(ctx: &Ctx) -> Vec<Check> {
    let dir = &ctx.cfg.dir;
    let mut out = Vec::new();
    // Trust store: anyone who can write it decides what you trust.
    let trust = dir.join(TRUST_DIR);
    let pubs: Vec<PathBuf> = std::fs::read_dir(&trust)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect()
        })
        .unwrap_or_default();
    if pubs.is_empty() {
        out.push(bad(
            "trust store",
            format!("{} holds no public keys: no bundle can verify", trust.display()),
            "import the publisher's key with `ct key import FILE` (check its fingerprint first), or make one with `ct keygen --id NAME`",
        ));
    } else {
        let loose: Vec<String> = std::iter::once(trust.clone())
            .chain(pubs.iter().cloned())
            .filter(|p| mode_of(p).is_some_and(|m| m & 0o022 != 0))
            .map(|p| format!("{} ({:o})", p.display(), mode_of(&p).unwrap_or(0)))
            .collect();
        out.push(if loose.is_empty() {
            ok(
                "trust store",
                format!("{} key(s) in {}", pubs.len(), trust.display()),
            )
        } else {
            bad(
                "trust store",
                format!("writable by others: {}", loose.join(", ")),
                "chmod go-w on each (anyone who can write the trust store decides what you trust)",
            )
        });
    }
    // Secret keys: 0600, nobody else may read them.
    let keys = dir.join(KEYS_DIR);
    let secrets: Vec<PathBuf> = std::fs::read_dir(&keys)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "key"))
                .collect()
        })
        .unwrap_or_default();
    let exposed: Vec<String> = secrets
        .iter()
        .filter(|p| mode_of(p).is_some_and(|m| m & 0o077 != 0))
        .map(|p| format!("{} ({:o})", p.display(), mode_of(p).unwrap_or(0)))
        .collect();
    if !exposed.is_empty() {
        out.push(bad(
            "secret keys",
            format!("readable or writable by others: {}", exposed.join(", ")),
            "chmod 0600 each file (they are encrypted, but a passphrase can be guessed offline)",
        ));
    } else {
        out.push(ok(
            "secret keys",
            format!("{} key(s), all 0600", secrets.len()),
        ));
    }
    if let Some(k) = &ctx.cfg.file.default_key {
        let p = keys.join(format!("{k}.key"));
        out.push(if p.is_file() {
            ok("default key", format!("{k} ({})", p.display()))
        } else {
            bad(
                "default key",
                format!("config.toml names {k}, but {} does not exist", p.display()),
                "make it with `ct keygen --id NAME`, or pick another with `ct key default NAME`",
            )
        });
    }
    out
}

/// Keys whose validity window ends within [`EXPIRY_WARNING_DAYS`] (or has ended): secret keys
/// you sign with and keys you trust. The default signing key expired is a problem (`ct pack`
/// refuses it); the rest are warnings.
fn check_key_expiry(ctx: &Ctx) -> Vec<Check> {
    let now = chrono::Utc::now();
    let soon = now + chrono::TimeDelta::days(EXPIRY_WARNING_DAYS);
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let secrets: Vec<(cerro_core::KeyId, cerro_core::window::KeyWindow)> =
        std::fs::read_dir(ctx.cfg.dir.join(KEYS_DIR))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_str()?.strip_suffix(".key")?.to_string();
                        let id = cerro_core::KeyId::new(&n).ok()?;
                        let sk = ctx.cfg.read_secret_key(&id).ok()?;
                        Some((id, sk.window()))
                    })
                    .collect()
            })
            .unwrap_or_default();
    let trusted: Vec<(cerro_core::KeyId, cerro_core::window::KeyWindow)> = ctx
        .cfg
        .trusted_keys()
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.key_id.clone(), k.window()))
        .collect();
    for (kind, keys) in [("secret", secrets), ("trusted", trusted)] {
        for (id, w) in keys {
            let Some(e) = w.expires else { continue };
            if e > soon || !seen.insert((id.clone(), e)) {
                continue;
            }
            let when = cerro_core::window::show_instant(&e);
            let is_default = ctx.cfg.file.default_key.as_deref() == Some(id.as_str());
            let what = if kind == "secret" {
                "ct stops signing with it then, and its signatures count only for bundles created before"
            } else {
                "its signatures count only for bundles created before"
            };
            if e <= now {
                let detail = format!("{kind} key {id} expired on {when}");
                let fix = format!(
                    "rotate it (`ct key rotate {id}`), or remove it (`ct key remove {id}`)"
                );
                out.push(if is_default {
                    bad(
                        "key expiry",
                        format!("{detail}; it is the default signing key, so `ct pack` fails"),
                        fix,
                    )
                } else {
                    warn("key expiry", detail, fix)
                });
            } else {
                // Whole days left, rounded up: "in 1 day(s)" until the last second.
                let days = ((e - now).num_seconds() + 86_399) / 86_400;
                out.push(warn(
                    "key expiry",
                    format!("{kind} key {id} expires on {when}, in {days} day(s): {what} {when}"),
                    if kind == "secret" {
                        format!("unless it has one already, make its successor now (`ct key rotate {id}`) and co-sign with it (`ct re-sign BUNDLE -k NEW --add-signature`)")
                    } else {
                        format!("ask the owner of {id} for its successor's public key")
                    },
                ));
            }
        }
    }
    if out.is_empty() {
        out.push(ok(
            "key expiry",
            format!("no key expires within {EXPIRY_WARNING_DAYS} days"),
        ));
    }
    out
}

fn check_policy(ctx: &Ctx) -> Check {
    match &ctx.cfg.file.default_policy {
        None => ok(
            "default policy",
            "none set (bundles need only a trusted signature)",
        ),
        Some(p) => match load_policy(ctx, None) {
            Ok(_) => ok("default policy", format!("{} parses", p.display())),
            Err(f) => bad(
                "default policy",
                f.message,
                format!(
                    "fix it (`ct policy check {}` explains), or remove default_policy from config.toml",
                    p.display()
                ),
            ),
        },
    }
}

fn check_clock() -> Check {
    let now = chrono::Utc::now();
    if now.timestamp() < EARLIEST_PLAUSIBLE {
        bad(
            "clock",
            format!("the system time is {now}, before 2024"),
            "set the clock (timedatectl set-ntp true, or date -s): signature dates and policy deadlines depend on it",
        )
    } else {
        ok("clock", now.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

/// `ct doctor [--quick]`.
pub fn run(ctx: &Ctx, quick: bool) -> CmdResult<u8> {
    let mut checks = check_fuse(ctx);
    checks.push(check_mount_restart());
    checks.extend(check_runtimes());
    checks.extend(check_rootless());
    checks.extend(check_store(ctx, quick));
    checks.extend(check_keys(ctx));
    checks.extend(check_key_expiry(ctx));
    checks.push(check_policy(ctx));
    checks.push(check_clock());
    let problems = checks.iter().filter(|c| !c.ok).count();
    let code = if problems == 0 { 0 } else { PROBLEMS_FOUND };
    ctx.out.json_doc(&serde_json::json!({
        "ok": problems == 0, "exit_code": code, "problems": problems, "checks": checks,
    }));
    for c in &checks {
        if c.warning {
            ctx.out.line(format!(
                "{} {:<18} {}",
                ctx.out.warn("WARN"),
                c.name,
                c.detail
            ));
            if let Some(f) = &c.fix {
                ctx.out.line(format!("    {} {f}", ctx.out.dim("fix:")));
            }
        } else if c.ok {
            ctx.out.line(format!(
                "{} {:<18} {}",
                ctx.out.good("ok "),
                c.name,
                c.detail
            ));
        } else {
            ctx.out.line(format!(
                "{} {:<18} {}",
                ctx.out.bad("BAD"),
                c.name,
                c.detail
            ));
            if let Some(f) = &c.fix {
                ctx.out.line(format!("    {} {f}", ctx.out.dim("fix:")));
            }
        }
    }
    if problems == 0 {
        ctx.out.line("all well");
    } else {
        ctx.out
            .line(format!("{problems} problem(s); each says how to fix it"));
    }
    Ok(code)
}
