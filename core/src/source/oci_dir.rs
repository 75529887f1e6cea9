//! `oci:DIR[:TAG]` — an OCI image layout directory. Picks the image by its
//! `org.opencontainers.image.ref.name` tag (or the only one), follows an image index to the
//! host's platform, and serves blobs from `DIR/blobs/sha256/`.

use super::{
    parse_image_manifest, ImageSource, ResolvedImage, DOCKER_MANIFEST_LIST, JSON_BLOB_MAX_BYTES,
    OCI_INDEX,
};
use crate::bundle::layout::REF_NAME_ANNOTATION;
use crate::bundle::{BlobSource, BundleError};
use crate::digest::Sha256Digest;
use crate::manifest::Descriptor;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct OciDir {
    dir: PathBuf,
    image: ResolvedImage,
}

fn io(ctx: String) -> impl FnOnce(std::io::Error) -> BundleError {
    move |e| BundleError::io(ctx, e)
}

/// The OCI architecture name of this host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

impl OciDir {
    /// Open the layout at `dir` and resolve the image tagged `tag` (or the only image).
    pub fn open(dir: &Path, tag: Option<&str>) -> Result<Self, BundleError> {
        let layout_file = dir.join("oci-layout");
        let layout = std::fs::read(&layout_file)
            .map_err(io(format!("reading {}", layout_file.display())))?;
        let v: serde_json::Value = serde_json::from_slice(&layout).map_err(|e| {
            BundleError::malformed(format!("{}: not JSON: {e}", layout_file.display()))
        })?;
        if v.get("imageLayoutVersion").and_then(|x| x.as_str()) != Some("1.0.0") {
            return Err(BundleError::malformed(format!(
                "{} does not declare imageLayoutVersion 1.0.0",
                layout_file.display()
            )));
        }
        let index_file = dir.join("index.json");
        let index = read_limited(&index_file)?;
        let index: serde_json::Value = serde_json::from_slice(&index).map_err(|e| {
            BundleError::malformed(format!("{}: not JSON: {e}", index_file.display()))
        })?;
        let list = index
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let tag_of = |d: &serde_json::Value| {
            d.pointer(&format!(
                "/annotations/{}",
                REF_NAME_ANNOTATION.replace('/', "~1")
            ))
            .and_then(|x| x.as_str())
            .map(str::to_string)
        };
        let chosen = match tag {
            Some(t) => list
                .iter()
                .find(|d| tag_of(d).as_deref() == Some(t))
                .ok_or_else(|| {
                    let tags: Vec<String> = list.iter().filter_map(tag_of).collect();
                    BundleError::malformed(format!(
                        "{} has no image tagged {t:?} (tags: {})",
                        dir.display(),
                        if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
                        }
                    ))
                })?,
            None if list.len() == 1 => &list[0],
            None => {
                let tags: Vec<String> = list.iter().filter_map(tag_of).collect();
                return Err(BundleError::malformed(format!(
                    "{} holds {} images; name one as oci:DIR:TAG (tags: {})",
                    dir.display(),
                    list.len(),
                    tags.join(", ")
                )));
            }
        };
        let mut desc = descriptor(chosen, "index.json")?;
        let source_digest = desc.digest;
        let mut depth = 0;
        while desc.media_type == OCI_INDEX || desc.media_type == DOCKER_MANIFEST_LIST {
            depth += 1;
            if depth > 4 {
                return Err(BundleError::malformed(
                    "image indexes nest more than 4 deep",
                ));
            }
            let bytes = read_blob(dir, &desc)?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                BundleError::malformed(format!("image index {}: not JSON: {e}", desc.digest))
            })?;
            let arch = host_arch();
            let pick = v
                .get("manifests")
                .and_then(|m| m.as_array())
                .and_then(|m| {
                    m.iter().find(|d| {
                        d.pointer("/platform/os").and_then(|x| x.as_str()) == Some("linux")
                            && d.pointer("/platform/architecture").and_then(|x| x.as_str())
                                == Some(arch)
                    })
                })
                .ok_or_else(|| {
                    BundleError::malformed(format!(
                        "image index {} has no linux/{arch} image",
                        desc.digest
                    ))
                })?;
            desc = descriptor(pick, "image index")?;
        }
        let manifest_bytes = read_blob(dir, &desc)?;
        let (config, layers) = parse_image_manifest(&manifest_bytes, &desc.media_type)?;
        let config_bytes = read_blob(dir, &config)?;
        let base = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "layout".into());
        let reference = match tag {
            Some(t) => format!("oci:{base}:{t}"),
            None => format!("oci:{base}"),
        };
        let suggested_name = tag
            .map(str::to_string)
            .or_else(|| tag_of(chosen))
            .or(Some(base))
            .map(|n| n.split(':').next().unwrap_or("").to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            image: ResolvedImage {
                reference,
                source_digest,
                manifest: desc,
                manifest_bytes,
                config,
                config_bytes,
                layers,
                suggested_name,
            },
        })
    }
}

fn descriptor(v: &serde_json::Value, what: &str) -> Result<Descriptor, BundleError> {
    let bad = |s: &str| BundleError::malformed(format!("{what}: descriptor {s}"));
    let media_type = v
        .get("mediaType")
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad("has no mediaType"))?
        .to_string();
    let digest = v
        .get("digest")
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad("has no digest"))?;
    let digest = Sha256Digest::parse(digest).map_err(|e| bad(&e.to_string()))?;
    let size = v
        .get("size")
        .and_then(|x| x.as_u64())
        .ok_or_else(|| bad("has no size"))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
    })
}

fn read_limited(path: &Path) -> Result<Vec<u8>, BundleError> {
    let f = File::open(path).map_err(io(format!("reading {}", path.display())))?;
    let mut v = Vec::new();
    f.take(JSON_BLOB_MAX_BYTES + 1)
        .read_to_end(&mut v)
        .map_err(io(format!("reading {}", path.display())))?;
    if v.len() as u64 > JSON_BLOB_MAX_BYTES {
        return Err(BundleError::malformed(format!(
            "{} is larger than {JSON_BLOB_MAX_BYTES} bytes",
            path.display()
        )));
    }
    Ok(v)
}

/// Read a small blob whole and check its digest and size.
fn read_blob(dir: &Path, d: &Descriptor) -> Result<Vec<u8>, BundleError> {
    if d.size > JSON_BLOB_MAX_BYTES {
        return Err(BundleError::malformed(format!(
            "blob {} claims {} bytes, more than a manifest or config may have",
            d.digest, d.size
        )));
    }
    let bytes = read_limited(&blob_path(dir, &d.digest))?;
    let got = Sha256Digest::of(&bytes);
    if got != d.digest || bytes.len() as u64 != d.size {
        return Err(BundleError::Mismatch(format!(
            "blob {} in {}: found {} bytes hashing to {got}; the layout is corrupt",
            d.digest,
            dir.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn blob_path(dir: &Path, d: &Sha256Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

impl BlobSource for OciDir {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        let p = blob_path(&self.dir, digest);
        let f = File::open(&p).map_err(io(format!("opening blob {}", p.display())))?;
        let len = f
            .metadata()
            .map_err(io(format!("reading {}", p.display())))?
            .len();
        if len != size {
            return Err(BundleError::Mismatch(format!(
                "blob {digest} in {}: the file has {len} bytes, its descriptor says {size}",
                self.dir.display()
            )));
        }
        Ok(Box::new(f))
    }
}

impl ImageSource for OciDir {
    fn image(&self) -> &ResolvedImage {
        &self.image
    }
}
