//! The build provenance `ct pack` puts in a bundle (attestation kind `provenance`): an in-toto
//! Statement v1 about the image manifest, whose predicate is SLSA Provenance v1 (builder `ct`
//! and its version, the source reference and digest, the pack parameters), wrapped in a DSSE
//! envelope signed by the bundle's keys (spec/bundle.md §8.2). Deterministic like the rest of a
//! bundle: no clock, keys in byte order, and every suite signs deterministically, so packing twice
//! gives the same bytes. Reading is for untrusted bytes: bounded, a clear error, never a panic.

use crate::ids::Fingerprint;
use crate::sign::{verify_message, Signer, Suite, VerifyFailure};
use crate::Sha256Digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The attestation's media type in the manifest: a DSSE envelope.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The envelope's payload type: an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What kind of build `ct pack` is (the SLSA `buildType`): its parameters are below.
pub const BUILD_TYPE: &str = "https://cerro-torre.invalid/buildtypes/pack/v1";
/// The SLSA builder id of every `ct` (its version is in `builder.version.ct`).
pub const BUILDER_ID: &str = "https://cerro-torre.invalid/builders/ct";
/// Largest envelope read (a real one is a few KiB; a hybrid signature adds 4.7 KiB per key).
pub const MAX_ENVELOPE_BYTES: usize = 1 << 20;
/// Most signatures an envelope may carry (as many as a bundle may have signers, and then some):
/// each is checked, so the count bounds the work a hostile envelope causes.
pub const MAX_ENVELOPE_SIGNATURES: usize = 64;

/// What the provenance says about one pack.
pub struct Params<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The signed `created`.
    pub created: &'a str,
    /// The image manifest's digest: the statement's subject.
    pub image: &'a Sha256Digest,
    /// Where the image came from (`oci:DIR:TAG`, `docker://…`) and the digest of what was read.
    pub source: &'a str,
    pub source_digest: &'a Sha256Digest,
    /// Whether an SBOM was made too.
    pub sbom: bool,
    /// This `ct`'s version.
    pub tool_version: &'a str,
}

/// The in-toto statement, as bytes (compact JSON, keys in byte order).
pub fn statement(p: &Params<'_>) -> Vec<u8> {
    let doc = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": p.name, "digest": {"sha256": p.image.hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": p.source,
                    "name": p.name,
                    "version": p.version,
                    "sbom": p.sbom,
                },
                "internalParameters": {"created": p.created},
                "resolvedDependencies": [{
                    "uri": p.source,
                    "digest": {"sha256": p.source_digest.hex()},
                }],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"ct": p.tool_version}},
            },
        },
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

/// DSSE's pre-authentication encoding: what each signature is over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    m.extend_from_slice(payload);
    m
}

/// A DSSE envelope as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// The envelope of `statement`, signed by each of `signers` in order: the signature of the
/// key's suite over the PAE (Ed25519 for CT-SIG-01, so any DSSE verifier checks it; both halves
/// concatenated for CT-SIG-02; ML-DSA-87 for CT-SIG-03), named by the key's fingerprint.
pub fn envelope(statement: &[u8], signers: &[&Signer]) -> Vec<u8> {
    let message = pae(PAYLOAD_TYPE, statement);
    let env = Envelope {
        payload: B64.encode(statement),
        payload_type: PAYLOAD_TYPE.into(),
        signatures: signers
            .iter()
            .map(|s| EnvelopeSignature {
                keyid: s.fingerprint().to_string(),
                sig: B64.encode(s.sign_message(&message)),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&env).expect("a struct of strings serializes");
    out.push(b'\n');
    out
}

/// An envelope read back: its statement, and each signature with the key it names.
#[derive(Debug, Clone)]
pub struct Opened {
    pub payload: Vec<u8>,
    pub statement: Value,
    pub signatures: Vec<(Option<Fingerprint>, Vec<u8>)>,
}

/// Read an envelope and its statement; checks form only (types, the subject's shape), not the
/// signatures.
pub fn open(bytes: &[u8]) -> Result<Opened, String> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(format!(
            "the envelope is {} bytes, above the limit of {MAX_ENVELOPE_BYTES}",
            bytes.len()
        ));
    }
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "payload type {:?}, not {PAYLOAD_TYPE:?}",
            env.payload_type
        ));
    }
    let payload = B64
        .decode(&env.payload)
        .map_err(|_| "the payload is not base64".to_string())?;
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("the payload is not a JSON statement: {e}"))?;
    if statement["_type"] != STATEMENT_TYPE {
        return Err(format!("the statement's _type is not {STATEMENT_TYPE:?}"));
    }
    if statement["predicateType"] != PREDICATE_TYPE {
        return Err(format!(
            "the predicate type is {}, not {PREDICATE_TYPE:?}",
            statement["predicateType"]
        ));
    }
    if env.signatures.is_empty() {
        return Err("the envelope has no signatures".into());
    }
    if env.signatures.len() > MAX_ENVELOPE_SIGNATURES {
        return Err(format!(
            "the envelope has {} signatures, above the limit of {MAX_ENVELOPE_SIGNATURES}",
            env.signatures.len()
        ));
    }
    let mut signatures = Vec::with_capacity(env.signatures.len());
    for (i, s) in env.signatures.iter().enumerate() {
        let sig = B64
            .decode(&s.sig)
            .map_err(|_| format!("signature {} is not base64", i + 1))?;
        signatures.push((Fingerprint::parse(&s.keyid).ok(), sig));
    }
    Ok(Opened {
        payload,
        statement,
        signatures,
    })
}

impl Opened {
    /// The sha256 digests the statement is about.
    pub fn subjects(&self) -> Vec<String> {
        self.statement["subject"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["digest"]["sha256"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the statement is about exactly `image` (one subject, that digest).
    pub fn is_about(&self, image: &Sha256Digest) -> bool {
        self.subjects() == [image.hex()]
    }

    /// Check signature `i` with a key of `suite` whose public key is `public_key`.
    pub fn verify(&self, i: usize, suite: Suite, public_key: &[u8]) -> Result<(), VerifyFailure> {
        let sig = &self.signatures[i].1;
        verify_message(suite, public_key, &pae(PAYLOAD_TYPE, &self.payload), sig)
    }

    /// What the provenance says, in brief (`ct explain --attestations`, `ct diff`).
    pub fn summary(&self) -> Summary {
        let p = &self.statement["predicate"];
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let dep = &p["buildDefinition"]["resolvedDependencies"][0];
        Summary {
            builder_id: s(&p["runDetails"]["builder"]["id"]),
            builder_version: s(&p["runDetails"]["builder"]["version"]["ct"]),
            build_type: s(&p["buildDefinition"]["buildType"]),
            source: s(&dep["uri"]),
            source_digest: dep["digest"]["sha256"]
                .as_str()
                .map(|h| format!("sha256:{h}"))
                .unwrap_or_default(),
            subjects: self.subjects(),
            signed_by: self
                .signatures
                .iter()
                .map(|(k, _)| {
                    k.as_ref()
                        .map_or_else(|| "(unnamed key)".into(), |k| k.to_string())
                })
                .collect(),
        }
    }
}

/// What a provenance statement says, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub builder_id: String,
    pub builder_version: String,
    pub build_type: String,
    pub source: String,
    pub source_digest: String,
    /// Subject digests (hex).
    pub subjects: Vec<String>,
    /// The fingerprints the envelope's signatures name.
    pub signed_by: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::KeyId;

    fn params<'a>(image: &'a Sha256Digest, src: &'a Sha256Digest) -> Params<'a> {
        Params {
            name: "app",
            version: "1.0",
            created: "2024-01-01T00:00:00Z",
            image,
            source: "oci:dir:tag",
            source_digest: src,
            sbom: true,
            tool_version: "0.1.0",
        }
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_are_deterministic_verify_and_refuse_tampering() {
        let image = Sha256Digest::of(b"image");
        let src = Sha256Digest::of(b"source");
        for suite in [Suite::CtSig01, Suite::CtSig02, Suite::CtSig03] {
            let key = Signer::generate(KeyId::new("k").unwrap(), suite).unwrap().0;
            let st = statement(&params(&image, &src));
            let env = envelope(&st, &[&key]);
            assert_eq!(env, envelope(&st, &[&key]), "{suite}: deterministic");
            let o = open(&env).unwrap();
            assert!(o.is_about(&image));
            assert!(!o.is_about(&src));
            assert_eq!(o.signatures[0].0, Some(key.fingerprint()));
            o.verify(0, suite, &key.public_key()).unwrap();
            let mut forged = o.clone();
            forged.payload.push(b' ');
            assert!(
                forged.verify(0, suite, &key.public_key()).is_err(),
                "{suite}"
            );
            let s = o.summary();
            assert_eq!(s.builder_id, BUILDER_ID);
            assert_eq!(s.source, "oci:dir:tag");
            assert_eq!(s.source_digest, src.to_string());
        }
    }

    #[test]
    fn hostile_envelopes_are_refused_with_a_reason() {
        let key = Signer::generate(KeyId::new("k").unwrap(), Suite::CtSig01)
            .unwrap()
            .0;
        let image = Sha256Digest::of(b"image");
        let src = Sha256Digest::of(b"source");
        let good = envelope(&statement(&params(&image, &src)), &[&key]);
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v["payloadType"] = json!("text/plain");
        assert!(open(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .contains("payload type"));
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v["signatures"] = json!([]);
        assert!(open(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .contains("no signatures"));
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        v["payload"] = json!(B64.encode(br#"{"_type":"x"}"#));
        assert!(open(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .contains("_type"));
        assert!(open(b"{").is_err());
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        let one = v["signatures"][0].clone();
        v["signatures"] = Value::Array(vec![one; MAX_ENVELOPE_SIGNATURES + 1]);
        assert!(open(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .contains("above the limit"));
        assert!(open(&vec![b' '; MAX_ENVELOPE_BYTES + 1])
            .unwrap_err()
            .contains("limit"));
    }
}
