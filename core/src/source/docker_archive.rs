//! `docker-archive:FILE[:NAME:TAG]` — a `docker save` tarball, converted to an OCI image: the
//! config blob is kept verbatim, each layer file becomes a layer blob (its media type from its
//! magic bytes), and a deterministic OCI image manifest is written for them.

use super::{
    Compression, ImageSource, ResolvedImage, JSON_BLOB_MAX_BYTES, LAYER_GZIP, LAYER_TAR,
    LAYER_ZSTD, OCI_CONFIG, OCI_MANIFEST,
};
use crate::archive::{ArchiveError, ArchiveReader, Dialect, TarKind};
use crate::bundle::{BlobSource, BundleError};
use crate::digest::{hash_reader, Sha256Digest};
use crate::manifest::Descriptor;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most entries read from a docker archive's tar index (a bound for hostile input).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub struct DockerArchive {
    path: PathBuf,
    file: File,
    /// Where each blob's bytes are: in the archive, or generated here (the OCI manifest).
    blobs: BTreeMap<Sha256Digest, BlobAt>,
    image: ResolvedImage,
}

enum BlobAt {
    Archive { offset: u64, size: u64 },
    Memory(Vec<u8>),
}

fn io(ctx: String) -> impl FnOnce(std::io::Error) -> BundleError {
    move |e| BundleError::io(ctx, e)
}

fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl DockerArchive {
    /// Open `path`; `name_tag` picks an image by one of its RepoTags when the archive holds several.
    pub fn open(path: &Path, name_tag: Option<&str>) -> Result<Self, BundleError> {
        let mut file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
        let members = index(&mut file, path)?;
        let resolve = |name: &str| -> Result<(u64, u64), BundleError> {
            let mut n = normalize(name);
            for _ in 0..8 {
                match members.get(&n) {
                    Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                    Some(Member::Link(target)) => {
                        let dir = n.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        n = normalize(&format!("{dir}/{target}"));
                    }
                    None => break,
                }
            }
            Err(BundleError::malformed(format!(
                "{}: the archive has no file {name:?}",
                path.display()
            )))
        };
        let read_small = |file: &mut File, name: &str| -> Result<Vec<u8>, BundleError> {
            let (offset, size) = resolve(name)?;
            if size > JSON_BLOB_MAX_BYTES {
                return Err(BundleError::malformed(format!(
                    "{name} in {} is too large ({size} bytes)",
                    path.display()
                )));
            }
            let mut v = vec![0u8; size as usize];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut v))
                .map_err(io(format!("reading {name} from {}", path.display())))?;
            Ok(v)
        };
        let mj = read_small(&mut file, "manifest.json").map_err(|e| match e {
            BundleError::Malformed(_) => BundleError::malformed(format!("{} is not a docker-archive (no manifest.json); make one with `docker save` or `skopeo copy … docker-archive:FILE`", path.display())),
            e => e,
        })?;
        let entries: Vec<ManifestEntry> = serde_json::from_slice(&mj).map_err(|e| {
            BundleError::malformed(format!("{}: manifest.json: {e}", path.display()))
        })?;
        let entry = match name_tag {
            Some(t) => entries
                .iter()
                .find(|e| {
                    e.repo_tags
                        .iter()
                        .flatten()
                        .any(|r| r == t || r.ends_with(&format!("/{t}")))
                })
                .ok_or_else(|| {
                    BundleError::malformed(format!("{} has no image tagged {t:?}", path.display()))
                })?,
            None if entries.len() == 1 => &entries[0],
            None => {
                return Err(BundleError::malformed(format!(
                    "{} holds {} images; name one as docker-archive:FILE:NAME:TAG",
                    path.display(),
                    entries.len()
                )))
            }
        };
        if entry.layers.len() > crate::manifest::MAX_LAYERS {
            return Err(BundleError::malformed("too many layers"));
        }
        let config_bytes = read_small(&mut file, &entry.config)?;
        let config = Descriptor {
            media_type: OCI_CONFIG.into(),
            digest: Sha256Digest::of(&config_bytes),
            size: config_bytes.len() as u64,
        };
        let mut blobs = BTreeMap::new();
        blobs.insert(config.digest, BlobAt::Memory(config_bytes.clone()));
        let mut layers = Vec::new();
        for (i, l) in entry.layers.iter().enumerate() {
            let (offset, size) = resolve(l)?;
            file.seek(SeekFrom::Start(offset))
                .map_err(io(format!("reading {l}")))?;
            let mut head = [0u8; 4];
            let n = (&mut file)
                .take(4)
                .read(&mut head)
                .map_err(io(format!("reading {l}")))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(io(format!("reading {l}")))?;
            let (digest, len) =
                hash_reader((&mut file).take(size)).map_err(io(format!("reading layer {l}")))?;
            if len != size {
                return Err(BundleError::malformed(format!(
                    "layer {} ({l}) is truncated in {}",
                    i + 1,
                    path.display()
                )));
            }
            let media_type = match super::sniff_compression(&head[..n]) {
                Compression::Gzip => LAYER_GZIP,
                Compression::Zstd => LAYER_ZSTD,
                Compression::None => LAYER_TAR,
            };
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest,
                size,
            });
            blobs.insert(digest, BlobAt::Archive { offset, size });
        }
        let manifest_bytes = oci_manifest(&config, &layers);
        let manifest = Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Sha256Digest::of(&manifest_bytes),
            size: manifest_bytes.len() as u64,
        };
        blobs.insert(manifest.digest, BlobAt::Memory(manifest_bytes.clone()));
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "archive".into());
        let first_tag = entry.repo_tags.iter().flatten().next().cloned();
        let reference = match name_tag {
            Some(t) => format!("docker-archive:{base}:{t}"),
            None => format!("docker-archive:{base}"),
        };
        let suggested_name = first_tag.as_deref().map(|t| {
            let repo = t.rsplit_once(':').map(|(r, _)| r).unwrap_or(t);
            repo.rsplit('/').next().unwrap_or(repo).to_string()
        });
        Ok(Self {
            path: path.to_path_buf(),
            file,
            blobs,
            image: ResolvedImage {
                reference,
                source_digest: config.digest,
                manifest,
                manifest_bytes,
                config,
                config_bytes,
                layers,
                suggested_name,
            },
        })
    }
}

/// The OCI image manifest for a converted docker archive: compact JSON, fixed key order.
fn oci_manifest(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    let d = |d: &Descriptor| serde_json::json!({"mediaType": d.media_type, "digest": d.digest.to_string(), "size": d.size});
    let v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": d(config),
        "layers": layers.iter().map(d).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&v).expect("json values serialize")
}

/// Map every member of the archive to where its data is (or what it links to), with the
/// bounded archive reader (layer rules: a `docker save` tar is read like any tar).
fn index(file: &mut File, path: &Path) -> Result<BTreeMap<String, Member>, BundleError> {
    let len = file
        .metadata()
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    let mut ar = ArchiveReader::seekable(&mut *file, len, MAX_ENTRIES as u64 * 4, Dialect::Layer);
    let mut out = BTreeMap::new();
    let bad = |e: ArchiveError| match e {
        ArchiveError::Io(e) => BundleError::io(format!("reading {}", path.display()), e),
        e => BundleError::malformed(format!(
            "{} is not a readable tar archive: {e}",
            path.display()
        )),
    };
    while let Some(entry) = ar.next_entry().map_err(bad)? {
        if out.len() >= MAX_ENTRIES {
            return Err(BundleError::malformed(format!(
                "{} has more than {MAX_ENTRIES} entries",
                path.display()
            )));
        }
        let name = normalize(&String::from_utf8_lossy(&entry.name));
        match entry.kind {
            TarKind::Regular => {
                out.insert(
                    name,
                    Member::File {
                        offset: entry.data_offset,
                        size: entry.size,
                    },
                );
            }
            TarKind::Symlink => {
                out.insert(
                    name,
                    Member::Link(String::from_utf8_lossy(&entry.link).into_owned()),
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

impl BlobSource for DockerArchive {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        match self.blobs.get(digest) {
            Some(BlobAt::Memory(v)) => Ok(Box::new(&v[..])),
            Some(BlobAt::Archive { offset, size: have }) => {
                if *have != size {
                    return Err(BundleError::Mismatch(format!(
                        "blob {digest}: {have} bytes in the archive, {size} expected"
                    )));
                }
                self.file
                    .seek(SeekFrom::Start(*offset))
                    .map_err(io(format!("reading {}", self.path.display())))?;
                Ok(Box::new((&mut self.file).take(size)))
            }
            None => Err(BundleError::malformed(format!(
                "blob {digest} is not in {}",
                self.path.display()
            ))),
        }
    }
}

impl ImageSource for DockerArchive {
    fn image(&self) -> &ResolvedImage {
        &self.image
    }
}
