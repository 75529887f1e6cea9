//! `ct mount` end to end, through the real `/dev/fuse`: the mount serves the image with its
//! metadata (modes, owners, times, nlink, rdev, xattrs, hard links as one inode), refuses
//! writes, lets the kernel enforce modes for other users, fails a tampered block (and only it)
//! and a tampered directory node with EIO and logs each once, survives 8 threads of random
//! reads, cleans up after a killed daemon, shows the whole store, and runs a container (runc).
//! Every mount is guarded: it is unmounted when the test ends, pass or fail.

use cerro_tests::mount::{
    big_file_bytes, is_mounted, mount_image, mounts_at, pack_mount_image, runc_on, Mounted,
    BIG_FILE_LEN,
};
use cerro_tests::{run_command, TestEnv};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `O_DIRECT` on Linux (x86-64 and arm64 values differ; the test machines are x86-64): reads
/// reach the daemon with exactly the offset and length asked, past the page cache.
#[cfg(target_arch = "x86_64")]
const O_DIRECT: i32 = 0o40000;
#[cfg(not(target_arch = "x86_64"))]
const O_DIRECT: i32 = 0o200000;
const EIO: i32 = 5;
const EROFS: i32 = 30;
const BLOCK: usize = 65536;

/// An environment with key `alice` and the mount image packed as `mnt.ctp` (package `mnt`),
/// plus a store path.
fn setup() -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::new();
    env.keygen("alice");
    pack_mount_image(&env, "mnt.ctp", "mnt");
    let store = env.path("store");
    (env, store, PathBuf::from("mnt.ctp"))
}

fn source() -> &'static Path {
    &mount_image().1
}

#[derive(Debug, PartialEq)]
struct Facts {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    mtime: i64,
    nlink: u64,
    rdev: u64,
    target: Option<PathBuf>,
    xattrs: BTreeMap<String, Vec<u8>>,
    content: Option<Vec<u8>>,
}

fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    // getfattr is not always installed; python is.
    let mut c = Command::new("python3");
    c.arg("-c")
        .arg("import os,sys\nfor n in os.listxattr(sys.argv[1], follow_symlinks=False):\n print(n, os.getxattr(sys.argv[1], n, follow_symlinks=False).hex())")
        .arg(p);
    let r = run_command(c);
    r.ok();
    r.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| {
            (
                n.to_string(),
                (0..v.len() / 2)
                    .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn facts(p: &Path) -> Facts {
    let m = fs::symlink_metadata(p).unwrap();
    let kind = m.mode() & 0o170000;
    let is_dir = m.is_dir();
    Facts {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        size: (!is_dir).then(|| m.size()),
        mtime: m.mtime(),
        nlink: m.nlink(),
        rdev: m.rdev(),
        target: m
            .file_type()
            .is_symlink()
            .then(|| fs::read_link(p).unwrap()),
        xattrs: if m.file_type().is_symlink() {
            BTreeMap::new()
        } else {
            xattrs(p)
        },
        content: m.is_file().then(|| fs::read(p).unwrap()),
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::new()];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(root.join(&rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(n);
            if fs::symlink_metadata(root.join(&r)).unwrap().is_dir() {
                stack.push(r.clone());
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

#[test]
fn the_mount_serves_the_image_with_its_metadata_and_refuses_writes() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, bundle.to_str().unwrap(), &mp, &[]);

    // Entry by entry, the mount equals the rootfs the image was made from.
    let src = walk(source());
    assert_eq!(walk(&mp), src, "the mount lists other paths than the image");
    for rel in &src {
        let (a, b) = (facts(&source().join(rel)), facts(&mp.join(rel)));
        if rel.as_os_str().is_empty() {
            // The root: umoci leaves the unpacked directory's own times; compare the rest.
            assert_eq!((a.kind, a.nlink), (b.kind, b.nlink), "/");
            continue;
        }
        assert_eq!(a, b, "{} differs", rel.display());
    }
    // Hard links are one inode.
    let (l1, l2) = (
        fs::metadata(m.path("data/link1")).unwrap(),
        fs::metadata(m.path("data/link2")).unwrap(),
    );
    assert_eq!(l1.ino(), l2.ino());
    assert_eq!(l1.nlink(), 2);
    // st_blocks counts 512-byte units of the size (du relies on it).
    let big = fs::metadata(m.path("data/big.bin")).unwrap();
    assert_eq!(big.blocks(), (BIG_FILE_LEN as u64).div_ceil(512));
    // Writes: EROFS.
    let err = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        err(fs::write(m.path("data/new"), b"x")),
        Some(EROFS),
        "create"
    );
    assert_eq!(err(fs::create_dir(m.path("newdir"))), Some(EROFS), "mkdir");
    assert_eq!(
        err(fs::OpenOptions::new()
            .write(true)
            .open(m.path("data/public"))
            .map(|_| ())),
        Some(EROFS),
        "open for writing"
    );
    assert_eq!(err(fs::remove_file(m.path("data/public"))), Some(EROFS));
    // statfs answers (df works) and the mount is listed by ct.
    let sf = run_command({
        let mut c = Command::new("stat");
        c.args(["-f", "-c", "%T %s"]).arg(&mp);
        c
    });
    sf.ok();
    assert!(
        sf.stdout.starts_with("fuseblk") || sf.stdout.starts_with("fuse"),
        "{sf:?}"
    );
    let st = store.to_str().unwrap();
    let v = mounts_at(&env, &store, &mp);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["status"], "ok", "{v:?}");
    assert_eq!(v[0]["bundles"][0], "mnt");
    m.unmount();
    assert!(mounts_at(&env, &store, &mp).is_empty());
    env.ct(&["--store", st, "umount", mp.to_str().unwrap()])
        .fails(64, &["is not mounted"]);
}

fn as_nobody(args: &[&str]) -> cerro_tests::Run {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(args);
    run_command(c)
}

#[test]
fn other_users_get_the_images_modes_and_nothing_more() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    // The test directory is private to root; let nobody reach the mount point.
    let mut p = mp.parent().unwrap().to_path_buf();
    while p.starts_with(std::env::temp_dir()) && p != std::env::temp_dir() {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o711)).unwrap();
        p.pop();
    }
    let m = Mounted::mount(
        &env,
        &store,
        bundle.to_str().unwrap(),
        &mp,
        &["--allow-other"],
    );
    let public = m.path("data/public");
    let secret = m.path("data/secret");
    as_nobody(&["cat", public.to_str().unwrap()])
        .ok()
        .stdout_has("for everyone");
    as_nobody(&["cat", secret.to_str().unwrap()]).fails(1, &["Permission denied"]);
    // access(2) says the same as open does.
    as_nobody(&[
        "/usr/bin/python3", // not a shim under /root, which nobody cannot reach
        "-c",
        "import os, sys; print(os.access(sys.argv[1], os.R_OK), os.access(sys.argv[2], os.R_OK))",
        public.to_str().unwrap(),
        secret.to_str().unwrap(),
    ])
    .ok()
    .stdout_has("True False");
    // Root reads it.
    assert_eq!(fs::read(&secret).unwrap(), b"top secret\n");
    m.unmount();

    // Without --allow-other, FUSE admits only the user who mounted.
    let m = Mounted::mount(&env, &store, "mnt", &mp, &[]);
    as_nobody(&["cat", public.to_str().unwrap()]).fails(1, &["Permission denied"]);
    m.unmount();
}

/// The object file of `rel` in the store (by the BLAKE3 of the source file).
fn object_of(store: &Path, rel: &str) -> PathBuf {
    let h = blake3::hash(&fs::read(source().join(rel)).unwrap()).to_hex();
    store.join("objects").join(&h[..2]).join(&h[2..])
}

fn read_direct(p: &Path, block: usize) -> std::io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_DIRECT)
        .open(p)?;
    let mut buf = vec![0u8; BLOCK];
    let n = f.read_at(&mut buf, (block * BLOCK) as u64)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn a_tampered_block_fails_alone_with_eio_and_is_logged_once() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", bundle.to_str().unwrap()])
        .ok();
    let obj = object_of(&store, "data/big.bin");
    assert!(obj.is_file(), "no object at {}", obj.display());
    cerro_tests::flip_byte(&obj, (5 * BLOCK + 100) as u64);
    let m = Mounted::mount(&env, &store, "mnt", &mp, &[]);
    let file = m.path("data/big.bin");
    let want = big_file_bytes();
    for b in 0..want.len().div_ceil(BLOCK) {
        let r = read_direct(&file, b);
        if b == 5 {
            assert_eq!(r.unwrap_err().raw_os_error(), Some(EIO), "block 5");
        } else {
            let got = r.unwrap_or_else(|e| panic!("block {b}: {e}"));
            let s = b * BLOCK;
            assert_eq!(got, want[s..(s + BLOCK).min(want.len())], "block {b}");
        }
    }
    assert_eq!(read_direct(&file, 5).unwrap_err().raw_os_error(), Some(EIO));
    // A plain read of the whole file fails too: the bad bytes never reach the reader.
    let mut all = Vec::new();
    let e = fs::File::open(&file)
        .unwrap()
        .read_to_end(&mut all)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EIO));
    let log = m.log();
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("VERIFICATION FAILED") && l.contains("block=5"))
        .collect();
    assert_eq!(events.len(), 1, "logged once:\n{log}");
    for needle in ["bundle=mnt", "path=/data/big.bin", "expected", "found"] {
        assert!(
            events[0].contains(needle),
            "{needle} missing: {}",
            events[0]
        );
    }
    // fsck names the same object.
    env.ct(&["--store", st, "store", "fsck"])
        .assert_code(1)
        .stdout_has("data/big.bin");
    m.unmount();
}

#[test]
fn a_tampered_directory_node_fails_its_lookup_with_eio() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", bundle.to_str().unwrap()])
        .ok();
    {
        use cerro_core::rootfs::{DirNode, Payload};
        let s = cerro_store::Store::open(&store, cerro_store::LockMode::Exclusive).unwrap();
        let d = s.resolve("mnt").unwrap();
        let rec = s.record_unverified(&d).unwrap().unwrap();
        let (_, root) = cerro_store::walk::record_roots(&d, &rec).unwrap();
        let get = |d: &cerro_core::rootfs::DirDigest| {
            cerro_store::db::nodes::get_dir(s.db(), d).unwrap().unwrap()
        };
        let top = DirNode::decode(&get(&root.dir)).unwrap();
        let data = top.entries.iter().find(|e| e.name == b"data").unwrap();
        let Payload::Directory { digest } = data.payload else {
            panic!("data is a directory")
        };
        let mut bytes = get(&digest);
        *bytes.last_mut().unwrap() ^= 1;
        s.writer()
            .unwrap()
            .put_raw(cerro_store::db::CF_DIRS, digest.as_bytes(), &bytes)
            .unwrap();
    }
    let m = Mounted::mount(&env, &store, "mnt", &mp, &[]);
    let names: Vec<String> = fs::read_dir(&mp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"data".to_string()), "{names:?}");
    assert!(
        fs::read(m.path("bin/busybox")).is_ok(),
        "the rest still reads"
    );
    let e = fs::metadata(m.path("data/public")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    let log = m.log();
    assert!(
        log.lines()
            .any(|l| l.contains("VERIFICATION FAILED") && l.contains("path=/data")),
        "{log}"
    );
    env.ct(&["--store", st, "store", "fsck"])
        .assert_code(1)
        .stdout_has("/data");
    m.unmount();
}

#[test]
fn eight_threads_of_random_reads_get_exactly_the_source_bytes() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, bundle.to_str().unwrap(), &mp, &[]);
    let files: Vec<String> = ["data/big.bin", "bin/busybox", "data/public", "etc/passwd"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sources: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(source().join(f)).unwrap())
        .collect();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (files, sources, m) = (&files, &sources, &m);
            s.spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t * 7919);
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                for _ in 0..300 {
                    let i = (next() % files.len() as u64) as usize;
                    let src = &sources[i];
                    let off = next() % (src.len() as u64 + 1);
                    let len = (next() % (3 * BLOCK as u64)) as usize;
                    let f = fs::File::open(m.path(&files[i])).unwrap();
                    let mut buf = vec![0u8; len];
                    let mut got = 0;
                    while got < len {
                        match f.read_at(&mut buf[got..], off + got as u64).unwrap() {
                            0 => break,
                            n => got += n,
                        }
                    }
                    let s = off as usize;
                    let e = (s + len).min(src.len());
                    assert_eq!(&buf[..got], &src[s..e], "{} at {off}+{len}", files[i]);
                }
            });
        }
    });
    m.unmount();
}

#[test]
fn a_killed_daemon_leaves_a_broken_mount_that_umount_cleans_up() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let st = store.to_str().unwrap();
    let m = Mounted::mount(&env, &store, bundle.to_str().unwrap(), &mp, &[]);
    let v = mounts_at(&env, &store, &mp);
    let pid = v[0]["pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let v = mounts_at(&env, &store, &mp);
    assert_eq!(v[0]["status"], "broken", "{v:?}");
    env.ct(&["--store", st, "mounts"])
        .ok()
        .stdout_has("ct umount");
    assert!(fs::metadata(m.path("data/public")).is_err());
    env.ct(&["--store", st, "umount", mp.to_str().unwrap()])
        .ok()
        .stdout_has("daemon had died");
    assert!(!is_mounted(&mp));
    assert!(mounts_at(&env, &store, &mp).is_empty());
    // And it mounts again.
    let m = Mounted::mount(&env, &store, "mnt", &mp, &[]);
    assert_eq!(fs::read(m.path("data/public")).unwrap(), b"for everyone\n");
    m.unmount();
}

#[test]
fn refusals_mount_nothing() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let st = store.to_str().unwrap();
    let b = bundle.to_str().unwrap();
    let m = mp.to_str().unwrap();
    env.ct(&["--store", st, "mount", "nosuch", m])
        .fails(64, &["there is no store"]);
    env.ct(&["--store", st, "import", b]).ok();
    env.ct(&["--store", st, "mount", "nosuch", m])
        .fails(64, &["no bundle named \"nosuch\""]);
    // A stranger's trust store: the signature is valid but nobody trusted signed it.
    let other = TestEnv::new();
    let (g, r) = Mounted::run(&other, &store, &mp, &["mount", "mnt", m]);
    r.fails(
        3,
        &[
            "bundle mnt in the store",
            "no signature is from a trusted key",
        ],
    );
    assert!(!is_mounted(&mp));
    drop(g);
    let copy = other.path("mnt.ctp");
    fs::copy(env.path(b), &copy).unwrap();
    let (g, r) = Mounted::run(
        &other,
        &store,
        &mp,
        &["mount", copy.to_str().unwrap(), m, "--name", "other"],
    );
    r.fails(3, &["did not verify; nothing was mounted"]);
    assert!(!is_mounted(&mp));
    drop(g);
    // A mount point in use is refused.
    let g = Mounted::mount(&env, &store, "mnt", &mp, &[]);
    env.ct(&["--store", st, "mount", "mnt", m])
        .fails(64, &["already a mount point"]);
    g.unmount();
}

#[test]
fn the_store_mount_shows_every_bundle_with_its_signed_files() {
    let (env, store, bundle) = setup();
    let st = store.to_str().unwrap();
    let b = bundle.to_str().unwrap();
    env.ct(&["--store", st, "import", b]).ok();
    env.ct(&["--store", st, "import", b, "--name", "again"])
        .ok();
    let mp = env.path("storemnt");
    let (m, r) = Mounted::run(&env, &store, &mp, &["store", "mount", mp.to_str().unwrap()]);
    r.ok();
    for name in ["mnt", "again"] {
        assert_eq!(
            fs::read(m.path(&format!("bundles/{name}/rootfs/data/public"))).unwrap(),
            b"for everyone\n"
        );
        let entries = cerro_tests::rawtar::read(&env.path(b));
        let manifest = &entries[cerro_tests::rawtar::find(&entries, "cerro/manifest.toml")].data;
        assert_eq!(
            &fs::read(m.path(&format!("bundles/{name}/manifest.toml"))).unwrap(),
            manifest
        );
        assert!(m
            .path(&format!("bundles/{name}/signatures/alice.sig"))
            .is_file());
    }
    let v = env
        .ct(&["--json", "--store", st, "store", "info", "mnt"])
        .ok()
        .json();
    let hex = v["bundle_digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let link = fs::read_link(m.path(&format!("by-digest/{hex}"))).unwrap();
    assert!(link.starts_with("../bundles/"), "{}", link.display());
    assert!(m
        .path(&format!("by-digest/{hex}/rootfs/bin/busybox"))
        .is_file());
    m.unmount();
}

#[test]
fn runc_runs_a_container_whose_rootfs_is_the_mount() {
    let (env, store, bundle) = setup();
    let mp = env.path("rootfs");
    let m = Mounted::mount(&env, &store, bundle.to_str().unwrap(), &mp, &[]);
    let r = runc_on(
        &env,
        &mp,
        None,
        &[
            "/bin/sh",
            "-c",
            "echo hello from $(cat /etc/hostname); cat /data/public; /bin/busybox sha256sum /data/big.bin",
        ],
    );
    r.ok();
    assert!(r.stdout.contains("hello from cerro-example"), "{r:?}");
    assert!(r.stdout.contains("for everyone"), "{r:?}");
    let want = {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(big_file_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(r.stdout.contains(&want), "{r:?}");
    m.unmount();
}

/// The capability sets of process `pid` (hex masks from /proc/PID/status) and NoNewPrivs.
fn caps_of(pid: u64) -> BTreeMap<String, String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(":\t"))
        .filter(|(k, _)| k.starts_with("Cap") || *k == "NoNewPrivs")
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_daemon_keeps_only_cap_sys_admin_while_it_serves() {
    let (env, store, bundle) = setup();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, bundle.to_str().unwrap(), &mp, &[]);
    let v = mounts_at(&env, &store, &mp);
    let pid = v[0]["pid"].as_u64().unwrap();
    let caps = caps_of(pid);
    // Bit 21 is CAP_SYS_ADMIN (mount and unmount); nothing else, in any set.
    const SYS_ADMIN: &str = "0000000000200000";
    assert_eq!(caps["CapEff"], SYS_ADMIN, "{caps:?}");
    assert_eq!(caps["CapPrm"], SYS_ADMIN, "{caps:?}");
    assert_eq!(caps["CapBnd"], SYS_ADMIN, "{caps:?}");
    assert_eq!(caps["CapInh"], "0000000000000000", "{caps:?}");
    assert_eq!(caps["CapAmb"], "0000000000000000", "{caps:?}");
    assert_eq!(caps["NoNewPrivs"], "1", "{caps:?}");
    // And it still serves, and still unmounts on SIGTERM (which needs that capability).
    assert_eq!(fs::read(m.path("data/public")).unwrap(), b"for everyone\n");
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while is_mounted(&mp) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!is_mounted(&mp), "SIGTERM unmounts");
    drop(m);
}

#[test]
fn root_mounts_on_no_mount_point_another_user_could_swap_for_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let (env, store, bundle) = setup();
    let st = store.to_str().unwrap();
    let b = env.path(bundle.to_str().unwrap());
    let b = b.to_str().unwrap();
    // A link planted where the mount point is asked for: never followed.
    let victim = env.path("victim");
    fs::create_dir(&victim).unwrap();
    let link = env.path("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    env.ct(&["--store", st, "mount", b, link.to_str().unwrap()])
        .fails(64, &["is a symbolic link"]);
    assert!(!is_mounted(&victim));
    // A mount point another user owns: they could rename it and put a link in its place.
    let theirs = env.path("theirs");
    fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    env.ct(&["--store", st, "mount", b, theirs.to_str().unwrap()])
        .fails(64, &["could be replaced by another user"]);
    assert!(!is_mounted(&theirs));
    // Root's own directory inside one that everyone can write to (and is not sticky).
    let open = env.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let inner = open.join("mp");
    fs::create_dir(&inner).unwrap();
    env.ct(&["--store", st, "mount", b, inner.to_str().unwrap()])
        .fails(64, &["could be replaced by another user"]);
    assert!(!is_mounted(&inner));
    // A mount point still to be made inside another user's directory: refused before anything
    // is created there.
    let fresh = theirs.join("new/mp");
    env.ct(&["--store", st, "mount", b, fresh.to_str().unwrap()])
        .fails(64, &["could be replaced by another user"]);
    assert!(
        !theirs.join("new").exists(),
        "created inside another user's directory"
    );
    // Missing directories under root's own are made, and the mount works there.
    let made = env.path("made/deeper/mp");
    env.ct(&["--store", st, "mount", b, made.to_str().unwrap()])
        .ok();
    assert!(is_mounted(&made));
    env.ct(&["--store", st, "umount", made.to_str().unwrap()])
        .ok();
}
