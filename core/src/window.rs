//! Key validity windows (spec/signature.md §6): the span of bundle creation times for which a
//! key's signatures count. A window is checked against the bundle's *signed* creation time —
//! the only time a signature carries that stays the same when a bundle is packed again — so a
//! bundle signed while its key was valid stays valid after the key expires, and a signature on a
//! bundle created after the expiry never counts. The policy's time rules (`max_age_days`, the
//! clock skew tolerance) bound how far that creation time may be from the verifier's clock.

use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// When a key's signatures count: bundles created at or after `not_before` and strictly before
/// `expires`. Either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KeyWindow {
    pub not_before: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
}

/// How a window end is written in key files and messages: RFC 3339, UTC, `Z`, whole seconds
/// when the instant has no fraction.
pub fn show_instant(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Read a window end from a key file: the date syntax of policy files (spec/policy.md §4.6).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    crate::policy::parse_date(s)
}

impl KeyWindow {
    /// No limit on either side.
    pub fn is_unlimited(&self) -> bool {
        self.not_before.is_none() && self.expires.is_none()
    }

    /// Whether a bundle created at `t` is inside the window.
    pub fn contains(&self, t: &DateTime<Utc>) -> bool {
        self.not_before.is_none_or(|nb| *t >= nb) && self.expires.is_none_or(|e| *t < e)
    }

    /// An empty window (`not_before` not before `expires`) is a mistake, never a key.
    pub fn validate(&self) -> Result<(), String> {
        match (self.not_before, self.expires) {
            (Some(nb), Some(e)) if nb >= e => Err(format!(
                "not_before ({}) must be earlier than expires ({})",
                show_instant(&nb),
                show_instant(&e)
            )),
            _ => Ok(()),
        }
    }

    /// `t`'s relation to the window, in words, for a refusal: `created 2027-03-01T00:00:00Z, after
    /// the key expired (2027-01-01T00:00:00Z)`.
    pub fn why_outside(&self, t: &DateTime<Utc>) -> Option<String> {
        if let Some(nb) = self.not_before.filter(|nb| t < nb) {
            return Some(format!(
                "created {}, before the key's window opens ({})",
                show_instant(t),
                show_instant(&nb)
            ));
        }
        if let Some(e) = self.expires.filter(|e| t >= e) {
            return Some(format!(
                "created {}, at or after the key's expiry ({})",
                show_instant(t),
                show_instant(&e)
            ));
        }
        None
    }
}

impl fmt::Display for KeyWindow {
    /// `for bundles created from A until B` (or `until B`, `from A`, `with no time limit`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.not_before, self.expires) {
            (None, None) => f.write_str("for bundles created at any time"),
            (Some(a), None) => write!(f, "for bundles created from {}", show_instant(&a)),
            (None, Some(b)) => write!(f, "for bundles created before {}", show_instant(&b)),
            (Some(a), Some(b)) => write!(
                f,
                "for bundles created from {} until {}",
                show_instant(&a),
                show_instant(&b)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_instant(s).unwrap()
    }

    #[test]
    fn contains_is_half_open() {
        let w = KeyWindow {
            not_before: Some(t("2026-01-01")),
            expires: Some(t("2027-01-01")),
        };
        assert!(w.contains(&t("2026-01-01")));
        assert!(w.contains(&t("2026-12-31T23:59:59Z")));
        assert!(!w.contains(&t("2027-01-01")));
        assert!(!w.contains(&t("2025-12-31T23:59:59Z")));
        assert!(w.why_outside(&t("2026-06-01")).is_none());
        let why = w.why_outside(&t("2027-03-01")).unwrap();
        assert!(why.contains("2027-01-01T00:00:00Z"), "{why}");
        assert_eq!(
            w.to_string(),
            "for bundles created from 2026-01-01T00:00:00Z until 2027-01-01T00:00:00Z"
        );
        assert!(KeyWindow::default().contains(&DateTime::<Utc>::MIN_UTC));
        assert!(KeyWindow {
            not_before: Some(t("2027-01-01")),
            expires: Some(t("2027-01-01")),
        }
        .validate()
        .is_err());
    }
}
