//! Real images, entry by entry: for the busybox example, a multi-layer image made with umoci
//! (whiteouts, an opaque directory, hard links, devices, xattrs, type changes) and a Debian
//! minbase rootfs made with debootstrap, the rootfs `ct import` records (`ct store tree --json`)
//! must equal what `umoci unpack` extracts from the same image, as root, on type, mode, owner,
//! size, mtime, link count, hard links, symlink target, xattrs, device numbers and content hash.

use cerro_tests::fixtures::{debian_image, multilayer_image, DEBIAN_TAG, MULTILAYER_TAG};
use cerro_tests::tree::{compare, from_store_tree, walk_tree, Entry};
use cerro_tests::{copy_dir, example_image, tool, Compression, TestEnv, TAG};
use std::collections::BTreeMap;
use std::path::Path;

/// Pack `layout:tag`, import it, and return what `ct store tree --json` lists, and what
/// `umoci unpack` of the same layout extracts.
fn both_sides(layout: &Path, tag: &str) -> (BTreeMap<String, Entry>, BTreeMap<String, Entry>) {
    let env = TestEnv::new();
    env.keygen("alice");
    // Private copies: the fixtures are shared and read-only.
    let img = env.path("img");
    copy_dir(layout, &img);
    let st = env.path("store");
    let st = st.to_str().unwrap();
    env.pack(&format!("oci:{}:{tag}", img.display()), "image.ctp", &[]);
    env.ct(&["--store", st, "import", "image.ctp", "--name", "image"])
        .ok();
    let doc = env
        .ct(&["--json", "--store", st, "store", "tree", "image"])
        .ok()
        .json();
    let ours = from_store_tree(&doc);
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
    let theirs = walk_tree(&unpacked.join("rootfs"));
    (ours, theirs)
}

#[track_caller]
fn assert_same(ours: &BTreeMap<String, Entry>, theirs: &BTreeMap<String, Entry>) {
    let diffs = compare(ours, theirs);
    assert!(
        diffs.is_empty(),
        "ct store tree (first) and umoci unpack (second) differ in {} place(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn busybox_example_matches_umoci_unpack() {
    let (ours, theirs) = both_sides(example_image(Compression::Gzip), TAG);
    assert_same(&ours, &theirs);
    assert!(ours.len() > 30, "{} entries", ours.len());
}

#[test]
fn multilayer_image_matches_umoci_unpack() {
    let (ours, theirs) = both_sides(multilayer_image(), MULTILAYER_TAG);
    assert_same(&ours, &theirs);
    // The comparison is only as good as what the image exercises: check it is all there.
    let e = |p: &str| {
        ours.get(p)
            .unwrap_or_else(|| panic!("{p} is missing from the imported tree"))
    };
    for gone in [
        "/gone",
        "/etc/motd",
        "/opq/a",
        "/opq/sub",
        "/opq2/a",
        "/opq2/sub",
        "/dir2file/inside",
        "/usr/share/doc/tool-third-name",
    ] {
        assert!(!ours.contains_key(gone), "{gone} should be whited out");
    }
    assert_eq!(e("/opq2/fresh").size, Some(6), "opaque directory content");
    assert_eq!(e("/dir2file").kind.name(), "file");
    assert_eq!(e("/file2dir").kind.name(), "dir");
    assert_eq!(e("/usr/bin/tool").nlink, 2);
    assert_eq!(
        e("/usr/bin/tool-hardlink").hardlink.as_deref(),
        Some("/usr/bin/tool")
    );
    assert_eq!(e("/dev/null").rdev, Some((1, 3)));
    assert_eq!(e("/dev/loop7").kind.name(), "block");
    assert_eq!(e("/run/fifo").kind.name(), "fifo");
    assert!(e("/usr/bin/ping")
        .xattrs
        .contains_key("security.capability"));
    assert_eq!(e("/usr/bin/tool").xattrs["user.x"], "68656c6c6f");
    assert_eq!(e("/srv").xattrs["user.y"], "6469722d61747472");
    assert_eq!(e("/usr/bin/suid").mode, 0o4755);
    assert_eq!(e("/home/user").uid, 1000);
    assert_eq!(e("/etc/caf\\xe9").size, Some(13));
    assert_eq!(
        e("/var/lib/dangling").target.as_deref(),
        Some("../app/empty")
    );
}

#[test]
fn debian_minbase_matches_umoci_unpack() {
    let (ours, theirs) = both_sides(debian_image(), DEBIAN_TAG);
    assert_same(&ours, &theirs);
    assert!(ours.len() > 5000, "{} entries", ours.len());
    assert!(ours.contains_key("/usr/bin/dpkg"));
}
