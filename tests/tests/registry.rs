//! `ct push`, `ct fetch` and `ct pack docker://…` against a real registry (Debian's
//! docker-registry, the CNCF distribution server, on 127.0.0.1): byte-identical round trips,
//! skopeo seeing an ordinary image, no blob sent twice, corruption on the registry's disk (exit 1,
//! nothing written), an unreachable registry and bad credentials (exit 12), trust checked before
//! the download, and plain images pulled and packed with `--create`.

use cerro_tests::registry::{big_layout, Registry};
use cerro_tests::{tool, Compression, TestEnv, TAG};
use serde_json::Value;
use std::fs;

/// A test env with key `alice` and the example image packed as `busybox.ctp`.
fn packed() -> (TestEnv, Value) {
    let env = TestEnv::new();
    env.keygen("alice");
    env.image(Compression::Gzip, "img");
    let pack = env.pack(
        &format!("oci:img:{TAG}"),
        "busybox.ctp",
        &["--name", "busybox", "--version", "1.0"],
    );
    (env, pack)
}

#[test]
fn push_then_fetch_gives_the_same_bytes_and_skopeo_sees_an_ordinary_image() {
    let reg = Registry::start();
    let (env, pack) = packed();
    let image = reg.image("team/busybox:1.0");
    let push = env
        .ct(&["--json", "push", "busybox.ctp", &image])
        .ok()
        .json();
    assert_eq!(push["image_digest"], pack["image_digest"]);
    assert_eq!(push["bundle_digest"], pack["bundle_digest"]);
    let hex = pack["image_digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    assert_eq!(push["referrers_tag"], format!("sha256-{hex}.ctp"));
    // The SBOM and the provenance are referrers of the image too, listed (this registry has no
    // referrers API) in the tag schema's index beside the Cerro artifact.
    assert_eq!(push["referrers_index_tag"], format!("sha256-{hex}"));
    let kinds: Vec<&str> = push["attestation_referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sbom", "provenance"]);
    let repo = image.rsplit_once(':').unwrap().0;
    let raw = |reference: &str| -> Value {
        let r = tool(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{repo}{reference}"),
            ],
        );
        serde_json::from_str(&r.stdout).unwrap()
    };
    let index = raw(&format!(":sha256-{hex}"));
    let listed: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["artifactType"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [
            "application/vnd.cerro-torre.bundle.v1",
            "application/spdx+json",
            "application/vnd.dsse.envelope.v1+json"
        ],
        "{index}"
    );
    let (_, prov) = listed[2];
    assert_eq!(prov, push["attestation_referrers"][1]["digest"]);
    let referrer = raw(&format!("@{prov}"));
    assert_eq!(referrer["subject"]["digest"], pack["image_digest"]);
    assert_eq!(
        referrer["artifactType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    let layer = referrer["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Its one layer is the bundle's provenance attestation.
    let entries = cerro_tests::rawtar::read(&env.path("busybox.ctp"));
    let body = &entries[cerro_tests::rawtar::find(
        &entries,
        &format!("cerro/attestations/{}", layer.trim_start_matches("sha256:")),
    )]
    .data;
    assert_eq!(cerro_tests::sha256(body), layer);
    // Pushing again lists nothing twice.
    env.ct(&["push", "busybox.ctp", &image]).ok();
    assert_eq!(raw(&format!(":sha256-{hex}")), index);

    let fetch = env
        .ct(&["--json", "fetch", &image, "-o", "fetched.ctp"])
        .ok()
        .json();
    assert_eq!(fetch["ok"], true);
    assert_eq!(
        fetch["found_via"], "tag",
        "Debian's registry has no referrers API"
    );
    assert_eq!(fetch["report"]["failure"], Value::Null);
    assert_eq!(
        fs::read(env.path("fetched.ctp")).unwrap(),
        fs::read(env.path("busybox.ctp")).unwrap(),
        "the fetched bundle is byte for byte the pushed one"
    );
    env.ct(&["verify", "fetched.ctp"])
        .ok()
        .stdout_has("VERIFIED");
    // The human output names what happened.
    env.ct(&["fetch", &image, "-o", "again.ctp"])
        .ok()
        .stdout_has("fetched")
        .stdout_has("VERIFIED");

    // skopeo sees an ordinary image under the tag, and copies it like any other.
    let insp: Value = serde_json::from_str(
        &tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                &format!("docker://{image}"),
            ],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(insp["Digest"], pack["image_digest"]);
    let tags: Vec<&str> = insp["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"1.0"), "{tags:?}");
    let layout = env.path("copied");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{image}"),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let (digest, _) = cerro_tests::layout_manifest(&layout);
    assert_eq!(digest, pack["image_digest"].as_str().unwrap());
    // The copied image packs into a bundle whose image digest is the same.
    let repacked = env.pack(
        &format!("oci:{}:x", layout.display()),
        "repacked.ctp",
        &["--name", "busybox"],
    );
    assert_eq!(repacked["image_digest"], pack["image_digest"]);
}

#[test]
fn a_second_push_sends_no_blob_twice_and_large_blobs_go_in_chunks() {
    let reg = Registry::start();
    let env = TestEnv::new();
    env.keygen("alice");
    // 20 MiB: over the 16 MiB single-request limit, so it goes through a chunked PATCH upload.
    big_layout(&env.path("big"), 20, 7);
    env.pack("oci:big:big", "big.ctp", &[]);
    let image = reg.image("big:1");

    let before = reg.requests().len();
    let first = env.ct(&["--json", "push", "big.ctp", &image]).ok().json();
    let reqs = reg.requests();
    let uploads = Registry::blob_uploads(&reqs[before..]);
    assert!(
        uploads.iter().any(|r| r.method == "PATCH"),
        "the big layer is uploaded in chunks: {uploads:?}"
    );
    assert!(first["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["outcome"] == "uploaded"));

    let mid = reg.requests().len();
    let second = env.ct(&["--json", "push", "big.ctp", &image]).ok().json();
    let reqs = reg.requests();
    let again = Registry::blob_uploads(&reqs[mid..]);
    assert!(
        again.is_empty(),
        "the second push uploaded blobs again: {again:?}"
    );
    assert!(second["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["outcome"] == "present"));
    assert_eq!(second["bytes_sent"], 0);
    assert_eq!(
        second["artifact_digest"], first["artifact_digest"],
        "the artifact is deterministic"
    );

    // Fetching the big image streams it back byte for byte.
    env.ct(&["fetch", &image, "-o", "big2.ctp"]).ok();
    assert_eq!(
        fs::read(env.path("big2.ctp")).unwrap(),
        fs::read(env.path("big.ctp")).unwrap()
    );
}

#[test]
fn a_blob_corrupted_on_the_registry_disk_fails_with_1_and_writes_nothing() {
    let reg = Registry::start();
    let (env, pack) = packed();
    let image = reg.image("busybox:1.0");
    env.ct(&["push", "busybox.ctp", &image]).ok();
    let layer_digest = cerro_tests::skopeo_layers(&env.path("busybox.ctp"))[0].clone();
    let data = reg.blob_data(&layer_digest);
    cerro_tests::flip_byte(&data, 1000);
    let before = TestEnv::snapshot(env.root());
    env.ct(&["fetch", &image, "-o", "bad.ctp"])
        .fails(1, &[&layer_digest, "127.0.0.1", "nothing was written"]);
    assert!(!env.path("bad.ctp").exists());
    let after = TestEnv::snapshot(env.root());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no file left behind"
    );
    // The failure names the blob, not the image.
    assert_ne!(pack["image_digest"], layer_digest);
}

#[test]
fn an_unreachable_registry_is_exit_12_naming_it() {
    let mut reg = Registry::start();
    let (env, _) = packed();
    let image = reg.image("busybox:1.0");
    reg.stop();
    env.ct(&["fetch", &image, "-o", "x.ctp"])
        .fails(12, &[&reg.host(), "Connection refused"]);
    env.ct(&["push", "busybox.ctp", &image])
        .fails(12, &[&reg.host()]);
    let j = env
        .ct(&["--json", "fetch", &image, "-o", "x.ctp"])
        .json_fails(12, &[&reg.host()]);
    assert!(j["error"]["hint"].as_str().unwrap().contains("running"));
    assert!(!env.path("x.ctp").exists());
}

#[test]
fn basic_auth_with_creds_flag_and_auth_file_and_401_otherwise() {
    let reg = Registry::start_with_basic_auth("alice", "s3cret");
    let (env, _) = packed();
    let image = reg.image("private/busybox:1.0");
    env.ct(&["push", "busybox.ctp", &image])
        .fails(12, &["401", &reg.host(), "--creds"]);
    env.ct(&["push", "busybox.ctp", &image, "--creds", "alice:wrong"])
        .fails(12, &["401 Unauthorized", "alice"]);
    env.ct(&["push", "busybox.ctp", &image, "--creds", "alice:s3cret"])
        .ok();
    // The auth file podman and skopeo write ($REGISTRY_AUTH_FILE).
    let auth = env.path("auth.json");
    let token = cerro_tests_b64("alice:s3cret");
    fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"auth":"{token}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    env.cmd(&["fetch", &image, "-o", "f.ctp"])
        .env("REGISTRY_AUTH_FILE", &auth)
        .run()
        .ok();
    env.ct(&[
        "fetch",
        &image,
        "-o",
        "g.ctp",
        "--authfile",
        auth.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        fs::read(env.path("f.ctp")).unwrap(),
        fs::read(env.path("busybox.ctp")).unwrap()
    );
    // skopeo reads the same auth file.
    tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--authfile",
            auth.to_str().unwrap(),
            &format!("docker://{image}"),
        ],
    );
}

fn cerro_tests_b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn fetch_checks_trust_and_policy_before_writing_anything() {
    let reg = Registry::start();
    let (env, _) = packed();
    let image = reg.image("busybox:1.0");
    env.ct(&["push", "busybox.ctp", &image]).ok();

    // Another machine that does not trust alice: exit 3, and the layer is never downloaded.
    let other = TestEnv::new();
    let before = reg.requests().len();
    other
        .ct(&["fetch", &image, "-o", "x.ctp"])
        .fails(3, &["alice", "not", "trust"]);
    let reqs = reg.requests();
    let blob_gets = reqs[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.uri.contains("/blobs/"))
        .count();
    assert!(
        blob_gets <= 4,
        "only the small Cerro files were downloaded, not the image: {:?}",
        &reqs[before..]
    );
    assert!(!other.path("x.ctp").exists());

    // A policy that rejects the bundle: exit 4, nothing written.
    fs::write(
        env.path("deny.json"),
        r#"{"version":"1","default_action":"deny"}"#,
    )
    .unwrap();
    env.ct(&["fetch", &image, "-o", "y.ctp", "--policy", "deny.json"])
        .assert_code(4);
    assert!(!env.path("y.ctp").exists());
    // An existing output is not replaced without --force.
    fs::write(env.path("z.ctp"), b"keep").unwrap();
    env.ct(&["fetch", &image, "-o", "z.ctp"])
        .fails(64, &["--force"]);
    assert_eq!(fs::read(env.path("z.ctp")).unwrap(), b"keep");
    env.ct(&["fetch", &image, "-o", "z.ctp", "--force"]).ok();
}

#[test]
fn fetch_create_packs_a_plain_image_pushed_by_skopeo() {
    let reg = Registry::start();
    let env = TestEnv::new();
    env.keygen("alice");
    let layout = env.image(Compression::Gzip, "img");
    let image = reg.image("plain/busybox:7");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:{TAG}", layout.display()),
            &format!("docker://{image}"),
        ],
    );
    // Without --create: there is no bundle to fetch, and the hint says what to do.
    env.ct(&["fetch", &image, "-o", "p.ctp"])
        .fails(10, &["no Cerro bundle", "--create"]);
    let v = env
        .ct(&[
            "--json", "fetch", &image, "--create", "-o", "p.ctp", "-k", "alice",
        ])
        .ok()
        .json();
    assert_eq!(v["source"], format!("docker://{image}"));
    assert_eq!(v["name"], "busybox");
    env.ct(&["verify", "p.ctp"]).ok().stdout_has("VERIFIED");
    // `ct pack docker://…` is the same operation, so the same bytes.
    env.pack(&format!("docker://{image}"), "q.ctp", &[]);
    assert_eq!(
        fs::read(env.path("p.ctp")).unwrap(),
        fs::read(env.path("q.ctp")).unwrap()
    );
    // skopeo reads the bundle as the image it was made from.
    let (digest, _) = cerro_tests::layout_manifest(&layout);
    assert_eq!(v["image_digest"], digest);
    // Pushing it to another repository of the same registry mounts the image's blobs from the
    // repository it was packed from instead of uploading them.
    let pushed = env
        .ct(&["--json", "push", "p.ctp", &reg.image("signed/busybox:7")])
        .ok()
        .json();
    let outcome = |role: &str| {
        pushed["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["role"] == role)
            .map(|b| b["outcome"].clone())
    };
    assert_eq!(outcome("layer 1"), Some(Value::from("mounted")), "{pushed}");
    assert_eq!(
        outcome("image config"),
        Some(Value::from("mounted")),
        "{pushed}"
    );
    // No temporary files are left beside the output.
    let stray: Vec<_> = fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".ct-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn bad_references_are_usage_errors() {
    let env = TestEnv::new();
    env.ct(&["fetch", "127.0.0.1:1/UPPER:1", "-o", "x.ctp"])
        .fails(64, &["lowercase"]);
    env.ct(&[
        "push",
        "nothing.ctp",
        "127.0.0.1:1/x@sha256:".to_string().as_str(),
    ])
    .assert_code(64);
    env.ct(&["fetch", "127.0.0.1:1/x:1", "-o", "x.ctp", "-k", "alice"])
        .assert_code(64);
}

#[test]
fn bearer_token_auth_through_the_registrys_own_challenge() {
    use cerro_tests::registry::TokenService;
    let token = TokenService::start("alice", "s3cret");
    let reg = Registry::start_with_token_auth(&token);
    let (env, _) = packed();
    let image = reg.image("tok/busybox:1.0");
    // No credentials: the token service refuses, and the error names it and the 401.
    env.ct(&["push", "busybox.ctp", &image])
        .fails(12, &["token service", "401", "--creds"]);
    env.ct(&["push", "busybox.ctp", &image, "--creds", "alice:wrong"])
        .fails(12, &["401", "alice"]);
    env.ct(&["push", "busybox.ctp", &image, "--creds", "alice:s3cret"])
        .ok();
    env.ct(&["fetch", &image, "-o", "t.ctp", "--creds", "alice:s3cret"])
        .ok();
    assert_eq!(
        fs::read(env.path("t.ctp")).unwrap(),
        fs::read(env.path("busybox.ctp")).unwrap()
    );
    // ct asked for the scopes it needed, with the service the registry named.
    let seen = token.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(q, _)| q.contains("service=cerro-test-registry")
                && q.contains("scope=repository%3Atok%2Fbusybox%3Apull%2Cpush")),
        "{seen:?}"
    );
    // skopeo, given the same credentials, sees the image.
    tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "alice:s3cret",
            &format!("docker://{image}"),
        ],
    );
}
