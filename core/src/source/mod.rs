//! Image sources for `ct pack`: an OCI image layout (`oci:DIR[:TAG]`) and a `docker save` archive
//! (`docker-archive:FILE[:NAME:TAG]`). A source resolves one image manifest and serves its blobs;
//! every byte it serves is re-hashed by the bundle writer, so a source is never trusted.

pub mod config;
pub mod docker_archive;
pub mod oci_dir;

use crate::bundle::{BlobSource, BundleError};
use crate::digest::Sha256Digest;
use crate::manifest::Descriptor;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Largest image manifest, index or config read into memory from a source.
pub const JSON_BLOB_MAX_BYTES: u64 = 16 << 20;

/// How a layer is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// What a blob compressed this way is called in messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip-compressed",
            Compression::Zstd => "zstd-compressed",
        }
    }
}

/// The compression a layer media type declares, or `None` if ct does not accept that type.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        LAYER_TAR => Some(Compression::None),
        LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Compression::Gzip),
        LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// The compression the first bytes of a blob show (gzip and zstd have magic numbers; a tar has
/// none at its start, so anything else counts as uncompressed).
pub fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// One image, resolved from a source.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference recorded in the manifest (`oci:NAME:TAG`, with the directory's base name).
    pub reference: String,
    /// The source's identifier for the image.
    pub source_digest: Sha256Digest,
    /// The image manifest's descriptor and bytes (as they will be in the bundle).
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub config: Descriptor,
    pub config_bytes: Vec<u8>,
    pub layers: Vec<Descriptor>,
    /// A name suggested by the source (its tag), used when `--name` is not given.
    pub suggested_name: Option<String>,
}

/// A source of one image: its resolved description and its blobs.
pub trait ImageSource: BlobSource {
    fn image(&self) -> &ResolvedImage;
}

/// Parse an image manifest (OCI or Docker schema 2) into config and layer descriptors, checking
/// every media type ct accepts.
pub fn parse_image_manifest(
    bytes: &[u8],
    declared_media_type: &str,
) -> Result<(Descriptor, Vec<Descriptor>), BundleError> {
    let bad = |s: String| BundleError::malformed(format!("image manifest: {s}"));
    if declared_media_type != OCI_MANIFEST && declared_media_type != DOCKER_MANIFEST {
        return Err(bad(format!("media type {declared_media_type:?} is not an image manifest ct can pack (OCI image manifest or Docker schema 2)")));
    }
    let m = oci_spec::image::ImageManifest::from_reader(bytes).map_err(|e| bad(e.to_string()))?;
    if m.schema_version() != 2 {
        return Err(bad(format!(
            "schemaVersion {} (expected 2)",
            m.schema_version()
        )));
    }
    if let Some(mt) = m.media_type() {
        if mt.to_string() != declared_media_type {
            return Err(bad(format!(
                "it says media type {mt} but was referenced as {declared_media_type}"
            )));
        }
    }
    let conv = |d: &oci_spec::image::Descriptor, what: &str| -> Result<Descriptor, BundleError> {
        let digest = Sha256Digest::parse(d.digest().as_ref()).map_err(|_| {
            bad(format!(
                "{what} digest {} is not sha256 (ct supports sha256 only)",
                d.digest()
            ))
        })?;
        Ok(Descriptor {
            media_type: d.media_type().to_string(),
            digest,
            size: d.size(),
        })
    };
    let config = conv(m.config(), "config")?;
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        return Err(bad(format!(
            "config media type {:?} is not an image config",
            config.media_type
        )));
    }
    let mut layers = Vec::new();
    for (i, l) in m.layers().iter().enumerate() {
        let d = conv(l, &format!("layer {}", i + 1))?;
        if layer_compression(&d.media_type).is_none() {
            return Err(bad(format!("layer {} has media type {:?}; ct packs tar layers that are uncompressed, gzip or zstd (foreign/non-distributable layers are not supported)", i + 1, d.media_type)));
        }
        layers.push(d);
    }
    if layers.len() > crate::manifest::MAX_LAYERS {
        return Err(bad(format!(
            "more than {} layers",
            crate::manifest::MAX_LAYERS
        )));
    }
    Ok((config, layers))
}

/// Check that a layer's first bytes agree with the compression its media type declares.
pub fn check_layer_magic(index: usize, d: &Descriptor, head: &[u8]) -> Result<(), BundleError> {
    let declared = layer_compression(&d.media_type).expect("media types checked when parsing");
    let found = sniff_compression(head);
    if declared != Compression::None && head.is_empty() {
        // A gzip or zstd stream has at least one member or frame (spec/rootfs.md §3.1).
        return Err(BundleError::malformed(format!(
            "layer {index} ({}) is declared {} but it is empty (a compressed stream has at least \
             one member)",
            d.digest, d.media_type
        )));
    }
    if declared != found {
        return Err(BundleError::malformed(format!(
            "layer {index} ({}) is declared {} but its bytes are {}",
            d.digest,
            d.media_type,
            found.describe()
        )));
    }
    Ok(())
}
