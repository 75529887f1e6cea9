//! `ct run`: verify a bundle, mount its verified rootfs (in this process, allow_other and suid,
//! since the container's user is not us), put a writable overlay on top (kernel overlayfs: a
//! private tmpfs as upper, the FUSE mount as lower — the store is never written), build an OCI
//! runtime bundle from the image config, and run it with runc or crun (podman gets the same
//! facts as `podman run --rootfs` options). The container's exit status becomes ours; the
//! overlay, the tmpfs and the mount are torn down on every path (container exit, runtime
//! failure, Ctrl-C, errors), by a guard.

use super::stored::{open_bundle, Checks};
use super::Ctx;
use crate::app::RunArgs;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, IO_ERROR, USAGE};
use cerro_core::manifest::Manifest;
use cerro_core::rootfs::VerifiedTree;
use cerro_core::Sha256Digest;
use cerro_fuse::{MountOptions, TreeRoot, VerifiedFs, View};
use cerro_store::Store;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Runtimes `ct run` drives, in the order they are tried when none is configured: the OCI
/// runtimes get a runtime bundle; podman gets the same facts as `podman run --rootfs` options.
const RUNTIMES: [&str; 3] = ["runc", "crun", "podman"];
/// Largest image config read (untrusted at rest; it is re-hashed against the signed digest).
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// How long a container may take to exit after the first Ctrl-C / SIGTERM before it is killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// Exit status when a signal ends `ct run` before the container started (128 + SIGINT).
const INTERRUPTED: u8 = 130;
/// Default PATH when the image sets none (what docker uses).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything mounted for one run, taken down in reverse order on drop.
struct Stage {
    dir: PathBuf,
    overlay: bool,
    tmpfs: bool,
    fuse: Option<(cerro_fuse::Unmounter, cerro_fuse::Mounted)>,
}

impl Stage {
    fn lower(&self) -> PathBuf {
        self.dir.join("lower")
    }
    fn rw(&self) -> PathBuf {
        self.dir.join("rw")
    }
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.overlay {
            let _ = umount2(&self.rootfs(), MntFlags::MNT_DETACH);
        }
        if self.tmpfs {
            let _ = umount2(&self.rw(), MntFlags::MNT_DETACH);
        }
        if let Some((mut un, mounted)) = self.fuse.take() {
            let _ = un.unmount();
            let _ = mounted.wait();
        }
        // Never remove_dir_all: if an unmount failed, that would walk into a live mount.
        let _ = std::fs::remove_file(self.dir.join("bundle/config.json"));
        for d in ["bundle", "lower", "rw", "rootfs", ""] {
            let _ = std::fs::remove_dir(self.dir.join(d));
        }
    }
}

fn io(what: impl std::fmt::Display, e: nix::errno::Errno) -> Failure {
    Failure::io(what, std::io::Error::from(e))
}

fn pick_runtime(ctx: &Ctx, arg: Option<&str>) -> CmdResult<String> {
    let want = arg
        .map(str::to_string)
        .or_else(|| ctx.cfg.file.run.as_ref().and_then(|r| r.runtime.clone()));
    let works = |r: &str| {
        Command::new(r)
            .env_remove("CT_PASSPHRASE")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    match want {
        Some(r) if RUNTIMES.contains(&r.as_str()) => {
            if works(&r) {
                Ok(r)
            } else {
                Err(
                    Failure::usage(format!("the runtime {r} is not installed or does not run"))
                        .hint(format!(
                            "apt-get install {r}, or choose another with --runtime"
                        )),
                )
            }
        }
        Some(r) => Err(Failure::usage(format!(
            "unknown runtime {r:?} (ct run drives runc, crun or podman)"
        ))),
        None => RUNTIMES
            .iter()
            .find(|r| works(r))
            .map(|r| r.to_string())
            .ok_or_else(|| {
                Failure::usage("no container runtime found (runc, crun or podman)")
                    .hint("apt-get install runc; `ct doctor` checks this host")
            }),
    }
}

/// The image config, read from the store and checked against the signed digest.
fn image_config(store: &Store, m: &Manifest) -> CmdResult<Value> {
    use std::io::Read as _;
    let d = &m.config;
    let mut bytes = Vec::new();
    // Opened through the store's descriptors (no links, a regular file of the signed size) and
    // read no further than the bound.
    store
        .open_blob(&d.digest, d.size)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| Failure::io(format!("reading the image config {}", d.digest), e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES
        || bytes.len() as u64 != d.size
        || Sha256Digest::of(&bytes) != d.digest
    {
        return Err(Failure::new(
            HASH_MISMATCH,
            format!(
                "the image config in the store ({}) does not match the signed manifest",
                d.digest
            ),
        )
        .hint("run `ct store fsck`, then import the bundle again"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::malformed(format!("image config {}: {e}", d.digest)))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `UID[:GID]`, numeric or a name from the image's /etc/passwd and /etc/group.
fn resolve_user(spec: &str, rootfs: &Path) -> CmdResult<(u32, u32)> {
    let lookup = |file: &str, name: &str, field: usize| -> Option<(u32, Option<u32>)> {
        let text = std::fs::read_to_string(rootfs.join(file)).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                (
                    f.get(field).and_then(|x| x.parse().ok()).unwrap_or(0),
                    f.get(3).and_then(|x| x.parse().ok()),
                )
            })
        })
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup("etc/passwd", u, 2).ok_or_else(|| {
            Failure::usage(format!("user {u:?} is not in the image's /etc/passwd"))
        })?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g, 2).map(|x| x.0).ok_or_else(|| {
                Failure::usage(format!("group {g:?} is not in the image's /etc/group"))
            })?,
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// Where the run is, for the signal thread.
#[derive(Default)]
enum Phase {
    /// Verifying and importing: nothing is mounted, so a signal ends ct at once, with the
    /// signal's default action (an import killed half-way loses nothing; the next one cleans).
    #[default]
    Preparing,
    /// Mounts are being made: a signal cancels the run before the container starts, and the
    /// guard takes them down.
    Staging { cancelled: bool },
    /// The runtime runs: its pid, and the command that kills the container.
    Running(nix::unistd::Pid, Vec<String>),
}

/// Takes SIGINT, SIGTERM and SIGHUP (blocked in every thread from the start of `ct run`, so
/// also in the threads the store and FUSE start) for the whole run; see [`Phase`]. Once the
/// container runs, each is passed to the runtime, which forwards it to the container. A
/// container's PID 1 ignores signals it has no handler for, so if it is still running
/// STOP_GRACE after the first one, or a second comes more than a second later (a terminal's
/// Ctrl-C reaches ct and the runtime at once; that is not a second request), it is killed.
fn watch_signals(signals: nix::sys::signal::SigSet) -> CmdResult<Arc<std::sync::Mutex<Phase>>> {
    let state = Arc::new(std::sync::Mutex::new(Phase::default()));
    let shared = state.clone();
    let kill = |cmd: &[String]| {
        let _ = Command::new(&cmd[0])
            .env_remove("CT_PASSPHRASE")
            .args(&cmd[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first: Option<std::time::Instant> = None;
            while let Ok(sig) = signals.wait() {
                let mut st = shared.lock().expect("signal state");
                let (pid, killer) = match &mut *st {
                    Phase::Preparing => {
                        // Our disposition is the default one (blocked, never handled), so
                        // unblocking it here and raising it ends the process as it would
                        // have without ct's handling.
                        let mut one = nix::sys::signal::SigSet::empty();
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
                        first = Some(std::time::Instant::now());
                        let _ = nix::sys::signal::kill(pid, sig);
                        std::thread::spawn(move || {
                            std::thread::sleep(STOP_GRACE);
                            kill(&killer);
                        });
                    }
                    Some(t) if t.elapsed() > std::time::Duration::from_secs(1) => kill(&killer),
                    Some(_) => {}
                }
            }
        })
        .map_err(|e| Failure::io("starting the signal thread", e))?;
    Ok(state)
}

/// What the container runs, from the image config and the command line.
struct Process<'a> {
    args: &'a [String],
    env: &'a [String],
    cwd: &'a str,
    uid: u32,
    gid: u32,
    terminal: bool,
}

/// How to start the container, kill it, and remove what the runtime keeps of it.
struct Launch {
    run: Vec<String>,
    kill: Vec<String>,
    delete: Vec<String>,
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// runc or crun: a runtime bundle (the runtime's own default spec, edited) at `bundle`.
fn oci_command(
    runtime: &str,
    id: &str,
    bundle: &Path,
    rootfs: &Path,
    p: &Process,
    annotations: &[(&str, String)],
) -> CmdResult<Launch> {
    let st = Command::new(runtime)
        .env_remove("CT_PASSPHRASE")
        .args(["spec", "--bundle"])
        .arg(bundle)
        .status()
        .map_err(|e| Failure::io(format!("running {runtime} spec"), e))?;
    if !st.success() {
        return Err(Failure::new(
            IO_ERROR,
            format!("{runtime} spec failed ({st})"),
        ));
    }
    let spec_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(
        &std::fs::read(&spec_path).map_err(|e| Failure::io("reading the runtime spec", e))?,
    )
    .map_err(|e| Failure::malformed(format!("{runtime} spec wrote no JSON: {e}")))?;
    spec["root"] = json!({"path": rootfs, "readonly": false});
    spec["process"]["terminal"] = json!(p.terminal);
    spec["process"]["args"] = json!(p.args);
    spec["process"]["env"] = json!(p.env);
    spec["process"]["cwd"] = json!(p.cwd);
    spec["process"]["user"] = json!({"uid": p.uid, "gid": p.gid});
    spec["annotations"] = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    std::fs::write(
        &spec_path,
        serde_json::to_vec_pretty(&spec).expect("serializes"),
    )
    .map_err(|e| Failure::io("writing the runtime spec", e))?;
    let b = bundle.to_string_lossy().into_owned();
    Ok(Launch {
        run: strs(&[runtime, "run", "--bundle", &b, id]),
        kill: strs(&[runtime, "kill", id, "KILL"]),
        delete: strs(&[runtime, "delete", "-f", id]),
    })
}

/// `podman run --rootfs` on the overlay, with the same process, no network (as the OCI
/// runtimes' default spec), and this process's own open-file and process limits: podman's
/// defaults raise them, which fails where root lacks CAP_SYS_RESOURCE (measured on these
/// machines). The process limit is capped at the kernel's pid_max, above which it means
/// nothing (and podman's monitor runs below it here).
fn podman_command(id: &str, rootfs: &Path, p: &Process, annotations: &[(&str, String)]) -> Launch {
    let mut run = strs(&[
        "podman",
        "run",
        "--rm",
        "-i",
        "--name",
        id,
        "--network",
        "none",
    ]);
    if p.terminal {
        run.push("-t".into());
    }
    run.extend(strs(&[
        "--user",
        &format!("{}:{}", p.uid, p.gid),
        "--workdir",
        p.cwd,
    ]));
    for e in p.env {
        run.extend(["--env".to_string(), e.clone()]);
    }
    for (k, v) in annotations {
        run.extend(["--annotation".to_string(), format!("{k}={v}")]);
    }
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    for (limit, name, cap) in [
        ("Max open files", "nofile", None),
        ("Max processes", "nproc", pid_max),
    ] {
        if let Some((soft, hard)) = own_limit(limit) {
            let hard = cap.map_or(hard, |c| hard.min(c));
            // podman spells "unlimited" -1.
            let show = |v: u64| {
                if v == u64::MAX {
                    "-1".to_string()
                } else {
                    v.to_string()
                }
            };
            run.extend([
                "--ulimit".to_string(),
                format!("{name}={}:{}", show(soft.min(hard)), show(hard)),
            ]);
        }
    }
    run.push("--rootfs".into());
    run.push(rootfs.to_string_lossy().into_owned());
    run.extend(p.args.iter().cloned());
    Launch {
        run,
        kill: strs(&["podman", "kill", "--signal", "KILL", id]),
        delete: strs(&["podman", "rm", "-f", "--ignore", id]),
    }
}

/// Soft and hard value of one limit of this process, from /proc/self/limits ("unlimited" is
/// read as u64::MAX; None if the line is missing).
fn own_limit(name: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let mut f = line[name.len()..].split_whitespace();
    let v = |s: Option<&str>| match s? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((v(f.next())?, v(f.next())?))
}

/// `ct run BUNDLE|NAME [-- ARGS…]`.
pub fn run(ctx: &Ctx, a: RunArgs) -> CmdResult<u8> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Failure::usage(
            "ct run needs root (it mounts an overlay and runs a runtime)",
        ));
    }
    // Blocked before anything starts a thread (the store and FUSE do), so only the watcher
    // takes them; the runtime starts with an empty mask (std resets it for children).
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| io("blocking signals", e))?;
    let watch = watch_signals(signals)?;
    let runtime = pick_runtime(ctx, a.runtime.as_deref())?;
    if a.no_verify {
        eprintln!(
            "{} --no-verify: the policy is NOT evaluated; signatures and trust are still \
             checked, and every block read is still verified against the signed tree",
            ctx.out.warn("warning:")
        );
    }
    // stdout belongs to the container: the import's report is not printed.
    let quiet = ctx.with_output(crate::output::Output {
        quiet: true,
        ..ctx.out.clone()
    });
    // Leased and verified now (binding, signatures, trust, policy unless --no-verify); the
    // lease lives until the container is gone, so `gc` keeps what it reads.
    let checks = Checks::load(ctx, a.source.policy.as_deref(), a.no_verify)?;
    let opened = open_bundle(&quiet, &a.source, &checks, "ct run", "mounted")?;
    let name = opened.label();
    *watch.lock().expect("signal state") = Phase::Staging { cancelled: false };

    // Not under the store's tmp/: imports clean abandoned directories there.
    let dir = std::env::temp_dir().join(format!("ct-run-{}", std::process::id()));
    let mut stage = Stage {
        dir: dir.clone(),
        overlay: false,
        tmpfs: false,
        fuse: None,
    };
    for d in [
        stage.lower(),
        stage.rw(),
        stage.rootfs(),
        dir.join("bundle"),
    ] {
        std::fs::create_dir_all(&d)
            .map_err(|e| Failure::io(format!("creating {}", d.display()), e))?;
    }
    let manifest = opened.bundle.manifest().clone();
    let bundle_digest = opened.bundle.digest().to_string();
    let config = image_config(&opened.store, &manifest)?;

    let events: cerro_fuse::EventSink = Arc::new(|m: &str| eprintln!("ct run: {m}"));
    let fs = VerifiedFs::new(
        VerifiedTree::new(opened.store.clone()),
        &View::Rootfs(TreeRoot::new(name.clone(), &opened.bundle)),
        events,
        cerro_fuse::DEFAULT_CACHE_BYTES,
    );
    let opts = MountOptions {
        allow_other: true,
        suid: true,
        threads: cerro_fuse::default_threads(),
        fsname: format!("cerro:{name}"),
    };
    let mut mounted = cerro_fuse::mount(fs, &stage.lower(), &opts)
        .map_err(|e| Failure::io(format!("mounting {}", stage.lower().display()), e))?;
    let un = mounted.take_unmounter().expect("one unmounter");
    stage.fuse = Some((un, mounted));

    // The writable layer: a private tmpfs holding overlayfs's upper and work directories.
    mount(
        Some("tmpfs"),
        &stage.rw(),
        Some("tmpfs"),
        MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| io(format!("mounting a tmpfs at {}", stage.rw().display()), e))?;
    stage.tmpfs = true;
    for d in ["upper", "work"] {
        std::fs::create_dir(stage.rw().join(d))
            .map_err(|e| Failure::io("creating the overlay's upper layer", e))?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        stage.lower().display(),
        stage.rw().join("upper").display(),
        stage.rw().join("work").display()
    );
    mount(
        Some("overlay"),
        &stage.rootfs(),
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| io("mounting the overlay (is overlayfs there? `ct doctor`)", e))?;
    stage.overlay = true;

    // The runtime bundle.
    let cfg = &config["config"];
    let mut args = strings(&cfg["Entrypoint"]);
    if a.args.is_empty() {
        args.extend(strings(&cfg["Cmd"]));
    } else {
        args.extend(a.args.iter().cloned());
    }
    if args.is_empty() {
        return Err(Failure::usage(format!(
            "bundle {name}'s image has no Entrypoint or Cmd: give the command after --"
        )));
    }
    let mut env = strings(&cfg["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    let terminal = std::io::stdin().is_terminal();
    if terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into()); // as docker run -t does
    }
    let user_spec = a
        .user
        .clone()
        .or_else(|| {
            cfg["User"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "0".into());
    let (uid, gid) = resolve_user(&user_spec, &stage.rootfs())?;
    let cwd = cfg["WorkingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or("/")
        .to_string();
    let id = format!("cerro-{name}-{}", std::process::id());
    let annotations = [
        ("org.cerro-torre.bundle", name.clone()),
        ("org.cerro-torre.bundle-digest", bundle_digest.clone()),
        (
            "org.cerro-torre.exposed-ports",
            cfg["ExposedPorts"]
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
        ),
    ];
    let process = Process {
        args: &args,
        env: &env,
        cwd: &cwd,
        uid,
        gid,
        terminal,
    };
    let launch = if runtime == "podman" {
        podman_command(&id, &stage.rootfs(), &process, &annotations)
    } else {
        oci_command(
            &runtime,
            &id,
            &dir.join("bundle"),
            &stage.rootfs(),
            &process,
            &annotations,
        )?
    };
    if !ctx.out.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "ct run: {name} {} (bundle {}){}, {runtime}, as {uid}:{gid}",
            manifest.package.version,
            bundle_digest,
            if a.no_verify { "" } else { " verified" },
        );
    }
    let mut child = {
        let mut st = watch.lock().expect("signal state");
        if matches!(*st, Phase::Staging { cancelled: true }) {
            eprintln!("ct run: interrupted before the container started; nothing was run");
            return Ok(INTERRUPTED);
        }
        let mut cmd = Command::new(&launch.run[0]);
        cmd.env_remove("CT_PASSPHRASE").args(&launch.run[1..]);
        let child = cmd
            .spawn()
            .map_err(|e| Failure::io(format!("starting {runtime}"), e))?;
        *st = Phase::Running(
            nix::unistd::Pid::from_raw(child.id() as i32),
            launch.kill.clone(),
        );
        child
    };
    let status = child
        .wait()
        .map_err(|e| Failure::io(format!("waiting for {runtime}"), e))?;
    let _ = Command::new(&launch.delete[0])
        .env_remove("CT_PASSPHRASE")
        .args(&launch.delete[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    drop(stage);
    drop(opened);
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        _ => USAGE,
    })
}
