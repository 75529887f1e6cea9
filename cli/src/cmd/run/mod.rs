//! `ct run`: verify a bundle, mount its verified rootfs, put a writable overlay on top (kernel
//! overlayfs: a private tmpfs as upper, the FUSE mount as lower — the store is never written),
//! and run the image with runc or crun (an OCI runtime bundle ct writes, with podman's
//! defaults) or podman (`podman run --rootfs` with the same settings). Every mount is made in
//! a private mount namespace, in a mkdtemp directory under a run directory only its owner can
//! write ([`stage`]); options are checked before anything is imported ([`options`]); the runtime
//! spec is [`spec`], the network [`network`], paths inside the image [`rootfs`], detached runs
//! and `ct stop` [`detach`], signals [`signals`]. An ordinary user's run first enters a user
//! namespace of its own and is root there ([`rootless`]). The container's exit status becomes
//! ours; everything it used is taken down on every path (container exit, runtime failure,
//! Ctrl-C, `ct stop`, errors), by guards.

pub mod detach;
mod network;
mod options;
mod rootfs;
mod rootless;
mod signals;
mod spec;
mod stage;

pub use options::Network;

use super::Ctx;
use crate::app::RunArgs;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, USAGE};
use crate::steps::serve::mount_verified;
use crate::steps::stored::{open_bundle, Checks, Opened};
use cerro_core::manifest::Manifest;
use cerro_core::source::config::RunDefaults;
use cerro_core::Sha256Digest;
use cerro_fuse::{MountOptions, TreeRoot, View};
use cerro_store::Store;
use detach::{Claim, Record, Reporter};
use options::{Publish, Volume};
use signals::Phase;
use spec::NetNs;
use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Runtimes `ct run` drives, in the order they are tried when none is configured: the OCI
/// runtimes get a runtime bundle; podman gets the same facts as `podman run --rootfs` options.
const RUNTIMES: [&str; 3] = ["runc", "crun", "podman"];
/// Largest image config read (untrusted at rest; it is re-hashed against the signed digest).
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Exit status when a signal ends `ct run` before the container started (128 + SIGINT).
const INTERRUPTED: u8 = 130;
/// Default PATH when the image sets none (what docker uses).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest host name the kernel takes.
const MAX_HOSTNAME: usize = 64;

/// The runtime: the one asked for (or configured), else the first of `RUNTIMES` that works. A
/// rootless run drives runc only.
fn pick_runtime(ctx: &Ctx, arg: Option<&str>, rootless: bool) -> CmdResult<String> {
    let want = arg
        .map(str::to_string)
        .or_else(|| ctx.cfg.file.run.as_ref().and_then(|r| r.runtime.clone()))
        .or_else(|| rootless.then(|| rootless::RUNTIME.to_string()));
    if let Some(r) = want
        .as_deref()
        .filter(|r| rootless && *r != rootless::RUNTIME)
    {
        return Err(Failure::usage(format!(
            "ct run without root drives {} only, not {r}",
            rootless::RUNTIME
        ))
        .hint(format!(
            "give --runtime {} (or run as root for {r})",
            rootless::RUNTIME
        )));
    }
    let works = |r: &str| {
        Command::new(r)
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

/// The image config's run defaults, read from the store and checked against the signed digest.
fn image_config(store: &Store, m: &Manifest) -> CmdResult<RunDefaults> {
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
    RunDefaults::parse(&bytes)
        .map_err(|e| Failure::malformed(format!("image config {}: {e}", d.digest)))
}

/// `ct run BUNDLE|NAME [-- ARGS…]`; with `-d`, in the background (see [`detach`]).
pub fn run(ctx: &Ctx, a: RunArgs) -> CmdResult<u8> {
    if a.detach && !a.detached_child {
        return detach::spawn(ctx);
    }
    let mut reporter = match a.detached_child {
        true => Some(Reporter::take()?),
        false => None,
    };
    let result = run_container(ctx, a, reporter.as_mut());
    if let (Err(f), Some(r)) = (&result, reporter.as_mut()) {
        r.failed(f);
    }
    result
}

/// The options that need no bundle, checked before anything is imported or mounted.
struct Checked {
    publish: Vec<Publish>,
    network: Network,
    volumes: Vec<Volume>,
    capabilities: Vec<String>,
    /// `-e` and `--env-file`, resolved to KEY=VALUE.
    env: Vec<String>,
}

fn check_options(a: &RunArgs) -> CmdResult<Checked> {
    let publish = a
        .publish
        .iter()
        .map(|p| Publish::parse(p))
        .collect::<CmdResult<Vec<_>>>()?;
    let network = Network::choose(a.network, &publish)?;
    let volumes = a
        .volume
        .iter()
        .map(|v| options::parse_volume(v))
        .collect::<CmdResult<Vec<_>>>()?;
    let known = options::known_capabilities();
    let capabilities = options::capabilities(
        a.privileged,
        &a.cap_add,
        &a.cap_drop,
        known,
        &options::own_capabilities(known),
    )?;
    let env = options::environment(&[], &a.env_file, &a.env, |k| std::env::var(k).ok())?;
    if let Some(n) = &a.name {
        options::check_name(n)?;
    }
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            return Err(Failure::usage(format!(
                "--workdir {w:?}: the working directory must be an absolute path"
            )));
        }
    }
    if let Some(h) = &a.hostname {
        let ok = !h.is_empty()
            && h.len() <= MAX_HOSTNAME
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        if !ok {
            return Err(Failure::usage(format!(
                "--hostname {h:?}: letters, digits, - and ., at most {MAX_HOSTNAME}"
            )));
        }
    }
    Ok(Checked {
        publish,
        network,
        volumes,
        capabilities,
        env,
    })
}

/// Everything but the detaching: check, verify, stage, run, take down.
fn run_container(ctx: &Ctx, a: RunArgs, reporter: Option<&mut Reporter>) -> CmdResult<u8> {
    // An ordinary user's run directory is checked with the host's ids, before the namespace.
    let rootless = rootless::Rootless::detect()?;
    // First, while this is the only thread: every thread and child shares the namespace.
    match &rootless {
        Some(r) => r.enter()?,
        None => stage::private_mount_namespace()?,
    }
    let watch = signals::watch()?;
    let runtime = pick_runtime(ctx, a.runtime.as_deref(), rootless.is_some())?;
    let opts = check_options(&a)?;
    let run_dir = match &rootless {
        Some(r) => {
            r.check_options(a.privileged, opts.network, &opts.publish)?;
            r.run_dir.clone()
        }
        None => stage::run_dir()?,
    };
    let runtime_state = rootless.as_ref().map(|r| r.runtime_state()).transpose()?;
    let record_for = |name: &str| record(&a, &runtime, name);
    // A name given is claimed now, so a clash fails before anything is imported.
    let mut claim = match &a.name {
        Some(n) => {
            let mut c = Claim::take(&run_dir, n)?;
            c.write(&record_for(n))?;
            Some(c)
        }
        None => None,
    };
    if a.no_verify {
        warn_no_verify(ctx);
    }
    // stdout belongs to the container: the import's report is not printed.
    let quiet = ctx.with_output(crate::output::Output {
        quiet: true,
        ..ctx.out.clone()
    });
    let mut stage = stage::Stage::new(&run_dir)?;
    *watch.lock().expect("signal state") = Phase::Preparing {
        remove: Some(stage.dir.clone()),
    };

    // Leased and verified now (bound to its digest, signatures, trust, and the policy unless
    // --no-verify); the lease lives until the container is gone, so `gc` keeps what it reads.
    let checks = Checks::load(ctx, a.policy.as_deref(), a.no_verify)?;
    let opened = open_bundle(&quiet, &a.source(), &checks, "ct run", "mounted")?;
    let name = opened.label();
    let manifest = opened.bundle.manifest().clone();
    let bundle_digest = opened.bundle.digest().to_string();
    let config = image_config(&opened.store, &manifest)?;

    *watch.lock().expect("signal state") = Phase::Staging { cancelled: false };
    let id = a
        .name
        .clone()
        .unwrap_or_else(|| options::default_name(&name, std::process::id()));
    let mut claim = match claim.take() {
        Some(c) => c,
        None => Claim::take(&run_dir, &id)?,
    };
    let log = match reporter.as_deref() {
        Some(r) => {
            let log = detach::log_path(&run_dir, &id)?;
            r.log_to(&log)?;
            Some(log)
        }
        None => None,
    };
    claim.write(&Record {
        log: log.clone(),
        ..record_for(&id)
    })?;

    mount_rootfs(&mut stage, &opened, &name, rootless.is_some())?;

    let terminal = reporter.is_none() && std::io::stdin().is_terminal();
    let (process, hostname) = process(&a, &config, &opts, &id, &name, terminal, &stage.rootfs())?;
    if let Some(r) = &rootless {
        r.check_ids(process.uid, process.gid)?;
        if let Some(note) = r.note().filter(|_| !ctx.out.quiet) {
            eprintln!("ct run: {note}");
        }
    }
    let annotations = annotations(&name, &bundle_digest, &config);
    let (launch, slirp) = launch(
        &runtime,
        &id,
        &mut stage,
        &process,
        &hostname,
        &opts,
        &a,
        &annotations,
        runtime_state.as_deref(),
    )?;
    if !ctx.out.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "ct run: {id}: {name} (bundle {}){}, {runtime}, as {}:{}, network {}",
            bundle_digest,
            if a.no_verify { "" } else { " verified" },
            process.uid,
            process.gid,
            opts.network.as_str(),
        );
    }
    let Some(status) = start_and_wait(&watch, &launch, &runtime, reporter, &id, log.as_deref())?
    else {
        eprintln!("ct run: interrupted before the container started; nothing was run");
        return Ok(INTERRUPTED);
    };
    drop(slirp);
    drop(stage);
    drop(opened);
    drop(claim);
    let code = exit_code(status);
    if log.is_some() {
        eprintln!("ct run: {id} exited with status {code}; everything it used is taken down");
    }
    Ok(code)
}

/// The container's process — arguments, environment, user, working directory — from the image
/// config and the command line, and its hostname.
fn process(
    a: &RunArgs,
    config: &RunDefaults,
    opts: &Checked,
    id: &str,
    name: &str,
    terminal: bool,
    rootfs: &Path,
) -> CmdResult<(spec::Process, String)> {
    // The process, from the image config and the command line.
    let mut args = config.entrypoint.clone();
    if a.args.is_empty() {
        args.extend(config.cmd.iter().cloned());
    } else {
        args.extend(a.args.iter().cloned());
    }
    if args.is_empty() {
        return Err(Failure::usage(format!(
            "bundle {name}'s image has no Entrypoint or Cmd: give the command after --"
        )));
    }
    let mut image_env = config.env.clone();
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        image_env.push(DEFAULT_PATH.into());
    }
    let mut env = options::environment(&image_env, &[], &opts.env, |_| None)?;
    if terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into()); // as docker run -t does
    }
    let hostname = match (&a.hostname, opts.network) {
        (Some(h), _) => h.clone(),
        (None, Network::Host) => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| id.to_string()),
        (None, _) => id.chars().take(MAX_HOSTNAME).collect(),
    };
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={hostname}"));
    }
    let user_spec = a
        .user
        .clone()
        .or_else(|| config.user.clone())
        .unwrap_or_else(|| "0".into());
    let (uid, gid) = rootfs::resolve_user(&user_spec, rootfs)?;
    let cwd = a
        .workdir
        .clone()
        .or_else(|| config.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    rootfs::make_dir(rootfs, &cwd)?;
    let process = spec::Process {
        args,
        env,
        cwd,
        uid,
        gid,
        terminal,
    };
    Ok((process, hostname))
}

/// How to start and take down the container: podman's command line, or the OCI spec written
/// for runc/crun (with its network namespace and, for a private network, slirp4netns). A
/// rootless run gives runc its own state directory (`rootless_state`) and the spec's rootless
/// form.
#[allow(clippy::too_many_arguments)]
fn launch(
    runtime: &str,
    id: &str,
    stage: &mut stage::Stage,
    process: &spec::Process,
    hostname: &str,
    opts: &Checked,
    a: &RunArgs,
    annotations: &[(&str, String)],
    rootless_state: Option<&Path>,
) -> CmdResult<(spec::Launch, Option<network::Slirp>)> {
    let rlimits = spec::rlimits();
    let mut slirp = None;
    let launch = if runtime == "podman" {
        spec::podman_launch(
            id,
            &stage.rootfs(),
            process,
            &spec::PodmanExtra {
                hostname,
                network: opts.network,
                publish: &opts.publish,
                volumes: &opts.volumes,
                cap_add: &a.cap_add,
                cap_drop: &a.cap_drop,
                privileged: a.privileged,
                rlimits: &rlimits,
                annotations,
            },
        )
    } else {
        let etc = network::etc_files(&stage.dir, hostname, opts.network)?;
        let netns = match opts.network {
            Network::None => NetNs::New,
            Network::Host => NetNs::Host,
            Network::Private => {
                let path = network::create_netns(stage)?;
                let api = stage.dir.join("slirp.sock");
                slirp = Some(network::start_slirp(&path, &api, &opts.publish)?);
                NetNs::Path(path)
            }
        };
        let rootfs = stage.rootfs();
        let host_network = matches!(netns, NetNs::Host);
        let mut spec = spec::oci_spec(&spec::Settings {
            process,
            rootfs: &rootfs,
            hostname,
            capabilities: &opts.capabilities,
            privileged: a.privileged,
            netns,
            etc: &etc,
            volumes: &opts.volumes,
            rlimits: &rlimits,
            annotations,
        });
        if rootless_state.is_some() {
            spec::rootless(&mut spec, host_network);
        }
        spec::write_spec(&stage.bundle(), &spec)?;
        spec::oci_launch(runtime, id, &stage.bundle(), rootless_state)
    };
    Ok((launch, slirp))
}

/// Start the runtime (unless a signal cancelled the run first: None), wait for it, and have it
/// delete the container. The status is the container's.
fn start_and_wait(
    watch: &signals::Shared,
    launch: &spec::Launch,
    runtime: &str,
    reporter: Option<&mut Reporter>,
    id: &str,
    log: Option<&Path>,
) -> CmdResult<Option<std::process::ExitStatus>> {
    let mut child = {
        let mut st = watch.lock().expect("signal state");
        if matches!(*st, Phase::Staging { cancelled: true }) {
            return Ok(None);
        }
        let child = Command::new(&launch.run[0])
            .args(&launch.run[1..])
            .env_remove("CT_PASSPHRASE")
            .spawn()
            .map_err(|e| Failure::io(format!("starting {runtime}"), e))?;
        *st = Phase::Running(
            nix::unistd::Pid::from_raw(child.id() as i32),
            launch.kill.clone(),
        );
        child
    };
    if let (Some(r), Some(log)) = (reporter, log) {
        r.started(id, log);
    }
    let status = child
        .wait()
        .map_err(|e| Failure::io(format!("waiting for {runtime}"), e))?;
    let _ = Command::new(&launch.delete[0])
        .args(&launch.delete[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    Ok(Some(status))
}

/// The container's exit status as ct's: its code, or 128 + the signal that ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        _ => USAGE,
    }
}

/// The verified rootfs under a writable overlay, in the stage. Root mounts the verified tree
/// for itself alone (no allow_other: the container reads it through the overlay, which reaches
/// its lower layer with the credentials of whoever mounted it, while checking the caller
/// against the image's modes), and nosuid: setuid files work through the overlay, whose own
/// flags decide, never straight from this mount. A rootless run is root in its user namespace
/// and mounts the same way there (the kernel allows FUSE, tmpfs and overlayfs mounts to a
/// user namespace's root), so the image's ids are the namespace's.
fn mount_rootfs(
    stage: &mut stage::Stage,
    opened: &Opened,
    name: &str,
    rootless: bool,
) -> CmdResult {
    let mount_opts = MountOptions {
        allow_other: false,
        suid: false,
        threads: cerro_fuse::default_threads(),
        fsname: format!("cerro:{name}"),
    };
    let mounted = mount_verified(
        opened.store.clone(),
        &View::Rootfs(TreeRoot::new(name.to_string(), &opened.bundle)),
        &stage.lower(),
        &mount_opts,
        Arc::new(move |m: &str| {
            // The host's sysfs is not the namespace's to write: the readahead stays as it is,
            // which is no news to a rootless run.
            if !(rootless && m.starts_with("note: readahead")) {
                eprintln!("ct run: {m}")
            }
        }),
    )?;
    stage.set_fuse(mounted);
    stage.mount_overlay(rootless)?;
    Ok(())
}

/// The annotations the container carries: which bundle it runs, and the image's exposed ports.
fn annotations(
    name: &str,
    bundle_digest: &str,
    config: &RunDefaults,
) -> [(&'static str, String); 3] {
    [
        ("org.cerro-torre.bundle", name.to_string()),
        ("org.cerro-torre.bundle-digest", bundle_digest.to_string()),
        (
            "org.cerro-torre.exposed-ports",
            config.exposed_ports.join(","),
        ),
    ]
}

/// What `--no-verify` still checks, said before anything runs.
fn warn_no_verify(ctx: &Ctx) {
    eprintln!(
        "{} --no-verify: the policy is NOT evaluated; signatures and trust are still \
         checked, and every block read is still verified against the signed tree",
        ctx.out.warn("warning:")
    );
}

/// The run's record under its name (`ct stop`, `ct run --name` clashes), without a log yet.
fn record(a: &RunArgs, runtime: &str, name: &str) -> Record {
    Record {
        name: name.to_string(),
        pid: std::process::id(),
        bundle: a.bundle.clone(),
        runtime: runtime.to_string(),
        log: None,
        started_at: chrono::Utc::now().timestamp(),
    }
}
