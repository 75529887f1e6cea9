//! Two `ct import` processes at once into one store, of two bundles that share their base layer:
//! both succeed, each shared file and blob is stored once (`ct store du` shows the saving, the
//! object count is the number of distinct contents), and `ct store fsck` finds the store sound.

use cerro_tests::forge::{forge_bundle, forger_public_key, Layer, RootfsClaim, TarBuilder};
use cerro_tests::hostile_store::RawStore;
use cerro_tests::{TestEnv, TIMEOUT};
use std::fs;
use std::path::Path;

/// Files in the shared base layer, and their size: enough that an import takes a while, so the
/// two really overlap.
const BASE_FILES: usize = 48;
const BASE_FILE_BYTES: usize = 256 << 10;

/// Incompressible, deterministic bytes for file `i` (BLAKE3's extendable output).
fn content(i: usize, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(format!("base file {i}").as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

fn count_files(dir: &Path) -> usize {
    TestEnv::snapshot(dir)
        .values()
        .filter(|v| v.is_some())
        .count()
}

#[test]
fn two_imports_at_once_both_succeed_and_share_what_they_can() {
    let env = TestEnv::new();
    env.trust(&forger_public_key(env.root()));
    let mut base = TarBuilder::new();
    base.dir(b"data/");
    for i in 0..BASE_FILES {
        base.file(
            format!("data/{i:03}").as_bytes(),
            &content(i, BASE_FILE_BYTES),
        );
    }
    let base = Layer::gzip(&base.finish());
    let top = |name: &str| {
        let mut t = TarBuilder::new();
        t.file(b"etc/which", format!("{name}\n").as_bytes());
        Layer::gzip(&t.finish())
    };
    let a = forge_bundle(
        env.root(),
        "left",
        &[base.clone(), top("left")],
        RootfsClaim::Derived,
    );
    let b = forge_bundle(
        env.root(),
        "right",
        &[base.clone(), top("right")],
        RootfsClaim::Derived,
    );
    assert_eq!(
        a.layers[0], b.layers[0],
        "the two bundles share their base layer"
    );

    for round in 0..3 {
        let store = env.path(&format!("store-{round}"));
        let st = store.to_str().unwrap();
        let left = env
            .cmd(&[
                "--json",
                "--store",
                st,
                "import",
                a.bundle.to_str().unwrap(),
            ])
            .start();
        let right = env
            .cmd(&[
                "--json",
                "--store",
                st,
                "import",
                b.bundle.to_str().unwrap(),
            ])
            .start();
        let (l, r) = (left.wait(TIMEOUT), right.wait(TIMEOUT));
        l.ok();
        r.ok();
        let (lj, rj) = (l.json(), r.json());
        // Between them, each shared object was written once.
        let new_objects = lj["stats"]["new_objects"].as_u64().unwrap()
            + rj["stats"]["new_objects"].as_u64().unwrap();
        assert!(
            new_objects >= (BASE_FILES + 2) as u64,
            "round {round}: {new_objects} new objects reported"
        );

        let ls = env
            .ct(&["--json", "--store", st, "store", "ls"])
            .ok()
            .json();
        let names: Vec<&str> = ls["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["left", "right"], "round {round}");
        env.ct(&["--store", st, "store", "fsck"])
            .ok()
            .stdout_has("no problems");
        // Objects: the distinct contents, once each — 48 base files on disk, and the two small
        // tops in the database (store format 3 keeps files of at most 64 KiB there).
        assert_eq!(
            count_files(&store.join("objects")),
            BASE_FILES,
            "round {round}: objects"
        );
        let mut small: Vec<Vec<u8>> = RawStore::new(&store)
            .inline_values()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        small.sort();
        assert_eq!(
            small,
            [b"left\n".to_vec(), b"right\n".to_vec()],
            "round {round}: small files in the database"
        );
        // Blobs: the shared base layer once, two tops, two configs, two image manifests.
        assert_eq!(count_files(&store.join("blobs")), 7, "round {round}: blobs");
        let du = env
            .ct(&["--json", "--store", st, "store", "du"])
            .ok()
            .json();
        let shared = (BASE_FILES * BASE_FILE_BYTES) as u64 + base.bytes.len() as u64;
        let saving = du["usage"]["saving_bytes"].as_u64().unwrap();
        let db = du["usage"]["database_bytes"].as_u64().unwrap();
        // Logical less stored is exactly the shared bytes, less the database's own size (which
        // holds the two small files: their bytes count as stored there).
        let small_bytes = ("left\n".len() + "right\n".len()) as u64;
        assert_eq!(
            saving + db,
            shared + small_bytes,
            "round {round}: saving {saving} (database {db}) for {shared} shared bytes\n{du}"
        );
        assert_eq!(
            fs::read_dir(store.join("tmp")).unwrap().count(),
            0,
            "round {round}: staging left behind"
        );
    }
}
