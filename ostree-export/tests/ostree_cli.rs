//! The real `ostree` (Debian's) accepts what this crate writes, in both modes: `fsck`, `ls`,
//! `show` with the metadata, `cat`, and checkouts equal to the input tree; and `ostree commit`
//! of the same tree gives the same checksums.

mod common;

use std::path::Path;

use cerro_ostree_export::{CommitInfo, Mode, Repo};
use common::*;

const REF: &str = "ct/test/x86_64";

fn write_repo(mode: Mode, input: &Path, repo_path: &Path) -> cerro_ostree_export::Committed {
    let repo = Repo::create_or_open(repo_path, mode).unwrap();
    let done = commit_dir(&repo, input, info("exported tree"));
    repo.set_ref(REF, &done.commit).unwrap();
    done
}

/// What the CLI checks for any mode: fsck, ls, show with metadata, cat.
fn cli_accepts(repo: &Path, commit: &str) {
    let r = repo_arg(repo);
    ostree_ok(&["fsck", &r]);
    assert_eq!(ostree_ok(&["rev-parse", &r, REF]).trim(), commit);

    let ls = ostree_ok(&["ls", &r, "-R", REF]);
    for path in [
        "/a-dir/inner",
        "/abs-link -> /etc/passwd",
        "/b-link -> a.txt",
        "/sub/deeper/x",
        "/ünï-名",
        "/sticky",
    ] {
        assert!(ls.contains(path), "ls -R lacks {path}:\n{ls}");
    }
    let ls_x = ostree_ok(&["ls", &r, "-X", REF, "/xattrs"]);
    assert!(ls_x.contains("user.one"), "ls -X lacks the xattrs:\n{ls_x}");

    let show = ostree_ok(&["show", &r, REF]);
    assert!(show.contains("exported tree"), "{show}");
    let show = ostree_ok(&["show", &r, "--raw", REF]);
    for key in ["ct.source", "ct.digest", "ct.size", "ct.dropped"] {
        assert!(show.contains(key), "show lacks {key}:\n{show}");
    }
    let source = ostree_ok(&["show", &r, "--print-metadata-key=ct.source", REF]);
    assert_eq!(source.trim(), "'test-bundle'");
    let size = ostree_ok(&["show", &r, "--print-metadata-key=ct.size", REF]);
    assert_eq!(size.trim(), "uint64 123456");

    assert_eq!(ostree_ok(&["cat", &r, REF, "/a.txt"]), "hello\n");
    assert_eq!(ostree_ok(&["cat", &r, REF, "/sub/deeper/x"]), "x1\n");
}

/// What a user-mode checkout (`-U`) keeps of the input: no owners, no xattrs, no set-id bits;
/// from bare-user (hardlinked objects) files also lose world write and gain owner read.
fn user_mode_view(s: &Snapshot, bare_user: bool) -> Snapshot {
    s.iter()
        .map(|(p, n)| {
            let mut n = n.clone();
            n.uid = 0;
            n.gid = 0;
            n.xattrs.clear();
            match n.kind {
                Kind::File(_) => {
                    n.mode &= !0o6000;
                    if bare_user {
                        n.mode = (n.mode & 0o775) | 0o400;
                    }
                }
                Kind::Symlink(_) => n.mode = 0o777,
                Kind::Dir => {}
            }
            (p.clone(), n)
        })
        .collect()
}

fn assert_same(got: &Snapshot, want: &Snapshot, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: paths differ"
    );
    for (p, w) in want {
        assert_eq!(&got[p], w, "{what}: {p:?} differs");
    }
}

#[test]
fn archive_repo_is_accepted_and_checks_out_identically() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    let want = snapshot(&input);
    let repo = td.path().join("repo");
    let done = write_repo(Mode::Archive, &input, &repo);
    cli_accepts(&repo, &done.commit.to_string());
    let r = repo_arg(&repo);

    // As root, a checkout from an archive restores owners, full modes and xattrs.
    let full = td.path().join("full");
    ostree_ok(&["checkout", &r, REF, full.to_str().unwrap()]);
    assert_same(&snapshot(&full), &want, "archive checkout");

    let user = td.path().join("user");
    ostree_ok(&["checkout", &r, "-U", REF, user.to_str().unwrap()]);
    assert_same(
        &snapshot(&user),
        &user_mode_view(&want, false),
        "archive checkout -U",
    );
}

#[test]
fn bare_user_repo_is_accepted_and_checks_out_identically() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    let want = snapshot(&input);
    let repo = td.path().join("repo");
    let done = write_repo(Mode::BareUser, &input, &repo);
    cli_accepts(&repo, &done.commit.to_string());
    let r = repo_arg(&repo);

    let user = td.path().join("user");
    ostree_ok(&["checkout", &r, "-U", REF, user.to_str().unwrap()]);
    // Files are hardlinks of the objects, so they carry the objects' user.ostreemeta (ostree
    // creates empty files afresh).
    let mut got = snapshot(&user);
    for (path, node) in got.iter_mut() {
        if let Kind::File(content) = &node.kind {
            let linked = node.xattrs.remove(&b"user.ostreemeta"[..]).is_some();
            assert!(
                linked || content.is_empty(),
                "{path:?} is not a hardlink of its object"
            );
        }
    }
    assert_same(&got, &user_mode_view(&want, true), "bare-user checkout -U");

    // Owners and xattrs are in user.ostreemeta: `ostree ls` shows them.
    let ls = ostree_ok(&["ls", &r, "-X", REF, "/owned", "/xattrs", "/setuid"]);
    assert!(ls.contains("-00644 1000 1001"), "{ls}");
    assert!(ls.contains("user.bin"), "{ls}");
    assert!(ls.contains("-04755 0 0"), "{ls}");
}

#[test]
fn ostree_commit_of_the_same_tree_gives_the_same_checksums() {
    let td = tempfile::tempdir().unwrap();
    let input = td.path().join("in");
    make_input(&input);
    // `ostree commit` leaves out xattrs whose value is empty; this crate keeps what it is given.
    rustix::fs::lremovexattr(input.join("xattrs"), "user.empty").unwrap();
    let ours = td.path().join("ours");
    let theirs = td.path().join("theirs");
    let info = CommitInfo {
        subject: "same".into(),
        body: "body".into(),
        timestamp: 1_600_000_000,
        parent: None,
        metadata: vec![],
    };
    let repo = Repo::create_or_open(&ours, Mode::Archive).unwrap();
    let done = commit_dir(&repo, &input, info);
    ostree_ok(&["init", &repo_arg(&theirs), "--mode=archive"]);
    let out = ostree_ok(&[
        "commit",
        &repo_arg(&theirs),
        "--no-bindings",
        "--timestamp=@1600000000",
        "--subject=same",
        "--body=body",
        "--orphan",
        &format!("--tree=dir={}", input.display()),
    ]);
    // Every file, dirtree and dirmeta checksum agrees, and so the commit's.
    let ls = |r: &Path, c: &str| ostree_ok(&["ls", &repo_arg(r), "-R", "-C", "-X", c]);
    assert_eq!(ls(&theirs, out.trim()), ls(&ours, &done.commit.to_string()));
    assert_eq!(out.trim(), done.commit.to_string());
}
