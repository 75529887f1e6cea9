//! The store as an attacker leaves it: every command serves exactly the bundle the user named or
//! verified, or refuses with the right exit code and a message naming the record — never
//! another bundle's content. The attack of issue 11: record `app` (v2's digest) rewritten to
//! hold v1's signed manifest, signatures and root record; plus forged and unsigned records,
//! invalid names, a registration naming a foreign pid, damaged objects healed by re-import, the
//! rollback guard, and gc running while readers start and read.

use cerro_tests::hostile_store::{env_with_versions, versions, RawStore};
use cerro_tests::mount::{is_mounted, Mounted};
use cerro_tests::TestEnv;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A store holding `app` = v2 and `old` = v1, whose record for v2's digest now holds v1.
fn swapped() -> (TestEnv, PathBuf) {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    env.ct(&["--store", st, "import", "v1.ctp", "--name", "old"])
        .ok();
    let v = versions();
    let raw = RawStore::new(&store);
    let v1 = raw.record(&v.d1);
    raw.put_record(&v.d2, &v1);
    (env, store)
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn mount_of_the_file_serves_exactly_its_digest_and_repairs_the_record() {
    let (env, store) = swapped();
    let st = store.to_str().unwrap();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, "v2.ctp", &mp, &[]);
    assert_eq!(read(&m.path("version")), "version-TWO\n");
    m.unmount();
    // The import that `ct mount FILE` did put v2's own record back.
    env.ct(&["--store", st, "store", "fsck"]).ok();
}

#[test]
fn mount_of_the_name_refuses_the_swapped_record() {
    let (env, store) = swapped();
    let v = versions();
    let mp = env.path("mnt");
    let (_g, r) = Mounted::run(&env, &store, &mp, &["mount", "app", mp.to_str().unwrap()]);
    r.fails(1, &[&format!("store record {}", v.d2), "hashes to", &v.d1]);
    assert!(!is_mounted(&mp));
}

#[test]
fn mount_of_a_name_says_which_digest_and_version_it_serves() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    let mp = env.path("mnt");
    let (m, r) = Mounted::run(&env, &store, &mp, &["mount", "app", mp.to_str().unwrap()]);
    r.ok().stdout_has(&format!("app TWO ({})", versions().d2));
    assert_eq!(read(&m.path("version")), "version-TWO\n");
    m.unmount();
}

#[test]
fn unpack_of_the_file_writes_exactly_its_digest_and_of_the_name_refuses() {
    let (env, store) = swapped();
    let st = store.to_str().unwrap();
    let out = env.path("out-name");
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
    .fails(1, &["store record", "hashes to"]);
    assert!(!out.exists(), "nothing is written for a refused record");
    let out = env.path("out-file");
    env.ct(&[
        "--store",
        st,
        "unpack",
        "v2.ctp",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "rootfs",
    ])
    .ok();
    assert_eq!(read(&out.join("version")), "version-TWO\n");
}

#[test]
fn run_of_the_file_runs_exactly_its_digest() {
    let (env, store) = swapped();
    let st = store.to_str().unwrap();
    let r = env.ct(&["--store", st, "run", "v2.ctp", "--", "/bin/cat", "/version"]);
    r.ok();
    assert_eq!(r.stdout, "version-TWO\n", "{r:?}");
    // The run's import repaired the record; swap it again. The name: refused before anything
    // runs.
    let v = versions();
    let raw = RawStore::new(&store);
    raw.put_record(&v.d2, &raw.record(&v.d1));
    let r = env.ct(&["--store", st, "run", "app", "--", "/bin/cat", "/version"]);
    r.fails(1, &["store record", "hashes to"]);
    assert!(!r.stdout.contains("version-"), "{r:?}");
}

#[test]
fn the_store_view_leaves_the_swapped_record_out_and_shows_the_rest() {
    let (env, store) = swapped();
    let v = versions();
    let mp = env.path("storemnt");
    let (m, r) = Mounted::run(&env, &store, &mp, &["store", "mount", mp.to_str().unwrap()]);
    r.ok();
    let hex2 = v.d2.trim_start_matches("sha256:");
    let hex1 = v.d1.trim_start_matches("sha256:");
    assert!(!m.path(&format!("by-digest/{hex2}")).exists());
    assert!(!m.path("bundles/app").exists());
    assert_eq!(
        read(&m.path(&format!("by-digest/{hex1}/rootfs/version"))),
        "version-ONE\n"
    );
    assert_eq!(read(&m.path("bundles/old/rootfs/version")), "version-ONE\n");
    assert!(
        m.log().contains(&format!("store record {}", v.d2)),
        "the log names the record left out:\n{}",
        m.log()
    );
    m.unmount();
}

#[test]
fn store_tree_verifies_the_record_before_walking() {
    let (env, store) = swapped();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "store", "tree", "app"])
        .fails(1, &["store record", "hashes to"]);
    env.ct(&["--store", st, "store", "tree", "old"])
        .ok()
        .stdout_has("/version");
}

#[test]
fn fsck_reports_every_binding_violation_and_repairs_from_the_bundle_file() {
    let (env, store) = swapped();
    let st = store.to_str().unwrap();
    let v = versions();
    let raw = RawStore::new(&store);
    let missing = format!("sha256:{}", "ab".repeat(32));
    raw.put_name(b"dangling", &missing);
    raw.put_name(b"../x", &v.d1);
    let r = env.ct(&["--store", st, "store", "fsck"]);
    r.fails(1, &["problem(s)"])
        .stdout_has(&format!(
            "store record {}: the manifest it holds hashes to {}",
            v.d2, v.d1
        ))
        .stdout_has(&format!(
            "refers to bundle {missing}, which the store has no record of"
        ))
        .stdout_has("invalid bundle name \"../x\"");
    let r = env.ct(&[
        "--store", st, "store", "fsck", "--repair", "--from", "v2.ctp",
    ]);
    r.ok().stdout_has("repaired from 1 bundle file(s)");
    env.ct(&["--store", st, "store", "fsck"]).ok();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, "app", &mp, &[]);
    assert_eq!(read(&m.path("version")), "version-TWO\n");
    m.unmount();
}

/// v2's manifest with one field changed (still canonical), under its own digest, with matching
/// nodes (the root record is v2's): what someone who can write the store, but not sign, forges.
fn forged_record(raw: &RawStore, signatures: serde_json::Value) -> String {
    let v = versions();
    let mut rec: serde_json::Value = serde_json::from_slice(&raw.record(&v.d2)).unwrap();
    let manifest = rec["manifest"]
        .as_str()
        .unwrap()
        .replace("version = \"TWO\"", "version = \"THREE\"");
    assert!(manifest.contains("THREE"));
    let digest = cerro_tests::sha256(manifest.as_bytes());
    rec["manifest"] = manifest.into();
    rec["signatures"] = signatures;
    raw.put_record(&digest, &serde_json::to_vec(&rec).unwrap());
    raw.put_name(b"app", &digest);
    digest
}

#[test]
fn a_forged_record_unsigned_or_wrongly_signed_is_refused() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    let raw = RawStore::new(&store);
    let v2: serde_json::Value = serde_json::from_slice(&raw.record(&versions().d2)).unwrap();
    let mp = env.path("mnt");
    for (sigs, code, needle) in [
        (serde_json::json!({}), 2, "not signed"),
        (v2["signatures"].clone(), 2, "forger"),
    ] {
        let d = forged_record(&raw, sigs);
        let (_g, r) = Mounted::run(&env, &store, &mp, &["mount", "app", mp.to_str().unwrap()]);
        r.fails(code, &[&format!("store record {d}"), needle]);
        assert!(!is_mounted(&mp));
        env.ct(&["--store", st, "store", "fsck"])
            .fails(1, &["problem(s)"])
            .stdout_has("signatures do not verify");
    }
}

#[test]
fn invalid_names_are_never_listed_served_or_used_as_paths() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    let raw = RawStore::new(&store);
    let d2 = &versions().d2;
    for bad in [&b""[..], b"a/b", b"../x"] {
        raw.put_name(bad, d2);
    }
    let r = env.ct(&["--json", "--store", st, "store", "ls"]);
    let v = r.ok().json();
    let names: Vec<&str> = v["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["app"], "{v}");
    assert!(r.stderr.contains("invalid bundle name \"../x\""), "{r:?}");
    let mp = env.path("storemnt");
    let (m, r) = Mounted::run(&env, &store, &mp, &["store", "mount", mp.to_str().unwrap()]);
    r.ok();
    let shown: Vec<String> = fs::read_dir(m.path("bundles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(shown, ["app"]);
    m.unmount();
    env.ct(&[
        "--store",
        st,
        "mount",
        "../x",
        env.path("m2").to_str().unwrap(),
    ])
    .fails(64, &["not a bundle file"]);
    env.ct(&["--store", st, "store", "fsck"])
        .fails(1, &["problem(s)"])
        .stdout_has("invalid bundle name \"a/b\"");
}

#[test]
fn umount_never_signals_a_pid_it_read_from_a_store_file() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    // The victim: any process of the machine.
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    let mp = env.path("not-mounted");
    fs::create_dir_all(&mp).unwrap();
    // A registration for MP naming the victim, kept "alive" by the attacker's own lock.
    let id = {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(mp.as_os_str().as_encoded_bytes());
        h[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let reg = store.join("mounts").join(format!("{id}.json"));
    fs::write(
        &reg,
        serde_json::to_vec(&serde_json::json!({
            "format": "cerro-torre/mount/v2", "mountpoint": mp, "pid": victim.id(),
            "kind": "bundle", "bundles": [], "log": "/dev/null", "started_at": 0,
            "allow_other": false
        }))
        .unwrap(),
    )
    .unwrap();
    let mut attacker = Command::new("flock")
        .arg("-x")
        .arg(&reg)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = env.ct(&["--store", st, "umount", mp.to_str().unwrap()]);
    let alive = victim.try_wait().unwrap().is_none();
    let _ = attacker.kill();
    let _ = attacker.wait();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        alive,
        "ct umount signalled a process it could not prove was the daemon\n{r:?}"
    );
    assert!(r.stderr.contains("nothing was signalled"), "{r:?}");
}

#[test]
fn reimport_heals_damaged_objects_blobs_and_links() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    // The busybox object (the biggest) flipped; a blob replaced by a link to a host file.
    let mut objects: Vec<PathBuf> = walk(&store.join("objects"));
    objects.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let big = objects.last().unwrap().clone();
    cerro_tests::flip_byte(&big, 1000);
    let blob = walk(&store.join("blobs/sha256"))[0].clone();
    fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &blob).unwrap();
    env.ct(&["--store", st, "store", "fsck"])
        .fails(1, &["problem(s)"]);
    let r = env.ct(&["--json", "--store", st, "import", "v2.ctp"]);
    let v = r.ok().json();
    let healed = v["stats"]["healed"].as_array().unwrap();
    assert_eq!(healed.len(), 2, "{v}");
    env.ct(&["--store", st, "store", "fsck"]).ok();
    assert!(fs::symlink_metadata(&blob).unwrap().is_file());
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
    .ok();
    assert_eq!(
        fs::read(out.join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_name_never_moves_to_an_older_bundle_unless_allowed() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap();
    let v = versions();
    env.ct(&["--store", st, "import", "v2.ctp"]).ok();
    env.ct(&["--store", st, "import", "v1.ctp"]).fails(
        4,
        &[
            "refusing to move app from version TWO",
            "2026-01-01",
            "older version ONE",
            "2025-01-01",
            "--allow-downgrade",
        ],
    );
    // Serving the old file by its digest is fine, and leaves the name alone.
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, "v1.ctp", &mp, &[]);
    assert_eq!(read(&m.path("version")), "version-ONE\n");
    m.unmount();
    let info = env
        .ct(&["--json", "--store", st, "store", "info", "app"])
        .ok()
        .json();
    assert_eq!(info["bundle_digest"], serde_json::json!(v.d2));
    // v1 is kept by digest (no name) until gc.
    env.ct(&["--store", st, "store", "info", &v.d1]).ok();
    let r = env.ct(&[
        "--json",
        "--store",
        st,
        "import",
        "v1.ctp",
        "--allow-downgrade",
    ]);
    assert_eq!(r.ok().json()["stats"]["name"]["action"], "moved");
    let info = env
        .ct(&["--json", "--store", st, "store", "info", "app"])
        .ok()
        .json();
    assert_eq!(info["bundle_digest"], serde_json::json!(v.d1));
    // Moving forward needs nothing; v1, then named by nothing, goes at gc.
    let r = env.ct(&["--json", "--store", st, "import", "v2.ctp"]);
    assert_eq!(r.ok().json()["stats"]["name"]["action"], "moved");
    let g = env
        .ct(&["--json", "--store", st, "store", "gc"])
        .ok()
        .json();
    assert_eq!(g["gc"]["removed_records"], 1, "{g}");
    env.ct(&["--store", st, "store", "info", &v.d1])
        .fails(1, &["no record"]);
}

#[test]
fn gc_never_pulls_content_from_under_readers() {
    let (env, store) = env_with_versions();
    let st = store.to_str().unwrap().to_string();
    // v2 named; v1 served by digest only (`ct mount v1.ctp` keeps the name on v2): only the
    // readers' leases keep v1.
    env.ct(&["--store", &st, "import", "v2.ctp"]).ok();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let gcs = std::thread::scope(|scope| {
        let gc = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                env.ct(&["--store", &st, "store", "gc"]).ok();
                n += 1;
            }
            n
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut rounds = 0;
        while Instant::now() < deadline || rounds < 3 {
            let mp = env.path(&format!("mnt{rounds}"));
            let m = Mounted::mount(&env, &store, "v1.ctp", &mp, &[]);
            for _ in 0..5 {
                assert_eq!(read(&m.path("version")), "version-ONE\n");
                assert_eq!(
                    fs::read(m.path("bin/busybox")).unwrap(),
                    fs::read("/bin/busybox").unwrap()
                );
            }
            let out = env.path(&format!("out{rounds}"));
            env.ct(&[
                "--store",
                &st,
                "unpack",
                "v1.ctp",
                "-o",
                out.to_str().unwrap(),
                "--format",
                "rootfs",
            ])
            .ok();
            assert_eq!(read(&out.join("version")), "version-ONE\n");
            let r = env.ct(&[
                "--store", &st, "run", "v1.ctp", "--", "/bin/cat", "/version",
            ]);
            r.ok();
            assert_eq!(r.stdout, "version-ONE\n");
            m.unmount();
            rounds += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        gc.join().unwrap()
    });
    assert!(gcs >= 3, "gc ran {gcs} times");
    // Once nothing reads it, v1 (named by nothing) is collected.
    env.ct(&["--store", &st, "store", "gc"]).ok();
    env.ct(&["--store", &st, "store", "info", &versions().d1])
        .fails(1, &["no record"]);
}
