//! The crate's own reader and writer against each other and against `ostree`: round trips in
//! both modes, commits written by `ostree` itself, determinism and deduplication, tampered and
//! hostile objects (typed errors, never a panic), links planted in the repository, builder
//! misuse, and Ed25519 signatures that OpenSSL verifies.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use cerro_ostree_export::{
    Attrs, Checksum, CommitInfo, Error, MetaValue, Mode, ObjectType, Repo, WriteStats,
};
use common::*;
use sha2::{Digest, Sha256};

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn root_file(repo: &Repo, commit: &Checksum, name: &str) -> Checksum {
    let c = repo.read_commit(commit).unwrap();
    let t = repo.read_dirtree(&c.root_tree).unwrap();
    t.files.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn round_trip_through_the_reader_in_both_modes() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    let want = snapshot(&input);
    for mode in [Mode::Archive, Mode::BareUser] {
        let path = td.path().join(format!("{mode:?}"));
        let repo = Repo::create_or_open(&path, mode).unwrap();
        let first = commit_dir(&repo, &input, info("first"));
        assert_eq!(read_back(&repo, &first.commit), want, "{mode:?}");

        let mut next = info("second");
        next.parent = Some(first.commit);
        next.timestamp += 60;
        let second = commit_dir(&repo, &input, next);
        repo.set_ref("main", &second.commit).unwrap();
        let reopened = Repo::open(&path).unwrap();
        assert_eq!(reopened.mode(), mode);
        let head = reopened.resolve_ref("main").unwrap();
        assert_eq!(head, second.commit);
        let c = reopened.read_commit(&head).unwrap();
        assert_eq!(c.parent, Some(first.commit));
        assert_eq!(c.subject, "second");
        assert_eq!(c.timestamp, 1_700_000_060);
        assert_eq!(c.root_tree, first.root_tree);
        assert_eq!(c.meta_str("ct.source"), Some("test-bundle"));
        assert_eq!(c.meta_u64("ct.size"), Some(123_456));
        assert_eq!(c.meta_bytes("ct.digest"), Some(&[0xab; 32][..]));
        assert_eq!(
            c.meta_str_list("ct.dropped"),
            Some(&["dev/null (char device)".to_string()][..])
        );
        // Keys are stored sorted.
        let keys: Vec<&str> = c.metadata.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["ct.digest", "ct.dropped", "ct.size", "ct.source"]);
    }
}

#[test]
fn commits_written_by_ostree_read_back_equal() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    // `ostree commit` drops empty-valued xattrs.
    let mut want = snapshot(&input);
    want.get_mut("xattrs")
        .unwrap()
        .xattrs
        .remove(&b"user.empty"[..]);
    for (mode, name) in [(Mode::Archive, "archive"), (Mode::BareUser, "bare-user")] {
        let path = td.path().join(name);
        ostree_ok(&["init", &repo_arg(&path), &format!("--mode={name}")]);
        ostree_ok(&[
            "commit",
            &repo_arg(&path),
            "-b",
            "theirs",
            "--add-metadata-string=k=v",
            &format!("--tree=dir={}", input.display()),
        ]);
        let repo = Repo::open(&path).unwrap();
        assert_eq!(repo.mode(), mode);
        assert!(matches!(
            Repo::create_or_open(
                &path,
                if mode == Mode::Archive {
                    Mode::BareUser
                } else {
                    Mode::Archive
                }
            ),
            Err(Error::ModeMismatch { .. })
        ));
        let head = repo.resolve_ref("theirs").unwrap();
        assert_eq!(repo.read_commit(&head).unwrap().meta_str("k"), Some("v"));
        assert_eq!(read_back(&repo, &head), want, "{name}");
    }
    let bare = td.path().join("bare");
    ostree_ok(&["init", &repo_arg(&bare), "--mode=bare"]);
    assert!(matches!(
        Repo::open(&bare),
        Err(Error::UnsupportedMode { found, .. }) if found == "bare"
    ));
}

#[test]
fn writing_is_deterministic_and_deduplicated() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    let a = td.path().join("a");
    let b = td.path().join("b");
    let repo_a = Repo::create_or_open(&a, Mode::Archive).unwrap();
    let first = commit_dir(&repo_a, &input, info("x"));
    // 12 distinct regular files, 3 symlinks, 5 dirtrees, 4 dirmetas and the commit; dup2 is
    // dup1's object and sub/deeper has the root's dirmeta, both found present.
    assert_eq!(
        first.stats,
        WriteStats {
            written: 25,
            already_present: 2
        }
    );
    let again = commit_dir(&repo_a, &input, info("x"));
    assert_eq!(again.commit, first.commit);
    assert_eq!(again.stats.written, 0);
    assert_eq!(again.stats.already_present, 27);

    // Another repository gets byte-identical objects.
    let repo_b = Repo::create_or_open(&b, Mode::Archive).unwrap();
    assert_eq!(commit_dir(&repo_b, &input, info("x")).commit, first.commit);
    assert_eq!(
        files_under(&a.join("objects")),
        files_under(&b.join("objects"))
    );

    // One changed file: its object, the three dirtrees above it, the commit.
    fs::write(input.join("sub/deeper/x"), b"x2\n").unwrap();
    let changed = commit_dir(&repo_a, &input, info("x"));
    assert_eq!(changed.stats.written, 5);
    assert_ne!(changed.commit, first.commit);
    ostree_ok(&["fsck", &repo_arg(&a)]);
}

/// Flips one byte of a file (objects are read-only for their owner's group and others only).
fn flip(path: &Path, at: impl Fn(usize) -> usize) {
    let mut bytes = fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[test]
fn tampered_objects_are_detected_by_the_reader_and_by_ostree_fsck() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    for (mode, ext) in [(Mode::Archive, "filez"), (Mode::BareUser, "file")] {
        // Content: a byte in the middle of the stored data.
        let path = td.path().join(format!("content-{mode:?}"));
        let repo = Repo::create_or_open(&path, mode).unwrap();
        let done = commit_dir(&repo, &input, info("t"));
        let big = root_file(&repo, &done.commit, "big");
        flip(&object_path(&path, &big, ext), |len| len / 2);
        let err = match repo.open_file(&big) {
            Ok(mut f) => f.content.verify_to_end().unwrap_err(),
            Err(e) => e,
        };
        assert!(
            matches!(
                err,
                Error::ChecksumMismatch { expected, .. } if expected == big
            ) || matches!(err, Error::Malformed { checksum, .. } if checksum == big),
            "{mode:?}: {err}"
        );
        // The same through `Read`: the error is typed inside the io::Error.
        if let Ok(mut f) = repo.open_file(&big) {
            let e = f.content.read_to_end(&mut Vec::new()).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
            assert!(matches!(
                cerro_ostree_export::into_error(e, big),
                Error::ChecksumMismatch { .. } | Error::Malformed { .. }
            ));
        }
        assert!(!ostree(&["fsck", &repo_arg(&path)]).status.success());

        // A dirtree.
        let path = td.path().join(format!("tree-{mode:?}"));
        let repo = Repo::create_or_open(&path, mode).unwrap();
        let done = commit_dir(&repo, &input, info("t"));
        flip(&object_path(&path, &done.root_tree, "dirtree"), |len| {
            len - 1
        });
        assert!(matches!(
            repo.read_dirtree(&done.root_tree),
            Err(Error::ChecksumMismatch {
                kind: ObjectType::DirTree,
                ..
            })
        ));
        assert!(!ostree(&["fsck", &repo_arg(&path)]).status.success());

        // A commit.
        flip(&object_path(&path, &done.commit, "commit"), |_| 0);
        assert!(matches!(
            repo.read_commit(&done.commit),
            Err(Error::ChecksumMismatch {
                kind: ObjectType::Commit,
                ..
            })
        ));
    }

    // bare-user: the metadata xattr is covered by the checksum too.
    let path = td.path().join("xattr");
    let repo = Repo::create_or_open(&path, Mode::BareUser).unwrap();
    let done = commit_dir(&repo, &input, info("t"));
    let owned = root_file(&repo, &done.commit, "owned");
    let obj = object_path(&path, &owned, "file");
    let mut meta = vec![0u8; 4096];
    let n = rustix::fs::getxattr(&obj, "user.ostreemeta", &mut meta[..]).unwrap();
    meta[3] ^= 0x01; // uid 1000 → 1001
    rustix::fs::setxattr(
        &obj,
        "user.ostreemeta",
        &meta[..n],
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let mut f = repo.open_file(&owned).unwrap();
    assert_eq!(f.meta.uid, 1001);
    assert!(matches!(
        f.content.verify_to_end(),
        Err(Error::ChecksumMismatch { .. })
    ));
}

/// Deterministic pseudo-random numbers for the mutation loop.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match rng.below(5) {
        0 => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            // Framing offsets live at the end: make one huge.
            let i = b.len() - 1 - rng.below(b.len().min(8));
            b[i] = 0xff;
        }
        3 => {
            let i = rng.below(b.len());
            b.insert(i, rng.next() as u8);
        }
        _ => {
            for _ in 0..4 {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
    }
    b
}

fn plant(repo: &Path, bytes: &[u8], ext: &str) -> Checksum {
    let c = Checksum(Sha256::digest(bytes).into());
    let p = object_path(repo, &c, ext);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
    c
}

#[test]
fn hostile_objects_give_typed_errors_never_panics() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    let path = td.path().join("r");
    let repo = Repo::create_or_open(&path, Mode::Archive).unwrap();
    let done = commit_dir(&repo, &input, info("h"));
    let sub = repo
        .read_dirtree(&done.root_tree)
        .unwrap()
        .dirs
        .into_iter()
        .find(|d| d.name == "a-dir")
        .unwrap();
    let commit = fs::read(object_path(&path, &done.commit, "commit")).unwrap();
    let tree = fs::read(object_path(&path, &done.root_tree, "dirtree")).unwrap();
    let meta = fs::read(object_path(&path, &sub.meta, "dirmeta")).unwrap();
    let file_obj = root_file(&repo, &done.commit, "xattrs");
    let filez = fs::read(object_path(&path, &file_obj, "filez")).unwrap();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut refused = 0;
    let mut same_content = 0;
    for round in 0..3000 {
        let ok_or_malformed = |r: Result<(), Error>, what: &str| match r {
            Ok(()) => false,
            Err(Error::Malformed { .. }) => true,
            Err(e) => panic!("round {round}, {what}: unexpected error {e}"),
        };
        let m = mutate(&mut rng, &commit);
        let c = plant(&path, &m, "commit");
        refused += ok_or_malformed(repo.read_commit(&c).map(|_| ()), "commit") as u32;
        let m = mutate(&mut rng, &tree);
        let c = plant(&path, &m, "dirtree");
        refused += ok_or_malformed(repo.read_dirtree(&c).map(|_| ()), "dirtree") as u32;
        let m = mutate(&mut rng, &meta);
        let c = plant(&path, &m, "dirmeta");
        refused += ok_or_malformed(repo.read_dirmeta(&c).map(|_| ()), "dirmeta") as u32;

        // A content object under its old name: refused, by its header or its checksum.
        let m = mutate(&mut rng, &filez);
        fs::write(object_path(&path, &file_obj, "filez"), &m).unwrap();
        let r = repo
            .open_file(&file_obj)
            .and_then(|mut f| f.content.verify_to_end());
        match r {
            Err(Error::Malformed { .. }) | Err(Error::ChecksumMismatch { .. }) => {}
            // Verified means the checksum matched: the same content and metadata (a change in
            // the unused padding bits of deflate's last byte, say).
            Ok(()) => same_content += 1,
            Err(e) => panic!("round {round}: unexpected error {e}"),
        }
    }
    // The rest are valid objects (a changed byte inside a checksum or a name, say).
    assert!(refused > 4500, "only {refused} of 9000 mutations refused");
    assert!(
        same_content < 100,
        "{same_content} of 3000 changed objects verified"
    );

    // Framing that claims more than there is.
    let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    huge.extend_from_slice(b"short");
    fs::write(object_path(&path, &file_obj, "filez"), &huge).unwrap();
    assert!(matches!(
        repo.open_file(&file_obj),
        Err(Error::Malformed { .. })
    ));

    // Too large to read: refused from its size alone (a sparse file).
    let big = Checksum([0x42; 32]);
    let p = object_path(&path, &big, "dirtree");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::File::create(&p)
        .unwrap()
        .set_len(cerro_ostree_export::MAX_METADATA_BYTES + 1)
        .unwrap();
    assert!(matches!(
        repo.read_dirtree(&big),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        repo.read_dirtree(&Checksum([0x43; 32])),
        Err(Error::MissingObject { .. })
    ));
    // A link where an object should be is not followed.
    let linked = Checksum([0x44; 32]);
    symlink(&p, object_path(&path, &linked, "dirtree")).unwrap();
    assert!(matches!(repo.read_dirtree(&linked), Err(Error::Io { .. })));

    // Bad refs.
    fs::write(path.join("refs/heads/bad"), b"not a checksum\n").unwrap();
    assert!(matches!(repo.resolve_ref("bad"), Err(Error::BadRef { .. })));
    assert!(matches!(
        repo.resolve_ref("../x"),
        Err(Error::InvalidRef(_))
    ));
}

#[test]
fn links_planted_in_the_repository_are_not_followed() {
    let td = tempfile::tempdir().unwrap();
    let outside = td.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let root = Attrs {
        mode: 0o755,
        ..Attrs::default()
    };
    let write_one = |repo: &Repo| -> Result<(), Error> {
        let mut b = repo.begin_commit(&root)?;
        b.file(
            b"f",
            &Attrs {
                mode: 0o644,
                ..Attrs::default()
            },
            2,
            &mut &b"hi"[..],
        )?;
        b.finish(CommitInfo::default()).map(|_| ())
    };

    // tmp/ → outside
    let p = td.path().join("tmp-link");
    let repo = Repo::create_or_open(&p, Mode::Archive).unwrap();
    fs::remove_dir(p.join("tmp")).unwrap();
    symlink(&outside, p.join("tmp")).unwrap();
    assert!(matches!(write_one(&repo), Err(Error::Io { .. })));

    // Every objects/XX → outside
    let p = td.path().join("objects-link");
    let repo = Repo::create_or_open(&p, Mode::BareUser).unwrap();
    for i in 0..=255u8 {
        symlink(&outside, p.join("objects").join(format!("{i:02x}"))).unwrap();
    }
    assert!(matches!(write_one(&repo), Err(Error::Io { .. })));
    assert_eq!(
        fs::read_dir(p.join("tmp")).unwrap().count(),
        0,
        "tmp/ left dirty"
    );

    // refs/heads → outside
    let p = td.path().join("refs-link");
    let repo = Repo::create_or_open(&p, Mode::Archive).unwrap();
    fs::remove_dir(p.join("refs/heads")).unwrap();
    symlink(&outside, p.join("refs/heads")).unwrap();
    assert!(matches!(
        repo.set_ref("main", &Checksum([1; 32])),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        repo.set_ref("a/b", &Checksum([1; 32])),
        Err(Error::Io { .. })
    ));

    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "something was written outside"
    );
}

#[test]
fn builder_misuse_is_refused() {
    let td = tempfile::tempdir().unwrap();
    let p = td.path().join("r");
    let repo = Repo::create_or_open(&p, Mode::Archive).unwrap();
    let dir = Attrs {
        mode: 0o755,
        ..Attrs::default()
    };
    let file = Attrs {
        mode: 0o644,
        ..Attrs::default()
    };

    let mut b = repo.begin_commit(&dir).unwrap();
    b.file(b"b", &file, 0, &mut &b""[..]).unwrap();
    assert!(matches!(
        b.file(b"a", &file, 0, &mut &b""[..]),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        b.file(b"b", &file, 0, &mut &b""[..]),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(b.dir_end(), Err(Error::Protocol(_))));
    for bad in [&b"\xff"[..], b"", b".", b"..", b"x/y"] {
        assert!(matches!(
            b.file(bad, &file, 0, &mut &b""[..]),
            Err(Error::NotRepresentable(_))
        ));
    }
    assert!(matches!(
        b.symlink(b"c", &file, b"\xfe"),
        Err(Error::NotRepresentable(_))
    ));
    assert!(matches!(
        b.file(b"d", &file, 3, &mut &b"four"[..]),
        Err(Error::SizeMismatch { more: true, .. })
    ));
    assert!(matches!(
        b.file(b"e", &file, 5, &mut &b"four"[..]),
        Err(Error::SizeMismatch { more: false, .. })
    ));
    assert!(matches!(
        b.file(
            b"f",
            &Attrs {
                mode: 0o100644,
                ..file.clone()
            },
            0,
            &mut &b""[..]
        ),
        Err(Error::NotRepresentable(_))
    ));
    b.dir_start(b"g", &dir).unwrap();
    let mut open = b;
    assert!(matches!(
        open.file(b"a", &file, 0, &mut &b""[..]).map(|_| ()),
        Ok(())
    ));
    assert!(matches!(
        open.finish(CommitInfo::default()),
        Err(Error::Protocol(_))
    ));

    let b = repo.begin_commit(&dir).unwrap();
    let dup = CommitInfo {
        metadata: vec![
            ("k".into(), MetaValue::U32(1)),
            ("k".into(), MetaValue::U32(2)),
        ],
        ..CommitInfo::default()
    };
    assert!(matches!(b.finish(dup), Err(Error::Protocol(_))));
    assert_eq!(
        fs::read_dir(p.join("tmp")).unwrap().count(),
        0,
        "tmp/ left dirty"
    );
}

#[test]
fn ed25519_signatures_verify_with_openssl() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    let path = td.path().join("r");
    let repo = Repo::create_or_open(&path, Mode::Archive).unwrap();
    let done = commit_dir(&repo, &input, info("signed"));
    let commit = done.commit;
    repo.set_ref("signed", &commit).unwrap();

    // Detached metadata already holding another key, as `a{sv}` {"other": <"kept">}.
    let existing = [
        b'o', b't', b'h', b'e', b'r', 0, 0, 0, b'k', b'e', b'p', b't', 0, 0, b's', 6, 16,
    ];
    let meta_path = object_path(&path, &commit, "commitmeta");
    fs::write(&meta_path, existing).unwrap();
    assert_eq!(
        ostree_ok(&[
            "show",
            &repo_arg(&path),
            "--print-detached-metadata-key=other",
            "signed"
        ])
        .trim(),
        "'kept'"
    );

    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let sig = repo.sign_commit_ed25519(&commit, &key).unwrap();
    // Signing again adds nothing.
    repo.sign_commit_ed25519(&commit, &key).unwrap();
    assert_eq!(repo.ed25519_signatures(&commit).unwrap(), vec![sig]);
    assert!(repo
        .verify_commit_ed25519(&commit, &key.verifying_key())
        .unwrap());
    let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
    assert!(!repo
        .verify_commit_ed25519(&commit, &other.verifying_key())
        .unwrap());
    let detached = repo.read_detached_metadata(&commit).unwrap().unwrap();
    assert_eq!(detached[0], ("other".into(), MetaValue::Str("kept".into())));

    // The signature as `ostree show` prints it, checked by OpenSSL over the commit object.
    let r = repo_arg(&path);
    let printed = ostree_ok(&[
        "show",
        &r,
        "--print-detached-metadata-key=ostree.sign.ed25519",
        &commit.to_string(),
    ]);
    let sig_bytes: Vec<u8> = printed
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|t| t.strip_prefix("0x"))
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(sig_bytes, sig.to_bytes(), "ostree show printed {printed}");
    assert_eq!(
        ostree_ok(&["show", &r, "--print-detached-metadata-key=other", "signed"]).trim(),
        "'kept'"
    );

    let sig_file = td.path().join("sig");
    fs::write(&sig_file, &sig_bytes).unwrap();
    // SubjectPublicKeyInfo for Ed25519 (RFC 8410): fixed prefix, then the 32-byte key.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(key.verifying_key().as_bytes());
    let der = td.path().join("pub.der");
    fs::write(&der, &spki).unwrap();
    let openssl_verify = |data: &Path| {
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey"])
            .arg(&der)
            .arg("-rawin")
            .arg("-in")
            .arg(data)
            .arg("-sigfile")
            .arg(&sig_file)
            .output()
            .expect("openssl is installed (tools/setup)")
    };
    let commit_file = object_path(&path, &commit, "commit");
    let ok = openssl_verify(&commit_file);
    assert!(
        ok.status.success(),
        "openssl refused: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let tampered = td.path().join("tampered");
    let mut bytes = fs::read(&commit_file).unwrap();
    bytes[0] ^= 1;
    fs::write(&tampered, bytes).unwrap();
    assert!(!openssl_verify(&tampered).status.success());

    // fsck is content with the detached metadata.
    ostree_ok(&["fsck", &r]);
}

#[test]
fn a_link_at_the_repository_path_is_not_followed() {
    let td = tempfile::tempdir().unwrap();
    let elsewhere = td.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = td.path().join("repo");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let err = Repo::create_or_open(&link, Mode::Archive)
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbolic link there is not followed"), "{err}");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written through it"
    );
    // The directory itself is fine.
    Repo::create_or_open(&elsewhere, Mode::Archive).unwrap();
}
