//! `ct mount`, `ct store mount`, `ct mounts` and `ct umount` as an ordinary user (created by the
//! harness; no root, no capabilities): the user's own store under `$XDG_DATA_HOME/cerro`, the
//! mount made through the setuid fusermount3, every block still verified (a damaged object is
//! EIO), `--allow-other` only with the administrator's consent, and nothing left mounted.

use cerro_tests::mount::mount_image;
use cerro_tests::{flip_byte, ordinary_user, run_command, store_object, TestEnv, TAG};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unmounts (lazily, as root) whatever is still mounted at a path when the test ends, however it
/// ends.
struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let mut c = Command::new("umount");
            c.arg("-l").arg(&self.0);
            let _ = run_command(c);
        }
    }
}

fn is_mounted(p: &Path) -> bool {
    fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(p.to_str().unwrap()))
}

/// A test directory the ordinary user owns, with its key `alice` and the mount image packed as
/// `mnt.ctp` — all made as that user.
fn setup() -> (TestEnv, (u32, u32)) {
    let user = ordinary_user();
    let env = TestEnv::new();
    // The image, copied where the user may read it.
    let img = env.path("img");
    cerro_tests::copy_dir(&mount_image().0, &img);
    let mut c = Command::new("chown");
    c.arg("-R")
        .arg(format!("{}:{}", user.0, user.1))
        .arg(env.root());
    run_command(c).ok();
    as_user(&env, user, &["--json", "keygen", "--id", "alice"]).ok();
    as_user(
        &env,
        user,
        &[
            "pack",
            &format!("oci:{}:{TAG}", img.display()),
            "-o",
            "mnt.ctp",
            "--name",
            "mnt",
        ],
    )
    .ok();
    (env, user)
}

/// `ct ARGS` as the user, with the user's data home inside the test directory (no `--store`:
/// the default store of an ordinary user).
fn as_user(env: &TestEnv, user: (u32, u32), args: &[&str]) -> cerro_tests::Run {
    env.cmd(args)
        .env("XDG_DATA_HOME", env.path("home/data"))
        .as_user(user)
        .run()
}

/// `cat PATH` as the user.
fn cat_as(user: (u32, u32), path: &Path) -> cerro_tests::Run {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={}", user.0))
        .arg(format!("--regid={}", user.1))
        .arg("--clear-groups")
        .arg("cat")
        .arg(path);
    run_command(c)
}

#[test]
fn an_ordinary_user_mounts_reads_and_unmounts_with_their_own_store() {
    let (env, user) = setup();
    let mp = env.path("mnt");
    fs::create_dir(&mp).unwrap();
    fs::set_permissions(&mp, fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = Command::new("chown");
    c.arg(format!("{}:{}", user.0, user.1)).arg(&mp);
    run_command(c).ok();
    let _g = Guard(mp.clone());
    as_user(&env, user, &["mount", "mnt.ctp", mp.to_str().unwrap()])
        .ok()
        .stdout_has("every block is verified");
    // The user's own store, made by the import the mount did.
    let store = env.path("home/data/cerro");
    assert_eq!(fs::metadata(&store).unwrap().uid(), user.0);
    // A FUSE mount of this user's, through fusermount3, read-only.
    let line = fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(mp.to_str().unwrap()))
        .map(str::to_string)
        .expect("mounted");
    assert!(
        line.contains("fuse.cerro") && line.contains(&format!("user_id={}", user.0)),
        "{line}"
    );
    assert!(line.contains(" ro,") || line.contains(" ro "), "{line}");
    assert_eq!(
        cat_as(user, &mp.join("data/public")).ok().stdout,
        "for everyone\n"
    );
    as_user(&env, user, &["mounts"])
        .ok()
        .stdout_has(mp.to_str().unwrap());
    // The user's mount survives its serving process too: the supervisor (the user's, as is
    // the process it starts) replaces it, and reads go on.
    let mounts = as_user(&env, user, &["--json", "mounts"]).ok().json();
    let sup = mounts["mounts"][0]["pid"]
        .as_u64()
        .expect("the daemon's pid");
    let server = |sup: u64| -> u64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let kids =
                fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap_or_default();
            if let [one] = kids.split_whitespace().collect::<Vec<_>>()[..] {
                return one.parse().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "no serving process");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    let first = server(sup);
    for pid in [sup, first] {
        assert_eq!(
            fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
            user.0,
            "{pid} runs as the user"
        );
    }
    let mut c = Command::new("kill");
    c.args(["-9", &first.to_string()]);
    run_command(c).ok();
    assert_eq!(
        cat_as(user, &mp.join("data/link1")).ok().stdout.as_bytes(),
        fs::read(mount_image().1.join("data/link1")).unwrap(),
        "served again after the kill (a file not read before, so not cached)"
    );
    assert_ne!(server(sup), first);
    // Every block is still verified: a damaged object is EIO, never served.
    let tree = as_user(&env, user, &["--json", "store", "tree", "mnt"])
        .ok()
        .json();
    flip_byte(&store_object(&store, &tree, "/data/big.bin"), 1000);
    cat_as(user, &mp.join("data/big.bin")).fails(1, &["Input/output error"]);
    as_user(&env, user, &["umount", mp.to_str().unwrap()]).ok();
    assert!(!is_mounted(&mp));
    as_user(&env, user, &["mounts"])
        .ok()
        .stdout_lacks(mp.to_str().unwrap());
}

#[test]
fn an_ordinary_user_mounts_their_whole_store() {
    let (env, user) = setup();
    as_user(&env, user, &["import", "mnt.ctp"]).ok();
    let mp = env.path("store-view");
    fs::create_dir(&mp).unwrap();
    let mut c = Command::new("chown");
    c.arg(format!("{}:{}", user.0, user.1)).arg(&mp);
    run_command(c).ok();
    let _g = Guard(mp.clone());
    as_user(&env, user, &["store", "mount", mp.to_str().unwrap()]).ok();
    assert_eq!(
        cat_as(user, &mp.join("bundles/mnt/rootfs/data/public"))
            .ok()
            .stdout,
        "for everyone\n"
    );
    as_user(&env, user, &["umount", mp.to_str().unwrap()]).ok();
    assert!(!is_mounted(&mp));
}

#[test]
fn allow_other_needs_the_administrators_consent() {
    let (env, user) = setup();
    let mp = env.path("mnt");
    fs::create_dir(&mp).unwrap();
    let mut c = Command::new("chown");
    c.arg(format!("{}:{}", user.0, user.1)).arg(&mp);
    run_command(c).ok();
    let _g = Guard(mp.clone());
    let consent = fs::read_to_string("/etc/fuse.conf")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other");
    let r = as_user(
        &env,
        user,
        &["mount", "--allow-other", "mnt.ctp", mp.to_str().unwrap()],
    );
    if consent {
        r.ok();
        as_user(&env, user, &["umount", mp.to_str().unwrap()]).ok();
    } else {
        r.fails(64, &["user_allow_other", "/etc/fuse.conf"]);
        assert!(!is_mounted(&mp));
    }
}

/// The check named `name` in `ct --json doctor` output.
fn doctor_check(v: &serde_json::Value, name: &str) -> serde_json::Value {
    v["checks"]
        .as_array()
        .expect("doctor lists its checks")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

#[test]
fn doctor_run_by_an_ordinary_user_checks_what_mounting_and_running_without_root_need() {
    let (env, user) = setup();
    let v = as_user(&env, user, &["--json", "doctor", "--quick"]).json();
    // The device opens for the user, and the setuid helper is there (no "not setuid" problem).
    assert_eq!(doctor_check(&v, "fuse device")["ok"], true, "{v}");
    assert_eq!(doctor_check(&v, "fusermount3")["ok"], true, "{v}");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(!names.contains(&"fusermount3 setuid"), "{v}");
    // --allow-other: what /etc/fuse.conf says, with the fix when it says no.
    let consent = fs::read_to_string("/etc/fuse.conf")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other");
    let allow = doctor_check(&v, "allow_other");
    assert_eq!(allow["warning"], !consent, "{allow}");
    if !consent {
        assert!(
            allow["fix"].as_str().unwrap().contains("user_allow_other"),
            "{allow}"
        );
    }
    // Rootless runs: user namespaces, and a run directory (none in this environment: a warning
    // with its fix; with CT_RUN_DIR, where it is).
    assert_eq!(doctor_check(&v, "user namespaces")["ok"], true, "{v}");
    let run = doctor_check(&v, "run directory");
    assert_eq!(run["warning"], true, "{run}");
    assert!(run["fix"].as_str().unwrap().contains("CT_RUN_DIR"), "{run}");
    let v = env
        .cmd(&["--json", "doctor", "--quick"])
        .env("XDG_DATA_HOME", env.path("home/data"))
        .env("CT_RUN_DIR", env.path("run"))
        .as_user(user)
        .run()
        .json();
    let run = doctor_check(&v, "run directory");
    assert_eq!(run["warning"], false, "{run}");
    assert!(
        run["detail"]
            .as_str()
            .unwrap()
            .contains(env.path("run").to_str().unwrap()),
        "{run}"
    );
    // Root's doctor has none of the rootless checks.
    let v = env.ct(&["--json", "doctor", "--quick"]).json();
    assert!(
        !v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "run directory"),
        "{v}"
    );
}
