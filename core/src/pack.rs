//! Plans a bundle from a resolved image: checks layers, reads the creation time and version from
//! the image config, and builds the manifest. Nothing here reads the clock or the host.

use crate::bundle::BlobSource;
use crate::bundle::BundleError;
use crate::manifest::Attestation;
use crate::manifest::RootfsRef;
use crate::manifest::{
    canonical_time, is_valid_name, Descriptor, Manifest, Package, Source, MANIFEST_FORMAT_V1,
};
use crate::provenance;
use crate::rootfs::{ContentSink, HashSink, LayerError, Limits, Rootfs, RootfsBuilder};
use crate::sbom::{self, CaptureSink};
use crate::source::{check_layer_magic, layer_compression, ImageSource};
use crate::Sha256Digest;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Config label whose value is used as the package version when `--version` is not given.
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";
/// Version recorded when neither `--version` nor the label gives one.
pub const UNVERSIONED: &str = "unversioned";
/// Creation time recorded when the image config has none (the Unix epoch; `ct explain` says so).
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

#[derive(Debug, Default, Clone)]
pub struct PackOptions {
    pub name: Option<String>,
    pub version: Option<String>,
    /// Bounds on the layers while the rootfs is derived (a layer past one is refused).
    pub limits: Limits,
    /// Add an SPDX SBOM of the rootfs's package databases (attestation kind `sbom`).
    pub sbom: bool,
    /// Add SLSA provenance in a DSSE envelope signed by the signers given to [`plan`]
    /// (attestation kind `provenance`).
    pub provenance: bool,
    /// This `ct`'s version: the SBOM's creator is `ct-VERSION`, the provenance's builder
    /// version is VERSION.
    pub tool_version: String,
}

/// A planned bundle: its manifest, and the bodies of the attestations it names (by digest),
/// which the image source does not have.
#[derive(Debug, Clone)]
pub struct Planned {
    pub manifest: Manifest,
    pub attestations: BTreeMap<Sha256Digest, Vec<u8>>,
}

/// The image source's blobs and the planned attestations, as one source for the bundle writer.
pub struct WithAttestations<'a> {
    pub inner: &'a mut dyn BlobSource,
    pub attestations: &'a BTreeMap<Sha256Digest, Vec<u8>>,
}

impl BlobSource for WithAttestations<'_> {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        match self.attestations.get(digest) {
            Some(b) if b.len() as u64 == size => Ok(Box::new(&b[..])),
            Some(b) => Err(BundleError::Mismatch(format!(
                "attestation {digest} is {} bytes, not {size}",
                b.len()
            ))),
            None => self.inner.open_blob(digest, size),
        }
    }
}

/// Build the manifest for `src`. Reads each layer's first bytes to check its compression.
/// `signers` are the keys that will sign the bundle; they also sign the provenance.
pub fn plan(
    src: &mut dyn ImageSource,
    opts: &PackOptions,
    signers: &[&crate::sign::Signer],
) -> Result<Planned, BundleError> {
    let img = src.image().clone();
    let cfg: serde_json::Value = serde_json::from_slice(&img.config_bytes).map_err(|e| {
        BundleError::malformed(format!("image config {}: not JSON: {e}", img.config.digest))
    })?;
    let created = match cfg.get("created").and_then(|c| c.as_str()) {
        Some(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
                BundleError::malformed(format!(
                    "image config: created {s:?} is not an RFC 3339 time: {e}"
                ))
            })?;
            let t = t.with_timezone(&chrono::Utc);
            if crate::manifest::is_leap_second(&t) {
                return Err(BundleError::malformed(format!(
                    "image config: created {s:?} is a leap second (:60); a manifest cannot record \
                     one (spec/bundle.md §4.2): fix the image's config"
                )));
            }
            canonical_time(&t)
        }
        None => EPOCH.to_string(),
    };
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => img.suggested_name.clone().unwrap_or_default(),
    };
    if !is_valid_name(&name) {
        return Err(BundleError::malformed(format!("{name:?} is not a valid bundle name (1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit); give one with --name")));
    }
    let version = opts
        .version
        .clone()
        .or_else(|| {
            cfg.pointer("/config/Labels")
                .and_then(|l| l.get(VERSION_LABEL))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| UNVERSIONED.to_string());
    for (i, l) in img.layers.iter().enumerate() {
        let mut head = Vec::with_capacity(4);
        src.open_blob(&l.digest, l.size)?
            .take(4)
            .read_to_end(&mut head)
            .map_err(|e| BundleError::io(format!("reading layer {}", i + 1), e))?;
        check_layer_magic(i + 1, l, &head)?;
    }
    let mut hash = HashSink;
    let mut capture = CaptureSink {
        inner: &mut hash,
        captured: HashMap::new(),
    };
    let rootfs = rootfs_of(src, &img.layers, &mut capture, &opts.limits, &mut |_| {})?;
    let mut attestations = BTreeMap::new();
    let mut listed = Vec::new();
    let mut attest = |kind: &str, media_type: &str, body: Vec<u8>| {
        let digest = Sha256Digest::of(&body);
        listed.push(Attestation {
            kind: kind.into(),
            media_type: media_type.into(),
            digest,
            size: body.len() as u64,
        });
        attestations.insert(digest, body);
    };
    if opts.sbom {
        let body = sbom::spdx(
            &sbom::Subject {
                name: &name,
                version: &version,
                image: &img.manifest.digest,
                created: &created,
                tool: &format!("ct-{}", opts.tool_version),
            },
            &sbom::packages_of(&rootfs, &capture.captured),
        );
        attest("sbom", sbom::SPDX_MEDIA_TYPE, body);
    }
    if opts.provenance && !signers.is_empty() {
        let statement = provenance::statement(&provenance::Params {
            name: &name,
            version: &version,
            created: &created,
            image: &img.manifest.digest,
            source: &img.reference,
            source_digest: &img.source_digest,
            sbom: opts.sbom,
            tool_version: &opts.tool_version,
        });
        attest(
            "provenance",
            provenance::DSSE_MEDIA_TYPE,
            provenance::envelope(&statement, signers),
        );
    }
    let m = Manifest {
        format: MANIFEST_FORMAT_V1.into(),
        package: Package {
            name,
            version,
            created,
        },
        source: Source {
            reference: img.reference.clone(),
            digest: img.source_digest,
        },
        rootfs: RootfsRef {
            digest: rootfs.digest,
        },
        image: img.manifest.clone(),
        config: img.config.clone(),
        layers: img
            .layers
            .iter()
            .map(|l| Descriptor { ..l.clone() })
            .collect(),
        attestations: listed,
    };
    m.validate()
        .map_err(|e| BundleError::malformed(e.to_string()))?;
    Ok(Planned {
        manifest: m,
        attestations,
    })
}

/// Apply `layers` in order (OCI layer rules, spec/rootfs.md) and seal the merged tree. Regular
/// files go to `sink`; `progress` gets the compressed bytes read so far. A refused layer is
/// malformed input (exit 10) and the message names the layer and the entry.
pub fn rootfs_of(
    src: &mut dyn BlobSource,
    layers: &[Descriptor],
    sink: &mut dyn ContentSink,
    limits: &Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<Rootfs, BundleError> {
    let mut builder = RootfsBuilder::new(*limits);
    let mut done = 0u64;
    for (i, l) in layers.iter().enumerate() {
        let compression = layer_compression(&l.media_type).ok_or_else(|| {
            BundleError::malformed(format!(
                "layer {} has media type {:?}, which ct cannot apply",
                i + 1,
                l.media_type
            ))
        })?;
        let blob = src.open_blob(&l.digest, l.size)?;
        if let Err(e) = builder.apply_layer(blob, compression, sink) {
            // Bytes that do not hash to the layer's digest are a corrupt blob (exit 1), whatever
            // the layer parser made of them; only intact layers are refused as malformed.
            let (actual, size) = crate::digest::hash_reader(src.open_blob(&l.digest, l.size)?)
                .map_err(|e| BundleError::io(format!("reading layer {}", i + 1), e))?;
            if actual != l.digest || size != l.size {
                return Err(BundleError::Mismatch(format!(
                    "layer {} {}: found {size} bytes hashing to {actual}; the source is corrupt",
                    i + 1,
                    l.digest
                )));
            }
            return Err(layer_error(i, l, e));
        }
        done += l.size;
        progress(done);
    }
    Ok(builder.finish())
}

fn layer_error(i: usize, l: &Descriptor, e: LayerError) -> BundleError {
    let what = format!("layer {} ({})", i + 1, l.digest);
    match e {
        LayerError::Refused { entry, problem, .. } => {
            BundleError::malformed(format!("{what}, {entry}: {problem}"))
        }
        LayerError::Io { source, .. } | LayerError::Sink { source, .. } => {
            BundleError::io(what, source)
        }
    }
}
