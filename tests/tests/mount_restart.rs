//! A mount that survives its serving process (`kill -9`): the supervisor `ct mount` leaves
//! behind starts another on the same FUSE connection, which numbers inodes as before and has
//! the kernel re-send what the dead one had read. Readers reading random files see a pause,
//! never an error; a tampered block still fails afterwards; a store tampered meanwhile stops
//! the mount rather than serve it. Every read is bounded; every mount is guarded.

use cerro_tests::hostile_store::RawStore;
use cerro_tests::mount::{is_mounted, mount_image, mounts_at, pack_mount_image, Mounted};
use cerro_tests::TestEnv;
use std::fs;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `O_DIRECT` (x86-64): every read reaches the serving process, none is a page-cache hit.
#[cfg(target_arch = "x86_64")]
const O_DIRECT: i32 = 0o40000;
#[cfg(not(target_arch = "x86_64"))]
const O_DIRECT: i32 = 0o200000;
const EIO: i32 = 5;
/// Longest any one read may take (a kill and a restart included) before the test calls it hung.
const READ_BOUND: Duration = Duration::from_secs(10);

fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.keygen("alice");
    pack_mount_image(&env, "mnt.ctp", "mnt");
    let store = env.path("store");
    (env, store)
}

/// The supervisor's pid (what `ct mounts` names) for the mount at `mp`.
fn supervisor(env: &TestEnv, store: &Path, mp: &Path) -> u32 {
    mounts_at(env, store, mp)
        .first()
        .and_then(|m| m["pid"].as_u64())
        .expect("ct mounts names the mount's daemon") as u32
}

/// Wait (bounded) until process `pid` is gone.
fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + READ_BOUND;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "{what} ({pid}) is still there");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The serving process: the supervisor's one child (waiting, bounded, while it is replaced).
fn server(sup: u32) -> u32 {
    let deadline = Instant::now() + READ_BOUND;
    loop {
        let kids =
            fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap_or_default();
        let kids: Vec<u32> = kids
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if let [one] = kids[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "the supervisor {sup} has children {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every regular file of the source tree (relative path, bytes).
fn source_files() -> Vec<(String, Vec<u8>)> {
    let root = &mount_image().1;
    let mut out = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                // Files only root may read are read as root here, which is what the test runs as.
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn kill9(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill -9");
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Read `len` bytes at `off` of `path` with O_DIRECT (block-aligned, as O_DIRECT asks).
fn read_direct(path: &Path, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_DIRECT)
        .open(path)?;
    let mut buf = AlignedBuf::new(len);
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf.as_mut()[got..], off + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(buf.as_mut()[..got].to_vec())
}

/// A 4096-aligned buffer (O_DIRECT needs one).
struct AlignedBuf {
    v: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let v = vec![0u8; len + 4096];
        let start = (4096 - (v.as_ptr() as usize % 4096)) % 4096;
        Self { v, start, len }
    }
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.v[self.start..self.start + self.len]
    }
}

/// Abort the FUSE connection of `mp` (frees any reader stuck in it; the fusectl filesystem is
/// mounted first where it is not) — only ever used when the test is failing anyway.
fn abort_connection(mp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let conns = Path::new("/sys/fs/fuse/connections");
    if fs::read_dir(conns).map_or(true, |mut d| d.next().is_none()) {
        let _ = std::process::Command::new("mount")
            .args(["-t", "fusectl", "fusectl"])
            .arg(conns)
            .status();
    }
    if let Ok(md) = fs::metadata(mp) {
        let minor = rustix::fs::minor(md.dev());
        let _ = fs::write(conns.join(minor.to_string()).join("abort"), "1");
    }
}

/// Bounds every read of a test: readers (and the probe) say when they start and end a read;
/// a read older than [`READ_BOUND`] makes the watchdog abort the connection, which ends every
/// read in it, and the test then fails naming what hung.
struct Watchdog {
    /// Start of each slot's current read, in ms since `t0` (0: not reading).
    busy: Vec<AtomicU64>,
    t0: Instant,
    hung: Mutex<Option<String>>,
    done: AtomicBool,
}

impl Watchdog {
    fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            busy: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            t0: Instant::now(),
            hung: Mutex::new(None),
            done: AtomicBool::new(false),
        })
    }
    fn now(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64 + 1
    }
    /// Run `f` as a bounded read in `slot`.
    fn read<T>(&self, slot: usize, f: impl FnOnce() -> T) -> T {
        self.busy[slot].store(self.now(), Ordering::SeqCst);
        let r = f();
        self.busy[slot].store(0, Ordering::SeqCst);
        r
    }
    fn watch(self: &Arc<Self>, mp: PathBuf) -> std::thread::JoinHandle<()> {
        let me = self.clone();
        std::thread::spawn(move || {
            while !me.done.load(Ordering::SeqCst) {
                let now = me.now();
                for (i, b) in me.busy.iter().enumerate() {
                    let since = b.load(Ordering::SeqCst);
                    if since > 0 && now - since > READ_BOUND.as_millis() as u64 {
                        me.hung
                            .lock()
                            .unwrap()
                            .get_or_insert(format!("read slot {i} hung for {} ms", now - since));
                        abort_connection(&mp);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    }
    fn assert_none_hung(&self) {
        if let Some(h) = self.hung.lock().unwrap().clone() {
            panic!("{h} (the connection was aborted to end it)");
        }
    }
}

#[test]
fn killing_the_serving_process_twenty_times_costs_readers_nothing() {
    let (env, store) = setup();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, "mnt.ctp", &mp, &[]);
    let sup = supervisor(&env, &store, &mp);
    let files = Arc::new(source_files());
    assert!(files.len() >= 8, "{} files", files.len());

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let eio = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    // Slots 0-7: the readers; slot 8: the probe after each kill.
    let dog = Watchdog::new(9);
    let watcher = dog.watch(mp.clone());
    let mut readers = Vec::new();
    for t in 0..8u64 {
        let (files, stop, reads, eio, failures, dog, root) = (
            files.clone(),
            stop.clone(),
            reads.clone(),
            eio.clone(),
            failures.clone(),
            dog.clone(),
            mp.clone(),
        );
        readers.push(std::thread::spawn(move || {
            let mut next = xorshift(0x9e37_79b9_7f4a_7c15 ^ (t * 7919));
            while !stop.load(Ordering::SeqCst) {
                let (rel, src) = &files[(next() % files.len() as u64) as usize];
                let off = (next() % (src.len() as u64 / 4096 + 1)) * 4096;
                let len = 4096 * (1 + (next() % 48) as usize);
                match dog.read(t as usize, || read_direct(&root.join(rel), off, len)) {
                    Ok(got) => {
                        let s = (off as usize).min(src.len());
                        let e = (s + len).min(src.len());
                        if got != src[s..e] {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{rel} at {off}+{len}: other bytes"));
                        }
                    }
                    Err(e) if e.raw_os_error() == Some(EIO) => {
                        eio.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{rel} at {off}: {e}")),
                }
                reads.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut next = xorshift(0x5151);
    let mut pauses = Vec::new();
    let probe = mp.join("data/public");
    for kill in 0..20 {
        std::thread::sleep(Duration::from_millis(30 + next() % 250));
        dog.assert_none_hung();
        let pid = server(sup);
        let before = reads.load(Ordering::SeqCst);
        let killed = Instant::now();
        kill9(pid);
        // Served again: a read that reaches the daemon (O_DIRECT) answers, and a new process
        // serves.
        let got = dog
            .read(8, || read_direct(&probe, 0, 4096))
            .unwrap_or_else(|e| {
                dog.assert_none_hung();
                panic!("kill {kill}: the probe read failed: {e}")
            });
        assert_eq!(got, b"for everyone\n");
        let pause = killed.elapsed();
        pauses.push(pause);
        assert!(
            pause < Duration::from_secs(1),
            "kill {kill}: serving again took {pause:?}"
        );
        assert_ne!(server(sup), pid, "kill {kill}: a new serving process");
        assert!(before > 0 || kill > 0 || reads.load(Ordering::SeqCst) > 0);
    }
    // Let the readers go on a little with the last process, then stop them.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    // Hung reads are ended by the watchdog within READ_BOUND.
    let deadline = Instant::now() + 2 * READ_BOUND;
    while readers.iter().any(|r| !r.is_finished()) {
        assert!(Instant::now() < deadline, "a reader did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    for r in readers {
        r.join().unwrap();
    }
    dog.done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    dog.assert_none_hung();
    let failures = failures.lock().unwrap().clone();
    let (reads, eio) = (reads.load(Ordering::SeqCst), eio.load(Ordering::SeqCst));
    pauses.sort();
    eprintln!(
        "{reads} reads, {eio} EIO, 20 kills; pause after a kill: median {:?}, max {:?}",
        pauses[pauses.len() / 2],
        pauses[pauses.len() - 1]
    );
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
    assert!(reads > 200, "only {reads} reads");
    // This kernel re-sends what a dead process had read: not even EIO.
    assert_eq!(eio, 0, "reads failed with EIO at a kill");
    assert!(
        m.log().matches("starting another").count() >= 20,
        "{}",
        m.log()
    );

    // A tampered block still fails, in a process started after the tampering too.
    let tree = env
        .ct(&[
            "--json",
            "--store",
            store.to_str().unwrap(),
            "store",
            "tree",
            "mnt",
        ])
        .ok()
        .json();
    let object = cerro_tests::store_object(&store, &tree, "/data/big.bin");
    cerro_tests::flip_byte(&object, 65536 * 3 + 5);
    let big = mp.join("data/big.bin");
    let e = read_direct(&big, 65536 * 3, 65536).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    let pid = server(sup);
    kill9(pid);
    let e = read_direct(&big, 65536 * 3, 65536).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    assert_eq!(read_direct(&big, 0, 65536).unwrap().len(), 65536);
    m.unmount();
    wait_gone(sup, "the supervisor, after its mount ended");
}

#[test]
fn a_record_tampered_while_mounted_stops_the_mount_at_the_next_restart() {
    let (env, store) = setup();
    let mp = env.path("mnt");
    let m = Mounted::mount(&env, &store, "mnt.ctp", &mp, &[]);
    assert_eq!(fs::read(m.path("data/public")).unwrap(), b"for everyone\n");
    let sup = supervisor(&env, &store, &mp);
    let digest = env
        .ct(&[
            "--json",
            "--store",
            store.to_str().unwrap(),
            "store",
            "info",
            "mnt",
        ])
        .ok()
        .json()["bundle_digest"]
        .as_str()
        .expect("store info names the digest")
        .to_string();
    let raw = RawStore::new(&store);
    let mut record = raw.record(&digest);
    let at = record.len() / 2;
    record[at] ^= 0x20;
    raw.put_record(&digest, &record);
    let pid = server(sup);
    kill9(pid);
    // No process may serve it any more: the supervisor gives the mount up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while is_mounted(&mp) {
        assert!(Instant::now() < deadline, "still mounted:\n{}", m.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = m.log();
    assert!(log.contains("failed to start"), "{log}");
    assert!(log.contains("giving the mount up"), "{log}");
    assert!(fs::read(mp.join("data/public")).is_err());
    wait_gone(sup, "the supervisor, after its mount ended");
    drop(m);
}
