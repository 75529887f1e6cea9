//! Fetching a signed bundle (spec/registry.md): find the Cerro artifact of an image (referrers
//! API, else the `sha256-<hex>.ctp` tag), read its small files (signed manifest, summary,
//! signatures), check the signatures against the caller's trust before any layer is downloaded,
//! then feed every blob to the caller's bundle writer ([`RemoteBundle::download`]) while worker
//! threads fetch the next ones. The caller writes and verifies the bundle; this finds and moves it.

use crate::artifact::{self, Artifact, Part};
use crate::client::{net_failure, repo_scope};
use crate::download::{mismatch, BlobReader, Downloads, Feed};
use crate::error::{Error, ErrorKind, Result};
use crate::manifests::{
    get_manifest, is_image_manifest, is_index, referrers, try_get_manifest, Fetched,
};
use crate::progress::Progress;
use crate::{Client, Reference, RegistryOptions};
use cerro_core::bundle::{layout, BlobSource, BundleContents};
use cerro_core::manifest::{Descriptor, Manifest};
use cerro_core::sign::SignatureFile;
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How the Cerro artifact was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundVia {
    ReferrersApi,
    Tag,
}

/// The Cerro artifact referring to `image`: through the referrers API when the registry has it
/// (the one the fallback tag names when there are several), else through the fallback tag.
pub fn find_artifact(
    c: &Client,
    repo: &str,
    image: &Sha256Digest,
) -> Result<Option<(Sha256Digest, FoundVia)>> {
    let tag = artifact::fallback_tag(image);
    if let Some(list) = referrers(c, repo, image, artifact::ARTIFACT_TYPE_V1)? {
        match list.len() {
            0 => {}
            1 => return Ok(Some((list[0].digest, FoundVia::ReferrersApi))),
            _ => {
                // Several (re-signed and pushed again): the tag names the latest push.
                if let Some(t) = try_get_manifest(c, repo, &tag, None)? {
                    if list.iter().any(|d| d.digest == t.digest) {
                        return Ok(Some((t.digest, FoundVia::ReferrersApi)));
                    }
                }
                return Ok(Some((list[0].digest, FoundVia::ReferrersApi)));
            }
        }
    }
    Ok(try_get_manifest(c, repo, &tag, None)?.map(|m| (m.digest, FoundVia::Tag)))
}

/// A bundle in a registry: its image manifest, its Cerro artifact and the artifact's small
/// files, read and checked against each other but not yet against any trust.
pub struct RemoteBundle {
    pub reference: Reference,
    pub client: Client,
    /// The image manifest the reference names.
    pub image: Fetched,
    pub artifact_digest: Sha256Digest,
    pub found_via: FoundVia,
    artifact: Artifact,
    pub manifest: Manifest,
    /// The canonical manifest bytes (what the signatures cover).
    pub manifest_bytes: Vec<u8>,
    pub signatures: Vec<SignatureFile>,
    /// The attestations the signed manifest lists (digest, size), sorted, each once.
    attestations: Vec<(Sha256Digest, u64)>,
}

impl RemoteBundle {
    /// Find the bundle `image` (`HOST/REPO:TAG` or `…@sha256:…`, as the user wrote it) names:
    /// its image manifest, Cerro artifact, signed manifest and signatures.
    pub fn resolve(image: &str, opts: &RegistryOptions) -> Result<Self> {
        let r = Reference::parse(image).map_err(Error::usage)?;
        let repo = r.repository.clone();
        let client = Client::connect(&r, opts, vec![repo_scope(&repo, false)])?;

        // 1. The image manifest the tag (or digest) names.
        let img = get_manifest(&client, &repo, &r.manifest_reference(), r.digest.as_ref())?;
        if is_index(&img.media_type) {
            return Err(Error::malformed(format!("{r} is an image index (several platforms), not a bundle pushed by ct (ct pushes one image manifest)"))
                .hint(format!("to pack it yourself: `ct fetch {image} --create -o OUT.ctp -k KEY`")));
        }
        if !is_image_manifest(&img.media_type) {
            return Err(Error::malformed(format!(
                "{r} is a {:?}, not an image manifest",
                img.media_type
            )));
        }

        // 2. The Cerro artifact that refers to it.
        let (art_digest, via) = find_artifact(&client, &repo, &img.digest)?.ok_or_else(|| {
            Error::malformed(format!(
                "{r} ({}) has no Cerro bundle attached: neither the referrers API nor the tag {} lists one",
                img.digest,
                artifact::fallback_tag(&img.digest)
            ))
            .hint(format!("it is a plain image; to pack and sign it yourself: `ct fetch {image} --create -o OUT.ctp -k KEY`"))
        })?;
        let art = get_manifest(&client, &repo, &art_digest.to_string(), Some(&art_digest))?;
        let bad_art = |why: String| bad_artifact(&client.registry, &art_digest, &r, why);
        let parsed = artifact::parse(&art.bytes).map_err(bad_art)?;
        if parsed.subject != img.digest {
            return Err(bad_art(format!(
                "it refers to image {}, not {}",
                parsed.subject, img.digest
            )));
        }

        // 3. The small files: signed manifest and signatures.
        let manifest_bytes = get_small(
            &client,
            &repo,
            &parsed.manifest,
            cerro_core::manifest::MANIFEST_MAX_BYTES as u64,
        )?;
        let manifest = Manifest::parse(&manifest_bytes)
            .map_err(|e| bad_art(format!("{}: {e}", layout::MANIFEST_TOML)))?;
        let mut want_atts: Vec<(Sha256Digest, u64)> = manifest
            .attestations
            .iter()
            .map(|x| (x.digest, x.size))
            .collect();
        want_atts.sort();
        want_atts.dedup();
        let mut have_atts: Vec<(Sha256Digest, u64)> = parsed
            .attestations
            .iter()
            .map(|p| (p.digest, p.size))
            .collect();
        have_atts.sort();
        if want_atts != have_atts {
            return Err(bad_art(
                "its attestations are not the ones the signed manifest lists".into(),
            ));
        }
        let mut sigs = Vec::new();
        for (id, p) in &parsed.signatures {
            let bytes = get_small(
                &client,
                &repo,
                p,
                cerro_core::sign::SIGNATURE_MAX_BYTES as u64,
            )?;
            let s =
                SignatureFile::parse(&bytes).map_err(|e| bad_art(format!("{}: {e}", p.path)))?;
            if s.key_id.as_str() != id {
                return Err(bad_art(format!(
                    "{} holds a signature by key id {:?}",
                    p.path,
                    s.key_id.as_str()
                )));
            }
            sigs.push(s);
        }
        Ok(Self {
            reference: r,
            client,
            image: img,
            artifact_digest: art_digest,
            found_via: via,
            artifact: parsed,
            manifest,
            manifest_bytes,
            signatures: sigs,
            attestations: want_atts,
        })
    }

    fn bad_artifact(&self, why: String) -> Error {
        bad_artifact(
            &self.client.registry,
            &self.artifact_digest,
            &self.reference,
            why,
        )
    }

    /// Signatures and trust before the (large) download — the same outcome `ct verify` reaches
    /// at its steps 2 and 3, only sooner: `SignatureInvalid` when a signature does not verify
    /// (or there is none), `KeyNotTrusted` when no valid one is by a key `trust` knows. Then
    /// what must agree with the signed manifest (the image descriptor, the summary) is compared:
    /// only now, so that an edited manifest is a signature failure, as in `ct verify`.
    pub fn check_signatures(&self, trust: &dyn Fn(&Fingerprint) -> Option<KeyId>) -> Result {
        early_trust_check(
            &self.signatures,
            &self.manifest_bytes,
            trust,
            &self.reference,
        )?;
        let image_desc = Descriptor {
            media_type: self.image.media_type.clone(),
            digest: self.image.digest,
            size: self.image.bytes.len() as u64,
        };
        let (manifest, r) = (&self.manifest, &self.reference);
        if manifest.image != image_desc {
            return Err(self.bad_artifact(format!(
                "its signed manifest describes image {} ({} bytes, {}), but {r} is {} ({} bytes, {})",
                manifest.image.digest,
                manifest.image.size,
                manifest.image.media_type,
                image_desc.digest,
                image_desc.size,
                image_desc.media_type
            )));
        }
        if let Some(p) = &self.artifact.summary {
            let got = get_small(
                &self.client,
                &self.reference.repository,
                p,
                layout::SMALL_FILE_MAX_BYTES,
            )?;
            if got != layout::summary_json(manifest, &self.manifest_bytes) {
                return Err(self.bad_artifact(format!(
                    "{} does not match the signed manifest",
                    layout::SUMMARY_JSON
                )));
            }
        }
        Ok(())
    }

    /// Download every blob of the bundle while `write` writes it: `write` gets the bundle's
    /// contents and a blob source that streams the blob it asks for from the registry, while
    /// `jobs - 1` threads fetch the next small ones to `staging` (a directory the caller removes).
    /// A network failure or digest mismatch behind the writer's error is returned instead of it.
    pub fn download<T, E>(
        &self,
        staging: &Path,
        jobs: usize,
        progress: &dyn Progress,
        write: impl FnOnce(&BundleContents<'_>, &mut dyn BlobSource) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, DownloadError<E>> {
        let mut order: Vec<(Sha256Digest, u64)> = self.attestations.clone();
        let mut image_blobs: Vec<(Sha256Digest, u64)> = self
            .manifest
            .image_blobs()
            .map(|d| (d.digest, d.size))
            .collect();
        image_blobs.sort();
        image_blobs.dedup();
        order.extend(image_blobs);
        let mut memory = BTreeMap::new();
        memory.insert(self.image.digest, self.image.bytes.clone());
        let repo = &self.reference.repository;
        let downloads = Downloads::new(&self.client, repo, order, memory, staging, progress);
        let contents = BundleContents {
            manifest: &self.manifest,
            manifest_bytes: &self.manifest_bytes,
            signatures: &self.signatures,
        };
        let result = std::thread::scope(|s| {
            for _ in 1..jobs.max(1) {
                s.spawn(|| downloads.worker());
            }
            let r = write(&contents, &mut Feed(&downloads));
            downloads.cancel();
            r
        });
        progress.clear();
        result.map_err(|e| {
            // A network failure or a digest mismatch recorded by the downloads explains the
            // writer's error better than the writer can.
            match downloads.failure.lock().expect("lock").take() {
                Some(f) => {
                    DownloadError::Registry(f.context(format!("fetching {}", self.reference)))
                }
                None => DownloadError::Writer(e),
            }
        })
    }
}

/// Why [`RemoteBundle::download`] failed.
#[derive(Debug)]
pub enum DownloadError<E> {
    /// The registry failed (network, digest mismatch).
    Registry(Error),
    /// The caller's writer failed on its own.
    Writer(E),
}

fn bad_artifact(registry: &str, art: &Sha256Digest, r: &Reference, why: String) -> Error {
    Error::malformed(format!(
        "registry {registry}: the Cerro artifact {art} of {r}: {why}"
    ))
    .hint("push the bundle again with `ct push`, or ask its publisher to")
}

/// Download a small artifact file into memory, checking size and digest.
fn get_small(c: &Client, repo: &str, p: &Part, max: u64) -> Result<Vec<u8>> {
    if p.size > max {
        return Err(Error::malformed(format!(
            "registry {}: {} is {} bytes, more than the {max} allowed",
            c.registry, p.path, p.size
        )));
    }
    let mut r = BlobReader::open(c, repo, p.digest, p.size)?;
    let mut v = Vec::with_capacity(p.size as usize);
    if let Err(e) = r.read_to_end(&mut v) {
        return Err(r
            .failure
            .take()
            .unwrap_or_else(|| net_failure(&c.registry, format!("downloading {}: {e}", p.path))));
    }
    let got = Sha256Digest::of(&v);
    if got != p.digest || v.len() as u64 != p.size {
        return Err(
            mismatch(&c.registry, repo, &p.digest, p.size, v.len() as u64, &got).context(&p.path),
        );
    }
    Ok(v)
}

/// `SignatureInvalid` when a signature does not verify (or there is none), `KeyNotTrusted` when
/// no valid one is trusted.
fn early_trust_check(
    sigs: &[SignatureFile],
    manifest: &[u8],
    trust: &dyn Fn(&Fingerprint) -> Option<KeyId>,
    r: &Reference,
) -> Result {
    if sigs.is_empty() {
        return Err(Error::new(
            ErrorKind::SignatureInvalid,
            format!("the bundle at {r} is not signed"),
        )
        .hint("nothing was downloaded; ask its publisher for a signed bundle"));
    }
    for s in sigs {
        s.verify(manifest).map_err(|e| {
            Error::new(ErrorKind::SignatureInvalid, format!("the bundle at {r}: {e}"))
                .hint("do not use it: it was changed after it was signed, or the signature is forged; nothing was downloaded")
        })?;
    }
    if !sigs.iter().any(|s| trust(&s.fingerprint).is_some()) {
        let who: Vec<String> = sigs
            .iter()
            .map(|s| format!("{} ({})", s.key_id, s.fingerprint))
            .collect();
        return Err(Error::new(ErrorKind::KeyNotTrusted, format!("the bundle at {r} is signed by no key in the trust store; signed by: {}", who.join(", ")))
            .hint("if you trust the signer, import their public key with `ct key import FILE` after checking its fingerprint with them; nothing was downloaded"));
    }
    Ok(())
}
