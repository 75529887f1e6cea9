//! `ct import` killed with SIGKILL at many moments: afterwards the bundle is either wholly in the
//! store or not at all, `ct store fsck` finds the store consistent, and the same import run again
//! succeeds. The kill moments are spread over the import's run time (measured first), so they
//! fall before, during and after the layers and the database write; ct has no failpoints.

use cerro_tests::{ct_bin, put_blob, rewrite_layout_manifest, Compression, TestEnv, TAG};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A bundle with an extra uncompressed layer of incompressible files, so an import takes a while.
fn big_bundle(env: &TestEnv) -> String {
    let img = env.image(Compression::Gzip, "img");
    let mut tar = tar::Builder::new(Vec::new());
    let mut x: u64 = 0x2545F4914F6CDD1D;
    for i in 0..24 {
        let data: Vec<u8> = (0..(2 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("data/f{i:02}")).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        tar.append(&h, &data[..]).unwrap();
    }
    let layer = tar.into_inner().unwrap();
    let digest = put_blob(&img, &layer);
    rewrite_layout_manifest(&img, |m| {
        m["layers"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer.len(),
        }));
    });
    env.pack(&format!("oci:{}:{TAG}", img.display()), "big.ctp", &[]);
    env.path("big.ctp").to_str().unwrap().to_string()
}

fn spawn_import(env: &TestEnv, store: &str, bundle: &str) -> std::process::Child {
    Command::new(ct_bin())
        .args(["--store", store, "import", bundle])
        .env_clear()
        .env("HOME", env.path("home"))
        .env("CT_CONFIG_DIR", &env.config)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ct import")
}

#[test]
fn sigkill_at_any_moment_leaves_a_consistent_store() {
    let env = TestEnv::new();
    env.keygen("alice");
    let bundle = big_bundle(&env);

    // How long a whole import takes here, to spread the kills over it.
    let probe = env.path("probe");
    let t = Instant::now();
    env.ct(&["--store", probe.to_str().unwrap(), "import", &bundle])
        .ok();
    let full = t.elapsed();

    let mut interrupted = 0;
    for (i, frac) in [0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 1.1]
        .iter()
        .enumerate()
    {
        let store = env.path(&format!("store{i}"));
        let st = store.to_str().unwrap();
        let mut child = spawn_import(&env, st, &bundle);
        std::thread::sleep(full.mul_f64(*frac));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let ls = env
            .ct(&["--json", "--store", st, "store", "ls"])
            .ok()
            .json();
        let n = ls["bundles"].as_array().unwrap().len();
        assert!(n <= 1, "kill at {frac}: {ls}");
        if n == 0 {
            interrupted += 1;
        }
        env.ct(&["--store", st, "store", "fsck"]).ok();
        // Run again: it completes (or finds the bundle already complete), and the store is whole.
        env.ct(&["--store", st, "import", &bundle]).ok();
        env.ct(&["--store", st, "store", "fsck"])
            .ok()
            .stdout_has("no problems");
        // Staging left by the killed process is gone once the store is opened again.
        let tmp = store.join("tmp");
        let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "kill at {frac}: staging left in {}", tmp.display());
    }
    // The kills must really have cut imports short, or this test proves nothing.
    assert!(
        interrupted >= 2,
        "only {interrupted} of the kills interrupted an import (import took {full:?})"
    );
    assert!(full < Duration::from_secs(60));
}
