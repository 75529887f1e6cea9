//! `ct export --format ostree` and `ct verify ostree:REPO:REF` end to end, checked by the real
//! `ostree` (fsck, show, ls, checkout) and by independent tools: a checkout equals the verified
//! tree entry by entry, a second export writes nothing new and a related bundle only the
//! difference, the commit is the same in every repository and mode, a damaged store object
//! stops the export before any ref, a commit whose tree was changed fails verification naming
//! the path, and the Ed25519 commit signature verifies with openssl.

use cerro_tests::mount::{pack_mount_image, Mounted};
use cerro_tests::tree::{compare, walk_tree, Entry, Kind};
use cerro_tests::{flip_byte, store_object, tool, Compression, TestEnv, TAG};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Key `alice`, the mount image (busybox plus /data: a multi-block file, hard links, a FIFO, a
/// device node, an xattr) packed as `mnt.ctp`, and a store.
fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.keygen("alice");
    pack_mount_image(&env, "mnt.ctp", "mnt");
    let store = env.path("store");
    (env, store)
}

fn ct_in(env: &TestEnv, store: &Path, args: &[&str]) -> cerro_tests::Run {
    let mut full = vec!["--store", store.to_str().unwrap()];
    full.extend_from_slice(args);
    env.ct(&full)
}

/// `ct [--json] export --format ostree BUNDLE --repo REPO EXTRA…`; the caller checks the result.
fn export_run(
    env: &TestEnv,
    store: &Path,
    json: bool,
    bundle: &str,
    repo: &Path,
    extra: &[&str],
) -> cerro_tests::Run {
    let mut args = vec!["export", "--format", "ostree", bundle, "--repo"];
    if json {
        args.insert(0, "--json");
    }
    args.push(repo.to_str().unwrap());
    args.extend_from_slice(extra);
    ct_in(env, store, &args)
}

/// [`export_run`] with `--json`, asserting success.
fn export(
    env: &TestEnv,
    store: &Path,
    bundle: &str,
    repo: &Path,
    extra: &[&str],
) -> serde_json::Value {
    export_run(env, store, true, bundle, repo, extra)
        .ok()
        .json()
}

/// `ostree SUBCOMMAND --repo REPO ARGS…`.
fn ostree(repo: &Path, args: &[&str]) -> cerro_tests::Run {
    let mut full = vec![args[0].to_string(), format!("--repo={}", repo.display())];
    full.extend(args[1..].iter().map(|s| s.to_string()));
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    tool("ostree", &refs)
}

/// Object files in a repository.
fn objects(repo: &Path) -> usize {
    let mut n = 0;
    for d in fs::read_dir(repo.join("objects")).unwrap() {
        n += fs::read_dir(d.unwrap().path()).unwrap().count();
    }
    n
}

/// The verified tree, as `ct unpack --format rootfs` writes it.
fn verified_tree(env: &TestEnv, store: &Path) -> BTreeMap<String, Entry> {
    let out = env.path("rootfs");
    if !out.exists() {
        ct_in(
            env,
            store,
            &[
                "unpack",
                "mnt",
                "-o",
                out.to_str().unwrap(),
                "--format",
                "rootfs",
            ],
        )
        .ok();
    }
    walk_tree(&out)
}

/// Drop what OSTree does not keep from a walked tree: mtimes, link counts and the entries it
/// cannot hold (device nodes, FIFOs).
fn as_ostree_keeps(t: &BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
    t.iter()
        .filter(|(_, e)| !matches!(e.kind, Kind::Fifo | Kind::Char | Kind::Block))
        .map(|(p, e)| {
            let mut e = e.clone();
            e.mtime = (0, 0);
            e.nlink = 0;
            e.hardlink = None;
            (p.clone(), e)
        })
        .collect()
}

#[test]
fn an_archive_export_is_accepted_by_ostree_and_checks_out_as_the_verified_tree() {
    let (env, store) = setup();
    let repo = env.path("repo");
    // OSTree holds no device nodes or FIFOs: without --skip-special the bundle is refused, each
    // listed, before the repository is even created.
    export_run(&env, &store, false, "mnt.ctp", &repo, &[]).fails(
        10,
        &[
            "OSTree cannot hold 2 of its entries",
            "/data/fifo (a FIFO), /data/null (a character device)",
            "--skip-special",
        ],
    );
    assert!(!repo.exists());
    let run = export_run(
        &env,
        &store,
        true,
        "mnt.ctp",
        &repo,
        &["--branch", "app/mnt", "--skip-special"],
    );
    run.ok()
        .stderr_has("skipped: left out of the commit")
        .stderr_has("/data/fifo (a FIFO), /data/null (a character device)");
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["mode"], "archive-z2");
    let commit = v["commit"].as_str().unwrap().to_string();
    assert_eq!(
        v["skipped"],
        serde_json::json!(["/data/fifo", "/data/null"]),
        "{v}"
    );
    assert_eq!(
        fs::read_to_string(repo.join("refs/heads/app/mnt"))
            .unwrap()
            .trim(),
        commit
    );
    ostree(&repo, &["fsck"]).ok();
    // Another repository pulls it as it would from any OSTree repository.
    let pulled = env.path("pulled");
    ostree(&pulled, &["init", "--mode=archive"]).ok();
    ostree(&pulled, &["pull-local", repo.to_str().unwrap(), "app/mnt"]).ok();
    ostree(&pulled, &["fsck"]).ok();
    let show = ostree(&repo, &["show", "app/mnt"]).ok().stdout.clone();
    assert!(
        show.contains(&format!("Version: {}", v["version"].as_str().unwrap())),
        "{show}"
    );
    assert!(
        show.contains("Date:  2024-01-01 00:00:00"),
        "the signed created: {show}"
    );
    let raw = ostree(&repo, &["show", "--raw", "app/mnt"])
        .ok()
        .stdout
        .clone();
    for want in [
        "'version'",
        "'cerro.bundle'",
        "'cerro.rootfs'",
        "'cerro.manifest'",
        "'cerro.tree'",
        "'cerro.signature.alice'",
        "'cerro.skipped': <['/data/fifo', '/data/null']>",
    ] {
        assert!(
            raw.contains(want),
            "{want} in\n{}",
            &raw[..raw.len().min(2000)]
        );
    }
    assert!(raw.contains(v["rootfs"].as_str().unwrap()));
    let ls = ostree(&repo, &["ls", "-R", "app/mnt", "/data"])
        .ok()
        .stdout
        .clone();
    assert!(
        ls.contains("/data/big.bin") && !ls.contains("/data/fifo"),
        "{ls}"
    );
    // A checkout as root (owners, modes and xattrs applied) is the verified tree, less what
    // OSTree does not keep.
    let co = env.path("checkout");
    ostree(&repo, &["checkout", "app/mnt", co.to_str().unwrap()]).ok();
    let diffs = compare(
        &as_ostree_keeps(&verified_tree(&env, &store)),
        &as_ostree_keeps(&walk_tree(&co)),
    );
    assert!(
        diffs.is_empty(),
        "verified tree vs checkout:\n{}",
        diffs.join("\n")
    );
    // `ct verify` proves the commit is the signed bundle.
    ct_in(
        &env,
        &store,
        &["verify", &format!("ostree:{}:app/mnt", repo.display())],
    )
    .ok()
    .stdout_has("VERIFIED")
    .stdout_has("re-derives the signed rootfs");
    let j = ct_in(
        &env,
        &store,
        &[
            "--json",
            "verify",
            &format!("ostree:{}:{commit}", repo.display()),
        ],
    )
    .ok()
    .json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["ostree"]["commit"], commit.as_str());
}

/// Export `bundle` (already packed under `env`) in both repository modes and check each with
/// the real `ostree`: `fsck` is clean, a checkout as root equals what `ct mount` shows entry by
/// entry (content, type, mode, owner, symlink target, xattrs; not mtimes or link counts, and
/// not the device nodes and FIFOs `--skip-special` left out), `ct verify ostree:` passes, and a
/// bare-user checkout in user mode (`-U`) equals it too, less what user mode does not restore:
/// owners (the checkout's user owns everything), xattrs (its files are hard links to the
/// repository's objects and show their `user.ostreemeta`), and the set-id and world-write bits
/// of regular files.
fn exports_as_ct_mount_shows_it(env: &TestEnv, store: &Path, bundle: &str, name: &str) {
    ct_in(env, store, &["import", bundle]).ok();
    let mountpoint = env.path("mnt");
    let shown = {
        let m = Mounted::mount(env, store, name, &mountpoint, &[]);
        let t = as_ostree_keeps(&walk_tree(&m.mountpoint));
        m.unmount();
        t
    };
    assert!(shown.len() > 20, "{} entries", shown.len());
    let uid = nix_ids();
    for mode in ["archive", "bare-user"] {
        let repo = env.path(&format!("repo-{mode}"));
        let v = export(
            env,
            store,
            name,
            &repo,
            &["--mode", mode, "--branch", "app", "--skip-special"],
        );
        ostree(&repo, &["fsck"]).ok();
        let co = env.path(&format!("co-{mode}"));
        ostree(&repo, &["checkout", "app", co.to_str().unwrap()]).ok();
        let diffs = compare(&shown, &as_ostree_keeps(&walk_tree(&co)));
        assert!(
            diffs.is_empty(),
            "{name}: ct mount vs checkout of the {mode} export:\n{}",
            diffs.join("\n")
        );
        ct_in(
            env,
            store,
            &["verify", &format!("ostree:{}:app", repo.display())],
        )
        .ok()
        .stdout_has("re-derives the signed rootfs");
        if mode == "bare-user" {
            let user = env.path("co-user");
            ostree(&repo, &["checkout", "-U", "app", user.to_str().unwrap()]).ok();
            let as_user = |t: &BTreeMap<String, Entry>| -> BTreeMap<String, Entry> {
                t.iter()
                    .map(|(p, e)| {
                        let mut e = e.clone();
                        (e.uid, e.gid) = uid;
                        e.xattrs.clear();
                        if e.kind == Kind::File {
                            e.mode &= !0o6002;
                        }
                        (p.clone(), e)
                    })
                    .collect()
            };
            // The checkout's files are hard links to the repository's objects, whose own
            // user.ostreemeta xattr they show: xattrs are compared on neither side.
            let checked_out = as_user(&as_ostree_keeps(&walk_tree(&user)));
            let diffs = compare(&as_user(&shown), &checked_out);
            assert!(
                diffs.is_empty(),
                "{name}: ct mount vs user-mode checkout:\n{}",
                diffs.join("\n")
            );
        }
        assert!(v["skipped"].is_array(), "{v}");
    }
}

/// The uid and gid of this process (what a user-mode checkout gives every entry).
fn nix_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let me = fs::metadata("/proc/self").unwrap();
    (me.uid(), me.gid())
}

#[test]
fn the_multilayer_image_exports_in_both_modes_as_ct_mount_shows_it() {
    let (env, store) = setup();
    let tag = cerro_tests::fixtures::MULTILAYER_TAG;
    // As built, it has a name that is not UTF-8, which OSTree cannot hold: refused (64) before
    // the repository is made.
    let full = cerro_tests::fixtures::multilayer_image();
    env.pack(&format!("oci:{}:{tag}", full.display()), "full.ctp", &[]);
    let repo = env.path("refused");
    export_run(&env, &store, false, "full.ctp", &repo, &["--skip-special"])
        .fails(64, &["/etc/caf\\xe9", "is not UTF-8"]);
    assert!(!repo.exists());
    // Without that one file: whiteouts, an opaque directory, hard links, symlinks, devices and a
    // FIFO (skipped), xattrs including security.capability, owners, setuid.
    let utf8 = cerro_tests::fixtures::multilayer_image_utf8();
    env.pack(
        &format!("oci:{}:{tag}", utf8.display()),
        "ml.ctp",
        &["--name", "ml"],
    );
    exports_as_ct_mount_shows_it(&env, &store, "ml.ctp", "ml");
}

#[test]
fn the_debian_image_exports_in_both_modes_as_ct_mount_shows_it() {
    let (env, store) = setup();
    let image = cerro_tests::fixtures::debian_image();
    env.pack(
        &format!(
            "oci:{}:{}",
            image.display(),
            cerro_tests::fixtures::DEBIAN_TAG
        ),
        "deb.ctp",
        &["--name", "deb"],
    );
    exports_as_ct_mount_shows_it(&env, &store, "deb.ctp", "deb");
}

#[test]
fn exports_write_only_what_the_repository_lacks_and_the_commit_is_the_same_everywhere() {
    let (env, store) = setup();
    // A bundle of the plain example image, then the mount image (the same busybox plus /data).
    let base = env.image(Compression::Gzip, "base");
    env.pack(
        &format!("oci:{}:{TAG}", base.display()),
        "base.ctp",
        &["--name", "base"],
    );
    let repo = env.path("repo");
    let first = export(&env, &store, "base.ctp", &repo, &[]);
    assert_eq!(first["branch"], "cerro/base");
    let total = objects(&repo);
    assert_eq!(first["objects_written"].as_u64().unwrap() as usize, total);
    // The same bundle again: nothing new, the same commit.
    let again = export(&env, &store, "base.ctp", &repo, &[]);
    assert_eq!(again["objects_written"], 0, "{again}");
    assert_eq!(again["commit"], first["commit"]);
    assert_eq!(objects(&repo), total);
    // A related bundle: only the difference is written.
    let mnt = export(&env, &store, "mnt.ctp", &repo, &["--skip-special"]);
    let added = objects(&repo) - total;
    assert_eq!(
        mnt["objects_written"].as_u64().unwrap() as usize,
        added,
        "{mnt}"
    );
    // The mount image adds /data: five file contents (the two hard links are one), the /data
    // and / listings, and the commit; everything else (busybox, every directory's metadata)
    // was there.
    assert_eq!(added, 8, "{mnt}");
    // Another repository, and the other mode: the same commit checksum.
    for (name, mode) in [("repo2", "archive"), ("repo3", "bare-user")] {
        let other = export(
            &env,
            &store,
            "mnt",
            &env.path(name),
            &["--mode", mode, "--skip-special"],
        );
        assert_eq!(other["commit"], mnt["commit"], "{name} ({mode})");
    }
    ostree(&env.path("repo3"), &["fsck"]).ok();
    let target = format!("ostree:{}:cerro/mnt", env.path("repo3").display());
    ct_in(&env, &store, &["verify", &target])
        .ok()
        .stdout_has("VERIFIED");
    // An existing repository keeps its mode.
    let repo3 = env.path("repo3");
    export_run(
        &env,
        &store,
        false,
        "mnt",
        &repo3,
        &["--mode", "archive", "--skip-special"],
    )
    .fails(64, &["bare-user", "not archive"]);
    // Without --mode, an existing repository is taken in its own mode.
    let again = export(&env, &store, "mnt", &env.path("repo3"), &["--skip-special"]);
    assert_eq!(again["mode"], "bare-user");
    assert_eq!(again["objects_written"], 0, "{again}");
}

#[test]
fn a_damaged_store_object_stops_the_export_before_any_ref() {
    let (env, store) = setup();
    ct_in(&env, &store, &["import", "mnt.ctp"]).ok();
    let tree = ct_in(&env, &store, &["--json", "store", "tree", "mnt"])
        .ok()
        .json();
    flip_byte(&store_object(&store, &tree, "/data/big.bin"), 70_000);
    let repo = env.path("repo");
    export_run(&env, &store, false, "mnt", &repo, &["--skip-special"]).fails(
        1,
        &[
            "bundle mnt, /data/big.bin",
            "failed verification",
            "no ref moved",
        ],
    );
    assert!(!repo.join("refs/heads/cerro/mnt").exists());
    assert_eq!(fs::read_dir(repo.join("refs/heads")).unwrap().count(), 0);
    // What was written before the damage was met is valid: the repository stays clean.
    ostree(&repo, &["fsck"]).ok();
}

#[test]
fn a_commit_whose_tree_was_changed_fails_verification_naming_the_path() {
    let (env, store) = setup();
    let repo = env.path("repo");
    let skip = ["--branch", "app/mnt", "--skip-special"];
    let exported = export(&env, &store, "mnt.ctp", &repo, &skip);
    let original = exported["commit"].as_str().unwrap();
    let target = format!("ostree:{}:app/mnt", repo.display());
    // Another signer's trust store: the signature is valid but not trusted (3).
    let stranger = TestEnv::new();
    stranger
        .ct(&["verify", &target])
        .fails(3, &["no signature is from a trusted key", "alice"]);
    // The same metadata (manifest, signatures, signed tree) over a tree with one file changed,
    // committed by ostree itself on top of the exported commit.
    let overlay = env.path("overlay");
    fs::create_dir_all(overlay.join("data")).unwrap();
    fs::write(overlay.join("data/public"), b"for everyone, changed\n").unwrap();
    // `ostree commit` onto app/mnt of `trees`, keeping the exported metadata but `drop`.
    let recommit = |trees: &[String], drop: &str| {
        let mut args = vec!["commit".to_string(), "-b".into(), "app/mnt".into()];
        args.extend(trees.iter().cloned());
        args.extend(["--owner-uid=0".into(), "--owner-gid=0".into()]);
        for key in [
            "version",
            "cerro.bundle",
            "cerro.rootfs",
            "cerro.manifest",
            "cerro.tree",
            "cerro.signature.alice",
            "cerro.skipped",
        ] {
            if key != drop {
                args.push(format!("--keep-metadata={key}"));
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ostree(&repo, &refs).ok();
    };
    recommit(
        &[
            "--tree=ref=app/mnt".into(),
            format!("--tree=dir={}", overlay.display()),
        ],
        "",
    );
    ct_in(&env, &store, &["verify", &target])
        .fails(1, &["/data/public", "content", "is not the signed bundle"]);
    // The exported tree again, with the list of skipped entries dropped from the metadata: the
    // commit no longer accounts for the FIFO and the device the signed tree has.
    recommit(&[format!("--tree=ref={original}")], "cerro.skipped");
    ct_in(&env, &store, &["verify", &target])
        .fails(1, &["cerro.skipped names []", "/data/fifo, /data/null"]);
    // A content object changed on disk: OSTree's own checksum catches it.
    let repo2 = env.path("repo2");
    export(&env, &store, "mnt.ctp", &repo2, &skip);
    let ls = ostree(&repo2, &["ls", "-C", "app/mnt", "/data/public"])
        .ok()
        .stdout
        .clone();
    let checksum = ls
        .split_whitespace()
        .find(|w| w.len() == 64)
        .unwrap()
        .to_string();
    let obj = repo2
        .join("objects")
        .join(&checksum[..2])
        .join(format!("{}.filez", &checksum[2..]));
    let len = fs::metadata(&obj).unwrap().len();
    flip_byte(&obj, len - 1);
    ct_in(
        &env,
        &store,
        &["verify", &format!("ostree:{}:app/mnt", repo2.display())],
    )
    .fails(1, &["/data/public", &checksum]);
    // Not a commit ct wrote: malformed (10); not a repository: usage (64).
    let plain = env.path("plain");
    ostree(&plain, &["init", "--mode=archive"]).ok();
    ostree(
        &plain,
        &[
            "commit",
            "-b",
            "x",
            &format!("--tree=dir={}", overlay.display()),
        ],
    )
    .ok();
    ct_in(
        &env,
        &store,
        &["verify", &format!("ostree:{}:x", plain.display())],
    )
    .fails(10, &["not exported by ct"]);
    ct_in(
        &env,
        &store,
        &[
            "verify",
            &format!("ostree:{}:x", env.path("nothing").display()),
        ],
    )
    .fails(64, &["nothing"]);
}

/// The one byte array of GVariant text output such as ostree prints an `aay` of one element:
/// either `[[byte 0x12, 0x34, …]]` or — when the array ends in its only NUL byte, which GLib
/// then shows as a C string — a bytestring `[b"\250\304\n…"]` (C escapes, octal in three
/// digits) standing for those bytes and the final NUL. Parsed here, independently of ct's
/// binary GVariant code.
fn gvariant_text_bytes(text: &str) -> Vec<u8> {
    if text.contains("byte 0x") {
        return text
            .split(|c: char| !c.is_ascii_hexdigit() && c != 'x')
            .filter_map(|w| w.strip_prefix("0x"))
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
    }
    let start = [text.find("b\""), text.find("b'")]
        .into_iter()
        .flatten()
        .min()
        .expect("a bytestring")
        + 2;
    let quote = text.as_bytes()[start - 1];
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    while b[i] != quote {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        if e.is_ascii_digit() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap();
            out.push(u8::from_str_radix(oct, 8).unwrap());
            i += 4;
            continue;
        }
        out.push(match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            other => other, // \\, \", \'
        });
        i += 2;
    }
    out.push(0);
    out
}

#[test]
fn gvariant_text_bytes_reads_both_forms_glib_prints() {
    assert_eq!(
        gvariant_text_bytes("[[byte 0x01, 0xff, 0x30]]\n"),
        [1, 255, 0x30]
    );
    assert_eq!(
        gvariant_text_bytes("[b\"a\\001\\n\\\\b\\\"0x\\377\"]\n"),
        [b'a', 1, b'\n', b'\\', b'b', b'"', b'0', b'x', 255, 0]
    );
    assert_eq!(gvariant_text_bytes("[b'it\\'s']"), b"it's\0");
    // A signature ostree printed in a CI run: 63 bytes shown, the 64th its final NUL.
    let seen = r#"[b"\250\304\n\271\274\0175sri9\230\031\274\272\207\255u\024\371\310r\263.r\017k\251z\321\246,\tG\3527\244\210\320U\023\\@\347\264\347\212*m\203\t\272'e\216 bg9\276e\004="]"#;
    let sig = gvariant_text_bytes(seen);
    assert_eq!((sig.len(), sig[0], sig[63]), (64, 0o250, 0));
}

#[test]
fn a_signed_commit_verifies_with_openssl() {
    use base64::Engine as _;
    let (env, store) = setup();
    let repo = env.path("repo");
    let passphrase = env.path("passphrase");
    let v = export(
        &env,
        &store,
        "mnt.ctp",
        &repo,
        &[
            "--skip-special",
            "-k",
            "alice",
            "--passphrase-file",
            passphrase.to_str().unwrap(),
        ],
    );
    assert_eq!(v["signed_by"], "alice");
    let commit = v["commit"].as_str().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let public = b64
        .decode(v["ed25519_public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(public.len(), 32);
    // The signature, as ostree itself prints the detached metadata (GVariant text: a list of
    // byte arrays).
    let printed = ostree(
        &repo,
        &[
            "show",
            "--print-detached-metadata-key=ostree.sign.ed25519",
            commit,
        ],
    )
    .ok()
    .stdout
    .clone();
    let sig = gvariant_text_bytes(&printed);
    assert_eq!(sig.len(), 64, "{printed}");
    let object = fs::read(
        repo.join("objects")
            .join(&commit[..2])
            .join(format!("{}.commit", &commit[2..])),
    )
    .unwrap();
    let verify =
        |sig: &[u8]| cerro_tests::openssl_ed25519_verify(env.root(), &public, &object, sig);
    verify(&sig)
        .ok()
        .stdout_has("Signature Verified Successfully");
    let mut forged = sig.clone();
    forged[10] ^= 1;
    assert_ne!(
        verify(&forged).code,
        0,
        "a changed signature must not verify"
    );
    // The public key is alice's, as her trust-store file holds it.
    let alice: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path("config/trust/alice.pub")).unwrap()).unwrap();
    assert_eq!(
        b64.decode(alice["public_key"].as_str().unwrap()).unwrap(),
        public
    );
}
