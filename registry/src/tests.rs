//! The library's operations end to end, without the `ct` binary: a signed bundle made here is
//! pushed to the in-memory registry (`fake::oci`, on 127.0.0.1, stopped when the test ends),
//! found again through the fallback tag or the referrers API, checked against a trust lookup and
//! downloaded into core's bundle writer — byte for byte the bundle written from the local blobs.

use crate::download::MISMATCH_HINT;
use crate::fake::oci::FakeRegistry;
use crate::fetch::{find_artifact, DownloadError, FoundVia, RemoteBundle};
use crate::push::{self, Bundle, PushOptions};
use crate::upload::Outcome;
use crate::{Client, ErrorKind, NoProgress, Reference, RegistryOptions};
use cerro_core::bundle::{write_bundle, BlobSource, BundleContents, BundleError};
use cerro_core::manifest::{Descriptor, Manifest, Package, RootfsRef, Source, MANIFEST_FORMAT_V1};
use cerro_core::sign::{SignatureFile, Signer};
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::collections::BTreeMap;
use std::io::{Read, Write};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A signed bundle's parts: the file holding config and layers, and where each starts.
struct Local {
    file: std::fs::File,
    offsets: BTreeMap<Sha256Digest, u64>,
    blobs: BTreeMap<Sha256Digest, Vec<u8>>,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    image_manifest: Vec<u8>,
    summary: Vec<u8>,
    signatures: Vec<SignatureFile>,
    signer: Signer,
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Sha256Digest::of(bytes),
        size: bytes.len() as u64,
    }
}

/// A bundle of one config and two layers (one larger than a chunk would be in a real push),
/// signed by key `k`; `source` is recorded as where it was packed from.
fn local_bundle(source: &str) -> Local {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layers: Vec<Vec<u8>> = vec![
        (0..300_000u32).map(|i| (i % 251) as u8).collect(),
        b"a small layer".to_vec(),
    ];
    let config_d = descriptor("application/vnd.oci.image.config.v1+json", &config);
    let layer_ds: Vec<Descriptor> = layers
        .iter()
        .map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l))
        .collect();
    let image_manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_d.media_type, "digest": config_d.digest.to_string(), "size": config_d.size},
        "layers": layer_ds.iter().map(|d| serde_json::json!({
            "mediaType": d.media_type, "digest": d.digest.to_string(), "size": d.size})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest = Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name: "demo".into(),
            version: "1.0".into(),
            created: "2026-01-02T03:04:05Z".into(),
        },
        source: Source {
            reference: source.into(),
            digest: Sha256Digest::of(&image_manifest),
        },
        rootfs: RootfsRef {
            digest: cerro_core::rootfs::RootfsDigest::from_bytes([4; 32]),
        },
        image: descriptor(OCI_MANIFEST, &image_manifest),
        config: config_d,
        layers: layer_ds,
        attestations: vec![],
    };
    let manifest_bytes = manifest.encode();
    let signer = Signer::from_seed(KeyId::new("k").unwrap(), &[7; 32]);
    let signatures = vec![signer.sign(&manifest_bytes)];
    let summary = cerro_core::bundle::layout::summary_json(&manifest, &manifest_bytes);
    let mut file = tempfile::tempfile().unwrap();
    let (mut offsets, mut blobs, mut at) = (BTreeMap::new(), BTreeMap::new(), 0u64);
    for b in std::iter::once(&config).chain(&layers) {
        file.write_all(b).unwrap();
        offsets.insert(Sha256Digest::of(b), at);
        blobs.insert(Sha256Digest::of(b), b.clone());
        at += b.len() as u64;
    }
    blobs.insert(manifest.image.digest, image_manifest.clone());
    Local {
        file,
        offsets,
        blobs,
        manifest,
        manifest_bytes,
        image_manifest,
        summary,
        signatures,
        signer,
    }
}

impl Local {
    fn push(&self, dest: &str) -> crate::Result<push::Pushed> {
        let bundle = Bundle {
            file: &self.file,
            offsets: &self.offsets,
            manifest: &self.manifest,
            manifest_bytes: &self.manifest_bytes,
            image_manifest: &self.image_manifest,
            summary: &self.summary,
            signatures: &self.signatures,
        };
        let opts = PushOptions {
            registry: RegistryOptions::default(),
            jobs: 3,
        };
        push::push(&bundle, &push::destination(dest)?, &opts, &NoProgress)
    }

    /// The bundle written from the local blobs (what a fetch must reproduce).
    fn bundle_bytes(&self) -> Vec<u8> {
        struct Mem<'a>(&'a BTreeMap<Sha256Digest, Vec<u8>>);
        impl BlobSource for Mem<'_> {
            fn open_blob(
                &mut self,
                d: &Sha256Digest,
                _: u64,
            ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
                Ok(Box::new(&self.0[d][..]))
            }
        }
        write_bundle(
            Vec::new(),
            &self.contents(),
            &mut Mem(&self.blobs),
            &mut |_| {},
        )
        .unwrap()
    }

    fn contents(&self) -> BundleContents<'_> {
        BundleContents {
            manifest: &self.manifest,
            manifest_bytes: &self.manifest_bytes,
            signatures: &self.signatures,
        }
    }

    fn trust(&self) -> impl Fn(&Fingerprint) -> Option<KeyId> + '_ {
        move |fp: &Fingerprint| {
            (*fp == self.signer.fingerprint()).then(|| self.signer.key_id.clone())
        }
    }
}

/// Download `remote` into memory through core's bundle writer.
fn download(remote: &RemoteBundle) -> Result<Vec<u8>, DownloadError<BundleError>> {
    let staging = tempfile::tempdir().unwrap();
    remote.download(staging.path(), 3, &NoProgress, |contents, src| {
        write_bundle(Vec::new(), contents, src, &mut |_| {})
    })
}

#[test]
fn push_then_fetch_through_the_fallback_tag_gives_the_same_bundle() {
    let reg = FakeRegistry::start(false);
    let local = local_bundle("oci:somewhere");
    let dest = format!("{}/team/demo:1.0", reg.host());
    let p = local.push(&dest).unwrap();
    assert_eq!(p.destination.to_string(), dest);
    assert_eq!(p.image_digest, local.manifest.image.digest);
    assert!(!p.referrers_api);
    // config, 2 layers, artifact config, manifest, summary, 1 signature
    assert_eq!(p.blobs.len(), 7, "{:?}", p.blobs);
    assert!(p.blobs.iter().all(|b| b.outcome == Outcome::Uploaded));
    assert!(
        p.blobs.windows(2).all(|w| w[0].size >= w[1].size),
        "largest first"
    );
    assert!(p.bytes_sent >= 300_000);

    // Again: every blob is already there, nothing is sent.
    let again = local.push(&dest).unwrap();
    assert!(again.blobs.iter().all(|b| b.outcome == Outcome::Present));
    assert_eq!(again.bytes_sent, 0);
    assert_eq!(again.artifact_digest, p.artifact_digest);

    let remote = RemoteBundle::resolve(&dest, &RegistryOptions::default()).unwrap();
    assert_eq!(remote.found_via, FoundVia::Tag);
    assert_eq!(remote.artifact_digest, p.artifact_digest);
    assert_eq!(remote.manifest, local.manifest);
    remote.check_signatures(&local.trust()).unwrap();
    assert_eq!(download(&remote).unwrap(), local.bundle_bytes());
}

#[test]
fn the_referrers_api_is_used_when_the_registry_has_it() {
    let reg = FakeRegistry::start(true);
    let local = local_bundle("oci:somewhere");
    let dest = format!("{}/demo:2", reg.host());
    let p = local.push(&dest).unwrap();
    assert!(p.referrers_api);
    let r = Reference::parse(&dest).unwrap();
    let c = Client::connect(&r, &RegistryOptions::default(), vec![]).unwrap();
    assert_eq!(
        find_artifact(&c, "demo", &p.image_digest).unwrap(),
        Some((p.artifact_digest, FoundVia::ReferrersApi))
    );
    let remote = RemoteBundle::resolve(&dest, &RegistryOptions::default()).unwrap();
    assert_eq!(remote.found_via, FoundVia::ReferrersApi);
    assert_eq!(download(&remote).unwrap(), local.bundle_bytes());
}

#[test]
fn blobs_of_the_source_repository_are_mounted() {
    let reg = FakeRegistry::start(false);
    let local = local_bundle("oci:x");
    local.push(&format!("{}/src/app:1", reg.host())).unwrap();
    let packed_from = local_bundle(&format!("docker://{}/src/app:1", reg.host()));
    let p = packed_from.push(&format!("{}/dst:1", reg.host())).unwrap();
    let mounted: Vec<&str> = p
        .blobs
        .iter()
        .filter(|b| b.outcome == Outcome::Mounted)
        .map(|b| b.role.as_str())
        .collect();
    assert_eq!(
        mounted,
        ["layer 1", "image config", "layer 2"],
        "{:?}",
        p.blobs
    );
}

#[test]
fn a_plain_image_has_no_artifact_and_a_digest_is_no_destination() {
    let reg = FakeRegistry::start(false);
    let local = local_bundle("oci:x");
    let dest = format!("{}/plain:1", reg.host());
    let p = local.push(&dest).unwrap();
    // Remove the artifact: what is left is a plain image.
    let art = p.artifact_digest.to_string();
    reg.state
        .lock()
        .unwrap()
        .manifests
        .retain(|(_, reference), _| *reference != art && *reference != p.referrers_tag);
    let e = RemoteBundle::resolve(&dest, &RegistryOptions::default())
        .err()
        .expect("no artifact");
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.message.contains("has no Cerro bundle attached"), "{e}");
    assert!(e
        .hint
        .unwrap()
        .contains(&format!("ct fetch {dest} --create")));

    let missing = RemoteBundle::resolve(
        &format!("{}/nothing:1", reg.host()),
        &RegistryOptions::default(),
    )
    .err()
    .expect("no image");
    assert_eq!(missing.kind, ErrorKind::NotFound);

    let e = push::destination(&format!("{}/x@{}", reg.host(), local.manifest.image.digest))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
}

#[test]
fn untrusted_signers_and_tampered_blobs_are_refused() {
    let reg = FakeRegistry::start(false);
    let local = local_bundle("oci:x");
    let dest = format!("{}/demo:1", reg.host());
    local.push(&dest).unwrap();
    let remote = RemoteBundle::resolve(&dest, &RegistryOptions::default()).unwrap();
    let e = remote
        .check_signatures(&|_: &Fingerprint| None)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::KeyNotTrusted);
    assert!(
        e.message.contains("signed by no key in the trust store"),
        "{e}"
    );

    // The registry now serves another layer under the small layer's digest.
    let small = &local.manifest.layers[1].digest;
    reg.state
        .lock()
        .unwrap()
        .blobs
        .insert(small.to_string(), b"A small layer".to_vec());
    match download(&remote) {
        Err(DownloadError::Registry(e)) => {
            assert_eq!(e.kind, ErrorKind::DigestMismatch);
            assert!(e.message.contains(&small.to_string()), "{e}");
            assert_eq!(e.hint.as_deref(), Some(MISMATCH_HINT));
        }
        Err(DownloadError::Writer(BundleError::Mismatch(m))) => {
            // Streamed straight into the writer: the writer saw the wrong bytes itself.
            assert!(m.contains(&small.to_string()), "{m}");
        }
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}
