//! The container's settings as each runtime takes them: for runc and crun the OCI runtime spec
//! that core's `runtime::spec` builds, written here as `config.json` with this host's limits
//! (and, for a rootless run, what runc can do in a user namespace: [`rootless`]); for podman the
//! same settings as `podman run --rootfs` options, leaving podman its own defaults.

use super::options::{Network, Publish};
use crate::exit::{CmdResult, Failure};
pub use cerro_core::runtime::spec::{oci_spec, NetNs, Process, Rlimit, Settings, Volume};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// The spec of a rootless run, which runc runs in the user namespace ct run made (the container
/// shares it: it has no user namespace of its own in the spec, so its ids are that namespace's
/// mapping). What differs from root's, as `runc spec --rootless` has it: no `resources` (runc
/// cannot make cgroups for an ordinary user without a delegated systemd slice, so no pids limit
/// either: the user's own RLIMIT_NPROC applies), devpts without `gid=5` (no group 5 in a single
/// mapping), and with the host's network /sys bound from the host read-only (sysfs can only be
/// mounted by the owner of the network namespace).
pub fn rootless(spec: &mut Value, host_network: bool) {
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("resources");
    }
    let Some(mounts) = spec["mounts"].as_array_mut() else {
        return;
    };
    for m in mounts.iter_mut() {
        match m["destination"].as_str() {
            Some("/dev/pts") => {
                if let Some(o) = m["options"].as_array_mut() {
                    o.retain(|x| !x.as_str().is_some_and(|x| x.starts_with("gid=")));
                }
            }
            Some("/sys") if host_network => {
                *m = serde_json::json!({"destination": "/sys", "type": "bind", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            _ => {}
        }
    }
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

/// runc or crun on the runtime bundle at `bundle`; with `state`, the runtime keeps its state
/// there (`--root`: a rootless run's own directory) instead of its default under /run.
pub fn oci_launch(runtime: &str, id: &str, bundle: &Path, state: Option<&Path>) -> Launch {
    let b = bundle.to_string_lossy().into_owned();
    let mut base = vec![runtime.to_string()];
    if let Some(s) = state {
        base.extend(["--root".to_string(), s.to_string_lossy().into_owned()]);
    }
    let with = |rest: &[&str]| base.iter().cloned().chain(strs(rest)).collect();
    Launch {
        run: with(&["run", "--bundle", &b, id]),
        kill: with(&["kill", id, "KILL"]),
        delete: with(&["delete", "-f", id]),
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
    fn rootless_runc_gets_its_state_dir_and_a_spec_it_can_apply() {
        let l = oci_launch("runc", "c", Path::new("/b"), Some(Path::new("/s/runc")));
        assert_eq!(l.run.join(" "), "runc --root /s/runc run --bundle /b c");
        assert_eq!(l.kill.join(" "), "runc --root /s/runc kill c KILL");
        assert_eq!(l.delete.join(" "), "runc --root /s/runc delete -f c");
        assert_eq!(
            oci_launch("runc", "c", Path::new("/b"), None).run.join(" "),
            "runc run --bundle /b c"
        );
        let p = process();
        let settings = |netns| Settings {
            process: &p,
            rootfs: Path::new("/r"),
            hostname: "h",
            capabilities: &[],
            privileged: false,
            netns,
            etc: &[],
            volumes: &[],
            rlimits: &[],
            annotations: &[],
        };
        let mount = |v: &Value, dest: &str| {
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == dest)
                .unwrap()
                .clone()
        };
        for host in [false, true] {
            let mut v = oci_spec(&settings(if host { NetNs::Host } else { NetNs::New }));
            rootless(&mut v, host);
            assert!(v["linux"].get("resources").is_none(), "{v}");
            assert!(!mount(&v, "/dev/pts")["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o.as_str().unwrap().starts_with("gid=")));
            let sys = mount(&v, "/sys");
            assert_eq!(sys["type"], if host { "bind" } else { "sysfs" }, "{sys}");
            assert!(sys["options"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("ro")));
            assert!(!v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "user"));
        }
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
