//! `ct run` as an ordinary user (created by the harness; no root, no capabilities), with the
//! real runc: the busybox and Debian images run in a user namespace of ct run's own, their exit
//! status passed through; the container's root is the user (`id -u` is 0, the image's root-owned
//! files are root's, a 0600 one readable), a single id mapping announced on stderr; writes land
//! in the overlay (directories of the image removed too) and never in the user's store, which
//! still verifies; a damaged store object is EIO with ct's verification report; what cannot work
//! without root is refused (64) before anything is mounted; a detached run stops with `ct stop`;
//! the network modes (a published port only where /dev/net/tun is open to the user, else its
//! refusal). Where the host gives the user subordinate ids (uidmap installed, a range in
//! /etc/subuid and /etc/subgid) the same tests check that mapping instead of the single one
//! (other ids exist, `su` works). Every mount lives in ct run's private mount namespace: the
//! host's mount table never shows one, and after every run nothing of it is left (no staging
//! directory, record or runc state).

use cerro_tests::fixtures::{debian_image, DEBIAN_TAG};
use cerro_tests::mount::mount_image;
use cerro_tests::run::{free_port, mountinfo_of, wait_for, Background};
use cerro_tests::{
    flip_byte, ordinary_user, run_command, store_object, CtCmd, Run, TestEnv, TAG, TIMEOUT,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A test directory the ordinary user owns: the image packed as `run.ctp` (package `run`) with
/// key `alice` (by root, who can read the fixture; then everything is given to the user, the
/// key's trust store included), the user's data home (`home/data`: the store is
/// `home/data/cerro`) and runtime directory (`xdg-run`, 0700).
struct UserEnv {
    env: TestEnv,
    user: (u32, u32),
}

impl UserEnv {
    fn new(layout: &Path, tag: &str) -> Self {
        let user = ordinary_user();
        let env = TestEnv::new();
        env.keygen("alice");
        env.pack(
            &format!("oci:{}:{tag}", layout.display()),
            "run.ctp",
            &["--name", "run"],
        );
        for d in ["home/data", "xdg-run", "tmp"] {
            fs::create_dir_all(env.path(d)).unwrap();
        }
        fs::set_permissions(env.path("xdg-run"), fs::Permissions::from_mode(0o700)).unwrap();
        let mut c = Command::new("chown");
        c.arg("-R")
            .arg(format!("{}:{}", user.0, user.1))
            .arg(env.root());
        run_command(c).ok();
        Self { env, user }
    }

    fn store(&self) -> PathBuf {
        self.env.path("home/data/cerro")
    }

    /// `$XDG_RUNTIME_DIR/cerro/run`: the user's run directory.
    fn run_dir(&self) -> PathBuf {
        self.env.path("xdg-run/cerro/run")
    }

    /// `ct ARGS` as the user, with their data home, runtime directory and TMPDIR.
    fn ct(&self, args: &[&str]) -> CtCmd {
        self.env
            .cmd(args)
            .env("XDG_DATA_HOME", self.env.path("home/data"))
            .env("XDG_RUNTIME_DIR", self.env.path("xdg-run"))
            .env("TMPDIR", self.env.path("tmp"))
            .as_user(self.user)
    }

    /// `ct run ARGS` as the user, then checks that nothing of it is left.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let r = self.ct(&all).run();
        self.assert_clean(&r);
        r
    }

    fn entries(&self, rel: &str) -> Vec<String> {
        fs::read_dir(self.run_dir().join(rel))
            .map(|rd| {
                rd.flatten()
                    .map(|d| d.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nothing of a run is left: no mount anywhere under the test directory or from this
    /// bundle in the host's mount table, no staging directory, no record, no runc state,
    /// nothing in TMPDIR.
    #[track_caller]
    fn assert_clean(&self, r: &Run) {
        assert_eq!(host_mounts(self.env.root()), Vec::<String>::new(), "{r:?}");
        let stages: Vec<_> = self
            .entries("")
            .into_iter()
            .filter(|n| n.starts_with("stage-"))
            .collect();
        assert_eq!(stages, Vec::<String>::new(), "staging left\n{r:?}");
        assert_eq!(self.entries("containers"), Vec::<String>::new(), "{r:?}");
        assert_eq!(
            self.entries("runc"),
            Vec::<String>::new(),
            "runc state\n{r:?}"
        );
        let tmp: Vec<_> = fs::read_dir(self.env.path("tmp")).unwrap().collect();
        assert!(tmp.is_empty(), "ct run wrote into TMPDIR\n{r:?}");
    }
}

impl Drop for UserEnv {
    fn drop(&mut self) {
        // A container a failing test left running: stopped through its ct run, as the user.
        for name in self.entries("containers") {
            let _ = self.ct(&["stop", &name]).run();
        }
        for m in host_mounts(self.env.root()).into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

/// Whether ct run maps the harness user's subordinate ids (newuidmap and newgidmap installed,
/// a range for the user in /etc/subuid and /etc/subgid) rather than only its own.
fn subordinate_ids() -> bool {
    let user = ordinary_user().0.to_string();
    let listed = |f: &str| {
        fs::read_to_string(f).unwrap_or_default().lines().any(|l| {
            let who = l.split(':').next().unwrap_or_default();
            who == "cerro-e2e" || who == user
        })
    };
    ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|p| Path::new(p).exists())
        && listed("/etc/subuid")
        && listed("/etc/subgid")
}

/// The host's mountinfo lines (this process's mount namespace) for a mount point under `dir`
/// or a Cerro filesystem of the test bundle (`cerro:run`).
fn host_mounts(dir: &Path) -> Vec<String> {
    let mut v = mountinfo_of("self", dir);
    v.extend(
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" cerro:run "))
            .map(str::to_string),
    );
    v
}

#[test]
fn busybox_runs_as_the_users_root_and_its_exit_status_is_ours() {
    let e = UserEnv::new(&mount_image().0, TAG);
    let r = e.run(&[
        "run.ctp",
        "--",
        "sh",
        "-c",
        "id -u; id -g; stat -c '%u %g %a' /data/secret; cat /data/secret; exit 7",
    ]);
    r.assert_code(7);
    // The image's root-owned 0600 file is root's in the container, and root (the user) reads it.
    assert_eq!(r.stdout, "0\n0\n0 0 600\ntop secret\n", "{r:?}");
    // The single mapping is announced; subordinate ids are not.
    assert_eq!(
        r.stderr.contains("note: rootless, one id mapped"),
        !subordinate_ids(),
        "{r:?}"
    );
    // The user's own store, made by the import.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(e.store()).unwrap().uid(), e.user.0);
    // By name, now that the store has it; other statuses pass through too.
    e.run(&["run", "--", "sh", "-c", "exit 255"])
        .assert_code(255);
    e.run(&["run", "--", "true"]).ok();
}

#[test]
fn writes_land_in_the_overlay_and_never_in_the_users_store() {
    let e = UserEnv::new(&mount_image().0, TAG);
    e.run(&["run.ctp", "--", "true"]).ok();
    let before = TestEnv::snapshot(&e.store());
    let r = e.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo scratch > /tmp/new && cat /tmp/new && echo more >> /data/public && \
         cat /data/public && rm /data/secret && touch /etc/written && rm -r /data && \
         mkdir /data && ls -A /data && echo emptied",
    ]);
    r.ok();
    assert_eq!(r.stdout, "scratch\nfor everyone\nmore\nemptied\n", "{r:?}");
    assert_eq!(TestEnv::snapshot(&e.store()), before, "the store changed");
    // A new container starts from the image again.
    let r = e.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "cat /data/public /data/secret; ls -A /tmp; test ! -e /etc/written",
    ]);
    r.ok();
    assert_eq!(r.stdout, "for everyone\ntop secret\n", "{r:?}");
    e.ct(&["store", "fsck"]).run().ok();
    e.ct(&["verify", "run.ctp"]).run().ok();
    // A volume of the user's: the container's root writes there as the user.
    let vol = e.env.path("home/vol");
    fs::create_dir(&vol).unwrap();
    let mut c = Command::new("chown");
    c.arg(format!("{}:{}", e.user.0, e.user.1)).arg(&vol);
    run_command(c).ok();
    let spec = format!("{}:/vol", vol.display());
    e.run(&["-v", &spec, "run", "--", "sh", "-c", "echo out > /vol/file"])
        .ok();
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(vol.join("file")).unwrap();
    assert_eq!((md.uid(), md.gid()), e.user);
    assert_eq!(fs::read_to_string(vol.join("file")).unwrap(), "out\n");
}

#[test]
fn debian_runs_rootless_and_its_exit_status_is_ours() {
    let e = UserEnv::new(debian_image(), DEBIAN_TAG);
    let r = e.run(&[
        "run.ctp",
        "--",
        "sh",
        "-c",
        "cat /etc/debian_version; id -un; stat -c %U:%G /etc/passwd /usr/bin/su; \
         echo written > /etc/motd && cat /etc/motd && rm -r /var/cache/apt && \
         test ! -e /var/cache/apt && exit 3",
    ]);
    r.assert_code(3);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("12."), "{r:?}");
    assert_eq!(
        &lines[1..],
        ["root", "root:root", "root:root", "written"],
        "{r:?}"
    );
    // The image's own command (bash, reading a closed stdin) exits 0.
    e.run(&["run"]).ok();
    // Switching ids works with subordinate ids only: with one id mapped, nobody does not exist.
    let r = e.run(&["run", "--", "su", "-s", "/bin/sh", "nobody", "-c", "id -u"]);
    if subordinate_ids() {
        r.ok();
        assert_eq!(r.stdout, "65534\n", "{r:?}");
    } else {
        assert_ne!(r.code, 0, "{r:?}");
    }
}

#[test]
fn a_damaged_store_object_is_eio_and_reported() {
    let e = UserEnv::new(&mount_image().0, TAG);
    e.run(&["run.ctp", "--", "true"]).ok();
    let tree = e.ct(&["--json", "store", "tree", "run"]).run().ok().json();
    flip_byte(&store_object(&e.store(), &tree, "/data/big.bin"), 1000);
    let r = e.run(&["run", "--", "sh", "-c", "cat /data/big.bin > /dev/null"]);
    r.assert_code(1);
    assert!(r.stderr.contains("Input/output error"), "{r:?}");
    assert!(
        r.stderr
            .contains("VERIFICATION FAILED: bundle=run path=/data/big.bin"),
        "{r:?}"
    );
    // The other files still read.
    let r = e.run(&["run", "--", "cat", "/data/public"]);
    r.ok();
    assert_eq!(r.stdout, "for everyone\n");
}

#[test]
fn what_cannot_work_without_root_is_refused_before_anything_is_mounted() {
    let e = UserEnv::new(&mount_image().0, TAG);
    e.run(&["--privileged", "run.ctp", "--", "true"])
        .fails(64, &["--privileged needs root"]);
    e.run(&["-p", "80:80", "run.ctp", "--", "true"])
        .fails(64, &["ports below 1024", "-p 8080:80"]);
    e.run(&["--runtime", "podman", "run.ctp", "--", "true"])
        .fails(64, &["drives runc only"]);
    // None of these imported anything.
    assert!(!e.store().exists(), "the store was made");
    // Ids that do not exist in the namespace: refused before the container starts (with a
    // single mapping every id but 0).
    if subordinate_ids() {
        let r = e.run(&["--user", "65534", "run.ctp", "--", "id", "-u"]);
        r.ok();
        assert_eq!(r.stdout, "65534\n");
        e.run(&["--user", "70000", "run", "--", "true"])
            .fails(64, &["70000:70000", "does not exist"]);
    } else {
        e.run(&["--user", "65534", "run.ctp", "--", "true"])
            .fails(64, &["65534:65534", "does not exist", "--user 0"]);
    }
    // The run directory: $XDG_RUNTIME_DIR must be set, and be the user's.
    let r = e
        .ct(&["run", "run.ctp", "--", "true"])
        .env_remove("XDG_RUNTIME_DIR")
        .run();
    r.fails(64, &["XDG_RUNTIME_DIR", "CT_RUN_DIR"]);
    let roots = e.env.path("roots");
    fs::create_dir(&roots).unwrap(); // root's, 0755
    e.ct(&["run", "run.ctp", "--", "true"])
        .env("XDG_RUNTIME_DIR", &roots)
        .run()
        .fails(64, &["is owned by uid 0"]);
    let open = e.env.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = Command::new("chown");
    c.arg(format!("{}:{}", e.user.0, e.user.1)).arg(&open);
    run_command(c).ok();
    e.ct(&["run", "run.ctp", "--", "true"])
        .env("CT_RUN_DIR", &open)
        .run()
        .fails(64, &["is writable by others"]);
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
}

#[test]
fn a_detached_rootless_container_stops_cleanly_and_its_mounts_stay_private() {
    let e = UserEnv::new(&mount_image().0, TAG);
    let r = e
        .ct(&[
            "run",
            "-d",
            "--name",
            "rl",
            "run.ctp",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.1; done",
        ])
        .run();
    r.ok();
    assert_eq!(r.stdout, "rl\n", "{r:?}");
    let log = e.run_dir().join("logs/rl.log");
    wait_for("the container's output", TIMEOUT, || {
        fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("started"))
    });
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(e.run_dir().join("containers/rl")).unwrap()).unwrap();
    let pid = record["pid"].as_u64().unwrap().to_string();
    // ct run is root in a user namespace of its own: the user is 0 there, and 1 and up the
    // user's subordinate ids if it has them (else nothing else).
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", &e.user.0.to_string(), "1"], "{uid_map}");
    assert_eq!(
        lines.len(),
        if subordinate_ids() { 2 } else { 1 },
        "{uid_map}"
    );
    // Its verified FUSE mount and the overlay exist in its mount namespace only.
    let theirs = mountinfo_of(&pid, &e.run_dir());
    assert!(
        theirs
            .iter()
            .any(|l| l.contains("/lower ") && l.contains(" - fuse") && l.contains("cerro:run")),
        "{theirs:?}"
    );
    assert!(
        theirs
            .iter()
            .any(|l| l.contains(" overlay ") && l.contains("userxattr")),
        "{theirs:?}"
    );
    assert_eq!(host_mounts(e.env.root()), Vec::<String>::new());
    // The name is the user's while it runs.
    e.ct(&["run", "--name", "rl", "run", "--", "true"])
        .run()
        .fails(64, &["rl", "is running"]);
    let r = e.ct(&["stop", "rl"]).run();
    r.ok();
    assert_eq!(r.stdout, "stopped rl\n");
    // Exited (a zombie only waits for init to reap it).
    let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state.is_empty()
            || state
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('Z'),
        "ct run left: {state}"
    );
    e.assert_clean(&r);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("got-term"), "{text}");
    assert!(text.contains("rl exited with status 0"), "{text}");
}

#[test]
fn ctrl_c_reaches_a_rootless_container() {
    let e = UserEnv::new(&mount_image().0, TAG);
    let running = Background::start(e.ct(&[
        "run",
        "run.ctp",
        "--",
        "sh",
        "-c",
        "trap 'echo got-int; exit 42' INT; touch /tmp/started; while :; do sleep 0.1; done",
    ]));
    let pid = running.pid().to_string();
    // The container's first write, in the overlay's upper layer (in ct run's namespace).
    wait_for("the container to start", TIMEOUT, || {
        fs::read_dir(e.run_dir())
            .ok()?
            .flatten()
            .map(|d| {
                Path::new(&format!("/proc/{pid}/root"))
                    .join(d.path().strip_prefix("/").unwrap())
                    .join("rw/upper/tmp/started")
            })
            .find(|p| p.exists())
    });
    run_command({
        let mut c = Command::new("kill");
        c.args(["-INT", &pid]);
        c
    })
    .ok();
    let r = running.wait();
    r.assert_code(42);
    assert_eq!(r.stdout, "got-int\n", "{r:?}");
    e.assert_clean(&r);
}

/// `GET /PATH` from 127.0.0.1:PORT: the response, or None if nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(c, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    Some(text).filter(|t| !t.is_empty())
}

#[test]
fn the_network_modes_work_rootless() {
    let e = UserEnv::new(&mount_image().0, TAG);
    // none (the default): loopback only.
    let r = e.run(&["run.ctp", "--", "ls", "/sys/class/net"]);
    r.ok();
    assert_eq!(r.stdout, "lo\n", "{r:?}");
    // host: the host's interfaces, and the host's /sys bound read-only.
    let r = e.run(&[
        "--network",
        "host",
        "run",
        "--",
        "sh",
        "-c",
        "test -d /sys/class/net/lo && ! touch /sys/x 2>/dev/null && echo host",
    ]);
    r.ok();
    assert_eq!(r.stdout, "host\n", "{r:?}");
    // private, with a published port (slirp4netns, which opens /dev/net/tun as the user: where
    // the device is root's alone, as without udev, that is refused before anything runs).
    let port = free_port();
    use std::os::unix::fs::MetadataExt;
    let tun_mode = fs::metadata("/dev/net/tun").map_or(0, |m| m.mode());
    if tun_mode & 0o006 != 0o006 {
        e.run(&["-p", &format!("{port}:8080"), "run", "--", "true"])
            .fails(64, &["/dev/net/tun", "chmod 0666"]);
        eprintln!("/dev/net/tun is {tun_mode:o} here: published ports not run rootless");
        return;
    }
    // busybox httpd answers on the host.
    e.ct(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:8080"),
        "run",
        "--",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/data",
    ])
    .run()
    .ok();
    let page = wait_for("the published port", TIMEOUT, || http_get(port, "/public"));
    assert!(page.ends_with("for everyone\n"), "{page}");
    let r = e.ct(&["stop", "web"]).run();
    r.ok();
    e.assert_clean(&r);
    assert_eq!(http_get(port, "/public"), None);
}
