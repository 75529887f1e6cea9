//! Shared by the integration tests: an input tree with every case OSTree can hold, a small
//! walker that commits a directory through `CommitBuilder`, snapshots of a directory on disk
//! and of a commit read back through the crate's reader, and the real `ostree` CLI (whose
//! absence fails the tests: they never skip).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cerro_ostree_export::{Attrs, Checksum, CommitInfo, Committed, FileKind, MetaValue, Repo};

pub const OSTREE: &str = "/usr/bin/ostree";

/// One node of a tree: what it is, its mode (permission bits), owner and xattrs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
}

pub type Snapshot = BTreeMap<String, Node>;

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setting {name} on {}: {e}", path.display()));
}

fn file(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn dir(path: &Path, mode: u32) {
    fs::create_dir(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Deterministic bytes that deflate cannot shrink much.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Builds the input tree at `root` (which must not exist). Needs root (owners) and user
/// xattrs on the file system.
pub fn make_input(root: &Path) {
    dir(root, 0o755);
    assert_eq!(
        fs::metadata(root).unwrap().uid(),
        0,
        "these tests run as root (they set owners and check them after checkout)"
    );
    file(&root.join("a"), b"A", 0o644);
    dir(&root.join("a-dir"), 0o750);
    set_xattr(&root.join("a-dir"), "user.dir", b"d");
    file(&root.join("a-dir/inner"), b"inner\n", 0o640);
    file(&root.join("a.txt"), b"hello\n", 0o644);
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    symlink("a.txt", root.join("b-link")).unwrap();
    let mut big = noise(200_000, 7);
    big.extend(std::iter::repeat_n(b'z', 100_000));
    file(&root.join("big"), &big, 0o644);
    symlink("no/such/target", root.join("dangling")).unwrap();
    file(&root.join("dup1"), b"same\n", 0o644);
    file(&root.join("dup2"), b"same\n", 0o644);
    file(&root.join("empty"), b"", 0o600);
    file(&root.join("exec"), b"#!/bin/sh\n", 0o751);
    file(&root.join("owned"), b"owned\n", 0o644);
    std::os::unix::fs::lchown(root.join("owned"), Some(1000), Some(1001)).unwrap();
    file(&root.join("setuid"), b"su\n", 0o4755);
    dir(&root.join("sticky"), 0o1777);
    dir(&root.join("sub"), 0o700);
    dir(&root.join("sub/deeper"), 0o755);
    file(&root.join("sub/deeper/x"), b"x1\n", 0o644);
    file(&root.join("xattrs"), b"xa\n", 0o644);
    set_xattr(&root.join("xattrs"), "user.one", b"1");
    set_xattr(&root.join("xattrs"), "user.bin", &[0, 255, 1]);
    set_xattr(&root.join("xattrs"), "user.empty", b"");
    file(&root.join("ünï-名"), b"unicode\n", 0o644);
}

fn xattrs_of(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut names = vec![0u8; 64 << 10];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap();
    let mut out = BTreeMap::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 64 << 10];
        let name_str = std::str::from_utf8(name).unwrap();
        let len = rustix::fs::lgetxattr(path, name_str, &mut value[..]).unwrap();
        out.insert(name.to_vec(), value[..len].to_vec());
    }
    out
}

fn node_of(path: &Path) -> Node {
    let md = fs::symlink_metadata(path).unwrap();
    let kind = if md.is_dir() {
        Kind::Dir
    } else if md.file_type().is_symlink() {
        Kind::Symlink(
            fs::read_link(path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else {
        Kind::File(fs::read(path).unwrap())
    };
    Node {
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        xattrs: xattrs_of(path),
    }
}

/// Every path under `root` ("" for the root itself).
pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, rel: &str, out: &mut Snapshot) {
        let path = if rel.is_empty() {
            base.to_owned()
        } else {
            base.join(rel)
        };
        let node = node_of(&path);
        let is_dir = node.kind == Kind::Dir;
        out.insert(rel.to_owned(), node);
        if is_dir {
            for e in fs::read_dir(&path).unwrap() {
                let name = e.unwrap().file_name().into_string().unwrap();
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                walk(base, &child, out);
            }
        }
    }
    walk(root, "", &mut out);
    out
}

fn attrs(node: &Node) -> Attrs {
    Attrs {
        uid: node.uid,
        gid: node.gid,
        mode: node.mode,
        xattrs: node.xattrs.clone(),
    }
}

/// Commits the directory at `root` with a pre-order walk, entries in name-byte order.
pub fn commit_dir(repo: &Repo, root: &Path, info: CommitInfo) -> Committed {
    let root_node = node_of(root);
    let mut b = repo.begin_commit(&attrs(&root_node)).unwrap();
    fn walk(b: &mut cerro_ostree_export::CommitBuilder<'_>, dir: &Path) {
        let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_encoded_bytes())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(std::str::from_utf8(&name).unwrap());
            let node = node_of(&path);
            match &node.kind {
                Kind::Dir => {
                    b.dir_start(&name, &attrs(&node)).unwrap();
                    walk(b, &path);
                    b.dir_end().unwrap();
                }
                Kind::File(content) => {
                    b.file(
                        &name,
                        &attrs(&node),
                        content.len() as u64,
                        &mut &content[..],
                    )
                    .unwrap();
                }
                Kind::Symlink(target) => {
                    b.symlink(&name, &attrs(&node), target).unwrap();
                }
            }
        }
    }
    walk(&mut b, root);
    b.finish(info).unwrap()
}

/// The tree of `commit`, read back through the crate's verifying reader.
pub fn read_back(repo: &Repo, commit: &Checksum) -> Snapshot {
    let c = repo.read_commit(commit).unwrap();
    let mut out = BTreeMap::new();
    fn walk(repo: &Repo, rel: &str, tree: &Checksum, meta: &Checksum, out: &mut Snapshot) {
        let m = repo.read_dirmeta(meta).unwrap();
        out.insert(
            rel.to_owned(),
            Node {
                kind: Kind::Dir,
                mode: m.mode,
                uid: m.uid,
                gid: m.gid,
                xattrs: m.xattrs,
            },
        );
        let t = repo.read_dirtree(tree).unwrap();
        let join = |n: &str| {
            if rel.is_empty() {
                n.to_owned()
            } else {
                format!("{rel}/{n}")
            }
        };
        for (name, c) in &t.files {
            let mut f = repo.open_file(c).unwrap();
            let kind = match &f.kind {
                FileKind::Regular { .. } => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut f.content, &mut buf).unwrap();
                    assert!(f.content.is_verified());
                    Kind::File(buf)
                }
                FileKind::Symlink { target } => Kind::Symlink(target.clone().into_bytes()),
            };
            out.insert(
                join(name),
                Node {
                    kind,
                    mode: f.meta.mode,
                    uid: f.meta.uid,
                    gid: f.meta.gid,
                    xattrs: f.meta.xattrs,
                },
            );
        }
        for d in &t.dirs {
            walk(repo, &join(&d.name), &d.tree, &d.meta, out);
        }
    }
    walk(repo, "", &c.root_tree, &c.root_meta, &mut out);
    out
}

/// A fixed commit description with one metadata key of each common type.
pub fn info(subject: &str) -> CommitInfo {
    CommitInfo {
        subject: subject.to_owned(),
        body: "exported by the ostree-export tests".to_owned(),
        timestamp: 1_700_000_000,
        parent: None,
        metadata: vec![
            ("ct.source".into(), MetaValue::Str("test-bundle".into())),
            ("ct.digest".into(), MetaValue::Bytes(vec![0xab; 32])),
            ("ct.size".into(), MetaValue::U64(123_456)),
            (
                "ct.dropped".into(),
                MetaValue::StrList(vec!["dev/null (char device)".into()]),
            ),
        ],
    }
}

/// Runs the real `ostree`; its absence is a failure, never a skip.
pub fn ostree(args: &[&str]) -> Output {
    assert!(
        Path::new(OSTREE).exists(),
        "{OSTREE} is missing: install Debian's ostree package (tools/setup does)"
    );
    Command::new(OSTREE).args(args).output().unwrap()
}

/// Runs `ostree` and returns its stdout, failing with its stderr when it fails.
pub fn ostree_ok(args: &[&str]) -> String {
    let out = ostree(args);
    assert!(
        out.status.success(),
        "ostree {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn repo_arg(repo: &Path) -> String {
    format!("--repo={}", repo.display())
}

/// The path of a loose object file.
pub fn object_path(repo: &Path, c: &Checksum, ext: &str) -> PathBuf {
    let hex = c.to_string();
    repo.join("objects")
        .join(&hex[..2])
        .join(format!("{}.{ext}", &hex[2..]))
}
