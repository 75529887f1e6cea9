//! A plain-words summary of a parsed policy, one line per rule, for `ct policy check`.

use super::{DefaultAction, Policy, ATTESTATION_KINDS};

impl Policy {
    /// One sentence per rule that is in force, in evaluation order.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        let globs = |g: &[super::values::Glob]| {
            g.iter()
                .map(|g| g.as_str().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(s) = &self.suites_allowed {
            out.push(format!(
                "suites.allowed: {}",
                s.iter().map(|s| s.id()).collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(m) = self.suites_minimum {
            out.push(format!("suites.minimum: {}", m.id()));
        }
        for (i, d) in self.denied.iter().enumerate() {
            let who = match (&d.key_id, &d.fingerprint) {
                (Some(k), Some(f)) => format!("key id {} with fingerprint {f}", k.as_str()),
                (Some(k), None) => format!("key id {}", k.as_str()),
                (None, Some(f)) => format!("fingerprint {f}"),
                (None, None) => "any key".into(),
            };
            let when = match (d.after, d.before) {
                (Some(a), Some(b)) => format!(" for bundles created from {a} until {b}"),
                (Some(a), None) => format!(" for bundles created from {a} on"),
                (None, Some(b)) => format!(" for bundles created before {b}"),
                (None, None) => String::new(),
            };
            out.push(format!(
                "signers.denied[{i}]: deny {who}{when}{}",
                d.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        if !self.registries_blocked.is_empty() {
            out.push(format!(
                "registries.blocked: {}",
                globs(&self.registries_blocked)
            ));
        }
        if let Some(a) = &self.registries_allowed {
            out.push(format!("registries.allowed: only {}", globs(a)));
        }
        for (name, pin) in &self.pins {
            let mut parts = vec![];
            if let Some(d) = &pin.digest {
                parts.push(format!("image digest {d}"));
            }
            if let Some(s) = &pin.signers {
                parts.push(format!(
                    "signed by {}",
                    s.iter()
                        .map(|s| s.describe())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            out.push(format!("pin[{name:?}]: {}", parts.join(", ")));
        }
        if let Some(d) = self.max_age_days {
            out.push(format!(
                "time.max_age_days: bundles created more than {d} days ago are rejected"
            ));
        }
        out.push(format!(
            "time.clock_skew_tolerance_seconds: {}",
            self.clock_skew_tolerance_seconds
        ));
        for (i, a) in self.allowed.iter().enumerate() {
            let who = match (&a.key_id, &a.fingerprint) {
                (Some(k), Some(f)) => format!("key id {} with fingerprint {f}", k.as_str()),
                (Some(k), None) => format!("key id {}", k.as_str()),
                (None, Some(f)) => format!("fingerprint {f}"),
                (None, None) => "any key".into(),
            };
            let suites = a
                .suites
                .as_ref()
                .map(|l| {
                    let ids: Vec<&str> = l.iter().map(|s| s.id()).collect();
                    format!(", signing with {}", ids.join(" or "))
                })
                .unwrap_or_default();
            out.push(format!(
                "signers.allowed[{i}]: {}trusted signer {who}{suites}",
                if a.required {
                    "requires a "
                } else {
                    "allows a "
                }
            ));
        }
        out.push(format!(
            "default_action: {}",
            match self.default_action {
                DefaultAction::Deny => "deny (a bundle must match a signers.allowed entry)",
                DefaultAction::Allow => "allow (no signers.allowed match is needed)",
            }
        ));
        if let Some(t) = self.threshold {
            out.push(format!(
                "signers.threshold: at least {t} distinct trusted signers{}",
                self.threshold_from
                    .as_ref()
                    .map(|g| format!(" among {}", globs(g)))
                    .unwrap_or_default()
            ));
        }
        for (i, k) in ATTESTATION_KINDS.iter().enumerate() {
            if self.require_attestations[i] {
                out.push(format!("require_attestations.{k}: required"));
            }
        }
        out
    }
}
