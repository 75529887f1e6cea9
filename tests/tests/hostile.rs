//! Hostile and damaged bundles: each is the shared signed bundle re-assembled with one thing wrong
//! (truncated, not a tar, escaping or unknown names, duplicates, links, a non-canonical manifest,
//! a summary or index that disagrees), and each must be refused with exit 10 and a message that
//! names the cause — before any signature or blob is trusted, and without writing anything.

use cerro_tests::rawtar::{self, Entry};
use cerro_tests::{blob_entry, signed_bundle, TestEnv};
use std::fs;
use std::path::PathBuf;

/// A fresh env that trusts the shared bundle's key, and the shared bundle's entries.
fn setup() -> (TestEnv, Vec<Entry>) {
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    (env, rawtar::read(&s.bundle))
}

/// Write `entries` as `bad.ctp` in `env`; return its path as a string argument.
fn write_bad(env: &TestEnv, entries: &[Entry]) -> String {
    let p = env.path("bad.ctp");
    rawtar::write(&p, entries);
    p.to_str().unwrap().to_string()
}

/// `ct verify BUNDLE` must exit `code` naming every needle, in human and `--json` form, and
/// must leave the config dir as it was.
fn refused(env: &TestEnv, bundle: &str, code: i32, needles: &[&str]) {
    let before = TestEnv::snapshot(&env.config);
    env.ct(&["verify", bundle]).fails(code, needles);
    env.ct(&["--json", "verify", bundle])
        .json_fails(code, needles);
    assert_eq!(
        before,
        TestEnv::snapshot(&env.config),
        "verify changed the config dir"
    );
}

fn layer_entry() -> String {
    let s = signed_bundle();
    let layers = cerro_tests::skopeo_layers(&s.bundle);
    blob_entry(&layers[0])
}

#[test]
fn rewriting_unchanged_entries_gives_the_same_bytes() {
    // The harness check that makes every test below meaningful: re-assembly changes nothing
    // by itself, so a refused variant is refused for the one change it carries.
    let (env, entries) = setup();
    let p = write_bad(&env, &entries);
    assert!(fs::read(&p).unwrap() == fs::read(&signed_bundle().bundle).unwrap());
    env.ct(&["verify", &p]).ok();
}

#[test]
fn truncated_anywhere_is_malformed_and_says_truncated() {
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let bytes = fs::read(&s.bundle).unwrap();
    let layer = layer_entry();
    let layer_at = rawtar::data_offset(&s.bundle, &layer) as usize;
    let manifest_at = rawtar::data_offset(&s.bundle, "cerro/manifest.toml") as usize;
    let sig_at = rawtar::data_offset(&s.bundle, "cerro/signatures/alice.sig") as usize;
    let cuts = [
        ("inside the first header", 100),
        ("inside oci-layout's data", 512 + 10),
        ("inside oci-layout's padding", 700),
        ("inside the manifest's header", manifest_at - 300),
        ("inside the manifest", manifest_at + 50),
        ("inside a signature", sig_at + 20),
        ("inside the layer, early", layer_at + 1000),
        ("inside the layer, late", layer_at + 1_000_000),
    ];
    for (what, at) in cuts {
        assert!(at < bytes.len());
        let p = env.path(&format!("cut-{at}.ctp"));
        fs::write(&p, &bytes[..at]).unwrap();
        let r = env.ct(&["verify", p.to_str().unwrap()]);
        assert_eq!(r.code, 10, "cut {what} (at {at}): {r:#?}");
        assert!(
            r.stderr.contains("truncated"),
            "cut {what} (at {at}) does not say truncated: {}",
            r.stderr
        );
    }
}

#[test]
fn not_a_tar_is_malformed() {
    let (env, _) = setup();
    // Deterministic noise (xorshift), 10 KiB.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..10 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(env.path("noise.ctp"), &noise).unwrap();
    refused(&env, "noise.ctp", 10, &["not a valid tar archive"]);
    fs::write(env.path("empty.ctp"), b"").unwrap();
    refused(&env, "empty.ctp", 10, &["empty"]);
    fs::write(env.path("text.ctp"), "this is not a bundle\n".repeat(100)).unwrap();
    refused(&env, "text.ctp", 10, &["not a valid tar archive"]);
    // 1 KiB of zeros is an empty tar: no entries, so no bundle.
    fs::write(env.path("zeros.ctp"), vec![0u8; 1024]).unwrap();
    refused(&env, "zeros.ctp", 10, &["empty"]);
}

#[test]
fn hostile_bytes_in_a_broken_header_never_reach_the_terminal_raw() {
    // A header whose name and checksum carry terminal escape sequences. The error may quote
    // them, but escaped: raw ESC/BEL bytes on stderr would let a bundle rewrite the terminal.
    let (env, _) = setup();
    let mut block = [0u8; 512];
    let name = b"\x1b]0;pwned\x07\x1b[2J\x1b[31mred";
    block[..name.len()].copy_from_slice(name);
    block[148..156].copy_from_slice(b"\x1b[5m\x1b[1m");
    block[156] = b'0';
    let mut bytes = block.to_vec();
    bytes.extend_from_slice(&[0u8; 1024]);
    fs::write(env.path("esc.ctp"), &bytes).unwrap();
    for args in [
        &["verify", "esc.ctp"][..],
        &["--json", "verify", "esc.ctp"][..],
    ] {
        let r = env.ct(args);
        r.assert_code(10);
        let raw_controls: Vec<char> = r
            .stderr
            .chars()
            .chain(r.stdout.chars())
            .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
            .collect();
        assert!(
            raw_controls.is_empty(),
            "control characters reached the terminal: {raw_controls:?}\n{r:#?}"
        );
    }
}

#[test]
fn an_entry_that_escapes_with_dotdot_is_refused_by_name() {
    let (env, mut entries) = setup();
    entries.push(Entry::file("../x", b"escaped"));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["\"../x\"", ".."]);
    // Also hidden deeper in a valid-looking path.
    let (_, mut entries) = setup();
    let h = "a".repeat(64);
    entries.push(Entry::file(&format!("blobs/sha256/../../{h}"), b"x"));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["blobs/sha256/../../"]);
}

#[test]
fn an_absolute_path_is_refused_by_name() {
    let (env, mut entries) = setup();
    let i = rawtar::find(&entries, "oci-layout");
    entries[i].set_name("/oci-layout");
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["\"/oci-layout\"", "absolute"]);
}

#[test]
fn a_name_that_appears_twice_is_refused() {
    let (env, mut entries) = setup();
    // A second manifest after the first: whichever a reader kept, it must not pick one.
    let i = rawtar::find(&entries, "cerro/manifest.toml");
    let mut dup = entries[i].clone();
    let text = String::from_utf8(dup.data.clone()).unwrap();
    dup.set_data(text.replace("busybox", "busyb0x").as_bytes());
    entries.push(dup);
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["\"cerro/manifest.toml\"", "appears twice"]);
    // A directory listed with and without its trailing slash is one name too.
    let (_, mut entries) = setup();
    let i = rawtar::find(&entries, "blobs/");
    let mut again = entries[i].clone();
    again.set_name("blobs");
    entries.insert(i + 1, again);
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["\"blobs\"", "appears twice"]);
}

#[test]
fn an_unknown_entry_is_refused_by_name() {
    let (env, mut entries) = setup();
    entries.push(Entry::file("foo", b"surprise"));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["\"foo\"", "not part of the bundle layout"]);
    // Unknown files inside cerro/ too.
    let (_, mut entries) = setup();
    entries.push(Entry::file("cerro/run-me.sh", b"#!/bin/sh\n"));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["\"cerro/run-me.sh\""]);
}

#[test]
fn links_are_refused() {
    let (env, mut entries) = setup();
    // The signature replaced by a symlink (a reader following it would read a host file).
    let i = rawtar::find(&entries, "cerro/signatures/alice.sig");
    entries[i] = Entry::symlink("cerro/signatures/alice.sig", "/etc/passwd");
    let p = write_bad(&env, &entries);
    refused(
        &env,
        &p,
        10,
        &[
            "\"cerro/signatures/alice.sig\"",
            "is a symbolic link",
            "only regular files",
        ],
    );
    // A hard link to another entry.
    let (_, mut entries) = setup();
    let mut link = Entry::symlink("cerro/signatures/bob.sig", "cerro/signatures/alice.sig");
    link.header.set_entry_type(tar::EntryType::Link);
    link.header.set_cksum();
    entries.push(link);
    let p = write_bad(&env, &entries);
    refused(
        &env,
        &p,
        10,
        &["\"cerro/signatures/bob.sig\"", "is a hard link"],
    );
}

/// Replace the data of entry `name` by `edit(old text)`.
fn edit_text(entries: &mut [Entry], name: &str, edit: impl FnOnce(&str) -> String) {
    let i = rawtar::find(entries, name);
    let text = String::from_utf8(entries[i].data.clone()).unwrap();
    let new = edit(&text);
    assert_ne!(text, new, "the edit must change {name}");
    entries[i].set_data(new.as_bytes());
}

#[test]
fn a_non_canonical_manifest_is_refused_before_any_signature_is_checked() {
    let (env, mut entries) = setup();
    // Same meaning, one more space: TOML readers agree, but these are not the signed bytes' form.
    edit_text(&mut entries, "cerro/manifest.toml", |t| {
        t.replacen("name = ", "name  = ", 1)
    });
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["not in canonical form"]);
    // A comment is not canonical either.
    let (_, mut entries) = setup();
    edit_text(&mut entries, "cerro/manifest.toml", |t| {
        format!("# hello\n{t}")
    });
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["not in canonical form"]);
}

#[test]
fn derived_files_that_disagree_with_the_manifest_are_refused() {
    let (env, mut entries) = setup();
    edit_text(&mut entries, "cerro/summary.json", |t| {
        t.replacen("\"layers\": 1", "\"layers\": 2", 1)
    });
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["cerro/summary.json", "does not match"]);

    let (_, mut entries) = setup();
    let image = signed_bundle().pack["image_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let other = format!("sha256:{}", "0".repeat(64));
    edit_text(&mut entries, "index.json", |t| t.replace(&image, &other));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["index.json", &other]);

    let (_, mut entries) = setup();
    edit_text(&mut entries, "oci-layout", |t| t.replace("1.0.0", "2.0.0"));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["oci-layout"]);
}

#[test]
fn blobs_missing_or_extra_are_refused() {
    let layer = layer_entry();
    let (env, mut entries) = setup();
    let i = rawtar::find(&entries, &layer);
    entries.remove(i);
    let p = write_bad(&env, &entries);
    let hex = layer.rsplit('/').next().unwrap().to_string();
    refused(&env, &p, 10, &[&hex, "missing"]);

    // An extra blob, correctly named after its content, that the manifest does not list.
    let (_, mut entries) = setup();
    let data = b"smuggled";
    let d = cerro_tests::sha256(data);
    entries.push(Entry::file(&blob_entry(&d), data));
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &[&d, "not in the signed manifest"]);
}

#[test]
fn a_signature_file_named_for_another_key_is_refused() {
    let (env, mut entries) = setup();
    let i = rawtar::find(&entries, "cerro/signatures/alice.sig");
    entries[i].set_name("cerro/signatures/bob.sig");
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["bob.sig", "\"alice\""]);
    // Garbage in a signature file.
    let (_, mut entries) = setup();
    edit_text(&mut entries, "cerro/signatures/alice.sig", |_| "{}".into());
    let p = write_bad(&env, &entries);
    refused(&env, &p, 10, &["cerro/signatures/alice.sig"]);
}

#[test]
fn a_failed_verify_writes_nothing_anywhere() {
    let (env, mut entries) = setup();
    entries.push(Entry::file("foo", b"x"));
    let p: PathBuf = env.path("bad.ctp");
    rawtar::write(&p, &entries);
    let before = TestEnv::snapshot(env.root());
    for args in [
        &["verify", "bad.ctp"][..],
        &["explain", "bad.ctp"][..],
        &["--json", "verify", "bad.ctp"][..],
    ] {
        env.ct(args).assert_code(10);
    }
    assert_eq!(before, TestEnv::snapshot(env.root()));
}
