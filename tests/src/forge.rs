//! Forged bundles for the store tests: OCI layouts with arbitrary raw layer bytes (hostile tars
//! that `ct pack` refuses to pack) and a chosen rootfs claim, signed with a fixed test key and
//! written by the same core code `ct pack` uses (`OciDir` source, manifest, `Signer`,
//! `write_bundle`). What `ct import` then makes of them is the real code under test.
//!
//! [`TarBuilder`] writes tar streams byte by byte, so a test can say exactly what is wrong with
//! one: a name with `..`, a header whose size lies, a PAX record with a NUL, a stream cut short.

use cerro_core::bundle::{write_bundle, BundleContents};
use cerro_core::keys::{PublicKeyFile, PUBLIC_KEY_FORMAT_V1};
use cerro_core::manifest::{Manifest, Package, RootfsRef, Source, MANIFEST_FORMAT_V1};
use cerro_core::pack::rootfs_of;
use cerro_core::rootfs::{HashSink, Limits, RootfsDigest};
use cerro_core::sign::{Signer, Suite};
use cerro_core::source::oci_dir::OciDir;
use cerro_core::source::ImageSource;
use cerro_core::KeyId;
use serde_json::json;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The key id every forged bundle is signed with.
pub const FORGER_KEY_ID: &str = "forger";
/// The forger's Ed25519 seed (a test key; never use it for anything real).
const FORGER_SEED: [u8; 32] = [0x42; 32];
/// Creation time recorded in every forged image config.
const CREATED: &str = "2024-01-01T00:00:00Z";

const MT_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const MT_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

// ---------------------------------------------------------------------------------------------
// Raw tar streams

/// Tar type flags.
pub mod kind {
    pub const FILE: u8 = b'0';
    pub const HARD_LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const PAX: u8 = b'x';
}

/// One ustar header, every field settable (including a `size` that lies about the data).
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub major: u32,
    pub minor: u32,
}

impl Header {
    pub fn new(name: &[u8], kind: u8) -> Self {
        Self {
            name: name.to_vec(),
            kind,
            mode: if kind == self::kind::DIR {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 1_700_000_000,
            link: Vec::new(),
            major: 0,
            minor: 0,
        }
    }

    /// The 512-byte ustar block, checksum included.
    pub fn block(&self) -> [u8; 512] {
        fn octal(field: &mut [u8], v: u64) {
            let s = format!("{v:0w$o}", w = field.len() - 1);
            assert!(s.len() < field.len(), "{v} does not fit a tar field");
            field[..s.len()].copy_from_slice(s.as_bytes());
            field[s.len()] = 0;
        }
        assert!(
            self.name.len() <= 100,
            "test names fit the ustar name field"
        );
        assert!(
            self.link.len() <= 100,
            "test link names fit the ustar field"
        );
        let mut b = [0u8; 512];
        b[..self.name.len()].copy_from_slice(&self.name);
        octal(&mut b[100..108], self.mode.into());
        octal(&mut b[108..116], self.uid.into());
        octal(&mut b[116..124], self.gid.into());
        octal(&mut b[124..136], self.size);
        octal(&mut b[136..148], self.mtime);
        b[156] = self.kind;
        b[157..157 + self.link.len()].copy_from_slice(&self.link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        octal(&mut b[329..337], self.major.into());
        octal(&mut b[337..345], self.minor.into());
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        let s = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(s.as_bytes());
        b
    }
}

/// Builds a tar stream entry by entry; nothing is checked, so anything can be written.
#[derive(Default)]
pub struct TarBuilder {
    buf: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// A header block alone (its data, if any, must follow with [`TarBuilder::data`]).
    pub fn header(&mut self, h: &Header) -> &mut Self {
        self.buf.extend_from_slice(&h.block());
        self
    }
    /// Data bytes, padded to the next 512-byte boundary.
    pub fn data(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        let pad = (512 - bytes.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    /// Bytes exactly as given (no padding).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }
    /// A header with `size` set to the data's length, then the data.
    pub fn entry(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.size = data.len() as u64;
        self.header(&h).data(data)
    }
    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        self.entry(Header::new(name, kind::FILE), data)
    }
    pub fn dir(&mut self, name: &[u8]) -> &mut Self {
        self.entry(Header::new(name, kind::DIR), b"")
    }
    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let mut h = Header::new(name, kind::SYMLINK);
        h.link = target.to_vec();
        self.entry(h, b"")
    }
    pub fn hard_link(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let mut h = Header::new(name, kind::HARD_LINK);
        h.link = target.to_vec();
        self.entry(h, b"")
    }
    /// A PAX extended header (`x`) with these records, applying to the next entry.
    pub fn pax(&mut self, records: &[(&[u8], &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            // "LEN key=value\n", where LEN counts itself.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(len.to_string().as_bytes());
            body.push(b' ');
            body.extend_from_slice(k);
            body.push(b'=');
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.entry(Header::new(b"PaxHeader", kind::PAX), &body)
    }
    /// The stream so far, without an end-of-archive marker.
    pub fn unterminated(&self) -> Vec<u8> {
        self.buf.clone()
    }
    /// The stream with its end-of-archive marker (two zero blocks).
    pub fn finish(&self) -> Vec<u8> {
        let mut b = self.buf.clone();
        b.extend_from_slice(&[0u8; 1024]);
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Layers, layouts and bundles

/// One layer blob as it goes into the image: its media type, its bytes, and the digest of its
/// uncompressed tar (the image config's `diff_id`).
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// An uncompressed layer.
    pub fn tar(tar: Vec<u8>) -> Self {
        Self {
            media_type: MT_TAR,
            diff_id: crate::sha256(&tar),
            bytes: tar,
        }
    }
    /// A gzip-compressed layer.
    pub fn gzip(tar: &[u8]) -> Self {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(tar).unwrap();
        Self {
            media_type: MT_GZIP,
            diff_id: crate::sha256(tar),
            bytes: e.finish().unwrap(),
        }
    }
}

/// What the forged manifest claims the rootfs digest is.
#[derive(Debug, Clone, Copy)]
pub enum RootfsClaim {
    /// The digest core derives from the layers (as `ct pack` would sign it). Panics if core
    /// refuses the layers: use `Forged` for hostile ones.
    Derived,
    /// A digest no layers give: what a forger (or a broken packer) signs.
    Forged,
}

/// The digest every `RootfsClaim::Forged` bundle claims.
pub fn forged_rootfs_digest() -> RootfsDigest {
    RootfsDigest::from_bytes(*blake3::hash(b"not the rootfs of any layers").as_bytes())
}

/// A forged bundle.
#[derive(Debug, Clone)]
pub struct Forged {
    pub bundle: PathBuf,
    /// The OCI layout it was written from.
    pub layout: PathBuf,
    /// The rootfs digest its signed manifest claims (`ctfs:…`).
    pub rootfs: String,
    /// Its layer digests (`sha256:…`), in order.
    pub layers: Vec<String>,
}

/// The signer of every forged bundle.
pub fn forger() -> Signer {
    Signer::from_seed(KeyId::new(FORGER_KEY_ID).unwrap(), &FORGER_SEED)
}

/// Write the forger's public key file into `dir` (for `ct key import`); returns its path.
pub fn forger_public_key(dir: &Path) -> PathBuf {
    use base64::Engine as _;
    let s = forger();
    let pk = PublicKeyFile {
        format: PUBLIC_KEY_FORMAT_V1.into(),
        suite: Suite::CtSig01.id().into(),
        key_id: s.key_id.clone(),
        fingerprint: s.fingerprint(),
        public_key: base64::engine::general_purpose::STANDARD.encode(s.public_key()),
        not_before: None,
        expires: None,
    };
    let p = dir.join(format!("{FORGER_KEY_ID}.pub"));
    fs::write(&p, pk.encode()).unwrap();
    p
}

/// Write an OCI image layout at `dir` holding one image (tag `name`) with these layers.
pub fn write_layout(dir: &Path, name: &str, layers: &[Layer]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let d = crate::sha256(bytes);
        fs::write(crate::blob_path(dir, &d), bytes).unwrap();
        d
    };
    let config = serde_json::to_vec(&json!({
        "architecture": cerro_core::source::oci_dir::host_arch(),
        "os": "linux",
        "created": CREATED,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": put(&l.bytes), "size": l.bytes.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(&config), "size": config.len()},
        "layers": layer_descs,
    }))
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": put(&manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// The package a forged bundle's manifest names.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub name: String,
    pub version: String,
    /// RFC 3339, UTC (`2024-01-01T00:00:00Z`).
    pub created: String,
}

/// Forge `DIR/NAME.ctp` (its layout in `DIR/NAME-layout`): an image with `layers`, a manifest
/// claiming `claim`, signed by [`forger`], written by the bundle writer `ct pack` uses.
pub fn forge_bundle(dir: &Path, name: &str, layers: &[Layer], claim: RootfsClaim) -> Forged {
    forge_package(
        dir,
        name,
        layers,
        claim,
        &PackageSpec {
            name: name.into(),
            version: "1.0".into(),
            created: CREATED.into(),
        },
    )
}

/// [`forge_bundle`] for a chosen package name, version and creation time (several versions of
/// one package: `DIR/FILE.ctp`).
pub fn forge_package(
    dir: &Path,
    file: &str,
    layers: &[Layer],
    claim: RootfsClaim,
    pkg: &PackageSpec,
) -> Forged {
    let name = file;
    let layout = dir.join(format!("{name}-layout"));
    write_layout(&layout, name, layers);
    let mut src = OciDir::open(&layout, Some(name)).expect("the forged layout opens");
    let img = src.image().clone();
    let rootfs = match claim {
        RootfsClaim::Derived => {
            rootfs_of(
                &mut src,
                &img.layers,
                &mut HashSink,
                &Limits::default(),
                &mut |_| {},
            )
            .expect("RootfsClaim::Derived needs layers core accepts")
            .digest
        }
        RootfsClaim::Forged => forged_rootfs_digest(),
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            created: pkg.created.clone(),
        },
        source: Source {
            reference: img.reference.clone(),
            digest: img.source_digest,
        },
        rootfs: RootfsRef { digest: rootfs },
        image: img.manifest.clone(),
        config: img.config.clone(),
        layers: img.layers.clone(),
        attestations: vec![],
    };
    manifest.validate().expect("the forged manifest is valid");
    let manifest_bytes = manifest.encode();
    let sigs = [forger().sign(&manifest_bytes)];
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes: &manifest_bytes,
        signatures: &sigs,
    };
    let bundle = dir.join(format!("{name}.ctp"));
    let f = fs::File::create(&bundle).unwrap();
    let w = write_bundle(std::io::BufWriter::new(f), &contents, &mut src, &mut |_| {})
        .expect("the bundle writer writes the forged bundle");
    w.into_inner().unwrap().sync_all().unwrap();
    Forged {
        bundle,
        layout,
        rootfs: rootfs.to_string(),
        layers: img.layers.iter().map(|l| l.digest.to_string()).collect(),
    }
}

/// Forge `DIR/NAME.ctp` as `ct pack` would make it with the forger's key — SBOM and provenance
/// included — but with the provenance's DSSE envelope (as JSON) changed by `tamper` before the
/// manifest naming it is signed: the bundle's own signature is valid, and only the envelope can
/// be wrong.
pub fn forge_provenance(
    dir: &Path,
    name: &str,
    layers: &[Layer],
    tamper: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    use cerro_core::pack::{plan, PackOptions, WithAttestations};
    let layout = dir.join(format!("{name}-layout"));
    write_layout(&layout, name, layers);
    let mut src = OciDir::open(&layout, Some(name)).expect("the forged layout opens");
    let key = forger();
    let mut planned = plan(
        &mut src,
        &PackOptions {
            name: Some(name.into()),
            sbom: true,
            provenance: true,
            tool_version: "forge".into(),
            ..PackOptions::default()
        },
        &[&key],
    )
    .expect("the layout plans");
    let at = planned
        .manifest
        .attestations
        .iter_mut()
        .find(|a| a.kind == "provenance")
        .expect("a provenance attestation");
    let body = planned.attestations.remove(&at.digest).unwrap();
    let mut env: serde_json::Value = serde_json::from_slice(&body).unwrap();
    tamper(&mut env);
    let mut body = serde_json::to_vec_pretty(&env).unwrap();
    body.push(b'\n');
    at.digest = cerro_core::Sha256Digest::of(&body);
    at.size = body.len() as u64;
    planned.attestations.insert(at.digest, body);
    let manifest = planned.manifest;
    let manifest_bytes = manifest.encode();
    let sigs = [key.sign(&manifest_bytes)];
    let contents = BundleContents {
        manifest: &manifest,
        manifest_bytes: &manifest_bytes,
        signatures: &sigs,
    };
    let mut blobs = WithAttestations {
        inner: &mut src,
        attestations: &planned.attestations,
    };
    let bundle = dir.join(format!("{name}.ctp"));
    let f = fs::File::create(&bundle).unwrap();
    let w = write_bundle(
        std::io::BufWriter::new(f),
        &contents,
        &mut blobs,
        &mut |_| {},
    )
    .expect("the bundle writer writes the forged bundle");
    w.into_inner().unwrap().sync_all().unwrap();
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_back_with_the_tar_crate() {
        let mut t = TarBuilder::new();
        t.dir(b"d/").file(b"d/f", b"hello").symlink(b"s", b"d/f");
        let bytes = t.finish();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["d/", "d/f", "s"]);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut t = TarBuilder::new();
        t.pax(&[(b"path", &[b'a'; 95])]);
        let body = &t.unterminated()[512..];
        let text = std::str::from_utf8(&body[..body.iter().position(|&b| b == b'\n').unwrap() + 1])
            .unwrap();
        let len: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, text.len());
    }
}
