//! Decides whether a scanned bundle is trustworthy: structure, signatures, trust, every blob's
//! digest and size against the signed manifest, then policy. Produces one report that both the
//! human and `--json` output are made from, and the exit code of the first failure (spec/exit-codes.md).

use crate::bundle::layout;
use crate::bundle::RawBundle;
use crate::digest::Sha256Digest;
use crate::ids::{Fingerprint, KeyId};
use crate::manifest::{Descriptor, Manifest};
use crate::policy::{Policy, PolicyFacts, RejectionKind, SignerFacts, Verdict};
use crate::sign::{SignatureError, SignatureFile};
use crate::signature_set::SignatureSet;
use crate::window::show_instant;
use serde::Serialize;
use std::collections::BTreeSet;

/// Categories of failure, in the order they are checked; each has one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Malformed,
    SignatureInvalid,
    KeyNotTrusted,
    HashMismatch,
    PolicyRejected,
    AttestationMissing,
}

impl FailureKind {
    pub const fn exit_code(self) -> u8 {
        match self {
            FailureKind::HashMismatch => 1,
            FailureKind::SignatureInvalid => 2,
            FailureKind::KeyNotTrusted => 3,
            FailureKind::PolicyRejected => 4,
            FailureKind::AttestationMissing => 5,
            FailureKind::Malformed => 10,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub exit_code: u8,
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    pub key_id: String,
    pub fingerprint: Option<Fingerprint>,
    pub suite: Option<String>,
    pub valid: bool,
    pub trusted: bool,
    /// The trust-store name of the key, when trusted (may differ from the key id it signed as).
    pub trusted_as: Option<KeyId>,
    /// Why it is invalid or untrusted.
    pub problem: Option<String>,
    /// The validity window the trust store gives the key (spec/signature.md §6), when it has
    /// one: RFC 3339 instants, either may be absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub role: String,
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
    pub ok: bool,
    pub problem: Option<String>,
    /// What else was checked (a provenance envelope's signatures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub bundle_digest: Option<Sha256Digest>,
    pub manifest: Option<Manifest>,
    pub signatures: Vec<SignatureReport>,
    pub blobs: Vec<BlobReport>,
    /// The policy verdict, when a policy was given and reached.
    pub policy: Option<Verdict>,
    pub failure: Option<Failure>,
}

impl VerifyReport {
    pub fn exit_code(&self) -> u8 {
        self.failure.as_ref().map_or(0, |f| f.exit_code)
    }
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What the verifier needs from the outside world.
pub struct VerifyContext<'a> {
    /// Looks a fingerprint up in the trust store; `Some(name)` when trusted.
    pub trust: &'a dyn Fn(&Fingerprint) -> Option<KeyId>,
    pub policy: Option<&'a Policy>,
    pub now: chrono::DateTime<chrono::Utc>,
}

struct Fail(FailureKind, String, String);

fn fail(kind: FailureKind, msg: impl Into<String>, hint: impl Into<String>) -> Fail {
    Fail(kind, msg.into(), hint.into())
}

const HINT_MALFORMED: &str = "the file is not a well-formed Cerro bundle; obtain it again from its source, or re-create it with `ct pack`";

/// Verify a scanned bundle. Never panics on hostile input; every failure is in the report.
pub fn verify(raw: &RawBundle, ctx: &VerifyContext<'_>) -> VerifyReport {
    report(raw, Some(ctx))
}

/// Check only the content: structure, manifest, and every blob against the signed manifest —
/// no signature, trust or policy decision. For tools that replace signatures (`ct re-sign`),
/// which must never sign content that does not match its manifest.
pub fn verify_content(raw: &RawBundle) -> VerifyReport {
    report(raw, None)
}

/// Verify a signed manifest kept apart from its blobs (a store's bundle record): the manifest
/// parses, every signature file is well formed and verifies over the manifest bytes, one signer
/// is trusted, and the policy admits it. The blobs are not looked at: whoever reads them checks
/// them against this manifest (the store's Merkle tree, `ct unpack`'s re-hashing).
pub fn verify_signed_manifest(
    mbytes: &[u8],
    signatures: &SignatureSet,
    ctx: &VerifyContext<'_>,
) -> VerifyReport {
    let mut rep = VerifyReport {
        bundle_digest: Some(Sha256Digest::of(mbytes)),
        manifest: None,
        signatures: vec![],
        blobs: vec![],
        policy: None,
        failure: None,
    };
    let result = (|| {
        let m = Manifest::parse(mbytes).map_err(|e| {
            fail(
                FailureKind::Malformed,
                format!("{}: {e}", layout::MANIFEST_TOML),
                HINT_MALFORMED,
            )
        })?;
        rep.manifest = Some(m.clone());
        let sigs = parse_signatures(signatures)?;
        let valid = check_signers(&sigs, mbytes, ctx, &mut rep)?;
        check_policy(&m, &valid, ctx, &mut rep)
    })();
    if let Err(Fail(kind, message, hint)) = result {
        rep.failure = Some(Failure {
            kind,
            exit_code: kind.exit_code(),
            message,
            hint,
        });
    }
    rep
}

fn report(raw: &RawBundle, ctx: Option<&VerifyContext<'_>>) -> VerifyReport {
    let mut report = VerifyReport {
        bundle_digest: None,
        manifest: None,
        signatures: vec![],
        blobs: vec![],
        policy: None,
        failure: None,
    };
    if let Err(Fail(kind, message, hint)) = run(raw, ctx, &mut report) {
        report.failure = Some(Failure {
            kind,
            exit_code: kind.exit_code(),
            message,
            hint,
        });
    }
    report
}

fn run(
    raw: &RawBundle,
    ctx: Option<&VerifyContext<'_>>,
    rep: &mut VerifyReport,
) -> Result<(), Fail> {
    use FailureKind::*;
    // 1. Structure.
    let missing = |what: &str| {
        fail(
            Malformed,
            format!("the bundle has no {what}"),
            HINT_MALFORMED,
        )
    };
    let oci_layout = raw
        .oci_layout
        .as_ref()
        .ok_or_else(|| missing("oci-layout file"))?;
    // Exactly the marker the writer writes (spec/bundle.md §2): any other form is refused, so
    // readers never disagree about which layouts they accept.
    if oci_layout.as_slice() != layout::OCI_LAYOUT_BYTES {
        return Err(fail(
            Malformed,
            format!(
                "oci-layout is not the 30 bytes {{\"imageLayoutVersion\":\"1.0.0\"}} (it holds {})",
                crate::text::show_name(oci_layout)
            ),
            HINT_MALFORMED,
        ));
    }
    let mbytes = raw
        .manifest
        .as_ref()
        .ok_or_else(|| missing(layout::MANIFEST_TOML))?;
    rep.bundle_digest = Some(Sha256Digest::of(mbytes));
    let m = Manifest::parse(mbytes).map_err(|e| {
        fail(
            Malformed,
            format!("{}: {e}", layout::MANIFEST_TOML),
            HINT_MALFORMED,
        )
    })?;
    rep.manifest = Some(m.clone());
    rep.blobs = m
        .image_blobs()
        .enumerate()
        .map(|(i, d)| blob_report(role(i), d))
        .chain(m.attestations.iter().map(|a| BlobReport {
            role: format!("attestation {}", a.kind),
            media_type: a.media_type.clone(),
            digest: a.digest,
            size: a.size,
            ok: false,
            problem: None,
            note: None,
        }))
        .collect();
    // 2. Signatures, 3. trust: before anything derived from the manifest is compared with
    // it, so an edited manifest is a signature failure (exit 2), never "malformed".
    let sigs = parse_signatures(&raw.signatures)?;
    let valid = match ctx {
        Some(ctx) => Some(check_signers(&sigs, mbytes, ctx, rep)?),
        None => None,
    };

    // 3b. The files derived from the (now authenticated) manifest must equal it: a mismatch
    // with valid signatures is a damaged or hand-edited bundle (exit 10).
    let summary = raw
        .summary
        .as_ref()
        .ok_or_else(|| missing(layout::SUMMARY_JSON))?;
    if *summary != layout::summary_json(&m, mbytes) {
        return Err(fail(
            Malformed,
            format!(
                "{} does not match the signed manifest",
                layout::SUMMARY_JSON
            ),
            HINT_MALFORMED,
        ));
    }
    check_index(
        raw.index_json
            .as_deref()
            .ok_or_else(|| missing(layout::INDEX_JSON))?,
        &m,
    )?;
    let (Some(ctx), Some(valid)) = (ctx, valid) else {
        check_blobs(raw, &m, rep)?;
        return check_image_manifest(raw, &m);
    };

    // 4. Blobs against the signed manifest; the provenance's own signatures.
    check_blobs(raw, &m, rep)?;
    check_image_manifest(raw, &m)?;
    check_provenance(raw, &m, &valid, rep)?;

    // 5. Policy.
    check_policy(&m, &valid, ctx, rep)
}

/// Step 4b: a provenance attestation in a DSSE envelope (spec/bundle.md §8.2) — its bytes already
/// match the signed manifest — must be a statement about this bundle's image, and each envelope
/// signature by a key that validly signs the bundle must verify with that key. A signature by
/// any other key (one a `ct re-sign` replaced, say) is reported as not checked: the envelope is
/// still covered by the manifest's signatures, which name its digest.
fn check_provenance(
    raw: &RawBundle,
    m: &Manifest,
    valid: &[(&SignatureFile, bool)],
    rep: &mut VerifyReport,
) -> Result<(), Fail> {
    use crate::provenance;
    use FailureKind::*;
    let Some(a) = m
        .attestations
        .iter()
        .find(|a| a.kind == "provenance" && a.media_type == provenance::DSSE_MEDIA_TYPE)
    else {
        return Ok(());
    };
    let what = format!("attestation provenance {}", a.digest);
    let body = raw.attestation_bodies.get(&a.digest).ok_or_else(|| {
        fail(
            Malformed,
            format!("{what}: larger than this verifier reads ({} bytes)", a.size),
            HINT_MALFORMED,
        )
    })?;
    let opened = provenance::open(body)
        .map_err(|e| fail(Malformed, format!("{what}: {e}"), HINT_MALFORMED))?;
    if !opened.is_about(&m.image.digest) {
        return Err(fail(
            HashMismatch,
            format!(
                "{what} is about {}, not this bundle's image {}",
                opened.subjects().join(", "),
                m.image.digest
            ),
            "the provenance was made for another image; do not use this bundle, ask its publisher",
        ));
    }
    let mut report = Vec::new();
    for (i, (keyid, _)) in opened.signatures.iter().enumerate() {
        let signer = keyid.and_then(|k| valid.iter().find(|(s, _)| s.fingerprint == k));
        let shown = keyid.map_or_else(|| "an unnamed key".to_string(), |k| k.to_string());
        let Some((s, trusted)) = signer else {
            report.push(format!(
                "{shown}: not checked (the key does not sign this bundle)"
            ));
            continue;
        };
        let suite = crate::sign::Suite::from_id(&s.suite);
        let pk = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &s.public_key);
        let checked = match (suite, pk) {
            (Some(suite), Ok(pk)) => opened.verify(i, suite, &pk).map_err(|e| e.to_string()),
            _ => Err("the signer's key is unusable".into()),
        };
        if let Err(why) = checked {
            return Err(fail(
                SignatureInvalid,
                format!("{what}: the envelope's signature by {} ({shown}) does not verify: {why}", s.key_id),
                "do not use this bundle: its provenance was changed after it was signed, or the signature is forged",
            ));
        }
        report.push(format!(
            "{} ({shown}): valid{}",
            s.key_id,
            if *trusted { ", trusted" } else { "" }
        ));
    }
    if let Some(r) = rep.blobs.iter_mut().find(|b| b.digest == a.digest) {
        r.note = Some(format!("DSSE signatures: {}", report.join("; ")));
    }
    Ok(())
}

/// Parse every signature file; each must name the key id its file name says.
fn parse_signatures(files: &SignatureSet) -> Result<Vec<SignatureFile>, Fail> {
    use FailureKind::*;
    let mut sigs = Vec::new();
    for (file_id, bytes) in files {
        let s = SignatureFile::parse(bytes).map_err(|e| {
            fail(
                Malformed,
                format!("cerro/signatures/{file_id}.sig: {e}"),
                HINT_MALFORMED,
            )
        })?;
        if s.key_id != *file_id {
            return Err(fail(
                Malformed,
                format!(
                    "cerro/signatures/{file_id}.sig holds a signature by key id {:?}",
                    s.key_id.as_str()
                ),
                HINT_MALFORMED,
            ));
        }
        sigs.push(s);
    }
    Ok(sigs)
}

/// Steps 2–3: every signature verifies over the manifest bytes, and one is from a trusted key
/// whose validity window (if the trust store gives it one) holds the bundle's creation time
/// (`rep.manifest` is set before this runs). Returns the valid signatures with whether each is
/// trusted for this bundle.
fn check_signers<'s>(
    sigs: &'s [SignatureFile],
    mbytes: &[u8],
    ctx: &VerifyContext<'_>,
    rep: &mut VerifyReport,
) -> Result<Vec<(&'s SignatureFile, bool)>, Fail> {
    use FailureKind::*;
    let mut first_invalid = None;
    let mut valid = Vec::new();
    for s in sigs {
        let mut r = SignatureReport {
            key_id: s.key_id.to_string(),
            fingerprint: Some(s.fingerprint),
            suite: Some(s.suite.clone()),
            valid: false,
            trusted: false,
            trusted_as: None,
            problem: None,
            not_before: None,
            expires: None,
        };
        match s.verify(mbytes) {
            Ok(_) => {
                r.valid = true;
                r.trusted_as = (ctx.trust)(&s.fingerprint);
                r.trusted = r.trusted_as.is_some();
                if !r.trusted {
                    r.problem = Some(format!(
                        "key {} ({}) is not in the trust store",
                        s.key_id, s.fingerprint
                    ));
                }
                if let Some(w) = r.trusted_as.as_ref().and_then(KeyId::window).copied() {
                    r.not_before = w.not_before.as_ref().map(show_instant);
                    r.expires = w.expires.as_ref().map(show_instant);
                    let created = rep
                        .manifest
                        .as_ref()
                        .ok_or_else(|| fail(Malformed, "no manifest", HINT_MALFORMED))?
                        .created()
                        .map_err(|e| fail(Malformed, e, HINT_MALFORMED))?;
                    if let Some(why) = w.why_outside(&created) {
                        r.trusted = false;
                        r.problem = Some(format!(
                            "key {} ({}) is trusted only {w}; this bundle was {why}",
                            s.key_id, s.fingerprint
                        ));
                    }
                }
                valid.push((s, r.trusted));
            }
            Err(e) => {
                let msg = match &e {
                    SignatureError::Invalid { .. } => e.to_string(),
                    SignatureError::Malformed(m) => m.clone(),
                };
                r.problem = Some(msg.clone());
                first_invalid.get_or_insert(msg);
            }
        }
        rep.signatures.push(r);
    }
    if sigs.is_empty() {
        return Err(fail(
            SignatureInvalid,
            "the bundle is not signed (cerro/signatures/ is empty)",
            "sign it with `ct re-sign BUNDLE -k KEY`, or ask its publisher for a signed copy",
        ));
    }
    if let Some(msg) = first_invalid {
        return Err(fail(SignatureInvalid, msg, "do not use this bundle: it was changed after it was signed, or the signature is forged; obtain a fresh copy from its publisher"));
    }

    // 3. Trust.
    if !valid.iter().any(|(_, t)| *t) {
        let who: Vec<String> = valid
            .iter()
            .map(|(s, _)| format!("{} ({})", s.key_id, s.fingerprint))
            .collect();
        // Trusted keys whose window does not hold the bundle's creation time, in words.
        let outside: Vec<&str> = rep
            .signatures
            .iter()
            .filter(|r| r.valid && r.trusted_as.is_some())
            .filter_map(|r| r.problem.as_deref())
            .collect();
        if !outside.is_empty() {
            return Err(fail(
                KeyNotTrusted,
                format!("no signature is from a key trusted for this bundle: {}", outside.join("; ")),
                "the signing key was not valid when the bundle was created; ask its publisher to sign it with a current key (`ct re-sign BUNDLE -k KEY --add-signature`)",
            ));
        }
        return Err(fail(
            KeyNotTrusted,
            format!("no signature is from a trusted key; signed by: {}", who.join(", ")),
            "if you trust the signer, import their public key with `ct key import FILE` after checking its fingerprint with them",
        ));
    }
    Ok(valid)
}

/// The facts the policy is evaluated on, from a report whose signatures were checked: every
/// valid signature, with whether its key is trusted for this bundle. `ct verify --explain`
/// builds them so to show the evaluation step by step; the verifier builds the same ones.
pub fn policy_facts(
    m: &Manifest,
    signatures: &[SignatureReport],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PolicyFacts, String> {
    let signers = signatures
        .iter()
        .filter(|r| r.valid)
        .filter_map(|r| {
            Some(SignerFacts {
                key_id: KeyId::new(&r.key_id).ok()?,
                fingerprint: r.fingerprint?,
                suite: r.suite.clone()?,
                trusted: r.trusted,
            })
        })
        .collect();
    facts_of(m, signers, now)
}

fn facts_of(
    m: &Manifest,
    signatures: Vec<SignerFacts>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PolicyFacts, String> {
    Ok(PolicyFacts {
        bundle_name: m.package.name.clone(),
        source_reference: m.source.reference.clone(),
        image_digest: m.image.digest,
        created: m.created()?,
        now,
        signatures,
        attestations: m.attestations.iter().map(|a| a.kind.clone()).collect(),
    })
}

/// Step 5: the policy, when one is given.
fn check_policy(
    m: &Manifest,
    valid: &[(&SignatureFile, bool)],
    ctx: &VerifyContext<'_>,
    rep: &mut VerifyReport,
) -> Result<(), Fail> {
    use FailureKind::*;
    if let Some(policy) = ctx.policy {
        let signers = valid
            .iter()
            .map(|(s, trusted)| SignerFacts {
                key_id: s.key_id.clone(),
                fingerprint: s.fingerprint,
                suite: s.suite.clone(),
                trusted: *trusted,
            })
            .collect();
        let facts =
            facts_of(m, signers, ctx.now).map_err(|e| fail(Malformed, e, HINT_MALFORMED))?;
        let verdict = policy.evaluate(&facts);
        rep.policy = Some(verdict.clone());
        if let Verdict::Reject(r) = verdict {
            let kind = match r.kind {
                RejectionKind::Policy => PolicyRejected,
                RejectionKind::AttestationMissing => AttestationMissing,
            };
            return Err(fail(kind, format!("policy rule {} rejected the bundle: {}", r.rule, r.reason), "the bundle is intact and signed, but your policy does not allow it; see `ct explain BUNDLE --policy FILE`"));
        }
    }
    Ok(())
}

fn role(i: usize) -> String {
    match i {
        0 => "image manifest".into(),
        1 => "image config".into(),
        n => format!("layer {}", n - 1),
    }
}

fn blob_report(role: String, d: &Descriptor) -> BlobReport {
    BlobReport {
        role,
        media_type: d.media_type.clone(),
        digest: d.digest,
        size: d.size,
        ok: false,
        problem: None,
        note: None,
    }
}

fn check_index(bytes: &[u8], m: &Manifest) -> Result<(), Fail> {
    use FailureKind::Malformed;
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        fail(
            Malformed,
            format!("index.json is not JSON: {e}"),
            HINT_MALFORMED,
        )
    })?;
    let list = v
        .get("manifests")
        .and_then(|x| x.as_array())
        .ok_or_else(|| {
            fail(
                Malformed,
                "index.json has no manifests list",
                HINT_MALFORMED,
            )
        })?;
    if list.len() != 1 {
        return Err(fail(
            Malformed,
            format!(
                "index.json lists {} images; a bundle holds exactly one",
                list.len()
            ),
            HINT_MALFORMED,
        ));
    }
    check_descriptor_json(&list[0], &m.image, "index.json manifests[0]")
}

fn check_descriptor_json(v: &serde_json::Value, d: &Descriptor, what: &str) -> Result<(), Fail> {
    let digest = v.get("digest").and_then(|x| x.as_str());
    let size = v.get("size").and_then(|x| x.as_u64());
    let mt = v.get("mediaType").and_then(|x| x.as_str());
    if digest != Some(&d.digest.to_string())
        || size != Some(d.size)
        || mt != Some(d.media_type.as_str())
    {
        return Err(fail(
            FailureKind::Malformed,
            format!("{what} describes {} ({} bytes, {}), but the signed manifest says {} ({} bytes, {})", digest.unwrap_or("?"), size.map_or("?".into(), |s| s.to_string()), mt.unwrap_or("?"), d.digest, d.size, d.media_type),
            HINT_MALFORMED,
        ));
    }
    Ok(())
}

fn check_blobs(raw: &RawBundle, m: &Manifest, rep: &mut VerifyReport) -> Result<(), Fail> {
    use FailureKind::*;
    let mut first: Option<Fail> = None;
    let expected: Vec<(&Sha256Digest, u64, bool)> = m
        .image_blobs()
        .map(|d| (&d.digest, d.size, true))
        .chain(m.attestations.iter().map(|a| (&a.digest, a.size, false)))
        .collect();
    for (i, (digest, size, is_image)) in expected.iter().enumerate() {
        let table = if *is_image {
            &raw.blobs
        } else {
            &raw.attestations
        };
        let r = &mut rep.blobs[i];
        match table.get(digest) {
            None => {
                r.problem = Some("missing from the bundle".into());
                first.get_or_insert_with(|| {
                    fail(
                        Malformed,
                        format!("{} {digest} is missing from the bundle", r.role),
                        HINT_MALFORMED,
                    )
                });
            }
            Some(seen) if seen.actual != **digest || seen.size != *size => {
                let msg = format!("{} {digest}: expected {size} bytes with that digest, found {} bytes hashing to {}", r.role, seen.size, seen.actual);
                r.problem = Some(msg.clone());
                first.get_or_insert_with(|| fail(HashMismatch, msg, "the bundle's content was changed or damaged after signing; do not use it, obtain a fresh copy"));
            }
            Some(_) => r.ok = true,
        }
    }
    let listed: BTreeSet<&Sha256Digest> = m.image_blobs().map(|d| &d.digest).collect();
    if let Some(extra) = raw.blobs.keys().find(|d| !listed.contains(d)) {
        first.get_or_insert_with(|| {
            fail(
                Malformed,
                format!("blob {extra} is in the bundle but not in the signed manifest"),
                HINT_MALFORMED,
            )
        });
    }
    let atts: BTreeSet<&Sha256Digest> = m.attestations.iter().map(|a| &a.digest).collect();
    if let Some(extra) = raw.attestations.keys().find(|d| !atts.contains(d)) {
        first.get_or_insert_with(|| {
            fail(
                Malformed,
                format!("attestation {extra} is in the bundle but not in the signed manifest"),
                HINT_MALFORMED,
            )
        });
    }
    first.map_or(Ok(()), Err)
}

fn check_image_manifest(raw: &RawBundle, m: &Manifest) -> Result<(), Fail> {
    use FailureKind::Malformed;
    let bytes = raw.small_blobs.get(&m.image.digest).ok_or_else(|| {
        fail(
            Malformed,
            "the image manifest blob is too large to be an image manifest",
            HINT_MALFORMED,
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        fail(
            Malformed,
            format!("the image manifest blob is not JSON: {e}"),
            HINT_MALFORMED,
        )
    })?;
    if let Some(mt) = v.get("mediaType").and_then(|x| x.as_str()) {
        if mt != m.image.media_type {
            return Err(fail(
                Malformed,
                format!(
                    "the image manifest says media type {mt}, the signed manifest {}",
                    m.image.media_type
                ),
                HINT_MALFORMED,
            ));
        }
    }
    check_descriptor_json(
        v.get("config").unwrap_or(&serde_json::Value::Null),
        &m.config,
        "the image manifest's config",
    )?;
    let layers = v
        .get("layers")
        .and_then(|x| x.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if layers.len() != m.layers.len() {
        return Err(fail(
            Malformed,
            format!(
                "the image manifest lists {} layers, the signed manifest {}",
                layers.len(),
                m.layers.len()
            ),
            HINT_MALFORMED,
        ));
    }
    for (i, (l, d)) in layers.iter().zip(&m.layers).enumerate() {
        check_descriptor_json(l, d, &format!("the image manifest's layer {}", i + 1))?;
    }
    Ok(())
}
