//! Regenerates the test vectors under `spec/vectors/{manifest,signature}` from fixed inputs.
//! Run through `tools/gen-vectors`. The unit tests in `core/tests/vectors.rs` load the files and
//! fail if the code and the vectors disagree — a change here is a format change.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cerro_core::bundle::{write_bundle, writer, BlobSource, BundleContents, BundleError};
use cerro_core::manifest::{
    Attestation, Descriptor, Manifest, Package, RootfsRef, Source, MANIFEST_FORMAT_V1,
};
use cerro_core::rootfs::RootfsDigest;
use cerro_core::rootfs::{HashSink, Limits, RootfsBuilder};
use cerro_core::sign::{signed_message, SignatureFile, Signer, Suite};
use cerro_core::source::Compression;
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::collections::BTreeMap;
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
            // The largest size allowed: all sizes together add up to exactly 2^63-1.
            desc(
                "application/vnd.oci.image.layer.v1.tar+zstd",
                "layer b",
                9_223_372_036_854_775_807 - (1201 + 4096 + 512 + 2048 + 10),
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
        (
            // Each size fits; their sum would not (spec/bundle.md §4.2).
            "sizes-overflow",
            minimal
                .replace("size = 612", "size = 9223372036854775807")
                .replace("size = 1084033", "size = 9223372036854775807"),
            "invalid",
        ),
        (
            "leap-second",
            minimal.replace("2024-01-01T00:00:00Z", "2016-12-31T23:59:60Z"),
            "invalid",
        ),
        (
            "source-digest-uppercase",
            {
                // `sha256:` then 64 lowercase hex digits only (the digest's hex in upper case).
                let i = minimal.find("[source]").unwrap();
                let j = i + minimal[i..].find("digest = \"sha256:").unwrap() + 17;
                let hex = &minimal[j..j + 64];
                format!(
                    "{}{}{}",
                    &minimal[..j],
                    hex.to_uppercase(),
                    &minimal[j + 64..]
                )
            },
            "syntax",
        ),
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
    let minimal = std::fs::read(mdir.join("minimal.toml")).unwrap();
    let mut expected = serde_json::Map::new();
    for (name, file, reason) in invalid_signatures(&signer, &minimal) {
        write(
            sdir.join("invalid").join(format!("{name}.sig")),
            &file.encode(),
        );
        expected.insert(
            format!("{name}.sig"),
            serde_json::json!({"manifest": "../../manifest/minimal.toml", "exit_code": 2, "reason": reason}),
        );
    }
    write(
        sdir.join("invalid").join("expected.json"),
        format!("{}\n", serde_json::to_string_pretty(&expected).unwrap()).as_bytes(),
    );
    bundle_vectors(&root.join("bundle"), &signer);

    // A secret key file (spec/signature.md §4) sealing the RFC 8032 seed under a known
    // passphrase, with a fixed salt and nonce so the file is reproducible.
    let passphrase = "correct horse battery staple";
    let (secret, public) = cerro_core::keys::seal_with(
        KeyId::new("vector-key").unwrap(),
        &seed,
        passphrase.as_bytes(),
        &[0x5a; 16],
        &[0xa5; 24],
    )
    .unwrap();
    let kdir = root.join("keys");
    write(kdir.join("vector-key.key"), &secret.encode());
    write(kdir.join("vector-key.pub"), &public.encode());
    write(
        kdir.join("vector-key.json"),
        format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "secret_key_file": "vector-key.key",
                "public_key_file": "vector-key.pub",
                "passphrase": passphrase,
                "seed_hex": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "argon2id_output_bytes": 32,
            }))
            .unwrap()
        )
        .as_bytes(),
    );
}

/// Blobs held in memory, for the bundle vector.
struct MemBlobs(BTreeMap<Sha256Digest, Vec<u8>>);

impl BlobSource for MemBlobs {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        _size: u64,
    ) -> Result<Box<dyn std::io::Read + Send + '_>, BundleError> {
        Ok(Box::new(&self.0[digest][..]))
    }
}

/// `spec/vectors/bundle/`: a whole small bundle, byte for byte (spec/bundle.md §2.1), and single
/// header blocks for the cases the bundle does not show (base-256 size, ustar prefix).
fn bundle_vectors(dir: &std::path::Path, signer: &Signer) {
    // A one-layer image: the layer holds one file.
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("hello.txt").unwrap();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    layer.append(&h, &b"hello\n"[..]).unwrap();
    let layer = layer.into_inner().unwrap();
    let layer_d = Sha256Digest::of(&layer);
    let config = format!(
        "{{\"architecture\":\"amd64\",\"config\":{{}},\"created\":\"2024-01-01T00:00:00Z\",\
         \"os\":\"linux\",\"rootfs\":{{\"diff_ids\":[\"{layer_d}\"],\"type\":\"layers\"}}}}"
    )
    .into_bytes();
    let mt_config = "application/vnd.oci.image.config.v1+json";
    let mt_layer = "application/vnd.oci.image.layer.v1.tar";
    let mt_manifest = "application/vnd.oci.image.manifest.v1+json";
    let image = format!(
        "{{\"config\":{{\"digest\":\"{}\",\"mediaType\":\"{mt_config}\",\"size\":{}}},\
         \"layers\":[{{\"digest\":\"{layer_d}\",\"mediaType\":\"{mt_layer}\",\"size\":{}}}],\
         \"mediaType\":\"{mt_manifest}\",\"schemaVersion\":2}}",
        Sha256Digest::of(&config),
        config.len(),
        layer.len()
    )
    .into_bytes();
    let mut rb = RootfsBuilder::new(Limits::default());
    rb.apply_layer(&layer[..], Compression::None, &mut HashSink)
        .unwrap();
    let rootfs = rb.finish().digest;
    let blob = |mt: &str, b: &[u8]| Descriptor {
        media_type: mt.into(),
        digest: Sha256Digest::of(b),
        size: b.len() as u64,
    };
    let m = Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name: "hello".into(),
            version: "1.0".into(),
            created: "2024-01-01T00:00:00Z".into(),
        },
        source: Source {
            reference: "oci:hello:1.0".into(),
            digest: Sha256Digest::of(&image),
        },
        rootfs: RootfsRef { digest: rootfs },
        image: blob(mt_manifest, &image),
        config: blob(mt_config, &config),
        layers: vec![blob(mt_layer, &layer)],
        attestations: vec![],
    };
    m.validate().unwrap();
    let mbytes = m.encode();
    let sigs = [signer.sign(&mbytes)];
    let contents = BundleContents {
        manifest: &m,
        manifest_bytes: &mbytes,
        signatures: &sigs,
    };
    let mut blobs = MemBlobs(
        [image.clone(), config.clone(), layer.clone()]
            .into_iter()
            .map(|b| (Sha256Digest::of(&b), b))
            .collect(),
    );
    let bundle = write_bundle(Vec::new(), &contents, &mut blobs, &mut |_| {}).unwrap();
    write(dir.join("hello.ctp"), &bundle);
    write(
        dir.join("hello.json"),
        format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "bundle": "hello.ctp",
                "sha256": Sha256Digest::of(&bundle).to_string(),
                "bundle_digest": Sha256Digest::of(&mbytes).to_string(),
                "signer_seed_hex": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "key_id": "vector-key",
                "blobs": {
                    "image": String::from_utf8(image).unwrap(),
                    "config": String::from_utf8(config).unwrap(),
                    "layer_hex": hex_encode(&layer),
                },
            }))
            .unwrap()
        )
        .as_bytes(),
    );
    // Header blocks: a file past 8 GiB (base-256 size), an export path needing the prefix.
    let long_path = format!(
        "bundles/{}/cerro/signatures/{}.sig",
        "ab".repeat(32),
        "k".repeat(64)
    );
    let headers = serde_json::json!({
        "blob-8GiB": {
            "path": format!("blobs/sha256/{}", "0".repeat(64)),
            "size": 8u64 << 30,
            "dir": false,
            "hex": hex_encode(writer::header(&format!("blobs/sha256/{}", "0".repeat(64)), 8 << 30, false).unwrap().as_bytes()),
        },
        "export-long-signature-path": {
            "path": long_path,
            "size": 1234,
            "dir": false,
            "hex": hex_encode(writer::header(&long_path, 1234, false).unwrap().as_bytes()),
        },
        "directory": {
            "path": "cerro/",
            "size": 0,
            "dir": true,
            "hex": hex_encode(writer::header("cerro/", 0, true).unwrap().as_bytes()),
        },
    });
    write(
        dir.join("headers.json"),
        format!("{}\n", serde_json::to_string_pretty(&headers).unwrap()).as_bytes(),
    );
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signature files that must not verify over the minimal manifest (spec/signature.md §1.1),
/// each with the reason a verifier gives; all are exit 2.
fn invalid_signatures(
    signer: &Signer,
    minimal: &[u8],
) -> Vec<(&'static str, SignatureFile, &'static str)> {
    let good = signer.sign(minimal);
    let b64 = |b: &[u8]| B64.encode(b);
    let with_key = |pk: &[u8; 32], sig: &[u8; 64]| SignatureFile {
        public_key: b64(pk),
        fingerprint: Fingerprint::of_public_key(pk),
        signature: b64(sig),
        ..good.clone()
    };
    // The identity point (y = 1) as public key, R the identity too, S = 0: [0]B = R + [k]A for
    // every message, so a verifier that does not refuse small-order points accepts it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&identity);
    // S + L in place of S: the same signature with a non-canonical scalar.
    let sig = B64.decode(&good.signature).unwrap();
    let mut s_plus_l = [0u8; 64];
    s_plus_l.copy_from_slice(&sig);
    let mut carry = 0u16;
    for i in 0..32 {
        let v = s_plus_l[32 + i] as u16 + ED25519_L[i] as u16 + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    // A non-canonical encoding (y >= p) of a point that is not of small order.
    let non_canonical = (2u8..19)
        .flat_map(|y| [(y, 0u8), (y, 0x80)])
        .find_map(|(y, sign)| {
            let mut b = [0xffu8; 32];
            b[0] = 0xed + y; // p + y, little-endian: p = 2^255 - 19
            b[31] = 0x7f | sign;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&b).ok()?;
            (!vk.is_weak()).then_some(b)
        })
        .expect("some y in 2..=18 gives a point");
    vec![
        (
            "small-order-key-s-zero",
            with_key(&identity, &forged),
            "public key is a point of small order",
        ),
        (
            "non-canonical-s",
            SignatureFile {
                signature: b64(&s_plus_l),
                ..good.clone()
            },
            "does not match",
        ),
        (
            "non-canonical-key",
            with_key(&non_canonical, &sig.clone().try_into().unwrap()),
            "not a canonical Ed25519 encoding",
        ),
        (
            "unknown-suite",
            SignatureFile {
                suite: "CT-SIG-99".into(),
                ..good.clone()
            },
            "unsupported suite",
        ),
        (
            "other-manifest",
            signer.sign(b"format = \"another manifest\"\n"),
            "does not match",
        ),
    ]
}

/// The Ed25519 group order L, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn hex_seed(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}
