//! What changed between two verified bundles (`ct diff OLD NEW`): layers added and removed, the
//! image config's run settings and labels, signers, and the files of the two root filesystems.
//! The file diff walks both Merkle DAGs together and descends only where directory digests
//! differ, so two large images that share most of their tree cost little more than their
//! differences. Pure: the trees are read through [`VerifiedTree`], every node verified.

use crate::manifest::{Descriptor, Manifest};
use crate::rootfs::{
    DirDigest, DirEntry, DirNode, Payload, RootRecord, TreeStore, VerifiedTree, WalkError,
};
use crate::source::config::RunDefaults;
use serde::Serialize;
use std::collections::BTreeMap;

/// Layers by digest: in NEW only, in OLD only, in both.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LayerDiff {
    pub added: Vec<Descriptor>,
    pub removed: Vec<Descriptor>,
    pub kept: usize,
}

pub fn layers(old: &Manifest, new: &Manifest) -> LayerDiff {
    let has = |m: &Manifest, d: &Descriptor| m.layers.iter().any(|l| l.digest == d.digest);
    LayerDiff {
        added: new
            .layers
            .iter()
            .filter(|l| !has(old, l))
            .cloned()
            .collect(),
        removed: old
            .layers
            .iter()
            .filter(|l| !has(new, l))
            .cloned()
            .collect(),
        kept: new.layers.iter().filter(|l| has(old, l)).count(),
    }
}

/// One setting of the image config that differs (`None`: absent on that side).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConfigChange {
    /// `Entrypoint`, `Cmd`, `User`, `WorkingDir`, `ExposedPorts`, `Env NAME`, `Label NAME`.
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The run settings and labels that differ, in a stable order.
pub fn config(old: &RunDefaults, new: &RunDefaults) -> Vec<ConfigChange> {
    let mut out = Vec::new();
    let mut one = |field: &str, o: Option<String>, n: Option<String>| {
        if o != n {
            out.push(ConfigChange {
                field: field.into(),
                old: o,
                new: n,
            });
        }
    };
    let list = |v: &[String]| (!v.is_empty()).then(|| format!("{v:?}"));
    one("Entrypoint", list(&old.entrypoint), list(&new.entrypoint));
    one("Cmd", list(&old.cmd), list(&new.cmd));
    one("User", old.user.clone(), new.user.clone());
    one(
        "WorkingDir",
        old.working_dir.clone(),
        new.working_dir.clone(),
    );
    one(
        "ExposedPorts",
        list(&old.exposed_ports),
        list(&new.exposed_ports),
    );
    let vars = |env: &[String]| -> BTreeMap<String, String> {
        env.iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    };
    for (prefix, o, n) in [
        ("Env", vars(&old.env), vars(&new.env)),
        ("Label", old.labels.clone(), new.labels.clone()),
    ] {
        let mut names: Vec<&String> = o.keys().chain(n.keys()).collect();
        names.sort();
        names.dedup();
        for k in names {
            one(
                &format!("{prefix} {k}"),
                o.get(k).cloned(),
                n.get(k).cloned(),
            );
        }
    }
    out
}

/// Signers (trust-store name or key id, with fingerprint) in NEW only, in OLD only, in both.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SignerDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

pub fn signers(old: &[String], new: &[String]) -> SignerDiff {
    SignerDiff {
        added: new.iter().filter(|s| !old.contains(s)).cloned().collect(),
        removed: old.iter().filter(|s| !new.contains(s)).cloned().collect(),
        kept: new.iter().filter(|s| old.contains(s)).cloned().collect(),
    }
}

/// Attestations and, when both bundles have an SBOM, the packages it lists.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct AttestationDiff {
    /// Kinds in NEW only, in OLD only.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Kinds in both whose documents differ.
    pub changed: Vec<String>,
    /// SBOM packages (`name version`) in NEW only, in OLD only, and with another version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<PackageDiff>,
    /// When both have provenance: what it says differently (builder, build type, source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Vec<FieldChange>>,
}

/// One field that differs between two documents.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// What two provenance statements say differently: the builder (id and version), the build
/// type, the source and its digest.
pub fn provenance(
    old: &crate::provenance::Summary,
    new: &crate::provenance::Summary,
) -> Vec<FieldChange> {
    let builder =
        |s: &crate::provenance::Summary| format!("{} {}", s.builder_id, s.builder_version);
    [
        ("builder", builder(old), builder(new)),
        ("build_type", old.build_type.clone(), new.build_type.clone()),
        ("source", old.source.clone(), new.source.clone()),
        (
            "source_digest",
            old.source_digest.clone(),
            new.source_digest.clone(),
        ),
    ]
    .into_iter()
    .filter(|(_, o, n)| o != n)
    .map(|(field, old, new)| FieldChange {
        field: field.into(),
        old,
        new,
    })
    .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct PackageDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `name: old → new`.
    pub changed: Vec<String>,
}

/// Packages by name → version, from two SBOMs.
pub fn packages(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> PackageDiff {
    let mut d = PackageDiff::default();
    for (name, v) in new {
        match old.get(name) {
            None => d.added.push(format!("{name} {v}")),
            Some(o) if o != v => d.changed.push(format!("{name}: {o} → {v}")),
            Some(_) => {}
        }
    }
    for (name, v) in old {
        if !new.contains_key(name) {
            d.removed.push(format!("{name} {v}"));
        }
    }
    d
}

/// One path that differs between the two trees.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum FileChange {
    /// In NEW only (a directory stands for everything below it).
    Added { path: String, kind: &'static str },
    /// In OLD only.
    Removed { path: String, kind: &'static str },
    /// In both, with these facts different: `type`, `content`, `size`, `mode`, `owner`,
    /// `mtime`, `xattrs`, `target`, `device`, `links`.
    Changed {
        path: String,
        what: Vec<&'static str>,
    },
}

/// The file-level difference of two trees, and how much of them was looked at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TreeDiff {
    pub changes: Vec<FileChange>,
    /// Pairs of directories whose listings were read and compared (equal digests are skipped
    /// without reading).
    pub dirs_compared: u64,
}

fn kind(p: &Payload) -> &'static str {
    match p {
        Payload::File { .. } => "file",
        Payload::Directory { .. } => "dir",
        Payload::Symlink { .. } => "symlink",
        Payload::CharDevice { .. } => "char",
        Payload::BlockDevice { .. } => "block",
        Payload::Fifo { .. } => "fifo",
    }
}

/// What differs between two entries of the same name (empty: nothing but, for directories,
/// possibly their contents).
fn differences(a: &DirEntry, b: &DirEntry) -> Vec<&'static str> {
    let mut w = Vec::new();
    if kind(&a.payload) != kind(&b.payload) {
        return vec!["type"];
    }
    match (&a.payload, &b.payload) {
        (
            Payload::File {
                size: s1, root: r1, ..
            },
            Payload::File {
                size: s2, root: r2, ..
            },
        ) => {
            if r1 != r2 {
                w.push("content");
            }
            if s1 != s2 {
                w.push("size");
            }
        }
        (Payload::Symlink { target: t1, .. }, Payload::Symlink { target: t2, .. }) if t1 != t2 => {
            w.push("target")
        }
        (
            Payload::CharDevice {
                major: a1,
                minor: b1,
                ..
            }
            | Payload::BlockDevice {
                major: a1,
                minor: b1,
                ..
            },
            Payload::CharDevice {
                major: a2,
                minor: b2,
                ..
            }
            | Payload::BlockDevice {
                major: a2,
                minor: b2,
                ..
            },
        ) if (a1, b1) != (a2, b2) => w.push("device"),
        _ => {}
    }
    if a.payload.link().map(|l| l.nlink) != b.payload.link().map(|l| l.nlink) {
        w.push("links");
    }
    let (m1, m2) = (&a.meta, &b.meta);
    if m1.mode != m2.mode {
        w.push("mode");
    }
    if (m1.uid, m1.gid) != (m2.uid, m2.gid) {
        w.push("owner");
    }
    if m1.mtime != m2.mtime {
        w.push("mtime");
    }
    if m1.xattrs != m2.xattrs {
        w.push("xattrs");
    }
    w
}

fn join(parent: &str, name: &[u8]) -> String {
    let name = crate::text::escape_bytes(name);
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The file-level difference of the trees under `old` and `new`, in path order.
pub fn trees<A: TreeStore + ?Sized, B: TreeStore + ?Sized>(
    old: (&VerifiedTree<A>, &RootRecord),
    new: (&VerifiedTree<B>, &RootRecord),
) -> Result<TreeDiff, Box<WalkError>> {
    let mut d = TreeDiff {
        changes: Vec::new(),
        dirs_compared: 0,
    };
    let root_a = DirEntry {
        name: Vec::new(),
        meta: old.1.meta.clone(),
        payload: Payload::Directory { digest: old.1.dir },
    };
    let root_b = DirEntry {
        name: Vec::new(),
        meta: new.1.meta.clone(),
        payload: Payload::Directory { digest: new.1.dir },
    };
    let w = differences(&root_a, &root_b);
    if !w.is_empty() {
        d.changes.push(FileChange::Changed {
            path: "/".into(),
            what: w,
        });
    }
    compare_dirs(old.0, new.0, "/", &old.1.dir, &new.1.dir, &mut d)?;
    Ok(d)
}

fn read<S: TreeStore + ?Sized>(
    t: &VerifiedTree<S>,
    path: &str,
    dir: &DirDigest,
) -> Result<DirNode, Box<WalkError>> {
    t.dir(dir).map_err(|source| {
        Box::new(WalkError {
            path: path.as_bytes().to_vec(),
            dir: *dir,
            source: Box::new(source),
        })
    })
}

fn compare_dirs<A: TreeStore + ?Sized, B: TreeStore + ?Sized>(
    a: &VerifiedTree<A>,
    b: &VerifiedTree<B>,
    path: &str,
    da: &DirDigest,
    db: &DirDigest,
    d: &mut TreeDiff,
) -> Result<(), Box<WalkError>> {
    if da == db {
        return Ok(());
    }
    d.dirs_compared += 1;
    let (na, nb) = (read(a, path, da)?, read(b, path, db)?);
    let (mut i, mut j) = (0, 0);
    // Both listings are sorted by name bytes: merge them.
    while i < na.entries.len() || j < nb.entries.len() {
        let (ea, eb) = (na.entries.get(i), nb.entries.get(j));
        let order = match (ea, eb) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let x = ea.expect("present");
                d.changes.push(FileChange::Removed {
                    path: join(path, &x.name),
                    kind: kind(&x.payload),
                });
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let y = eb.expect("present");
                d.changes.push(FileChange::Added {
                    path: join(path, &y.name),
                    kind: kind(&y.payload),
                });
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (ea.expect("present"), eb.expect("present"));
                let p = join(path, &x.name);
                let w = differences(x, y);
                if !w.is_empty() {
                    d.changes.push(FileChange::Changed {
                        path: p.clone(),
                        what: w,
                    });
                }
                if let (Payload::Directory { digest: sa }, Payload::Directory { digest: sb }) =
                    (&x.payload, &y.payload)
                {
                    compare_dirs(a, b, &p, sa, sb, d)?;
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{Limits, MemorySink, MemoryTree, RootfsBuilder};
    use crate::source::Compression;
    use std::sync::Arc;

    /// A tree from `(path, content)` files (directories implied), every mtime 1.
    fn tree(files: &[(&str, &str)]) -> (VerifiedTree<MemoryTree>, RootRecord) {
        let mut b = tar::Builder::new(Vec::new());
        for (p, c) in files {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_mtime(1);
            h.set_size(c.len() as u64);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, c.as_bytes()).unwrap();
        }
        let mut builder = RootfsBuilder::new(Limits::default());
        let mut sink = MemorySink::default();
        builder
            .apply_layer(&b.into_inner().unwrap()[..], Compression::None, &mut sink)
            .unwrap();
        let r = builder.finish();
        (
            VerifiedTree::new(Arc::new(MemoryTree::new(&r, &sink.files))),
            r.root,
        )
    }

    #[test]
    fn only_differing_subtrees_are_read() {
        let mut common: Vec<(String, String)> = (0..300)
            .map(|i| (format!("usr/lib/d{}/f{i}", i % 30), format!("{i}")))
            .collect();
        common.push(("etc/os-release".into(), "v1".into()));
        let old: Vec<(&str, &str)> = common
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut new_files = common.clone();
        new_files.last_mut().unwrap().1 = "v2".into();
        new_files.push(("etc/new".into(), "x".into()));
        new_files.retain(|(p, _)| p != "usr/lib/d3/f3");
        let new: Vec<(&str, &str)> = new_files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let (ta, ra) = tree(&old);
        let (tb, rb) = tree(&new);
        let d = trees((&ta, &ra), (&tb, &rb)).unwrap();
        assert_eq!(
            d.changes,
            [
                FileChange::Added {
                    path: "/etc/new".into(),
                    kind: "file"
                },
                FileChange::Changed {
                    path: "/etc/os-release".into(),
                    what: vec!["content"]
                },
                FileChange::Removed {
                    path: "/usr/lib/d3/f3".into(),
                    kind: "file"
                },
            ]
        );
        // /, /etc, /usr, /usr/lib and /usr/lib/d3: not the 29 other directories of 10 files.
        assert_eq!(d.dirs_compared, 5);
        // A tree against itself: nothing read at all.
        let same = trees((&ta, &ra), (&ta, &ra)).unwrap();
        assert!(same.changes.is_empty() && same.dirs_compared == 0);
    }

    #[test]
    fn a_tampered_node_is_an_error_naming_the_path() {
        let (ta, ra) = tree(&[("a/x", "1")]);
        let (tb, rb) = tree(&[("a/x", "2")]);
        let node = tb.dir(&rb.dir).unwrap();
        let Payload::Directory { digest } = node.entries[0].payload else {
            panic!()
        };
        let store = MemoryTree::default();
        store.dirs.write().unwrap().insert(rb.dir, node.encode());
        store
            .dirs
            .write()
            .unwrap()
            .insert(digest, DirNode::default().encode());
        let tampered = VerifiedTree::new(Arc::new(store));
        let e = trees((&ta, &ra), (&tampered, &rb)).unwrap_err();
        assert_eq!(e.path, b"/a");
        assert!(e.source.is_corruption());
    }

    #[test]
    fn config_changes_are_listed_by_field() {
        let old = RunDefaults {
            cmd: vec!["sh".into()],
            env: vec!["A=1".into(), "B=2".into()],
            labels: [("version".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        let new = RunDefaults {
            cmd: vec!["bash".into()],
            env: vec!["A=1".into(), "C=3".into()],
            labels: [("version".to_string(), "2".to_string())].into(),
            ..Default::default()
        };
        let fields: Vec<String> = config(&old, &new).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["Cmd", "Env B", "Env C", "Label version"]);
        assert!(config(&old, &old).is_empty());
    }

    #[test]
    fn package_changes_by_name() {
        let m = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let d = packages(
            &m(&[("bash", "5.2"), ("gone", "1")]),
            &m(&[("bash", "5.3"), ("less", "590")]),
        );
        assert_eq!(d.added, ["less 590"]);
        assert_eq!(d.removed, ["gone 1"]);
        assert_eq!(d.changed, ["bash: 5.2 → 5.3"]);
    }
}
