//! The store end to end: `ct import` verifies then imports (same exit codes as verify), a second
//! import under another name writes nothing new, `ct store fsck` names the bundle and path of a
//! flipped bit (exit 1), `--repair` removes it, and `gc` frees everything once bundles are gone.

use cerro_tests::hostile_store::RawStore;
use cerro_tests::{flip_byte, signed_bundle, TestEnv};
use std::fs;
use std::path::Path;

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
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
fn import_dedup_fsck_repair_gc() {
    let s = signed_bundle();
    let env = TestEnv::new();
    let store = env.path("store");
    let st = store.to_str().unwrap();
    let b = s.bundle.to_str().unwrap();

    // Untrusted: refused with verify's code, and nothing lands in the store.
    env.ct(&["--store", st, "import", b])
        .fails(3, &["no signature is from a trusted key"]);
    assert!(files_under(&store.join("objects")).is_empty());
    env.trust(&s.public_key);

    let v = env.ct(&["--json", "--store", st, "import", b]).ok().json();
    assert_eq!(v["stats"]["already_present"], false);
    assert!(v["stats"]["new_objects"].as_u64().unwrap() > 0);
    assert_eq!(v["rootfs"], s.pack["rootfs"]);
    assert!(v["rootfs"].as_str().unwrap().starts_with("ctfs:"));
    let objects = files_under(&store.join("objects"));
    assert!(!objects.is_empty());

    // Same bundle, same name: nothing to do. Another name: shares everything, writes nothing.
    env.ct(&["--store", st, "import", b])
        .ok()
        .stdout_has("already in the store");
    let v = env
        .ct(&["--json", "--store", st, "import", b, "--name", "again"])
        .ok()
        .json();
    assert_eq!(v["stats"]["new_objects"], 0);
    assert_eq!(v["stats"]["new_blobs"], 0);
    assert_eq!(files_under(&store.join("objects")), objects);
    let du = env
        .ct(&["--json", "--store", st, "store", "du"])
        .ok()
        .json();
    assert!(du["usage"]["saving_bytes"].as_u64().unwrap() > 0);
    env.ct(&["--store", st, "store", "fsck"])
        .ok()
        .stdout_has("no problems");

    // A flipped bit in the largest object: fsck names both bundles and the path; exit 1.
    let biggest = objects
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    flip_byte(biggest, 100);
    env.ct(&["--store", st, "store", "fsck"])
        .fails(1, &["problem(s); bundles affected"])
        .stdout_has("bin/busybox")
        .stdout_has("content changed");
    let f = env.ct(&["--json", "--store", st, "store", "fsck"]).json();
    assert_eq!(f["ok"], false);
    let names: Vec<&str> = f["fsck"]["must_reimport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{f}");
    env.ct(&["--store", st, "store", "fsck", "--repair"])
        .fails(1, &["import these bundles again"]);
    assert!(!biggest.exists(), "repair removes the corrupt object");

    // gc keeps referenced objects, and frees everything once the bundles are removed.
    env.ct(&["--store", st, "store", "gc"]).ok();
    assert!(!files_under(&store.join("blobs")).is_empty());
    env.ct(&["--store", st, "store", "rm", "again"]).ok();
    let name = v_name(&env, st);
    env.ct(&["--store", st, "store", "rm", &name]).ok();
    env.ct(&["--store", st, "store", "gc"]).ok();
    assert!(files_under(&store.join("objects")).is_empty());
    assert!(files_under(&store.join("blobs")).is_empty());
    env.ct(&["--store", st, "store", "rm", "again"])
        .fails(64, &["no bundle named"]);

    // And a fresh import after all that is whole again.
    env.ct(&["--store", st, "import", b]).ok();
    env.ct(&["--store", st, "store", "fsck"]).ok();
}

fn v_name(env: &TestEnv, st: &str) -> String {
    let ls = env
        .ct(&["--json", "--store", st, "store", "ls"])
        .ok()
        .json();
    ls["bundles"][0]["name"].as_str().unwrap().to_string()
}

#[test]
fn a_damaged_bundle_is_refused_and_the_store_is_unchanged() {
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let store = env.path("store");
    let st = store.to_str().unwrap();
    let copy = env.path("damaged.ctp");
    fs::copy(&s.bundle, &copy).unwrap();
    let len = fs::metadata(&copy).unwrap().len();
    flip_byte(&copy, len - 4096);
    env.ct(&["--store", st, "import", copy.to_str().unwrap()])
        .fails(1, &["hash"]);
    assert!(files_under(&store.join("objects")).is_empty());
    assert!(files_under(&store.join("blobs")).is_empty());
    if store.join("db").exists() {
        // Nor any small file's content in the database (spec/store.md §5.1).
        assert!(RawStore::new(&store).inline_values().is_empty());
    }
    let ls = env
        .ct(&["--json", "--store", st, "store", "ls"])
        .ok()
        .json();
    assert_eq!(ls["bundles"].as_array().unwrap().len(), 0);
}
