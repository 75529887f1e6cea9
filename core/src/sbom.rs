//! The software bill of materials `ct pack` puts in a bundle (attestation kind `sbom`): an SPDX
//! 2.3 JSON document describing the image, with the packages its package databases list — dpkg's
//! `/var/lib/dpkg/status` (Debian, Ubuntu) and apk's `/lib/apk/db/installed` (Alpine). rpm's
//! database is a binary format that needs rpm's own library and is not read. Deterministic: no
//! clock (the document's time is the bundle's signed `created`), a namespace derived from the
//! image digest, packages sorted, keys in one order — so packing twice gives the same bytes.

use crate::rootfs::{Blake3Root, ContentSink, Payload, Rootfs};
use crate::Sha256Digest;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, Read};

/// The SBOM's media type in the manifest.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// Package databases read, as rootfs paths.
pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
pub const APK_INSTALLED: &str = "lib/apk/db/installed";
/// Largest package database kept in memory (a full Debian desktop's status is a few MiB).
const MAX_DB_BYTES: u64 = 64 << 20;

/// A sink that passes every file on and keeps a copy of the package databases (by content root,
/// since a later layer may replace or delete them: the final tree says which one counts).
pub struct CaptureSink<'a> {
    pub inner: &'a mut dyn ContentSink,
    pub captured: HashMap<Blake3Root, Vec<u8>>,
}

impl ContentSink for CaptureSink<'_> {
    fn file(&mut self, content: &mut dyn Read, size: u64) -> io::Result<Blake3Root> {
        self.inner.file(content, size)
    }
    fn file_at(
        &mut self,
        path: &[u8],
        content: &mut dyn Read,
        size: u64,
    ) -> io::Result<Blake3Root> {
        let wanted = path == DPKG_STATUS.as_bytes() || path == APK_INSTALLED.as_bytes();
        if !wanted || size > MAX_DB_BYTES {
            return self.inner.file(content, size);
        }
        let mut bytes = Vec::with_capacity(size as usize);
        content.take(size).read_to_end(&mut bytes)?;
        let root = self.inner.file(&mut &bytes[..], size)?;
        self.captured.insert(root, bytes);
        Ok(root)
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// `deb` or `apk` (the purl type).
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    pub arch: String,
    /// As the database states it (apk's `L:`); dpkg's status states none.
    pub license: Option<String>,
    /// dpkg's `Maintainer`.
    pub supplier: Option<String>,
}

/// Installed packages of a dpkg status file (paragraphs whose `Status` ends in `installed`).
pub fn dpkg_packages(status: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in status.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        if let (true, Some(name), Some(version)) = (installed, field("Package"), field("Version")) {
            out.push(Package {
                kind: "deb",
                name,
                version,
                arch: field("Architecture").unwrap_or_default(),
                license: None,
                supplier: field("Maintainer"),
            });
        }
    }
    out
}

/// Installed packages of apk's database (records of `X:value` lines separated by blank lines).
pub fn apk_packages(db: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for rec in db.split("\n\n") {
        let field = |k: &str| {
            rec.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        if let (Some(name), Some(version)) = (field("P"), field("V")) {
            out.push(Package {
                kind: "apk",
                name,
                version,
                arch: field("A").unwrap_or_default(),
                license: field("L").filter(|l| !l.is_empty()),
                supplier: None,
            });
        }
    }
    out
}

/// The packages of a finished rootfs, from the databases `captured` kept.
pub fn packages_of(rootfs: &Rootfs, captured: &HashMap<Blake3Root, Vec<u8>>) -> Vec<Package> {
    let mut out = Vec::new();
    let Ok(entries) = rootfs.walk() else {
        return out;
    };
    for (path, e) in entries {
        let Payload::File { root, .. } = e.payload else {
            continue;
        };
        let Some(bytes) = captured.get(&root) else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        if path == DPKG_STATUS.as_bytes() {
            out.extend(dpkg_packages(&text));
        } else if path == APK_INSTALLED.as_bytes() {
            out.extend(apk_packages(&text));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An SPDX identifier part: letters, digits, `.` and `-` only.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A purl component, percent-encoded as the purl spec asks for anything but unreserved bytes.
fn purl_part(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// What the SBOM describes.
pub struct Subject<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The image manifest's digest.
    pub image: &'a Sha256Digest,
    /// The signed `created` (RFC 3339, UTC, seconds).
    pub created: &'a str,
    /// The tool, `ct-VERSION`.
    pub tool: &'a str,
}

/// SPDX's time form (`YYYY-MM-DDThh:mm:ssZ`, UTC, whole seconds) of an RFC 3339 time; the
/// signed `created` may carry fractions of a second.
fn spdx_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// The SPDX 2.3 JSON document, as bytes (keys sorted, two-space indented, final newline).
pub fn spdx(s: &Subject<'_>, packages: &[Package]) -> Vec<u8> {
    let image_id = "SPDXRef-Image";
    let mut pkgs = vec![json!({
        "SPDXID": image_id,
        "name": s.name,
        "versionInfo": s.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": s.image.hex()}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let mut seen = std::collections::BTreeSet::new();
    for p in packages {
        let mut id = format!(
            "SPDXRef-Package-{}-{}-{}-{}",
            p.kind,
            id_part(&p.name),
            id_part(&p.version),
            id_part(&p.arch)
        );
        while !seen.insert(id.clone()) {
            id.push_str("-x");
        }
        let mut purl = format!(
            "pkg:{}/{}/{}@{}",
            p.kind,
            if p.kind == "deb" { "debian" } else { "alpine" },
            purl_part(&p.name),
            purl_part(&p.version)
        );
        if !p.arch.is_empty() {
            purl.push_str(&format!("?arch={}", purl_part(&p.arch)));
        }
        let mut v = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }],
        });
        if let Some(l) = &p.license {
            // Stated by the package database; SPDX wants an expression, so a free-form
            // statement goes in as a LicenseRef-free comment rather than a wrong expression.
            v["comment"] = Value::String(format!("license as the package database states it: {l}"));
        }
        pkgs.push(v);
        rels.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", s.name, s.version),
        "documentNamespace": format!("https://spdx.cerro-torre.invalid/image/{}", s.image.hex()),
        "creationInfo": {
            "created": spdx_time(s.created),
            "creators": [format!("Tool: {}", s.tool)],
        },
        "documentDescribes": [image_id],
        "packages": pkgs,
        "relationships": rels,
    });
    let mut out = serde_json::to_vec_pretty(&doc).expect("serializes");
    out.push(b'\n');
    out
}

/// What an SPDX document says, in brief (`ct explain --attestations`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub spdx_version: String,
    /// Packages other than the described image.
    pub packages: usize,
    /// Licences the package databases state (distinct, sorted).
    pub licenses: Vec<String>,
    pub creators: Vec<String>,
}

/// Summarise an SPDX JSON document (untrusted bytes: a clear error, never a panic).
pub fn summary(body: &[u8]) -> Result<Summary, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let pkgs = v["packages"].as_array().ok_or("no packages list")?;
    let described: Vec<&str> = v["documentDescribes"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let mut licenses: Vec<String> = pkgs
        .iter()
        .filter_map(|p| p["comment"].as_str())
        .filter_map(|c| c.strip_prefix("license as the package database states it: "))
        .map(str::to_string)
        .collect();
    licenses.sort();
    licenses.dedup();
    Ok(Summary {
        spdx_version: v["spdxVersion"].as_str().unwrap_or("?").to_string(),
        packages: pkgs
            .iter()
            .filter(|p| !described.contains(&p["SPDXID"].as_str().unwrap_or("")))
            .count(),
        licenses,
        creators: v["creationInfo"]["creators"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The packages of an SPDX document other than the described image: name → versions (sorted,
/// `, `-joined when a name appears more than once, as for several architectures).
pub fn package_versions(body: &[u8]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let described: Vec<&str> = v["documentDescribes"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in v["packages"].as_array().ok_or("no packages list")? {
        if described.contains(&p["SPDXID"].as_str().unwrap_or("")) {
            continue;
        }
        let name = p["name"].as_str().ok_or("a package without a name")?;
        let version = p["versionInfo"].as_str().unwrap_or("").to_string();
        out.entry(name.to_string()).or_default().push(version);
    }
    Ok(out
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            v.dedup();
            (k, v.join(", "))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: bash\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nMaintainer: Matthias Klose <doko@debian.org>\nVersion: 5.2.15-2+b2\nDescription: GNU Bourne Again SHell\n multi-line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n";

    #[test]
    fn dpkg_installed_packages_only() {
        let p = dpkg_packages(STATUS);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bash", "libc6"]);
        assert_eq!(p[0].version, "5.2.15-2+b2");
        assert_eq!(
            p[0].supplier.as_deref(),
            Some("Matthias Klose <doko@debian.org>")
        );
    }

    #[test]
    fn apk_records_with_their_licenses() {
        let p = apk_packages("C:Q1x\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].license.as_deref(), Some("GPL-2.0-only"));
    }

    #[test]
    fn the_document_is_deterministic_and_names_every_package() {
        let d = Sha256Digest::of(b"image");
        let s = Subject {
            name: "app",
            version: "1",
            image: &d,
            created: "2024-01-01T00:00:00Z",
            tool: "ct-0.1.0",
        };
        let pk = dpkg_packages(STATUS);
        let a = spdx(&s, &pk);
        assert_eq!(a, spdx(&s, &pk));
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["spdxVersion"], "SPDX-2.3");
        assert_eq!(
            spdx_time("2026-12-01T20:39:59.021519693Z"),
            "2026-12-01T20:39:59Z"
        );
        assert_eq!(v["packages"].as_array().unwrap().len(), 3);
        assert_eq!(
            v["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64"
        );
        assert_eq!(v["relationships"].as_array().unwrap().len(), 3);
        let sum = summary(&a).unwrap();
        assert_eq!((sum.packages, sum.creators.len()), (2, 1));
        assert!(summary(b"{").is_err() && summary(b"[]").is_err());
        let pv = package_versions(&a).unwrap();
        assert_eq!(pv["bash"], "5.2.15-2+b2");
        assert!(
            !pv.contains_key("app"),
            "the image is not a package of itself"
        );
    }
}
