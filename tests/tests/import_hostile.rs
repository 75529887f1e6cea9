//! Hostile layers through `ct import`: signed bundles (forged through the core API, since
//! `ct pack` refuses such layers) whose layers break one rule of spec/rootfs.md §3 each. Every
//! one verifies (its signature and blobs are fine), is refused by `ct import` with exit 10 and a
//! message naming the layer and the entry, and leaves the store exactly as it was: no object, no
//! blob, no bundle record, no staging left behind. A signed but forged rootfs digest gives 1, both
//! from `ct verify --deep` and from `ct import`.

use cerro_tests::forge::{forge_bundle, forger_public_key, kind, Header, Layer, RootfsClaim};
use cerro_tests::forge::{Forged, TarBuilder};
use cerro_tests::TestEnv;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A test's world: an env trusting the forger, and a store that already holds one good bundle
/// (so "unchanged" is checked against a store with content, not an empty one).
struct World {
    env: TestEnv,
    store: PathBuf,
}

impl World {
    fn new() -> Self {
        let env = TestEnv::new();
        env.trust(&forger_public_key(env.root()));
        let store = env.path("store");
        let w = Self { env, store };
        let mut t = TarBuilder::new();
        t.dir(b"etc/")
            .file(b"etc/base", b"the base bundle's file\n");
        let base = w.forge("base", &[Layer::gzip(&t.finish())], RootfsClaim::Derived);
        w.ct(&["import", path_str(&base.bundle)]).ok();
        w
    }

    fn forge(&self, name: &str, layers: &[Layer], claim: RootfsClaim) -> Forged {
        forge_bundle(self.env.root(), name, layers, claim)
    }

    fn ct(&self, args: &[&str]) -> cerro_tests::Run {
        let mut a = vec!["--store", self.store.to_str().unwrap()];
        a.extend_from_slice(args);
        self.env.ct(&a)
    }

    /// Every file under the store's objects/, blobs/ and tmp/ with its bytes, and the bundle
    /// list (`ct store ls --json`).
    fn state(&self) -> (BTreeMap<PathBuf, Option<Vec<u8>>>, serde_json::Value) {
        let mut files = BTreeMap::new();
        for d in ["objects", "blobs", "tmp"] {
            for (k, v) in TestEnv::snapshot(&self.store.join(d)) {
                files.insert(Path::new(d).join(k), v);
            }
        }
        let ls = self.ct(&["--json", "store", "ls"]).ok().json();
        (files, ls["bundles"].clone())
    }

    /// The bundle verifies (signature, trust, blobs), `ct verify --deep` and `ct import` both
    /// exit `code` naming every needle, and the store is unchanged afterwards (fsck clean).
    fn refused(&self, f: &Forged, code: i32, needles: &[&str]) {
        let b = path_str(&f.bundle);
        self.ct(&["verify", b]).ok();
        self.ct(&["verify", "--deep", b]).fails(code, needles);
        let before = self.state();
        self.ct(&["import", b]).fails(code, needles);
        self.ct(&["--json", "import", b]).json_fails(code, needles);
        let after = self.state();
        assert_eq!(
            before.1, after.1,
            "the refused import changed the bundle list"
        );
        let added: Vec<_> = after
            .0
            .keys()
            .filter(|k| !before.0.contains_key(*k))
            .collect();
        assert!(added.is_empty(), "the refused import left files: {added:?}");
        assert!(
            before.0 == after.0,
            "the refused import changed store files"
        );
        self.ct(&["store", "fsck"]).ok().stdout_has("no problems");
    }

    /// Forge a one-layer bundle from `tar` (gzip) and expect it refused with exit 10.
    fn hostile(&self, name: &str, tar: Vec<u8>, needles: &[&str]) {
        let f = self.forge(name, &[Layer::gzip(&tar)], RootfsClaim::Forged);
        let layer = format!("layer 1 ({})", f.layers[0]);
        let mut all = vec![layer.as_str()];
        all.extend_from_slice(needles);
        self.refused(&f, 10, &all);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tar that starts with a file the store does not have yet (so a refusal after it must not
/// publish the object it staged), followed by `rest`.
fn with_new_content(name: &str) -> TarBuilder {
    let mut t = TarBuilder::new();
    t.file(b"fresh", format!("content only {name} has\n").as_bytes());
    t
}

#[test]
fn dotdot_components_are_refused() {
    let w = World::new();
    let mut t = with_new_content("dotdot");
    t.file(b"../evil", b"x");
    w.hostile(
        "dotdot",
        t.finish(),
        &["entry \"../evil\"", "the path has a \"..\" component"],
    );
    let mut t = with_new_content("dotdot-inner");
    t.dir(b"a/").file(b"a/../../etc/evil", b"x");
    w.hostile(
        "dotdot-inner",
        t.finish(),
        &["entry \"a/../../etc/evil\"", "\"..\" component"],
    );
}

#[test]
fn an_entry_written_through_a_symlink_is_refused() {
    let w = World::new();
    let mut t = with_new_content("through-symlink");
    t.symlink(b"link", b"/tmp").file(b"link/evil", b"x");
    w.hostile(
        "through-symlink",
        t.finish(),
        &[
            "entry \"link/evil\"",
            "goes through the symbolic link \"link\"",
        ],
    );
}

#[test]
fn a_symlink_from_a_lower_layer_is_not_followed_either() {
    let w = World::new();
    let mut lower = with_new_content("lower");
    lower.symlink(b"etc", b"/etc");
    let mut upper = TarBuilder::new();
    upper.file(b"etc/passwd", b"root::0:0::/:/bin/sh\n");
    let f = w.forge(
        "through-lower",
        &[Layer::gzip(&lower.finish()), Layer::gzip(&upper.finish())],
        RootfsClaim::Forged,
    );
    let layer = format!("layer 2 ({})", f.layers[1]);
    w.refused(
        &f,
        10,
        &[
            &layer,
            "entry \"etc/passwd\"",
            "goes through the symbolic link \"etc\"",
        ],
    );
}

#[test]
fn a_hard_link_outside_the_tree_is_refused() {
    let w = World::new();
    let mut t = with_new_content("hardlink-outside");
    t.hard_link(b"evil", b"../../etc/shadow");
    w.hostile(
        "hardlink-outside",
        t.finish(),
        &[
            "entry \"evil\"",
            "hard link to \"../../etc/shadow\"",
            "outside the tree",
        ],
    );
}

#[test]
fn a_hard_link_to_what_is_not_there_yet_is_refused() {
    let w = World::new();
    // The target appears later in the same layer: not "in the tree built so far".
    let mut t = with_new_content("hardlink-early");
    t.hard_link(b"early", b"late").file(b"late", b"x");
    w.hostile(
        "hardlink-early",
        t.finish(),
        &[
            "entry \"early\"",
            "hard link to \"late\"",
            "not in the tree built so far",
        ],
    );
    let mut t = with_new_content("hardlink-missing");
    t.hard_link(b"evil", b"not/there");
    w.hostile(
        "hardlink-missing",
        t.finish(),
        &[
            "entry \"evil\"",
            "hard link to \"not/there\"",
            "not in the tree",
        ],
    );
}

#[test]
fn a_whiteout_for_the_root_or_outside_the_tree_is_refused() {
    let w = World::new();
    for (name, path) in [
        ("whiteout-root", &b".wh.."[..]),
        ("whiteout-root-dot", b"./.wh.."),
        ("whiteout-outside", b"a/.wh..."),
    ] {
        let mut t = with_new_content(name);
        t.dir(b"a/").file(path, b"");
        let shown = format!("entry \"{}\"", String::from_utf8_lossy(path));
        w.hostile(name, t.finish(), &[&shown, "whiteout: it names the root"]);
    }
}

#[test]
fn a_file_larger_than_its_header_claims_is_refused() {
    let w = World::new();
    // The header says 10 bytes; 600 follow, so the next "header" is file data.
    let mut t = with_new_content("larger");
    let mut h = Header::new(b"liar", kind::FILE);
    h.size = 10;
    t.header(&h).data(&[b'A'; 600]);
    // fresh: header at 0, data at 512; liar's header at 1024, its 10 bytes claimed at 1536
    // (padded to 2048); the rest of its 600 bytes sits at 2048, where the next header should be.
    w.hostile(
        "larger",
        t.finish(),
        &[
            "header at byte 2048: bad tar header: checksum mismatch",
            "the entry before it, \"liar\" (header at byte 1024), may hold more data than its \
             header claims",
        ],
    );
}

#[test]
fn a_header_larger_than_the_stream_is_refused() {
    let w = World::new();
    let mut t = with_new_content("truncated-data");
    let mut h = Header::new(b"data", kind::FILE);
    h.size = 1 << 20;
    t.header(&h).data(&[b'B'; 700]);
    w.hostile(
        "truncated-data",
        t.unterminated(),
        &[
            "entry \"data\"",
            "truncated: the stream ends inside the entry's data",
        ],
    );
}

#[test]
fn a_pax_record_with_a_nul_in_a_name_is_refused() {
    let w = World::new();
    let mut t = with_new_content("pax-nul");
    t.pax(&[(b"path", b"inno\0cent")]).file(b"x", b"data");
    w.hostile(
        "pax-nul",
        t.finish(),
        &["entry \"x\"", "contains a NUL byte"],
    );
    let mut t = with_new_content("pax-nul-link");
    t.pax(&[(b"linkpath", b"tar\0get")]);
    let mut h = Header::new(b"x", kind::SYMLINK);
    h.link = b"target".to_vec();
    t.entry(h, b"");
    w.hostile(
        "pax-nul-link",
        t.finish(),
        &["entry \"x\"", "contains a NUL byte"],
    );
}

#[test]
fn a_tar_that_ends_mid_header_is_refused() {
    let w = World::new();
    let t = with_new_content("mid-header");
    let mut bytes = t.unterminated();
    let mut h = Header::new(b"cut", kind::FILE);
    h.size = 1;
    bytes.extend_from_slice(&h.block()[..200]);
    w.hostile(
        "mid-header",
        bytes,
        &[
            "header at byte 1024",
            "truncated: the stream ends inside a header",
        ],
    );
}

#[test]
fn a_forged_but_signed_rootfs_digest_is_a_hash_mismatch() {
    let w = World::new();
    let mut t = TarBuilder::new();
    t.dir(b"bin/")
        .file(b"bin/tool", b"#!/bin/sh\necho honest\n");
    let f = w.forge(
        "forged-rootfs",
        &[Layer::gzip(&t.finish())],
        RootfsClaim::Forged,
    );
    w.refused(
        &f,
        1,
        &[
            "the layers give root filesystem ctfs:",
            &format!("the signed manifest says {}", f.rootfs),
        ],
    );
    // The same layers under an honest claim verify and import.
    let honest = w.forge(
        "honest-rootfs",
        &[Layer::gzip(&t.finish())],
        RootfsClaim::Derived,
    );
    w.ct(&["verify", "--deep", path_str(&honest.bundle)]).ok();
    w.ct(&["import", path_str(&honest.bundle)]).ok();
}

#[test]
fn a_decompression_bomb_stops_at_the_configured_limit() {
    let w = World::new();
    // 16 MiB of zeros gzip to a few KiB.
    let mut t = with_new_content("bomb");
    t.file(b"big", &vec![0u8; 16 << 20]);
    let layer = Layer::gzip(&t.finish());
    assert!(layer.bytes.len() < 64 << 10, "{} bytes", layer.bytes.len());
    let f = w.forge("bomb", &[layer], RootfsClaim::Derived);
    let config = w.env.config.join("config.toml");
    fs::write(&config, "[limits]\nmax_layer_bytes = 1048576\n").unwrap();

    let message = [
        "entry \"big\"",
        "limit exceeded: the layer decompresses to more than 1048576 bytes",
    ];
    let hint = [
        "max_layer_bytes = 1048576",
        "[limits] table of",
        config.to_str().unwrap(),
    ];
    w.refused(&f, 10, &message);
    let r = w.ct(&["import", path_str(&f.bundle)]);
    r.fails(10, &hint);
    let v = w.ct(&["--json", "import", path_str(&f.bundle)]).json();
    let h = v["error"]["hint"]
        .as_str()
        .expect("the JSON error has a hint");
    for n in hint {
        assert!(h.contains(n), "hint {h:?} does not mention {n:?}");
    }
    w.ct(&["verify", "--deep", path_str(&f.bundle)])
        .fails(10, &hint);

    // `ct pack` applies the same limit to the same layout.
    w.env.keygen("packer");
    let src = format!("oci:{}:bomb", f.layout.display());
    w.env
        .ct(&["pack", &src, "-o", "bomb-repacked.ctp"])
        .fails(10, &message)
        .fails(10, &hint);

    // It is the configured limit, not a fixed one: with the default, the same bundle imports.
    fs::remove_file(&config).unwrap();
    w.ct(&["import", path_str(&f.bundle)]).ok();
}
