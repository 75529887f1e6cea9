//! Loads the normative rootfs vectors in `spec/vectors/rootfs/` and checks the code against
//! them: each valid layer stack gives exactly its expected listing and rootfs digest (a
//! digest-stability test), each hostile stack is refused with its class, and each node
//! encoding decodes, re-encodes to the same bytes and hashes to its digest.

mod rootfs_support;

use cerro_core::rootfs::{DirDigest, DirNode, Limits, RootRecord, RootfsDigest};
use rootfs_support::{apply, compression_of, listing};
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../spec/vectors/rootfs")
}

fn layers_of(dir: &Path) -> Vec<(Vec<u8>, cerro_core::source::Compression)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("layer-"))
        .collect();
    names.sort_by_key(|n| {
        n["layer-".len()..]
            .split('.')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    });
    names
        .iter()
        .map(|n| (std::fs::read(dir.join(n)).unwrap(), compression_of(n)))
        .collect()
}

fn case_dirs(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(vectors().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn valid_layer_stacks_give_their_expected_rootfs() {
    let cases = case_dirs("valid");
    assert!(cases.len() >= 3);
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let r =
            apply(&layers_of(&dir), Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        assert_eq!(
            listing(&r),
            expected,
            "{name}: the rootfs changed — a format change"
        );
        let want = RootfsDigest::parse(
            expected
                .lines()
                .next()
                .unwrap()
                .strip_prefix("rootfs ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.digest, want, "{name}");
        // Every node the rootfs holds decodes and re-encodes byte for byte.
        for (d, bytes) in &r.dirs {
            let n = DirNode::decode(bytes).unwrap();
            assert_eq!(&n.encode(), bytes);
            assert_eq!(n.digest(), *d);
        }
    }
}

#[test]
fn hostile_layer_stacks_are_refused_with_their_class() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors().join("hostile/expected.json")).unwrap())
            .unwrap();
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 20);
    assert_eq!(cases.len(), case_dirs("hostile").len());
    for (name, want) in cases {
        let mut limits = Limits::default();
        if let Some(l) = want.get("limits") {
            limits.max_layer_bytes = l["max_layer_bytes"].as_u64().unwrap();
            limits.max_layer_entries = l["max_layer_entries"].as_u64().unwrap();
            limits.max_inodes = l["max_inodes"].as_u64().unwrap();
        }
        let err = apply(&layers_of(&vectors().join("hostile").join(name)), limits).expect_err(name);
        let class = err.refusal().map(|r| r.class());
        assert_eq!(
            class,
            want["class"].as_str(),
            "{name}: refused for another reason: {err}"
        );
        // Messages name the entry, or the header offset when there is no entry yet.
        let msg = err.to_string();
        assert!(msg.starts_with("layer "), "{msg}");
        assert!(
            msg.contains("entry ") || msg.contains("header at byte"),
            "{msg}"
        );
    }
}

#[test]
fn node_encodings_decode_and_hash_to_their_digests() {
    let dir = vectors().join("nodes");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 3);
    for (name, digest) in cases {
        let text = std::fs::read_to_string(dir.join(format!("{name}.hex"))).unwrap();
        let bytes = hex::decode(text.trim()).unwrap();
        let digest = digest.as_str().unwrap();
        if digest.starts_with(DirDigest::PREFIX) {
            let n = DirNode::decode(&bytes).unwrap();
            assert_eq!(n.encode(), bytes, "{name}");
            assert_eq!(n.digest().to_string(), digest, "{name}");
        } else {
            let r = RootRecord::decode(&bytes).unwrap();
            assert_eq!(r.encode(), bytes, "{name}");
            assert_eq!(r.digest().to_string(), digest, "{name}");
        }
    }
}

#[test]
fn outboard_vectors_are_reproduced_and_verify_block_by_block() {
    // spec/rootfs.md §4.2: the outboard bytes, and verification of every block against them.
    use cerro_core::rootfs::{block_count, verify_block, BlockIndex, OutboardBuilder};
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors().join("outboard/expected.json")).unwrap())
            .unwrap();
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let size = c["size"].as_u64().unwrap();
        let seed = c["seed"].as_u64().unwrap() as u8;
        let data: Vec<u8> = (0..size as usize)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect();
        let mut b = OutboardBuilder::new();
        b.update(&data);
        let (root, ob, _) = b.finalize();
        assert_eq!(
            root.to_string(),
            c["content_root"].as_str().unwrap(),
            "{size}"
        );
        assert_eq!(
            root.to_string(),
            format!("blake3:{}", blake3::hash(&data).to_hex())
        );
        let want = hex::decode(c["outboard_hex"].as_str().unwrap()).unwrap();
        assert_eq!(ob.as_bytes(), &want[..], "{size}: outboard bytes changed");
        let bs = 65536usize;
        for i in 0..block_count(size) {
            let lo = i as usize * bs;
            let block = &data[lo..(lo + bs).min(data.len())];
            verify_block(&root, size, &want, BlockIndex(i), block).unwrap();
            if !want.is_empty() {
                // Record 0 covers every block: damaging it fails each one.
                let mut bad = want.clone();
                bad[0] ^= 1;
                assert!(verify_block(&root, size, &bad, BlockIndex(i), block).is_err());
            }
        }
    }
}
