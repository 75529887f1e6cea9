//! `ct re-sign`: replacing and adding signatures changes no content digest; the result verifies
//! with the new key (and with both, with --add-signature); tampered content is never signed.

use cerro_tests::{flip_byte, Compression, TestEnv, TAG};
use std::fs;

#[test]
fn replace_add_and_refuse_tampered_content() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.keygen("bob");
    let img = env.image(Compression::Gzip, "img");
    let src = format!("oci:{}:{TAG}", img.display());
    let packed = env.pack(&src, "b.ctp", &["-k", "alice"]);
    let manifest_before = manifest_of(&env.path("b.ctp"));

    // Add bob beside alice, in place.
    let v = env
        .ct(&["--json", "re-sign", "b.ctp", "-k", "bob", "--add-signature"])
        .ok()
        .json();
    assert_eq!(v["bundle_digest"], packed["bundle_digest"]);
    assert_eq!(v["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(
        manifest_of(&env.path("b.ctp")),
        manifest_before,
        "content is unchanged"
    );
    let rep = env.ct(&["--json", "verify", "b.ctp"]).ok().json();
    let signers: Vec<&str> = rep["report"]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(signers, ["alice", "bob"]);

    // Replace with bob only, to another file: alice's removal makes alice-only trust fail.
    env.ct(&["re-sign", "b.ctp", "-k", "bob", "-o", "bob.ctp"])
        .ok();
    let rep = env.ct(&["--json", "verify", "bob.ctp"]).ok().json();
    assert_eq!(rep["report"]["signatures"].as_array().unwrap().len(), 1);
    assert_eq!(rep["report"]["signatures"][0]["key_id"], "bob");
    assert_eq!(rep["report"]["bundle_digest"], packed["bundle_digest"]);
    env.ct(&["key", "remove", "bob"]).ok();
    env.ct(&["verify", "bob.ctp"]).fails(3, &["bob"]);
    env.ct(&["verify", "b.ctp"]).ok(); // alice still signs this one
    env.ct(&["re-sign", "b.ctp", "-k", "bob", "-o", "bob.ctp"])
        .fails(64, &["exists"]);

    // Tampered content: refused with exit 1, nothing written.
    fs::copy(env.path("b.ctp"), env.path("t.ctp")).unwrap();
    let len = fs::metadata(env.path("t.ctp")).unwrap().len();
    flip_byte(&env.path("t.ctp"), len - 4096);
    env.ct(&["re-sign", "t.ctp", "-k", "alice", "-o", "t2.ctp"])
        .fails(1, &["nothing was signed"]);
    assert!(!env.path("t2.ctp").exists());
}

fn manifest_of(bundle: &std::path::Path) -> Vec<u8> {
    let mut ar = tar::Archive::new(fs::File::open(bundle).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == b"cerro/manifest.toml" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return v;
        }
    }
    panic!("no manifest in {}", bundle.display());
}
