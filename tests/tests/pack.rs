//! `ct pack` end to end: every source kind, the bundle read back by skopeo and unpacked by umoci,
//! byte-for-byte determinism, and every way a pack is refused without leaving a file behind.

use cerro_tests::{
    blob_path, copy_dir, docker_archive, example_docker_archive, flip_byte, layout_manifest,
    rewrite_layout_manifest, tool, Compression, TestEnv, TAG,
};
use serde_json::Value;
use std::fs;
use std::path::Path;

/// An env with key `alice`.
fn keyed() -> TestEnv {
    let env = TestEnv::new();
    env.keygen("alice");
    env
}

/// `skopeo inspect oci-archive:B` and `skopeo inspect --raw` (the image manifest bytes).
fn skopeo_inspect(bundle: &Path) -> (Value, Value) {
    let src = format!("oci-archive:{}", bundle.display());
    let info = tool("skopeo", &["inspect", &src]);
    let raw = tool("skopeo", &["inspect", "--raw", &src]);
    (
        serde_json::from_str(&info.stdout).unwrap(),
        serde_json::from_str(&raw.stdout).unwrap(),
    )
}

/// Pack the example image with compression `c`, check ct's report against the layout and
/// against what skopeo reads from the bundle, and verify it.
fn pack_and_check(c: Compression) {
    let env = keyed();
    let img = env.image(c, "img");
    let (layout_digest, layout_m) = layout_manifest(&img);
    let p = env.pack(&format!("oci:img:{TAG}"), "b.ctp", &[]);
    assert_eq!(p["ok"], true);
    assert_eq!(p["image_digest"], layout_digest.as_str(), "{p}");
    assert_eq!(p["source"], "oci:img:busybox");
    assert_eq!(p["name"], "busybox");
    assert_eq!(p["layers"], 1);
    let bundle = env.path("b.ctp");
    assert_eq!(p["bundle_size"], fs::metadata(&bundle).unwrap().len());

    let (info, raw) = skopeo_inspect(&bundle);
    assert_eq!(info["Digest"], layout_digest.as_str(), "skopeo: {info}");
    assert_eq!(raw, layout_m, "the image manifest is carried unchanged");
    assert_eq!(raw["layers"][0]["mediaType"], c.media_type());
    assert_eq!(info["Layers"][0], layout_m["layers"][0]["digest"]);

    let v = env.ct(&["--json", "verify", "b.ctp"]).ok().json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
}

#[test]
fn pack_gzip_layout() {
    pack_and_check(Compression::Gzip);
}

#[test]
fn pack_zstd_layout() {
    pack_and_check(Compression::Zstd);
}

#[test]
fn pack_uncompressed_layout() {
    pack_and_check(Compression::None);
}

#[test]
fn pack_layout_without_a_tag_takes_its_only_image() {
    let env = keyed();
    let img = env.image(Compression::Gzip, "img");
    let p = env.pack("oci:img", "b.ctp", &[]);
    assert_eq!(p["image_digest"], layout_manifest(&img).0.as_str());
    assert_eq!(p["source"], "oci:img");
    // A tag that is not there is named in the error.
    env.ct(&["pack", "oci:img:nope", "-o", "c.ctp"])
        .fails(10, &["nope", "busybox"]);
    assert!(!env.path("c.ctp").exists());
}

#[test]
fn pack_docker_archive() {
    let env = keyed();
    let archive = env.path("busybox.tar");
    fs::copy(example_docker_archive(), &archive).unwrap();
    let p = env.pack("docker-archive:busybox.tar", "d.ctp", &[]);
    assert_eq!(p["source"], "docker-archive:busybox.tar");
    assert_eq!(p["name"], "busybox", "named after the archive's repo tag");
    assert_eq!(p["layers"], 1);
    let bundle = env.path("d.ctp");
    let (info, raw) = skopeo_inspect(&bundle);
    assert_eq!(info["Digest"], p["image_digest"]);
    env.ct(&["verify", "d.ctp"]).ok();
    // The converted image's config is the original one, byte for byte.
    let (_, layout_m) = layout_manifest(cerro_tests::example_image(Compression::Gzip));
    assert_eq!(raw["config"]["digest"], layout_m["config"]["digest"]);
    // Packing it again gives the same bytes.
    env.pack("docker-archive:busybox.tar", "d2.ctp", &[]);
    assert!(fs::read(&bundle).unwrap() == fs::read(env.path("d2.ctp")).unwrap());
}

#[test]
fn bundle_copies_with_skopeo_and_unpacks_with_umoci() {
    let env = keyed();
    env.image(Compression::Gzip, "img");
    let p = env.pack(&format!("oci:img:{TAG}"), "b.ctp", &[]);
    let out = env.path("out");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci-archive:{}", env.path("b.ctp").display()),
            &format!("oci:{}:t", out.display()),
        ],
    );
    let (digest, _) = layout_manifest(&out);
    assert_eq!(
        p["image_digest"],
        digest.as_str(),
        "skopeo copied the same image"
    );
    let unpacked = env.path("unpacked");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:t", out.display()),
            unpacked.to_str().unwrap(),
        ],
    );
    let rootfs = unpacked.join("rootfs");
    let os_release = fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    assert!(os_release.contains("Cerro Torre example"), "{os_release}");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
}

#[test]
fn packing_is_deterministic_across_runs_directories_and_config_dirs() {
    let env = keyed();
    env.image(Compression::Gzip, "a/img");
    env.image(Compression::Gzip, "b/img");
    let src_a = format!("oci:{}:{TAG}", env.path("a/img").display());
    env.pack(&src_a, "1.ctp", &[]);
    env.pack(&src_a, "2.ctp", &[]);
    env.pack("oci:b/img:busybox", "3.ctp", &[]);
    // The same key in another config dir, another home, another working directory.
    let other = TestEnv::new();
    copy_dir(&env.config, &other.config);
    other.image(Compression::Gzip, "img");
    other.pack("oci:img:busybox", "4.ctp", &[]);

    let one = fs::read(env.path("1.ctp")).unwrap();
    for (name, path) in [
        ("second run", env.path("2.ctp")),
        ("another directory", env.path("3.ctp")),
        ("another config dir", other.path("4.ctp")),
    ] {
        let b = fs::read(&path).unwrap();
        assert!(one == b, "{name}: bundle bytes differ from the first pack");
    }
    // The control: another key gives other bytes (the comparison above can fail).
    env.keygen("bob");
    env.pack(&src_a, "5.ctp", &["-k", "bob"]);
    assert!(one != fs::read(env.path("5.ctp")).unwrap());
}

#[test]
fn pack_refuses_an_existing_output_unless_forced() {
    let env = keyed();
    env.image(Compression::Gzip, "img");
    fs::write(env.path("b.ctp"), "precious").unwrap();
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp"])
        .fails(64, &["b.ctp", "already exists", "--force"]);
    assert_eq!(fs::read(env.path("b.ctp")).unwrap(), b"precious");
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp", "--force"])
        .ok();
    env.ct(&["verify", "b.ctp"]).ok();
}

#[test]
fn pack_from_a_missing_directory_is_an_io_error() {
    let env = keyed();
    env.ct(&["pack", "oci:nowhere:busybox", "-o", "b.ctp"])
        .fails(11, &["nowhere"]);
    env.ct(&["pack", "docker-archive:nowhere.tar", "-o", "b.ctp"])
        .fails(11, &["nowhere.tar"]);
    assert!(!env.path("b.ctp").exists());
}

/// Files in `dir` after a failed pack: the bundle and any temporary file must be gone.
fn assert_no_bundle_left(env: &TestEnv, name: &str) {
    assert!(!env.path(name).exists(), "{name} was written");
    let stray: Vec<_> = fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ct-"))
        .collect();
    assert!(stray.is_empty(), "temporary files left behind: {stray:?}");
}

#[test]
fn a_corrupt_layer_in_the_source_aborts_with_1_and_writes_nothing() {
    let env = keyed();
    let img = env.image(Compression::Gzip, "img");
    let (_, m) = layout_manifest(&img);
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    // Keep the gzip magic, change a byte in the middle: the size is right, the digest is not.
    let p = blob_path(&img, &layer);
    let len = fs::metadata(&p).unwrap().len();
    flip_byte(&p, len / 2);
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp"])
        .fails(1, &[&layer]);
    assert_no_bundle_left(&env, "b.ctp");
    // A layer blob of the wrong size is caught too.
    let mut bytes = fs::read(&p).unwrap();
    bytes.truncate(bytes.len() - 1);
    fs::write(&p, bytes).unwrap();
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp"])
        .fails(1, &[&layer]);
    assert_no_bundle_left(&env, "b.ctp");
}

#[test]
fn a_layer_whose_bytes_contradict_its_media_type_is_malformed() {
    let env = keyed();
    // A zstd layer declared as gzip: the layout is consistent, it just lies about the layer.
    let img = env.image(Compression::Zstd, "img");
    rewrite_layout_manifest(&img, |m| {
        m["layers"][0]["mediaType"] = Compression::Gzip.media_type().into();
    });
    let (_, m) = layout_manifest(&img);
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp"]).fails(
        10,
        &["layer 1", &layer, "gzip", "its bytes are zstd-compressed"],
    );
    assert_no_bundle_left(&env, "b.ctp");
}

// `docker://` sources are pulled from a registry; tests/tests/registry.rs covers them against a
// registry on 127.0.0.1 (a test never reaches any other address).
#[test]
fn unknown_transports_are_usage_errors() {
    let env = keyed();
    env.ct(&["pack", "ftp:img", "-o", "b.ctp"])
        .fails(64, &["unknown source transport \"ftp\""]);
    env.ct(&["pack", "img", "-o", "b.ctp"])
        .fails(64, &["names no transport"]);
    assert_no_bundle_left(&env, "b.ctp");
}

#[test]
fn pack_without_a_key_or_with_an_unknown_key_is_a_usage_error() {
    let env = TestEnv::new();
    env.image(Compression::Gzip, "img");
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp"])
        .fails(64, &["no signing key", "ct keygen"]);
    env.keygen("alice");
    env.ct(&["pack", "oci:img:busybox", "-o", "b.ctp", "-k", "mallory"])
        .fails(64, &["mallory"]);
    assert_no_bundle_left(&env, "b.ctp");
}

#[test]
fn name_and_version_flags_are_recorded_and_signed() {
    let env = keyed();
    env.image(Compression::Gzip, "img");
    let p = env.pack(
        "oci:img:busybox",
        "b.ctp",
        &["--name", "tiny-shell", "--version", "2.0"],
    );
    assert_eq!(p["name"], "tiny-shell");
    assert_eq!(p["version"], "2.0");
    let v = env.ct(&["--json", "verify", "b.ctp"]).ok().json();
    assert_eq!(v["report"]["manifest"]["package"]["name"], "tiny-shell");
    assert_eq!(v["report"]["manifest"]["package"]["version"], "2.0");
    // The image's own version label is the default version.
    let p2 = env.pack("oci:img:busybox", "c.ctp", &[]);
    let cfg_label = {
        let (_, m) = layout_manifest(&env.path("img"));
        let cfg: Value = serde_json::from_slice(
            &fs::read(blob_path(
                &env.path("img"),
                m["config"]["digest"].as_str().unwrap(),
            ))
            .unwrap(),
        )
        .unwrap();
        cfg["config"]["Labels"]["org.opencontainers.image.version"].clone()
    };
    assert_eq!(p2["version"], cfg_label);
    env.ct(&["pack", "oci:img:busybox", "-o", "d.ctp", "--name", "../x"])
        .fails(10, &["not a valid bundle name"]);
    assert_no_bundle_left(&env, "d.ctp");
}

#[test]
fn a_docker_archive_made_here_packs_like_the_shared_one() {
    // The helper itself: a fresh docker archive of a fresh layout copy gives the same bundle.
    let env = keyed();
    let img = env.image(Compression::Gzip, "img");
    docker_archive(&img, &env.path("busybox.tar"));
    env.pack("docker-archive:busybox.tar", "a.ctp", &[]);
    fs::create_dir(env.path("sub")).unwrap();
    fs::copy(example_docker_archive(), env.path("sub/busybox.tar")).unwrap();
    env.pack("docker-archive:sub/busybox.tar", "b.ctp", &[]);
    assert!(fs::read(env.path("a.ctp")).unwrap() == fs::read(env.path("b.ctp")).unwrap());
}
