//! Paths inside the container's rootfs, resolved as the container will resolve them: with
//! openat2 `RESOLVE_IN_ROOT`, so a symlink in the image (absolute, or climbing with `..`) stays
//! inside the rootfs and never reaches the host's files. Used for `--user NAME[:GROUP]` (and
//! the image's `User`: names from the image's /etc/passwd and /etc/group, regular files only,
//! bounded) and for the working directory, made when missing as runc would.

use crate::exit::{CmdResult, Failure};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::path::Path;

/// Largest passwd or group file read (real ones are a few KiB).
const MAX_DB_BYTES: u64 = 4 << 20;

/// Flags for every lookup: inside the root, no /proc magic links, no crossing into another
/// mount (the rootfs is one overlay).
fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

/// Make the directory `path` (absolute, as the container sees it) inside `root` when it is
/// missing, each missing component 0755 (podman refuses a missing --workdir, runc makes it:
/// ct makes it for both). Each parent is resolved inside the root; a new component is made
/// with mkdirat relative to it, which never follows a link.
pub fn make_dir(root: &Path, path: &str) -> CmdResult {
    let fail = |e: std::io::Error| Failure::io(format!("making the working directory {path}"), e);
    let rootfd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(e.into()))?;
    let dir = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut prefix = String::from(".");
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let parent = rustix::fs::openat2(&rootfd, &prefix, dir, Mode::empty(), in_root())
            .map_err(|e| fail(e.into()))?;
        prefix = format!("{prefix}/{part}");
        match rustix::fs::openat2(&rootfd, &prefix, dir, Mode::empty(), in_root()) {
            Ok(_) => continue,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(fail(e.into())),
        }
        match rustix::fs::mkdirat(&parent, part, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fail(e.into())),
        }
    }
    Ok(())
}

/// The text of `rel` (e.g. `etc/passwd`) inside `root`, resolved as if `root` were `/`; None
/// when it is missing or not a regular file.
pub fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
        in_root(),
    )
    .ok()?;
    let file = std::fs::File::from(fd);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_DB_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The numeric id (field `field`) and, for passwd, the primary group of `name` in `file`.
fn lookup(root: &Path, file: &str, name: &str, field: usize) -> Option<(u32, Option<u32>)> {
    let text = read_in_root(root, file)?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| {
            (
                f.get(field).and_then(|x| x.parse().ok()).unwrap_or(0),
                f.get(3).and_then(|x| x.parse().ok()),
            )
        })
    })
}

/// `UID[:GID]`, numeric or names from the image's /etc/passwd and /etc/group; without a group,
/// the user's primary group (or the uid for a number not in the image).
pub fn resolve_user(spec: &str, rootfs: &Path) -> CmdResult<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup(rootfs, "etc/passwd", u, 2).ok_or_else(|| {
            Failure::usage(format!("user {u:?} is not in the image's /etc/passwd"))
        })?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(rootfs, "etc/group", g, 2)
                .map(|x| x.0)
                .ok_or_else(|| {
                    Failure::usage(format!("group {g:?} is not in the image's /etc/group"))
                })?,
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("host-passwd");
        std::fs::write(&secret, "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        // Absolute, and climbing out with ..: both stay inside the root.
        std::os::unix::fs::symlink(&secret, etc.join("passwd")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../../../../../..{}", secret.display()),
            etc.join("group"),
        )
        .unwrap();
        assert_eq!(read_in_root(root.path(), "etc/passwd"), None);
        assert_eq!(read_in_root(root.path(), "etc/group"), None);
        assert_eq!(
            resolve_user("evil", root.path()).unwrap_err().code,
            crate::exit::USAGE
        );
        // The same link target inside the root is what it reads.
        let inside = root.path().join(secret.strip_prefix("/").unwrap());
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(&inside, "app:x:7:8::/:/bin/sh\n").unwrap();
        assert_eq!(resolve_user("app", root.path()).unwrap(), (7, 8));
        assert_eq!(resolve_user("5:6", root.path()).unwrap(), (5, 6));
        assert_eq!(resolve_user("9", root.path()).unwrap(), (9, 9));
    }

    #[test]
    fn working_directories_are_made_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        // /work in the image is a link to a host path: it is followed inside the root only.
        std::os::unix::fs::symlink(host.path(), root.path().join("work")).unwrap();
        // Where it points, inside the root, is missing: refused (nothing is made anywhere).
        assert_eq!(make_dir(root.path(), "/work/a/b").unwrap_err().code, 11);
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
        // Once that exists inside the root, the directory lands there.
        let inside = root.path().join(host.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        make_dir(root.path(), "/work/a/b").unwrap();
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
        assert!(inside.join("a/b").is_dir());
        make_dir(root.path(), "/plain/dir/").unwrap();
        assert!(root.path().join("plain/dir").is_dir());
        make_dir(root.path(), "/plain/dir").unwrap();
    }

    #[test]
    fn only_regular_files_are_read() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(root.path(), "etc/passwd"), None);
    }
}
