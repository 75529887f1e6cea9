//! Reads an export archive (spec/export.md §4) as the hostile input it may be: the tar is indexed
//! once with the bounded archive reader (headers only; data is sought over), every entry must
//! have its place in the layout of §1 with the kind that place calls for, names are UTF-8 and
//! not repeated, and every file read is within its bound. Entry order is free. A bundle is
//! handed out only after its manifest hashes to its directory's name and parses canonically, its
//! derived files equal the ones the manifest gives, and each signature file is named after its
//! key id; its blobs come from the pool through [`Pool`], whose bytes the bundle writer
//! re-hashes. Whether the bundle verifies is the caller's question (it has the trust store).

use super::{
    ExportError, ExportIndex, ExportedBundle, BLOBS_SHA256_DIR, BUNDLES_DIR, INDEX_FILE,
    INDEX_MAX_BYTES, KEYS_DIR, KEY_FILE_MAX_BYTES, POLICY_FILE, POLICY_MAX_BYTES,
};
use crate::archive::{ArchiveError, ArchiveReader, Dialect, TarKind};
use crate::bundle::file::Region;
use crate::bundle::layout::{self, EntryPath};
use crate::bundle::{BlobSource, BundleContents, BundleError};
use crate::ids::KeyId;
use crate::keys::PublicKeyFile;
use crate::manifest::Manifest;
use crate::policy::Policy;
use crate::sign::SignatureFile;
use crate::text::show_name;
use crate::Sha256Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Most entries read from an archive's tar index (untrusted input bound).
pub const MAX_ENTRIES: usize = 1 << 20;

/// An export archive, indexed, with its index parsed.
pub struct ExportReader {
    path: PathBuf,
    file: File,
    /// Regular files by path (directories are checked, not kept).
    files: BTreeMap<String, Region>,
    index: ExportIndex,
}

/// One bundle of the archive, checked as far as the archive alone can show.
pub struct ArchivedBundle {
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub signatures: Vec<SignatureFile>,
}

impl ArchivedBundle {
    /// What the bundle writer needs besides blob bytes.
    pub fn contents(&self) -> BundleContents<'_> {
        BundleContents {
            manifest: &self.manifest,
            manifest_bytes: &self.manifest_bytes,
            signatures: &self.signatures,
        }
    }
}

impl ExportReader {
    /// Index the archive at `path` and parse its index. A bundle given instead of an archive is
    /// [`ExportError::IsBundle`]; anything else wrong is malformed (exit 10), naming the entry.
    pub fn open(path: &Path) -> Result<Self, ExportError> {
        let bad = |m: String| ExportError::Malformed(format!("archive {}: {m}", path.display()));
        let file = File::open(path)
            .map_err(|e| ExportError::io(format!("opening archive {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| ExportError::io(format!("opening archive {}", path.display()), e))?
            .len();
        let mut files = BTreeMap::new();
        let mut seen = BTreeSet::new();
        // Extension headers at most 1 MiB, names at most 4095 bytes; data is sought over.
        let mut ar = ArchiveReader::seekable(&file, len, 2 * MAX_ENTRIES as u64, Dialect::Archive);
        let terr = |e: ArchiveError| match e {
            ArchiveError::Io(e) => {
                ExportError::io(format!("reading archive {}", path.display()), e)
            }
            e if e.is_truncated() => bad(format!("it is truncated ({e}); copy it again")),
            e => bad(format!("not a readable tar archive: {e}")),
        };
        while let Some(entry) = ar.next_entry().map_err(terr)? {
            if seen.len() >= MAX_ENTRIES {
                return Err(bad(format!("more than {MAX_ENTRIES} entries")));
            }
            let name = String::from_utf8(entry.name).map_err(|b| {
                bad(format!(
                    "entry {} has a name that is not UTF-8",
                    show_name(b.as_bytes())
                ))
            })?;
            let shown = show_name(name.as_bytes());
            if !seen.insert(name.trim_end_matches('/').to_string()) {
                return Err(bad(format!("entry {shown} appears twice")));
            }
            if name == layout::OCI_LAYOUT || name == layout::INDEX_JSON {
                return Err(ExportError::IsBundle(path.to_path_buf()));
            }
            let is_dir = classify(&name).map_err(|e| bad(format!("entry {shown} {e}")))?;
            match (entry.kind, is_dir) {
                (TarKind::Directory, true) => {}
                (TarKind::Regular, false) => {
                    files.insert(
                        name,
                        Region {
                            offset: entry.data_offset,
                            size: entry.size,
                        },
                    );
                }
                (k, _) => {
                    return Err(bad(format!(
                        "entry {shown} is a {}, but its name is a {}'s",
                        k.describe(),
                        if is_dir { "directory" } else { "regular file" }
                    )))
                }
            }
        }
        if seen.is_empty() {
            return Err(bad("it is empty or not a tar archive".into()));
        }
        let mut r = Self {
            path: path.to_path_buf(),
            file,
            files,
            index: ExportIndex {
                format: String::new(),
                bundles: vec![],
                keys: vec![],
                policy: false,
            },
        };
        let index_bytes = r.read(INDEX_FILE, INDEX_MAX_BYTES)?.ok_or_else(|| {
            bad(format!(
                "it has no {INDEX_FILE}; it was not written by `ct export`"
            ))
        })?;
        r.index =
            ExportIndex::parse(&index_bytes).map_err(|e| bad(format!("{INDEX_FILE}: {e}")))?;
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's index (checked by [`ExportIndex::parse`]).
    pub fn index(&self) -> &ExportIndex {
        &self.index
    }

    /// The file `name` read whole, if the archive has it: malformed when it is over `max`.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, ExportError> {
        let Some(at) = self.files.get(name) else {
            return Ok(None);
        };
        if at.size > max {
            return Err(ExportError::Malformed(format!(
                "archive {}: {name} is {} bytes, more than the {max} allowed",
                self.path.display(),
                at.size
            )));
        }
        at.read_all(&self.file)
            .map(Some)
            .map_err(|e| ExportError::io(format!("reading archive {}", self.path.display()), e))
    }

    /// The public key files under `keys/`, parsed (in key id order).
    pub fn keys(&self) -> Result<Vec<PublicKeyFile>, ExportError> {
        let mut out = Vec::new();
        for name in self.names_under(KEYS_DIR) {
            let bytes = self.read(name, KEY_FILE_MAX_BYTES)?.unwrap_or_default();
            let k = PublicKeyFile::parse(&bytes).map_err(|e| self.bad(format!("{name}: {e}")))?;
            out.push(k);
        }
        Ok(out)
    }

    /// The archive's `policy.json`, parsed, if it carries one.
    pub fn policy(&self) -> Result<Option<Policy>, ExportError> {
        match self.read(POLICY_FILE, POLICY_MAX_BYTES)? {
            None => Ok(None),
            Some(bytes) => Policy::parse(&bytes)
                .map(Some)
                .map_err(|e| self.bad(format!("{POLICY_FILE}: {e}"))),
        }
    }

    /// The bundle `b` of the index (§4 steps 1 and 2): its manifest must hash to its bundle
    /// digest (a mismatch otherwise) and parse canonically, its derived files must equal the
    /// manifest's, and each signature file must parse and be named after its key id.
    pub fn bundle(&self, b: &ExportedBundle) -> Result<ArchivedBundle, ExportError> {
        let base = format!("{BUNDLES_DIR}{}/", b.bundle_digest.hex());
        let bad = |m: String| self.bad(format!("{base}: {m}"));
        let manifest_bytes = self
            .read(
                &format!("{base}{}", layout::MANIFEST_TOML),
                crate::manifest::MANIFEST_MAX_BYTES as u64,
            )?
            .ok_or_else(|| bad(format!("{} is missing", layout::MANIFEST_TOML)))?;
        let got = Sha256Digest::of(&manifest_bytes);
        if got != b.bundle_digest {
            return Err(ExportError::Mismatch(format!(
                "archive {}: {base}{} hashes to {got}",
                self.path.display(),
                layout::MANIFEST_TOML
            )));
        }
        let manifest = Manifest::parse(&manifest_bytes)
            .map_err(|e| bad(format!("{}: {e}", layout::MANIFEST_TOML)))?;
        // Derived files must be exactly what the manifest gives (they are regenerated on writing).
        let derived = [
            (layout::OCI_LAYOUT, layout::OCI_LAYOUT_BYTES.to_vec()),
            (layout::INDEX_JSON, layout::index_json(&manifest)),
            (
                layout::SUMMARY_JSON,
                layout::summary_json(&manifest, &manifest_bytes),
            ),
        ];
        for (name, want) in derived {
            let have = self.read(&format!("{base}{name}"), layout::SMALL_FILE_MAX_BYTES)?;
            if have.as_deref() != Some(&want[..]) {
                return Err(bad(format!(
                    "{name} is missing or does not match the signed manifest"
                )));
            }
        }
        let prefix = format!("{base}{}", layout::SIGNATURES_DIR);
        let mut signatures = Vec::new();
        for name in self.names_under(&prefix) {
            let bytes = self
                .read(name, crate::sign::SIGNATURE_MAX_BYTES as u64)?
                .unwrap_or_default();
            let s = SignatureFile::parse(&bytes).map_err(|e| bad(format!("{name}: {e}")))?;
            let id = name
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".sig"))
                .unwrap_or("");
            if s.key_id.as_str() != id {
                return Err(bad(format!(
                    "{name} holds a signature by key id {:?}",
                    s.key_id.as_str()
                )));
            }
            signatures.push(s);
        }
        Ok(ArchivedBundle {
            manifest,
            manifest_bytes,
            signatures,
        })
    }

    /// The blob pool as the bundle writer's source.
    pub fn pool(&self) -> Pool<'_> {
        Pool(self)
    }

    /// Names of the files whose path starts with `prefix`, in byte order.
    fn names_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.files
            .range(prefix.to_string()..)
            .map(|(n, _)| n.as_str())
            .take_while(move |n| n.starts_with(prefix))
    }

    fn bad(&self, m: String) -> ExportError {
        ExportError::Malformed(format!("archive {}: {m}", self.path.display()))
    }
}

/// The pool `blobs/sha256/` of an archive, serving blobs by digest (the writer re-hashes them).
pub struct Pool<'a>(&'a ExportReader);

impl BlobSource for Pool<'_> {
    fn open_blob(
        &mut self,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, BundleError> {
        let ar = self.0;
        let name = format!("{BLOBS_SHA256_DIR}{}", digest.hex());
        let at = ar.files.get(&name).ok_or_else(|| {
            BundleError::malformed(format!(
                "archive {}: blob {digest} is missing from the pool",
                ar.path.display()
            ))
        })?;
        if at.size != size {
            return Err(BundleError::Mismatch(format!(
                "archive {}: blob {digest} has {} bytes, the signed manifest says {size}",
                ar.path.display(),
                at.size
            )));
        }
        Ok(Box::new(at.reader(&ar.file)))
    }
}

/// Whether `name` is a directory entry of the export layout (§1); an error if it has no place
/// in it.
pub fn classify(name: &str) -> Result<bool, String> {
    if name.starts_with('/') || name.split('/').any(|c| c == "." || c == "..") {
        return Err("escapes the archive layout".into());
    }
    let n = name.trim_end_matches('/');
    let is_dir = name.ends_with('/');
    match n {
        "keys" | "bundles" | "blobs" | "blobs/sha256" => return Ok(true),
        INDEX_FILE | POLICY_FILE => return Ok(false),
        _ => {}
    }
    if let Some(id) = n
        .strip_prefix(KEYS_DIR)
        .and_then(|r| r.strip_suffix(".pub"))
    {
        if KeyId::new(id).is_ok() {
            return Ok(false);
        }
    }
    if let Some(h) = n.strip_prefix(BLOBS_SHA256_DIR) {
        if Sha256Digest::parse_hex(h).is_some() {
            return Ok(false);
        }
    }
    if let Some(rest) = n.strip_prefix(BUNDLES_DIR) {
        let (h, inner) = rest.split_once('/').unwrap_or((rest, ""));
        if Sha256Digest::parse_hex(h).is_some() {
            if inner.is_empty() {
                return Ok(true);
            }
            let inner_name = if is_dir {
                format!("{inner}/")
            } else {
                inner.to_string()
            };
            return match layout::classify(&inner_name) {
                Ok(EntryPath::Dir(d)) if d == layout::CERRO_DIR || d == layout::SIGNATURES_DIR => {
                    Ok(true)
                }
                Ok(
                    EntryPath::OciLayout
                    | EntryPath::IndexJson
                    | EntryPath::Manifest
                    | EntryPath::Summary
                    | EntryPath::Signature(_),
                ) => Ok(false),
                _ => Err("is not part of the export layout (see spec/export.md)".into()),
            };
        }
    }
    Err("is not part of the export layout (see spec/export.md)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        let h = "ab".repeat(32);
        for (p, dir) in [
            ("cerro-export.json", false),
            ("keys/", true),
            ("keys/alice.pub", false),
            ("policy.json", false),
            ("bundles/", true),
            (&*format!("bundles/{h}/"), true),
            (&*format!("bundles/{h}/cerro/"), true),
            (&*format!("bundles/{h}/cerro/signatures/"), true),
            (&*format!("bundles/{h}/cerro/signatures/a.sig"), false),
            (&*format!("bundles/{h}/cerro/manifest.toml"), false),
            (&*format!("bundles/{h}/index.json"), false),
            (&*format!("blobs/sha256/{h}"), false),
        ] {
            assert_eq!(classify(p), Ok(dir), "{p}");
        }
        for p in [
            "../x",
            "/cerro-export.json",
            "other",
            "keys/.x.pub",
            &*format!("bundles/{h}/blobs/sha256/{h}"),
            &*format!("bundles/{h}/cerro/attestations/{h}"),
            &*format!("bundles/{h}/../../x"),
            "bundles/xyz/",
        ] {
            assert!(classify(p).is_err(), "{p}");
        }
    }
}
