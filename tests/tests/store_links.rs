//! Root follows no link it did not make (issue 12, points 3, 6, 7): links, FIFOs and devices
//! planted in the store are refused, never followed and never hang a command; `ct unpack` stages
//! its output where nobody can predict or pre-create it and writes through descriptors. User
//! 65534 plays the local attacker where one is needed (`setpriv`); every case asserts the exit
//! code, the message, and that the victim is untouched.

use cerro_tests::hostile_store::env_with_versions;
use cerro_tests::mount::Mounted;
use cerro_tests::{run_command, TestEnv};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of files the attacker wants root to destroy or overwrite.
fn victim(env: &TestEnv) -> PathBuf {
    let v = env.path("victim");
    fs::create_dir_all(v.join("sub")).unwrap();
    fs::write(v.join("precious"), b"keep me\n").unwrap();
    fs::write(v.join("sub/also"), b"and me\n").unwrap();
    v
}

fn assert_intact(v: &Path) {
    assert_eq!(fs::read(v.join("precious")).unwrap(), b"keep me\n");
    assert_eq!(fs::read(v.join("sub/also")).unwrap(), b"and me\n");
}

fn imported() -> (TestEnv, PathBuf) {
    let (env, store) = env_with_versions();
    env.ct(&["--store", store.to_str().unwrap(), "import", "v2.ctp"])
        .ok();
    (env, store)
}

#[test]
fn a_store_whose_own_directories_are_links_is_refused_and_the_target_untouched() {
    for sub in ["tmp", "blobs/sha256", "objects", "log", "mounts", "leases"] {
        let (env, store) = imported();
        let st = store.to_str().unwrap();
        let v = victim(&env);
        let p = store.join(sub);
        fs::rename(&p, env.path("moved-away")).unwrap();
        symlink(&v, &p).unwrap();
        env.ct(&["--store", st, "store", "ls"])
            .fails(11, &["unsafe store", sub, "symbolic link"]);
        env.ct(&["--store", st, "store", "gc"])
            .fails(11, &["unsafe store"]);
        assert_intact(&v);
    }
}

#[test]
fn a_store_directory_owned_by_another_user_is_refused() {
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    std::os::unix::fs::chown(store.join("tmp"), Some(65534), Some(65534)).unwrap();
    env.ct(&["--store", st, "store", "ls"])
        .fails(11, &["owned by uid 65534"]);
}

#[test]
fn gc_removes_nothing_through_links_in_the_object_tree() {
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    let v = victim(&env);
    // An object directory that is a link, and stray entries that look like objects.
    let hex2 = "ff";
    symlink(&v, store.join("objects").join(hex2)).unwrap();
    symlink(
        v.join("precious"),
        store.join("blobs/sha256").join("ab".repeat(32)),
    )
    .unwrap();
    env.ct(&["--store", st, "store", "gc"]).ok();
    assert_intact(&v);
    // The link itself (an unreferenced blob name) is gone; its target is not.
    assert!(fs::symlink_metadata(store.join("blobs/sha256").join("ab".repeat(32))).is_err());
}

/// The path of the object file that holds `/bin/busybox` of the imported bundle. (Files of at
/// most 64 KiB, such as `/version`, are database values, spec/store.md §5.1, and `tests/inline.rs`
/// plants the same things where their object file would be.)
fn busybox_object(env: &TestEnv, store: &Path) -> PathBuf {
    let v = env
        .ct(&[
            "--json",
            "--store",
            store.to_str().unwrap(),
            "store",
            "tree",
            "app",
        ])
        .ok()
        .json();
    let e = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/bin/busybox")
        .unwrap()
        .clone();
    let hex = e["content"]
        .as_str()
        .unwrap()
        .trim_start_matches("blake3:")
        .to_string();
    store.join("objects").join(&hex[..2]).join(&hex[2..])
}

#[test]
fn fifos_devices_and_links_where_objects_should_be_never_hang_and_are_never_followed() {
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    let obj = busybox_object(&env, &store);
    for (what, plant) in [
        ("fifo", 0),
        ("link to /dev/zero", 1),
        ("link to a host file", 2),
    ] {
        fs::remove_file(&obj).ok();
        match plant {
            0 => {
                let mut c = Command::new("mkfifo");
                c.arg(&obj);
                run_command(c).ok();
            }
            1 => symlink("/dev/zero", &obj).unwrap(),
            _ => symlink("/etc/hostname", &obj).unwrap(),
        }
        // fsck reports it and returns (the harness's deadline would catch a hang).
        env.ct(&["--store", st, "store", "fsck"])
            .fails(1, &["problem(s)"])
            .stdout_has("/bin/busybox");
        // The mount serves EIO for that file and everything else normally.
        let mp = env.path("mnt");
        let m = Mounted::mount(&env, &store, "app", &mp, &[]);
        let e = fs::read(m.path("bin/busybox")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{what}: {e}");
        assert_eq!(
            fs::read(m.path("data/shared")).unwrap(),
            b"the same in every version\n"
        );
        m.unmount();
        // Unpack refuses with exit 1 and writes nothing.
        let out = env.path("out");
        env.ct(&[
            "--store",
            st,
            "unpack",
            "app",
            "-o",
            out.to_str().unwrap(),
            "--format",
            "rootfs",
        ])
        .fails(1, &["/bin/busybox"]);
        assert!(!out.exists(), "{what}");
    }
    // Re-import puts the real object back.
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    env.ct(&["--store", st, "store", "fsck"]).ok();
}

#[test]
fn the_daemon_log_and_lock_are_never_opened_through_links() {
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    let v = victim(&env);
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let id = {
        use sha2::Digest as _;
        let abs = fs::canonicalize(&mp).unwrap();
        let h = sha2::Sha256::digest(abs.as_os_str().as_encoded_bytes());
        h[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    symlink(
        v.join("precious"),
        store.join("log").join(format!("mount-{id}.log")),
    )
    .unwrap();
    let (_g, r) = Mounted::run(&env, &store, &mp, &["mount", "app", mp.to_str().unwrap()]);
    r.fails(11, &["log", "symbolic link"]);
    assert_intact(&v);
    fs::remove_file(store.join("log").join(format!("mount-{id}.log"))).unwrap();
    // The lock file as a link: refused, the target untouched.
    fs::remove_file(store.join("lock")).unwrap();
    symlink(v.join("precious"), store.join("lock")).unwrap();
    env.ct(&["--store", st, "store", "ls"])
        .fails(11, &["lock", "symbolic link"]);
    assert_intact(&v);
}

/// Run `sh -c SCRIPT` as uid/gid 65534 (the local attacker).
fn as_nobody(script: &str) {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        script,
    ]);
    run_command(c).ok();
}

#[test]
fn unpack_into_a_shared_directory_follows_none_of_the_attackers_links() {
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    let v = victim(&env);
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    // The old predictable staging names for the next pids, all links to the victim.
    let base = std::process::id();
    as_nobody(&format!(
        "for i in $(seq {} {}); do ln -s {} {}/.out.ct-unpack-$i; done",
        base,
        base + 2000,
        v.display(),
        shared.display()
    ));
    for format in ["rootfs", "oci", "docker"] {
        let out = shared.join(format!("out-{format}"));
        as_nobody(&format!(
            "for i in $(seq {} {}); do ln -s {} {}/.out-{format}.ct-unpack-$i; done",
            base,
            base + 2000,
            v.display(),
            shared.display()
        ));
        env.ct(&[
            "--store",
            st,
            "unpack",
            "app",
            "-o",
            out.to_str().unwrap(),
            "--format",
            format,
        ])
        .ok();
        assert_intact(&v);
        assert!(fs::symlink_metadata(&out).unwrap().file_type().is_dir() || format == "docker");
        if format == "rootfs" {
            assert_eq!(fs::read(out.join("version")).unwrap(), b"version-TWO\n");
            // The image's own link stays a link; nothing was written through it.
            assert_eq!(
                fs::read_link(out.join("bin/sh")).unwrap(),
                Path::new("busybox")
            );
        }
    }
    // Nothing of ct's is left behind beside the outputs.
    let left: Vec<String> = fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with('.')
                && fs::symlink_metadata(shared.join(n)).is_ok_and(|m| !m.file_type().is_symlink())
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
