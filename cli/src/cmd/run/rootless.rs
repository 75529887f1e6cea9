//! `ct run` as an ordinary user: before it starts a thread, ct run moves itself into a user
//! namespace and a mount namespace of its own (the user is uid 0 there, with every capability
//! over what the namespace owns), and from then on takes the same path as root — the verified
//! FUSE mount (made by the kernel in the namespace, so the image's uid 0 is the user), the
//! kernel's overlayfs (with `userxattr`, as an unprivileged overlay needs), runc — with the
//! rootless differences kept here: a run directory of the user's own (under
//! `$XDG_RUNTIME_DIR`), the id mapping, runc's state directory, and the options that cannot
//! work without root, refused before anything is mounted.
//!
//! The mapping: with a range for the user in both /etc/subuid and /etc/subgid and
//! newuidmap/newgidmap installed (Debian's uidmap), 0 is the user and 1… the subordinate ids,
//! written by those setuid helpers (started before the namespace is made, so they run outside
//! it); otherwise the single mapping an unprivileged process may write itself (0 is the user,
//! nothing else is mapped; a one-line note says so).

use super::options::{Network, Publish};
use super::stage::RUN_DIR_ENV;
use crate::exit::{CmdResult, Failure};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The runtime a rootless run drives: runc, in the namespace ct run made (podman would make
/// its own and keep its own storage; crun is not what the tests exercise rootless).
pub const RUNTIME: &str = "runc";

/// The TUN device slirp4netns opens for a private network.
const TUN: &str = "/dev/net/tun";
/// Where setuid helpers are looked for (never through `PATH`).
const HELPER_DIRS: [&str; 2] = ["/usr/bin", "/bin"];

/// How ids inside the namespace map to the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// uid 0 and gid 0 are the user's own ids; no other id exists in the namespace.
    Single { uid: u32, gid: u32 },
    /// 0 is the user's id, 1 to `count` the subordinate range starting at `start`.
    Subordinate {
        uid: u32,
        gid: u32,
        uids: (u32, u32),
        gids: (u32, u32),
    },
}

impl Mapping {
    /// The highest uid and gid that exist in the namespace.
    fn highest(&self) -> (u32, u32) {
        match self {
            Mapping::Single { .. } => (0, 0),
            Mapping::Subordinate { uids, gids, .. } => (uids.1, gids.1),
        }
    }
}

/// A rootless run: where it keeps its state, how ids map, and why (for the note).
#[derive(Debug)]
pub struct Rootless {
    /// The user's run directory (checked: theirs, writable by nobody else).
    pub run_dir: PathBuf,
    pub mapping: Mapping,
    /// Why the single mapping was chosen (None with subordinate ids).
    single_because: Option<String>,
}

impl Rootless {
    /// None as root; otherwise the run directory (made and checked) and the mapping.
    pub fn detect() -> CmdResult<Option<Rootless>> {
        if nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let run_dir = run_dir()?;
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        let uids = subordinate(&read("/etc/subuid"), name.as_deref(), uid);
        let gids = subordinate(&read("/etc/subgid"), name.as_deref(), uid);
        let helpers = helper("newuidmap").is_some() && helper("newgidmap").is_some();
        let who = name.unwrap_or_else(|| uid.to_string());
        let (mapping, single_because) = match (uids, gids, helpers) {
            (Some(uids), Some(gids), true) => (
                Mapping::Subordinate {
                    uid,
                    gid,
                    uids,
                    gids,
                },
                None,
            ),
            (None, _, _) | (_, None, _) => (
                Mapping::Single { uid, gid },
                Some(format!("no range for {who} in /etc/subuid and /etc/subgid")),
            ),
            (_, _, false) => (
                Mapping::Single { uid, gid },
                Some("newuidmap/newgidmap (Debian's uidmap) are not installed".into()),
            ),
        };
        Ok(Some(Rootless {
            run_dir,
            mapping,
            single_because,
        }))
    }

    /// Enter a new user namespace and mount namespace (this process, so every thread and child
    /// shares them: call before any thread starts), map the ids, and make `/` a recursive slave
    /// of the host's, as a root run's private mount namespace is.
    pub fn enter(&self) -> CmdResult {
        let helper = match &self.mapping {
            Mapping::Subordinate {
                uid,
                gid,
                uids,
                gids,
            } => Some(MapHelper::start(*uid, *gid, *uids, *gids)?),
            Mapping::Single { .. } => None,
        };
        nix::sched::unshare(
            nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS,
        )
        .map_err(|e| {
            let f = Failure::io(
                "entering a user namespace (unshare)",
                std::io::Error::from(e),
            );
            match e {
                nix::errno::Errno::EPERM | nix::errno::Errno::ENOSPC => f.hint(
                    "this host does not let ordinary users make user namespaces \
                     (user.max_user_namespaces, or an AppArmor/SELinux rule); run ct run as root",
                ),
                _ => f,
            }
        })?;
        match (&self.mapping, helper) {
            (Mapping::Single { uid, gid }, _) => {
                let write = |file: &str, text: String| {
                    std::fs::write(file, text)
                        .map_err(|e| Failure::io(format!("writing {file}"), e))
                };
                // Unprivileged, a gid mapping needs setgroups(2) denied first.
                write("/proc/self/setgroups", "deny".into())?;
                write("/proc/self/uid_map", format!("0 {uid} 1\n"))?;
                write("/proc/self/gid_map", format!("0 {gid} 1\n"))?;
            }
            (Mapping::Subordinate { .. }, Some(h)) => h.finish()?,
            (Mapping::Subordinate { .. }, None) => unreachable!("started above"),
        }
        super::stage::slave_root()
    }

    /// The one-line note a run with the single mapping prints (None with subordinate ids).
    pub fn note(&self) -> Option<String> {
        self.single_because.as_ref().map(|why| {
            format!(
                "note: rootless, one id mapped ({why}): the container's root is you; files the \
                 image gives other owners show as nobody, and no process can switch to another id"
            )
        })
    }

    /// The container's process ids must exist in the namespace.
    pub fn check_ids(&self, uid: u32, gid: u32) -> CmdResult {
        let (top_u, top_g) = self.mapping.highest();
        if uid <= top_u && gid <= top_g {
            return Ok(());
        }
        let f = Failure::usage(format!(
            "the container would run as {uid}:{gid}, which does not exist in this rootless run's \
             user namespace (ids 0 to {top_u}, groups 0 to {top_g})"
        ));
        Err(match self.mapping {
            Mapping::Single { .. } => f.hint(
                "give --user 0 (you, as the container's root), or give this user a range in \
                 /etc/subuid and /etc/subgid and install uidmap (newuidmap), or run as root",
            ),
            Mapping::Subordinate { .. } => f.hint("give --user with an id inside that range"),
        })
    }

    /// Settings that cannot work without root, refused before anything is imported or mounted.
    pub fn check_options(
        &self,
        privileged: bool,
        network: Network,
        publish: &[Publish],
    ) -> CmdResult {
        if privileged {
            return Err(Failure::usage(
                "--privileged needs root: a rootless container has only what its user \
                 namespace owns (no host devices, no writable /sys, no cgroups)",
            )
            .hint("drop --privileged (--cap-add grants capabilities within the namespace), or run as root"));
        }
        let lowest = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1024);
        if let Some(p) = publish.iter().find(|p| u32::from(p.host_port) < lowest) {
            return Err(Failure::usage(format!(
                "-p {}:{}: ports below {lowest} on the host need root \
                 (net.ipv4.ip_unprivileged_port_start)",
                p.host_port, p.container_port
            ))
            .hint(format!(
                "publish on a host port from {lowest} up, e.g. -p 8080:{}",
                p.container_port
            )));
        }
        // slirp4netns opens the TUN device as the user (in the container's network namespace);
        // without udev (containers, some VMs) it stays the kernel's 0600.
        if network == Network::Private
            && nix::unistd::access(
                TUN,
                nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
            )
            .is_err()
        {
            return Err(Failure::usage(format!(
                "--network private (and -p) without root needs {TUN} open to this user, for \
                 slirp4netns; it is not here"
            ))
            .hint(format!(
                "as root: chmod 0666 {TUN} (udev's default on Debian); or use --network none or host"
            )));
        }
        Ok(())
    }

    /// runc's state directory for this user (`RUN_DIR/runc`, made 0700).
    pub fn runtime_state(&self) -> CmdResult<PathBuf> {
        super::stage::sub_dir(&self.run_dir, "runc")
    }
}

/// The run directory of an ordinary user: `$CT_RUN_DIR`, else `$XDG_RUNTIME_DIR/cerro/run`
/// (its parent made 0700 when missing), made 0700 when missing, and checked: a real directory
/// of this user's that nobody else can write, on a path only root or this user can change.
pub fn run_dir() -> CmdResult<PathBuf> {
    let env_dir = |var: &str| -> CmdResult<Option<PathBuf>> {
        match std::env::var_os(var).filter(|d| !d.is_empty()) {
            Some(d) if Path::new(&d).is_absolute() => Ok(Some(PathBuf::from(d))),
            Some(d) => Err(Failure::usage(format!(
                "{var}={} is not an absolute path",
                Path::new(&d).display()
            ))),
            None => Ok(None),
        }
    };
    let dir = match env_dir(RUN_DIR_ENV)? {
        Some(d) => d,
        None => {
            let base = env_dir("XDG_RUNTIME_DIR")?.ok_or_else(|| {
                Failure::usage(
                    "ct run without root keeps its state under $XDG_RUNTIME_DIR, which is not set",
                )
                .hint(format!(
                    "log in through a session that sets it (systemd-logind: /run/user/UID), or \
                     set {RUN_DIR_ENV} to a directory of yours that nobody else can write"
                ))
            })?;
            check_own(&base)?;
            let cerro = base.join("cerro");
            make_dir(&cerro)?;
            cerro.join("run")
        }
    };
    make_dir(&dir)?;
    check_own(&dir)?;
    Ok(dir)
}

fn make_dir(dir: &Path) -> CmdResult {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Failure::io(format!("creating {}", dir.display()), e)),
    }
}

/// `dir` is a real directory (no component a symbolic link) owned by this user and writable by
/// nobody else; each ancestor is owned by root or this user and writable by nobody else, or
/// sticky (`/tmp`).
fn check_own(dir: &Path) -> CmdResult {
    let me = nix::unistd::geteuid().as_raw();
    let refuse = |p: &Path, why: String| {
        Failure::usage(format!(
            "the run directory {}: {} {why}; ct run keeps nothing there",
            dir.display(),
            p.display()
        ))
        .hint(format!(
            "use a directory of yours that nobody else can write ($XDG_RUNTIME_DIR/cerro/run by \
             default; {RUN_DIR_ENV} overrides)"
        ))
    };
    let parts: Vec<_> = dir.components().collect();
    let mut at = PathBuf::new();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let md = std::fs::symlink_metadata(&at)
            .map_err(|e| Failure::io(format!("checking {}", at.display()), e))?;
        if md.file_type().is_symlink() {
            return Err(refuse(&at, "is a symbolic link".into()));
        }
        if !md.is_dir() {
            return Err(refuse(&at, "is not a directory".into()));
        }
        let last = i + 1 == parts.len();
        if md.uid() != me && (last || md.uid() != 0) {
            return Err(refuse(&at, format!("is owned by uid {}", md.uid())));
        }
        let others_write = md.mode() & 0o022 != 0;
        let sticky = md.mode() & 0o1000 != 0;
        if others_write && (last || !sticky) {
            return Err(refuse(
                &at,
                format!("is writable by others (mode {:o})", md.mode() & 0o7777),
            ));
        }
    }
    Ok(())
}

/// The `(start, count)` range of the first line of an /etc/subuid-style `text` for this user
/// (by name or by number).
fn subordinate(text: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let id = uid.to_string();
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if Some(who) != name && who != id {
            return None;
        }
        let start = f.next()?.parse::<u32>().ok()?;
        let count = f.next()?.parse::<u32>().ok()?;
        (count > 0 && start.checked_add(count).is_some()).then_some((start, count))
    })
}

/// A setuid helper in the system's directories.
fn helper(name: &str) -> Option<PathBuf> {
    HELPER_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// newuidmap and newgidmap, started before this process leaves the host's user namespace (a
/// setuid helper started from inside it would not be privileged), waiting for a line on
/// stdin; then they write this process's maps.
struct MapHelper {
    child: Child,
}

impl MapHelper {
    fn start(uid: u32, gid: u32, uids: (u32, u32), gids: (u32, u32)) -> CmdResult<MapHelper> {
        let (newuidmap, newgidmap) = (
            helper("newuidmap").expect("checked"),
            helper("newgidmap").expect("checked"),
        );
        // Every argument is a number or a path of ours; sh only sequences the two helpers.
        let child = Command::new("/bin/sh")
            .args([
                "-c",
                "read -r _ && \"$1\" \"$3\" 0 \"$4\" 1 1 \"$5\" \"$6\" && \
                 \"$2\" \"$3\" 0 \"$7\" 1 1 \"$8\" \"$9\"",
                "ct-map-ids",
            ])
            .arg(&newuidmap)
            .arg(&newgidmap)
            .args(
                [std::process::id(), uid, uids.0, uids.1, gid, gids.0, gids.1]
                    .map(|n| n.to_string()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("CT_PASSPHRASE")
            .spawn()
            .map_err(|e| Failure::io("starting newuidmap", e))?;
        Ok(MapHelper { child })
    }

    /// Tell the helpers to map (this process is in its new namespace now) and wait for them.
    fn finish(mut self) -> CmdResult {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| Failure::io("waiting for newuidmap", e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Failure::usage(format!(
            "newuidmap/newgidmap could not map this user's subordinate ids ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .hint("check this user's lines in /etc/subuid and /etc/subgid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let text = "alice:100000:65536\n1001:200000:1000\nbad:x:1\nzero:5:0\n";
        assert_eq!(
            subordinate(text, Some("alice"), 1000),
            Some((100000, 65536))
        );
        assert_eq!(subordinate(text, Some("bob"), 1001), Some((200000, 1000)));
        assert_eq!(subordinate(text, Some("bad"), 7), None);
        assert_eq!(subordinate(text, Some("zero"), 7), None);
        assert_eq!(subordinate(text, None, 7), None);
    }

    #[test]
    fn ids_outside_the_mapping_are_refused() {
        let single = Rootless {
            run_dir: PathBuf::from("/x"),
            mapping: Mapping::Single { uid: 999, gid: 995 },
            single_because: Some("test".into()),
        };
        single.check_ids(0, 0).unwrap();
        assert_eq!(single.check_ids(65534, 65534).unwrap_err().code, 64);
        assert_eq!(single.check_ids(0, 5).unwrap_err().code, 64);
        assert!(single.note().unwrap().contains("one id mapped (test)"));
        let sub = Rootless {
            mapping: Mapping::Subordinate {
                uid: 999,
                gid: 995,
                uids: (100000, 65536),
                gids: (100000, 65536),
            },
            single_because: None,
            ..single
        };
        sub.check_ids(65534, 65534).unwrap();
        assert_eq!(sub.check_ids(65537, 0).unwrap_err().code, 64);
    }

    #[test]
    fn privileged_and_low_ports_are_refused() {
        let r = Rootless {
            run_dir: PathBuf::from("/x"),
            mapping: Mapping::Single { uid: 1, gid: 1 },
            single_because: None,
        };
        assert_eq!(
            r.check_options(true, Network::None, &[]).unwrap_err().code,
            64
        );
        let low = [Publish::parse("80:80").unwrap()];
        let e = r.check_options(false, Network::Host, &low).unwrap_err();
        assert!(e.message.contains("ports below"), "{}", e.message);
        r.check_options(false, Network::Host, &[Publish::parse("8080:80").unwrap()])
            .unwrap();
    }
}
