//! Mount fixtures: an image with what a rootfs mount must get right (a 0600 file, a multi-block
//! file, hard links, a FIFO, a device, an xattr), and [`Mounted`], a guard that unmounts on drop
//! — also when the test panics — so no test leaves a mount behind. Every wait has a deadline.

use crate::{example_image, fixture_root, run_command, tool, Compression, Run, TestEnv, TAG};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Size of the multi-block file in the mount image: 48 blocks of 64 KiB and a short tail.
pub const BIG_FILE_LEN: usize = 48 * 65536 + 1234;

/// The bytes of `/data/big.bin` in the mount image (a deterministic pseudo-random stream).
pub fn big_file_bytes() -> Vec<u8> {
    let mut x: u64 = 0x243f_6a88_85a3_08d3;
    (0..BIG_FILE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `ct pack` of [`mount_image`] into the test directory as `out`, package `name` (with the
/// environment's default key).
pub fn pack_mount_image(env: &TestEnv, out: &str, name: &str) -> serde_json::Value {
    env.pack(
        &format!("oci:{}:{TAG}", mount_image().0.display()),
        out,
        &["--name", name],
    )
}

/// The example busybox image plus a layer of mount test material, built once per test process:
/// `/data/big.bin` (multi-block), `/data/secret` (0600, root), `/data/public` (0644),
/// `/data/link1` and `/data/link2` (hard links to one file), `/data/fifo`, `/data/null`
/// (char device 1:3), `/data/xattr` (with `user.cerro=hello`). Read-only; returns the layout
/// and the unpacked rootfs it was built from (the expected content).
pub fn mount_image() -> &'static (PathBuf, PathBuf) {
    static IMG: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    IMG.get_or_init(|| {
        let dir = fixture_root().join("mount-image");
        let layout = dir.join("img");
        let bundle = dir.join("bundle");
        crate::copy_dir(example_image(Compression::Gzip), &layout);
        let image = format!("{}:{TAG}", layout.display());
        tool(
            "umoci",
            &["unpack", "--image", &image, bundle.to_str().unwrap()],
        );
        let rootfs = bundle.join("rootfs");
        let data = rootfs.join("data");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("big.bin"), big_file_bytes()).unwrap();
        fs::write(data.join("secret"), b"top secret\n").unwrap();
        fs::write(data.join("public"), b"for everyone\n").unwrap();
        fs::write(data.join("link1"), b"one file, two names\n").unwrap();
        fs::hard_link(data.join("link1"), data.join("link2")).unwrap();
        fs::write(data.join("xattr"), b"has an xattr\n").unwrap();
        let sh = |script: &str| {
            let mut c = Command::new("sh");
            c.arg("-ec").arg(script).current_dir(&data);
            run_command(c).ok();
        };
        sh(
            "chmod 0600 secret; chmod 0644 public big.bin link1 xattr; mkfifo -m 0644 fifo; \
            mknod -m 0666 null c 1 3; setfattr -n user.cerro -v hello xattr 2>/dev/null \
            || python3 -c 'import os; os.setxattr(\"xattr\", \"user.cerro\", b\"hello\")'; \
            touch -h -d @1704067200 . * ",
        );
        tool(
            "umoci",
            &[
                "repack",
                "--image",
                &image,
                "--history.created_by",
                "cerro mount test data",
                bundle.to_str().unwrap(),
            ],
        );
        tool("umoci", &["gc", "--layout", layout.to_str().unwrap()]);
        (layout, rootfs)
    })
}

/// True when `path` is a mount point in this namespace.
pub fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// What `ct mounts --json` says of `mp` (other tests' mounts, listed as unregistered, aside).
pub fn mounts_at(env: &TestEnv, store: &Path, mp: &Path) -> Vec<serde_json::Value> {
    let v = env
        .ct(&["--json", "--store", store.to_str().unwrap(), "mounts"])
        .ok()
        .json();
    v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["mountpoint"] == serde_json::json!(mp))
        .cloned()
        .collect()
}

/// A mount made by `ct mount`/`ct store mount`; dropping it unmounts (`ct umount`, falling back
/// to `umount -l`), so a failing test leaves nothing mounted.
pub struct Mounted {
    pub mountpoint: PathBuf,
    store: PathBuf,
    env: TestEnvRef,
}

/// What the guard needs of the test's environment to run `ct umount`.
struct TestEnvRef {
    config: PathBuf,
    root: PathBuf,
}

impl Mounted {
    /// Run `ct --store STORE ARGS…` (a mount command) and guard `mountpoint` whatever happens.
    /// Returns the guard and the command's result; the caller checks the result.
    pub fn run(env: &TestEnv, store: &Path, mountpoint: &Path, args: &[&str]) -> (Self, Run) {
        let guard = Self {
            mountpoint: mountpoint.to_path_buf(),
            store: store.to_path_buf(),
            env: TestEnvRef {
                config: env.config.clone(),
                root: env.root().to_path_buf(),
            },
        };
        let mut full = vec!["--store", store.to_str().unwrap()];
        full.extend_from_slice(args);
        let r = env.ct(&full);
        (guard, r)
    }

    /// A guard for `mountpoint` alone, for a mount started another way (a foreground `ct`).
    pub fn guard(env: &TestEnv, store: &Path, mountpoint: &Path) -> Self {
        Self {
            mountpoint: mountpoint.to_path_buf(),
            store: store.to_path_buf(),
            env: TestEnvRef {
                config: env.config.clone(),
                root: env.root().to_path_buf(),
            },
        }
    }

    /// `ct mount BUNDLE MOUNTPOINT EXTRA…`, asserting success and that the mount answers.
    pub fn mount(
        env: &TestEnv,
        store: &Path,
        bundle: &str,
        mountpoint: &Path,
        extra: &[&str],
    ) -> Self {
        let mut args = vec!["mount", bundle, mountpoint.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (g, r) = Self::run(env, store, mountpoint, &args);
        r.ok();
        assert!(
            is_mounted(mountpoint),
            "ct mount returned, but nothing is mounted\n{r:?}"
        );
        g
    }

    /// The path of `rel` inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint.join(rel.trim_start_matches('/'))
    }

    /// The daemon's log (`STORE/log/mount-*.log`), all of it.
    pub fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = fs::read_dir(self.store.join("log")) {
            for e in rd.flatten() {
                out.push_str(&fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }

    /// Unmount now with `ct umount`, asserting success and that the mount is gone.
    pub fn unmount(self) {
        let r = self.ct_umount();
        r.ok();
        assert!(
            !is_mounted(&self.mountpoint),
            "still mounted after ct umount"
        );
    }

    fn ct_umount(&self) -> Run {
        let mut c = Command::new(crate::ct_bin());
        c.args(["--store", self.store.to_str().unwrap(), "umount"])
            .arg(&self.mountpoint)
            .env_clear()
            .env("CT_CONFIG_DIR", &self.env.config)
            .env("HOME", self.env.root.join("home"))
            .env("NO_COLOR", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        run_command(c)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if !is_mounted(&self.mountpoint) {
            return;
        }
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.ct_umount()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_mounted(&self.mountpoint) && Instant::now() < deadline {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Run `args` with `runc` in a container whose root is `rootfs` (read-only in the runtime
/// config), from a runtime bundle made under `env`; the container is deleted afterwards. PATH
/// is set when `path` is given (runc's default spec has one for busybox-like images).
pub fn runc_on(env: &TestEnv, rootfs: &Path, path: Option<&str>, args: &[&str]) -> Run {
    let rb = env.path("runtime-bundle");
    fs::create_dir_all(&rb).unwrap();
    run_command({
        let mut c = Command::new("runc");
        c.args(["spec", "--bundle"]).arg(&rb);
        c
    })
    .ok();
    let cfgp = rb.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfgp).unwrap()).unwrap();
    cfg["root"] = serde_json::json!({"path": rootfs, "readonly": true});
    cfg["process"]["terminal"] = serde_json::json!(false);
    if let Some(p) = path {
        cfg["process"]["env"] = serde_json::json!([format!("PATH={p}")]);
    }
    cfg["process"]["args"] = serde_json::json!(args);
    fs::write(&cfgp, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    // The test's own directory name (t-XXXXXX) keeps ids apart across parallel tests.
    let id = format!(
        "cerro-test-{}",
        env.root().file_name().unwrap().to_string_lossy()
    );
    let r = run_command({
        let mut c = Command::new("runc");
        c.args(["run", "--bundle"]).arg(&rb).arg(&id);
        c
    });
    let _ = Command::new("runc").args(["delete", "-f", &id]).status();
    r
}
