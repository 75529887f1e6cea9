//! Ed25519 commit signatures as OSTree keeps them (ostree-sign-ed25519): a plain Ed25519
//! signature over the commit object's bytes, appended to the `ostree.sign.ed25519` list
//! (`aay`) of the commit's detached metadata (`objects/xx/….commitmeta`, an `a{sv}`). Other
//! detached keys (GPG signatures, anything else) are kept as they were.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::checksum::{Checksum, ObjectType};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::objects::{self, MetaValue};
use crate::repo::{Repo, MAX_DETACHED_METADATA_BYTES};

/// The detached-metadata key of Ed25519 signatures.
pub const ED25519_KEY: &str = "ostree.sign.ed25519";

impl Repo {
    /// A commit's detached metadata, `None` when it has none.
    pub fn read_detached_metadata(
        &self,
        commit: &Checksum,
    ) -> Result<Option<Vec<(String, MetaValue)>>> {
        let Some(mut f) = self.open_object(ObjectType::CommitMeta, commit)? else {
            return Ok(None);
        };
        let bytes = fsutil::read_bounded(&mut f, MAX_DETACHED_METADATA_BYTES)
            .map_err(|e| Error::io(format!("reading detached metadata of {commit}"), e))?
            .map_err(|size| Error::TooLarge {
                kind: ObjectType::CommitMeta,
                checksum: *commit,
                size,
                limit: MAX_DETACHED_METADATA_BYTES,
            })?;
        objects::decode_meta_dict(&bytes)
            .map(Some)
            .map_err(|r| Error::malformed(ObjectType::CommitMeta, *commit, r))
    }

    /// The Ed25519 signatures in a commit's detached metadata (none if it has no such key).
    pub fn ed25519_signatures(&self, commit: &Checksum) -> Result<Vec<Signature>> {
        let Some(meta) = self.read_detached_metadata(commit)? else {
            return Ok(Vec::new());
        };
        match meta.into_iter().find(|(k, _)| k == ED25519_KEY) {
            None => Ok(Vec::new()),
            Some((_, MetaValue::BytesList(sigs))) => sigs
                .iter()
                .map(|s| {
                    Signature::from_slice(s).map_err(|_| Error::Signature {
                        commit: *commit,
                        reason: format!("an {ED25519_KEY} entry of {} bytes, not 64", s.len()),
                    })
                })
                .collect(),
            Some(_) => Err(Error::malformed(
                ObjectType::CommitMeta,
                *commit,
                format!("{ED25519_KEY} is not of type aay"),
            )),
        }
    }

    /// Whether one of the commit's Ed25519 signatures verifies (strictly) with `key` over the
    /// commit object's verified bytes.
    pub fn verify_commit_ed25519(&self, commit: &Checksum, key: &VerifyingKey) -> Result<bool> {
        let bytes = self.read_commit_bytes(commit)?;
        Ok(self
            .ed25519_signatures(commit)?
            .iter()
            .any(|s| key.verify_strict(&bytes, s).is_ok()))
    }

    /// Signs the commit (its verified object bytes) and adds the signature to its detached
    /// metadata; signing again with the same key changes nothing (Ed25519 is deterministic).
    pub fn sign_commit_ed25519(&self, commit: &Checksum, key: &SigningKey) -> Result<Signature> {
        let bytes = self.read_commit_bytes(commit)?;
        let signature = key.sign(&bytes);
        self.add_ed25519_signature(
            commit,
            &signature.to_bytes(),
            &key.verifying_key().to_bytes(),
        )?;
        Ok(signature)
    }

    /// Adds a signature made elsewhere (a key this crate never sees) to the commit's detached
    /// metadata, after checking that it verifies (strictly) with `public` over the commit
    /// object's verified bytes; an entry already there is not added twice.
    pub fn add_ed25519_signature(
        &self,
        commit: &Checksum,
        signature: &[u8; 64],
        public: &[u8; 32],
    ) -> Result<()> {
        let bytes = self.read_commit_bytes(commit)?;
        let refuse = |reason: String| Error::Signature {
            commit: *commit,
            reason,
        };
        let key = VerifyingKey::from_bytes(public)
            .map_err(|_| refuse("the public key is not a valid Ed25519 point".into()))?;
        key.verify_strict(&bytes, &Signature::from_bytes(signature))
            .map_err(|_| refuse("the signature does not verify over the commit".into()))?;
        let mut meta = self.read_detached_metadata(commit)?.unwrap_or_default();
        let sig_bytes = signature.to_vec();
        match meta.iter_mut().find(|(k, _)| k == ED25519_KEY) {
            Some((_, MetaValue::BytesList(list))) => {
                if list.contains(&sig_bytes) {
                    return Ok(());
                }
                list.push(sig_bytes);
            }
            Some(_) => {
                return Err(Error::malformed(
                    ObjectType::CommitMeta,
                    *commit,
                    format!("{ED25519_KEY} is not of type aay"),
                ))
            }
            None => meta.push((
                ED25519_KEY.to_owned(),
                MetaValue::BytesList(vec![sig_bytes]),
            )),
        }
        let encoded = objects::encode_meta_dict(&meta)
            .map_err(|r| Error::malformed(ObjectType::CommitMeta, *commit, r))?;
        self.write_detached(commit, &encoded)
    }
}
