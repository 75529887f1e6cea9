//! The bundle index behind `ct index` and `ct search`: one entry per verified bundle (where it
//! is, its digest, name, version, creation time, source, signers, and what its SBOM and
//! provenance say), the index file's format, and the queries `ct search` answers. Pure: the
//! command reads bundles and files; this decides what an entry holds and whether it matches.
//! An index is a cache of what was verified when it was built, never a reason to trust a bundle.

use crate::ids::Fingerprint;
use crate::manifest::Manifest;
use crate::verify::VerifyReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The index file's `format`. Another value is refused (the index is rebuilt).
pub const INDEX_FORMAT_V1: &str = "ct-index-v1";
/// Largest index file read (about 2 KiB per bundle: over 30,000 bundles).
pub const MAX_INDEX_BYTES: usize = 64 << 20;

/// What identifies a bundle file's version on disk: a change in any means re-verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

/// One signer of an indexed bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedSigner {
    pub key_id: String,
    pub fingerprint: String,
    pub suite: String,
    /// The trust-store name the key was trusted as when indexed (none: valid, not trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_as: Option<String>,
}

/// One verified bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// A bundle file's path, or `store:NAME` for a bundle in the store.
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileStamp>,
    pub bundle_digest: String,
    pub name: String,
    pub version: String,
    pub created: String,
    pub source: String,
    pub source_digest: String,
    pub image_digest: String,
    pub signers: Vec<IndexedSigner>,
    pub has_sbom: bool,
    /// Packages the SBOM lists, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<usize>,
    /// Licences the SBOM states (sorted, distinct).
    #[serde(default)]
    pub licenses: Vec<String>,
    pub has_provenance: bool,
    /// The provenance's builder (`ID VERSION`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
}

/// An index file: the place it covers and its entries, sorted by location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: String,
    /// The directory (canonical path) or `store:PATH` indexed.
    pub root: String,
    pub entries: Vec<Entry>,
}

impl Index {
    pub fn new(root: String, mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| a.location.cmp(&b.location));
        Index {
            format: INDEX_FORMAT_V1.into(),
            root,
            entries,
        }
    }

    /// Read an index file (bounded; a clear error, never a panic).
    pub fn parse(bytes: &[u8]) -> Result<Index, String> {
        if bytes.len() > MAX_INDEX_BYTES {
            return Err(format!("larger than {MAX_INDEX_BYTES} bytes"));
        }
        let i: Index = serde_json::from_slice(bytes).map_err(|e| format!("not an index: {e}"))?;
        if i.format != INDEX_FORMAT_V1 {
            return Err(format!("format {:?}, not {INDEX_FORMAT_V1:?}", i.format));
        }
        Ok(i)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("an index serializes");
        v.push(b'\n');
        v
    }
}

/// The entry of a bundle that verified (`rep.ok()`), from its manifest, its verification report
/// and the bodies of its attestations (checked against their digests by the caller).
pub fn entry_of(
    location: String,
    file: Option<FileStamp>,
    m: &Manifest,
    rep: &VerifyReport,
    attestation: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Entry {
    let sbom = attestation("sbom").and_then(|b| crate::sbom::summary(&b).ok());
    let provenance = attestation("provenance")
        .and_then(|b| crate::provenance::open(&b).ok())
        .map(|p| p.summary());
    Entry {
        location,
        file,
        bundle_digest: rep
            .bundle_digest
            .map(|d| d.to_string())
            .unwrap_or_else(|| m.digest().to_string()),
        name: m.package.name.clone(),
        version: m.package.version.clone(),
        created: m.package.created.clone(),
        source: m.source.reference.clone(),
        source_digest: m.source.digest.to_string(),
        image_digest: m.image.digest.to_string(),
        signers: rep
            .signatures
            .iter()
            .filter(|s| s.valid)
            .map(|s| IndexedSigner {
                key_id: s.key_id.clone(),
                fingerprint: s.fingerprint.map(|f| f.to_string()).unwrap_or_default(),
                suite: s.suite.clone().unwrap_or_default(),
                trusted_as: s
                    .trusted
                    .then(|| s.trusted_as.as_ref().map(|k| k.to_string()))
                    .flatten(),
            })
            .collect(),
        has_sbom: m.attestations.iter().any(|a| a.kind == "sbom"),
        packages: sbom.as_ref().map(|s| s.packages),
        licenses: sbom.map(|s| s.licenses).unwrap_or_default(),
        has_provenance: m.attestations.iter().any(|a| a.kind == "provenance"),
        builder: provenance.map(|p| format!("{} {}", p.builder_id, p.builder_version)),
    }
}

/// What `ct search` looks for; every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Case-insensitive substring of the name, version, source or location.
    pub text: Option<String>,
    /// A glob (policy syntax) on a signer's key id or trust-store name.
    pub signer: Option<crate::policy::KeyGlob>,
    pub fingerprint: Option<Fingerprint>,
    /// A digest (`sha256:HEX`, or a hex prefix of at least 8 digits) of the bundle, its image
    /// or its source.
    pub digest: Option<String>,
    pub has_sbom: bool,
    /// Case-insensitive substring of a licence the SBOM states.
    pub license: Option<String>,
    /// Created at or after, and before.
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

impl Query {
    /// Check the query's own form: the digest (the glob was checked when compiled).
    pub fn check(&self) -> Result<(), String> {
        if let Some(d) = &self.digest {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            if hex.len() < 8 || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "--digest {d:?}: expected sha256:HEX or at least 8 hex digits of one"
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, e: &Entry) -> bool {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
        if let Some(t) = &self.text {
            if ![&e.name, &e.version, &e.source, &e.location]
                .iter()
                .any(|f| has(f, t))
            {
                return false;
            }
        }
        if let Some(g) = &self.signer {
            let hit = e.signers.iter().any(|s| {
                g.matches(&s.key_id) || s.trusted_as.as_deref().is_some_and(|t| g.matches(t))
            });
            if !hit {
                return false;
            }
        }
        if let Some(f) = &self.fingerprint {
            if !e.signers.iter().any(|s| s.fingerprint == f.to_string()) {
                return false;
            }
        }
        if let Some(d) = &self.digest {
            let hex = d.strip_prefix("sha256:").unwrap_or(d).to_lowercase();
            let hit = [&e.bundle_digest, &e.image_digest, &e.source_digest]
                .iter()
                .any(|x| x.strip_prefix("sha256:").unwrap_or(x).starts_with(&hex));
            if !hit {
                return false;
            }
        }
        if self.has_sbom && !e.has_sbom {
            return false;
        }
        if let Some(l) = &self.license {
            if !e.licenses.iter().any(|x| has(x, l)) {
                return false;
            }
        }
        let created = chrono::DateTime::parse_from_rfc3339(&e.created)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if let Some(a) = self.after {
            if created.is_none_or(|c| c < a) {
                return false;
            }
        }
        if let Some(b) = self.before {
            if created.is_none_or(|c| c >= b) {
                return false;
            }
        }
        true
    }
}

/// Entries of several indexes that match, each once (by location), sorted by name, then
/// creation time, then location.
pub fn search<'a>(indexes: &'a [Index], q: &Query) -> Vec<&'a Entry> {
    let mut seen = BTreeMap::new();
    for e in indexes.iter().flat_map(|i| &i.entries) {
        if q.matches(e) {
            seen.entry(e.location.as_str()).or_insert(e);
        }
    }
    let mut out: Vec<&Entry> = seen.into_values().collect();
    out.sort_by(|a, b| (&a.name, &a.created, &a.location).cmp(&(&b.name, &b.created, &b.location)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, created: &str) -> Entry {
        Entry {
            location: format!("/b/{name}.ctp"),
            file: None,
            bundle_digest: format!("sha256:{}", "a1".repeat(32)),
            name: name.into(),
            version: "1.0".into(),
            created: created.into(),
            source: format!("oci:/src/{name}:latest"),
            source_digest: format!("sha256:{}", "b2".repeat(32)),
            image_digest: format!("sha256:{}", "c3".repeat(32)),
            signers: vec![IndexedSigner {
                key_id: "alice".into(),
                fingerprint: "SHA256:x".into(),
                suite: "CT-SIG-01".into(),
                trusted_as: Some("alice-work".into()),
            }],
            has_sbom: name != "bare",
            packages: Some(3),
            licenses: vec!["GPL-2.0".into()],
            has_provenance: true,
            builder: Some("ct 0.1.0".into()),
        }
    }

    fn glob(s: &str) -> crate::policy::KeyGlob {
        crate::policy::KeyGlob::parse(s).unwrap()
    }

    #[test]
    fn each_field_narrows_the_search() {
        let idx = [Index::new(
            "/b".into(),
            vec![
                entry("web", "2024-05-01T00:00:00Z"),
                entry("bare", "2023-01-01T00:00:00Z"),
            ],
        )];
        let names = |q: Query| -> Vec<String> {
            q.check().unwrap();
            search(&idx, &q).iter().map(|e| e.name.clone()).collect()
        };
        assert_eq!(names(Query::default()), ["bare", "web"]);
        assert_eq!(
            names(Query {
                text: Some("WEB".into()),
                ..Default::default()
            }),
            ["web"]
        );
        assert_eq!(
            names(Query {
                signer: Some(glob("ali*")),
                ..Default::default()
            })
            .len(),
            2
        );
        assert_eq!(
            names(Query {
                signer: Some(glob("*-work")),
                ..Default::default()
            })
            .len(),
            2
        );
        assert!(names(Query {
            signer: Some(glob("bob")),
            ..Default::default()
        })
        .is_empty());
        assert_eq!(
            names(Query {
                digest: Some("c3c3c3c3".into()),
                ..Default::default()
            })
            .len(),
            2
        );
        assert!(names(Query {
            digest: Some("ffffffff".into()),
            ..Default::default()
        })
        .is_empty());
        assert_eq!(
            names(Query {
                has_sbom: true,
                ..Default::default()
            }),
            ["web"]
        );
        assert_eq!(
            names(Query {
                license: Some("gpl".into()),
                ..Default::default()
            })
            .len(),
            2
        );
        let day = |s: &str| crate::policy::parse_date(s).unwrap();
        assert_eq!(
            names(Query {
                after: Some(day("2024-01-01")),
                ..Default::default()
            }),
            ["web"]
        );
        assert_eq!(
            names(Query {
                before: Some(day("2024-01-01")),
                ..Default::default()
            }),
            ["bare"]
        );
        assert!(Query {
            digest: Some("xyz".into()),
            ..Default::default()
        }
        .check()
        .is_err());
        assert!(crate::policy::KeyGlob::parse("a**").is_err());
    }

    #[test]
    fn index_files_round_trip_and_hostile_ones_are_refused() {
        let i = Index::new("/b".into(), vec![entry("web", "2024-05-01T00:00:00Z")]);
        assert_eq!(Index::parse(&i.encode()).unwrap(), i);
        assert!(Index::parse(b"{}").is_err());
        assert!(Index::parse(br#"{"format":"x","root":"/","entries":[]}"#)
            .unwrap_err()
            .contains("format"));
        assert!(Index::parse(&vec![b' '; MAX_INDEX_BYTES + 1]).is_err());
    }
}
