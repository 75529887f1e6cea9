//! The OCI runtime spec (`config.json`) ct writes for runc and crun: what podman gives a root
//! container (capabilities, mounts, masked and read-only paths, rlimits, no_new_privileges,
//! pids limit, the ping sysctl), measured from the spec podman 4.3 writes on Debian 12. Pure:
//! the caller reads the host's limits and writes the file.

use serde_json::{json, Value};
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

/// One bind mount from the host (`-v HOST:CONTAINER[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host path, canonical (it must exist).
    pub host: PathBuf,
    /// An absolute path in the container, without `.` or `..`.
    pub container: String,
    pub readonly: bool,
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
}
