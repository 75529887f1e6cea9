//! Small files in the store's database (store format 3, spec/store.md §5.1): a file of at most
//! one verification block is kept as a database value, not an object file, and is served,
//! unpacked, checked and collected exactly like one. A value changed, cut or removed by someone
//! who can write the store is never served (EIO), fsck names it (exit 1) and `--repair` removes
//! it, re-import heals it, and a missing value falls back to the object file with the same
//! refusals (a FIFO where it should be never hangs, a wrong byte never reaches a reader). The
//! mount's verified read-ahead of a directory's small files puts only verified bytes into the
//! kernel's page cache.

use cerro_tests::forge::{forge_bundle, forger_public_key, Layer, RootfsClaim, TarBuilder};
use cerro_tests::hostile_store::{env_with_versions, RawStore};
use cerro_tests::mount::Mounted;
use cerro_tests::{run_command, TestEnv};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &[u8] = b"version-TWO\n";
const SHARED: &[u8] = b"the same in every version\n";

fn root_of(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

fn object_path(store: &Path, root: &[u8; 32]) -> PathBuf {
    let h = blake3::Hash::from_bytes(*root).to_hex();
    store.join("objects").join(&h[..2]).join(&h[2..])
}

fn imported() -> (TestEnv, PathBuf) {
    let (env, store) = env_with_versions();
    env.ct(&["--store", store.to_str().unwrap(), "import", "v2.ctp"])
        .ok();
    (env, store)
}

/// `ct unpack app -o OUT --format rootfs` from `store`.
fn unpack_rootfs(env: &TestEnv, store: &Path, out: &Path) -> cerro_tests::Run {
    let (st, o) = (store.to_str().unwrap(), out.to_str().unwrap());
    env.ct(&[
        "--store", st, "unpack", "app", "-o", o, "--format", "rootfs",
    ])
}

/// Read `rel` through a fresh mount of `app`: its bytes, or the error's errno.
fn read_mounted(env: &TestEnv, store: &Path, rel: &str) -> Result<Vec<u8>, i32> {
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let m = Mounted::mount(env, store, "app", &mp, &[]);
    let got = fs::read(m.path(rel)).map_err(|e| e.raw_os_error().unwrap_or(-1));
    // Everything else is still served.
    assert_eq!(fs::read(m.path("data/shared")).unwrap(), SHARED);
    m.unmount();
    got
}

#[test]
fn small_files_are_database_values_served_through_verification() {
    let (env, store) = imported();
    let raw = RawStore::new(&store);
    let values = raw.inline_values();
    for content in [VERSION, SHARED] {
        let root = root_of(content);
        assert!(
            values.iter().any(|(k, v)| *k == root && v == content),
            "{content:?} is a database value"
        );
        assert!(
            !object_path(&store, &root).exists(),
            "{content:?} has no object file"
        );
    }
    let busybox = fs::read("/bin/busybox").unwrap();
    assert!(
        object_path(&store, &root_of(&busybox)).is_file(),
        "a file over 64 KiB is an object file"
    );
    assert!(
        !values.iter().any(|(k, _)| *k == root_of(&busybox)),
        "and not a database value"
    );
    assert_eq!(read_mounted(&env, &store, "version").unwrap(), VERSION);
    let out = env.path("unpacked");
    unpack_rootfs(&env, &store, &out).ok();
    assert_eq!(fs::read(out.join("version")).unwrap(), VERSION);
    env.ct(&["--store", store.to_str().unwrap(), "store", "fsck"])
        .ok()
        .stdout_has("no problems");
}

#[test]
fn a_changed_or_cut_value_is_never_served_fsck_names_it_repair_removes_it_import_heals_it() {
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    let raw = RawStore::new(&store);
    let root = root_of(VERSION);

    // Same length, other bytes: the mount answers EIO, fsck names the path.
    raw.put_inline(&root, b"version-TW0\n");
    assert_eq!(read_mounted(&env, &store, "version"), Err(5));
    env.ct(&["--store", st, "store", "fsck"])
        .fails(1, &["problem(s); bundles affected"])
        .stdout_has("/version")
        .stdout_has("content changed");
    // Unpack refuses too, naming the file, and writes nothing.
    let out = env.path("out");
    unpack_rootfs(&env, &store, &out).fails(1, &["/version"]);
    assert!(!out.exists());

    // Re-import heals it, and says so.
    let v = env
        .ct(&["--json", "--store", st, "import", "v2.ctp"])
        .ok()
        .json();
    let healed = v["stats"]["healed"].to_string();
    assert!(healed.contains("do not hash to its name"), "{v}");
    assert_eq!(read_mounted(&env, &store, "version").unwrap(), VERSION);

    // Cut short, or longer: refused as an object file of the wrong size is.
    for bad in [&b"version"[..], b"version-TWO\n and more"] {
        raw.put_inline(&root, bad);
        assert_eq!(read_mounted(&env, &store, "version"), Err(5), "{bad:?}");
        env.ct(&["--store", st, "store", "fsck"])
            .fails(1, &["problem(s)"])
            .stdout_has("/version")
            .stdout_has(&format!(
                "the database holds {} bytes for it, not 12",
                bad.len()
            ));
    }
    // --repair removes the value; the file is then missing until it is imported again.
    env.ct(&["--store", st, "store", "fsck", "--repair"])
        .fails(1, &["import these bundles again"])
        .stdout_has("the database's copy of object");
    assert!(!raw.inline_values().iter().any(|(k, _)| *k == root));
    env.ct(&["--store", st, "store", "fsck"])
        .fails(1, &["problem(s)"])
        .stdout_has("missing");
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    env.ct(&["--store", st, "store", "fsck"])
        .ok()
        .stdout_has("no problems");
    assert_eq!(read_mounted(&env, &store, "version").unwrap(), VERSION);
}

#[test]
fn without_a_value_the_object_file_is_read_with_the_same_refusals() {
    // A store written before format 3 kept small files as object files.
    let (env, store) = imported();
    let st = store.to_str().unwrap();
    let raw = RawStore::new(&store);
    let root = root_of(VERSION);
    raw.delete_inline(&root);
    let obj = object_path(&store, &root);
    fs::create_dir_all(obj.parent().unwrap()).unwrap();
    fs::write(&obj, VERSION).unwrap();
    assert_eq!(read_mounted(&env, &store, "version").unwrap(), VERSION);
    env.ct(&["--store", st, "store", "fsck"])
        .ok()
        .stdout_has("no problems");
    // A re-import finds the sound object file and writes nothing.
    let v = env
        .ct(&[
            "--json", "--store", st, "import", "v2.ctp", "--name", "again",
        ])
        .ok()
        .json();
    assert_eq!(v["stats"]["new_objects"], 0, "{v}");
    assert!(!raw.inline_values().iter().any(|(k, _)| *k == root));
    // A changed object file, and a FIFO in its place: EIO, never a hang.
    fs::write(&obj, b"version-TW0\n").unwrap();
    assert_eq!(read_mounted(&env, &store, "version"), Err(5));
    fs::remove_file(&obj).unwrap();
    let mut c = Command::new("mkfifo");
    c.arg(&obj);
    run_command(c).ok();
    assert_eq!(read_mounted(&env, &store, "version"), Err(5));
    env.ct(&["--store", st, "store", "fsck"])
        .fails(1, &["problem(s)"])
        .stdout_has("/version");
    // A value written again wins over whatever is in objects/.
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    assert_eq!(read_mounted(&env, &store, "version").unwrap(), VERSION);
}

#[test]
fn gc_removes_values_no_kept_bundle_reaches_and_keeps_shared_ones() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v1.ctp", "--name", "one"])
        .ok();
    env.ct(&["--store", st, "import", "v2.ctp", "--name", "two"])
        .ok();
    let raw = RawStore::new(&store);
    let has = |content: &[u8]| {
        raw.inline_values()
            .iter()
            .any(|(k, _)| *k == root_of(content))
    };
    assert!(has(b"version-ONE\n") && has(VERSION) && has(SHARED));
    // A stray value nothing refers to goes at the next gc.
    raw.put_inline(&[0xab; 32], b"nobody's");
    env.ct(&["--store", st, "store", "rm", "one"]).ok();
    let gc = env
        .ct(&["--json", "--store", st, "store", "gc"])
        .ok()
        .json();
    assert_eq!(gc["gc"]["removed_inline"], 2, "{gc}");
    assert!(!has(b"version-ONE\n"));
    assert!(!raw.inline_values().iter().any(|(k, _)| *k == [0xab; 32]));
    assert!(
        has(VERSION) && has(SHARED),
        "what the kept bundle reaches stays"
    );
    env.ct(&["--store", st, "store", "rm", "two"]).ok();
    env.ct(&["--store", st, "store", "gc"]).ok();
    assert!(raw.inline_values().is_empty());
}

/// Whether the first page of `path` is in the page cache (util-linux `fincore`: mincore of a
/// mapping), without reading it.
fn cached(path: &Path) -> bool {
    let mut c = Command::new("fincore");
    c.args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path);
    let r = run_command(c).ok().stdout.trim().to_string();
    r.parse::<u64>()
        .unwrap_or_else(|_| panic!("fincore said {r:?}"))
        > 0
}

#[test]
fn read_ahead_fills_the_page_cache_with_verified_small_files_only() {
    let env = TestEnv::new();
    env.trust(&forger_public_key(env.root()));
    let content = |i: usize| format!("small file {i:02} {}\n", "x".repeat(100 * i)).into_bytes();
    let mut t = TarBuilder::new();
    t.dir(b"many/");
    for i in 0..12 {
        t.file(format!("many/f{i:02}").as_bytes(), &content(i));
    }
    let b = forge_bundle(
        env.root(),
        "many",
        &[Layer::gzip(&t.finish())],
        RootfsClaim::Derived,
    );
    let store = env.path("store");
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", b.bundle.to_str().unwrap()])
        .ok();
    // Someone who can write the store changes one small file, keeping its length.
    let mut bad = content(7);
    bad[0] = b'S';
    RawStore::new(&store).put_inline(&root_of(&content(7)), &bad);

    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let m = Mounted::mount(&env, &store, "many", &mp, &[]);
    let names: Vec<_> = (0..12).map(|i| format!("many/f{i:02}")).collect();
    assert!(
        names.iter().all(|n| !cached(&m.path(n))),
        "nothing is cached yet"
    );
    // Two files of the directory read from their start: the rest is read ahead, verified.
    for (i, n) in names.iter().enumerate().take(2) {
        assert_eq!(fs::read(m.path(n)).unwrap(), content(i));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cached(&m.path(&names[11])) {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was read ahead"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    for (i, n) in names.iter().enumerate().skip(2) {
        assert_eq!(cached(&m.path(n)), i != 7, "{n} cached");
    }
    // The changed file never reached the page cache: the kernel asks, and gets EIO.
    for (i, n) in names.iter().enumerate() {
        match fs::read(m.path(n)) {
            Ok(got) => assert!(i != 7 && got == content(i), "{n}"),
            Err(e) => assert!(i == 7 && e.raw_os_error() == Some(5), "{n}: {e}"),
        }
    }
    m.unmount();
}
