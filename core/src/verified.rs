//! The witness that a bundle was verified: a [`Verified`] value can only be made by the two
//! functions here, each of which checks the signed manifest down to its signatures, the trust
//! store and the policy at that moment. Code that imports, serves or exports content takes a
//! `&Verified<_>` — never a name, a digest string or a `verify: bool` — so "was this checked?"
//! is answered by the type checker, not by convention (spec/store.md §3).
//!
//! - [`verify_bundle`]: a scanned bundle file, every blob hashed against the signed manifest.
//! - [`verify_stored`]: a store record, bound to the digest it is stored under
//!   (`sha256(manifest) == digest`), its signatures, trust and policy, and its root record equal
//!   to the signed rootfs digest.

use crate::bundle::RawBundle;
use crate::digest::Sha256Digest;
use crate::manifest::Manifest;
use crate::rootfs::RootRecord;
use crate::signature_set::SignatureSet;
use crate::verify::{
    verify, verify_signed_manifest, Failure, FailureKind, VerifyContext, VerifyReport,
};
use std::sync::Arc;

/// Proof that a signed manifest (and what `T` says about its content) passed verification:
/// signatures valid, a signer trusted, the policy (if any) satisfied. Fields are private and
/// there is no public constructor.
#[derive(Clone)]
pub struct Verified<T> {
    subject: T,
    digest: Sha256Digest,
    manifest_bytes: Arc<[u8]>,
    manifest: Arc<Manifest>,
    signatures: Arc<SignatureSet>,
    report: Arc<VerifyReport>,
}

impl<T> Verified<T> {
    /// The bundle digest: SHA-256 of the signed manifest bytes.
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }
    /// The signed manifest, parsed.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The signed manifest, byte for byte as it was signed.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }
    /// The signature files that were checked.
    pub fn signatures(&self) -> &SignatureSet {
        &self.signatures
    }
    /// The verification report: every signature, whether its key is trusted, the policy verdict.
    pub fn report(&self) -> &VerifyReport {
        &self.report
    }
    /// What else was verified (see the subject types).
    pub fn subject(&self) -> &T {
        &self.subject
    }
}

impl<T> std::fmt::Debug for Verified<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Verified({} {} {})",
            self.manifest.package.name, self.manifest.package.version, self.digest
        )
    }
}

/// The subject of a verified bundle file: every blob it holds was hashed against the signed
/// manifest (structure, signatures, trust, blobs, policy — all of `ct verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedBundle;

/// The subject of a verified store record: its root record, whose digest is the signed rootfs
/// digest. Everything below it is verified as it is read (`VerifiedTree`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBundle {
    pub root: RootRecord,
}

/// Verify a scanned bundle file exactly as `ct verify` does. The report is kept in the witness
/// (for printing) or returned as the error.
pub fn verify_bundle(
    raw: &RawBundle,
    ctx: &VerifyContext<'_>,
) -> Result<Verified<SignedBundle>, Box<VerifyReport>> {
    let rep = verify(raw, ctx);
    if !rep.ok() {
        return Err(Box::new(rep));
    }
    let (Some(bytes), Some(manifest)) = (raw.manifest.as_deref(), rep.manifest.clone()) else {
        // A report without failure always has both; keep this total anyway.
        return Err(failed(
            rep,
            FailureKind::Malformed,
            "the bundle has no manifest".into(),
            "",
        ));
    };
    Ok(Verified {
        subject: SignedBundle,
        digest: Sha256Digest::of(bytes),
        manifest_bytes: bytes.into(),
        manifest: Arc::new(manifest),
        signatures: Arc::new(raw.signatures.clone()),
        report: Arc::new(rep),
    })
}

/// A store record's parts, as read from the (attacker-writable) store.
#[derive(Debug, Clone, Copy)]
pub struct StoredRecord<'a> {
    /// The digest the record is stored under, which is the digest the caller asked for.
    pub digest: Sha256Digest,
    /// The manifest bytes the record holds.
    pub manifest: &'a [u8],
    /// The signature files the record holds.
    pub signatures: &'a SignatureSet,
    /// The encoded root record the record holds.
    pub root_record: &'a [u8],
}

const HINT_STORE: &str = "the store was altered or damaged: run `ct store fsck`, then import the bundle again from its file (`ct import BUNDLE.ctp` repairs the record)";

/// Verify a store record at this moment: it is bound to its digest (`sha256(manifest) ==
/// digest`; a mismatch is a hash mismatch, exit 1), its signatures verify and a signer is
/// trusted (2, 3), the policy admits it (4, 5), and its root record hashes to the signed rootfs
/// digest (1). Nothing in the record is believed before it is checked.
pub fn verify_stored(
    rec: StoredRecord<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<Verified<StoredBundle>, Box<VerifyReport>> {
    let found = Sha256Digest::of(rec.manifest);
    if found != rec.digest {
        let rep = VerifyReport {
            bundle_digest: Some(rec.digest),
            manifest: None,
            signatures: vec![],
            blobs: vec![],
            policy: None,
            failure: None,
        };
        return Err(failed(
            rep,
            FailureKind::HashMismatch,
            format!(
                "store record {}: the manifest it holds hashes to {found}, so it is not that bundle",
                rec.digest
            ),
            HINT_STORE,
        ));
    }
    let mut rep = verify_signed_manifest(rec.manifest, rec.signatures, ctx);
    if !rep.ok() {
        if let Some(f) = &mut rep.failure {
            f.message = format!("store record {}: {}", rec.digest, f.message);
        }
        return Err(Box::new(rep));
    }
    let Some(manifest) = rep.manifest.clone() else {
        return Err(failed(
            rep,
            FailureKind::Malformed,
            format!("store record {}: no manifest", rec.digest),
            HINT_STORE,
        ));
    };
    let root = match RootRecord::decode(rec.root_record) {
        Ok(r) if r.digest() == manifest.rootfs.digest => r,
        Ok(r) => {
            return Err(failed(
                rep,
                FailureKind::HashMismatch,
                format!(
                    "store record {}: its root record hashes to {}, but the signed manifest names rootfs {}",
                    rec.digest,
                    r.digest(),
                    manifest.rootfs.digest
                ),
                HINT_STORE,
            ))
        }
        Err(e) => {
            return Err(failed(
                rep,
                FailureKind::HashMismatch,
                format!(
                    "store record {}: its root record does not decode: {e}",
                    rec.digest
                ),
                HINT_STORE,
            ))
        }
    };
    Ok(Verified {
        subject: StoredBundle { root },
        digest: rec.digest,
        manifest_bytes: rec.manifest.into(),
        manifest: Arc::new(manifest),
        signatures: Arc::new(rec.signatures.clone()),
        report: Arc::new(rep),
    })
}

fn failed(
    mut rep: VerifyReport,
    kind: FailureKind,
    message: String,
    hint: &str,
) -> Box<VerifyReport> {
    rep.failure = Some(Failure {
        kind,
        exit_code: kind.exit_code(),
        message,
        hint: hint.into(),
    });
    Box::new(rep)
}

/// Witnesses made without any check, for tests of code that takes a witness (the FUSE
/// filesystem on an in-memory tree). Only with the `testing` feature; never in `ct`.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// A witness for `manifest` and `root`, unchecked.
    pub fn unchecked_stored(manifest: Manifest, root: RootRecord) -> Verified<StoredBundle> {
        let bytes = manifest.encode();
        Verified {
            subject: StoredBundle { root },
            digest: Sha256Digest::of(&bytes),
            manifest_bytes: bytes.into(),
            manifest: Arc::new(manifest),
            signatures: Arc::new(SignatureSet::new()),
            report: Arc::new(VerifyReport {
                bundle_digest: None,
                manifest: None,
                signatures: vec![],
                blobs: vec![],
                policy: None,
                failure: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::KeyId;
    use crate::manifest::{Descriptor, Package, RootfsRef, Source, MANIFEST_FORMAT_V1};
    use crate::rootfs::{DirDigest, Metadata};
    use crate::sign::Signer;
    use crate::Fingerprint;

    fn signer() -> Signer {
        Signer::from_seed(KeyId::new("alice").unwrap(), &[7; 32])
    }

    fn record(version: &str) -> (Vec<u8>, SignatureSet, Vec<u8>) {
        record_by(version, &signer())
    }

    /// A record of package `app` VERSION (created 2026-01-02T03:04:05Z) signed by `by`.
    fn record_by(version: &str, by: &Signer) -> (Vec<u8>, SignatureSet, Vec<u8>) {
        let root = RootRecord {
            meta: Metadata {
                mode: 0o755,
                ..Metadata::default()
            },
            dir: DirDigest::from_bytes([version.as_bytes()[0]; 32]),
        };
        let d = |b: u8| Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: Sha256Digest::from_bytes([b; 32]),
            size: 10,
        };
        let m = Manifest {
            format: MANIFEST_FORMAT_V1.into(),
            package: Package {
                name: "app".into(),
                version: version.into(),
                created: "2026-01-02T03:04:05Z".into(),
            },
            source: Source {
                reference: "oci:x".into(),
                digest: Sha256Digest::from_bytes([1; 32]),
            },
            rootfs: RootfsRef {
                digest: root.digest(),
            },
            image: d(2),
            config: d(3),
            layers: vec![d(4)],
            attestations: vec![],
        };
        let bytes = m.encode();
        let sig = by.sign(&bytes).encode();
        let sigs = [(by.key_id.clone(), sig)].into_iter().collect();
        (bytes, sigs, root.encode())
    }

    fn trusted(fp: &Fingerprint) -> Option<KeyId> {
        (*fp == signer().fingerprint()).then(|| KeyId::new("alice").unwrap())
    }

    fn ctx(trust: &dyn Fn(&Fingerprint) -> Option<KeyId>) -> VerifyContext<'_> {
        VerifyContext {
            trust,
            policy: None,
            now: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_record_bound_to_its_digest_and_signed_verifies() {
        let (m, s, r) = record("2");
        let d = Sha256Digest::of(&m);
        let v = verify_stored(
            StoredRecord {
                digest: d,
                manifest: &m,
                signatures: &s,
                root_record: &r,
            },
            &ctx(&trusted),
        )
        .unwrap();
        assert_eq!(v.digest(), d);
        assert_eq!(v.manifest().package.version, "2");
        assert_eq!(v.subject().root.encode(), r);
    }

    #[test]
    fn every_broken_binding_is_refused_with_its_exit_code() {
        let (m2, s2, r2) = record("2");
        let (m1, s1, r1) = record("1");
        let d2 = Sha256Digest::of(&m2);
        let check = |m: &[u8],
                     s: &SignatureSet,
                     r: &[u8],
                     trust: &dyn Fn(&Fingerprint) -> Option<KeyId>| {
            verify_stored(
                StoredRecord {
                    digest: d2,
                    manifest: m,
                    signatures: s,
                    root_record: r,
                },
                &ctx(trust),
            )
            .unwrap_err()
            .failure
            .unwrap()
        };
        // v1's signed manifest under v2's digest: the swap of issue 11.
        let f = check(&m1, &s1, &r1, &trusted);
        assert_eq!(f.exit_code, 1, "{}", f.message);
        assert!(f.message.contains("hashes to"), "{}", f.message);
        // v2's manifest with v1's root record.
        let f = check(&m2, &s2, &r1, &trusted);
        assert_eq!(f.exit_code, 1);
        assert!(f.message.contains("root record"), "{}", f.message);
        // Unsigned, and signed by v1's signature file (over other bytes).
        let f = check(&m2, &SignatureSet::new(), &r2, &trusted);
        assert_eq!(f.exit_code, 2);
        let f = check(&m2, &s1, &r2, &trusted);
        assert_eq!(f.exit_code, 2);
        // Signed, but nobody trusts the key now.
        let f = check(&m2, &s2, &r2, &|_| None);
        assert_eq!(f.exit_code, 3);
        assert!(
            f.message.starts_with("store record sha256:"),
            "{}",
            f.message
        );
        // A root record that does not decode.
        let f = check(&m2, &s2, b"junk", &trusted);
        assert_eq!(f.exit_code, 1);
    }

    #[test]
    fn post_quantum_signatures_and_key_windows_count_as_for_a_file() {
        use crate::policy::Policy;
        use crate::sign::Suite;
        use crate::window::KeyWindow;
        use base64::Engine as _;
        let hybrid =
            Signer::from_suite_seed(KeyId::new("pq").unwrap(), Suite::CtSig02, &[5; 64]).unwrap();
        let (m, s, r) = record_by("2", &hybrid);
        let d = Sha256Digest::of(&m);
        let at = |expires: Option<&str>| {
            let window = KeyWindow {
                not_before: None,
                expires: expires.map(|e| crate::policy::parse_date(e).unwrap()),
            };
            let fp = hybrid.fingerprint();
            move |f: &Fingerprint| (*f == fp).then(|| KeyId::new("pq").unwrap().with_window(window))
        };
        let check = |sigs: &SignatureSet,
                     trust: &dyn Fn(&Fingerprint) -> Option<KeyId>,
                     policy: Option<&Policy>| {
            verify_stored(
                StoredRecord {
                    digest: d,
                    manifest: &m,
                    signatures: sigs,
                    root_record: &r,
                },
                &VerifyContext {
                    trust,
                    policy,
                    now: chrono::Utc::now(),
                },
            )
        };
        // Signed in CT-SIG-02 by a key whose window holds the creation time: verified.
        let v = check(&s, &at(Some("2027-01-01")), None).unwrap();
        assert_eq!(v.report().signatures[0].suite.as_deref(), Some("CT-SIG-02"));
        // The window ends before the record was created: not trusted (3), naming the window.
        let f = check(&s, &at(Some("2026-01-01")), None)
            .unwrap_err()
            .failure
            .unwrap();
        assert_eq!(f.exit_code, 3, "{}", f.message);
        assert!(
            f.message.contains("2026-01-01T00:00:00Z") && f.message.contains("store record"),
            "{}",
            f.message
        );
        // A flipped bit in the ML-DSA-87 half: invalid (2), naming the half.
        let mut file: crate::sign::SignatureFile =
            serde_json::from_slice(s.get(&KeyId::new("pq").unwrap()).unwrap()).unwrap();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&file.signature)
            .unwrap();
        raw[crate::sign::ED25519_SIGNATURE_LEN + 7] ^= 1;
        file.signature = base64::engine::general_purpose::STANDARD.encode(raw);
        let bad: SignatureSet = [(KeyId::new("pq").unwrap(), file.encode())]
            .into_iter()
            .collect();
        let f = check(&bad, &at(None), None).unwrap_err().failure.unwrap();
        assert_eq!(f.exit_code, 2, "{}", f.message);
        assert!(f.message.contains("ML-DSA-87"), "{}", f.message);
        // A policy that requires CT-SIG-02 admits this record and refuses an Ed25519 one (4).
        let pq = Policy::parse(
            br#"{"version": "1", "signers": {"allowed": [{"key_id": "*"}]},
                 "suites": {"minimum": "CT-SIG-02"}}"#,
        )
        .unwrap();
        check(&s, &at(None), Some(&pq)).unwrap();
        let (m1, s1, r1) = record("2");
        let f = verify_stored(
            StoredRecord {
                digest: Sha256Digest::of(&m1),
                manifest: &m1,
                signatures: &s1,
                root_record: &r1,
            },
            &VerifyContext {
                trust: &trusted,
                policy: Some(&pq),
                now: chrono::Utc::now(),
            },
        )
        .unwrap_err()
        .failure
        .unwrap();
        assert_eq!(f.exit_code, 4, "{}", f.message);
        assert!(f.message.contains("CT-SIG-01"), "{}", f.message);
    }
}
