//! `ct run`'s options, parsed and checked before anything is mounted: the network mode and
//! published ports, the environment (`-e`, `--env-file`), bind mounts (`-v`), capabilities and
//! the container's name. Pure functions of their inputs (the environment lookup is passed in),
//! so each rule is unit-tested here.

use crate::exit::{CmdResult, Failure};
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

pub use crate::app::Network;

impl Network {
    /// The mode a run gets: the one asked for, else `private` when ports are published (they
    /// need it) and `none` otherwise. Publishing with `none` or `host` is refused.
    pub fn choose(asked: Option<Network>, publish: &[Publish]) -> CmdResult<Network> {
        match (asked, publish.is_empty()) {
            (None, true) => Ok(Network::None),
            (None, false) | (Some(Network::Private), _) => Ok(Network::Private),
            (Some(n), true) => Ok(n),
            (Some(n), false) => Err(Failure::usage(format!(
                "-p publishes ports through a private network; --network {} has none to publish",
                n.as_str()
            ))
            .hint("drop --network (with -p it is private), or drop -p")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Private => "private",
            Network::Host => "host",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `-p [ADDR:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Where the host listens: 127.0.0.1 unless the user gave an address.
    pub addr: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl Publish {
    pub fn parse(s: &str) -> CmdResult<Publish> {
        let bad = |why: &str| {
            Failure::usage(format!("-p {s:?}: {why}")).hint(
                "give [ADDR:]HOSTPORT:CONTAINERPORT[/tcp|/udp], e.g. -p 8080:80 or -p 0.0.0.0:53:53/udp",
            )
        };
        let (ports, proto) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad("the protocol is tcp or udp")),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (addr, host, container) = match parts.as_slice() {
            [h, c] => (Ipv4Addr::LOCALHOST, *h, *c),
            [a, h, c] => (
                a.parse::<Ipv4Addr>()
                    .map_err(|_| bad("the address must be an IPv4 address"))?,
                *h,
                *c,
            ),
            _ => return Err(bad("both a host port and a container port are needed")),
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad("ports are numbers from 1 to 65535")),
        };
        Ok(Publish {
            addr,
            host_port: port(host)?,
            container_port: port(container)?,
            proto,
        })
    }

    /// The same, as podman's `-p` takes it (always with the address, so podman binds the same).
    pub fn podman_arg(&self) -> String {
        format!(
            "{}:{}:{}/{}",
            self.addr,
            self.host_port,
            self.container_port,
            self.proto.as_str()
        )
    }
}

/// One `-v HOST:CONTAINER[:ro|:rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host path, canonical (it must exist).
    pub host: PathBuf,
    /// An absolute path in the container, without `.` or `..`.
    pub container: String,
    pub readonly: bool,
}

impl Volume {
    pub fn parse(s: &str) -> CmdResult<Volume> {
        let bad = |why: String| {
            Failure::usage(format!("-v {s:?}: {why}"))
                .hint("give HOST:CONTAINER[:ro|:rw], e.g. -v /srv/data:/data:ro")
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (host, container, readonly) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "ro"] => (*h, *c, true),
            [h, c, "rw"] => (*h, *c, false),
            [_, _, o] => return Err(bad(format!("unknown option {o:?} (ro or rw)"))),
            _ => return Err(bad("expected HOST:CONTAINER".into())),
        };
        let cpath = Path::new(container);
        if !cpath.is_absolute()
            || cpath.components().count() < 2
            || cpath
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(bad(format!(
                "the container path {container:?} must be absolute, not /, without . or .."
            )));
        }
        let host =
            std::fs::canonicalize(host).map_err(|e| bad(format!("the host path {host:?}: {e}")))?;
        Ok(Volume {
            host,
            container: container.trim_end_matches('/').to_string(),
            readonly,
        })
    }
}

/// Largest `--env-file` read (a list of variables, not data).
const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// The container's environment: the image's `Env`, then each `--env-file`, then each `-e`, a
/// later value of a variable replacing an earlier one in place. `KEY` without `=` takes its
/// value from `lookup` (ct's own environment) and is left out when that has none, as with
/// `docker run`.
pub fn environment(
    image: &[String],
    files: &[PathBuf],
    args: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> CmdResult<Vec<String>> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(old) => *old = entry,
            None => env.push(entry),
        }
    };
    for e in image {
        set(e.clone());
    }
    let mut one = |item: &str, from: &str| -> CmdResult {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (item, lookup(item)),
        };
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c == '\0') {
            return Err(Failure::usage(format!(
                "{from}: {key:?} is not a variable name"
            )));
        }
        if let Some(v) = value {
            set(format!("{key}={v}"));
        }
        Ok(())
    };
    for f in files {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(f)
            .and_then(|h| h.take(MAX_ENV_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| Failure::io(format!("reading --env-file {}", f.display()), e))?;
        if text.len() as u64 > MAX_ENV_FILE_BYTES {
            return Err(Failure::usage(format!(
                "--env-file {} is larger than {MAX_ENV_FILE_BYTES} bytes",
                f.display()
            )));
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            one(line, &format!("{} line {}", f.display(), n + 1))?;
        }
    }
    for a in args {
        one(a, &format!("-e {a:?}"))?;
    }
    Ok(env)
}

/// Linux capabilities by number (capability.h); the kernel's `cap_last_cap` says how many of
/// them it knows.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What podman gives a root container (containers-common's `default_capabilities`, as podman
/// 4.3 on Debian 12 writes into its runtime spec: measured with `podman run --rootfs`).
pub const DEFAULT_CAPABILITIES: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// The capability named by a `--cap-add`/`--cap-drop` value (`net_admin`, `CAP_NET_ADMIN`), or
/// None for `ALL`.
fn capability(arg: &str, known: &[&'static str]) -> CmdResult<Option<&'static str>> {
    let upper = arg.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(None);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    known
        .iter()
        .find(|c| **c == full)
        .map(|c| Some(*c))
        .ok_or_else(|| {
            Failure::usage(format!("unknown capability {arg:?}"))
                .hint("names as in capabilities(7), with or without CAP_ (e.g. NET_ADMIN), or ALL")
        })
}

/// The container's capability set: podman's defaults (every capability ct itself holds with
/// `--privileged`), then `--cap-add ALL`, `--cap-drop ALL`, each added one, each dropped one
/// (so a capability both added and dropped is dropped), in capability order. Names are checked
/// against `known` (the kernel's); `have` is what this process may grant (its bounding set: a
/// runtime cannot give a container more than it has), so ALL means all of those, and asking
/// for one outside it is refused.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
    known: &[&'static str],
    have: &[&'static str],
) -> CmdResult<Vec<String>> {
    let add = add
        .iter()
        .map(|a| capability(a, known))
        .collect::<CmdResult<Vec<_>>>()?;
    let drop = drop
        .iter()
        .map(|a| capability(a, known))
        .collect::<CmdResult<Vec<_>>>()?;
    if let Some(c) = add.iter().flatten().find(|c| !have.contains(c)) {
        return Err(Failure::usage(format!(
            "--cap-add {c}: ct run does not hold {c} itself (it is not in its bounding set), so \
             no container it starts can"
        ))
        .hint("run ct from a context that has it, or do without"));
    }
    let mut set: Vec<&str> = if privileged {
        have.to_vec()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| have.contains(c))
            .collect()
    };
    if add.contains(&None) {
        set = have.to_vec();
    }
    if drop.contains(&None) {
        set.clear();
    }
    set.extend(add.iter().flatten());
    set.retain(|c| !drop.contains(&Some(*c)));
    Ok(known
        .iter()
        .filter(|c| set.contains(c))
        .map(|c| c.to_string())
        .collect())
}

/// The capabilities this kernel knows: those up to `/proc/sys/kernel/cap_last_cap`.
pub fn known_capabilities() -> &'static [&'static str] {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(CAPABILITIES.len() - 1);
    &CAPABILITIES[..=last.min(CAPABILITIES.len() - 1)]
}

/// The known capabilities in this process's bounding set (`CapBnd` in /proc/self/status).
pub fn own_capabilities(known: &[&'static str]) -> Vec<&'static str> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    known
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Longest container name (the runtimes take far more; this keeps log and record names short).
const MAX_NAME: usize = 64;

/// A container name: a letter or digit, then letters, digits, `_`, `.` or `-` (what runc and
/// podman accept as an id), at most [`MAX_NAME`] long.
pub fn check_name(name: &str) -> CmdResult {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "{name:?} is not a container name: a letter or digit, then letters, digits, _ . or -, at most {MAX_NAME}"
        )))
    }
}

/// The name a container gets without `--name`: `cerro-BUNDLE-PID`, with anything a name may not
/// hold in the bundle's name replaced by `-`.
pub fn default_name(bundle: &str, pid: u32) -> String {
    let clean: String = bundle
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME - 18)
        .collect();
    format!("cerro-{clean}-{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = Publish::parse("8080:80").unwrap();
        assert_eq!(
            (p.addr, p.host_port, p.container_port, p.proto),
            (Ipv4Addr::LOCALHOST, 8080, 80, Proto::Tcp)
        );
        assert_eq!(p.podman_arg(), "127.0.0.1:8080:80/tcp");
        let p = Publish::parse("0.0.0.0:5353:53/udp").unwrap();
        assert_eq!(p.podman_arg(), "0.0.0.0:5353:53/udp");
        for bad in [
            "80",
            "0:80",
            "8080:70000",
            "x:1:2",
            "1:2/sctp",
            "a:b",
            "1:2:3:4",
        ] {
            assert_eq!(Publish::parse(bad).unwrap_err().code, 64, "{bad}");
        }
    }

    #[test]
    fn network_defaults_to_none_and_to_private_with_ports() {
        let p = [Publish::parse("1:2").unwrap()];
        assert_eq!(Network::choose(None, &[]).unwrap(), Network::None);
        assert_eq!(Network::choose(None, &p).unwrap(), Network::Private);
        assert_eq!(
            Network::choose(Some(Network::Host), &[]).unwrap(),
            Network::Host
        );
        assert_eq!(
            Network::choose(Some(Network::None), &p).unwrap_err().code,
            64
        );
        assert_eq!(
            Network::choose(Some(Network::Host), &p).unwrap_err().code,
            64
        );
    }

    #[test]
    fn volumes() {
        let v = Volume::parse("/tmp:/data:ro").unwrap();
        assert_eq!(v.container, "/data");
        assert!(v.readonly);
        assert!(!Volume::parse("/tmp:/data/").unwrap().readonly);
        assert_eq!(Volume::parse("/tmp:/data/").unwrap().container, "/data");
        for bad in [
            "/tmp:data",
            "/tmp:/",
            "/tmp:/a/../b",
            "/tmp:/a:rx",
            "/no/such/dir:/a",
            "/tmp",
        ] {
            assert_eq!(Volume::parse(bad).unwrap_err().code, 64, "{bad}");
        }
    }

    #[test]
    fn environment_order_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(
            &f,
            "# comment\n\nA=from-file\n  B=spaced = kept \nFROMHOST\nMISSING\n",
        )
        .unwrap();
        let lookup = |k: &str| (k == "FROMHOST").then(|| "host-value".to_string());
        let env = environment(
            &["PATH=/bin".into(), "A=image".into()],
            &[f],
            &["A=arg".into(), "C=x=y".into()],
            lookup,
        )
        .unwrap();
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "A=arg",
                "B=spaced = kept ",
                "FROMHOST=host-value",
                "C=x=y"
            ]
        );
        assert_eq!(
            environment(&[], &[], &["=x".into()], |_| None)
                .unwrap_err()
                .code,
            64
        );
        assert_eq!(
            environment(&[], &[], &["A B=x".into()], |_| None)
                .unwrap_err()
                .code,
            64
        );
    }

    #[test]
    fn capability_sets() {
        let known = &CAPABILITIES[..];
        let capabilities =
            |p: bool, a: &[String], d: &[String], k: &[&'static str]| capabilities(p, a, d, k, k);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let d = capabilities(false, &[], &[], known).unwrap();
        assert_eq!(d.len(), 11);
        assert!(d.contains(&"CAP_CHOWN".to_string()));
        let c = capabilities(false, &s(&["net_admin"]), &s(&["CAP_CHOWN"]), known).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()) && !c.contains(&"CAP_CHOWN".into()));
        assert_eq!(
            capabilities(false, &s(&["NET_BIND_SERVICE"]), &s(&["ALL"]), known).unwrap(),
            ["CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(
            capabilities(false, &s(&["ALL"]), &s(&["MKNOD"]), known)
                .unwrap()
                .len(),
            40
        );
        assert_eq!(capabilities(true, &[], &[], known).unwrap().len(), 41);
        assert_eq!(
            capabilities(false, &s(&["X"]), &[], known)
                .unwrap_err()
                .code,
            64
        );
        // What ct does not hold itself: not in ALL, refused by name.
        let have: Vec<_> = known
            .iter()
            .copied()
            .filter(|c| *c != "CAP_SYS_RESOURCE")
            .collect();
        assert_eq!(
            super::capabilities(true, &[], &[], known, &have)
                .unwrap()
                .len(),
            40
        );
        assert_eq!(
            super::capabilities(false, &s(&["SYS_RESOURCE"]), &[], known, &have)
                .unwrap_err()
                .code,
            64
        );
        // Both added and dropped: dropped.
        assert!(
            !capabilities(false, &s(&["SYS_ADMIN"]), &s(&["SYS_ADMIN"]), known)
                .unwrap()
                .contains(&"CAP_SYS_ADMIN".to_string())
        );
    }

    #[test]
    fn names() {
        check_name("web").unwrap();
        check_name("a.b_c-1").unwrap();
        for bad in ["", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert_eq!(check_name(bad).unwrap_err().code, 64, "{bad:?}");
        }
        assert_eq!(default_name("my app/1", 42), "cerro-my-app-1-42");
        check_name(&default_name(&"é".repeat(100), u32::MAX)).unwrap();
    }
}
