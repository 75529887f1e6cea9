//! Real images through a real mount: for the busybox example, the multi-layer umoci image
//! (whiteouts, opaque directory, hard links, devices, xattrs, type changes) and the Debian
//! minbase image, a tree walk of `ct mount` equals what `umoci unpack` extracts, entry by entry
//! (type, mode, owner, mtime, nlink, hard links, size, content hash, symlink target, rdev,
//! xattrs); and `runc` runs the Debian image's own `/bin/sh` and `dpkg -l` on the mount.

use cerro_tests::fixtures::{debian_image, multilayer_image, DEBIAN_TAG, MULTILAYER_TAG};
use cerro_tests::mount::{runc_on, Mounted};
use cerro_tests::tree::{compare, walk_tree};
use cerro_tests::{copy_dir, example_image, tool, Compression, TestEnv, TAG};
use std::path::Path;

/// Pack `layout:tag` and mount it; compare the mount with `umoci unpack` of the same layout.
/// Returns the environment and the mount for further checks.
fn mount_and_compare(layout: &Path, tag: &str) -> (TestEnv, Mounted) {
    let env = TestEnv::new();
    env.keygen("alice");
    let img = env.path("img");
    copy_dir(layout, &img);
    env.pack(
        &format!("oci:{}:{tag}", img.display()),
        "image.ctp",
        &["--name", "image"],
    );
    let store = env.path("store");
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, "image.ctp", &mp, &[]);
    let unpacked = env.path("unpacked");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", img.display()),
            unpacked.to_str().unwrap(),
        ],
    );
    let (ours, theirs) = (walk_tree(&mp), walk_tree(&unpacked.join("rootfs")));
    let diffs = compare(&ours, &theirs);
    assert!(
        diffs.is_empty(),
        "the mount (first) and umoci unpack (second) differ in {} place(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert!(ours.len() > 10, "{} entries", ours.len());
    (env, m)
}

#[test]
fn busybox_through_the_mount_matches_umoci_unpack() {
    let (_env, m) = mount_and_compare(example_image(Compression::Gzip), TAG);
    m.unmount();
}

#[test]
fn the_multilayer_image_through_the_mount_matches_umoci_unpack() {
    let (_env, m) = mount_and_compare(multilayer_image(), MULTILAYER_TAG);
    m.unmount();
}

#[test]
fn debian_through_the_mount_matches_umoci_unpack_and_runs_dpkg_in_runc() {
    let (env, m) = mount_and_compare(debian_image(), DEBIAN_TAG);
    let r = runc_on(
        &env,
        &m.mountpoint,
        Some("/usr/sbin:/usr/bin:/sbin:/bin"),
        &[
            "/bin/sh",
            "-c",
            "dpkg -l | grep -E '^ii +(dpkg|libc6|coreutils)[: ]' ; cat /etc/debian_version",
        ],
    );
    r.ok();
    for pkg in ["dpkg", "libc6", "coreutils"] {
        assert!(
            // Multi-arch packages are listed as NAME:ARCH.
            r.stdout.lines().any(|l| l
                .split_whitespace()
                .nth(1)
                .is_some_and(|n| n.split(':').next() == Some(pkg))),
            "dpkg -l in the container does not list {pkg}:\n{r:?}"
        );
    }
    assert!(r.stdout.contains("12."), "debian_version: {r:?}");
    m.unmount();
}
