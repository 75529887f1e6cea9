//! Regenerates the rootfs test vectors under `spec/vectors/rootfs/` (spec/rootfs.md §8): layers
//! with their expected listing and rootfs digest, hostile layers with the class of their
//! refusal, and directory-node encodings. Run: `cargo run -p cerro-core --example
//! gen_rootfs_vectors -- spec/vectors`. `core/tests/rootfs_vectors.rs` loads the files; a diff
//! in the output is a format change.

#[path = "../tests/rootfs_support/mod.rs"]
mod support;

use cerro_core::rootfs::{DirNode, Limits, OutboardBuilder, RootRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::{apply, compression_of, gzip, listing, zstd, Layer};
use tar::EntryType;

type Case = (&'static str, Vec<(&'static str, Vec<u8>)>);

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn valid_cases() -> Vec<Case> {
    // One layer with every entry kind, header form and name form.
    let mut l = Layer::new();
    l.dir("/", 0o755)
        .dir("./etc", 0o755)
        .file(b"etc/empty", 0o644, b"")
        .file(b"etc/one", 0o600, b"x")
        .file(b"/etc/block", 0o644, &bytes(64 * 1024, 1))
        .file(b"etc/block-and-one", 0o644, &bytes(64 * 1024 + 1, 2))
        .dir_owned("home/user", 0o750, 1000, 1000)
        .symlink(b"etc/localtime", b"/usr/share/zoneinfo/UTC")
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/sda", EntryType::Block, 8, 0)
        .fifo("run/initctl")
        .file(b"names/caf\xc3\xa9", 0o644, b"utf-8")
        .file(b"names/latin1-\xe9", 0o644, b"not utf-8");
    let long = format!("deep/{}/file", "d".repeat(120));
    l.file(long.as_bytes(), 0o644, b"long name (GNU L)")
        .symlink(b"deep/link", format!("/{}", "t".repeat(150)).as_bytes());
    l.pax(&[
        (
            b"SCHILY.xattr.security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
        (b"SCHILY.xattr.user.note", b"binary\0\nvalue"),
        (b"mtime", b"1700000000.123456789"),
        (b"uid", b"4294967295"),
    ])
    .file(b"bin/ping", 0o4755, b"capable");
    let long_pax_name = format!("pax/{}", "p".repeat(200));
    l.pax(&[(b"path", long_pax_name.as_bytes())])
        .file(b"ignored-ustar-name", 0o644, b"pax path");
    let basic = vec![("layer-0.tar", l.finish())];

    // Three layers: whiteouts, opaque directories, type changes, hard links, duplicates.
    let mut l0 = Layer::new();
    l0.dir("a", 0o755)
        .file(b"a/keep", 0o644, b"keep")
        .file(b"a/gone", 0o644, b"gone")
        .dir("a/sub", 0o755)
        .file(b"a/sub/x", 0o644, b"x")
        .dir("opq", 0o755)
        .file(b"opq/old1", 0o644, b"old1")
        .dir("opq/olddir", 0o755)
        .file(b"opq/olddir/f", 0o644, b"f")
        .file(b"was-file", 0o644, b"file")
        .dir("was-dir", 0o755)
        .file(b"was-dir/inner", 0o644, b"inner")
        .symlink(b"was-link", b"a")
        .file(b"lower-target", 0o640, b"shared content");
    let mut l1 = Layer::new();
    l1.file(b"a/.wh.gone", 0o644, b"")
        .file(b"a/.wh.sub", 0o644, b"")
        .file(b"a/.wh.never-existed", 0o644, b"")
        .dir("opq", 0o700)
        .file(b"opq/-first", 0o644, b"written before the marker")
        .file(b"opq/.wh..wh..opq", 0o644, b"")
        .file(b"opq/new", 0o644, b"new")
        .dir("was-file", 0o755)
        .file(b"was-file/now-inside", 0o644, b"inside")
        .file(b"was-dir", 0o644, b"now a file")
        // What umoci writes for a directory turned file: whiteouts below the new file, no-ops.
        .file(b"was-dir/.wh.inner", 0o644, b"")
        .file(b"was-link", 0o644, b"now a file too")
        .file(b".wh..wh.plnk", 0o644, b"");
    let mut l2 = Layer::new();
    l2.hardlink(b"link-to-lower", b"lower-target")
        .file(b"h/orig", 0o755, b"hard linked")
        .hardlink(b"h/second", b"h/orig")
        .hardlink(b"h/third", b"/h/orig")
        .file(b"broken/orig", 0o644, b"one")
        .hardlink(b"broken/link", b"broken/orig")
        .file(
            b"broken/orig",
            0o644,
            b"replaced: the link keeps the old content",
        )
        .file(b"dup", 0o644, b"first")
        .file(b"dup", 0o600, b"second wins");
    let layered = vec![
        ("layer-0.tar.gz", gzip(&l0.finish())),
        ("layer-1.tar.gz", gzip(&l1.finish())),
        ("layer-2.tar.zst", zstd(&l2.finish())),
    ];

    // Parents created implicitly; an empty stream and a marker-only stream are empty layers.
    let mut ip = Layer::new();
    ip.file(b"x/y/z", 0o644, b"z").dir("x/y", 0o711);
    let implicit = vec![
        ("layer-0.tar", Vec::new()),
        ("layer-1.tar", Layer::new().finish()),
        ("layer-2.tar", ip.finish()),
    ];
    // Pax records (§3.1): when a key repeats, the last record wins; an empty value means "no
    // override", so the header's own field stands (as POSIX and Go's archive/tar read it).
    let mut pr = Layer::new();
    pr.pax(&[(b"path", b"pax/first-name"), (b"path", b"")])
        .file(
            b"ustar-name-stands",
            0o644,
            b"the last path record is empty",
        );
    pr.pax(&[(b"mtime", b"1"), (b"mtime", b"2.5")])
        .file(b"mtime-last-wins", 0o644, b"x");
    pr.pax(&[(b"uid", b"7"), (b"uid", b"")])
        .file(b"uid-from-header", 0o644, b"x");
    pr.pax(&[(b"SCHILY.xattr.user.empty", b"")])
        .file(b"empty-xattr", 0o644, b"x");
    let pax_rules = vec![("layer-0.tar", pr.finish())];

    // Layers that end right after the last entry's data (what `umoci insert` 0.4.7 writes), or
    // inside its padding: complete, so accepted (§3.1 End).
    let mut u0 = Layer::new();
    u0.dir("bin", 0o755).file(b"bin/tool", 0o755, b"seven b");
    let mut t0 = u0.unfinished();
    t0.truncate(t0.len() - (512 - 7)); // no padding, no end-of-archive blocks
    let mut u1 = Layer::new();
    u1.file(b"etc/motd", 0o644, b"hello");
    let mut t1 = u1.unfinished();
    t1.truncate(t1.len() - 300); // 207 of the 507 padding bytes
    let unpadded = vec![("layer-0.tar", t0), ("layer-1.tar", t1)];
    vec![
        ("basic", basic),
        ("layered", layered),
        ("implicit-parents", implicit),
        ("pax-rules", pax_rules),
        ("unpadded-end", unpadded),
    ]
}

fn hostile_cases() -> Vec<(Case, &'static str, Option<Limits>)> {
    let one = |name, l: Layer| (name, vec![("layer-0.tar", l.finish())]);
    let mut out: Vec<(Case, &str, Option<Limits>)> = Vec::new();
    let mut push = |c: Case, class, limits| out.push((c, class, limits));

    let mut l = Layer::new();
    l.raw_entry(b'0', b"../evil", b"", b"x");
    push(one("dotdot", l), "dotdot", None);
    let mut l = Layer::new();
    l.raw_entry(b'0', b"a/b/../../../evil", b"", b"x");
    push(one("dotdot-inner", l), "dotdot", None);
    let mut l = Layer::new();
    l.symlink(b"link", b"/tmp").file(b"link/evil", 0o644, b"x");
    push(one("through-symlink", l), "through_symlink", None);
    let mut l0 = Layer::new();
    l0.symlink(b"etc", b"/host-etc");
    let mut l1 = Layer::new();
    l1.file(b"etc/passwd", 0o644, b"x");
    push(
        (
            "through-symlink-lower",
            vec![("layer-0.tar", l0.finish()), ("layer-1.tar", l1.finish())],
        ),
        "through_symlink",
        None,
    );
    let mut l = Layer::new();
    l.raw_entry(b'1', b"evil", b"../../etc/shadow", b"");
    push(one("hardlink-outside", l), "hard_link", None);
    let mut l = Layer::new();
    l.hardlink(b"evil", b"not/there");
    push(one("hardlink-missing", l), "hard_link", None);
    let mut l = Layer::new();
    l.hardlink(b"early", b"late").file(b"late", 0o644, b"x");
    push(one("hardlink-before-target", l), "hard_link", None);
    let mut l = Layer::new();
    l.dir("d", 0o755).hardlink(b"link", b"d");
    push(one("hardlink-to-directory", l), "hard_link", None);
    let mut l = Layer::new();
    l.symlink(b"s", b"/etc").hardlink(b"evil", b"s/passwd");
    push(one("hardlink-through-symlink", l), "hard_link", None);
    let mut l = Layer::new();
    l.raw_entry(b'0', b".wh..", b"", b"");
    push(one("whiteout-root", l), "whiteout", None);
    let mut l = Layer::new();
    l.raw_entry(b'0', b"a/.wh...", b"", b"");
    push(one("whiteout-outside", l), "whiteout", None);
    let mut l = Layer::new();
    l.file(b"a", 0o644, b"x").file(b"a/b", 0o644, b"y");
    push(one("parent-not-directory", l), "parent_not_directory", None);
    let mut l = Layer::new();
    l.raw_entry(b'0', b"./", b"", b"x");
    push(one("root-as-file", l), "bad_name", None);
    let mut l = Layer::new();
    l.file(b".wh.dir/f", 0o644, b"x");
    push(one("whiteout-as-directory", l), "bad_name", None);
    let mut l = Layer::new();
    l.raw_entry(b'2', b"empty-target", b"", b"");
    push(one("symlink-empty-target", l), "bad_name", None);
    let mut l = Layer::new();
    l.pax(&[(b"path", b"a\0b")]).file(b"x", 0o644, b"x");
    push(one("pax-nul-in-path", l), "nul_in_name", None);
    let mut l = Layer::new();
    l.pax(&[(b"linkpath", b"/etc\0/passwd")])
        .symlink(b"x", b"y");
    push(one("pax-nul-in-linkpath", l), "nul_in_name", None);
    let mut l = Layer::new();
    l.raw_entry(b'L', b"././@LongLink", b"", b"evil\0/etc/passwd\0")
        .file(b"short", 0o644, b"x");
    push(one("gnu-longname-nul", l), "nul_in_name", None);
    let mut l = Layer::new();
    l.raw_entry(b'S', b"sparse", b"", b"");
    push(one("gnu-sparse", l), "unsupported", None);
    let mut l = Layer::new();
    l.raw_entry(b'0', b"data", b"", &[7u8; 1000]);
    let mut t = l.unfinished();
    t.truncate(512 + 100);
    push(
        ("truncated-data", vec![("layer-0.tar", t)]),
        "truncated",
        None,
    );
    let mut l = Layer::new();
    l.file(b"ok", 0o644, b"fine");
    let mut t = l.unfinished();
    let mut next = Layer::new();
    next.file(b"cut", 0o644, b"");
    t.extend_from_slice(&next.unfinished()[..300]);
    push(
        ("truncated-header", vec![("layer-0.tar", t)]),
        "truncated",
        None,
    );
    // The header claims 10 bytes; 600 follow (then padding and the end marker).
    let mut t = Layer::header_bytes(b'0', b"short", 10);
    t.extend_from_slice(&[b'A'; 600]);
    t.resize(1024 + 1024, 0);
    push(
        ("file-larger-than-header", vec![("layer-0.tar", t)]),
        "bad_header",
        None,
    );
    let mut t = Layer::new().unfinished();
    t.extend_from_slice(&[0u8; 512]);
    let mut l = Layer::new();
    l.file(b"after-marker", 0o644, b"x");
    t.extend_from_slice(&l.unfinished());
    push(
        ("header-after-zero-block", vec![("layer-0.tar", t)]),
        "bad_header",
        None,
    );
    let mut l = Layer::new();
    l.file(b"big", 0o644, &vec![0u8; 4 << 20]);
    let bomb = gzip(&l.finish());
    let small = Limits {
        max_layer_bytes: 1 << 20,
        ..Limits::default()
    };
    push(
        ("decompression-bomb", vec![("layer-0.tar.gz", bomb)]),
        "limit",
        Some(small),
    );
    let mut l = Layer::new();
    for i in 0..20 {
        l.file(format!("f{i}").as_bytes(), 0o644, b"");
    }
    let few = Limits {
        max_layer_entries: 10,
        ..Limits::default()
    };
    push(one("too-many-entries", l), "limit", Some(few));
    let mut l = Layer::new();
    l.file(b"f", 0o644, &bytes(100_000, 3));
    let mut gz = gzip(&l.finish());
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    push(
        ("corrupt-gzip", vec![("layer-0.tar.gz", gz)]),
        "compression",
        None,
    );
    let mut l = Layer::new();
    l.raw(&[b'z'; 512]);
    push(
        ("not-a-tar", vec![("layer-0.tar", l.unfinished())]),
        "bad_header",
        None,
    );
    // Readers disagree on which wins (Go's archive/tar takes the GNU name): refused.
    let mut l = Layer::new();
    l.raw_entry(b'L', b"././@LongLink", b"", b"gnu-name\0")
        .pax(&[(b"path", b"pax-name")])
        .file(b"short", 0o644, b"x");
    push(one("gnu-longname-and-pax-path", l), "bad_header", None);
    // Linux's dev_t holds a 12-bit major and a 20-bit minor; 4096,0 would become 0,0.
    let mut l = Layer::new();
    l.device("dev/big", EntryType::Char, 4096, 0);
    push(one("device-major-too-large", l), "unsupported", None);
    let mut l = Layer::new();
    l.device("dev/big", EntryType::Block, 8, 1 << 20);
    push(one("device-minor-too-large", l), "unsupported", None);
    // A gzip stream has at least one member, a zstd stream at least one frame.
    push(
        ("empty-gzip", vec![("layer-0.tar.gz", Vec::new())]),
        "compression",
        None,
    );
    push(
        ("empty-zstd", vec![("layer-0.tar.zst", Vec::new())]),
        "compression",
        None,
    );
    out
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "spec/vectors".into()),
    )
    .join("rootfs");
    let _ = std::fs::remove_dir_all(&out);
    let mut basic_root = None;
    for (name, layers) in valid_cases() {
        let dir = out.join("valid").join(name);
        let mut applied = Vec::new();
        for (file, data) in &layers {
            write(&dir.join(file), data);
            applied.push((data.clone(), compression_of(file)));
        }
        let r = apply(&applied, Limits::default()).expect(name);
        write(&dir.join("expected.txt"), listing(&r).as_bytes());
        if name == "basic" {
            basic_root = Some(r);
        }
    }
    let mut expected = BTreeMap::new();
    for ((name, layers), class, limits) in hostile_cases() {
        let dir = out.join("hostile").join(name);
        let mut applied = Vec::new();
        for (file, data) in &layers {
            write(&dir.join(file), data);
            applied.push((data.clone(), compression_of(file)));
        }
        let limits_v = limits.unwrap_or_default();
        let err = apply(&applied, limits_v).expect_err(name);
        let got = err.refusal().map(|r| r.class());
        assert_eq!(got, Some(class), "{name}: {err}");
        let mut v = serde_json::json!({ "class": class, "message": err.to_string() });
        if let Some(l) = limits {
            v["limits"] = serde_json::json!({
                "max_layer_bytes": l.max_layer_bytes,
                "max_layer_entries": l.max_layer_entries,
                "max_inodes": l.max_inodes,
            });
        }
        expected.insert(name, v);
    }
    write(
        &out.join("hostile/expected.json"),
        (serde_json::to_string_pretty(&expected).unwrap() + "\n").as_bytes(),
    );
    let r = basic_root.expect("basic case");
    let root_node = DirNode::decode(&r.dirs[&r.root.dir]).unwrap();
    let nodes: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "empty-directory",
            DirNode::default().encode(),
            DirNode::default().digest().to_string(),
        ),
        (
            "basic-root-directory",
            root_node.encode(),
            root_node.digest().to_string(),
        ),
        (
            "basic-root-record",
            r.root.encode(),
            RootRecord::decode(&r.root.encode())
                .unwrap()
                .digest()
                .to_string(),
        ),
    ];
    let mut index = BTreeMap::new();
    for (name, bytes, digest) in nodes {
        write(
            &out.join(format!("nodes/{name}.hex")),
            (hex::encode(&bytes) + "\n").as_bytes(),
        );
        index.insert(name, digest);
    }
    write(
        &out.join("nodes/expected.json"),
        (serde_json::to_string_pretty(&index).unwrap() + "\n").as_bytes(),
    );
    // Outboards (§4.2): files whose byte i is (7*i + seed) mod 256, at the sizes where the
    // tree's shape changes: empty, one byte, one block, one block and a byte, several blocks.
    let mut obs = Vec::new();
    for (size, seed) in [
        (0usize, 0u8),
        (1, 1),
        (65536, 2),
        (65537, 3),
        (3 * 65536 + 500, 4),
    ] {
        let data = bytes(size, seed);
        let mut b = OutboardBuilder::new();
        b.update(&data);
        let (root, ob, _) = b.finalize();
        obs.push(serde_json::json!({
            "size": size,
            "seed": seed,
            "content_root": root.to_string(),
            "outboard_hex": hex::encode(ob.as_bytes()),
        }));
    }
    write(
        &out.join("outboard/expected.json"),
        (serde_json::to_string_pretty(&obs).unwrap() + "\n").as_bytes(),
    );
    println!("wrote {}", out.display());
}
