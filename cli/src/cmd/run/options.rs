//! `ct run`'s options, parsed and checked before anything is mounted: the network mode and
//! published ports, the environment (`-e`, `--env-file`), bind mounts (`-v`), capabilities and
//! the container's name. Pure functions of their inputs (the environment lookup is passed in),
//! so each rule is unit-tested here.

use crate::exit::{CmdResult, Failure};
use cerro_core::runtime::caps::{self, CapError, CAPABILITIES};
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

pub use cerro_core::runtime::spec::Volume;

/// One `-v HOST:CONTAINER[:ro|:rw]`: the host path made canonical (it must exist), the
/// container path absolute, not `/`, without `.` or `..`.
pub fn parse_volume(s: &str) -> CmdResult<Volume> {
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

/// The container's capability set (core's `runtime::caps::capabilities`), its refusals as
/// usage errors.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
    known: &[&'static str],
    have: &[&'static str],
) -> CmdResult<Vec<String>> {
    caps::capabilities(privileged, add, drop, known, have).map_err(|e| match e {
        CapError::Unknown(arg) => Failure::usage(format!("unknown capability {arg:?}"))
            .hint("names as in capabilities(7), with or without CAP_ (e.g. NET_ADMIN), or ALL"),
        CapError::NotHeld(c) => Failure::usage(format!(
            "--cap-add {c}: ct run does not hold {c} itself (it is not in its bounding set), so \
             no container it starts can"
        ))
        .hint("run ct from a context that has it, or do without"),
    })
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
        let v = parse_volume("/tmp:/data:ro").unwrap();
        assert_eq!(v.container, "/data");
        assert!(v.readonly);
        assert!(!parse_volume("/tmp:/data/").unwrap().readonly);
        assert_eq!(parse_volume("/tmp:/data/").unwrap().container, "/data");
        for bad in [
            "/tmp:data",
            "/tmp:/",
            "/tmp:/a/../b",
            "/tmp:/a:rx",
            "/no/such/dir:/a",
            "/tmp",
        ] {
            assert_eq!(parse_volume(bad).unwrap_err().code, 64, "{bad}");
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
    fn capability_refusals_are_usage_errors() {
        let known = &CAPABILITIES[..];
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            capabilities(false, &[], &[], known, known).unwrap().len(),
            11
        );
        let e = capabilities(false, &s(&["X"]), &[], known, known).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (64, "unknown capability \"X\"")
        );
        let have: Vec<_> = known.iter().copied().filter(|c| *c != "CAP_BPF").collect();
        let e = capabilities(false, &s(&["bpf"]), &[], known, &have).unwrap_err();
        assert_eq!(e.code, 64);
        assert!(
            e.message
                .starts_with("--cap-add CAP_BPF: ct run does not hold"),
            "{}",
            e.message
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
