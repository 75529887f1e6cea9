//! The read path on a tree in memory (`MemoryTree`), without `/dev/fuse`: lookups, reads at
//! every block edge, partial blocks through the block cache, tampered blocks and directory
//! nodes (EIO, counted, never served), hard links sharing an inode, symlinks, and readdir
//! offsets. The filesystem's inner functions are what the `fuser` shims call, so this is the
//! code the kernel reaches, minus the kernel.

use super::*;
use crate::view::TreeRoot;
use crate::{LoadRecord, ReplayError};
use cerro_core::rootfs::{
    Blake3Root, DirDigest, Limits, MemorySink, MemoryTree, RootfsBuilder, VERIFY_BLOCK_SIZE_V1,
};
use cerro_core::source::Compression;

const BS: u64 = VERIFY_BLOCK_SIZE_V1;

/// Deterministic content that differs from block to block.
fn data(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
}

/// File sizes around every block edge.
fn sizes() -> Vec<u64> {
    vec![0, 1, BS - 1, BS, BS + 1, 3 * BS + 17]
}

/// A layer: files of every size in `f/`, a hard link pair, a symlink, a wide directory and a
/// deep one.
fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, path: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1);
        b.append_data(&mut h, path, &[][..]).unwrap();
    };
    let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, content: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(1);
        b.append_data(&mut h, path, content).unwrap();
    };
    dir(&mut b, "f");
    for s in sizes() {
        file(&mut b, &format!("f/{s}"), &data(s));
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(1);
    b.append_link(&mut h, "f/hard", format!("f/{}", BS + 1))
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_mtime(1);
    b.append_link(&mut h, "f/sym", "../wide/e007").unwrap();
    dir(&mut b, "wide");
    for i in 0..300 {
        file(
            &mut b,
            &format!("wide/e{i:03}"),
            format!("{i}\n").as_bytes(),
        );
    }
    let mut deep = String::from("deep");
    dir(&mut b, &deep);
    for i in 0..40 {
        deep.push_str(&format!("/d{i}"));
        dir(&mut b, &deep);
    }
    file(&mut b, &format!("{deep}/bottom"), b"at the bottom\n");
    b.into_inner().unwrap()
}

struct Fixture {
    fs: VerifiedFs<MemoryTree>,
    store: Arc<MemoryTree>,
    events: Arc<Mutex<Vec<String>>>,
}

/// The layer's rootfs and its tree in memory.
fn rootfs() -> (cerro_core::rootfs::Rootfs, MemorySink) {
    let mut builder = RootfsBuilder::new(Limits::default());
    let mut sink = MemorySink::default();
    builder
        .apply_layer(&layer()[..], Compression::None, &mut sink)
        .unwrap();
    (builder.finish(), sink)
}

/// A filesystem on `store`, as a mount (or a new serving process of one) makes it.
fn filesystem(store: &Arc<MemoryTree>, events: EventSink) -> VerifiedFs<MemoryTree> {
    let (rootfs, _) = rootfs();
    VerifiedFs::new(
        VerifiedTree::new(store.clone()),
        &View::Rootfs(TreeRoot::unchecked("test", rootfs.root.clone())),
        events,
        DEFAULT_CACHE_BYTES,
    )
}

fn fixture() -> Fixture {
    let (rootfs, sink) = rootfs();
    let store = Arc::new(MemoryTree::new(&rootfs, &sink.files));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let fs = filesystem(
        &store,
        Arc::new(move |e: &str| sink_events.lock().unwrap().push(e.to_string())),
    );
    Fixture { fs, store, events }
}

impl Fixture {
    fn ino(&self, path: &str) -> FsResult<Ino> {
        let mut ino = ROOT_INO;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self.fs.lookup_inner(ino, OsStr::new(part))?.ino.into();
        }
        Ok(ino)
    }
    fn read(&self, ino: Ino, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let mut out = None;
        self.fs
            .read_inner(ino, offset, size, |b| out = Some(b.to_vec()))?;
        Ok(out.expect("a successful read replies"))
    }
    /// The directory digest of the node listing `path`, found without loading that node (a
    /// lookup would: a directory's `nlink` counts its subdirectories).
    fn dir_digest(&self, path: &str) -> DirDigest {
        let mut ino = ROOT_INO;
        for part in path.split('/') {
            ino = self
                .fs
                .table
                .children(ino)
                .unwrap()
                .find(part.as_bytes())
                .unwrap();
        }
        match &self.fs.table.get(ino).unwrap().body {
            Body::Dir {
                digest: Some(d), ..
            } => *d,
            _ => panic!("{path} is not a stored directory"),
        }
    }
}

#[test]
fn reads_return_the_layer_bytes_at_every_edge() {
    let fx = fixture();
    for s in sizes() {
        let want = data(s);
        let ino = fx.ino(&format!("f/{s}")).unwrap();
        assert_eq!(fx.fs.attr_of(ino).unwrap().1.size, s);
        let mut edges = vec![
            0,
            1,
            BS - 1,
            BS,
            BS + 1,
            2 * BS - 1,
            s.saturating_sub(1),
            s,
            s + 1,
        ];
        edges.retain(|&o| o <= s + 1);
        for &off in &edges {
            for len in [
                1u32,
                7,
                4096,
                BS as u32 - 1,
                BS as u32,
                BS as u32 + 1,
                1 << 20,
            ] {
                let got = fx.read(ino, off, len).unwrap();
                let lo = (off.min(s)) as usize;
                let hi = (off.saturating_add(len as u64).min(s)) as usize;
                assert_eq!(got, want[lo..hi], "size {s} offset {off} len {len}");
            }
        }
    }
    assert_eq!(fx.fs.failures.load(Ordering::Relaxed), 0);
}

#[test]
fn a_tampered_block_fails_alone_and_is_never_served() {
    let fx = fixture();
    let s = 3 * BS + 17;
    let ino = fx.ino(&format!("f/{s}")).unwrap();
    let root = Blake3Root::of(&data(s));
    {
        let mut c = fx.store.contents.write().unwrap();
        let mut bytes = data(s);
        bytes[(BS + 10) as usize] ^= 1;
        c.insert(root, Arc::new(bytes));
    }
    // Blocks 0, 2 and 3 are intact; block 1 is not, whichever way it is reached.
    assert_eq!(fx.read(ino, 0, BS as u32).unwrap(), data(s)[..BS as usize]);
    assert_eq!(
        fx.read(ino, 2 * BS, BS as u32).unwrap(),
        data(s)[2 * BS as usize..3 * BS as usize]
    );
    for (off, len) in [(BS, BS as u32), (BS + 10, 1), (BS - 1, 2), (0, 1 << 20)] {
        assert!(
            matches!(fx.read(ino, off, len), Err(FsError::Io)),
            "offset {off} len {len} was served"
        );
    }
    assert!(fx.fs.failures.load(Ordering::Relaxed) >= 1);
    let events = fx.events.lock().unwrap();
    assert_eq!(
        events.len(),
        1,
        "logged once per (inode, block): {events:?}"
    );
    assert!(events[0].contains(&format!("f/{s}")), "{events:?}");
    assert!(events[0].contains("EIO"), "{events:?}");
}

#[test]
fn a_partial_block_is_cached_only_once_verified() {
    let fx = fixture();
    let s = 3 * BS + 17;
    let ino = fx.ino(&format!("f/{s}")).unwrap();
    let root = Blake3Root::of(&data(s));
    // A partial read verifies block 0 and caches it; later partial reads come from the cache
    // even if the store changes underneath (they were verified).
    assert_eq!(fx.read(ino, 5, 10).unwrap(), data(s)[5..15]);
    assert!(fx.fs.cache.get(&root, 0).is_some());
    {
        let mut c = fx.store.contents.write().unwrap();
        let mut bytes = data(s);
        bytes[7] ^= 0xff;
        bytes[(2 * BS + 7) as usize] ^= 0xff;
        c.insert(root, Arc::new(bytes));
    }
    // The file was already open: reopen it so the tampered bytes are what the store gives.
    fx.fs.files.lock().unwrap().clear();
    assert_eq!(fx.read(ino, 6, 3).unwrap(), data(s)[6..9]);
    // A block never read before is read from the store, fails, and is not cached.
    assert!(matches!(fx.read(ino, 2 * BS + 1, 10), Err(FsError::Io)));
    assert!(fx.fs.cache.get(&root, 2).is_none());
}

#[test]
fn the_reused_read_buffer_never_serves_what_an_earlier_read_left_in_it() {
    let fx = fixture();
    let s = 3 * BS + 17;
    let ino = fx.ino(&format!("f/{s}")).unwrap();
    let root = Blake3Root::of(&data(s));
    // A whole-file read fills this thread's buffer with the intact bytes…
    assert_eq!(fx.read(ino, 0, 1 << 20).unwrap(), data(s));
    // …then the object is swapped for one with block 2 damaged: the same range, read into the
    // same buffer, fails whole; a range before the damage is served, and nothing after it.
    {
        let mut bytes = data(s);
        bytes[(2 * BS + 1) as usize] ^= 0x40;
        fx.store
            .contents
            .write()
            .unwrap()
            .insert(root, Arc::new(bytes));
    }
    fx.fs.files.lock().unwrap().clear();
    assert!(matches!(fx.read(ino, 0, 1 << 20), Err(FsError::Io)));
    assert!(matches!(
        fx.read(ino, 2 * BS, 2 * BS as u32),
        Err(FsError::Io)
    ));
    assert_eq!(
        fx.read(ino, 0, 2 * BS as u32).unwrap(),
        data(s)[..2 * BS as usize]
    );
    // A shorter file after a longer one: exactly its bytes, none of the longer one's.
    let small = fx.ino(&format!("f/{}", BS + 1)).unwrap();
    assert_eq!(fx.read(small, 0, 1 << 20).unwrap(), data(BS + 1));
}

#[test]
fn a_missing_or_short_object_is_eio() {
    let fx = fixture();
    let s = BS + 1;
    let ino = fx.ino(&format!("f/{s}")).unwrap();
    let root = Blake3Root::of(&data(s));
    fx.store
        .contents
        .write()
        .unwrap()
        .insert(root, Arc::new(data(s)[..BS as usize].to_vec()));
    assert!(matches!(fx.read(ino, BS, 1), Err(FsError::Io)));
    fx.store.contents.write().unwrap().remove(&root);
    fx.fs.files.lock().unwrap().clear();
    assert!(matches!(fx.read(ino, 0, 1), Err(FsError::Io)));
}

#[test]
fn a_tampered_directory_node_fails_its_lookups_only() {
    let fx = fixture();
    let d = fx.dir_digest("wide");
    {
        let mut dirs = fx.store.dirs.write().unwrap();
        let node = dirs.get_mut(&d).unwrap();
        let n = node.len();
        node[n - 1] ^= 1;
    }
    // Looking `wide` up loads it (for its link count): that fails, as does everything in it.
    assert!(matches!(fx.ino("wide"), Err(FsError::Io)));
    let wide = fx
        .fs
        .table
        .children(ROOT_INO)
        .unwrap()
        .find(b"wide")
        .unwrap();
    assert!(matches!(
        fx.fs.lookup_inner(wide, OsStr::new("e001")),
        Err(FsError::Io)
    ));
    assert!(matches!(fx.fs.dir_entries(wide, 0), Err(FsError::Io)));
    // Its siblings are untouched.
    assert_eq!(fx.read(fx.ino("f/1").unwrap(), 0, 10).unwrap(), data(1));
    // A node that is missing altogether is the same failure.
    let deep = fx.dir_digest("deep/d0/d1");
    fx.store.dirs.write().unwrap().remove(&deep);
    assert!(matches!(fx.ino("deep/d0/d1/d2"), Err(FsError::Io)));
    assert!(fx.fs.failures.load(Ordering::Relaxed) >= 1);
}

#[test]
fn hard_links_share_an_inode_and_symlinks_read_back() {
    let fx = fixture();
    let a = fx.ino(&format!("f/{}", BS + 1)).unwrap();
    let b = fx.ino("f/hard").unwrap();
    assert_eq!(a, b);
    assert_eq!(fx.fs.attr_of(a).unwrap().1.nlink, 2);
    assert_eq!(fx.read(b, 0, 1 << 20).unwrap(), data(BS + 1));
    let sym = fx.ino("f/sym").unwrap();
    assert_eq!(fx.fs.readlink_inner(sym).unwrap(), b"../wide/e007");
    assert!(matches!(fx.fs.readlink_inner(a), Err(FsError::Inval)));
    assert!(matches!(
        fx.read(fx.ino("f").unwrap(), 0, 1),
        Err(FsError::IsDir)
    ));
    assert!(matches!(fx.ino("f/none"), Err(FsError::NoEnt)));
    // 41 levels down, every node verified on the way.
    let bottom = fx
        .ino(&format!(
            "deep/{}/bottom",
            (0..40)
                .map(|i| format!("d{i}"))
                .collect::<Vec<_>>()
                .join("/")
        ))
        .unwrap();
    assert_eq!(fx.read(bottom, 0, 100).unwrap(), b"at the bottom\n");
}

#[test]
fn readdir_resumes_at_every_offset() {
    let fx = fixture();
    let wide = fx.ino("wide").unwrap();
    let all = fx.fs.dir_entries(wide, 0).unwrap();
    assert_eq!(all.len(), 302, ". and .. and 300 entries");
    assert_eq!(all[0].2, b".");
    assert_eq!(all[1].2, b"..");
    assert_eq!(all[1].0, ROOT_INO);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(
            e.1,
            i as u64 + 1,
            "the offset of entry {i} resumes after it"
        );
    }
    let names: Vec<_> = all[2..].iter().map(|e| e.2.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // The kernel resumes from the offset of the last entry it kept, in any chunk size.
    for chunk in [1, 7, 100, 301] {
        let mut got = Vec::new();
        let mut off = 0;
        loop {
            let part = fx.fs.dir_entries(wide, off).unwrap();
            if part.is_empty() {
                break;
            }
            let take = part.len().min(chunk);
            off = part[take - 1].1;
            got.extend(part.into_iter().take(take));
        }
        assert_eq!(got, all, "chunk {chunk}");
    }
    assert!(fx.fs.dir_entries(wide, 302).unwrap().is_empty());
    assert!(fx.fs.dir_entries(wide, u64::MAX).unwrap().is_empty());
}

/// Another filesystem on the same store and root, as a new serving process would make it.
fn twin(fx: &Fixture) -> VerifiedFs<MemoryTree> {
    filesystem(&fx.store, Arc::new(|_: &str| {}))
}

#[test]
fn a_replayed_load_journal_gives_every_inode_its_number_again() {
    let fx = fixture();
    let journal = Arc::new(Mutex::new(Vec::new()));
    let j = journal.clone();
    fx.fs.on_load(Box::new(move |r| j.lock().unwrap().push(r)));
    // An order no walk would take: deep first, then the hard-link pair's directory, then wide.
    let paths = [
        "deep/d0/d1/d2/d3",
        "f/hard",
        "f/sym",
        "wide/e299",
        "deep/d0",
    ];
    let inos: Vec<Ino> = paths.iter().map(|p| fx.ino(p).unwrap()).collect();
    let records = journal.lock().unwrap().clone();
    assert!(records.len() >= 6, "{records:?}");
    assert_eq!(records[0].dir, ROOT_INO.get());
    // Serialised and back, as the supervisor keeps it.
    let bytes: Vec<u8> = records.iter().flat_map(|r| r.to_bytes()).collect();
    let back: Vec<LoadRecord> = bytes
        .chunks(LoadRecord::LEN)
        .map(|c| LoadRecord::from_bytes(c).unwrap())
        .collect();
    assert_eq!(back, records);

    let other = twin(&fx);
    other.replay(&back).unwrap();
    assert_eq!(other.table.len(), fx.fs.table.len());
    for (p, ino) in paths.iter().zip(&inos) {
        assert_eq!(other.table.path(*ino), fx.fs.table.path(*ino), "{p}");
        assert_eq!(
            other.attr_of(*ino).unwrap().1.size,
            fx.fs.attr_of(*ino).unwrap().1.size,
            "{p}"
        );
    }
    // A later load numbers on from where the first table would have.
    let next = fx.ino("f/0").unwrap();
    assert_eq!(
        Fixture {
            fs: other,
            store: fx.store.clone(),
            events: fx.events.clone()
        }
        .ino("f/0")
        .unwrap(),
        next
    );
}

#[test]
fn a_journal_that_does_not_replay_exactly_is_refused() {
    let fx = fixture();
    let journal = Arc::new(Mutex::new(Vec::new()));
    let j = journal.clone();
    fx.fs.on_load(Box::new(move |r| j.lock().unwrap().push(r)));
    fx.ino("wide/e001").unwrap();
    fx.ino("f/1").unwrap();
    let records = journal.lock().unwrap().clone();
    // Out of order: `f` before `wide` numbers their children differently.
    let mut swapped = records.clone();
    swapped.swap(1, 2);
    assert!(matches!(
        twin(&fx).replay(&swapped),
        Err(ReplayError::Differs { index: 1, .. })
    ));
    // A directory twice, or an inode that does not exist yet.
    let mut twice = records.clone();
    twice.push(records[1]);
    assert!(matches!(
        twin(&fx).replay(&twice),
        Err(ReplayError::Load { index: 3, .. })
    ));
    let unknown = [LoadRecord {
        dir: 999_999,
        first: 2,
        count: 1,
    }];
    assert!(matches!(
        twin(&fx).replay(&unknown),
        Err(ReplayError::Load { index: 0, .. })
    ));
    // A directory node changed in the store since: it no longer verifies, nothing is served.
    let digest = fx.dir_digest("wide");
    fx.store.dirs.write().unwrap().remove(&digest);
    assert!(matches!(
        twin(&fx).replay(&records),
        Err(ReplayError::Load { index: 1, .. })
    ));
    twin(&fx).replay(&records[..1]).unwrap();
}
