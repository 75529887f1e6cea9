//! Issue 12 from the command line: hostile archives refused at once in little memory, sizes near
//! 2^63 refused before any signature, an edited manifest reported as a signature failure, a
//! layer `umoci insert` wrote packed, devices Linux cannot represent refused, overlay xattrs
//! not served, no CT_PASSPHRASE in children, no control character on the terminal, and the
//! archive's policy never silently replacing the local default. Each asserts the exact exit
//! code and the message.

use cerro_tests::forge::{self, forge_bundle, Header, Layer, RootfsClaim, TarBuilder};
use cerro_tests::mount::Mounted;
use cerro_tests::rawtar::{self, Entry};
use cerro_tests::{run_command, signed_bundle, tool, Run, TestEnv, TAG};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tar header block (ustar, checksum set) claiming `size` bytes of data.
fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..name.len()].copy_from_slice(name);
    b[100..108].copy_from_slice(b"0000644\0");
    b[108..116].copy_from_slice(b"0000000\0");
    b[116..124].copy_from_slice(b"0000000\0");
    b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    b[136..148].copy_from_slice(b"00000000000\0");
    b[156] = typeflag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

/// A sparse file (a few KiB on disk) whose first header claims 1.5 GiB of extension data: the
/// `tar` crate read such a long name or pax header whole (11 GiB RSS, 3 GiB of error text).
fn sparse_hostile(path: &Path, typeflag: u8) {
    let claimed = 3u64 << 29;
    fs::write(path, header(b"././@LongLink", typeflag, claimed)).unwrap();
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(512 + claimed + 1024).unwrap();
}

/// Run `ct ARGS` with its address space limited to 256 MiB (so an attempt to hold a 1.5 GiB
/// header aborts instead of passing), in `env`'s environment.
fn ct_limited(env: &TestEnv, args: &[&str]) -> Run {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={}", 256u64 << 20))
        .arg(cerro_tests::ct_bin())
        .args(args)
        .current_dir(env.root())
        .env("CT_CONFIG_DIR", &env.config)
        .env("HOME", env.path("home"))
        .env("NO_COLOR", "1");
    run_command(c)
}

#[test]
fn a_sparse_hostile_header_is_refused_at_once_in_little_memory() {
    let env = TestEnv::new();
    for (flag, file, needle) in [
        (
            b'L',
            "long-name.ctp",
            "a GNU long name of 1610612736 bytes (limit 4096)",
        ),
        (
            b'x',
            "pax.ctp",
            "a pax header of 1610612736 bytes (limit 1048576)",
        ),
    ] {
        sparse_hostile(&env.path(file), flag);
        let cases: [&[&str]; 4] = [
            &["verify", file],
            &["explain", file],
            &["--json", "verify", file],
            // ct push indexes the bundle (seeking over data) before it contacts any registry.
            &["push", file, "127.0.0.1:1/x:1"],
        ];
        for args in cases {
            let r = ct_limited(&env, args);
            assert_eq!(r.code, 10, "{args:?}: {r:#?}");
            assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("header at byte 0"), "{}", r.stderr);
            assert!(
                r.stderr.len() < 1000,
                "a short error: {} bytes",
                r.stderr.len()
            );
        }
    }
    // An export archive with the same header: refused by ct import the same way.
    sparse_hostile(&env.path("site.tar"), b'L');
    let r = ct_limited(&env, &["import", "site.tar", "-o", "out"]);
    assert_eq!(r.code, 10, "{r:#?}");
    assert!(
        r.stderr
            .contains("GNU long name of 1610612736 bytes (limit 4096)"),
        "{}",
        r.stderr
    );
    assert!(!env.path("out").exists());
}

#[test]
fn a_long_escaping_name_is_cut_and_escaped_in_the_message() {
    // A GNU long name of 3014 bytes holding terminal escapes.
    let env = TestEnv::new();
    let mut name = b"\x1b]0;pwned\x07\x1b[2J".to_vec();
    name.extend_from_slice(&[b'n'; 3000]);
    let mut t = header(b"././@LongLink", b'L', name.len() as u64).to_vec();
    t.extend_from_slice(&name);
    t.resize(t.len().next_multiple_of(512), 0);
    t.extend_from_slice(&header(b"x", b'2', 0));
    t.extend_from_slice(&[0u8; 1024]);
    fs::write(env.path("esc.ctp"), &t).unwrap();
    let r = env.ct(&["verify", "esc.ctp"]);
    r.assert_code(10);
    assert!(
        r.stderr.contains("\\x1b]0;pwned\\x07\\x1b[2J")
            && r.stderr.contains(&format!("({} bytes)", name.len()))
            && r.stderr.contains("not part of the bundle layout"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.len() < 1000, "{}", r.stderr);
    assert!(
        !r.stderr.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        r.stderr
    );
}

/// The shared bundle's entries with the manifest's text edited by `edit`.
fn with_manifest(edit: impl FnOnce(&str) -> String) -> Vec<Entry> {
    let mut entries = rawtar::read(&signed_bundle().bundle);
    let i = rawtar::find(&entries, "cerro/manifest.toml");
    let text = String::from_utf8(entries[i].data.clone()).unwrap();
    let new = edit(&text);
    assert_ne!(text, new);
    entries[i].set_data(new.as_bytes());
    entries
}

#[test]
fn sizes_near_i64_max_are_malformed_before_any_signature() {
    // An unsigned bundle whose (canonical) manifest lists sizes that each fit 2^63-1 but add up
    // past it: debug builds panicked (exit 101) summing them, release builds wrapped.
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let mut entries = with_manifest(|t| {
        let mut out = String::new();
        for line in t.lines() {
            if line.starts_with("size = ") {
                out.push_str(&format!("size = {}\n", i64::MAX));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    });
    entries.retain(|e| !e.name().starts_with("cerro/signatures/"));
    let p = env.path("huge.ctp");
    rawtar::write(&p, &entries);
    let needle = "add up to more than 9223372036854775807 bytes";
    for args in [
        &["verify", "huge.ctp"][..],
        &["verify", "--deep", "huge.ctp"],
    ] {
        env.ct(args).fails(10, &["cerro/manifest.toml", needle]);
    }
    // explain tells its verdict on stdout.
    let r = env.ct(&["explain", "huge.ctp"]);
    r.assert_code(10);
    assert!(r.stdout.contains(needle), "{r:#?}");
    env.ct(&["--json", "verify", "huge.ctp"])
        .json_fails(10, &[needle]);
}

#[test]
fn an_edited_manifest_is_a_signature_failure() {
    // One letter of the package name, still canonical: summary.json no longer matches either,
    // but that is compared only after the signatures, so this is exit 2, not "malformed".
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let entries = with_manifest(|t| t.replacen("name = \"busybox\"", "name = \"busyb0x\"", 1));
    rawtar::write(&env.path("edited.ctp"), &entries);
    let needle = "the signature does not match the manifest bytes";
    env.ct(&["verify", "edited.ctp"])
        .fails(2, &["alice", needle]);
    env.ct(&["explain", "edited.ctp"]).assert_code(2);
    env.ct(&["--json", "verify", "edited.ctp"])
        .json_fails(2, &[needle]);
    // With valid signatures, a summary that disagrees stays malformed input.
    let mut entries = rawtar::read(&s.bundle);
    let i = rawtar::find(&entries, "cerro/summary.json");
    let text = String::from_utf8(entries[i].data.clone()).unwrap();
    entries[i].set_data(text.replace("\"layers\": 1", "\"layers\": 7").as_bytes());
    rawtar::write(&env.path("summary.ctp"), &entries);
    env.ct(&["verify", "summary.ctp"]).fails(
        10,
        &["cerro/summary.json does not match the signed manifest"],
    );
}

/// An image as FIELD-NOTES makes one offline: busybox-static with relative applet links, put in
/// with `umoci insert` (0.4.7 writes the layer without final padding or end-of-archive blocks).
fn umoci_insert_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(rootfs.join("hello.txt"), b"seven b").unwrap();
    let layout = dir.join("layout");
    let image = format!("{}:bb", layout.display());
    tool("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    tool("umoci", &["new", "--image", &image]);
    tool(
        "umoci",
        &["insert", "--image", &image, rootfs.to_str().unwrap(), "/"],
    );
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--os",
            "linux",
            "--architecture",
            cerro_core::source::oci_dir::host_arch(),
        ],
    );
    tool("umoci", &["gc", "--layout", layout.to_str().unwrap()]);
    layout
}

#[test]
fn a_layer_written_by_umoci_insert_packs() {
    let env = TestEnv::new();
    env.keygen("alice");
    let layout = umoci_insert_image(&env.path("img"));
    // The case under test is real: the layer's tar stops right after the last file's data.
    let (_, m) = cerro_tests::layout_manifest(&layout);
    let layer = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let gz = fs::read(cerro_tests::blob_path(&layout, &layer)).unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar).unwrap();
    assert!(
        tar.len() % 512 != 0 || tar[tar.len() - 1024..].iter().any(|&b| b != 0),
        "umoci wrote an ordinary layer ({} bytes): the test would prove nothing",
        tar.len()
    );
    let source = format!("oci:{}:bb", layout.display());
    env.pack(&source, "bb.ctp", &["--name", "bb"]);
    env.ct(&["verify", "--deep", "bb.ctp"]).ok();
    // What ct signed is what umoci unpacks: the file ends where its data ends.
    let store = env.path("store");
    let st = store.to_str().unwrap();
    env.ct(&["--store", st, "import", "bb.ctp"]).ok();
    let tree = env.ct(&["--json", "--store", st, "store", "tree", "bb"]);
    tree.ok();
    assert!(tree.stdout.contains("hello.txt"), "{}", tree.stdout);
    // A layer cut inside the last file's data is still refused as truncated.
    let cut = &tar[..tar.len() - 3];
    let bad = env.path("bad-layout");
    cerro_tests::copy_dir(&layout, &bad);
    let mut gz_cut = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz_cut, cut).unwrap();
    let gz_cut = gz_cut.finish().unwrap();
    let new = cerro_tests::put_blob(&bad, &gz_cut);
    cerro_tests::rewrite_layout_manifest(&bad, |m| {
        let l = m["layers"].as_array_mut().unwrap().last_mut().unwrap();
        l["digest"] = new.clone().into();
        l["size"] = gz_cut.len().into();
    });
    env.ct(&[
        "pack",
        &format!("oci:{}:bb", bad.display()),
        "-o",
        "cut.ctp",
    ])
    .fails(10, &["truncated", "inside the entry's data"]);
}

#[test]
fn device_numbers_linux_cannot_hold_are_refused() {
    // 4096,0 would reach the kernel as 0,0 (12-bit major): refused, never served as another
    // device. Before the fix the layer was accepted and its (forged) rootfs claim was exit 1.
    let env = TestEnv::new();
    env.trust(&forge::forger_public_key(env.root()));
    let mut t = TarBuilder::new();
    let mut dev = Header::new(b"dev/huge", forge::kind::CHAR);
    dev.major = 4096;
    t.dir(b"dev/").header(&dev);
    let f = forge_bundle(
        env.root(),
        "dev",
        &[Layer::tar(t.finish())],
        RootfsClaim::Forged,
    );
    let b = f.bundle.to_str().unwrap();
    let needle = "device number 4096,0 (Linux allows major <= 4095, minor <= 1048575)";
    env.ct(&["verify", "--deep", b])
        .fails(10, &["dev/huge", needle]);
    let store = env.path("store");
    env.ct(&["--store", store.to_str().unwrap(), "import", b])
        .fails(10, &["dev/huge", needle]);
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// Extended attributes of `p` (name → value), read with python (getfattr may be missing).
fn xattrs(p: &Path) -> Vec<(String, String)> {
    let mut c = Command::new("python3");
    c.arg("-c")
        .arg("import os,sys\nfor n in sorted(os.listxattr(sys.argv[1])):\n print(n, os.getxattr(sys.argv[1], n).hex())")
        .arg(p);
    let r = run_command(c);
    r.ok();
    r.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn overlay_xattrs_are_kept_in_the_tree_but_never_served() {
    if !is_root() {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let env = TestEnv::new();
    env.trust(&forge::forger_public_key(env.root()));
    let mut t = TarBuilder::new();
    t.pax(&[
        (b"SCHILY.xattr.trusted.overlay.opaque", b"y"),
        (b"SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        (b"SCHILY.xattr.user.overlay.opaque", b"y"),
        (b"SCHILY.xattr.user.note", b"kept"),
    ])
    .dir(b"d/")
    .file(b"d/f", b"x");
    let f = forge_bundle(
        env.root(),
        "ovl",
        &[Layer::tar(t.finish())],
        RootfsClaim::Derived,
    );
    let store = env.path("store");
    let mp = env.path("mnt");
    fs::create_dir(&mp).unwrap();
    let m = Mounted::mount(&env, &store, f.bundle.to_str().unwrap(), &mp, &[]);
    // 6b657074 is "kept".
    assert_eq!(
        xattrs(&m.path("d")),
        vec![("user.note".to_string(), "6b657074".to_string())]
    );
    m.unmount();
    // The signed tree still has them: nothing of the image is dropped, only not served.
    let st = store.to_str().unwrap();
    let tree = env.ct(&["--json", "--store", st, "store", "tree", "ovl"]);
    tree.ok();
    assert!(
        tree.stdout.contains("trusted.overlay.opaque"),
        "{}",
        tree.stdout
    );
}

#[test]
fn children_never_inherit_ct_passphrase() {
    // A fake runc that writes down its environment: `ct doctor` runs `runc --version`.
    let env = TestEnv::new();
    let bin = env.path("fakebin");
    fs::create_dir(&bin).unwrap();
    let dump = env.path("runc-env");
    let runc = bin.join("runc");
    fs::write(
        &runc,
        format!(
            "#!/bin/sh\nenv > '{}'\necho 'runc version 1.1.5'\n",
            dump.display()
        ),
    )
    .unwrap();
    tool("chmod", &["0755", runc.to_str().unwrap()]);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let _ = env
        .cmd(&["doctor", "--quick"])
        .env("PATH", path)
        .env("CT_PASSPHRASE", "do not leak me")
        .run();
    let seen = fs::read_to_string(&dump).expect("ct doctor ran the fake runc");
    assert!(seen.contains("PATH="), "{seen}");
    assert!(!seen.contains("CT_PASSPHRASE"), "{seen}");
    assert!(!seen.contains("do not leak me"), "{seen}");

    // The mount daemon, which runs for as long as the mount.
    if !is_root() {
        return;
    }
    let s = signed_bundle();
    env.trust(&s.public_key);
    let store = env.path("store");
    let mp = env.path("mnt");
    fs::create_dir(&mp).unwrap();
    let (m, r) = Mounted::run(
        &env,
        &store,
        &mp,
        &[
            "--json",
            "mount",
            s.bundle.to_str().unwrap(),
            mp.to_str().unwrap(),
        ],
    );
    r.ok();
    let pid = r.json()["pid"]
        .as_u64()
        .expect("the mount report names the daemon");
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("CT_CONFIG_DIR="), "{environ}");
    assert!(!environ.contains("CT_PASSPHRASE"), "{environ}");
    m.unmount();
}

#[test]
fn creds_help_says_it_shows_in_the_process_list() {
    let env = TestEnv::new();
    for cmd in ["push", "fetch"] {
        let r = env.ct(&[cmd, "--help"]);
        r.ok();
        let text = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.contains("process list") && text.contains("prefer --authfile"),
            "{cmd}: {text}"
        );
    }
}

#[test]
fn control_characters_from_a_bundle_never_reach_the_terminal() {
    // A signature file whose suite (free text, unvalidated) is a terminal escape sequence.
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let mut entries = rawtar::read(&s.bundle);
    let i = rawtar::find(&entries, "cerro/signatures/alice.sig");
    let text = String::from_utf8(entries[i].data.clone()).unwrap();
    let evil = text.replace("\"CT-SIG-01\"", "\"\\u001b]0;pwned\\u0007\\u001b[2J\"");
    assert_ne!(text, evil);
    entries[i].set_data(evil.as_bytes());
    rawtar::write(&env.path("esc.ctp"), &entries);
    for args in [
        &["verify", "esc.ctp"][..],
        &["verify", "--explain", "esc.ctp"],
        &["explain", "esc.ctp"],
    ] {
        let r = env.ct(args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        // explain tells its verdict on stdout, verify on stderr.
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(all.contains("unsupported suite"), "{all}");
        let raw: Vec<char> = r
            .stdout
            .chars()
            .chain(r.stderr.chars())
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(raw.is_empty(), "{args:?}: {raw:?}\n{r:#?}");
    }
}

#[test]
fn the_archive_policy_never_silently_replaces_the_default_policy() {
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    fs::copy(&s.bundle, env.path("busybox.ctp")).unwrap();
    fs::write(
        env.path("theirs.json"),
        r#"{"version":"1","default_action":"allow"}"#,
    )
    .unwrap();
    env.ct(&[
        "export",
        "busybox.ctp",
        "-o",
        "site.tar",
        "--policy",
        "theirs.json",
    ])
    .ok();
    fs::write(
        env.path("mine.json"),
        r#"{"version":"1","default_action":"allow"}"#,
    )
    .unwrap();
    fs::write(
        env.config.join("config.toml"),
        format!("default_policy = {:?}\n", env.path("mine.json")),
    )
    .unwrap();
    env.ct(&["import", "site.tar", "-o", "in", "--use-included-policy"])
        .fails(
            64,
            &[
                "--use-included-policy would replace this machine's default policy",
                "mine.json",
                "--replace-default-policy",
            ],
        );
    assert!(!env.path("in").exists());
    env.ct(&[
        "import",
        "site.tar",
        "-o",
        "in",
        "--use-included-policy",
        "--replace-default-policy",
    ])
    .ok();
    assert!(env.path("in/busybox.ctp").exists());
    // Without a default policy the archive's is used on request, as before.
    fs::remove_file(env.config.join("config.toml")).unwrap();
    env.ct(&["import", "site.tar", "-o", "in2", "--use-included-policy"])
        .ok();
}

#[test]
fn a_layer_whose_bytes_contradict_its_media_type_is_named_in_words() {
    // Was "its bytes are None-compressed" (Rust Debug text).
    let env = TestEnv::new();
    env.keygen("alice");
    let layout = env.image(cerro_tests::Compression::None, "img");
    cerro_tests::rewrite_layout_manifest(&layout, |m| {
        m["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    });
    let r = env.ct(&["pack", &format!("oci:img:{TAG}"), "-o", "x.ctp"]);
    r.assert_code(10);
    assert!(
        r.stderr
            .contains("is declared application/vnd.oci.image.layer.v1.tar+gzip but its bytes are uncompressed"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("None"), "{}", r.stderr);
}
