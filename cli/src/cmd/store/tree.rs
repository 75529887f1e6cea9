//! `ct store tree NAME`: every entry of a stored bundle's root filesystem. The record is obtained
//! verified (`stored::open_bundle`: binding, signatures, trust, policy, root record), then the
//! tree is walked from its root record by core's verified walk (each directory node verified
//! against its digest), shown one line per entry or as JSON (the same `Serialize` structs).

use super::Ctx;
use crate::app::BundleSource;
use crate::exit::CmdResult;
use crate::steps::stored::{open_bundle, Checks};
use cerro_core::rootfs::{DirEntry, Payload, VerifiedTree, Walk, WalkItem};
use cerro_store::StoreError;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

#[derive(Serialize)]
struct TreeOut<'a> {
    ok: bool,
    name: &'a str,
    rootfs: &'a str,
    entries: Vec<EntryOut>,
}

#[derive(Serialize)]
struct Rdev {
    major: u32,
    minor: u32,
}

/// One entry, as `--json` shows it (and the human line is made from).
#[derive(Serialize)]
struct EntryOut {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    mtime_nsec: u32,
    nlink: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_group: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdev: Option<Rdev>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    xattrs: BTreeMap<String, String>,
}

/// Show bytes as text (shared with every command and log, `cerro_core::text`): valid UTF-8
/// stays (a backslash doubled, a control character or bidirectional control as `\xNN`), every
/// byte outside a valid UTF-8 sequence becomes `\xNN`. Reversible, so distinct names stay
/// distinct.
pub use cerro_core::text::escape_bytes;

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

fn entry_out(path: &[u8], e: &DirEntry, subdirs: u64) -> EntryOut {
    let mut o = EntryOut {
        path: escape_bytes(path),
        kind: "file",
        mode: e.meta.mode,
        uid: e.meta.uid,
        gid: e.meta.gid,
        mtime: e.meta.mtime.secs,
        mtime_nsec: e.meta.mtime.nanos,
        nlink: e.payload.link().map_or(2 + subdirs, |l| u64::from(l.nlink)),
        size: None,
        content: None,
        link_group: e.payload.link().filter(|l| l.nlink > 1).map(|l| l.id),
        target: None,
        rdev: None,
        xattrs: e
            .meta
            .xattrs
            .iter()
            .map(|(k, v)| (escape_bytes(k), hex(v)))
            .collect(),
    };
    match &e.payload {
        Payload::File { size, root, .. } => {
            o.size = Some(*size);
            o.content = Some(format!("blake3:{}", root.hex()));
        }
        Payload::Directory { .. } => o.kind = "dir",
        Payload::Symlink { target, .. } => {
            o.kind = "symlink";
            o.target = Some(escape_bytes(target));
        }
        Payload::CharDevice { major, minor, .. } | Payload::BlockDevice { major, minor, .. } => {
            o.kind = if matches!(e.payload, Payload::CharDevice { .. }) {
                "char"
            } else {
                "block"
            };
            o.rdev = Some(Rdev {
                major: *major,
                minor: *minor,
            });
        }
        Payload::Fifo { .. } => o.kind = "fifo",
    }
    o
}

/// `drwxr-xr-x`-style type and permission bits.
fn mode_string(kind: &str, mode: u32) -> String {
    let t = match kind {
        "dir" => 'd',
        "symlink" => 'l',
        "char" => 'c',
        "block" => 'b',
        "fifo" => 'p',
        _ => '-',
    };
    let mut s = String::from(t);
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

fn human_line(o: &EntryOut) -> String {
    let size = match (&o.rdev, o.size) {
        (Some(r), _) => format!("{},{}", r.major, r.minor),
        (None, Some(s)) => s.to_string(),
        (None, None) => String::new(),
    };
    let when = chrono::DateTime::from_timestamp(o.mtime, o.mtime_nsec)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("@{}", o.mtime));
    let mut line = format!(
        "{} {:>3} {:>5} {:>5} {:>10} {} {}",
        mode_string(o.kind, o.mode),
        o.nlink,
        o.uid,
        o.gid,
        size,
        when,
        o.path
    );
    if let Some(t) = &o.target {
        let _ = write!(line, " -> {t}");
    }
    if !o.xattrs.is_empty() {
        let names: Vec<&str> = o.xattrs.keys().map(String::as_str).collect();
        let _ = write!(line, "  [xattrs: {}]", names.join(", "));
    }
    line
}

pub fn run(ctx: &Ctx, name: &str, policy: Option<&std::path::Path>) -> CmdResult<u8> {
    let checks = Checks::load(ctx, policy, false)?;
    let src = BundleSource {
        bundle: name.to_string(),
        name: None,
        policy: policy.map(Into::into),
    };
    let opened = open_bundle(ctx, &src, &checks, "store tree", "listed")?;
    let rootfs = opened.bundle.manifest().rootfs.digest.to_string();
    // The verified walk; shown root first, then sorted by path.
    let tree = VerifiedTree::new(opened.store.clone());
    let mut entries: Vec<(Vec<u8>, DirEntry)> = Vec::new();
    for item in Walk::new(&tree, &opened.bundle.subject().root) {
        match item {
            WalkItem::Entry(e) => entries.push((e.path, e.entry)),
            WalkItem::Error(err) => {
                return Err(StoreError::Corrupt(format!("bundle {}, {err}", opened.label())).into())
            }
            WalkItem::DirEnd(_) => {}
        }
    }
    entries[1..].sort_by(|a, b| a.0.cmp(&b.0));
    // A directory's link count is 2 plus its subdirectories, as on a real filesystem.
    let mut subdirs: HashMap<&[u8], u64> = HashMap::new();
    for (path, e) in &entries[1..] {
        if matches!(e.payload, Payload::Directory { .. }) {
            let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let parent = if cut == 0 { &b"/"[..] } else { &path[..cut] };
            *subdirs.entry(parent).or_default() += 1;
        }
    }
    let out: Vec<EntryOut> = entries
        .iter()
        .map(|(p, e)| entry_out(p, e, subdirs.get(p.as_slice()).copied().unwrap_or(0)))
        .collect();
    if ctx.out.json {
        ctx.out.json_doc(&TreeOut {
            ok: true,
            name,
            rootfs: &rootfs,
            entries: out,
        });
        return Ok(0);
    }
    for o in &out {
        ctx.out.line(human_line(o));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_utf8_and_names_every_other_byte() {
        assert_eq!(escape_bytes(b"/bin/sh"), "/bin/sh");
        assert_eq!(escape_bytes("/caf\u{e9}".as_bytes()), "/caf\u{e9}");
        assert_eq!(escape_bytes(b"/a\xffb"), "/a\\xffb");
        assert_eq!(escape_bytes(b"/a\\xffb"), "/a\\\\xffb");
        assert_eq!(escape_bytes(b"/tab\there"), "/tab\\x09here");
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string("dir", 0o755), "drwxr-xr-x");
        assert_eq!(mode_string("file", 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string("dir", 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string("file", 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string("symlink", 0o777), "lrwxrwxrwx");
    }
}
