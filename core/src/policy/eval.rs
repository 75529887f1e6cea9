//! Policy evaluation (spec/policy.md §5): eight steps in a fixed order, the first rejection
//! wins, and every verdict names the rule behind it. Pure: no clock, no I/O.

use super::explain::Trace;
use super::json::quote;
use super::parse::pin_rule;
use super::values::{show_date, PinSigner, PolicySuite};
use super::{
    AllowedSigner, DefaultAction, DeniedSigner, Policy, PolicyFacts, Rejection, RejectionKind,
    SignerFacts, Verdict, ATTESTATION_KINDS,
};
use chrono::TimeDelta;
use std::collections::BTreeMap;

const SECONDS_PER_DAY: i64 = 86_400;

type Step = Result<(), Rejection>;

fn reject(rule: impl Into<String>, reason: String) -> Rejection {
    Rejection {
        rule: rule.into(),
        reason,
        kind: RejectionKind::Policy,
    }
}

/// `key "alice" (SHA256:…)`.
fn who(s: &SignerFacts) -> String {
    format!("key {} ({})", quote(s.key_id.as_str()), s.fingerprint)
}

/// Every signature and why it does or does not count, for messages that must show what was there.
fn inventory(p: &Policy, sigs: &[&SignerFacts]) -> String {
    if sigs.is_empty() {
        return "the bundle has no valid signatures".into();
    }
    let list: Vec<String> = sigs
        .iter()
        .map(|s| {
            let status = match (s.trusted, suite_problem(p, &s.suite)) {
                (false, _) => "not trusted".to_string(),
                (true, None) => "trusted".to_string(),
                (true, Some((_, why))) => format!("trusted, but the suite {why}"),
            };
            format!("{} with {}, {status}", who(s), s.suite)
        })
        .collect();
    format!("signatures present: {}", list.join("; "))
}

fn glob_list<'a>(globs: impl IntoIterator<Item = &'a super::values::Glob>) -> String {
    globs
        .into_iter()
        .map(|g| quote(g.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a signers entry asks for: `key_id "rel-*" and fingerprint SHA256:…`.
fn entry_terms(key_id: Option<&super::values::Glob>, fp: Option<&crate::Fingerprint>) -> String {
    let mut terms = Vec::new();
    if let Some(g) = key_id {
        terms.push(format!("key_id {}", quote(g.as_str())));
    }
    if let Some(fp) = fp {
        terms.push(format!("fingerprint {fp}"));
    }
    terms.join(" and ")
}

fn matches_entry(
    key_id: Option<&super::values::Glob>,
    fp: Option<&crate::Fingerprint>,
    s: &SignerFacts,
) -> bool {
    key_id.is_none_or(|g| g.matches(s.key_id.as_str())) && fp.is_none_or(|f| *f == s.fingerprint)
}

impl AllowedSigner {
    fn matches(&self, s: &SignerFacts) -> bool {
        matches_entry(self.key_id.as_ref(), self.fingerprint.as_ref(), s)
            && self.suites.as_ref().is_none_or(|list| {
                PolicySuite::from_id(&s.suite).is_some_and(|k| list.contains(&k))
            })
    }
    fn terms(&self) -> String {
        let mut t = entry_terms(self.key_id.as_ref(), self.fingerprint.as_ref());
        if let Some(list) = &self.suites {
            let ids: Vec<&str> = list.iter().map(|s| s.id()).collect();
            t.push_str(&format!(" and suite {}", ids.join(" or ")));
        }
        t
    }
}

impl DeniedSigner {
    fn applies(&self, s: &SignerFacts, created: &chrono::DateTime<chrono::Utc>) -> bool {
        matches_entry(self.key_id.as_ref(), self.fingerprint.as_ref(), s)
            && self.after.is_none_or(|a| *created >= a)
            && self.before.is_none_or(|b| *created < b)
    }
    fn window(&self) -> String {
        match (self.after, self.before) {
            (None, None) => "for every bundle".into(),
            (Some(a), None) => format!("for bundles created at or after {}", show_date(&a)),
            (None, Some(b)) => format!("for bundles created before {}", show_date(&b)),
            (Some(a), Some(b)) => {
                format!(
                    "for bundles created at or after {} and before {}",
                    show_date(&a),
                    show_date(&b)
                )
            }
        }
    }
}

/// Why a signature's suite is not accepted, with the rule that says so.
fn suite_problem(p: &Policy, suite: &str) -> Option<(&'static str, String)> {
    let known = PolicySuite::from_id(suite);
    if let Some(allowed) = &p.suites_allowed {
        if !known.is_some_and(|k| allowed.contains(&k)) {
            let list: Vec<&str> = allowed.iter().map(|s| s.id()).collect();
            return Some((
                "suites.allowed",
                format!("is not in suites.allowed ({})", list.join(", ")),
            ));
        }
    }
    if let Some(min) = p.suites_minimum {
        match known {
            None => {
                return Some((
                    "suites.minimum",
                    format!("has no known rank against suites.minimum {}", min.id()),
                ))
            }
            Some(k) if k < min => {
                return Some((
                    "suites.minimum",
                    format!("is below suites.minimum {}", min.id()),
                ))
            }
            Some(_) => {}
        }
    }
    None
}

pub(super) fn evaluate(p: &Policy, facts: &PolicyFacts) -> Verdict {
    evaluate_traced(p, facts, &mut Trace::default())
}

/// [`evaluate`], telling `t` what each step looked at.
pub(super) fn evaluate_traced(p: &Policy, facts: &PolicyFacts, t: &mut Trace) -> Verdict {
    // A fixed order makes the verdict (and which entry fires first) independent of the order
    // in which the verifier listed the signatures.
    let mut sigs: Vec<&SignerFacts> = facts.signatures.iter().collect();
    sigs.sort_by(|a, b| {
        (
            a.key_id.as_str(),
            a.fingerprint,
            a.suite.as_str(),
            a.trusted,
        )
            .cmp(&(
                b.key_id.as_str(),
                b.fingerprint,
                b.suite.as_str(),
                b.trusted,
            ))
    });
    let mut notes = Vec::new();
    let mut outcome = || -> Step {
        t.begin(1);
        let eligible = step_suites(p, &sigs, &mut notes, t)?;
        t.begin(2);
        step_denied(p, facts, &sigs, t)?;
        t.begin(3);
        step_registries(p, facts, &mut notes, t)?;
        t.begin(4);
        step_pin(p, facts, &sigs, &eligible, &mut notes, t)?;
        t.begin(5);
        step_time(p, facts, &mut notes, t)?;
        t.begin(6);
        step_allowed(p, &sigs, &eligible, &mut notes, t)?;
        t.begin(7);
        step_threshold(p, &eligible, &mut notes, t)?;
        t.begin(8);
        step_attestations(p, facts, &mut notes, t)
    };
    let outcome = outcome();
    match outcome {
        Ok(()) => Verdict::Accept { notes },
        Err(r) => Verdict::Reject(r),
    }
}

/// Step 1. Returns the eligible signatures: trusted, and in a suite the policy accepts.
fn step_suites<'a>(
    p: &Policy,
    sigs: &[&'a SignerFacts],
    notes: &mut Vec<String>,
    t: &mut Trace,
) -> Result<Vec<&'a SignerFacts>, Rejection> {
    let mut eligible = Vec::new();
    let mut refused = Vec::new();
    if p.suites_allowed.is_none() && p.suites_minimum.is_none() {
        t.line("no suites rule: a signature in any suite is accepted");
    }
    if sigs.is_empty() {
        t.line("the bundle has no valid signatures");
    }
    for s in sigs {
        if !s.trusted {
            notes.push(format!(
                "{} is not trusted (not in the trust store, or outside its validity window); its signature satisfies no allow rule",
                who(s)
            ));
            t.line(format!(
                "{} with {}: not trusted, disregarded by every rule but signers.denied",
                who(s),
                s.suite
            ));
            continue;
        }
        match suite_problem(p, &s.suite) {
            None => {
                t.line(format!(
                    "{} with {}: trusted, suite accepted: eligible",
                    who(s),
                    s.suite
                ));
                eligible.push(*s)
            }
            Some((rule, why)) => {
                let text = format!("{} signed with {}, which {why}", who(s), s.suite);
                t.line(format!("{text} ({rule}): disregarded"));
                notes.push(format!("{text}; that signature is disregarded"));
                refused.push((rule, text));
            }
        }
    }
    if eligible.is_empty() {
        if let Some(&(rule, _)) = refused.first() {
            let all: Vec<String> = refused.into_iter().map(|(_, text)| text).collect();
            return Err(reject(
                rule,
                format!(
                    "No trusted signature uses a suite this policy accepts ({}): {}.",
                    accepted_suites(p),
                    all.join("; ")
                ),
            ));
        }
    }
    if p.suites_allowed.is_some() || p.suites_minimum.is_some() {
        notes.push(format!(
            "suites: {} trusted signature(s) in an accepted suite",
            eligible.len()
        ));
    }
    Ok(eligible)
}

/// Which suites the policy accepts, in words: `suites.minimum CT-SIG-02 requires CT-SIG-02 or
/// CT-SIG-03`.
fn accepted_suites(p: &Policy) -> String {
    let ok: Vec<&str> = PolicySuite::ALL
        .into_iter()
        .filter(|s| suite_problem(p, s.id()).is_none())
        .map(PolicySuite::id)
        .collect();
    let mut rules = Vec::new();
    if let Some(a) = &p.suites_allowed {
        let ids: Vec<&str> = a.iter().map(|s| s.id()).collect();
        rules.push(format!("suites.allowed is {}", ids.join(", ")));
    }
    if let Some(m) = p.suites_minimum {
        rules.push(format!("suites.minimum is {}", m.id()));
    }
    format!("{}, so it takes {}", rules.join(" and "), ok.join(" or "))
}

/// Step 2. Every signature counts here, trusted or not, whatever its suite.
fn step_denied(p: &Policy, facts: &PolicyFacts, sigs: &[&SignerFacts], t: &mut Trace) -> Step {
    if p.denied.is_empty() {
        t.line("no signers.denied entries");
    }
    for (i, d) in p.denied.iter().enumerate() {
        let terms = entry_terms(d.key_id.as_ref(), d.fingerprint.as_ref());
        let matching: Vec<&&SignerFacts> = sigs
            .iter()
            .filter(|s| matches_entry(d.key_id.as_ref(), d.fingerprint.as_ref(), s))
            .collect();
        if matching.is_empty() {
            t.line(format!(
                "signers.denied[{i}] ({terms}): matches no signature"
            ));
        } else if !matching.iter().any(|s| d.applies(s, &facts.created)) {
            t.line(format!(
                "signers.denied[{i}] ({terms}): matches {}, but applies only {} and the bundle was created {}",
                who(matching[0]),
                d.window(),
                show_date(&facts.created)
            ));
        } else {
            t.line(format!(
                "signers.denied[{i}] ({terms}) denies {} {}",
                who(matching[0]),
                d.window()
            ));
        }
        if let Some(s) = sigs.iter().find(|s| d.applies(s, &facts.created)) {
            let mut reason = format!(
                "The bundle carries a signature by {}, which signers.denied[{i}] ({}) denies {}; the bundle was created {}.",
                who(s),
                entry_terms(d.key_id.as_ref(), d.fingerprint.as_ref()),
                d.window(),
                show_date(&facts.created)
            );
            if let Some(r) = &d.reason {
                reason.push_str(&format!(" Reason given: {}.", quote(r)));
            }
            if !s.trusted {
                reason.push_str(" (The key is not in the trust store; a denied key's signature rejects the bundle all the same.)");
            }
            return Err(reject(format!("signers.denied[{i}]"), reason));
        }
    }
    Ok(())
}

/// Step 3.
fn step_registries(
    p: &Policy,
    facts: &PolicyFacts,
    notes: &mut Vec<String>,
    t: &mut Trace,
) -> Step {
    let src = &facts.source_reference;
    t.line(format!("source reference {}", quote(src)));
    if p.registries_blocked.is_empty() && p.registries_allowed.is_none() {
        t.line("no registries rule: any source is allowed");
    }
    for (i, g) in p.registries_blocked.iter().enumerate() {
        let verb = if g.matches(src) {
            "matches: blocked"
        } else {
            "does not match"
        };
        t.line(format!(
            "registries.blocked[{i}] ({}) {verb}",
            quote(g.as_str())
        ));
    }
    if let Some((i, g)) = p
        .registries_blocked
        .iter()
        .enumerate()
        .find(|(_, g)| g.matches(src))
    {
        return Err(reject(
            format!("registries.blocked[{i}]"),
            format!(
                "The source reference {} matches registries.blocked[{i}] ({}).",
                quote(src),
                quote(g.as_str())
            ),
        ));
    }
    if let Some(allowed) = &p.registries_allowed {
        for (i, g) in allowed.iter().enumerate() {
            let verb = if g.matches(src) {
                "matches"
            } else {
                "does not match"
            };
            t.line(format!(
                "registries.allowed[{i}] ({}) {verb}",
                quote(g.as_str())
            ));
        }
        match allowed.iter().enumerate().find(|(_, g)| g.matches(src)) {
            Some((i, g)) => notes.push(format!(
                "registries.allowed[{i}] ({}) allows source {}",
                quote(g.as_str()),
                quote(src)
            )),
            None => {
                return Err(reject(
                    "registries.allowed",
                    format!(
                        "The source reference {} matches none of registries.allowed ({}).",
                        quote(src),
                        glob_list(allowed)
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// Step 4.
fn step_pin(
    p: &Policy,
    facts: &PolicyFacts,
    sigs: &[&SignerFacts],
    eligible: &[&SignerFacts],
    notes: &mut Vec<String>,
    t: &mut Trace,
) -> Step {
    let Some((name, pin)) = p.pins.iter().find(|(name, _)| *name == facts.bundle_name) else {
        t.line(format!(
            "no pin for bundle name {}",
            quote(&facts.bundle_name)
        ));
        return Ok(());
    };
    let rule = pin_rule(name);
    if let Some(want) = &pin.digest {
        t.line(format!(
            "{rule} requires image digest {want}; the bundle has {}",
            facts.image_digest
        ));
        if *want != facts.image_digest {
            return Err(reject(
                rule.clone(),
                format!(
                    "{rule} requires image digest {want}, but bundle {} has image digest {}.",
                    quote(name),
                    facts.image_digest
                ),
            ));
        }
        notes.push(format!("{rule}: image digest {want} matches"));
    }
    if let Some(signers) = &pin.signers {
        let hit = eligible.iter().find_map(|s| {
            signers
                .iter()
                .find(|ps| match ps {
                    PinSigner::Fingerprint(fp) => *fp == s.fingerprint,
                    PinSigner::KeyId(k) => *k == s.key_id,
                })
                .map(|_| *s)
        });
        let want: Vec<String> = signers.iter().map(PinSigner::describe).collect();
        t.line(format!(
            "{rule} requires an eligible signature from one of: {}; {}",
            want.join(", "),
            match hit {
                Some(s) => format!("{} is one", who(s)),
                None => "none is".into(),
            }
        ));
        match hit {
            Some(s) => notes.push(format!("{rule}: signed by pinned signer {}", who(s))),
            None => {
                let want: Vec<String> = signers.iter().map(PinSigner::describe).collect();
                return Err(reject(
                    rule.clone(),
                    format!(
                        "{rule} requires a trusted signature, in an accepted suite, from one of: {}; none was found ({}).",
                        want.join(", "),
                        inventory(p, sigs)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Step 5.
fn step_time(p: &Policy, facts: &PolicyFacts, notes: &mut Vec<String>, t: &mut Trace) -> Step {
    let (created, now) = (facts.created, facts.now);
    t.line(format!(
        "created {}, now {}; time.max_age_days {}, time.clock_skew_tolerance_seconds {}",
        show_date(&created),
        show_date(&now),
        p.max_age_days
            .map_or("not set".to_string(), |d| d.to_string()),
        p.clock_skew_tolerance_seconds
    ));
    if let Some(days) = p.max_age_days {
        let oldest = TimeDelta::try_seconds(i64::from(days) * SECONDS_PER_DAY)
            .and_then(|d| now.checked_sub_signed(d));
        if oldest.is_some_and(|oldest| created < oldest) {
            return Err(reject(
                "time.max_age_days",
                format!(
                    "The bundle was created {}, {} days before now ({}); time.max_age_days allows {days}.",
                    show_date(&created),
                    (now - created).num_days(),
                    show_date(&now)
                ),
            ));
        }
        notes.push(format!(
            "time.max_age_days: created {}, within {days} days",
            show_date(&created)
        ));
    }
    let skew = p.clock_skew_tolerance_seconds;
    let latest = TimeDelta::try_seconds(i64::from(skew)).and_then(|d| now.checked_add_signed(d));
    if latest.is_some_and(|latest| created > latest) {
        return Err(reject(
            "time.clock_skew_tolerance_seconds",
            format!(
                "The bundle was created {}, {} seconds after now ({}); time.clock_skew_tolerance_seconds allows {skew}. Check the clock here and where the image was built.",
                show_date(&created),
                (created - now).num_seconds(),
                show_date(&now)
            ),
        ));
    }
    Ok(())
}

/// Step 6: required entries, then the default action.
fn step_allowed(
    p: &Policy,
    sigs: &[&SignerFacts],
    eligible: &[&SignerFacts],
    notes: &mut Vec<String>,
    t: &mut Trace,
) -> Step {
    let matched: Vec<Option<&SignerFacts>> = p
        .allowed
        .iter()
        .map(|a| eligible.iter().find(|s| a.matches(s)).copied())
        .collect();
    if p.allowed.is_empty() {
        t.line("signers.allowed is empty");
    }
    for (i, a) in p.allowed.iter().enumerate() {
        let required = if a.required { ", required" } else { "" };
        let all: Vec<String> = eligible
            .iter()
            .filter(|s| a.matches(s))
            .map(|s| who(s))
            .collect();
        t.line(format!(
            "signers.allowed[{i}] ({}{required}): {}",
            a.terms(),
            if all.is_empty() {
                "matched by no eligible signature".to_string()
            } else {
                format!("matched by {}", all.join(", "))
            }
        ));
    }
    for (i, (a, m)) in p.allowed.iter().zip(&matched).enumerate() {
        if a.required && m.is_none() {
            return Err(reject(
                format!("signers.allowed[{i}]"),
                format!(
                    "signers.allowed[{i}] ({}) is required, but no trusted signature in an accepted suite matches it ({}).",
                    a.terms(),
                    inventory(p, sigs)
                ),
            ));
        }
    }
    let mut any = false;
    for (i, (a, m)) in p.allowed.iter().zip(&matched).enumerate() {
        if let Some(s) = m {
            any = true;
            let required = if a.required { ", required" } else { "" };
            notes.push(format!(
                "signers.allowed[{i}] ({}{required}) matched by {}",
                a.terms(),
                who(s)
            ));
        }
    }
    t.line(match (p.default_action, any) {
        (_, true) => "an entry matched: the signers are admitted".to_string(),
        (DefaultAction::Allow, false) => {
            "no entry matched; default_action \"allow\" admits the bundle anyway".to_string()
        }
        (DefaultAction::Deny, false) => {
            "no entry matched and default_action is \"deny\"".to_string()
        }
    });
    match (p.default_action, any) {
        (_, true) => Ok(()),
        (DefaultAction::Allow, false) => {
            notes.push("default_action \"allow\": no signers.allowed entry had to match".into());
            Ok(())
        }
        (DefaultAction::Deny, false) => {
            let why = if p.allowed.is_empty() {
                "signers.allowed is empty".to_string()
            } else {
                "no trusted signature in an accepted suite matches any signers.allowed entry"
                    .to_string()
            };
            Err(reject(
                "default_action",
                format!(
                    "default_action is \"deny\" and {why} ({}).",
                    inventory(p, sigs)
                ),
            ))
        }
    }
}

/// Step 7: distinct fingerprints among eligible signatures (narrowed by `threshold_from`).
fn step_threshold(
    p: &Policy,
    eligible: &[&SignerFacts],
    notes: &mut Vec<String>,
    t: &mut Trace,
) -> Step {
    let Some(n) = p.threshold else {
        t.line("no signers.threshold");
        return Ok(());
    };
    // Fingerprint → the first signature with it (in evaluation order), to name it in messages.
    let mut counted: BTreeMap<crate::Fingerprint, &SignerFacts> = BTreeMap::new();
    for s in eligible.iter().filter(|s| {
        p.threshold_from
            .as_ref()
            .is_none_or(|from| from.iter().any(|g| g.matches(s.key_id.as_str())))
    }) {
        counted.entry(s.fingerprint).or_insert(s);
    }
    let scope = match &p.threshold_from {
        Some(from) => format!(
            " whose key id matches signers.threshold_from ({})",
            glob_list(from)
        ),
        None => String::new(),
    };
    let list: Vec<String> = counted.values().map(|s| who(s)).collect();
    t.line(format!(
        "signers.threshold {n}{scope}: counted {} distinct fingerprint(s){}",
        counted.len(),
        if list.is_empty() {
            String::new()
        } else {
            format!(": {}", list.join(", "))
        }
    ));
    if counted.len() < n as usize {
        let found: Vec<String> = counted.values().map(|s| who(s)).collect();
        let found = if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        };
        return Err(reject(
            "signers.threshold",
            format!(
                "signers.threshold requires {n} distinct trusted signers (counted by fingerprint, in an accepted suite){scope}, but the bundle has {}: {found}.",
                counted.len()
            ),
        ));
    }
    notes.push(format!(
        "signers.threshold: {} distinct trusted signers{scope}, {n} required",
        counted.len()
    ));
    Ok(())
}

/// Step 8.
fn step_attestations(
    p: &Policy,
    facts: &PolicyFacts,
    notes: &mut Vec<String>,
    t: &mut Trace,
) -> Step {
    let mut present = Vec::new();
    if !p.require_attestations.contains(&true) {
        t.line("no attestation is required");
    }
    for (kind, required) in ATTESTATION_KINDS.iter().zip(p.require_attestations) {
        if required {
            let has = facts.attestations.contains(*kind);
            t.line(format!(
                "require_attestations.{kind}: {}",
                if has { "present" } else { "missing" }
            ));
        }
    }
    for (kind, required) in ATTESTATION_KINDS.iter().zip(p.require_attestations) {
        if !required {
            continue;
        }
        if !facts.attestations.contains(*kind) {
            let have: Vec<&str> = facts.attestations.iter().map(String::as_str).collect();
            let have = if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            };
            return Err(Rejection {
                rule: format!("require_attestations.{kind}"),
                reason: format!("require_attestations.{kind} is true, but the bundle has no {kind} attestation (attestations present: {have})."),
                kind: RejectionKind::AttestationMissing,
            });
        }
        present.push(*kind);
    }
    if !present.is_empty() {
        notes.push(format!(
            "require_attestations: {} present",
            present.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::values::parse_date_str;
    use super::*;
    use crate::{Fingerprint, KeyId, Sha256Digest};

    fn sig(id: &str, suite: &str, trusted: bool) -> SignerFacts {
        SignerFacts {
            key_id: KeyId::new(id).unwrap(),
            fingerprint: Fingerprint::of_public_key(id.as_bytes()),
            suite: suite.into(),
            trusted,
        }
    }

    fn facts(signatures: Vec<SignerFacts>) -> PolicyFacts {
        PolicyFacts {
            bundle_name: "nginx".into(),
            source_reference: "docker.io/library/nginx:1.25".into(),
            image_digest: Sha256Digest::of(b"image"),
            created: parse_date_str("2026-01-10T00:00:00Z").unwrap(),
            now: parse_date_str("2026-02-01T00:00:00Z").unwrap(),
            signatures,
            attestations: Default::default(),
        }
    }

    fn policy(json: &str) -> Policy {
        Policy::parse(json.as_bytes()).unwrap()
    }

    fn rejection(p: &Policy, f: &PolicyFacts) -> Rejection {
        match p.evaluate(f) {
            Verdict::Reject(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn accept_notes_explain_the_decision() {
        let p = policy(&super::super::starter_policy());
        let Verdict::Accept { notes } = p.evaluate(&facts(vec![
            sig("alice", "CT-SIG-01", true),
            sig("eve", "CT-SIG-01", false),
        ])) else {
            panic!()
        };
        let all = notes.join("\n");
        assert!(
            all.contains("signers.allowed[0] (key_id \"*\") matched by key \"alice\""),
            "{all}"
        );
        assert!(all.contains("key \"eve\""), "{all}");
    }

    #[test]
    fn rejection_reasons_name_keys_fingerprints_and_values() {
        let alice = sig("alice", "CT-SIG-01", true);
        let fp = alice.fingerprint;
        let p = policy(&format!(
            r#"{{"version": "1", "signers": {{"allowed": [{{"key_id": "*"}}],
                "denied": [{{"fingerprint": "{fp}", "after": "2026-01-01", "reason": "rotated"}}]}}}}"#
        ));
        let r = rejection(&p, &facts(vec![alice]));
        assert_eq!(r.rule, "signers.denied[0]");
        assert_eq!(r.kind, RejectionKind::Policy);
        for needle in [
            "\"alice\"",
            &fp.to_string(),
            "2026-01-01T00:00:00Z",
            "2026-01-10T00:00:00Z",
            "\"rotated\"",
        ] {
            assert!(
                r.reason.contains(needle),
                "{needle} missing from {}",
                r.reason
            );
        }
        assert!(r.to_string().starts_with("rejected by signers.denied[0]: "));
    }

    #[test]
    fn verdict_does_not_depend_on_signature_order() {
        let p = policy(
            r#"{"version": "1", "signers": {"allowed": [{"key_id": "*"}], "denied": [{"key_id": "b*"}, {"key_id": "*o*"}]}}"#,
        );
        let sigs = vec![
            sig("bob", "CT-SIG-01", true),
            sig("carol", "CT-SIG-01", true),
            sig("boris", "CT-SIG-01", false),
        ];
        let first = p.evaluate(&facts(sigs.clone()));
        let mut reversed = sigs;
        reversed.reverse();
        assert_eq!(p.evaluate(&facts(reversed)), first);
        // Entry 0 fires, and for it the first signature in (key id, fingerprint) order.
        let Verdict::Reject(r) = first else { panic!() };
        assert_eq!(r.rule, "signers.denied[0]");
        assert!(r.reason.contains("\"bob\""), "{}", r.reason);
    }

    #[test]
    fn unknown_suite_with_only_a_minimum() {
        let p = policy(
            r#"{"version": "1", "signers": {"allowed": [{"key_id": "*"}]}, "suites": {"minimum": "CT-SIG-01"}}"#,
        );
        let r = rejection(&p, &facts(vec![sig("alice", "CT-SIG-99", true)]));
        assert_eq!(r.rule, "suites.minimum");
        assert!(r.reason.contains("no known rank"), "{}", r.reason);
        // Without any suites rule, whatever suite the verifier validated is accepted.
        let p = policy(r#"{"version": "1", "signers": {"allowed": [{"key_id": "*"}]}}"#);
        assert!(p
            .evaluate(&facts(vec![sig("alice", "CT-SIG-99", true)]))
            .is_accept());
    }

    #[test]
    fn threshold_zero_is_always_met() {
        let p =
            policy(r#"{"version": "1", "default_action": "allow", "signers": {"threshold": 0}}"#);
        assert!(p.evaluate(&facts(vec![])).is_accept());
    }

    #[test]
    fn threshold_counts_a_fingerprint_once_even_under_two_key_ids() {
        let p = policy(
            r#"{"version": "1", "signers": {"allowed": [{"key_id": "*"}], "threshold": 2, "threshold_from": ["rel-*"]}}"#,
        );
        let a = sig("rel-a", "CT-SIG-01", true);
        let mut b = sig("rel-b", "CT-SIG-01", true);
        b.fingerprint = a.fingerprint;
        let r = rejection(&p, &facts(vec![a.clone(), b]));
        assert_eq!(r.rule, "signers.threshold");
        assert!(
            r.reason.contains("has 1") && r.reason.contains("\"rel-*\""),
            "{}",
            r.reason
        );
        assert!(p
            .evaluate(&facts(vec![a, sig("rel-c", "CT-SIG-01", true)]))
            .is_accept());
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let p = policy(
            r#"{"version": "1", "default_action": "allow", "time": {"max_age_days": 36500, "clock_skew_tolerance_seconds": 86400}}"#,
        );
        let mut f = facts(vec![]);
        for (created, now) in [
            (
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
            ),
            (
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
            ),
            (
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
            ),
            (
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
                chrono::DateTime::<chrono::Utc>::MIN_UTC,
            ),
        ] {
            f.created = created;
            f.now = now;
            let _ = p.evaluate(&f);
        }
    }

    #[test]
    fn attestation_rejections_have_their_own_kind() {
        let p = policy(
            r#"{"version": "1", "default_action": "allow", "require_attestations": {"sbom": true}}"#,
        );
        let r = rejection(&p, &facts(vec![]));
        assert_eq!(
            (r.rule.as_str(), r.kind),
            (
                "require_attestations.sbom",
                RejectionKind::AttestationMissing
            )
        );
        assert!(
            r.reason.contains("attestations present: none"),
            "{}",
            r.reason
        );
    }
}
