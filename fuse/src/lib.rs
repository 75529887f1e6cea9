//! Cerro Torre's read-only, verifying FUSE filesystem: a rootfs (or the whole
//! store) read through `cerro_core::rootfs::VerifiedTree`, so every directory node is checked
//! against its digest when first looked up and every block of content against its file's BLAKE3
//! root before the kernel sees it. Lazy: mounting reads nothing but the root record, so start-up
//! does not grow with the image. Multi-threaded over cloned `/dev/fuse` descriptors.

mod cache;
mod fs;
pub mod fusermount;
mod inodes;
pub mod mountinfo;
pub mod restart;
mod view;

pub use fs::{EventSink, FsError, VerifiedFs, DEFAULT_CACHE_BYTES};
pub use inodes::{Ino, Kind, LoadHook, LoadRecord, ReplayError, ROOT_INO};
pub use view::{StoreBundle, TreeRoot, View};

use cerro_core::rootfs::TreeStore;
use fuser::{Config, MountOption, SessionACL};
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let every user reach the mount (`allow_other`); the kernel still enforces the image's
    /// modes and owners (`default_permissions` is always on).
    pub allow_other: bool,
    /// Honour setuid/setgid bits (a container rootfs needs them; a host browsing images not).
    pub suid: bool,
    /// Threads serving requests.
    pub threads: usize,
    /// Shown as the mount's source in /proc/mounts (`cerro:NAME`).
    pub fsname: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            allow_other: false,
            suid: false,
            threads: default_threads(),
            fsname: "cerro".into(),
        }
    }
}

/// Two threads per core, at least 4 and at most 16: reads wait on the disk as often as they hash.
pub fn default_threads() -> usize {
    let n = std::thread::available_parallelism().map_or(2, |n| n.get());
    (2 * n).clamp(4, 16)
}

/// A live mount: requests are being served until it is unmounted.
pub struct Mounted {
    mountpoint: PathBuf,
    unmounter: Option<Unmounter>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// What unmounts this mount from another thread (a signal-waiting thread). There is one.
    pub fn take_unmounter(&mut self) -> Option<Unmounter> {
        self.unmounter.take()
    }

    /// Wait until the mount ends (unmounted through the [`Unmounter`], by `ct umount`, or by
    /// the kernel), then return what the session reported.
    pub fn wait(mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("the FUSE session thread panicked"))?,
            None => Ok(()),
        }
    }
}

/// Unmounts a [`Mounted`] from any thread.
pub enum Unmounter {
    /// A mount root made with mount(2).
    Session(fuser::SessionUnmounter),
    /// A mount an ordinary user made through fusermount3.
    Fusermount(PathBuf),
}

impl Unmounter {
    pub fn unmount(&mut self) -> io::Result<()> {
        match self {
            Unmounter::Session(s) => s.unmount(),
            Unmounter::Fusermount(p) => fusermount::unmount(p, true),
        }
    }
}

/// Mount `fs` at `mountpoint` and start serving it. Returns once the kernel has completed the
/// FUSE handshake, so the mount answers requests from now on.
pub fn mount<S: TreeStore + ?Sized + 'static>(
    fs: VerifiedFs<S>,
    mountpoint: &Path,
    opts: &MountOptions,
) -> io::Result<Mounted> {
    let mut mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        MountOption::Subtype("cerro".into()),
        MountOption::RO,
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoAtime,
    ];
    mount_options.push(if opts.suid {
        MountOption::Suid
    } else {
        MountOption::NoSuid
    });

    let mut config = session_config(opts, true);
    let acl = config.acl;
    let notifier = fs.read_ahead_notifier();
    let root = nix::unistd::geteuid().is_root();
    let (session, unmounter) = if root {
        config.mount_options = mount_options;
        let mut session = fuser::Session::new(fs, mountpoint, &config)?;
        let u = Unmounter::Session(session.unmount_callable());
        (session, u)
    } else {
        // Without root the kernel refuses mount(2), and /dev/fuse may be root's alone: the
        // setuid fusermount3 mounts and hands the descriptor back.
        let o = mount_options_text(opts);
        let fd = fusermount::mount(mountpoint, &o.join(","))?;
        let session = fuser::Session::from_fd(fs, fd, acl, config).inspect_err(|_| {
            let _ = fusermount::unmount(mountpoint, true);
        })?;
        (session, Unmounter::Fusermount(mountpoint.to_path_buf()))
    };
    let _ = notifier.set(session.notifier());
    let thread = std::thread::Builder::new()
        .name("fuse-session".into())
        .spawn(move || session.run())?;
    Ok(Mounted {
        mountpoint: mountpoint.to_path_buf(),
        unmounter: Some(unmounter),
        thread: Some(thread),
    })
}

/// The session settings of a mount: who may reach it, how many threads serve it, and whether
/// each thread reads a cloned descriptor of its own (`clone_fd`; see `restart` for why a
/// supervised mount must not).
pub(crate) fn session_config(opts: &MountOptions, clone_fd: bool) -> Config {
    let mut config = Config::default();
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.max(1));
    config.clone_fd = clone_fd;
    config
}

/// The options an ordinary user's mount is made with (`fusermount3 -o`).
pub(crate) fn mount_options_text(opts: &MountOptions) -> Vec<String> {
    let mut o: Vec<String> = vec![
        format!("fsname={}", opts.fsname),
        "subtype=cerro".into(),
        "ro".into(),
        "default_permissions".into(),
        "nodev".into(),
        "nosuid".into(),
        "noatime".into(),
    ];
    if opts.allow_other {
        o.push("allow_other".into());
    }
    o
}

/// Raise the kernel's readahead for the mount at `mountpoint` (its backing device's
/// `read_ahead_kb` in sysfs; root only). FUSE mounts start at 128 KiB; 1 MiB was measured to
/// make sequential reads about 40 % faster here. Best effort: returns what went wrong.
pub fn set_readahead_kb(mountpoint: &Path, kb: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(mountpoint)?.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    std::fs::write(
        format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"),
        kb.to_string(),
    )
}
