//! `ct unpack` end to end with the real tools: skopeo and umoci accept the OCI layout and its
//! manifest digest is the signed one; skopeo accepts the docker archive; a rootfs unpack equals
//! the verified mount entry by entry; a tampered blob or file object exits 1 and leaves nothing.

use cerro_tests::mount::{mount_image, Mounted};
use cerro_tests::{layout_manifest, tool, TestEnv, TAG};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An environment with key `alice`, the mount image packed as `mnt.ctp` (package `mnt`), and a
/// store path.
fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.keygen("alice");
    let (layout, _) = mount_image();
    env.pack(
        &format!("oci:{}:{TAG}", layout.display()),
        "mnt.ctp",
        &["--name", "mnt"],
    );
    let store = env.path("store");
    (env, store)
}

fn unpack(env: &TestEnv, store: &Path, args: &[&str]) -> cerro_tests::Run {
    let mut full = vec!["--json", "--store", store.to_str().unwrap(), "unpack"];
    full.extend_from_slice(args);
    env.ct(&full)
}

/// The image manifest digest the signed manifest names (from the bundle's own `cerro/`).
fn signed_image_digest(dir: &Path) -> String {
    let toml = fs::read_to_string(dir.join("cerro/manifest.toml")).unwrap();
    // The `digest` line of the `[image]` table.
    let image = toml.split("\n[image]\n").nth(1).expect("an [image] table");
    let line = image
        .lines()
        .find(|l| l.starts_with("digest"))
        .expect("a digest");
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn the_oci_layout_is_accepted_by_skopeo_and_umoci_and_carries_the_signed_digest() {
    let (env, store) = setup();
    let out = env.path("out");
    let v = unpack(&env, &store, &["mnt.ctp", "-o", out.to_str().unwrap()])
        .ok()
        .json();
    let signed = signed_image_digest(&out);
    assert_eq!(v["image_digest"], signed);
    let (digest, _) = layout_manifest(&out);
    assert_eq!(digest, signed, "index.json names another manifest");
    // The source layout's manifest, verbatim.
    assert_eq!(
        fs::read(cerro_tests::blob_path(&out, &digest)).unwrap(),
        fs::read(cerro_tests::blob_path(&mount_image().0, &digest)).unwrap()
    );
    let oci = format!("oci:{}", out.display());
    let insp: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &oci]).ok().stdout).unwrap();
    assert_eq!(insp["Digest"], signed);
    let copy = env.path("copy");
    tool(
        "skopeo",
        &["copy", &oci, &format!("oci:{}:x", copy.display())],
    )
    .ok();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let refname = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap()
        .to_string();
    let bundle = env.path("umoci-bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{refname}", out.display()),
            bundle.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        fs::read(bundle.join("rootfs/data/public")).unwrap(),
        b"for everyone\n"
    );
    // Signatures travel beside it: the directory re-verifies as a bundle would.
    let sigs: Vec<_> = fs::read_dir(out.join("cerro/signatures"))
        .unwrap()
        .collect();
    assert_eq!(sigs.len(), 1);
    // A second unpack to the same place is refused (64) without --force, accepted with it.
    unpack(&env, &store, &["mnt", "-o", out.to_str().unwrap()])
        .json_fails(64, &["exists and is not an empty directory"]);
    unpack(
        &env,
        &store,
        &["mnt", "-o", out.to_str().unwrap(), "--force"],
    )
    .ok();
}

#[test]
fn the_docker_archive_is_accepted_by_skopeo() {
    let (env, store) = setup();
    let out = env.path("mnt.tar");
    unpack(
        &env,
        &store,
        &["mnt.ctp", "-o", out.to_str().unwrap(), "--format", "docker"],
    )
    .ok();
    let arch = format!("docker-archive:{}", out.display());
    let insp: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &arch]).ok().stdout).unwrap();
    let (_, m) = layout_manifest(&mount_image().0);
    assert_eq!(
        insp["Layers"].as_array().unwrap().len(),
        m["layers"].as_array().unwrap().len()
    );
    let copy = env.path("copy");
    tool(
        "skopeo",
        &["copy", &arch, &format!("oci:{}:x", copy.display())],
    )
    .ok();
}

/// What is compared between the mount and the unpacked tree.
#[derive(Debug, PartialEq)]
struct Facts {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    mtime: (i64, i64),
    rdev: u64,
    target: Option<PathBuf>,
    content: Option<Vec<u8>>,
}

fn facts(p: &Path) -> Facts {
    let m = fs::symlink_metadata(p).unwrap();
    Facts {
        kind: m.mode() & 0o170000,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        size: (!m.is_dir()).then(|| m.size()),
        mtime: (m.mtime(), m.mtime_nsec()),
        rdev: m.rdev(),
        target: m
            .file_type()
            .is_symlink()
            .then(|| fs::read_link(p).unwrap()),
        content: m.is_file().then(|| fs::read(p).unwrap()),
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::new()];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let r = rel.join(e.unwrap().file_name());
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
fn a_rootfs_unpack_equals_the_mount_entry_by_entry() {
    let (env, store) = setup();
    let out = env.path("rootfs");
    let v = unpack(
        &env,
        &store,
        &["mnt.ctp", "-o", out.to_str().unwrap(), "--format", "rootfs"],
    )
    .ok()
    .json();
    let mp = env.path("mnt");
    let _m = Mounted::mount(&env, &store, "mnt", &mp, &[]);
    let paths = walk(&mp);
    assert_eq!(
        walk(&out),
        paths,
        "the unpack lists other paths than the mount"
    );
    for rel in &paths {
        assert_eq!(
            facts(&out.join(rel)),
            facts(&mp.join(rel)),
            "{} differs",
            rel.display()
        );
    }
    // Hard links stay one inode.
    let (a, b) = (
        fs::metadata(out.join("data/link1")).unwrap(),
        fs::metadata(out.join("data/link2")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    // What was not kept is said: this build writes no xattrs.
    let lost = v["not_preserved"].as_array().unwrap();
    assert!(
        lost.iter()
            .any(|l| l.as_str().unwrap().contains("data/xattr: xattr user.cerro")),
        "{lost:?}"
    );
}

/// The leftovers of an unpack at `out`: the output and any temporary sibling.
fn leftovers(out: &Path) -> Vec<String> {
    let name = out.file_name().unwrap().to_string_lossy().to_string();
    fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(&name))
        .collect()
}

#[test]
fn a_tampered_blob_or_object_exits_1_and_leaves_no_output() {
    let (env, store) = setup();
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "mnt.ctp"]).ok();
    // A layer blob: oci and docker unpacks fail.
    let (_, m) = layout_manifest(&mount_image().0);
    let layer = m["layers"][1]["digest"].as_str().unwrap();
    let blob = store
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    cerro_tests::flip_byte(&blob, 100);
    for (fmt, name) in [("oci", "oci-out"), ("docker", "docker.tar")] {
        let out = env.path(name);
        unpack(
            &env,
            &store,
            &["mnt", "-o", out.to_str().unwrap(), "--format", fmt],
        )
        .json_fails(1, &[layer]);
        assert_eq!(leftovers(&out), Vec::<String>::new(), "{fmt}");
    }
    // A file object: the rootfs unpack fails.
    let h = blake3::hash(&fs::read(mount_image().1.join("data/big.bin")).unwrap()).to_hex();
    let obj = store.join("objects").join(&h[..2]).join(&h[2..]);
    cerro_tests::flip_byte(&obj, 70_000);
    let out = env.path("rootfs-out");
    unpack(
        &env,
        &store,
        &["mnt", "-o", out.to_str().unwrap(), "--format", "rootfs"],
    )
    .json_fails(1, &["big.bin"]);
    assert_eq!(leftovers(&out), Vec::<String>::new());
}
