//! Reading `policy.json` v1 into a [`Policy`]: the schema, its defaults and its validation
//! rules (spec/policy.md §3–§4). The first problem found ends parsing, with the JSON path of the
//! offending value in the error.

use super::json::{array, boolean, integer, invalid, quote, Json, Object};
use super::values::{parse_date, show_date, Glob, PinSigner, PolicySuite};
use super::{
    AllowedSigner, DefaultAction, DeniedSigner, Pin, Policy, PolicyError, ATTESTATION_KINDS,
    DEFAULT_CLOCK_SKEW_SECONDS, POLICY_MAX_BYTES, POLICY_VERSION_V1,
};
use crate::{Fingerprint, Sha256Digest};

/// Largest `time.max_age_days`: a century. Larger values are a typo, not a policy.
const MAX_AGE_DAYS_LIMIT: u64 = 36_500;
/// Largest `time.clock_skew_tolerance_seconds`: one day. A clock further off than that is
/// broken, and tolerating it would let "future" bundles slip past deny windows and age limits.
const CLOCK_SKEW_LIMIT_SECONDS: u64 = 86_400;

pub(super) const TOP_FIELDS: &[&str] = &[
    "version",
    "default_action",
    "signers",
    "registries",
    "suites",
    "require_attestations",
    "pin",
    "time",
];

pub(super) fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
    if bytes.len() > POLICY_MAX_BYTES {
        return Err(PolicyError::TooLarge {
            size: bytes.len(),
            limit: POLICY_MAX_BYTES,
        });
    }
    let root = Json::parse(bytes)?;
    let top = Object::new(&root, "")?;

    // The version comes first: a policy written for another version is refused as such, not
    // for whatever unknown field it happens to use.
    match top.get("version") {
        None => return Err(invalid("version", format!("missing; this policy format needs \"version\": \"{POLICY_VERSION_V1}\""))),
        Some((Json::String(v), _)) if v == POLICY_VERSION_V1 => {}
        Some((Json::String(v), path)) => {
            return Err(invalid(&path, format!("unsupported policy version {}; this ct understands version \"{POLICY_VERSION_V1}\"", quote(v))))
        }
        Some((other, path)) => {
            return Err(invalid(&path, format!("expected the string \"{POLICY_VERSION_V1}\", found {}", other.describe())))
        }
    }
    top.deny_unknown(TOP_FIELDS)?;

    let mut policy = Policy {
        default_action: DefaultAction::Deny,
        allowed: Vec::new(),
        denied: Vec::new(),
        threshold: None,
        threshold_from: None,
        registries_allowed: None,
        registries_blocked: Vec::new(),
        suites_allowed: None,
        suites_minimum: None,
        require_attestations: [false; 3],
        pins: Vec::new(),
        max_age_days: None,
        clock_skew_tolerance_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
    };

    if let Some((v, path)) = top.get("default_action") {
        policy.default_action = match super::json::string(v, &path)? {
            "allow" => DefaultAction::Allow,
            "deny" => DefaultAction::Deny,
            other => {
                return Err(invalid(
                    &path,
                    format!("expected \"allow\" or \"deny\", found {}", quote(other)),
                ))
            }
        };
    }
    if let Some((v, path)) = top.get("signers") {
        read_signers(v, &path, &mut policy)?;
    }
    if let Some((v, path)) = top.get("registries") {
        let o = Object::new(v, &path)?;
        o.deny_unknown(&["allowed", "blocked"])?;
        if let Some((v, path)) = o.get("allowed") {
            policy.registries_allowed =
                Some(non_empty(globs(v, &path)?, &path, "allow any registry")?);
        }
        if let Some((v, path)) = o.get("blocked") {
            policy.registries_blocked = globs(v, &path)?;
        }
    }
    if let Some((v, path)) = top.get("suites") {
        read_suites(v, &path, &mut policy)?;
    }
    if let Some((v, path)) = top.get("require_attestations") {
        let o = Object::new(v, &path)?;
        o.deny_unknown(&ATTESTATION_KINDS)?;
        for (i, kind) in ATTESTATION_KINDS.iter().enumerate() {
            if let Some((v, path)) = o.get(kind) {
                policy.require_attestations[i] = boolean(v, &path)?;
            }
        }
    }
    if let Some((v, path)) = top.get("pin") {
        let o = Object::new(v, &path)?;
        for (name, v) in o.members {
            let path = pin_rule(name);
            if name.is_empty() {
                return Err(invalid(&path, "a pin needs a bundle name"));
            }
            policy.pins.push((name.clone(), read_pin(v, &path)?));
        }
    }
    if let Some((v, path)) = top.get("time") {
        let o = Object::new(v, &path)?;
        o.deny_unknown(&["max_age_days", "clock_skew_tolerance_seconds"])?;
        if let Some((v, path)) = o.get("max_age_days") {
            let days = integer(v, &path, MAX_AGE_DAYS_LIMIT)?;
            if days == 0 {
                return Err(invalid(
                    &path,
                    "must be at least 1 (omit it for no age limit)",
                ));
            }
            policy.max_age_days = Some(days as u32);
        }
        if let Some((v, path)) = o.get("clock_skew_tolerance_seconds") {
            policy.clock_skew_tolerance_seconds =
                integer(v, &path, CLOCK_SKEW_LIMIT_SECONDS)? as u32;
        }
    }
    Ok(policy)
}

/// The rule name (and JSON path) of the pin for `name`: `pin["nginx"]`.
pub(super) fn pin_rule(name: &str) -> String {
    format!(
        "pin[{}]",
        serde_json::to_string(name).unwrap_or_else(|_| "\"?\"".into())
    )
}

fn read_signers(v: &Json, path: &str, policy: &mut Policy) -> Result<(), PolicyError> {
    let o = Object::new(v, path)?;
    o.deny_unknown(&["allowed", "denied", "threshold", "threshold_from"])?;
    if let Some((v, path)) = o.get("allowed") {
        for (i, item) in array(v, &path)?.iter().enumerate() {
            let path = format!("{path}[{i}]");
            let e = Object::new(item, &path)?;
            e.deny_unknown(&["key_id", "fingerprint", "suites", "required"])?;
            let (key_id, fingerprint) = signer_match(&e)?;
            let suites = match e.get("suites") {
                Some((v, path)) => Some(non_empty(
                    suite_list(v, &path)?,
                    &path,
                    "match a signature in any suite",
                )?),
                None => None,
            };
            let required = match e.get("required") {
                Some((v, path)) => boolean(v, &path)?,
                None => false,
            };
            policy.allowed.push(AllowedSigner {
                key_id,
                fingerprint,
                suites,
                required,
            });
        }
    }
    if let Some((v, path)) = o.get("denied") {
        for (i, item) in array(v, &path)?.iter().enumerate() {
            let path = format!("{path}[{i}]");
            let e = Object::new(item, &path)?;
            e.deny_unknown(&["key_id", "fingerprint", "after", "before", "reason"])?;
            let (key_id, fingerprint) = signer_match(&e)?;
            let date = |name: &str| match e.get(name) {
                Some((v, path)) => parse_date(super::json::string(v, &path)?, &path).map(Some),
                None => Ok(None),
            };
            let (after, before) = (date("after")?, date("before")?);
            if let (Some(a), Some(b)) = (after, before) {
                if a >= b {
                    return Err(invalid(&path, format!("\"after\" ({}) must be earlier than \"before\" ({}); this window is empty", show_date(&a), show_date(&b))));
                }
            }
            let reason = match e.get("reason") {
                Some((v, path)) => Some(super::json::string(v, &path)?.to_string()),
                None => None,
            };
            policy.denied.push(DeniedSigner {
                key_id,
                fingerprint,
                after,
                before,
                reason,
            });
        }
    }
    if let Some((v, path)) = o.get("threshold") {
        policy.threshold = Some(integer(v, &path, u64::from(u32::MAX))? as u32);
    }
    if let Some((v, path)) = o.get("threshold_from") {
        if policy.threshold.is_none() {
            return Err(invalid(&path, "has no effect without signers.threshold"));
        }
        policy.threshold_from = Some(non_empty(
            globs(v, &path)?,
            &path,
            "count every trusted signer",
        )?);
    }
    Ok(())
}

/// The `key_id` glob and `fingerprint` of a signers entry; at least one must be present.
fn signer_match(e: &Object<'_>) -> Result<(Option<Glob>, Option<Fingerprint>), PolicyError> {
    let key_id = match e.get("key_id") {
        Some((v, path)) => Some(Glob::parse(super::json::string(v, &path)?, &path)?),
        None => None,
    };
    let fingerprint = match e.get("fingerprint") {
        Some((v, path)) => {
            let s = super::json::string(v, &path)?;
            Some(Fingerprint::parse(s).map_err(|err| invalid(&path, err.to_string()))?)
        }
        None => None,
    };
    if key_id.is_none() && fingerprint.is_none() {
        return Err(invalid(
            &e.path,
            "needs \"key_id\", \"fingerprint\" or both",
        ));
    }
    Ok((key_id, fingerprint))
}

fn read_suites(v: &Json, path: &str, policy: &mut Policy) -> Result<(), PolicyError> {
    let o = Object::new(v, path)?;
    o.deny_unknown(&["allowed", "minimum"])?;
    if let Some((v, path)) = o.get("allowed") {
        policy.suites_allowed = Some(non_empty(suite_list(v, &path)?, &path, "accept any suite")?);
    }
    if let Some((v, path)) = o.get("minimum") {
        let min = PolicySuite::parse(super::json::string(v, &path)?, &path)?;
        if let Some(allowed) = &policy.suites_allowed {
            if allowed.iter().all(|s| *s < min) {
                return Err(invalid(
                    &path,
                    format!(
                        "{} is above every suite in suites.allowed, so no signature could pass",
                        min.id()
                    ),
                ));
            }
        }
        policy.suites_minimum = Some(min);
    }
    Ok(())
}

/// An array of suite ids (duplicates allowed).
fn suite_list(v: &Json, path: &str) -> Result<Vec<PolicySuite>, PolicyError> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{path}[{i}]");
            PolicySuite::parse(super::json::string(item, &path)?, &path)
        })
        .collect()
}

fn read_pin(v: &Json, path: &str) -> Result<Pin, PolicyError> {
    let o = Object::new(v, path)?;
    o.deny_unknown(&["digest", "signers"])?;
    let digest = match o.get("digest") {
        Some((v, path)) => {
            let s = super::json::string(v, &path)?;
            Some(Sha256Digest::parse(s).map_err(|err| invalid(&path, err.to_string()))?)
        }
        None => None,
    };
    let signers = match o.get("signers") {
        Some((v, path)) => {
            let mut signers = Vec::new();
            for (i, item) in array(v, &path)?.iter().enumerate() {
                let path = format!("{path}[{i}]");
                signers.push(PinSigner::parse(super::json::string(item, &path)?, &path)?);
            }
            Some(non_empty(signers, &path, "pin no signers")?)
        }
        None => None,
    };
    if digest.is_none() && signers.is_none() {
        return Err(invalid(path, "a pin needs \"digest\", \"signers\" or both"));
    }
    Ok(Pin { digest, signers })
}

fn globs(v: &Json, path: &str) -> Result<Vec<Glob>, PolicyError> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{path}[{i}]");
            Glob::parse(super::json::string(item, &path)?, &path)
        })
        .collect()
}

/// Lists whose emptiness would silently mean "nothing passes" (or nothing) are refused.
fn non_empty<T>(items: Vec<T>, path: &str, omit_means: &str) -> Result<Vec<T>, PolicyError> {
    if items.is_empty() {
        return Err(invalid(
            path,
            format!("empty list; omit the field to {omit_means}"),
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(policy: &str) -> String {
        Policy::parse(policy.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn minimal_policy_gets_defaults() {
        let p = Policy::parse(br#"{"version": "1"}"#).unwrap();
        assert_eq!(p.default_action, DefaultAction::Deny);
        assert_eq!(p.clock_skew_tolerance_seconds, DEFAULT_CLOCK_SKEW_SECONDS);
        assert!(p.allowed.is_empty() && p.denied.is_empty() && p.pins.is_empty());
        assert!(
            p.registries_allowed.is_none()
                && p.suites_allowed.is_none()
                && p.suites_minimum.is_none()
        );
    }

    #[test]
    fn full_policy_reads_every_field() {
        let fp = Fingerprint::of_public_key(b"k");
        let text = format!(
            r#"{{"version": "1", "default_action": "allow",
              "signers": {{"allowed": [{{"key_id": "rel-*", "fingerprint": "{fp}", "required": true}}],
                          "denied": [{{"fingerprint": "{hex}", "after": "2026-01-01", "before": "2026-02-01T00:00:00+01:00", "reason": "leaked"}}],
                          "threshold": 2, "threshold_from": ["rel-*"]}},
              "registries": {{"allowed": ["docker.io/*"], "blocked": ["docker.io/evil/*"]}},
              "suites": {{"allowed": ["CT-SIG-02", "CT-SIG-03"], "minimum": "CT-SIG-02"}},
              "require_attestations": {{"provenance": true, "sbom": false, "transparency_log": true}},
              "pin": {{"nginx": {{"digest": "sha256:{hex}", "signers": ["rel-1", "{hex}"]}}, "redis": {{"signers": ["x"]}}}},
              "time": {{"max_age_days": 90, "clock_skew_tolerance_seconds": 60}}}}"#,
            hex = fp.hex()
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert_eq!(p.default_action, DefaultAction::Allow);
        assert_eq!(p.allowed[0].fingerprint, Some(fp));
        assert!(p.allowed[0].required);
        assert_eq!(p.denied[0].fingerprint, Some(fp));
        assert_eq!(
            p.denied[0].before.map(|d| show_date(&d)).as_deref(),
            Some("2026-01-31T23:00:00Z")
        );
        assert_eq!(p.denied[0].reason.as_deref(), Some("leaked"));
        assert_eq!(
            (p.threshold, p.threshold_from.as_ref().map(Vec::len)),
            (Some(2), Some(1))
        );
        assert_eq!(p.registries_blocked.len(), 1);
        assert_eq!(p.suites_minimum, Some(PolicySuite::CtSig02));
        assert_eq!(p.require_attestations, [true, false, true]);
        assert_eq!(p.pins.len(), 2);
        assert_eq!(
            p.pins[0].1.signers.as_ref().unwrap()[1],
            PinSigner::Fingerprint(fp)
        );
        assert_eq!(
            (p.max_age_days, p.clock_skew_tolerance_seconds),
            (Some(90), 60)
        );
    }

    #[test]
    fn errors_name_the_place() {
        let cases = [
            (r#"{}"#, "version: missing"),
            (r#"[]"#, "policy: expected an object, found an array"),
            (
                r#"{"version": 1}"#,
                "version: expected the string \"1\", found number 1",
            ),
            (
                r#"{"version": "2", "new_thing": 1}"#,
                "version: unsupported policy version \"2\"",
            ),
            (
                r#"{"version": "1", "Signers": {}}"#,
                "Signers: unknown field",
            ),
            (
                r#"{"version": "1", "signers": {"allowed": [{"key_id": "a"}, {"keyid": "b"}]}}"#,
                "signers.allowed[1].keyid: unknown field",
            ),
            (
                r#"{"version": "1", "signers": {"allowed": [{}]}}"#,
                "signers.allowed[0]: needs \"key_id\", \"fingerprint\" or both",
            ),
            (
                r#"{"version": "1", "signers": {"allowed": [{"key_id": "a", "required": "yes"}]}}"#,
                "signers.allowed[0].required: expected true or false",
            ),
            (
                r#"{"version": "1", "signers": {"denied": [{"key_id": "a"}, {"key_id": "b", "after": "2026-13-01"}]}}"#,
                "signers.denied[1].after: invalid date \"2026-13-01\"",
            ),
            (
                r#"{"version": "1", "signers": {"denied": [{"key_id": "a", "after": "2026-02-01", "before": "2026-02-01"}]}}"#,
                "signers.denied[0]: \"after\" (2026-02-01T00:00:00Z) must be earlier",
            ),
            (
                r#"{"version": "1", "signers": {"denied": [{"fingerprint": "abcd"}]}}"#,
                "signers.denied[0].fingerprint: invalid fingerprint \"abcd\"",
            ),
            (
                r#"{"version": "1", "signers": {"denied": [{"key_id": "a", "reason": 5}]}}"#,
                "signers.denied[0].reason: expected a string, found number 5",
            ),
            (
                r#"{"version": "1", "signers": {"threshold": -1}}"#,
                "signers.threshold: expected a whole number",
            ),
            (
                r#"{"version": "1", "signers": {"threshold": 4294967296}}"#,
                "signers.threshold: 4294967296 is too large",
            ),
            (
                r#"{"version": "1", "signers": {"threshold_from": ["a"]}}"#,
                "signers.threshold_from: has no effect without signers.threshold",
            ),
            (
                r#"{"version": "1", "signers": {"threshold": 1, "threshold_from": []}}"#,
                "signers.threshold_from: empty list",
            ),
            (
                r#"{"version": "1", "default_action": "Deny"}"#,
                "default_action: expected \"allow\" or \"deny\", found \"Deny\"",
            ),
            (
                r#"{"version": "1", "registries": {"allowed": []}}"#,
                "registries.allowed: empty list; omit the field to allow any registry",
            ),
            (
                r#"{"version": "1", "registries": {"blocked": ["ok", "[x"]}}"#,
                "registries.blocked[1]: invalid glob \"[x\"",
            ),
            (
                r#"{"version": "1", "registries": {"blocked": "x"}}"#,
                "registries.blocked: expected an array, found string \"x\"",
            ),
            (
                r#"{"version": "1", "suites": {"allowed": ["CT-SIG-01", "ct-sig-02"]}}"#,
                "suites.allowed[1]: unknown suite \"ct-sig-02\"",
            ),
            (
                r#"{"version": "1", "suites": {"allowed": ["CT-SIG-01"], "minimum": "CT-SIG-02"}}"#,
                "suites.minimum: CT-SIG-02 is above every suite",
            ),
            (
                r#"{"version": "1", "require_attestations": {"slsa": true}}"#,
                "require_attestations.slsa: unknown field",
            ),
            (
                r#"{"version": "1", "pin": {"nginx": {}}}"#,
                "pin[\"nginx\"]: a pin needs \"digest\", \"signers\" or both",
            ),
            (
                r#"{"version": "1", "pin": {"nginx": {"digest": "sha256:abc"}}}"#,
                "pin[\"nginx\"].digest: invalid sha256 digest",
            ),
            (
                r#"{"version": "1", "pin": {"nginx": {"signers": ["ok", "not ok"]}}}"#,
                "pin[\"nginx\"].signers[1]: \"not ok\" is neither a key id",
            ),
            (
                r#"{"version": "1", "pin": {"nginx": {"signers": []}}}"#,
                "pin[\"nginx\"].signers: empty list",
            ),
            (
                r#"{"version": "1", "pin": {"": {"signers": ["a"]}}}"#,
                "pin[\"\"]: a pin needs a bundle name",
            ),
            (
                r#"{"version": "1", "pin": {"a b": {"digest": "x", "sign": 1}}}"#,
                "pin[\"a b\"].sign: unknown field",
            ),
            (
                r#"{"version": "1", "time": {"max_age_days": 0}}"#,
                "time.max_age_days: must be at least 1",
            ),
            (
                r#"{"version": "1", "time": {"max_age_days": 36501}}"#,
                "time.max_age_days: 36501 is too large",
            ),
            (
                r#"{"version": "1", "time": {"clock_skew_tolerance_seconds": 86401}}"#,
                "time.clock_skew_tolerance_seconds: 86401 is too large",
            ),
            (
                r#"{"version": "1", "time": {"max_age_days": null}}"#,
                "time.max_age_days: expected a whole number, 0 or more, found null",
            ),
            (
                r#"{"version": "1", "version": "1"}"#,
                "duplicate key \"version\"",
            ),
            (r#"{"version": "1"} x"#, "not valid JSON"),
        ];
        for (policy, want) in cases {
            let got = err(policy);
            assert!(
                got.contains(want),
                "{policy}\n  got:  {got}\n  want: {want}"
            );
        }
        let big = format!(
            r#"{{"version": "1", "pin": {{"x": {{"digest": "{}"}}}}}}"#,
            "a".repeat(POLICY_MAX_BYTES)
        );
        assert!(matches!(
            Policy::parse(big.as_bytes()),
            Err(PolicyError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_lists_that_are_harmless_are_fine() {
        Policy::parse(br#"{"version": "1", "signers": {"allowed": [], "denied": [], "threshold": 0}, "registries": {"blocked": []}, "pin": {}}"#).unwrap();
    }
}
