//! Where `ct run` stages a container and the mounts it makes there. Everything lives in a mount
//! namespace of ct run's own (so no mount of a running container is visible on the host), in
//! a directory made with mkdtemp (mode 0700) under a run directory that only its owner can
//! write — root's `/run/cerro/run`, checked to be a real root-owned directory on a path nobody
//! else can change, or for an ordinary user their own (see [`super::rootless`]) — so no other
//! user can predict, pre-create, swap or reach anything in it. The [`Stage`] guard takes every
//! mount down and removes what it made, on every path.

use crate::exit::{CmdResult, Failure};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where `ct run` keeps its staging directories, container records and detached logs.
pub const DEFAULT_RUN_DIR: &str = "/run/cerro/run";
/// Overrides [`DEFAULT_RUN_DIR`] (the tests give each run its own).
pub const RUN_DIR_ENV: &str = "CT_RUN_DIR";

fn errno(what: impl std::fmt::Display, e: nix::errno::Errno) -> Failure {
    Failure::io(what, std::io::Error::from(e))
}

/// Move this process into a mount namespace of its own, before it starts any thread (so every
/// thread, and every child, shares it). Mounts made from here on are invisible outside; they
/// go away with the namespace when ct run and its children are gone, even after a SIGKILL.
/// `/` becomes a recursive *slave* of the host: nothing propagates out, but an unmount on the
/// host still reaches this copy — with `private`, a `ct run -d` would pin every filesystem
/// mounted when it started (a `ct umount` elsewhere would wait for a FUSE daemon that never
/// gets its last reference back).
pub fn private_mount_namespace() -> CmdResult {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| errno("entering a private mount namespace (unshare)", e))?;
    slave_root()
}

/// Make `/` of this (new) mount namespace a recursive slave of the one it came from (see
/// [`private_mount_namespace`]); a rootless run does this once its user namespace is mapped.
pub fn slave_root() -> CmdResult {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| errno("making the mount namespace private", e))
}

/// Check that `dir` is a real directory (not a symlink), owned by root and writable by nobody
/// else; each of its ancestors too, except that a sticky world-writable one (`/tmp`) is fine.
fn check_root_owned(dir: &Path) -> CmdResult {
    let refuse = |p: &Path, why: &str| {
        Failure::usage(format!(
            "the run directory {}: {} {why}; ct run stages nothing there",
            dir.display(),
            p.display()
        ))
        .hint(format!(
            "use a directory only root can write ({DEFAULT_RUN_DIR} by default; {RUN_DIR_ENV} overrides)"
        ))
    };
    let mut at = PathBuf::new();
    let parts: Vec<_> = dir.components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let md = std::fs::symlink_metadata(&at)
            .map_err(|e| Failure::io(format!("checking {}", at.display()), e))?;
        if md.file_type().is_symlink() {
            return Err(refuse(&at, "is a symbolic link"));
        }
        if !md.is_dir() {
            return Err(refuse(&at, "is not a directory"));
        }
        if md.uid() != 0 {
            return Err(refuse(&at, &format!("is owned by uid {}", md.uid())));
        }
        let last = i + 1 == parts.len();
        let others_write = md.mode() & 0o022 != 0;
        let sticky = md.mode() & 0o1000 != 0;
        if others_write && (last || !sticky) {
            return Err(refuse(
                &at,
                &format!("is writable by others (mode {:o})", md.mode() & 0o7777),
            ));
        }
    }
    Ok(())
}

/// Create `dir` with `mode` unless it exists (its parent must).
fn make_dir(dir: &Path, mode: u32) -> CmdResult {
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Failure::io(format!("creating {}", dir.display()), e)),
    }
}

/// The run directory (`$CT_RUN_DIR`, else [`DEFAULT_RUN_DIR`], whose parent `/run/cerro` is
/// made 0755 and itself 0700 when missing), checked with [`check_root_owned`].
pub fn run_dir() -> CmdResult<PathBuf> {
    let dir = match std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(d) => {
            let d = PathBuf::from(d);
            if !d.is_absolute() {
                return Err(Failure::usage(format!(
                    "{RUN_DIR_ENV}={} is not an absolute path",
                    d.display()
                )));
            }
            d
        }
        None => {
            let d = PathBuf::from(DEFAULT_RUN_DIR);
            if let Some(parent) = d.parent() {
                make_dir(parent, 0o755)?;
            }
            d
        }
    };
    make_dir(&dir, 0o700)?;
    check_root_owned(&dir)?;
    Ok(dir)
}

/// A directory of the run directory (which [`run_dir`], or for an ordinary user
/// `rootless::run_dir`, has checked) made 0700 if missing (records, logs, runc's state): a
/// real directory of this process's user (root, or in a rootless run's user namespace the user
/// who is root there) that nobody else can write.
pub fn sub_dir(run_dir: &Path, name: &str) -> CmdResult<PathBuf> {
    let d = run_dir.join(name);
    make_dir(&d, 0o700)?;
    let md = std::fs::symlink_metadata(&d)
        .map_err(|e| Failure::io(format!("checking {}", d.display()), e))?;
    let why = if md.file_type().is_symlink() {
        Some("is a symbolic link".to_string())
    } else if !md.is_dir() {
        Some("is not a directory".to_string())
    } else if md.uid() != nix::unistd::geteuid().as_raw() {
        Some(format!("is owned by uid {}", md.uid()))
    } else if md.mode() & 0o022 != 0 {
        Some(format!(
            "is writable by others (mode {:o})",
            md.mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(Failure::usage(format!(
            "{} {why}; ct run keeps nothing there",
            d.display()
        ))
        .hint("remove it (ct run makes it again)")),
        None => Ok(d),
    }
}

/// One run's staging directory and everything mounted in it, taken down in reverse order on
/// drop: kernel mounts (netns, overlay, tmpfs) first, then the FUSE mount under them, then the
/// files and directories it made (never recursively into anything still mounted).
pub struct Stage {
    pub dir: PathBuf,
    mounts: Vec<PathBuf>,
    fuse: Option<(cerro_fuse::Unmounter, cerro_fuse::Mounted)>,
}

impl Stage {
    /// A fresh directory under `run_dir` (mkdtemp: unpredictable, created 0700 by us, failing
    /// rather than reusing anything), with `lower`, `rw`, `rootfs` and `bundle` in it.
    pub fn new(run_dir: &Path) -> CmdResult<Stage> {
        let dir = nix::unistd::mkdtemp(&run_dir.join("stage-XXXXXX")).map_err(|e| {
            errno(
                format!("creating a staging directory in {}", run_dir.display()),
                e,
            )
        })?;
        let stage = Stage {
            dir,
            mounts: Vec::new(),
            fuse: None,
        };
        for d in ["lower", "rw", "rootfs", "bundle"] {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(stage.dir.join(d))
                .map_err(|e| Failure::io(format!("creating {}", stage.dir.join(d).display()), e))?;
        }
        Ok(stage)
    }

    pub fn lower(&self) -> PathBuf {
        self.dir.join("lower")
    }
    pub fn rw(&self) -> PathBuf {
        self.dir.join("rw")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    /// The FUSE mount at [`Stage::lower`], unmounted after everything above it.
    pub fn set_fuse(&mut self, mut mounted: cerro_fuse::Mounted) {
        let un = mounted.take_unmounter().expect("one unmounter");
        self.fuse = Some((un, mounted));
    }

    /// A kernel mount at `target` (a path in the staging directory), unmounted on drop.
    pub fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> CmdResult {
        mount(Some(source), target, fstype, flags, data)
            .map_err(|e| errno(format!("mounting {source} at {}", target.display()), e))?;
        self.mounts.push(target.to_path_buf());
        Ok(())
    }

    /// A mount made elsewhere at `target` (in the staging directory), unmounted on drop.
    pub fn adopt_mount(&mut self, target: &Path) {
        self.mounts.push(target.to_path_buf());
    }

    /// The writable layer: a tmpfs (nosuid, nodev: nothing the container writes is a device
    /// or setuid anywhere but through the overlay it runs on) holding overlayfs's upper and
    /// work directories, and the overlay at [`Stage::rootfs`] with the FUSE mount as lower.
    /// `userxattr`: overlayfs keeps its own attributes (opaque directories, redirects) as
    /// `user.overlay.*`, as it must in a user namespace, where `trusted.*` cannot be written
    /// (without it, removing a directory of the image fails with EIO).
    pub fn mount_overlay(&mut self, userxattr: bool) -> CmdResult {
        let rw = self.rw();
        self.mount(
            "tmpfs",
            &rw,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        )?;
        for d in ["upper", "work"] {
            std::fs::create_dir(rw.join(d))
                .map_err(|e| Failure::io("creating the overlay's upper layer", e))?;
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}{}",
            self.lower().display(),
            rw.join("upper").display(),
            rw.join("work").display(),
            if userxattr { ",userxattr" } else { "" }
        );
        let rootfs = self.rootfs();
        self.mount(
            "overlay",
            &rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(&data),
        )
        .map_err(|f| f.hint("is overlayfs there? `ct doctor` checks"))
    }

    /// Remove what the run made in the directory: files, then directories that are empty; a
    /// directory on another device (something still mounted) is never entered.
    fn remove_contents(&self) {
        fn clear(dir: &Path, dev: u64, depth: u8) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Ok(md) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if md.is_dir() {
                    if md.dev() == dev && depth > 0 {
                        clear(&p, dev, depth - 1);
                    }
                    let _ = std::fs::remove_dir(&p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        if let Ok(md) = std::fs::symlink_metadata(&self.dir) {
            clear(&self.dir, md.dev(), 1);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = umount2(m, MntFlags::MNT_DETACH);
        }
        if let Some((mut un, mounted)) = self.fuse.take() {
            let _ = un.unmount();
            let _ = mounted.wait();
        }
        self.remove_contents();
    }
}
