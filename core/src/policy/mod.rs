//! Trust policy (`policy.json` v1, specified in `spec/policy.md`): a strict parser that names
//! the field at fault, and a total, ordered evaluation that names the rule behind every verdict.
//!
//! `Policy::parse` never panics, whatever the bytes; `Policy::evaluate` is a pure function of the
//! policy and the facts (the order of `PolicyFacts::signatures` does not change the verdict).

mod document;
mod eval;
mod explain;
mod json;
mod parse;
mod summary;
mod values;

#[cfg(test)]
mod vectors;

use crate::{Fingerprint, KeyId, Sha256Digest};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

pub use document::{EditError, PolicyDocument, RuleItem};
pub use explain::{ExplainStep, Explanation, StepOutcome, STEP_NAMES};
use values::{Glob, PinSigner, PolicySuite};

/// A glob as policies write them (`*`, `?`, `[...]`, matching `/` too; no `**`), compiled once:
/// `ct search --signer`.
#[derive(Debug, Clone)]
pub struct KeyGlob(Glob);

impl KeyGlob {
    /// Compile `pattern`; an invalid one is an error saying why.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        Glob::parse(pattern, "glob")
            .map(KeyGlob)
            .map_err(|e| e.to_string())
    }

    pub fn matches(&self, s: &str) -> bool {
        self.0.matches(s)
    }
}

/// The only `version` this code understands. A new version is a new format, not an extension.
pub const POLICY_VERSION_V1: &str = "1";
/// Largest policy accepted. Hand-written policies are a few KiB; generated deny lists of a few
/// thousand entries still fit. Bounds the work an untrusted policy file can cause.
pub const POLICY_MAX_BYTES: usize = 1 << 20;
/// Clock skew tolerated when `time.clock_skew_tolerance_seconds` is absent.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u32 = 300;
/// Attestation kinds a policy can require, in the order they are checked.
pub const ATTESTATION_KINDS: [&str; 3] = ["provenance", "sbom", "transparency_log"];

/// A parsed and validated `policy.json`. Build it with [`Policy::parse`].
#[derive(Debug, Clone)]
pub struct Policy {
    default_action: DefaultAction,
    allowed: Vec<AllowedSigner>,
    denied: Vec<DeniedSigner>,
    threshold: Option<u32>,
    /// `None`: every trusted signer counts towards the threshold.
    threshold_from: Option<Vec<Glob>>,
    /// `None`: any source reference is allowed (unless blocked).
    registries_allowed: Option<Vec<Glob>>,
    registries_blocked: Vec<Glob>,
    /// `None`: any suite is accepted (subject to `suites_minimum`).
    suites_allowed: Option<Vec<PolicySuite>>,
    suites_minimum: Option<PolicySuite>,
    /// Indexed like [`ATTESTATION_KINDS`].
    require_attestations: [bool; 3],
    /// Bundle name → pin, in file order (names are unique).
    pins: Vec<(String, Pin)>,
    max_age_days: Option<u32>,
    clock_skew_tolerance_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultAction {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct AllowedSigner {
    key_id: Option<Glob>,
    fingerprint: Option<Fingerprint>,
    /// `None`: a signature in any (accepted) suite matches. Never an empty list.
    suites: Option<Vec<PolicySuite>>,
    required: bool,
}

#[derive(Debug, Clone)]
struct DeniedSigner {
    key_id: Option<Glob>,
    fingerprint: Option<Fingerprint>,
    /// Applies to bundles created at or after this instant.
    after: Option<DateTime<Utc>>,
    /// Applies to bundles created strictly before this instant.
    before: Option<DateTime<Utc>>,
    reason: Option<String>,
}

#[derive(Debug, Clone)]
struct Pin {
    digest: Option<Sha256Digest>,
    /// `None`: no signer constraint. Never an empty list.
    signers: Option<Vec<PinSigner>>,
}

impl Policy {
    /// Parse and validate `policy.json` bytes. Any problem is an error naming where it is, for
    /// example `signers.denied[1].after: invalid date "2026-13-01"`. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
        parse::parse(bytes)
    }

    /// Decide whether a bundle with these facts is acceptable. Total: always returns a verdict,
    /// and a rejection always names the rule that fired (see `spec/policy.md` for the order).
    pub fn evaluate(&self, facts: &PolicyFacts) -> Verdict {
        eval::evaluate(self, facts)
    }
}

/// A date in the policy syntax (spec/policy.md §4.6): `YYYY-MM-DD` (midnight UTC) or an RFC 3339
/// date-time with an offset. `None` when it is not one. Key validity windows use it too.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    values::parse_date_str(s)
}

/// A date as policy messages show it: RFC 3339 in UTC with `Z`.
pub fn show_date(d: &DateTime<Utc>) -> String {
    values::show_date(d)
}

/// Why a policy was refused. `Invalid` names the JSON path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("policy is not valid JSON: {0}")]
    Syntax(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// What the verifier established about a bundle, handed to [`Policy::evaluate`].
#[derive(Debug, Clone)]
pub struct PolicyFacts {
    /// `package.name` from the signed manifest.
    pub bundle_name: String,
    /// The source reference recorded in the signed manifest.
    pub source_reference: String,
    /// The image manifest digest recorded in the signed manifest.
    pub image_digest: Sha256Digest,
    /// The signed creation time (from the image config).
    pub created: DateTime<Utc>,
    /// The verifier's current time.
    pub now: DateTime<Utc>,
    /// Every cryptographically valid signature on the manifest; invalid ones are never passed.
    pub signatures: Vec<SignerFacts>,
    /// Attestation kinds present in the bundle (`provenance`, `sbom`, `transparency_log`).
    pub attestations: BTreeSet<String>,
}

/// One valid signature: who made it, with which suite, and whether its key is in the trust store.
#[derive(Debug, Clone)]
pub struct SignerFacts {
    pub key_id: KeyId,
    pub fingerprint: Fingerprint,
    pub suite: String,
    /// The fingerprint is in the local trust store.
    pub trusted: bool,
}

/// The outcome of an evaluation. Serialized as `{"verdict": "accept", "notes": [...]}` or
/// `{"verdict": "reject", "rule": ..., "reason": ..., "kind": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Accepted; the notes say which rules allowed it and which signatures were disregarded.
    Accept {
        notes: Vec<String>,
    },
    Reject(Rejection),
}

impl Verdict {
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept { .. })
    }
}

/// A rejection: the rule that fired (a path into the policy JSON) and a full sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// For example `signers.denied[0]`, `registries.blocked[2]`, `pin["nginx"]`, `default_action`.
    pub rule: String,
    /// Names the key ids, fingerprints and values involved.
    pub reason: String,
    pub kind: RejectionKind,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected by {}: {}", self.rule, self.reason)
    }
}

/// Which exit code a rejection maps to in the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// A policy rule refused the bundle (exit 4).
    Policy,
    /// A required attestation is missing (exit 5).
    AttestationMissing,
}

/// The policy `ct policy init` writes: deny by default, accept any bundle signed by a key in the
/// trust store with any known suite, tolerate 5 minutes of clock skew.
pub fn starter_policy() -> String {
    STARTER_POLICY.to_string()
}

const STARTER_POLICY: &str = r#"{
  "version": "1",
  "default_action": "deny",
  "signers": {
    "allowed": [
      { "key_id": "*" }
    ],
    "denied": []
  },
  "suites": {
    "allowed": ["CT-SIG-01", "CT-SIG-02", "CT-SIG-03"]
  },
  "require_attestations": {
    "provenance": false,
    "sbom": false,
    "transparency_log": false
  },
  "time": {
    "clock_skew_tolerance_seconds": 300
  }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_policy_parses_and_says_what_it_should() {
        let p = Policy::parse(starter_policy().as_bytes()).unwrap();
        assert_eq!(p.default_action, DefaultAction::Deny);
        assert_eq!(p.allowed.len(), 1);
        assert_eq!(p.allowed[0].key_id.as_ref().map(Glob::as_str), Some("*"));
        assert!(p.allowed[0].fingerprint.is_none() && !p.allowed[0].required);
        assert!(p.denied.is_empty() && p.threshold.is_none());
        assert_eq!(p.suites_allowed.as_deref(), Some(&PolicySuite::ALL[..]));
        assert_eq!(p.require_attestations, [false; 3]);
        assert_eq!(p.clock_skew_tolerance_seconds, 300);
        assert!(p.registries_allowed.is_none() && p.pins.is_empty() && p.max_age_days.is_none());
        assert!(starter_policy().ends_with("}\n"));
    }

    #[test]
    fn verdicts_serialize_with_a_verdict_tag() {
        let accept = Verdict::Accept {
            notes: vec!["n".into()],
        };
        assert_eq!(
            serde_json::to_value(&accept).unwrap(),
            serde_json::json!({"verdict": "accept", "notes": ["n"]})
        );
        let reject = Verdict::Reject(Rejection {
            rule: "require_attestations.sbom".into(),
            reason: "r".into(),
            kind: RejectionKind::AttestationMissing,
        });
        assert_eq!(
            serde_json::to_value(&reject).unwrap(),
            serde_json::json!({"verdict": "reject", "rule": "require_attestations.sbom",
                               "reason": "r", "kind": "attestation_missing"})
        );
    }
}
