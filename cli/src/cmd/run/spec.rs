//! The container's settings as each runtime takes them: for runc and crun an OCI runtime spec
//! (`config.json`) written whole by ct with what podman gives a root container (capabilities,
//! mounts, masked and read-only paths, rlimits, no_new_privileges, pids limit, the ping sysctl)
//! — measured from the spec podman 4.3 writes on these machines — and for podman the same
//! settings as `podman run --rootfs` options, leaving podman its own defaults.

use super::options::{Network, Publish, Volume};
use crate::exit::{CmdResult, Failure};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The OCI runtime spec version written.
const OCI_VERSION: &str = "1.0.2";
/// Processes a container may have (podman's `pids_limit`).
pub const PIDS_LIMIT: u64 = 2048;
/// Size of the container's /dev and /dev/shm tmpfs (podman's and runc's 64 MiB).
const DEV_SIZE: &str = "size=65536k";
/// The file-mode creation mask podman gives the process (0022).
const UMASK: u32 = 0o022;
/// Paths podman hides from a container (an empty read-only tmpfs over directories, /dev/null
/// over files), and those it makes read-only: kernel state a container has no business with.
const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];
const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the container runs.
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub terminal: bool,
}

/// One resource limit: the OCI name, podman's `--ulimit` name, soft and hard values.
pub struct Rlimit {
    pub oci: &'static str,
    pub podman: &'static str,
    pub soft: u64,
    pub hard: u64,
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

/// The container's open-file and process limits: this process's own. podman's defaults raise
/// them, which fails where root lacks CAP_SYS_RESOURCE (measured on these machines); a runtime
/// can always set what its caller has. The process limit is capped at the kernel's pid_max,
/// above which it means nothing (and podman's monitor runs below it here).
pub fn rlimits() -> Vec<Rlimit> {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut out = Vec::new();
    for (limit, oci, podman, cap) in [
        ("Max open files", "RLIMIT_NOFILE", "nofile", None),
        ("Max processes", "RLIMIT_NPROC", "nproc", pid_max),
    ] {
        if let Some((soft, hard)) = own_limit(limit) {
            let hard = cap.map_or(hard, |c| hard.min(c));
            out.push(Rlimit {
                oci,
                podman,
                soft: soft.min(hard),
                hard,
            });
        }
    }
    out
}

/// The container's network namespace, as the spec names it.
pub enum NetNs {
    /// A new one from the runtime (loopback only).
    New,
    /// One ct made (with slirp4netns on it).
    Path(PathBuf),
    /// The host's.
    Host,
}

/// Everything the runtime spec says.
pub struct Settings<'a> {
    pub process: &'a Process,
    pub rootfs: &'a Path,
    pub hostname: &'a str,
    pub capabilities: &'a [String],
    pub privileged: bool,
    pub netns: NetNs,
    /// Files ct made for the container: (path in the container, file).
    pub etc: &'a [(String, PathBuf)],
    pub volumes: &'a [Volume],
    pub rlimits: &'a [Rlimit],
    pub annotations: &'a [(&'a str, String)],
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": kind, "source": source, "options": options})
}

/// The OCI runtime spec for runc and crun.
pub fn oci_spec(s: &Settings) -> Value {
    let p = s.process;
    let sys_mode = if s.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "noexec", "strictatime", "mode=755", DEV_SIZE],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", DEV_SIZE],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ];
    for (dest, file) in s.etc {
        mounts.push(json!({"destination": dest, "type": "bind", "source": file,
            "options": ["bind", "rprivate"]}));
    }
    for v in s.volumes {
        let mut options = vec!["rbind", "rprivate"];
        if v.readonly {
            options.push("ro");
        }
        mounts.push(
            json!({"destination": v.container, "type": "bind", "source": v.host,
            "options": options}),
        );
    }
    let mut namespaces = vec![json!({"type": "pid"})];
    match &s.netns {
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Path(path) => namespaces.push(json!({"type": "network", "path": path})),
        NetNs::Host => {}
    }
    for t in ["ipc", "uts", "mount"] {
        namespaces.push(json!({ "type": t }));
    }
    let mut linux = json!({
        "resources": {
            "devices": [{"allow": s.privileged, "access": "rwm"}],
            "pids": {"limit": PIDS_LIMIT},
        },
        "namespaces": namespaces,
    });
    if !matches!(s.netns, NetNs::Host) {
        // Unprivileged ICMP sockets for root in the container, so ping works without NET_RAW
        // (podman sets this; it is per network namespace, so not with the host's).
        linux["sysctl"] = json!({"net.ipv4.ping_group_range": "0 0"});
    }
    if !s.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": p.terminal,
            "user": {"uid": p.uid, "gid": p.gid, "umask": UMASK},
            "args": p.args,
            "env": p.env,
            "cwd": p.cwd,
            "capabilities": {
                "bounding": s.capabilities,
                "effective": s.capabilities,
                "permitted": s.capabilities,
            },
            "rlimits": s.rlimits.iter().map(|r| json!({"type": r.oci, "hard": r.hard, "soft": r.soft})).collect::<Vec<_>>(),
            // podman's default: setuid programs in the image keep working (`su`, `ping`).
            "noNewPrivileges": false,
        },
        "root": {"path": s.rootfs, "readonly": false},
        "hostname": s.hostname,
        "mounts": mounts,
        "annotations": s.annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "linux": linux,
    })
}

/// Write `spec` as `BUNDLE/config.json` (a new file, 0600, in ct's own staging directory).
pub fn write_spec(bundle: &Path, spec: &Value) -> CmdResult {
    let path = bundle.join("config.json");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(spec).expect("serializes")))
        .map_err(|e| Failure::io(format!("writing the runtime spec {}", path.display()), e))
}

/// How to start the container, kill it, and remove what the runtime keeps of it.
pub struct Launch {
    pub run: Vec<String>,
    pub kill: Vec<String>,
    pub delete: Vec<String>,
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// runc or crun on the runtime bundle at `bundle`.
pub fn oci_launch(runtime: &str, id: &str, bundle: &Path) -> Launch {
    let b = bundle.to_string_lossy().into_owned();
    Launch {
        run: strs(&[runtime, "run", "--bundle", &b, id]),
        kill: strs(&[runtime, "kill", id, "KILL"]),
        delete: strs(&[runtime, "delete", "-f", id]),
    }
}

/// What podman is told besides the process: the user's own capability options (podman
/// applies them to its defaults, as ct does for runc), the network, ports and volumes.
pub struct PodmanExtra<'a> {
    pub hostname: &'a str,
    pub network: Network,
    pub publish: &'a [Publish],
    pub volumes: &'a [Volume],
    pub cap_add: &'a [String],
    pub cap_drop: &'a [String],
    pub privileged: bool,
    pub rlimits: &'a [Rlimit],
    pub annotations: &'a [(&'a str, String)],
}

/// `podman run --rm --rootfs` on the overlay with the same process and settings.
pub fn podman_launch(id: &str, rootfs: &Path, p: &Process, x: &PodmanExtra) -> Launch {
    let network = match x.network {
        Network::None => "none",
        Network::Host => "host",
        Network::Private => "slirp4netns",
    };
    let mut run = strs(&[
        "podman",
        "run",
        "--rm",
        "-i",
        "--name",
        id,
        "--network",
        network,
        "--hostname",
        x.hostname,
    ]);
    if p.terminal {
        run.push("-t".into());
    }
    run.extend(strs(&[
        "--user",
        &format!("{}:{}", p.uid, p.gid),
        "--workdir",
        &p.cwd,
    ]));
    for e in &p.env {
        run.extend(["--env".to_string(), e.clone()]);
    }
    for port in x.publish {
        run.extend(["--publish".to_string(), port.podman_arg()]);
    }
    for v in x.volumes {
        let ro = if v.readonly { ":ro" } else { "" };
        run.extend([
            "--volume".to_string(),
            format!("{}:{}{ro}", v.host.display(), v.container),
        ]);
    }
    for c in x.cap_add {
        run.extend(["--cap-add".to_string(), c.clone()]);
    }
    for c in x.cap_drop {
        run.extend(["--cap-drop".to_string(), c.clone()]);
    }
    if x.privileged {
        run.push("--privileged".into());
    }
    for (k, v) in x.annotations {
        run.extend(["--annotation".to_string(), format!("{k}={v}")]);
    }
    // podman spells "unlimited" -1.
    let show = |v: u64| {
        if v == u64::MAX {
            "-1".to_string()
        } else {
            v.to_string()
        }
    };
    for r in x.rlimits {
        run.extend([
            "--ulimit".to_string(),
            format!("{}={}:{}", r.podman, show(r.soft), show(r.hard)),
        ]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn process() -> Process {
        Process {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            terminal: false,
        }
    }

    #[test]
    fn podmans_defaults_and_privileged() {
        let p = process();
        let caps = vec!["CAP_CHOWN".to_string()];
        let mut s = Settings {
            process: &p,
            rootfs: Path::new("/r"),
            hostname: "h",
            capabilities: &caps,
            privileged: false,
            netns: NetNs::Path("/s/netns".into()),
            etc: &[("/etc/hosts".into(), "/s/hosts".into())],
            volumes: &[],
            rlimits: &[],
            annotations: &[],
        };
        let v = oci_spec(&s);
        assert_eq!(v["process"]["capabilities"]["effective"][0], "CAP_CHOWN");
        assert_eq!(v["process"]["noNewPrivileges"], false);
        assert_eq!(v["linux"]["maskedPaths"].as_array().unwrap().len(), 11);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 2048);
        assert_eq!(v["linux"]["namespaces"][1]["path"], "/s/netns");
        assert_eq!(
            v["linux"]["sysctl"]["net.ipv4.ping_group_range"], "0 0",
            "{v}"
        );
        let sys = |v: &Value| {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == "/sys")
                .unwrap()["options"]
                .clone()
        };
        assert!(sys(&v).as_array().unwrap().contains(&json!("ro")));
        s.privileged = true;
        s.netns = NetNs::Host;
        let v = oci_spec(&s);
        assert!(v["linux"].get("maskedPaths").is_none());
        assert!(v["linux"].get("sysctl").is_none());
        assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], true);
        assert!(sys(&v).as_array().unwrap().contains(&json!("rw")));
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
    }

    #[test]
    fn podman_gets_the_same_settings() {
        let p = process();
        let publish = [Publish::parse("8080:80").unwrap()];
        let l = podman_launch(
            "web",
            Path::new("/r"),
            &p,
            &PodmanExtra {
                hostname: "web",
                network: Network::Private,
                publish: &publish,
                volumes: &[],
                cap_add: &["NET_ADMIN".into()],
                cap_drop: &[],
                privileged: false,
                rlimits: &[Rlimit {
                    oci: "RLIMIT_NOFILE",
                    podman: "nofile",
                    soft: 1024,
                    hard: u64::MAX,
                }],
                annotations: &[],
            },
        );
        let cmd = l.run.join(" ");
        for want in [
            "--network slirp4netns",
            "--publish 127.0.0.1:8080:80/tcp",
            "--cap-add NET_ADMIN",
            "--ulimit nofile=1024:-1",
            "--rootfs /r sh",
        ] {
            assert!(cmd.contains(want), "{want} in {cmd}");
        }
    }
}
