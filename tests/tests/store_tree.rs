//! `ct store tree NAME`: every entry of an imported rootfs with its metadata, in human and JSON
//! form. The layer here is forged (signed through the core API) so it can carry what is not
//! hostile but unusual, and must import as umoci and containerd accept it: names with a leading
//! `/` or `./`, a duplicate entry (the later one wins, as in tar), a name that is not UTF-8 —
//! alongside every kind of entry, an xattr, a hard link and the root's own metadata.

use cerro_tests::forge::TarBuilder;
use cerro_tests::forge::{forge_bundle, forger_public_key, kind, Header, Layer, RootfsClaim};
use cerro_tests::tree::from_store_tree;
use cerro_tests::TestEnv;

fn b3(data: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(data).to_hex())
}

/// The unusual-but-accepted layer.
fn layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    let mut root = Header::new(b"./", kind::DIR);
    root.mode = 0o750;
    root.mtime = 1_600_000_000;
    t.entry(root, b"");
    t.dir(b"/etc/");
    t.file(b"./etc/leading-dot", b"dot\n");
    t.file(b"/etc/leading-slash", b"slash\n");
    t.file(b"etc/dup", b"first\n");
    t.file(b"etc/dup", b"second, the one that counts\n");
    t.file(b"etc/caf\xe9", b"latin-1\n");
    t.pax(&[(b"SCHILY.xattr.user.note", b"\x00\x01hi")]);
    let mut owned = Header::new(b"etc/owned", kind::FILE);
    owned.uid = 1000;
    owned.gid = 100;
    owned.mode = 0o4751;
    t.entry(owned, b"owned\n");
    t.hard_link(b"etc/owned-link", b"etc/owned");
    t.symlink(b"etc/link", b"../etc/dup");
    let mut dev = Header::new(b"dev/null", kind::CHAR);
    dev.major = 1;
    dev.minor = 3;
    t.entry(dev, b"");
    let mut blk = Header::new(b"dev/sda", kind::BLOCK);
    blk.major = 8;
    t.entry(blk, b"");
    t.entry(Header::new(b"run/fifo", kind::FIFO), b"");
    t.finish()
}

#[test]
fn tree_lists_every_entry_and_accepts_what_umoci_accepts() {
    let env = TestEnv::new();
    env.trust(&forger_public_key(env.root()));
    let f = forge_bundle(
        env.root(),
        "odd",
        &[Layer::tar(layer())],
        RootfsClaim::Derived,
    );
    let st = env.path("store");
    let st = st.to_str().unwrap();
    env.ct(&["--store", st, "import", f.bundle.to_str().unwrap()])
        .ok();

    let doc = env
        .ct(&["--json", "--store", st, "store", "tree", "odd"])
        .ok()
        .json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["rootfs"], f.rootfs.as_str());
    assert_eq!(doc["entries"][0]["path"], "/", "the root comes first");
    let t = from_store_tree(&doc);
    let paths: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/",
            "/dev",
            "/dev/null",
            "/dev/sda",
            "/etc",
            "/etc/caf\\xe9",
            "/etc/dup",
            "/etc/leading-dot",
            "/etc/leading-slash",
            "/etc/link",
            "/etc/owned",
            "/etc/owned-link",
            "/run",
            "/run/fifo",
        ]
    );
    let root = &t["/"];
    assert_eq!((root.mode, root.mtime), (0o750, (1_600_000_000, 0)));
    assert_eq!(root.nlink, 5, "2 plus /dev, /etc and /run");
    let dup = &t["/etc/dup"];
    assert_eq!(
        dup.content.as_deref(),
        Some(&*b3(b"second, the one that counts\n"))
    );
    assert_eq!(dup.size, Some(28));
    assert_eq!(
        t["/etc/caf\\xe9"].content.as_deref(),
        Some(&*b3(b"latin-1\n"))
    );
    assert_eq!(
        t["/etc/leading-slash"].content.as_deref(),
        Some(&*b3(b"slash\n"))
    );
    let owned = &t["/etc/owned"];
    assert_eq!((owned.uid, owned.gid, owned.mode), (1000, 100, 0o4751));
    assert_eq!(owned.xattrs["user.note"], "00016869");
    assert_eq!(owned.nlink, 2);
    assert_eq!(owned.hardlink.as_deref(), Some("/etc/owned"));
    assert_eq!(t["/etc/owned-link"].hardlink.as_deref(), Some("/etc/owned"));
    assert_eq!(
        t["/etc/owned-link"].xattrs, owned.xattrs,
        "one inode, one set of xattrs"
    );
    assert_eq!(t["/etc/link"].target.as_deref(), Some("../etc/dup"));
    assert_eq!(t["/etc/link"].mode, 0o777);
    assert_eq!(t["/dev/null"].rdev, Some((1, 3)));
    assert_eq!(t["/dev/sda"].rdev, Some((8, 0)));
    assert_eq!(t["/dev/sda"].kind.name(), "block");
    assert_eq!(t["/run/fifo"].kind.name(), "fifo");

    // The human form: one ls -l-like line per entry.
    let human = env
        .ct(&["--store", st, "store", "tree", "odd"])
        .ok()
        .stdout
        .clone();
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), t.len(), "{human}");
    let line = |p: &str| {
        *lines
            .iter()
            .find(|l| l.ends_with(&format!(" {p}")) || l.contains(&format!(" {p} ")))
            .unwrap_or_else(|| panic!("no line for {p}:\n{human}"))
    };
    assert!(
        lines[0].starts_with("drwxr-x---   5     0     0"),
        "{human}"
    );
    assert!(lines[0].ends_with(" 2020-09-13 12:26:40 /"), "{human}");
    assert!(
        line("/etc/owned").starts_with("-rwsr-x--x   2  1000   100          6 "),
        "{human}"
    );
    assert!(
        line("/etc/owned").ends_with("  [xattrs: user.note]"),
        "{human}"
    );
    assert!(
        line("/etc/link").ends_with("/etc/link -> ../etc/dup"),
        "{human}"
    );
    assert!(
        line("/dev/null").starts_with("crw-r--r--   1     0     0        1,3 "),
        "{human}"
    );
    assert!(line("/run/fifo").starts_with("prw-r--r--"), "{human}");
}

#[test]
fn tree_of_a_bundle_not_in_the_store_is_a_usage_error() {
    let env = TestEnv::new();
    let st = env.path("store");
    env.ct(&["--store", st.to_str().unwrap(), "store", "tree", "nothing"])
        .fails(64, &["nothing"]);
}
