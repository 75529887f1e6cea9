//! The signed manifest (`cerro/manifest.toml`): its model, its one canonical TOML encoding, and a
//! parser that accepts only canonical bytes (so the signed bytes and the meaning cannot drift).
//!
//! The encoding is specified in `spec/bundle.md` §4; changing `encode` changes every bundle digest.

use crate::digest::Sha256Digest;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Format identifier on the first line of every manifest. Changing it breaks the format.
pub const MANIFEST_FORMAT_V1: &str = "cerro-torre/manifest/v1";
/// Largest manifest accepted (untrusted input bound; real manifests are a few KiB).
pub const MANIFEST_MAX_BYTES: usize = 1 << 20;
/// Most layers accepted in one image (untrusted input bound; real images have < 128).
pub const MAX_LAYERS: usize = 1024;
/// Most attestations in one bundle.
pub const MAX_ATTESTATIONS: usize = 64;
/// Longest free-text value (version, source reference, media type).
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest sum of all sizes a manifest lists (image, config, layers, attestations): 2^63-1, so
/// that every total and offset computed from them fits a signed 64-bit integer (spec/bundle.md
/// §4.2).
pub const MAX_TOTAL_SIZE: u64 = i64::MAX as u64;

/// Attestation kinds a bundle may carry (policy `require_attestations` names them).
pub const ATTESTATION_KINDS: [&str; 3] = ["provenance", "sbom", "transparency_log"];

/// What was signed: which image, from where, and the digest of every blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub package: Package,
    pub source: Source,
    pub rootfs: RootfsRef,
    pub image: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub attestations: Vec<Attestation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Bundle name: 1–128 of `a-z A-Z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    pub version: String,
    /// Image creation time from the image config, RFC 3339 in UTC (`…Z`); never the clock.
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Where the image came from, e.g. `oci:busybox:latest`, `docker://registry/x:1`.
    pub reference: String,
    /// The source's own identifier for the image (manifest digest, or image id for docker-archive).
    pub digest: Sha256Digest,
}

/// The merged root filesystem the layers produce (spec/rootfs.md): signing it anchors every
/// directory and every block of every file a mount will serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsRef {
    pub digest: crate::rootfs::RootfsDigest,
}

/// An OCI content descriptor: what a blob is, its digest and its exact size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
}

/// A signed statement about the image carried beside it under `cerro/attestations/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    pub kind: String,
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
}

/// Why manifest bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MANIFEST_MAX_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not UTF-8")]
    NotUtf8,
    #[error("manifest does not parse: {0}")]
    Syntax(String),
    #[error("manifest field {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("manifest is not in canonical form (line {line}: expected {expected:?}, found {found:?}); re-create the bundle with `ct pack`")]
    NotCanonical {
        line: usize,
        expected: String,
        found: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// True for a valid bundle name (also used for store names and file names).
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_text(field: &str, s: &str, allow_empty: bool) -> Result<(), ManifestError> {
    if s.is_empty() && !allow_empty {
        return Err(invalid(field, "must not be empty"));
    }
    if s.len() > MAX_TEXT_LEN {
        return Err(invalid(field, format!("longer than {MAX_TEXT_LEN} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character"));
    }
    Ok(())
}

/// True for a time in a leap second (`23:59:60`): chrono keeps those as nanoseconds past 10^9.
/// Manifests and policies refuse them (a second implementation need not represent them).
pub fn is_leap_second(t: &chrono::DateTime<chrono::Utc>) -> bool {
    use chrono::Timelike as _;
    t.nanosecond() >= 1_000_000_000
}

/// Canonical timestamp form: RFC 3339, UTC, `Z`, fractional seconds only when non-zero.
pub fn canonical_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl Manifest {
    /// Check every field's rules (spec/bundle.md §4.2). `encode` is only defined on valid manifests.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format != MANIFEST_FORMAT_V1 {
            return Err(invalid(
                "format",
                format!(
                    "unsupported format {:?} (this ct reads {MANIFEST_FORMAT_V1:?})",
                    self.format
                ),
            ));
        }
        if !is_valid_name(&self.package.name) {
            return Err(invalid("package.name", format!("{:?} is not a valid name (1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit)", self.package.name)));
        }
        check_text("package.version", &self.package.version, false)?;
        let created = self.created().map_err(|p| invalid("package.created", p))?;
        if is_leap_second(&created) {
            return Err(invalid(
                "package.created",
                format!(
                    "{:?} is a leap second (:60), which manifests do not allow (spec/bundle.md §4.2)",
                    self.package.created
                ),
            ));
        }
        if canonical_time(&created) != self.package.created {
            return Err(invalid(
                "package.created",
                format!(
                    "{:?} is not in canonical form {:?}",
                    self.package.created,
                    canonical_time(&created)
                ),
            ));
        }
        check_text("source.reference", &self.source.reference, false)?;
        for (field, d) in [("image", &self.image), ("config", &self.config)] {
            check_text(&format!("{field}.media_type"), &d.media_type, false)?;
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(invalid("layers", format!("more than {MAX_LAYERS} layers")));
        }
        for (i, l) in self.layers.iter().enumerate() {
            check_text(&format!("layers[{i}].media_type"), &l.media_type, false)?;
        }
        if self.attestations.len() > MAX_ATTESTATIONS {
            return Err(invalid(
                "attestations",
                format!("more than {MAX_ATTESTATIONS} attestations"),
            ));
        }
        let mut kinds = std::collections::BTreeSet::new();
        for (i, a) in self.attestations.iter().enumerate() {
            if !ATTESTATION_KINDS.contains(&a.kind.as_str()) {
                return Err(invalid(
                    format!("attestations[{i}].kind"),
                    format!(
                        "unknown kind {:?} (known: {})",
                        a.kind,
                        ATTESTATION_KINDS.join(", ")
                    ),
                ));
            }
            if !kinds.insert(a.kind.as_str()) {
                return Err(invalid(
                    format!("attestations[{i}].kind"),
                    format!("{:?} appears twice", a.kind),
                ));
            }
            check_text(
                &format!("attestations[{i}].media_type"),
                &a.media_type,
                false,
            )?;
        }
        let mut total = 0u64;
        for (field, size) in self.sizes() {
            if size > i64::MAX as u64 {
                return Err(invalid(field, "size does not fit a TOML integer"));
            }
            // Every sum of sizes (the image's, all blobs') then fits, and so does any offset
            // computed from them.
            total = total
                .checked_add(size)
                .filter(|&t| t <= MAX_TOTAL_SIZE)
                .ok_or_else(|| {
                    invalid(
                        field,
                        format!(
                            "the sizes of the image, config, layers and attestations add up to \
                             more than {MAX_TOTAL_SIZE} bytes"
                        ),
                    )
                })?;
        }
        Ok(())
    }

    fn sizes(&self) -> Vec<(String, u64)> {
        let mut v = vec![
            ("image.size".to_string(), self.image.size),
            ("config.size".to_string(), self.config.size),
        ];
        v.extend(
            self.layers
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("layers[{i}].size"), l.size)),
        );
        v.extend(
            self.attestations
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("attestations[{i}].size"), a.size)),
        );
        v
    }

    /// The signed creation time.
    pub fn created(&self) -> Result<chrono::DateTime<chrono::Utc>, String> {
        chrono::DateTime::parse_from_rfc3339(&self.package.created)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| format!("{:?} is not an RFC 3339 time: {e}", self.package.created))
    }

    /// Every blob the image needs, manifest first, then config, then layers in order.
    pub fn image_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.image)
            .chain(std::iter::once(&self.config))
            .chain(self.layers.iter())
    }

    /// Total bytes of the image's blobs (manifest + config + layers). Exact for a valid manifest
    /// (`validate` bounds the sum); saturates at `u64::MAX` for one that was never validated.
    pub fn image_size(&self) -> u64 {
        self.image_blobs()
            .fold(0u64, |total, d| total.saturating_add(d.size))
    }

    /// The canonical encoding (spec/bundle.md §4.1). Panics only if `validate` would fail.
    pub fn encode(&self) -> Vec<u8> {
        let mut o = String::new();
        let kv = |o: &mut String, k: &str, v: &str| {
            let _ = writeln!(o, "{k} = {}", toml_string(v));
        };
        kv(&mut o, "format", &self.format);
        o.push_str("\n[package]\n");
        kv(&mut o, "name", &self.package.name);
        kv(&mut o, "version", &self.package.version);
        kv(&mut o, "created", &self.package.created);
        o.push_str("\n[source]\n");
        kv(&mut o, "reference", &self.source.reference);
        kv(&mut o, "digest", &self.source.digest.to_string());
        o.push_str("\n[rootfs]\n");
        kv(&mut o, "digest", &self.rootfs.digest.to_string());
        let desc = |o: &mut String, header: &str, d: &Descriptor| {
            let _ = writeln!(o, "\n{header}");
            kv(o, "media_type", &d.media_type);
            kv(o, "digest", &d.digest.to_string());
            let _ = writeln!(o, "size = {}", d.size);
        };
        desc(&mut o, "[image]", &self.image);
        desc(&mut o, "[config]", &self.config);
        for l in &self.layers {
            desc(&mut o, "[[layers]]", l);
        }
        for a in &self.attestations {
            o.push_str("\n[[attestations]]\n");
            kv(&mut o, "kind", &a.kind);
            kv(&mut o, "media_type", &a.media_type);
            kv(&mut o, "digest", &a.digest.to_string());
            let _ = writeln!(o, "size = {}", a.size);
        }
        o.into_bytes()
    }

    /// Parse manifest bytes, accepting only a valid manifest in canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MANIFEST_MAX_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8)?;
        let m: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.message().to_string()))?;
        m.validate()?;
        let canon = m.encode();
        if canon != bytes {
            let (line, expected, found) = first_difference(&canon, bytes);
            return Err(ManifestError::NotCanonical {
                line,
                expected,
                found,
            });
        }
        Ok(m)
    }

    /// The bundle digest: SHA-256 of the canonical manifest bytes.
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest::of(&self.encode())
    }
}

/// A TOML basic string: `"`, with `"` and `\` escaped, control characters as `\uXXXX`.
fn toml_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn first_difference(expected: &[u8], found: &[u8]) -> (usize, String, String) {
    let e = String::from_utf8_lossy(expected);
    let f = String::from_utf8_lossy(found);
    let mut el = e.split('\n');
    let mut fl = f.split('\n');
    let mut n = 1;
    loop {
        match (el.next(), fl.next()) {
            (Some(a), Some(b)) if a == b => n += 1,
            (a, b) => {
                let cut = |s: Option<&str>| {
                    s.map(|s| s.chars().take(120).collect())
                        .unwrap_or_else(|| "<end of file>".into())
                };
                return (n, cut(a), cut(b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        let d = |b: u8| Sha256Digest::from_bytes([b; 32]);
        Manifest {
            format: MANIFEST_FORMAT_V1.into(),
            package: Package {
                name: "busybox".into(),
                version: "1.35 \"q\"".into(),
                created: "2026-01-02T03:04:05Z".into(),
            },
            source: Source {
                reference: "oci:image:busybox".into(),
                digest: d(1),
            },
            rootfs: RootfsRef {
                digest: crate::rootfs::RootfsDigest::from_bytes([4; 32]),
            },
            image: Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: d(1),
                size: 400,
            },
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".into(),
                digest: d(2),
                size: 600,
            },
            layers: vec![Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                digest: d(3),
                size: 1 << 40,
            }],
            attestations: vec![],
        }
    }

    #[test]
    fn encode_parse_round_trip() {
        let m = sample();
        m.validate().unwrap();
        let bytes = m.encode();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let bytes = String::from_utf8(sample().encode()).unwrap();
        for variant in [
            bytes.replace("name = ", "name  = "),
            bytes.replace("\n\n[source]", "\n[source]"),
            format!("{bytes}\n"),
            bytes.replace("size = 400", "size = 0x190"),
            format!("# comment\n{bytes}"),
        ] {
            match Manifest::parse(variant.as_bytes()) {
                Err(ManifestError::NotCanonical { .. }) => {}
                other => panic!("{other:?} for {variant}"),
            }
        }
    }

    #[test]
    fn sizes_that_add_up_past_i64_max_are_invalid() {
        // Each size fits; their sum does not (it would wrap a u64 with three of them).
        let mut m = sample();
        m.image.size = i64::MAX as u64;
        m.config.size = i64::MAX as u64;
        m.layers[0].size = i64::MAX as u64;
        match m.validate() {
            Err(ManifestError::Invalid { field, problem }) => {
                assert_eq!(field, "config.size");
                assert!(problem.contains("add up to more than 9223372036854775807"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.image_size(), u64::MAX, "saturates, never wraps");
        // The parser refuses such bytes the same way.
        let bytes = String::from_utf8(sample().encode())
            .unwrap()
            .replace("size = 400", &format!("size = {}", i64::MAX))
            .replace("size = 600", &format!("size = {}", i64::MAX));
        assert!(matches!(
            Manifest::parse(bytes.as_bytes()),
            Err(ManifestError::Invalid { .. })
        ));
        // Exactly 2^63-1 in all is fine.
        let mut m = sample();
        m.image.size = i64::MAX as u64 - 600 - (1 << 40);
        m.validate().unwrap();
        assert_eq!(m.image_size(), i64::MAX as u64);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let bytes = String::from_utf8(sample().encode()).unwrap();
        let extra = bytes.replace("[source]\n", "[source]\nextra = 1\n");
        assert!(matches!(
            Manifest::parse(extra.as_bytes()),
            Err(ManifestError::Syntax(_))
        ));
        let mut m = sample();
        m.package.name = "../etc".into();
        assert!(matches!(m.validate(), Err(ManifestError::Invalid { .. })));
        let mut m = sample();
        m.package.created = "2026-01-02T03:04:05+00:00".into();
        assert!(m.validate().is_err());
        let mut m = sample();
        m.package.created = "2016-12-31T23:59:60Z".into();
        match m.validate() {
            Err(ManifestError::Invalid { field, problem }) => {
                assert_eq!(field, "package.created");
                assert!(problem.contains("leap second"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }
}
