//! Regenerates the test vectors under `spec/vectors/{manifest,signature}` from fixed inputs.
//! Run through `tools/gen-vectors`. The unit tests in `core/tests/vectors.rs` load the files and
//! fail if the code and the vectors disagree — a change here is a format change.

use cerro_core::manifest::{
    Attestation, Descriptor, Manifest, Package, RootfsRef, Source, MANIFEST_FORMAT_V1,
};
use cerro_core::rootfs::RootfsDigest;
use cerro_core::sign::{signed_message, Signer, Suite};
use cerro_core::{KeyId, Sha256Digest};
use std::path::PathBuf;

fn d(s: &str) -> Sha256Digest {
    Sha256Digest::of(s.as_bytes())
}

fn desc(mt: &str, seed: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: mt.into(),
        digest: d(seed),
        size,
    }
}

fn manifests() -> Vec<(&'static str, Manifest)> {
    let minimal = Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name: "busybox".into(),
            version: "1.35.0".into(),
            created: "2024-01-01T00:00:00Z".into(),
        },
        source: Source {
            reference: "oci:image:busybox".into(),
            digest: d("image manifest"),
        },
        rootfs: RootfsRef {
            digest: RootfsDigest::from_bytes(*d("rootfs minimal").as_bytes()),
        },
        image: desc(
            "application/vnd.oci.image.manifest.v1+json",
            "image manifest",
            407,
        ),
        config: desc("application/vnd.oci.image.config.v1+json", "config", 612),
        layers: vec![desc(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "layer 1",
            1_084_033,
        )],
        attestations: vec![],
    };
    let full = Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name: "web-app_2.x".into(),
            version: "2.0 \"beta\" \\ ünïcode".into(),
            created: "2026-03-04T05:06:07.125Z".into(),
        },
        source: Source {
            reference: "docker-archive:web.tar:registry.example/web:2.0".into(),
            digest: d("config full"),
        },
        rootfs: RootfsRef {
            digest: RootfsDigest::from_bytes(*d("rootfs full").as_bytes()),
        },
        image: desc(
            "application/vnd.oci.image.manifest.v1+json",
            "manifest full",
            1201,
        ),
        config: desc(
            "application/vnd.oci.image.config.v1+json",
            "config full",
            4096,
        ),
        layers: vec![
            desc("application/vnd.oci.image.layer.v1.tar", "layer a", 0),
            desc(
                "application/vnd.oci.image.layer.v1.tar+zstd",
                "layer b",
                9_223_372_036_854_775_807,
            ),
            desc(
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "layer c",
                512,
            ),
        ],
        attestations: vec![
            Attestation {
                kind: "provenance".into(),
                media_type: "application/vnd.in-toto+json".into(),
                digest: d("prov"),
                size: 2048,
            },
            Attestation {
                kind: "sbom".into(),
                media_type: "application/spdx+json".into(),
                digest: d("sbom"),
                size: 10,
            },
        ],
    };
    vec![("minimal", minimal), ("full", full)]
}

/// Non-canonical or invalid variants of the minimal manifest, with the error class expected.
fn invalid(minimal: &str) -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "extra-space",
            minimal.replace("name = ", "name  = "),
            "not_canonical",
        ),
        ("crlf", minimal.replace('\n', "\r\n"), "not_canonical"),
        (
            "no-trailing-newline",
            minimal.trim_end().to_string(),
            "not_canonical",
        ),
        (
            "extra-trailing-newline",
            format!("{minimal}\n"),
            "not_canonical",
        ),
        ("comment", format!("# signed\n{minimal}"), "not_canonical"),
        (
            "literal-string",
            minimal.replace("name = \"busybox\"", "name = 'busybox'"),
            "not_canonical",
        ),
        (
            "hex-size",
            minimal.replace("size = 407", "size = 0x197"),
            "not_canonical",
        ),
        (
            "reordered-keys",
            minimal.replace(
                "name = \"busybox\"\nversion = \"1.35.0\"",
                "version = \"1.35.0\"\nname = \"busybox\"",
            ),
            "not_canonical",
        ),
        (
            "inline-table",
            minimal.replace(
                "[source]\nreference = \"oci:image:busybox\"\n",
                "source = { reference = \"oci:image:busybox\" }\n[source_]\n",
            ),
            "syntax",
        ),
        (
            "unknown-field",
            minimal.replace("[package]\n", "[package]\nlicense = \"MIT\"\n"),
            "syntax",
        ),
        (
            "uppercase-digest",
            minimal.replacen("digest = \"sha256:", "digest = \"SHA256:", 1),
            "syntax",
        ),
        (
            "bad-digest",
            minimal.replacen("digest = \"sha256:", "digest = \"sha512:", 1),
            "syntax",
        ),
        (
            "rootfs-as-sha256",
            minimal.replace("digest = \"ctfs:", "digest = \"sha256:"),
            "syntax",
        ),
        (
            "no-rootfs",
            {
                let i = minimal.find("\n[rootfs]").unwrap();
                let j = minimal.find("\n[image]").unwrap();
                format!("{}{}", &minimal[..i], &minimal[j..])
            },
            "syntax",
        ),
        (
            "offset-time",
            minimal.replace("2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00"),
            "invalid",
        ),
        (
            "bad-name",
            minimal.replace("name = \"busybox\"", "name = \"../busybox\""),
            "invalid",
        ),
        (
            "wrong-format",
            minimal.replace("cerro-torre/manifest/v1", "cerro-torre/manifest/v2"),
            "invalid",
        ),
        (
            "negative-size",
            minimal.replace("size = 407", "size = -1"),
            "syntax",
        ),
        ("nul-byte", format!("{minimal}\u{0}"), "syntax"),
    ]
}

fn write(path: PathBuf, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    println!("wrote {}", path.display());
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: gen_vectors SPEC_VECTORS_DIR"),
    );
    let mdir = root.join("manifest");
    let mut minimal_text = String::new();
    for (name, m) in manifests() {
        m.validate().expect("vector manifests are valid");
        let bytes = m.encode();
        if name == "minimal" {
            minimal_text = String::from_utf8(bytes.clone()).unwrap();
        }
        write(mdir.join(format!("{name}.toml")), &bytes);
        let mut model = serde_json::to_value(&m).unwrap();
        model["_expected_sha256"] = serde_json::Value::String(Sha256Digest::of(&bytes).to_string());
        write(
            mdir.join(format!("{name}.json")),
            format!("{}\n", serde_json::to_string_pretty(&model).unwrap()).as_bytes(),
        );
    }
    let mut index = serde_json::Map::new();
    for (name, text, class) in invalid(&minimal_text) {
        write(
            mdir.join("invalid").join(format!("{name}.toml")),
            text.as_bytes(),
        );
        index.insert(
            format!("{name}.toml"),
            serde_json::Value::String(class.into()),
        );
    }
    write(
        mdir.join("invalid").join("expected.json"),
        format!("{}\n", serde_json::to_string_pretty(&index).unwrap()).as_bytes(),
    );

    // RFC 8032 §7.1 TEST 1 secret key, so other Ed25519 implementations can cross-check.
    let seed: [u8; 32] =
        hex_seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let signer = Signer::from_seed(KeyId::new("vector-key").unwrap(), &seed);
    let sdir = root.join("signature");
    for (name, _) in manifests() {
        let mbytes = std::fs::read(mdir.join(format!("{name}.toml"))).unwrap();
        let sig = signer.sign(&mbytes);
        let msg = signed_message(Suite::CtSig01, &mbytes);
        let v = serde_json::json!({
            "suite": Suite::CtSig01.id(),
            "seed_hex": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "key_id": "vector-key",
            "public_key_b64": sig.public_key,
            "fingerprint": sig.fingerprint.to_string(),
            "manifest": format!("../manifest/{name}.toml"),
            "signed_message_sha256": Sha256Digest::of(&msg).to_string(),
            "signature_b64": sig.signature,
            "signature_file": format!("{name}.sig"),
        });
        write(
            sdir.join(format!("{name}.json")),
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap()).as_bytes(),
        );
        write(sdir.join(format!("{name}.sig")), &sig.encode());
    }
}

fn hex_seed(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}
