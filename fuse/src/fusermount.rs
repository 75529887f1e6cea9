//! Mounting as an ordinary user, without root or capabilities: the setuid `fusermount3`
//! (Debian's fuse3 package) opens `/dev/fuse`, mounts it at a mount point the user owns, and
//! hands the descriptor back over a socket (the protocol libfuse uses: the socket's descriptor
//! number in `_FUSE_COMMFD`, the `/dev/fuse` descriptor in one SCM_RIGHTS message). This works
//! where `/dev/fuse` is root's alone (mode 0600), which fuser's own fallback does not handle.

use rustix::io::{fcntl_setfd, FdFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::io::{self, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

/// The helper, as Debian installs it (setuid root).
pub const FUSERMOUNT: &str = "fusermount3";

/// Mount a FUSE filesystem at `mountpoint` with `options` (`-o` syntax) through
/// `fusermount3`; answers the `/dev/fuse` descriptor to serve it on. The helper's own refusal
/// (a mount point the user does not own, `allow_other` without `user_allow_other` in
/// /etc/fuse.conf) comes back as a `PermissionDenied` error carrying its message.
///
/// The socket end passed to the helper is inheritable while it is spawned: call this before
/// other threads start processes (the mount daemon mounts before it serves).
pub fn mount(mountpoint: &Path, options: &str) -> io::Result<OwnedFd> {
    let (ours, theirs) = UnixStream::pair()?;
    fcntl_setfd(&theirs, FdFlags::empty())?;
    let mut child = Command::new(FUSERMOUNT)
        .arg("-o")
        .arg(options)
        .arg("--")
        .arg(mountpoint)
        .env("_FUSE_COMMFD", theirs.as_raw_fd().to_string())
        .env_remove("CT_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {FUSERMOUNT}: {e}")))?;
    drop(theirs);
    let received = receive_fd(&ours);
    drop(ours);
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut stderr);
    }
    let status = child.wait()?;
    match received {
        Ok(fd) if status.success() => Ok(fd),
        _ => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{FUSERMOUNT} refused to mount {} ({status}): {}",
                mountpoint.display(),
                stderr.trim()
            ),
        )),
    }
}

/// The one descriptor `fusermount3` sends.
fn receive_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            socket.as_fd(),
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    if msg.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "fusermount3 closed the socket without a descriptor",
        ));
    }
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "fusermount3 sent no descriptor",
    ))
}

/// Unmount a mount this user made through `fusermount3` (`-z`: at once, even if busy).
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    let mut c = Command::new(FUSERMOUNT);
    c.env_remove("CT_PASSPHRASE").arg("-u").arg("-q");
    if lazy {
        c.arg("-z");
    }
    let st = c.arg("--").arg(mountpoint).status()?;
    if st.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{FUSERMOUNT} -u {} failed ({st})",
            mountpoint.display()
        )))
    }
}
