//! Layer application beyond the vectors: sinks, error kinds, deep trees, whiteout order within a
//! layer, and "random bytes never panic" for the layer reader (plain, gzip and zstd).

mod rootfs_support;

use cerro_core::rootfs::{
    Blake3Root, ContentSink, HashSink, LayerError, Limits, MemorySink, Payload, RootfsBuilder,
};
use cerro_core::source::Compression;
use proptest::prelude::*;
use rootfs_support::{apply, gzip, zstd, Layer};
use std::io::{self, Read};

fn one(l: Layer) -> Vec<(Vec<u8>, Compression)> {
    vec![(l.finish(), Compression::None)]
}

fn entry(r: &cerro_core::rootfs::Rootfs, path: &[u8]) -> Option<Payload> {
    r.walk()
        .unwrap()
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, e)| e.payload)
}

#[test]
fn hash_sink_and_memory_sink_agree_and_match_b3sum() {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut l = Layer::new();
    l.file(b"big", 0o644, &big).file(b"small", 0o644, b"hi");
    let tar = l.finish();
    let mut a = RootfsBuilder::new(Limits::default());
    a.apply_layer(&tar[..], Compression::None, &mut HashSink)
        .unwrap();
    let mut mem = MemorySink::default();
    let mut b = RootfsBuilder::new(Limits::default());
    let stats = b
        .apply_layer(&tar[..], Compression::None, &mut mem)
        .unwrap();
    assert_eq!(stats.files, 2);
    assert_eq!(stats.file_bytes, 300_002);
    let (ra, rb) = (a.finish(), b.finish());
    assert_eq!(ra.digest, rb.digest);
    assert_eq!(
        entry(&ra, b"big"),
        Some(Payload::File {
            size: big.len() as u64,
            root: Blake3Root::of(&big),
            link: cerro_core::rootfs::Link::SINGLE
        })
    );
    assert_eq!(mem.files[&Blake3Root::of(&big)], big);
}

#[test]
fn same_tree_same_digest_whatever_the_compression() {
    let mut l = Layer::new();
    l.dir("d", 0o755).file(b"d/f", 0o644, b"content");
    let tar = l.finish();
    let plain = apply(&[(tar.clone(), Compression::None)], Limits::default()).unwrap();
    let gz = apply(&[(gzip(&tar), Compression::Gzip)], Limits::default()).unwrap();
    let zs = apply(&[(zstd(&tar), Compression::Zstd)], Limits::default()).unwrap();
    assert_eq!(plain.digest, gz.digest);
    assert_eq!(plain.digest, zs.digest);
}

struct FailingSink;
impl ContentSink for FailingSink {
    fn file(&mut self, content: &mut dyn Read, _size: u64) -> io::Result<Blake3Root> {
        let mut b = [0u8; 1];
        content.read_exact(&mut b)?;
        Err(io::Error::other("disk full"))
    }
}

#[test]
fn sink_failure_is_an_io_error_naming_the_entry() {
    let mut l = Layer::new();
    l.file(b"dir/file", 0o644, b"abc");
    let mut b = RootfsBuilder::new(Limits::default());
    let e = b
        .apply_layer(&l.finish()[..], Compression::None, &mut FailingSink)
        .unwrap_err();
    assert!(matches!(e, LayerError::Sink { .. }), "{e}");
    assert!(e.to_string().contains("\"dir/file\""), "{e}");
    assert!(e.refusal().is_none());
}

#[test]
fn truncation_inside_file_data_is_a_refusal_even_if_the_sink_swallows_it() {
    struct Swallow;
    impl ContentSink for Swallow {
        fn file(&mut self, content: &mut dyn Read, _size: u64) -> io::Result<Blake3Root> {
            let mut v = Vec::new();
            let _ = content.read_to_end(&mut v);
            Ok(Blake3Root::of(&v))
        }
    }
    let mut l = Layer::new();
    l.file(b"f", 0o644, &[1u8; 5000]);
    let mut t = l.unfinished();
    t.truncate(2000);
    let mut b = RootfsBuilder::new(Limits::default());
    let e = b
        .apply_layer(&t[..], Compression::None, &mut Swallow)
        .unwrap_err();
    assert_eq!(e.refusal().map(|r| r.class()), Some("truncated"), "{e}");
}

#[test]
fn source_read_errors_are_io_errors() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope"))
        }
    }
    let mut b = RootfsBuilder::new(Limits::default());
    let e = b
        .apply_layer(Broken, Compression::None, &mut HashSink)
        .unwrap_err();
    assert!(matches!(e, LayerError::Io { .. }), "{e}");
}

#[test]
fn a_very_deep_tree_is_handled_without_recursion_trouble() {
    // 2000 levels: the deepest a 4095-byte path allows.
    let path: Vec<u8> = b"a/".repeat(2000)[..3999].to_vec();
    let mut l = Layer::new();
    l.pax(&[(b"path", &path)]).file(b"x", 0o644, b"deep");
    let mut l2 = Layer::new();
    l2.file(b".wh.a", 0o644, b"");
    let r = apply(
        &[
            (l.finish(), Compression::None),
            (l2.finish(), Compression::None),
        ],
        Limits::default(),
    )
    .unwrap();
    assert!(r.walk().unwrap().is_empty());
    let mut l = Layer::new();
    l.pax(&[(b"path", &path)]).file(b"x", 0o644, b"deep");
    let r = apply(&one(l), Limits::default()).unwrap();
    assert_eq!(r.walk().unwrap().len(), 2000);
}

#[test]
fn whiteouts_hide_only_lower_layers_whatever_their_position() {
    let mut l0 = Layer::new();
    l0.dir("d", 0o755).file(b"d/old", 0o644, b"old");
    // The whiteout comes after this layer's own d/new: d/new stays, d/old goes.
    let mut l1 = Layer::new();
    l1.file(b"d/new", 0o644, b"new").file(b".wh.d", 0o644, b"");
    let r = apply(
        &[
            (l0.finish(), Compression::None),
            (l1.finish(), Compression::None),
        ],
        Limits::default(),
    )
    .unwrap();
    let paths: Vec<Vec<u8>> = r.walk().unwrap().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, vec![b"d".to_vec(), b"d/new".to_vec()]);
}

#[test]
fn a_whiteout_under_what_is_now_a_file_does_nothing() {
    // What umoci 0.4.7 writes when a layer turns the directory `d` into a file: the file, then
    // a whiteout for each child the directory had (whose parent is now that file).
    let mut l0 = Layer::new();
    l0.dir("d", 0o755).file(b"d/child", 0o644, b"c");
    let mut l1 = Layer::new();
    l1.file(b"d", 0o644, b"now a file")
        .file(b"d/.wh.child", 0o644, b"");
    let layers = [
        (l0.finish(), Compression::None),
        (l1.finish(), Compression::None),
    ];
    let r = apply(&layers, Limits::default()).unwrap();
    let w = r.walk().unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].1.payload,
        Payload::File {
            size: 10,
            root: Blake3Root::of(b"now a file"),
            link: cerro_core::rootfs::Link::SINGLE
        }
    );
    // A whiteout whose parent is a symbolic link is still refused.
    let mut l2 = Layer::new();
    l2.symlink(b"s", b"/etc").file(b"s/.wh.passwd", 0o644, b"");
    let e = apply(&[(l2.finish(), Compression::None)], Limits::default()).unwrap_err();
    assert_eq!(e.refusal().map(|r| r.class()), Some("through_symlink"));
}

#[test]
fn a_directory_entry_over_a_directory_keeps_its_children() {
    let mut l0 = Layer::new();
    l0.dir("d", 0o755).file(b"d/f", 0o644, b"f");
    let mut l1 = Layer::new();
    l1.dir_owned("d", 0o700, 5, 6);
    let r = apply(
        &[
            (l0.finish(), Compression::None),
            (l1.finish(), Compression::None),
        ],
        Limits::default(),
    )
    .unwrap();
    let w = r.walk().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(
        (w[0].1.meta.mode, w[0].1.meta.uid, w[0].1.meta.gid),
        (0o700, 5, 6)
    );
}

#[test]
fn replacing_a_directory_by_a_symlink_then_writing_under_it_is_refused() {
    let mut l0 = Layer::new();
    l0.dir("d", 0o755);
    let mut l1 = Layer::new();
    l1.symlink(b"d", b"/etc").file(b"d/passwd", 0o644, b"x");
    let e = apply(
        &[
            (l0.finish(), Compression::None),
            (l1.finish(), Compression::None),
        ],
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.refusal().map(|r| r.class()), Some("through_symlink"));
}

#[test]
fn inode_limit_is_enforced() {
    let mut l = Layer::new();
    for i in 0..10 {
        l.file(format!("f{i}").as_bytes(), 0o644, b"");
    }
    let limits = Limits {
        max_inodes: 5,
        ..Limits::default()
    };
    let e = apply(&one(l), limits).unwrap_err();
    assert_eq!(e.refusal().map(|r| r.class()), Some("limit"));
}

fn valid_stream() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("/", 0o755)
        .file(b"a/b", 0o644, b"hello")
        .symlink(b"s", b"a")
        .hardlink(b"h", b"a/b")
        .pax(&[(b"SCHILY.xattr.user.x", b"1"), (b"mtime", b"1.5")])
        .file(b"x", 0o644, &[9u8; 700])
        .file(b".wh.s", 0o644, b"");
    l.finish()
}

fn run_all(bytes: &[u8]) {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut b = RootfsBuilder::new(Limits {
            max_layer_bytes: 1 << 24,
            max_layer_entries: 1000,
            max_inodes: 1000,
        });
        if b.apply_layer(bytes, c, &mut HashSink).is_ok() {
            let r = b.finish();
            let _ = r.walk().unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        run_all(&bytes);
    }

    #[test]
    fn mutated_layers_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut: usize) {
        let mut t = valid_stream();
        for (pos, val) in edits {
            let i = pos % t.len();
            t[i] = val;
        }
        t.truncate(t.len() - cut % 600);
        run_all(&t);
        run_all(&gzip(&t));
    }
}

#[test]
fn end_of_archive_rules() {
    let mut l = Layer::new();
    l.file(b"f", 0o644, b"x");
    let body = l.unfinished();
    // No end marker at all, or one zero block: accepted (the stream ends at a header boundary).
    assert!(apply(&[(body.clone(), Compression::None)], Limits::default()).is_ok());
    let mut one_zero = body.clone();
    one_zero.extend_from_slice(&[0u8; 512]);
    assert!(apply(&[(one_zero, Compression::None)], Limits::default()).is_ok());
    // Anything after two zero blocks is read and ignored.
    let mut trailing = body.clone();
    trailing.extend_from_slice(&[0u8; 1024]);
    trailing.extend_from_slice(b"ignored trailing bytes");
    assert!(apply(&[(trailing, Compression::None)], Limits::default()).is_ok());
    // A partial block, even of zeros, is a truncated header.
    let mut partial = body;
    partial.extend_from_slice(&[0u8; 100]);
    let e = apply(&[(partial, Compression::None)], Limits::default()).unwrap_err();
    assert_eq!(e.refusal().map(|r| r.class()), Some("truncated"), "{e}");
}

#[test]
fn a_layer_may_end_after_its_last_data_but_not_inside_it() {
    // What `umoci insert` 0.4.7 writes: the last entry's data complete, then nothing — no
    // padding, no end-of-archive blocks. Go's archive/tar (umoci unpack, skopeo) accepts it.
    let data = b"hello, world";
    let mut l = Layer::new();
    l.dir("d", 0o755).file(b"d/last", 0o644, data);
    let full = l.unfinished();
    let data_end = full.len() - (512 - data.len());
    let classes = |bytes: &[u8]| {
        let layers = [(bytes.to_vec(), Compression::None)];
        apply(&layers, Limits::default()).map_err(|e| e.refusal().map(|r| r.class()))
    };
    let ok = classes(&full[..data_end]).expect("ends right after the data");
    assert_eq!(ok.digest, classes(&full).unwrap().digest, "same rootfs");
    assert_eq!(
        entry(&ok, b"d/last"),
        Some(Payload::File {
            size: data.len() as u64,
            root: Blake3Root::of(data),
            link: cerro_core::rootfs::Link::SINGLE,
        })
    );
    // Anywhere in the padding is as good.
    for cut in [data_end + 1, data_end + 250, full.len() - 1] {
        assert_eq!(
            classes(&full[..cut]).unwrap().digest,
            ok.digest,
            "cut at {cut}"
        );
    }
    // Inside the data, or inside a header, is truncation; so is gzip cut short.
    for cut in [data_end - 1, data_end - data.len() + 1, 100, 512 + 300] {
        assert_eq!(
            classes(&full[..cut]).unwrap_err(),
            Some("truncated"),
            "cut at {cut}"
        );
    }
    let gz = gzip(&full[..data_end]);
    let layers = [(gz.clone(), Compression::Gzip)];
    assert_eq!(apply(&layers, Limits::default()).unwrap().digest, ok.digest);
    let layers = [(gz[..gz.len() - 4].to_vec(), Compression::Gzip)];
    let e = apply(&layers, Limits::default()).unwrap_err();
    assert_eq!(e.refusal().map(|r| r.class()), Some("compression"), "{e}");
}
