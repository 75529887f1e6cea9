//! Key validity on the command line: reading `--expires`/`--not-before` values (a date, or a
//! duration from now), refusing to sign with a key outside its window, and the words `ct key`
//! and `ct doctor` use for a window.

use crate::exit::{CmdResult, Failure};
use cerro_core::policy::parse_date;
use cerro_core::window::{show_instant, KeyWindow};
use cerro_core::KeyId;
use chrono::{DateTime, TimeDelta, Utc};

/// How far ahead `ct doctor` warns about a key's expiry.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A point in time as the key commands take it: `now`, a date (`2027-06-30`, midnight UTC), an
/// RFC 3339 date-time, or a duration from now: a whole number and `d` (days), `w` (weeks) or `y`
/// (365 days). Whole seconds: fractions of a second are dropped.
pub fn parse_when(s: &str, now: DateTime<Utc>, what: &str) -> CmdResult<DateTime<Utc>> {
    let bad = || {
        Failure::usage(format!(
            "{what} {s:?} is neither a date (2027-06-30, or an RFC 3339 date-time such as \
             2027-06-30T12:00:00Z) nor a duration from now (90d, 12w, 2y)"
        ))
    };
    let t = if s == "now" {
        now
    } else if let Some(t) = parse_date(s) {
        t
    } else {
        let (n, unit) = s.split_at(s.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| bad())?;
        let days = match unit {
            "d" => n,
            "w" => n.checked_mul(7).ok_or_else(bad)?,
            "y" => n.checked_mul(365).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if n <= 0 {
            return Err(bad());
        }
        TimeDelta::try_days(days)
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(bad)?
    };
    Ok(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t))
}

/// The window `--not-before`/`--expires` describe; a window that is already over, or empty, is
/// refused.
pub fn window_from_args(
    not_before: Option<&str>,
    expires: Option<&str>,
    now: DateTime<Utc>,
) -> CmdResult<KeyWindow> {
    let w = KeyWindow {
        not_before: not_before
            .map(|s| parse_when(s, now, "--not-before"))
            .transpose()?,
        expires: expires
            .map(|s| parse_when(s, now, "--expires"))
            .transpose()?,
    };
    w.validate()
        .map_err(|e| Failure::usage(format!("the validity window is empty: {e}")))?;
    if let Some(e) = w.expires.filter(|e| *e <= now) {
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        return Err(Failure::usage(format!(
            "--expires {} is not in the future (now is {})",
            show_instant(&e),
            show_instant(&now)
        )));
    }
    Ok(w)
}

/// `expires 2027-06-30T00:00:00Z`, `valid from … until …`, or `no expiry`, for listings.
pub fn window_words(w: &KeyWindow, now: DateTime<Utc>) -> String {
    let mut parts = Vec::new();
    if let Some(nb) = w.not_before {
        parts.push(format!("valid from {}", show_instant(&nb)));
    }
    match w.expires {
        Some(e) if e <= now => parts.push(format!("EXPIRED {}", show_instant(&e))),
        Some(e) => parts.push(format!("expires {}", show_instant(&e))),
        None => {}
    }
    if parts.is_empty() {
        "no expiry".into()
    } else {
        parts.join(", ")
    }
}

/// Refuse to sign with `key` at `now` outside its window, or for a bundle created outside it
/// (verifiers would refuse that signature).
pub fn check_signing(
    key: &KeyId,
    w: &KeyWindow,
    now: DateTime<Utc>,
    created: Option<DateTime<Utc>>,
) -> CmdResult {
    if w.is_unlimited() {
        return Ok(());
    }
    if let Some(e) = w.expires.filter(|e| now >= *e) {
        return Err(Failure::usage(format!(
            "key {key} expired on {}: ct no longer signs with it",
            show_instant(&e)
        ))
        .hint(format!(
            "make its successor with `ct key rotate {key}`, and sign with that"
        )));
    }
    if let Some(nb) = w.not_before.filter(|nb| now < *nb) {
        return Err(Failure::usage(format!(
            "key {key} is valid only from {}",
            show_instant(&nb)
        ))
        .hint("sign with another key until then"));
    }
    if let Some(why) = created.and_then(|c| w.why_outside(&c)) {
        return Err(Failure::usage(format!(
            "key {key} is valid {w}, but this bundle was {why}: verifiers would refuse the signature"
        ))
        .hint("sign with a key whose validity window holds the bundle's creation time"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_forms() {
        let now = parse_date("2026-01-01T12:00:00.5Z").unwrap();
        let w = |s| parse_when(s, now, "--expires").map(|t| show_instant(&t));
        assert_eq!(w("90d").unwrap(), "2026-04-01T12:00:00Z");
        assert_eq!(w("2w").unwrap(), "2026-01-15T12:00:00Z");
        assert_eq!(w("1y").unwrap(), "2027-01-01T12:00:00Z");
        assert_eq!(w("2027-06-30").unwrap(), "2027-06-30T00:00:00Z");
        assert_eq!(w("now").unwrap(), "2026-01-01T12:00:00Z");
        for bad in [
            "",
            "d",
            "0d",
            "-3d",
            "3m",
            "1.5y",
            "tomorrow",
            "99999999999999y",
        ] {
            assert!(w(bad).is_err(), "{bad}");
        }
        assert!(window_from_args(None, Some("2025-01-01"), now).is_err());
        assert!(window_from_args(Some("2027-01-01"), Some("2026-06-01"), now).is_err());
        let ok = window_from_args(None, Some("30d"), now).unwrap();
        assert!(check_signing(&KeyId::new("k").unwrap(), &ok, now, Some(now)).is_ok());
        let later = parse_date("2026-03-01").unwrap();
        let e = check_signing(&KeyId::new("k").unwrap(), &ok, later, None).unwrap_err();
        assert!(
            e.message.contains("expired on 2026-01-31T12:00:00Z"),
            "{}",
            e.message
        );
    }
}
