//! `docker://HOST/REPO[:TAG|@DIGEST]` as a `ct pack` source: resolves the tag (following an image
//! index to linux/<host arch>, as `oci:` does), keeps the manifest and config in memory and
//! downloads the layers, several at once, to a temporary directory beside the output, checking
//! each digest as it streams. The pack path then re-hashes every byte it copies, as for any source.

use crate::client::{Client, RegistryOptions};
use crate::download::{get_blob_to_file, short};
use crate::error::{Error, Result};
use crate::manifests::{get_manifest, pick_platform};
use crate::progress::Progress;
use crate::reference::Reference;
use cerro_core::bundle::{BlobSource, BundleError};
use cerro_core::manifest::Descriptor;
use cerro_core::source::{
    parse_image_manifest, ImageSource, ResolvedImage, DOCKER_MANIFEST_LIST, JSON_BLOB_MAX_BYTES,
    OCI_INDEX,
};
use cerro_core::Sha256Digest;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub struct RegistrySource {
    image: ResolvedImage,
    memory: BTreeMap<Sha256Digest, Vec<u8>>,
    /// Layers, downloaded and checked; removed with the directory when the source is dropped.
    dir: tempfile::TempDir,
}

/// Most image indexes followed from the tag to an image manifest.
const MAX_INDEX_DEPTH: usize = 4;

impl RegistrySource {
    /// Resolve and download `source` (a `docker://…` string, recorded verbatim as the bundle's
    /// source reference). Temporary files go into `tmp_parent`.
    pub fn open(
        source: &str,
        opts: &RegistryOptions,
        tmp_parent: &Path,
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<Self> {
        let r = Reference::parse(source).map_err(Error::usage)?;
        let client = Client::connect(
            &r,
            opts,
            vec![crate::client::repo_scope(&r.repository, false)],
        )?;
        let top = get_manifest(
            &client,
            &r.repository,
            &r.manifest_reference(),
            r.digest.as_ref(),
        )?;
        let source_digest = top.digest;
        let mut m = top;
        let mut depth = 0;
        while m.media_type == OCI_INDEX || m.media_type == DOCKER_MANIFEST_LIST {
            depth += 1;
            if depth > MAX_INDEX_DEPTH {
                return Err(Error::malformed(format!(
                    "{source}: image indexes nest more than {MAX_INDEX_DEPTH} deep"
                )));
            }
            let d = pick_platform(&m.bytes).map_err(|e| {
                Error::malformed(format!("{source}: image index {}: {e}", m.digest))
            })?;
            m = get_manifest(
                &client,
                &r.repository,
                &d.digest.to_string(),
                Some(&d.digest),
            )?;
        }
        let (config, layers) = parse_image_manifest(&m.bytes, &m.media_type)
            .map_err(|e| Error::from(e).context(source))?;
        if config.size > JSON_BLOB_MAX_BYTES {
            return Err(Error::malformed(format!(
                "{source}: the image config claims {} bytes",
                config.size
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix(".ct-pull-")
            .tempdir_in(tmp_parent)
            .map_err(|e| {
                Error::io(
                    format!("creating a temporary directory in {}", tmp_parent.display()),
                    e,
                )
            })?;
        // The config and every layer, several at once; each is checked against its digest.
        let mut wanted: Vec<&Descriptor> = std::iter::once(&config).chain(layers.iter()).collect();
        wanted.sort_by_key(|d| d.digest);
        wanted.dedup_by_key(|d| d.digest);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..jobs.max(1) {
                s.spawn(|| loop {
                    if failed.lock().expect("lock").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(d) = wanted.get(i) else { return };
                    let bar = progress.bar(format!("pulling {}", short(&d.digest)), d.size);
                    let res = get_blob_to_file(
                        &client,
                        &r.repository,
                        &d.digest,
                        d.size,
                        &dir.path().join(d.digest.hex()),
                        &|n| bar.add(n),
                    );
                    bar.finish();
                    if let Err(f) = res {
                        failed.lock().expect("lock").get_or_insert(f);
                        return;
                    }
                });
            }
        });
        progress.clear();
        if let Some(f) = failed.into_inner().expect("lock") {
            return Err(f.context(format!("pulling {source}")));
        }
        let config_bytes = std::fs::read(dir.path().join(config.digest.hex()))
            .map_err(|e| Error::io("reading the downloaded image config", e))?;
        let mut memory = BTreeMap::new();
        memory.insert(m.digest, m.bytes.clone());
        let suggested_name = r.repository.rsplit('/').next().map(str::to_string);
        Ok(Self {
            image: ResolvedImage {
                reference: source.to_string(),
                source_digest,
                manifest: Descriptor {
                    media_type: m.media_type.clone(),
                    digest: m.digest,
                    size: m.bytes.len() as u64,
                },
                manifest_bytes: m.bytes,
                config,
                config_bytes,
                layers,
                suggested_name,
            },
            memory,
            dir,
        })
    }
}

impl BlobSource for RegistrySource {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        _size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        if let Some(v) = self.memory.get(digest) {
            return Ok(Box::new(&v[..]));
        }
        let p = self.dir.path().join(digest.hex());
        let f = File::open(&p)
            .map_err(|e| BundleError::io(format!("opening the downloaded blob {digest}"), e))?;
        Ok(Box::new(f))
    }
}

impl ImageSource for RegistrySource {
    fn image(&self) -> &ResolvedImage {
        &self.image
    }
}
