//! The value types of the policy language: key-id and reference globs, dates, suite ids and pin
//! signers. Each parses strictly and says what form it expected.

use super::json::{invalid, quote};
use super::PolicyError;
use crate::{Fingerprint, KeyId};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use glob::{MatchOptions, Pattern};

/// Longest glob accepted, in characters. Matching cost grows with pattern length; real key-id
/// and reference patterns are far shorter.
pub(super) const GLOB_MAX_CHARS: usize = 1024;

/// How every policy glob is matched: case-sensitive, and `*`/`?`/`[...]` match `/` and a
/// leading `.` like any other character (a reference or key id is not a file path).
const MATCH_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// A `glob::Pattern` as the policy language allows it (no `**`, not empty, bounded length).
#[derive(Debug, Clone)]
pub(super) struct Glob(Pattern);

impl Glob {
    pub(super) fn parse(s: &str, path: &str) -> Result<Self, PolicyError> {
        if s.is_empty() {
            return Err(invalid(
                path,
                "empty glob matches nothing; use \"*\" to match anything",
            ));
        }
        if s.chars().count() > GLOB_MAX_CHARS {
            return Err(invalid(
                path,
                format!("glob is longer than {GLOB_MAX_CHARS} characters"),
            ));
        }
        if s.contains("**") {
            return Err(invalid(
                path,
                format!("invalid glob {}: \"**\" is not used in policy globs; a single \"*\" already matches any characters, \"/\" included", quote(s)),
            ));
        }
        Pattern::new(s).map(Glob).map_err(|e| {
            invalid(
                path,
                format!(
                    "invalid glob {}: {} (at character {})",
                    quote(s),
                    e.msg,
                    e.pos
                ),
            )
        })
    }

    pub(super) fn matches(&self, s: &str) -> bool {
        self.0.matches_with(s, MATCH_OPTIONS)
    }

    pub(super) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Suite ids the policy language knows, in increasing order of strength (the derived `Ord` is
/// the order `suites.minimum` uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PolicySuite {
    /// Ed25519.
    CtSig01,
    /// Ed25519 + ML-DSA-87, both verified.
    CtSig02,
    /// ML-DSA-87 alone.
    CtSig03,
}

impl PolicySuite {
    pub(super) const ALL: [PolicySuite; 3] = [
        PolicySuite::CtSig01,
        PolicySuite::CtSig02,
        PolicySuite::CtSig03,
    ];

    pub(super) fn id(self) -> &'static str {
        match self {
            PolicySuite::CtSig01 => "CT-SIG-01",
            PolicySuite::CtSig02 => "CT-SIG-02",
            PolicySuite::CtSig03 => "CT-SIG-03",
        }
    }

    pub(super) fn from_id(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|suite| suite.id() == s)
    }

    pub(super) fn parse(s: &str, path: &str) -> Result<Self, PolicyError> {
        Self::from_id(s).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "unknown suite {}; known suites are CT-SIG-01, CT-SIG-02, CT-SIG-03",
                    quote(s)
                ),
            )
        })
    }
}

/// A signer named in a pin: a fingerprint if `Fingerprint::parse` accepts the string, otherwise
/// an exact key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PinSigner {
    Fingerprint(Fingerprint),
    KeyId(KeyId),
}

impl PinSigner {
    pub(super) fn parse(s: &str, path: &str) -> Result<Self, PolicyError> {
        if let Ok(fp) = Fingerprint::parse(s) {
            return Ok(PinSigner::Fingerprint(fp));
        }
        KeyId::new(s).map(PinSigner::KeyId).map_err(|_| {
            invalid(path, format!("{} is neither a key id (1-64 of A-Z a-z 0-9 . _ -, not starting with . or -) nor a fingerprint (64 hex digits)", quote(s)))
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            PinSigner::Fingerprint(fp) => format!("fingerprint {fp}"),
            PinSigner::KeyId(k) => format!("key {}", quote(k.as_str())),
        }
    }
}

/// Parse a policy date: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time
/// `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or `±HH:MM` (`T`/`Z` in either case, at most
/// 9 fraction digits, no leap second).
pub(super) fn parse_date(s: &str, path: &str) -> Result<DateTime<Utc>, PolicyError> {
    parse_date_str(s).ok_or_else(|| {
        invalid(
            path,
            format!("invalid date {}: expected YYYY-MM-DD or an RFC 3339 date-time such as 2026-01-31T12:00:00Z", quote(s)),
        )
    })
}

/// The parser behind [`parse_date`]; also used by tests for facts.
pub(super) fn parse_date_str(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 2)?, num(8, 2)?)?;
    if b.len() == 10 {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if !matches!(b[10], b'T' | b't') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(i + 1, digits)? * 10u32.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let offset_seconds: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let magnitude = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    let local = date
        .and_hms_nano_opt(hour, minute, second, nanos)?
        .and_utc();
    local.checked_sub_signed(TimeDelta::try_seconds(offset_seconds)?)
}

/// A date for messages: RFC 3339 in UTC, fractions only when present.
pub(super) fn show_date(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn dates_in_both_forms() {
        assert_eq!(
            parse_date_str("2026-01-31"),
            Some(utc("2026-01-31T00:00:00Z"))
        );
        assert_eq!(
            parse_date_str("2024-02-29"),
            Some(utc("2024-02-29T00:00:00Z"))
        );
        assert_eq!(
            parse_date_str("2026-01-31T12:30:05Z"),
            Some(utc("2026-01-31T12:30:05Z"))
        );
        assert_eq!(
            parse_date_str("2026-01-31t12:30:05z"),
            Some(utc("2026-01-31T12:30:05Z"))
        );
        assert_eq!(
            parse_date_str("2026-01-01T01:00:00+02:00"),
            Some(utc("2025-12-31T23:00:00Z"))
        );
        assert_eq!(
            parse_date_str("2025-12-31T23:00:00-01:30"),
            Some(utc("2026-01-01T00:30:00Z"))
        );
        assert_eq!(
            parse_date_str("2026-01-31T12:30:05.5Z"),
            Some(utc("2026-01-31T12:30:05.5Z"))
        );
        assert_eq!(
            parse_date_str("2026-01-31T12:30:05.123456789Z"),
            Some(utc("2026-01-31T12:30:05.123456789Z"))
        );
        assert_eq!(
            parse_date_str("0000-01-01T00:00:00+23:59").map(|d| d < utc("0001-01-01T00:00:00Z")),
            Some(true)
        );
    }

    #[test]
    fn dates_refused() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "2026-01-01T",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-12-31T23:59:60Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567890Z",
            "2026-01-01T00:00:00+0200",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+02:60",
            "2026-01-01T00:00:00Zjunk",
            "+2026-01-01",
            "2026-01-01Z",
            "２０２６-01-01",
            "2026-01-01T00:00:00+02:00:00",
        ] {
            assert_eq!(parse_date_str(bad), None, "{bad}");
        }
        let err = parse_date("2026-13-01", "signers.denied[1].after")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("signers.denied[1].after: invalid date \"2026-13-01\""),
            "{err}"
        );
    }

    #[test]
    fn globs() {
        let g = Glob::parse("docker.io/*", "p").unwrap();
        assert!(g.matches("docker.io/library/nginx:1.25"));
        assert!(g.matches("docker.io/"));
        assert!(!g.matches("Docker.io/library/nginx"));
        let g = Glob::parse("release-?", "p").unwrap();
        assert!(g.matches("release-1") && !g.matches("release-10") && !g.matches("release-"));
        let g = Glob::parse("[!.]*", "p").unwrap();
        assert!(g.matches("a.b") && !g.matches(".a"));
        assert!(Glob::parse("*", "p").unwrap().matches(".hidden/x"));
        assert!(Glob::parse("[]]x", "p").unwrap().matches("]x"));
        assert!(Glob::parse("[*]", "p").unwrap().matches("*"));
        assert!(!Glob::parse("[*]", "p").unwrap().matches("a"));
        assert!(Glob::parse("key-[a-c]", "p").unwrap().matches("key-b"));
        assert!(!Glob::parse("key-[c-a]", "p").unwrap().matches("key-b"));
        assert!(Glob::parse("a\\b", "p").unwrap().matches("a\\b"));
        for bad in [
            "",
            "a**",
            "**",
            "docker.io/**",
            "[abc",
            "[",
            "[]",
            "[!]",
            "***",
        ] {
            assert!(Glob::parse(bad, "registries.blocked[0]").is_err(), "{bad}");
        }
        let err = Glob::parse("[abc", "registries.blocked[0]")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("registries.blocked[0]: invalid glob \"[abc\""),
            "{err}"
        );
        assert!(Glob::parse(&"x".repeat(GLOB_MAX_CHARS + 1), "p").is_err());
        assert!(Glob::parse(&"x".repeat(GLOB_MAX_CHARS), "p").is_ok());
    }

    #[test]
    fn pathological_globs_stay_fast() {
        let pat = "*a".repeat(GLOB_MAX_CHARS / 2 - 1) + "*b";
        let g = Glob::parse(&pat, "p").unwrap();
        let start = std::time::Instant::now();
        assert!(!g.matches(&"a".repeat(100_000)));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn suites_and_pin_signers() {
        assert!(
            PolicySuite::CtSig01 < PolicySuite::CtSig02
                && PolicySuite::CtSig02 < PolicySuite::CtSig03
        );
        assert_eq!(
            PolicySuite::from_id("CT-SIG-02"),
            Some(PolicySuite::CtSig02)
        );
        assert_eq!(PolicySuite::from_id("ct-sig-02"), None);
        assert!(PolicySuite::parse("CT-SIG-04", "suites.minimum").is_err());
        let fp = Fingerprint::of_public_key(b"k");
        assert_eq!(
            PinSigner::parse(&fp.to_string(), "p").unwrap(),
            PinSigner::Fingerprint(fp)
        );
        assert_eq!(
            PinSigner::parse(&fp.hex(), "p").unwrap(),
            PinSigner::Fingerprint(fp)
        );
        assert_eq!(
            PinSigner::parse("release", "p").unwrap(),
            PinSigner::KeyId(KeyId::new("release").unwrap())
        );
        assert!(PinSigner::parse("not a key", "p").is_err());
        assert!(PinSigner::parse("", "p").is_err());
    }
}
