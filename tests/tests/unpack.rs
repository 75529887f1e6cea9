//! `ct unpack` end to end with the real tools: skopeo and umoci accept the OCI layout and its
//! manifest digest is the signed one; skopeo accepts the docker archive; a rootfs unpack equals
//! the verified mount entry by entry; a tampered blob or file object exits 1 and leaves nothing.

use cerro_tests::mount::{mount_image, pack_mount_image, Mounted};
use cerro_tests::tree::{compare, walk_tree};
use cerro_tests::{layout_manifest, tool, TestEnv};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An environment with key `alice`, the mount image packed as `mnt.ctp` (package `mnt`), and a
/// store path.
fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.keygen("alice");
    pack_mount_image(&env, "mnt.ctp", "mnt");
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
    // And the attestations (the SBOM and the provenance `ct pack` signs in), each under its
    // digest.
    let atts: Vec<_> = fs::read_dir(out.join("cerro/attestations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(atts.len(), 2);
    for a in &atts {
        let name = a.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            cerro_tests::sha256(&fs::read(a).unwrap()),
            format!("sha256:{name}")
        );
    }
    // A second unpack to the same place is refused (64) without --force, accepted with it.
    unpack(&env, &store, &["mnt", "-o", out.to_str().unwrap()])
        .json_fails(64, &["exists and is not an empty directory"]);
    // With --force the new output is swapped in whole (one atomic exchange) and the old one,
    // with anything added to it, is gone, as is the temporary sibling.
    fs::write(out.join("stale"), b"from before").unwrap();
    let before = fs::metadata(&out).unwrap().ino();
    unpack(
        &env,
        &store,
        &["mnt", "-o", out.to_str().unwrap(), "--force"],
    )
    .ok();
    assert!(!out.join("stale").exists());
    assert_ne!(fs::metadata(&out).unwrap().ino(), before);
    assert!(out.join("index.json").is_file());
    assert_eq!(leftovers(&out), vec!["out".to_string()]);
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
    // The image ID (config digest) is the signed config's, and the layers are the signed
    // config's diff_ids (docker save stores them uncompressed).
    let raw: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--raw", &arch]).ok().stdout).unwrap();
    assert_eq!(raw["config"]["digest"], m["config"]["digest"]);
    let config: serde_json::Value = serde_json::from_slice(
        &fs::read(cerro_tests::blob_path(
            &mount_image().0,
            m["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(insp["Layers"], config["rootfs"]["diff_ids"]);
    let copy = env.path("copy");
    tool(
        "skopeo",
        &["copy", &arch, &format!("oci:{}:x", copy.display())],
    )
    .ok();
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
    // Entry by entry: kind, mode, owner, mtime, link count, size, content hash, symlink target,
    // device numbers, xattrs.
    let diffs = compare(&walk_tree(&out), &walk_tree(&mp));
    assert!(
        diffs.is_empty(),
        "the unpack (first) and the mount (second) differ in {} place(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    // Hard links stay one inode.
    let (a, b) = (
        fs::metadata(out.join("data/link1")).unwrap(),
        fs::metadata(out.join("data/link2")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    // Xattrs are written too (as root, on a filesystem with user xattrs, nothing is lost).
    let x = out.join("data/xattr");
    let got = rustix::fs::lgetxattr(&x, "user.cerro", &mut [0u8; 64][..]).unwrap();
    assert_eq!(got, 5);
    let mut buf = [0u8; 5];
    rustix::fs::lgetxattr(&x, "user.cerro", &mut buf[..]).unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(v["not_preserved"], serde_json::json!([]), "{v}");
}

#[test]
fn what_a_rootfs_unpack_cannot_write_is_listed_and_the_rest_is_written() {
    // A layer with an xattr in a namespace Linux does not have: the store keeps it (it is part
    // of the signed tree), the kernel refuses to write it, and the unpack says so.
    let env = TestEnv::new();
    env.keygen("alice");
    let img = env.path("img");
    cerro_tests::copy_dir(&mount_image().0, &img);
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.bogus.attr", &b"1"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("data/odd").unwrap();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_mtime(1_704_067_200);
    h.set_cksum();
    b.append(&h, &b"odd\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let digest = cerro_tests::put_blob(&img, &layer);
    cerro_tests::rewrite_layout_manifest(&img, |m| {
        m["layers"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer.len()}));
    });
    env.pack("oci:img", "odd.ctp", &["--name", "odd"]);
    let store = env.path("store");
    let out = env.path("rootfs");
    let v = unpack(
        &env,
        &store,
        &["odd.ctp", "-o", out.to_str().unwrap(), "--format", "rootfs"],
    )
    .ok()
    .json();
    assert_eq!(
        v["not_preserved"],
        serde_json::json!(["/data/odd: xattr bogus.attr (Operation not supported (os error 95))"]),
        "{v}"
    );
    assert_eq!(fs::read(out.join("data/odd")).unwrap(), b"odd\n");
    assert_eq!(
        fs::read(out.join("data/public")).unwrap(),
        b"for everyone\n"
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
