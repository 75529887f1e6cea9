//! Real-image fixtures built with real tools (umoci, debootstrap) by the scripts in `tools/`, and
//! cached once per machine under the target directory (`<target>/cerro-fixtures/`): they take
//! seconds to minutes to build, so every test process, clone and CI run on a machine shares
//! them. Builds are safe to race: a lock file serialises builders, each builds into a temporary
//! directory and renames it into place, and the cache key includes a hash of the script, so a
//! changed recipe builds anew. The layouts are read-only: copy one before changing it.

use crate::{repo_root, run_command_timeout, sha256};
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Longest a fixture build may take (debootstrap downloads and unpacks ~100 packages).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The tag of the image in [`multilayer_image`].
pub const MULTILAYER_TAG: &str = "multilayer";
/// The tag of the image in [`debian_image`] and [`debian_image_plus`].
pub const DEBIAN_TAG: &str = "debian";
/// The packages [`debian_image_plus`] adds to minbase: a few small ones.
pub const DEBIAN_EXTRA_PACKAGES: &str = "less,bzip2,netbase";

/// The build's target directory: `$CARGO_TARGET_DIR`, else the one this test binary lives in
/// (`<target>/<profile>/deps/<binary>`).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Where fixtures are cached: `<target>/cerro-fixtures`.
pub fn cache_dir() -> PathBuf {
    target_dir().join("cerro-fixtures")
}

/// The cached output of `build` under `cache_dir()/KEY`, building it first if no process has.
/// `build` gets a fresh path that does not exist yet and must create it.
pub fn cached(key: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let cache = cache_dir();
    fs::create_dir_all(&cache).expect("create the fixture cache");
    let done = cache.join(key);
    if done.exists() {
        return done;
    }
    let lock = fs::File::create(cache.join(format!("{key}.lock"))).expect("create the lock file");
    // Held until `lock` is dropped (or the process dies): one builder at a time.
    rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .expect("lock the fixture cache");
    if done.exists() {
        return done;
    }
    let tmp = cache.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    build(&tmp);
    assert!(tmp.exists(), "building fixture {key} made nothing");
    fs::rename(&tmp, &done).expect("move the fixture into place");
    drop(lock);
    done
}

/// Run a fixture script from `tools/` (with [`BUILD_TIMEOUT`]) to build `out`.
fn run_script(script: &str, args: &[&str], out: &Path) {
    let mut c = Command::new(repo_root().join("tools").join(script));
    c.args(args).arg(out);
    let r = run_command_timeout(c, BUILD_TIMEOUT);
    assert_eq!(r.code, 0, "{script} failed\n{}\n{}", r.stdout, r.stderr);
}

/// A cache key for what `script` builds with `args`: changes when the script does.
fn key(name: &str, script: &str, args: &[&str]) -> String {
    let text = fs::read(repo_root().join("tools").join(script)).expect("read the fixture script");
    let mut material = text;
    material.extend_from_slice(args.join("\0").as_bytes());
    format!("{name}-{}", &sha256(&material)["sha256:".len()..][..12])
}

fn script_fixture(name: &str, script: &str, args: &[&str]) -> PathBuf {
    cached(&key(name, script, args), |out| {
        run_script(script, args, out)
    })
}

/// The multi-layer OCI layout (`tools/make-multilayer-image`, tag [`MULTILAYER_TAG`]): whiteouts,
/// an opaque directory, hard links, symlinks, a FIFO, devices, xattrs, type changes.
pub fn multilayer_image() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| script_fixture("multilayer", "make-multilayer-image", &[]))
}

/// [`multilayer_image`] without its one file whose name is not UTF-8 (`--utf8-names`), for
/// exports to OSTree, which holds only UTF-8 names.
pub fn multilayer_image_utf8() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        script_fixture(
            "multilayer-utf8",
            "make-multilayer-image",
            &["--utf8-names"],
        )
    })
}

/// A Debian 12 minbase OCI layout (`tools/make-debian-image`, tag [`DEBIAN_TAG`]).
pub fn debian_image() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| script_fixture("debian-minbase", "make-debian-image", &[]))
}

/// The same as [`debian_image`] plus [`DEBIAN_EXTRA_PACKAGES`] (a second, mostly shared image).
pub fn debian_image_plus() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        script_fixture(
            "debian-minbase-plus",
            "make-debian-image",
            &["--include", DEBIAN_EXTRA_PACKAGES],
        )
    })
}

/// The tag of the image in [`nginx_image`].
pub const NGINX_TAG: &str = "nginx";

/// Debian 12 minbase with nginx-light, whose Cmd runs nginx in the foreground (the README's
/// `ct run -d -p 8080:80 nginx.ctp` example), tag [`NGINX_TAG`].
pub fn nginx_image() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        script_fixture(
            "debian-nginx",
            "make-debian-image",
            &[
                "--include",
                "nginx-light",
                "--tag",
                NGINX_TAG,
                "--cmd",
                r#"["nginx","-g","daemon off;"]"#,
            ],
        )
    })
}

/// The python of a virtual environment with `packages` installed from PyPI, built once per
/// machine and cached like the fixtures (its scripts' shebangs name the directory it was built
/// in, so run tools as modules of this python). Needs python3-venv and the network to PyPI.
pub fn python_venv(packages: &[&str]) -> PathBuf {
    let timeout = std::time::Duration::from_secs(600);
    let key = &crate::sha256(packages.join(" ").as_bytes())["sha256:".len()..][..12];
    let venv = cached(&format!("venv-{key}"), |dir| {
        let mut c = std::process::Command::new("python3");
        c.args(["-m", "venv"]).arg(dir);
        let r = crate::run_command_timeout(c, timeout);
        assert_eq!(
            r.code, 0,
            "python3 -m venv failed (install python3-venv)\n{r:?}"
        );
        let mut c = std::process::Command::new(dir.join("bin/pip"));
        c.args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages);
        let r = crate::run_command_timeout(c, timeout);
        assert_eq!(
            r.code, 0,
            "pip install {packages:?} failed (PyPI unreachable?)\n{r:?}"
        );
    });
    venv.join("bin/python")
}
