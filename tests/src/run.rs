//! Harness for the `ct run` tests: a test environment with a packed image, a store and a run
//! directory of its own (`CT_RUN_DIR`, so parallel tests' containers, records and staging
//! directories are never confused), and a guard that stops every container a test left
//! running and unmounts anything left under it — also when the test panics. Helpers to look
//! into a running `ct run`'s private mount namespace (through `/proc/PID/root`), to find free
//! loopback ports, and to wait for a condition with a deadline.

use crate::mount::mount_image;
use crate::{copy_dir, tool, CtCmd, Run, Running, TestEnv, TAG, TIMEOUT};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A test's environment for `ct run`: key `alice`, an image packed as `run.ctp` (package
/// `run`), a store, and a run directory.
pub struct RunEnv {
    pub env: TestEnv,
    pub store: PathBuf,
    /// `CT_RUN_DIR` for every ct command (root-owned, 0755 like /run/cerro).
    pub run_dir: PathBuf,
    /// `TMPDIR` for every ct command (ct run must not use it).
    pub tmp: PathBuf,
}

impl Drop for RunEnv {
    fn drop(&mut self) {
        for name in self.records() {
            let _ = self.ct(&["stop", &name]).run();
        }
        let mut left = mounts_under(&self.run_dir);
        left.reverse(); // overlay before the FUSE mount under it
        for m in left {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
    }
}

/// A foreground `ct run` started without waiting; if the test fails before waiting for it, it
/// gets SIGTERM (ct run then stops its container and takes everything down) and up to
/// [`TIMEOUT`] to exit.
pub struct Background {
    running: Option<Running>,
    pid: u32,
}

impl Background {
    pub fn start(cmd: CtCmd) -> Self {
        let running = cmd.start();
        let pid = running.pid();
        Self {
            running: Some(running),
            pid,
        }
    }
    pub fn pid(&self) -> u32 {
        self.pid
    }
    pub fn wait(mut self) -> Run {
        self.running.take().expect("not waited yet").wait(TIMEOUT)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.running.take().is_none() {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + TIMEOUT;
        // Our child: once it exits it stays a zombie ('Z') until the test process ends.
        while Instant::now() < deadline {
            let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .is_none_or(|r| r.trim_start().starts_with('Z'))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Mount points in this process's /proc/mounts (the host's mount namespace) under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    mounts_of("self", dir)
}

/// Mount points under `dir` in the mount namespace of process `pid` ("self" for ours).
pub fn mounts_of(pid: &str, dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    fs::read_to_string(format!("/proc/{pid}/mounts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(1).map(str::to_string))
        .filter(|mp| mp.starts_with(&dir))
        .collect()
}

/// The mountinfo lines of process `pid` for mount points under `dir`.
pub fn mountinfo_of(pid: &str, dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.starts_with(&dir)))
        .map(str::to_string)
        .collect()
}

/// Wait until `f` gives Some, failing the test after `within`.
#[track_caller]
pub fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An image like the mount image with `change` applied to an unpacked copy of its rootfs
/// (then repacked by umoci), in `dir`.
pub fn image_with(dir: &Path, change: impl FnOnce(&Path)) -> PathBuf {
    let (layout, _) = mount_image();
    let img = dir.join("img");
    copy_dir(layout, &img);
    let bundle = dir.join("img-bundle");
    let image = format!("{}:{TAG}", img.display());
    tool(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    change(&bundle.join("rootfs"));
    tool(
        "umoci",
        &[
            "repack",
            "--image",
            &image,
            "--history.created_by",
            "cerro run test",
            bundle.to_str().unwrap(),
        ],
    );
    fs::remove_dir_all(&bundle).unwrap();
    img
}

impl RunEnv {
    /// With the mount image as is (busybox `sh` as its Cmd) or with `config` applied by
    /// `umoci config` (extra arguments, e.g. a Cmd).
    pub fn new(config: &[&str]) -> Self {
        let env = TestEnv::new();
        let (layout, _) = mount_image();
        let mut source = layout.clone();
        if !config.is_empty() {
            source = env.path("img");
            copy_dir(layout, &source);
            let image = format!("{}:{TAG}", source.display());
            let mut args = vec!["config", "--image", &image];
            args.extend_from_slice(config);
            tool("umoci", &args);
        }
        Self::from_layout(env, &source, TAG)
    }

    /// With `layout:tag` packed as `run.ctp` in `env`.
    pub fn from_layout(env: TestEnv, layout: &Path, tag: &str) -> Self {
        env.keygen("alice");
        env.pack(
            &format!("oci:{}:{tag}", layout.display()),
            "run.ctp",
            &["--name", "run"],
        );
        let store = env.path("store");
        let run_dir = env.path("run");
        let tmp = env.path("tmp");
        fs::create_dir_all(&run_dir).unwrap();
        fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        Self {
            env,
            store,
            run_dir,
            tmp,
        }
    }

    /// `ct --store STORE run ARGS`.
    pub fn cmd(&self, args: &[&str]) -> CtCmd {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        self.ct(&all)
    }

    /// `ct --store STORE ARGS` with this environment's run directory and TMPDIR.
    pub fn ct(&self, args: &[&str]) -> CtCmd {
        let mut all = vec!["--store", self.store.to_str().unwrap()];
        all.extend_from_slice(args);
        self.env
            .cmd(&all)
            .env("TMPDIR", &self.tmp)
            .env("CT_RUN_DIR", &self.run_dir)
    }

    /// `ct run ARGS`, then checks that nothing it mounted is left and its staging is gone.
    pub fn run(&self, args: &[&str]) -> Run {
        let r = self.cmd(args).run();
        self.assert_clean(&r);
        r
    }

    /// The staging directories in the run directory.
    pub fn stages(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.run_dir)
            .unwrap()
            .flatten()
            .map(|d| d.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("stage-"))
            })
            .collect()
    }

    /// Names with a container record (running, or left by a killed run).
    pub fn records(&self) -> Vec<String> {
        fs::read_dir(self.run_dir.join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|d| d.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nothing mounted under the run directory (in the host's namespace), no staging directory,
    /// no container record, nothing in TMPDIR.
    #[track_caller]
    pub fn assert_clean(&self, r: &Run) {
        assert_eq!(mounts_under(&self.run_dir), Vec::<String>::new(), "{r:?}");
        assert_eq!(self.stages(), Vec::<PathBuf>::new(), "staging left\n{r:?}");
        assert_eq!(self.records(), Vec::<String>::new(), "records left\n{r:?}");
        let left: Vec<_> = fs::read_dir(&self.tmp).unwrap().flatten().collect();
        assert!(left.is_empty(), "ct run wrote into TMPDIR: {left:?}\n{r:?}");
    }

    /// The one staging directory of a running `ct run` (waits for it to appear).
    #[track_caller]
    pub fn stage(&self) -> PathBuf {
        wait_for("the staging directory", TIMEOUT, || {
            self.stages().into_iter().next()
        })
    }

    /// The record of running container `name`.
    pub fn record(&self, name: &str) -> serde_json::Value {
        let text = fs::read_to_string(self.run_dir.join("containers").join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}
